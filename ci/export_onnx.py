#!/usr/bin/env python3
"""Exports ONNX graphs for `speedbench import`.

    python ci/export_onnx.py fixtures OUTDIR      # the test fixtures (tiny graphs)
    python ci/export_onnx.py classics OUTDIR [NAME ...]   # torchvision networks
    python ci/export_onnx.py resnet50 OUTDIR WEIGHTS.safetensors
        # torchvision's ResNet-50 with speedbench's weights
        # (speedbench export --model resnet50 --save-weights ...), its batch
        # norms kept as they are: the twin of the built-in resnet50

Both use PyTorch's TorchScript exporter (`dynamo=False`), opset 17, eval
mode, a static input shape, and weights drawn with seed 0 (no download).
Versions used for the committed fixtures and the measurements in
docs/models.md: torch 2.11.0, torchvision 0.26.0 (ci/setup.sh's venv).

The fixtures are small graphs that exercise what the importer maps:
`branches.onnx` (static batch 1) has non-square and grouped convolutions,
batch norms folded and standalone, ReLU, ReLU6 (Clip), Sigmoid, SiLU,
HardSigmoid and HardSwish, a channel gate, max pooling with ceil_mode,
average pooling with and without count_include_pad, concatenation,
flatten and a fully connected head. `shuffle.onnx` (symbolic batch) has
what the exporter leaves for run time: Shape -> Gather -> Unsqueeze ->
Concat -> Reshape chains (channel shuffle, flatten by view), Split,
ReduceMean, resizes (nearest x2, bilinear) and MatMul + Add.
"""
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

OPSET = 17


class Branches(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.a = nn.Conv2d(8, 4, 1)
        self.b1 = nn.Conv2d(8, 4, (1, 7), padding=(0, 3))
        self.b2 = nn.Conv2d(4, 4, (7, 1), padding=(3, 0))
        self.c = nn.Conv2d(8, 4, 1)
        self.d = nn.Conv2d(8, 4, 3, padding=1, groups=4)
        self.bn = nn.BatchNorm2d(16)
        self.se1 = nn.Conv2d(16, 4, 1)
        self.se2 = nn.Conv2d(4, 16, 1)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem(x)))  # 8 x 16 x 16
        x = self.pool(x)  # ceil mode: 8 x 8 x 8
        a = F.relu6(self.a(x))
        b = torch.sigmoid(self.b2(self.b1(x)))
        c = self.c(F.avg_pool2d(x, 3, stride=1, padding=1))  # count_include_pad
        d = F.avg_pool2d(self.d(x), 3, stride=1, padding=1, count_include_pad=False)
        y = torch.cat([a, b, c, d], 1)
        y = F.relu(self.bn(y))  # a standalone batch norm
        g = F.hardsigmoid(self.se2(F.relu(self.se1(F.adaptive_avg_pool2d(y, 1)))))
        y = F.hardswish(y * g)
        y = F.silu(y)
        y = F.max_pool2d(y, 3, stride=2, padding=1)  # 16 x 4 x 4
        return self.fc(torch.flatten(y, 1))


class Shuffle(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.left = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.right = nn.Conv2d(4, 4, 1)
        self.w = nn.Parameter(torch.randn(8, 5) * 0.1)
        self.b = nn.Parameter(torch.randn(5) * 0.1)
        self.fc = nn.Linear(8 * 4 * 4, 6)

    def forward(self, x):
        x = F.relu(self.conv(x))  # 8 x 8 x 8
        n, c, h, w = x.size()
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
        left, right = x.chunk(2, dim=1)
        x = torch.cat([self.left(left), F.relu(self.right(right))], 1)
        up = F.interpolate(x, scale_factor=2, mode="nearest")  # 8 x 16 x 16
        down = F.interpolate(up, size=(4, 4), mode="bilinear", align_corners=False)
        v = x.mean([2, 3])  # ReduceMean, no kept dims
        head = torch.matmul(v, self.w) + self.b
        return torch.cat([self.fc(down.view(down.size(0), -1)), head], 1)


def export(model, path, shape, dynamic_batch=False, keep_batchnorm=False):
    model.eval()
    x = torch.randn(*shape)
    kwargs = {}
    if dynamic_batch:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
    if keep_batchnorm:
        # not folded into the convolutions (eval mode is kept by .eval())
        kwargs["training"] = torch.onnx.TrainingMode.PRESERVE
    torch.onnx.export(
        model, x, str(path), opset_version=OPSET, input_names=["input"],
        output_names=["logits"], dynamo=False, **kwargs)
    print(f"{path}: {path.stat().st_size} bytes")


def randomise_bn(model):
    # Fresh batch norms are the identity; give them statistics so that a
    # folded or dropped one shows.
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


CLASSICS = {
    # name: (constructor keyword arguments, input size)
    "inception_v3": ({"aux_logits": False, "init_weights": True}, 299),
    "googlenet": ({"aux_logits": False, "init_weights": True}, 224),
    "squeezenet1_1": ({}, 224),
    "mobilenet_v3_large": ({}, 224),
    "densenet121": ({}, 224),
    "shufflenet_v2_x1_0": ({}, 224),
    "resnet50": ({}, 224),
}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("fixtures", "classics", "resnet50"):
        sys.exit(__doc__)
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if sys.argv[1] == "fixtures":
        b = Branches()
        randomise_bn(b)
        export(b, out / "branches.onnx", (1, 3, 32, 32))
        export(Shuffle(), out / "shuffle.onnx", (2, 3, 16, 16), dynamic_batch=True)
        return
    import torchvision

    if sys.argv[1] == "resnet50":
        if len(sys.argv) != 4:
            sys.exit(__doc__)
        from safetensors.torch import load_file

        model = torchvision.models.resnet50(weights=None)
        state = load_file(sys.argv[3])
        # speedbench's weights have no batch-norm step counters
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            sys.exit(f"weights do not fit: missing {missing}, unexpected {unexpected}")
        export(model, out / "resnet50_twin.onnx", (1, 3, 224, 224), keep_batchnorm=True)
        return
    names = sys.argv[3:] or list(CLASSICS)
    for name in names:
        if name not in CLASSICS:
            sys.exit(f"unknown network '{name}' (known: {', '.join(CLASSICS)})")
        kwargs, size = CLASSICS[name]
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)(weights=None, **kwargs)
        randomise_bn(model)
        export(model, out / f"{name}.onnx", (1, 3, size, size))


if __name__ == "__main__":
    main()
