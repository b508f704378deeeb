#!/usr/bin/env bash
# The test command: set-up (idempotent), build, tests, lints.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash ci/setup.sh "$@"
# TensorFlow's --gpu environment (CUDA 12, about 6 GB, cached) for
# ci/gpu-libs.sh below, installed while the build and the tests run
gpu_tf_log="$(mktemp)"
bash ci/setup.sh --gpu-tf > "$gpu_tf_log" 2>&1 &
gpu_tf_setup=$!
rustup component add clippy rustfmt >/dev/null 2>&1 || true
cargo build --release --locked
cargo test --release --locked
cargo clippy --release --locked --all-targets -- -D warnings
cargo fmt --check
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" bash ci/fuzz.sh
# the fleet examples: Slurm's for real on a one-node cluster (about a
# minute); the Kubernetes Job and the GitHub workflows by their schema and
# by speedbench's own argument parser
bash ci/slurm.sh
venv="$(sed -n 's/^SPEEDBENCH_VENV = "\(.*\)"$/\1/p' .cargo/config.toml)"
"$venv/bin/python" ci/check-examples.py target/release/speedbench
# each framework's CUDA stack loads by full path from its own environment
# (a stub libcuda.so.1 for the driver; no GPU needed): ort and torch on this
# build, tf on a second one linking TensorFlow's --gpu environment
if ! wait "$gpu_tf_setup"; then
  cat "$gpu_tf_log" >&2
  echo "ci/test.sh: ci/setup.sh --gpu-tf failed" >&2
  exit 1
fi
bash ci/gpu-libs.sh
# mutation testing of the measurement core, on what the last commit changed
if git rev-parse -q --verify HEAD~1 >/dev/null; then
  bash ci/mutants.sh --diff HEAD~1
fi
echo "ci/test.sh: all green"
