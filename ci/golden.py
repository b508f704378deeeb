#!/usr/bin/env python3
"""Golden reference files from the real reference implementations.

For each model this builds the PyTorch reference (torchvision ResNet-50 and
ResNeXt-50 32x4d, timm SE-ResNet-50, and ScaleNet-50 written out below after
the authors' design), gives it seeded weights with non-trivial BatchNorm
statistics, and writes into --out:

    <model>.safetensors          the state_dict, PyTorch key names, float32,
                                 without num_batches_tracked
    <model>_<size>_input.npy     float32 [batch, 3, size, size], standard normal
    <model>_<size>_logits.npy    float32 [batch, 1000], the reference's output

speedbench loads the weights with `--weights`, runs the input through each
framework (`speedbench infer ... --output pred.npy`), and ci/golden_check.py
compares the prediction with the logits.

Run with the venv that ci/setup.sh creates:

    ~/.cache/speedbench/venv-cpu/bin/python ci/golden.py --out /tmp/golden
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MODELS = ("resnet50", "se_resnet50", "resnext50", "se_resnext50", "scalenet50")

# Parameter count of ScaleNet-50 (DESIGN.md, "The models"); the module below
# must reproduce it exactly, or its weights would not be the authors' layout.
SCALENET50_PARAMS = 31_483_618


# --------------------------------------------------------------------------
# ScaleNet-50 (Li et al., "Data-Driven Neuron Allocation for Scale
# Aggregation Networks", CVPR 2019), module names as in the authors' code.
# --------------------------------------------------------------------------

# Pooling factor of each branch position i = 0..3 of a scale aggregation block.
SCALES = (1, 2, 4, 7)


class ScaleBlock(nn.Module):
    """One scale aggregation bottleneck.

    `channels` = [c1, c2, c4, c7] are the output widths of the four branches
    (a branch with width 0 does not exist); `side` is the structure file's
    nominal feature-map side, which only picks each branch's kernel size.
    """

    expansion = 4

    def __init__(self, name, inplanes, planes, stride, channels, side):
        super().__init__()
        self.name = name
        # Stride 2 is a 2x2 max-pool of the block input, before everything
        # (shortcut included); every convolution in the block has stride 1.
        self.pool = nn.MaxPool2d(2, 2) if stride == 2 else None
        outplanes = planes * self.expansion

        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)

        # ModuleDict keyed by the branch position, so the state_dict keys are
        # `conv2.{i}` / `bn2.{i}` with gaps where a branch is absent.
        self.conv2 = nn.ModuleDict()
        self.bn2 = nn.ModuleDict()
        for i, width in enumerate(channels):
            if width == 0:
                continue
            # Kernel 1 where the pooled map would be a single pixel at the
            # nominal size (note 2**i, not the scale: the 4th branch uses side/8).
            kernel = 3 if side / 2**i > 1 else 1
            self.conv2[str(i)] = nn.Conv2d(planes, width, kernel, padding=kernel // 2, bias=False)
            self.bn2[str(i)] = nn.BatchNorm2d(width)

        self.conv3 = nn.Conv2d(sum(channels), outplanes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(outplanes)
        self.relu = nn.ReLU(inplace=True)

        if inplanes != outplanes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, outplanes, 1, bias=False),
                nn.BatchNorm2d(outplanes),
            )
        else:
            self.downsample = None

    def forward(self, x):
        if self.pool is not None:
            x = self.pool(x)
        shortcut = x if self.downsample is None else self.downsample(x)

        y = self.relu(self.bn1(self.conv1(x)))
        height, width = y.shape[-2:]

        branches = []
        for key, conv in self.conv2.items():
            scale = SCALES[int(key)]
            b = y
            if scale > 1:
                if height < scale or width < scale:
                    raise ValueError(
                        f"{self.name}: branch {key} pools by {scale} but its input "
                        f"is only {height}x{width}; use a larger input size"
                    )
                b = F.max_pool2d(b, scale, scale)
            b = conv(b)
            if scale > 1:
                # Back to the branch input size, as the authors' SABlock.forward
                # decides it, literally:
                #   if size[0] % out2_i.shape[2] == 0 and size[1] % out2_i.shape[3] == 0:
                #       nearest, else bilinear (align_corners=False)
                # where out2_i is the branch after pooling and convolution: the
                # test is divisibility by the pooled map's size, not by the scale
                # (32 -> pool 7 -> 4 -> back to 32 is nearest).
                if height % b.shape[2] == 0 and width % b.shape[3] == 0:
                    b = F.interpolate(b, size=(height, width), mode="nearest")
                else:
                    b = F.interpolate(b, size=(height, width), mode="bilinear", align_corners=False)
            branches.append(self.bn2[key](b))

        y = self.relu(torch.cat(branches, dim=1))
        y = self.bn3(self.conv3(y))
        return self.relu(y + shortcut)


class ScaleNet(nn.Module):
    """ResNet-style stem and head around stages of ScaleBlocks.

    `structure` holds one [c1, c2, c4, c7, side] per block, in order.
    """

    def __init__(self, layers, structure, num_classes=1000):
        super().__init__()
        if len(structure) != sum(layers):
            raise ValueError(f"structure has {len(structure)} blocks, layers {layers} need {sum(layers)}")
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)

        inplanes = 64
        block_index = 0
        for stage, (depth, planes) in enumerate(zip(layers, (64, 128, 256, 512)), start=1):
            blocks = []
            for j in range(depth):
                *channels, side = structure[block_index]
                stride = 2 if (stage > 1 and j == 0) else 1
                blocks.append(ScaleBlock(f"layer{stage}.{j}", inplanes, planes, stride, channels, side))
                inplanes = planes * ScaleBlock.expansion
                block_index += 1
            self.add_module(f"layer{stage}", nn.Sequential(*blocks))

        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --------------------------------------------------------------------------
# Reference models, weights, golden files
# --------------------------------------------------------------------------


def build_model(name, structures):
    """The reference implementation of `name`, with default (seeded) init."""
    if name == "resnet50":
        import torchvision

        return torchvision.models.resnet50(weights=None)
    if name == "se_resnet50":
        import timm

        return timm.create_model("seresnet50", pretrained=False)
    if name == "resnext50":
        import torchvision

        return torchvision.models.resnext50_32x4d(weights=None)
    if name == "se_resnext50":
        import timm

        return timm.create_model("seresnext50_32x4d", pretrained=False)
    if name == "scalenet50":
        structure = json.loads((structures / "scalenet50.json").read_text())
        model = ScaleNet([3, 4, 6, 3], structure)
        params = sum(p.numel() for p in model.parameters())
        assert params == SCALENET50_PARAMS, f"ScaleNet-50 has {params:,} parameters, expected {SCALENET50_PARAMS:,}"
        return model
    raise ValueError(f"unknown model '{name}' (expected one of {', '.join(MODELS)})")


@torch.no_grad()
def randomise_batchnorm(model):
    """Non-trivial BN statistics and affine terms, so BN is not an identity
    (and zero-initialised last BNs do not switch residual branches off)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.0)
            m.bias.uniform_(-0.1, 0.1)


def state_dict_for_export(model):
    """float32, contiguous, without `num_batches_tracked`."""
    return {
        k: v.detach().to(torch.float32).contiguous()
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


def make_input(seed, batch, size):
    """The same input for every model at a given (seed, batch, size)."""
    gen = torch.Generator().manual_seed(seed * 100_003 + size)
    return torch.randn(batch, 3, size, size, generator=gen, dtype=torch.float32)


def parse_list(text, convert=str):
    return [convert(item) for item in text.split(",") if item.strip()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, from: " + ", ".join(MODELS))
    parser.add_argument("--sizes", default="224,128", help="comma-separated input sizes")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--structures",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "models",
        help="folder holding scalenet50.json",
    )
    args = parser.parse_args(argv)

    models = parse_list(args.models)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)} (expected from {', '.join(MODELS)})")
    sizes = parse_list(args.sizes, int)

    from safetensors.torch import save_file

    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)

    for name in models:
        torch.manual_seed(args.seed)
        model = build_model(name, args.structures)
        randomise_batchnorm(model)
        model.eval()

        path = args.out / f"{name}.safetensors"
        save_file(state_dict_for_export(model), str(path))
        print(f"wrote {path}", flush=True)

        for size in sizes:
            x = make_input(args.seed, args.batch, size)
            with torch.inference_mode():
                logits = model(x)
            assert logits.shape == (args.batch, 1000), f"{name}: logits shape {tuple(logits.shape)}"

            path = args.out / f"{name}_{size}_input.npy"
            np.save(path, x.numpy())
            print(f"wrote {path}", flush=True)
            path = args.out / f"{name}_{size}_logits.npy"
            np.save(path, logits.to(torch.float32).contiguous().numpy())
            print(f"wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
