#!/usr/bin/env bash
# Without a GPU: each framework's CUDA stack resolves, as its worker loads
# it on --device cuda, from its own environment, at its CUDA major, with no
# library loaded twice (`cuda-libs` of each runtime's worker binary),
# a stub libcuda.so.1 (ci/stub/libcuda.c) standing in for the driver.
#
#   ci/gpu-libs.sh            the environments this build is linked to: the --gpu
#                             ones (torch + onnxruntime-gpu, CUDA 13; TensorFlow,
#                             CUDA 12) on a --gpu build; on a CPU build, the CPU
#                             venv's torch CUDA 13 wheels (ort, torch), and
#                             TensorFlow's --gpu environment (ci/setup.sh --gpu-tf,
#                             about 6 GB, cached) through a second build linking
#                             it, in target/gpu-tf (seeded from this build's
#                             target/release; only the TensorFlow worker,
#                             speedbench-tf, is built there)
#   ci/gpu-libs.sh --install  on a CPU build: make the --gpu environments (about 11 GB,
#                             cached like the CPU venv) and a --gpu build in a
#                             scratch clone, and check those
#
# What this proves: every library each framework opens is found, by full
# path, in the right environment, at the right CUDA major, once; ONNX
# Runtime's CUDA provider library loads on top of its stack. What only a GPU
# can show: that the driver accepts them and the kernels run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
flavour="$(sed -n 's/^SPEEDBENCH_FLAVOUR = "\(.*\)"/\1/p' .cargo/config.toml 2>/dev/null || true)"
if [ "${1:-}" = --install ] && [ "$flavour" != gpu ]; then
  # the --gpu environments and a binary built on them, in a scratch clone
  # (this clone's CPU build stays as it is)
  tmp_repo="$(mktemp -d)"
  trap 'rm -rf "$tmp_repo"' EXIT
  git clone -q . "$tmp_repo"
  (cd "$tmp_repo" && bash ci/setup.sh --gpu && cargo build --release --locked && bash ci/gpu-libs.sh)
  exit
fi
stub="$(mktemp -d)"
trap 'rm -rf "$stub"' EXIT
cc -shared -fPIC -o "$stub/libcuda.so.1" ci/stub/libcuda.c
export LD_LIBRARY_PATH="$stub${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ -x target/release/speedbench-tf ] || cargo build --release --locked
# each runtime's worker runs `cuda-libs` for its own runtime
declare -A bins=([ort]=target/release/speedbench-ort [torch]=target/release/speedbench-torch [tf]=target/release/speedbench-tf)
frameworks=(ort torch tf)
if [ "$flavour" = gpu ]; then
  # built on the --gpu environments: ORT's stack and CUDA provider from
  # torch's CUDA 13 environment, TensorFlow's CUDA 12 stack from its own
  export SPEEDBENCH_PROBE_PROVIDER=1
else
  # a CPU build links libtorch from the CPU venv, whose CUDA 13 runtime any
  # other environment's would duplicate: check that venv's stacks for ort
  # and torch, and TensorFlow's GPU build and CUDA 12 stack from its own
  # --gpu environment through a build linking them
  echo "gpu-libs: CPU build: ort and torch from the CPU venv's CUDA 13 wheels; tf from its --gpu environment (ci/gpu-libs.sh --install checks a full --gpu build)" >&2
  bash ci/setup.sh --gpu-tf
  venv="$(sed -n 's/^SPEEDBENCH_VENV = "\(.*\)"/\1/p' .cargo/config.toml)"
  tfdir="$(dirname "$venv")/tensorflow-gpu"
  cpu_rpath="$(sed -n 's/^SPEEDBENCH_RPATH = "\(.*\)"/\1/p' .cargo/config.toml)"
  # the CPU TensorFlow's folders out, the GPU one's in
  keep="$(tr ':' '\n' <<<"$cpu_rpath" | grep -v -e '/tensorflow-cpu$' -e '/site-packages/tensorflow$' | paste -sd: -)"
  target=target/gpu-tf
  if [ ! -d "$target/release" ]; then
    mkdir -p "$target"
    cp -a target/release "$target/"
  fi
  (
    set -a
    # shellcheck source=/dev/null
    . "$tfdir/build-env"
    set +a
    SPEEDBENCH_RPATH="$SPEEDBENCH_TF_RPATH:$keep" CARGO_TARGET_DIR="$target" \
      cargo build --release --locked -p speedbench-tf
  )
  bins[tf]="$target/release/speedbench-tf"
fi
for fw in "${frameworks[@]}"; do
  "${bins[$fw]}" cuda-libs --framework "$fw" > "$stub/$fw.txt"
  sed "s/^/gpu-libs: $fw: /" "$stub/$fw.txt" >&2
done
echo "gpu-libs: ok (${frameworks[*]})" >&2
