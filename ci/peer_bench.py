"""Times each framework's own Python API on the cells speedbench times, for
ci/peer-bench.sh: onnxruntime on the ONNX file `speedbench export` writes,
eager PyTorch on torchvision's resnet50 loaded with the same weights, and
TensorFlow running Keras' ResNet50 (the closest equivalent: v1, stride on the
first 1x1, so a few % fewer MACs). Same threads, same batch and size.
Prints one JSON line per framework: {"framework", "median_ms", "samples_ms"}."""
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

import numpy as np

x = np.random.default_rng(0).standard_normal((a.batch, 3, a.size, a.size)).astype(np.float32)


def timed(fn):
    for _ in range(a.warmup):
        fn()
    samples = []
    for _ in range(a.iters):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    return samples


def report(name, samples):
    print(json.dumps({"framework": name, "median_ms": statistics.median(samples),
                      "samples_ms": samples}), flush=True)


for fw in a.frameworks.split(","):
    if fw == "ort":
        import onnxruntime as ort
        o = ort.SessionOptions()
        o.intra_op_num_threads = a.threads
        o.inter_op_num_threads = 1
        o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        o.add_session_config_entry("session.intra_op.allow_spinning", "0")
        s = ort.InferenceSession(a.onnx, o, providers=["CPUExecutionProvider"])
        report("ort", timed(lambda: s.run(["logits"], {"input": x})))
    elif fw == "torch":
        import torch, torchvision
        from safetensors.torch import load_file
        torch.set_num_threads(a.threads)
        m = torchvision.models.resnet50(weights=None)
        m.load_state_dict(load_file(a.weights), strict=False)
        m.eval()
        with torch.inference_mode():
            report("torch", timed(lambda: m(torch.from_numpy(x)).numpy()))
    elif fw == "tf":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        m = tf.keras.applications.ResNet50(weights=None, input_shape=(a.size, a.size, 3))
        f = tf.function(lambda t: m(tf.transpose(t, [0, 2, 3, 1]), training=False))
        report("tf", timed(lambda: f(tf.constant(x)).numpy()))
