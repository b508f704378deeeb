#!/usr/bin/env bash
# The test command: set-up (idempotent), build, tests, lints. Prints each
# stage's time as it ends and all of them at the end. The fuzz run and the
# GPU library check run only when their inputs changed since their last
# green run on this machine (a stamp of the inputs' hash in the cache;
# SPEEDBENCH_FORCE_ALL=1 runs them anyway). Build outputs are kept in the
# cache per checkout path (SPEEDBENCH_FRESH_BUILD=1: none).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cache="${SPEEDBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/speedbench}"
stamps="$cache/stamps"
times=()
# stage NAME COMMAND...: runs it and says how long it took
stage() {
  local name="$1" t0=$SECONDS
  shift
  "$@"
  local took=$((SECONDS - t0))
  times+=("$(printf '%-10s %3d:%02d' "$name" $((took / 60)) $((took % 60)))")
  echo "ci/test.sh: $name took $((took / 60))m $((took % 60))s" >&2
}
# inputs_hash PATH...: one hash over the tracked files under the paths, as
# they are in the working tree
inputs_hash() {
  git ls-files -z -- "$@" | xargs -0 sha256sum | sha256sum | cut -c1-16
}
# stamped NAME HASH COMMAND...: runs the command unless NAME's stamp holds
# HASH; stamps HASH after it passes
stamped() {
  local name="$1" hash="$2"
  shift 2
  if [ "${SPEEDBENCH_FORCE_ALL:-0}" != 1 ] && [ "$(cat "$stamps/$name" 2>/dev/null)" = "$hash" ]; then
    echo "ci/test.sh: $name skipped: its inputs are unchanged since its last green run here (stamp $hash; SPEEDBENCH_FORCE_ALL=1 runs it)" >&2
    return 0
  fi
  "$@"
  mkdir -p "$stamps"
  echo "$hash" > "$stamps/$name"
}
stage setup bash ci/setup.sh "$@"
# Build outputs kept between runs at the same checkout path (a CI runner's
# fixed workspace, a contributor's clone): where target/ and fuzz/target/
# do not exist yet they become links into the cache, so a fresh clone at
# that path rebuilds only what changed (cargo's own fingerprints decide).
# SPEEDBENCH_FRESH_BUILD=1 builds from nothing, as on a new machine.
build_cache() {
  local dir="$1" store="$cache/builds/$2"
  if [ -e "$dir" ] || [ -L "$dir" ]; then
    return 0
  fi
  mkdir -p "$store"
  ln -s "$store" "$dir"
  echo "ci/test.sh: $dir is kept in $store between runs at this path" >&2
}
if [ "${SPEEDBENCH_FRESH_BUILD:-0}" != 1 ]; then
  key="$(pwd -P | sha256sum | cut -c1-12)"
  build_cache target "$key"
  build_cache fuzz/target "$key-fuzz"
fi
# the inputs of the fuzz run and the GPU library check
fuzz_inputs="$(inputs_hash Cargo.lock Cargo.toml build.rs src fuzz ci/fuzz.sh)-${FUZZ_SECONDS:-10}"
gpu_inputs="$(inputs_hash Cargo.lock Cargo.toml build.rs src/app.rs src/commands/inspect.rs src/frameworks runtimes ci/gpu-libs.sh ci/setup.sh ci/stub)"
gpu_needed=1
[ "${SPEEDBENCH_FORCE_ALL:-0}" != 1 ] && [ "$(cat "$stamps/gpu-libs" 2>/dev/null)" = "$gpu_inputs" ] && gpu_needed=0
if [ "$gpu_needed" = 1 ]; then
  # TensorFlow's --gpu environment (CUDA 12, about 6 GB, cached) for
  # ci/gpu-libs.sh below, installed while the build and the tests run
  gpu_tf_log="$(mktemp)"
  bash ci/setup.sh --gpu-tf > "$gpu_tf_log" 2>&1 &
  gpu_tf_setup=$!
fi
rustup component add clippy rustfmt >/dev/null 2>&1 || true
stage build cargo build --release --locked
stage tests cargo test --release --locked
stage clippy cargo clippy --release --locked --all-targets -- -D warnings
stage fmt cargo fmt --all --check
stage fuzz stamped fuzz "$fuzz_inputs" env FUZZ_SECONDS="${FUZZ_SECONDS:-10}" bash ci/fuzz.sh
# the fleet examples: Slurm's for real on a one-node cluster (about a
# minute); the Kubernetes Job and the GitHub workflows by their schema and
# by speedbench's own argument parser
stage slurm bash ci/slurm.sh
venv="$(sed -n 's/^SPEEDBENCH_VENV = "\(.*\)"$/\1/p' .cargo/config.toml)"
stage examples "$venv/bin/python" ci/check-examples.py target/release/speedbench
# each framework's CUDA stack loads by full path from its own environment
# (a stub libcuda.so.1 for the driver; no GPU needed): ort and torch on this
# build, tf on a second one linking TensorFlow's --gpu environment
if [ "$gpu_needed" = 1 ] && ! wait "$gpu_tf_setup"; then
  cat "$gpu_tf_log" >&2
  echo "ci/test.sh: ci/setup.sh --gpu-tf failed" >&2
  exit 1
fi
stage gpu-libs stamped gpu-libs "$gpu_inputs" bash ci/gpu-libs.sh
# mutation testing of the measurement core, on what the last commit changed
if git rev-parse -q --verify HEAD~1 >/dev/null; then
  stage mutants bash ci/mutants.sh --diff HEAD~1
fi
echo "ci/test.sh: stage times (m:ss)" >&2
printf '  %s\n' "${times[@]}" >&2
echo "ci/test.sh: all green"
