#!/usr/bin/env bash
# Without a GPU: each framework's CUDA stack resolves, as its worker loads
# it on --device cuda, from its own environment, at its CUDA major, with no
# library loaded twice (`speedbench cuda-libs`, one process per framework),
# a stub libcuda.so.1 (ci/stub/libcuda.c) standing in for the driver.
#
#   ci/gpu-libs.sh            the environments that exist: the --gpu ones
#                             (torch + onnxruntime-gpu, CUDA 13; TensorFlow,
#                             CUDA 12) where ci/setup.sh --gpu made them, else
#                             the CPU venv's torch CUDA 13 wheels (ort, torch)
#   ci/gpu-libs.sh --install  first make the --gpu environments (about 11 GB,
#                             cached in the set-up cache like the CPU venv)
#
# What this proves: every library each framework opens is found, by full
# path, in the right environment, at the right CUDA major, once; ONNX
# Runtime's CUDA provider library loads on top of its stack. What only a GPU
# can show: that the driver accepts them and the kernels run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cache="${SPEEDBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/speedbench}"
if [ "${1:-}" = --install ]; then
  # the --gpu environments without touching this clone's build config
  tmp_repo="$(mktemp -d)"
  git clone -q . "$tmp_repo"
  bash "$tmp_repo/ci/setup.sh" --gpu
  rm -rf "$tmp_repo"
fi
stub="$(mktemp -d)"
trap 'rm -rf "$stub"' EXIT
cc -shared -fPIC -o "$stub/libcuda.so.1" ci/stub/libcuda.c
export LD_LIBRARY_PATH="$stub${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=target/release/speedbench
[ -x "$bin" ] || cargo build --release --locked
frameworks=(ort torch)
gpu_site="$(ls -d "$cache"/venv-gpu/lib/python3*/site-packages 2>/dev/null | head -n1 || true)"
if [ -n "$gpu_site" ] && [ -x "$cache/venv-gpu-tf/bin/python" ]; then
  # the GPU environments: ORT's stack and provider from torch's CUDA 13
  # environment, TensorFlow's CUDA 12 stack from its own
  export SPEEDBENCH_VENV="$cache/venv-gpu" SPEEDBENCH_TF_VENV="$cache/venv-gpu-tf"
  export ORT_DYLIB_PATH="$(ls "$gpu_site"/onnxruntime/capi/libonnxruntime.so.* | head -n1)"
  export SPEEDBENCH_PROBE_PROVIDER=1
  frameworks+=(tf)
else
  echo "gpu-libs: no --gpu environments (ci/gpu-libs.sh --install makes them): checking the CPU venv's CUDA 13 wheels for ort and torch" >&2
fi
for fw in "${frameworks[@]}"; do
  "$bin" cuda-libs --framework "$fw" > "$stub/$fw.txt"
  sed "s/^/gpu-libs: $fw: /" "$stub/$fw.txt" >&2
done
echo "gpu-libs: ok (${frameworks[*]})" >&2
