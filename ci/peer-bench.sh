#!/usr/bin/env bash
# speedbench's `--optimize max` against each runtime's best documented
# Python set-up (ci/peer_bench.py: ONNX Runtime's session at its fastest
# options, PyTorch frozen TorchScript with channels-last and
# optimize_for_inference, TensorFlow's Keras ResNet-50 with oneDNN), on
# ResNet-50 at each batch, 224 px, sequential, same weights and threads.
# The two sides alternate over ROUNDS rounds (speedbench first in even
# rounds, Python first in odd ones) so that drift on a shared machine hits
# both alike. Prints speedbench / Python per batch and framework (below 1:
# speedbench is faster): the ratio of the pooled medians, and the range of
# the per-round ratios. Run it on an idle machine; it names the CPU.
#   ITERS=40 ITERS16=8 ROUNDS=3 FRAMEWORKS=ort,torch,tf BATCHES="1 16" SIZE=224 ci/peer-bench.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash ci/setup.sh >/dev/null
cargo build --release --locked 2>/dev/null
py="$(grep SPEEDBENCH_VENV .cargo/config.toml | cut -d'"' -f2)/bin/python"
bin=./target/release/speedbench
rounds="${ROUNDS:-3}"
frameworks="${FRAMEWORKS:-ort,torch,tf}"
size="${SIZE:-224}"
threads="$(nproc)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sb_flags=()
for f in ${frameworks//,/ }; do sb_flags+=(--framework "$f"); done
"$bin" export --model resnet50 --size "$size" --out "$work/m.onnx" --save-weights "$work/w.safetensors" 2>/dev/null
for batch in ${BATCHES:-1 16}; do
  if [ "$batch" -ge 8 ]; then iters="${ITERS16:-8}"; warmup=2; else iters="${ITERS:-40}"; warmup=5; fi
  for ((r = 0; r < rounds; r++)); do
    sb() {
      "$bin" run "${sb_flags[@]}" --model resnet50 --mode sequential --optimize max --batch "$batch" \
        --size "$size" --warmup "$warmup" --iters "$iters" --processes 1 --weights "$work/w.safetensors" \
        --out "$work/sb$batch-$r" --quiet >/dev/null 2>&1
    }
    pyb() {
      "$py" ci/peer_bench.py --onnx "$work/m.onnx" --weights "$work/w.safetensors" --size "$size" \
        --batch "$batch" --warmup "$warmup" --iters "$iters" --threads "$threads" \
        --frameworks "$frameworks" > "$work/py$batch-$r.jsonl" 2> "$work/py.log" || { cat "$work/py.log" >&2; exit 1; }
    }
    if ((r % 2 == 0)); then sb; pyb; else pyb; sb; fi
  done
done
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $threads cores; flags: $(grep -o -w -E 'avx2|avx512f|avx512_bf16|avx512_vnni|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"
"$py" - "$work" "$rounds" ${BATCHES:-1 16} <<'PY'
import glob, json, statistics, sys
work, rounds, batches = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print(f"{'batch':<6} {'fw':<6} {'speedbench max':>15} {'python best':>12} {'ratio':>8}   per-round range")
for batch in batches:
    sb, py = {}, {}
    for r in range(rounds):
        for f in glob.glob(f"{work}/sb{batch}-{r}/*.json"):
            if f.endswith(".trace.json"):
                continue
            for c in json.load(open(f))["cells"]:
                sb.setdefault(c["framework"], []).append(c["samples_ms"])
        for line in open(f"{work}/py{batch}-{r}.jsonl"):
            x = json.loads(line)
            py.setdefault(x["framework"], []).append(x["samples_ms"])
    for fw in sb:
        if fw not in py:
            continue
        a = statistics.median([v for s in sb[fw] for v in s])
        b = statistics.median([v for s in py[fw] for v in s])
        per = [statistics.median(s) / statistics.median(t) for s, t in zip(sb[fw], py[fw])]
        print(f"{batch:<6} {fw:<6} {a:13.2f}ms {b:10.2f}ms {a / b:8.3f}   [{min(per):.3f}, {max(per):.3f}]")
PY
