#!/usr/bin/env bash
# Speed regression gate: runs the smoke matrix and compares it with the
# committed baseline (results/baseline.json, recorded on this machine class).
# Exit 0: no regression; 1: a regression (or a failed cell); 2: unusable input.
# Writes results/ci/compare.md, fit to paste as a pull-request comment.
#
#   THRESHOLD=10 ci/regression.sh      noise threshold in percent (default 10)
#   GATE=ratios ci/regression.sh       gate on within-run ratios instead of
#                                      raw times (for runners of varying speed)
#   HISTORY=DIR ci/regression.sh       judge against a folder of earlier runs
#                                      (each cell's run-to-run spread, the last
#                                      LOOKBACK=10 runs, Z=3 spreads) instead of
#                                      the baseline alone; a missing or empty
#                                      folder starts from results/baseline.json
#   APPEND=1 (with HISTORY)            then add this run to the folder (on the
#                                      main branch; not on pull requests)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash ci/setup.sh
cargo build --release --locked
out=results/ci
mkdir -p "$out"
set +e
./target/release/speedbench run --profile smoke --out "$out" | tee "$out/run.txt"
run_code=${PIPESTATUS[0]}
set -e
# run prints its results file on a line of its own: `results: PATH`
latest="$(sed -n 's/^results: //p' "$out/run.txt" | tail -n1)"
if [ -z "$latest" ]; then
  echo "ci/regression.sh: the run wrote no results file" >&2
  exit 2
fi
against=(results/baseline.json)
if [ -n "${HISTORY:-}" ]; then
  mkdir -p "$HISTORY"
  if ! ls "$HISTORY"/*.json >/dev/null 2>&1; then
    cp results/baseline.json "$HISTORY/"
  fi
  against=(--history "$HISTORY" --lookback "${LOOKBACK:-10}" --z "${Z:-3}")
  [ "${APPEND:-0}" = 1 ] && against+=(--append)
fi
set +e
./target/release/speedbench compare "${against[@]}" "$latest" \
  --threshold "${THRESHOLD:-10}" --gate "${GATE:-times}" --format md > "$out/compare.md"
code=$?
set -e
cat "$out/compare.md"
[ "$code" -eq 0 ] && [ "$run_code" -ne 0 ] && code=1
exit "$code"
