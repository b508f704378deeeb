#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU and the PyTorch 2.11 CUDA image
# (no network needed; about 6 minutes on an H200). It runs speedbench and its
# libtorch worker, built elsewhere, against that image's libtorch:
#
#   # on the build machine (libtorch 2.11.0 from ci/setup.sh, as in the image)
#   cargo build --release --locked -p speedbench -p speedbench-torch
#   mkdir -p .gpu && cp target/release/speedbench target/release/speedbench-torch .gpu/
#   strip .gpu/speedbench .gpu/speedbench-torch
#   # on the GPU machine, in the repository
#   ci/gpu-check.sh [BINARY=.gpu/speedbench] [OUT=results/gpu]
#
# It verifies torch CUDA (both schedules) against torch CPU for the four
# 50-layer models at 224 px, and at --optimize max (folded batch norms,
# channels-last) for resnet50 and scalenet50; then times the four at the
# paper profile (batch 16, 224 px, 50 warm-up + 1000 timed iterations, both
# modes) and writes the results JSON (+ csv, md, svg) into OUT; then times
# --optimize default and max side by side (each worker interleaves the four
# sessions) into OUT/levels (LEVEL_ITERS timed iterations, default 100; 0
# skips it). Each step writes its output as it finishes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin="${1:-.gpu/speedbench}"
out="${2:-results/gpu}"
py="${PYTHON:-python3}"
mkdir -p "$out"

# The image's libtorch and the CUDA libraries of its nvidia-* packages.
libs="$("$py" - <<'PY'
import glob, os, torch
site = os.path.dirname(os.path.dirname(torch.__file__))
dirs = [os.path.join(os.path.dirname(torch.__file__), "lib")]
dirs += sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib")))
print(":".join(dirs))
PY
)"
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
"$py" -c 'import torch; print("image torch", torch.__version__)' | tee -a "$out/gpu.txt"
models=(--model resnet50 --model se_resnet50 --model resnext50 --model scalenet50)

echo "== verify: torch CUDA vs torch CPU, 224 px"
"$bin" verify "${models[@]}" --size 224 --device cuda --format md | tee "$out/verify-cuda.md"

echo "== verify --optimize max: torch CUDA vs torch CPU (default), 224 px"
"$bin" verify --model resnet50 --model scalenet50 --size 224 --device cuda --optimize max \
  --format md | tee "$out/verify-cuda-max.md"

echo "== run: torch CUDA, paper profile, both modes"
"$bin" run --framework torch --device cuda --mode both --profile paper "${models[@]}" --out "$out" \
  | tee "$out/run.txt"

level_iters="${LEVEL_ITERS:-100}"
if [ "$level_iters" -gt 0 ]; then
  echo "== run: torch CUDA, --optimize default,max side by side, $level_iters iterations"
  mkdir -p "$out/levels"
  "$bin" run --framework torch --device cuda --mode both --profile paper --optimize default,max \
    --warmup 20 --iters "$level_iters" "${models[@]}" --out "$out/levels" | tee "$out/levels/run.txt"
fi
