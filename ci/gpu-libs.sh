#!/usr/bin/env bash
# Without a GPU: each framework's CUDA stack loads by full path from its own
# environment, in dependency order, as its worker loads it on --device cuda
# (`speedbench cuda-libs`), with a stub libcuda.so.1 (ci/stub/libcuda.c)
# standing in for the driver. On the GPU flavour that is ONNX Runtime's
# CUDA 13 stack and its CUDA provider library (from the torch environment)
# and TensorFlow's CUDA 12 stack (from its own); on the CPU flavour, ONNX
# Runtime's stack from torch's CUDA 13 wheels.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
flavour="$(sed -n 's/^SPEEDBENCH_FLAVOUR = "\(.*\)"/\1/p' .cargo/config.toml 2>/dev/null || true)"
stub="$(mktemp -d)"
trap 'rm -rf "$stub"' EXIT
cc -shared -fPIC -o "$stub/libcuda.so.1" ci/stub/libcuda.c
export LD_LIBRARY_PATH="$stub${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=target/release/speedbench
[ -x "$bin" ] || cargo build --release --locked
frameworks=(ort)
[ "$flavour" = gpu ] && frameworks+=(tf)
# on the GPU flavour, ORT then loads its CUDA provider library on top of
# the stack (it must load; CUDA itself answers "no device")
if [ "$flavour" = gpu ]; then export SPEEDBENCH_PROBE_PROVIDER=1; fi
for fw in "${frameworks[@]}"; do
  "$bin" cuda-libs --framework "$fw" > "$stub/$fw.txt"
  echo "gpu-libs: $fw: $(wc -l < "$stub/$fw.txt") libraries loaded by full path" >&2
done
echo "gpu-libs: ok ($flavour flavour)" >&2
