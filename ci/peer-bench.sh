#!/usr/bin/env bash
# Harness overhead: speedbench against each framework's own Python API on the
# smoke and quick cells (resnet50, batch 1, 128 and 224 px, sequential), same
# weights and threads. The two sides alternate over ROUNDS rounds (speedbench
# first in even rounds, Python first in odd ones) so that drift on a shared
# machine hits both alike; the ratio is of the medians of all samples pooled.
# Prints speedbench / Python per cell and framework (below 1: speedbench is
# faster), with the range of the per-round ratios.
#   ITERS=40 ROUNDS=4 FRAMEWORKS=ort,torch,tf SIZES="128 224" ci/peer-bench.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash ci/setup.sh >/dev/null
cargo build --release --locked 2>/dev/null
py="$(grep SPEEDBENCH_VENV .cargo/config.toml | cut -d'"' -f2)/bin/python"
bin=./target/release/speedbench
iters="${ITERS:-40}"
rounds="${ROUNDS:-4}"
frameworks="${FRAMEWORKS:-ort,torch,tf}"
threads="$(nproc)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sb_flags=()
for f in ${frameworks//,/ }; do sb_flags+=(--framework "$f"); done
for size in ${SIZES:-128 224}; do
  "$bin" export --model resnet50 --size "$size" --out "$work/m.onnx" --save-weights "$work/w.safetensors" 2>/dev/null
  for ((r = 0; r < rounds; r++)); do
    sb() {
      "$bin" run "${sb_flags[@]}" --model resnet50 --mode sequential --batch 1 --size "$size" \
        --warmup 5 --iters "$iters" --out "$work/sb$size-$r" >/dev/null 2>&1
    }
    pyb() {
      "$py" ci/peer_bench.py --onnx "$work/m.onnx" --weights "$work/w.safetensors" --size "$size" \
        --iters "$iters" --threads "$threads" --frameworks "$frameworks" > "$work/py$size-$r.jsonl" 2>/dev/null
    }
    if ((r % 2 == 0)); then sb; pyb; else pyb; sb; fi
  done
done
"$py" - "$work" "$rounds" ${SIZES:-128 224} <<'PY'
import glob, json, statistics, sys
work, rounds, sizes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print(f"{'size':<6} {'fw':<6} {'speedbench':>12} {'python':>12} {'ratio':>8}   per-round range")
for size in sizes:
    sb, py = {}, {}
    for r in range(rounds):
        for f in glob.glob(f"{work}/sb{size}-{r}/*.json"):
            for c in json.load(open(f))["cells"]:
                sb.setdefault(c["framework"], []).append(c["samples_ms"])
        for line in open(f"{work}/py{size}-{r}.jsonl"):
            x = json.loads(line)
            py.setdefault(x["framework"], []).append(x["samples_ms"])
    for fw in sb:
        if fw not in py:
            continue
        a = statistics.median([v for s in sb[fw] for v in s])
        b = statistics.median([v for s in py[fw] for v in s])
        per = [statistics.median(s) / statistics.median(t) for s, t in zip(sb[fw], py[fw])]
        print(f"{size:<6} {fw:<6} {a:10.2f}ms {b:10.2f}ms {a / b:8.3f}   [{min(per):.3f}, {max(per):.3f}]")
PY
