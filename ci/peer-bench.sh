#!/usr/bin/env bash
# Harness overhead: speedbench against each framework's own Python API on the
# smoke and quick cells (resnet50, batch 1, 128 and 224 px, sequential), side
# by side in one run, same weights and threads. Prints speedbench / Python
# per cell and framework (below 1: speedbench is faster).
#   ITERS=40 ci/peer-bench.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash ci/setup.sh >/dev/null
cargo build --release --locked 2>/dev/null
py="$(grep SPEEDBENCH_VENV .cargo/config.toml | cut -d'"' -f2)/bin/python"
bin=./target/release/speedbench
iters="${ITERS:-40}"
threads="$(nproc)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%-6s %-6s %12s %12s %8s\n' size fw "speedbench" "python" ratio
for size in 128 224; do
  "$bin" export --model resnet50 --size "$size" --out "$work/m.onnx" --save-weights "$work/w.safetensors" 2>/dev/null
  "$bin" run --model resnet50 --mode sequential --batch 1 --size "$size" --warmup 5 --iters "$iters" \
    --out "$work/sb$size" >/dev/null 2>&1
  "$py" ci/peer_bench.py --onnx "$work/m.onnx" --weights "$work/w.safetensors" --size "$size" \
    --iters "$iters" --threads "$threads" > "$work/py$size.jsonl" 2>/dev/null
  "$py" - "$work/sb$size"/*.json "$work/py$size.jsonl" "$size" <<'PY'
import json, sys
sb = {c["framework"]: c["latency"]["median"] for c in json.load(open(sys.argv[1]))["cells"]}
for line in open(sys.argv[2]):
    r = json.loads(line)
    f = r["framework"]
    if f in sb:
        print(f"{sys.argv[3]:<6} {f:<6} {sb[f]:10.2f}ms {r['median_ms']:10.2f}ms {sb[f] / r['median_ms']:8.3f}")
PY
done
