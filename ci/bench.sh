#!/usr/bin/env bash
# The main job: set-up (idempotent), build, then `speedbench run` on the
# default profile for this machine (paper with a CUDA GPU, else quick).
# Extra arguments go to `speedbench run`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
  bash ci/setup.sh --gpu
else
  bash ci/setup.sh
fi
cargo build --release --locked
exec ./target/release/speedbench run "$@"
