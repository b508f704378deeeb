#!/usr/bin/env bash
# Bounded fuzzing of every parser that reads user files (cargo-fuzz with
# libFuzzer): harness.toml, model specs + structure files, .npy inputs,
# safetensors weights, results JSON and ONNX files (import). Each target runs FUZZ_SECONDS
# (default 10) from the committed corpus in fuzz/corpus/<target>; a crash,
# panic, leak or out-of-memory fails the script and leaves the input in
# fuzz/artifacts/. cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP=1 lets
# the stable toolchain build it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz@0.13.2
seconds="${FUZZ_SECONDS:-10}"
targets=(harness_toml model_spec npy_input safetensors_weights results_json onnx_import)
cargo fuzz build --release
for t in "${targets[@]}"; do
  # a scratch copy: new inputs found here do not change the committed corpus
  work="$(mktemp -d)"
  cp -r "corpus/$t/." "$work/"
  out="$(cargo fuzz run --release "$t" "$work" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1)" || {
    echo "$out" | tail -30
    echo "fuzz: $t failed" >&2
    exit 1
  }
  echo "fuzz: $t: $(echo "$out" | grep -o 'Done [0-9]* runs in [0-9]* second(s)' | tail -1)"
  rm -rf "$work"
done
