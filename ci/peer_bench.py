"""Times each runtime's best documented Python set-up for ResNet-50 on the
cells speedbench times, for ci/peer-bench.sh; same weights (the safetensors
`speedbench export --save-weights` writes), same threads, batch and size:

- ort: onnxruntime's InferenceSession over the ONNX file `speedbench export`
  writes, ORT_ENABLE_ALL, sequential execution, intra-op threads = cores,
  idle threads spinning (ONNX Runtime's performance guide: graph
  optimisations, threading, spinning; spinning is its default).
- torch: torchvision's resnet50 in eval mode, channels-last model and
  input, traced, frozen (`torch.jit.freeze`) and `optimize_for_inference`
  (PyTorch's CPU inference tuning guide), under `inference_mode`.
- tf: the same ResNet-50 (v1.5: stride on the 3x3) written in Keras with
  the torch weights transposed to HWIO, called through `tf.function`, with
  oneDNN on (`TF_ENABLE_ONEDNN_OPTS=1`, set before TensorFlow loads;
  TensorFlow's oneDNN guide).

Each set-up's logits are checked against ONNX Runtime's (relative max
difference below 1e-3) so that a faster peer is never a different network.
Prints one JSON line per framework: {"framework", "median_ms", "samples_ms"}.
"""
import argparse, json, os, statistics, time

p = argparse.ArgumentParser()
p.add_argument("--onnx", required=True)
p.add_argument("--weights", required=True, help="safetensors of the same weights")
p.add_argument("--batch", type=int, default=1)
p.add_argument("--size", type=int, default=224)
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--iters", type=int, default=40)
p.add_argument("--threads", type=int, default=os.cpu_count())
p.add_argument("--frameworks", default="ort,torch,tf")
a = p.parse_args()

os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file

x = np.random.default_rng(0).standard_normal((a.batch, 3, a.size, a.size)).astype(np.float32)
weights = load_file(a.weights)


def timed(fn):
    for _ in range(a.warmup):
        fn()
    samples = []
    for _ in range(a.iters):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    return samples


def ort_session(spinning=True):
    o = ort.SessionOptions()
    o.intra_op_num_threads = a.threads
    o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    o.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(a.onnx, o, providers=["CPUExecutionProvider"])


reference = ort_session(spinning=False).run(["logits"], {"input": x})[0]


def report(name, fn):
    got = np.asarray(fn())
    rel = float(np.abs(got - reference).max() / np.abs(reference).max())
    if rel > 1e-3:
        raise SystemExit(f"peer_bench: {name}'s logits differ from ONNX Runtime's by {rel:.2e}")
    samples = timed(fn)
    print(json.dumps({"framework": name, "median_ms": statistics.median(samples),
                      "samples_ms": samples}), flush=True)


def torch_best():
    import torch, torchvision
    torch.set_num_threads(a.threads)
    m = torchvision.models.resnet50(weights=None)
    m.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    m = m.eval().to(memory_format=torch.channels_last)
    t = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        s = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(m, t)))
        report("torch", lambda: s(t).numpy())


def tf_best():
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    L = tf.keras.layers

    def conv(h, name, filters, k, stride=1):
        w = weights[name + ".weight"].transpose(2, 3, 1, 0)  # OIHW -> HWIO
        if k > 1:
            h = L.ZeroPadding2D(k // 2)(h)
        c = L.Conv2D(filters, k, stride, use_bias=False)
        h = c(h)
        c.set_weights([w])
        return h

    def bn(h, name):
        b = L.BatchNormalization(epsilon=1e-5)
        h = b(h)
        b.set_weights([weights[f"{name}.{t}"] for t in ("weight", "bias", "running_mean", "running_var")])
        return h

    inp = L.Input((a.size, a.size, 3), batch_size=a.batch)
    h = L.ReLU()(bn(conv(inp, "conv1", 64, 7, 2), "bn1"))
    h = L.MaxPooling2D(3, 2)(L.ZeroPadding2D(1)(h))
    for stage, (blocks, planes) in enumerate([(3, 64), (4, 128), (6, 256), (3, 512)], start=1):
        for i in range(blocks):
            n = f"layer{stage}.{i}"
            stride = 2 if i == 0 and stage > 1 else 1
            y = L.ReLU()(bn(conv(h, n + ".conv1", planes, 1), n + ".bn1"))
            y = L.ReLU()(bn(conv(y, n + ".conv2", planes, 3, stride), n + ".bn2"))
            y = bn(conv(y, n + ".conv3", planes * 4, 1), n + ".bn3")
            if i == 0:
                h = bn(conv(h, n + ".downsample.0", planes * 4, 1, stride), n + ".downsample.1")
            h = L.ReLU()(L.Add()([y, h]))
    h = L.GlobalAveragePooling2D()(h)
    fc = L.Dense(1000)
    out = fc(h)
    fc.set_weights([weights["fc.weight"].T, weights["fc.bias"]])
    m = tf.keras.Model(inp, out)
    f = tf.function(lambda t: m(tf.transpose(t, [0, 2, 3, 1]), training=False))
    c = tf.constant(x)
    report("tf", lambda: f(c).numpy())


for fw in a.frameworks.split(","):
    if fw == "ort":
        s = ort_session()
        report("ort", lambda: s.run(["logits"], {"input": x})[0])
    elif fw == "torch":
        torch_best()
    elif fw == "tf":
        tf_best()
