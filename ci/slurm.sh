#!/usr/bin/env bash
# ci/shards/slurm-array.sh on a real Slurm: installs Slurm and munge from
# Debian's packages (slurm-wlm, munge; skipped where installed), starts a
# one-node cluster on this machine (munged, slurmctld, slurmd; a slurm.conf
# written for its cores, in a scratch folder), submits the example as a
# three-task array of the smoke profile, waits for it, merges the three
# shards, checks that the merged file holds exactly the cells of the same
# run unsharded, and stops the daemons it started.
#
# What it proves: speedbench takes its shard from a real array job's
# environment (SLURM_ARRAY_TASK_ID, _MIN, _COUNT), the three slices cover
# the matrix once, and `merge` joins them. What it does not: several nodes,
# a shared file system, GPUs (the example's --gres and --cpus-per-task are
# overridden for this one CPU node).
#
# Needs root (the daemons run as root here) and a built binary:
#   cargo build --release --locked && sudo bash ci/slurm.sh
# SLURM_ARGS: the speedbench run flags of each task and of the unsharded
# run (default: two models, a few iterations: the plumbing, not the speed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
bin="$root/target/release/speedbench"
[[ -x "$bin" ]] || { echo "ci/slurm.sh: build first (cargo build --release --locked)" >&2; exit 1; }
read -r -a run_args <<<"${SLURM_ARGS:---model resnet50 --model scalenet50 --framework ort --framework torch --iters 4 --warmup 1}"

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    apt-get install -y -q slurm-wlm munge >/dev/null
  }
fi

work="$(mktemp -d /tmp/speedbench-slurm.XXXXXX)"
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
}
trap stop EXIT

# munge: a key of its own, the daemon as root (--force), its socket here
mkdir -p "$work/munge"
dd if=/dev/urandom bs=1 count=1024 of="$work/munge/munge.key" status=none
chmod 400 "$work/munge/munge.key"
munged --force --key-file="$work/munge/munge.key" \
  --socket="$work/munge/munge.socket" --pid-file="$work/munge/munged.pid" \
  --log-file="$work/munge/munged.log" --seed-file="$work/munge/munged.seed"
pids+=("$(cat "$work/munge/munged.pid")")

host="$(hostname -s)"
cores="$(nproc)"
mkdir -p "$work/state" "$work/spool" "$work/shards" "$work/whole"
cat >"$work/slurm.conf" <<EOF
ClusterName=speedbench
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cores State=UNKNOWN
PartitionName=speedbench Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$work/slurm.conf"
slurmctld -c
for _ in $(seq 50); do [[ -s "$work/slurmctld.pid" ]] && break; sleep 0.2; done
pids+=("$(cat "$work/slurmctld.pid")")
slurmd
for _ in $(seq 50); do [[ -s "$work/slurmd.pid" ]] && break; sleep 0.2; done
pids+=("$(cat "$work/slurmd.pid")")
for _ in $(seq 100); do
  sinfo -h -o '%T' 2>/dev/null | grep -qx idle && break
  sleep 0.3
done
sinfo

# the example, as a three-task array of the smoke profile
job="$(SPEEDBENCH_PROFILE=smoke SPEEDBENCH_OUT="$work/shards" \
  sbatch --parsable --array=0-2 --gres=none --cpus-per-task=1 \
  --output="$work/slurm-%A_%a.out" ci/shards/slurm-array.sh "${run_args[@]}")"
echo "submitted array job $job"
for _ in $(seq 1200); do
  [[ -z "$(squeue -h -j "$job" 2>/dev/null)" ]] && break
  sleep 1
done
if [[ -n "$(squeue -h -j "$job")" ]]; then
  echo "ci/slurm.sh: array job $job still queued or running after 20 minutes" >&2
  squeue -j "$job" >&2
  exit 1
fi
for out in "$work"/slurm-*.out; do
  echo "== $(basename "$out")"
  grep -E '^(speedbench run|results: )' "$out" || true
done
shards=("$work"/shards/*.json)
if [[ ${#shards[@]} -ne 3 ]]; then
  echo "ci/slurm.sh: ${#shards[@]} shard results, expected 3" >&2
  tail -n 20 "$work"/slurm-*.out >&2
  exit 1
fi
"$bin" merge "${shards[@]}" --out "$work/merged.json"
"$bin" run --quiet --profile smoke --shard 1/1 --out "$work/whole" "${run_args[@]}" >/dev/null
python3 - "$work/merged.json" "$work"/whole/*.json "${shards[@]}" <<'PY'
import json, sys
merged, whole, shards = sys.argv[1], sys.argv[2], sys.argv[3:]
def cells(path):
    return sorted((c["model"], c["framework"], c["mode"], c["optimize"])
                  for c in json.load(open(path))["cells"])
got, want = cells(merged), cells(whole)
per = [len(cells(s)) for s in shards]
print(f"shards hold {per} cells; merged {len(got)}; unsharded {len(want)}")
if got != want:
    sys.exit(f"ci/slurm.sh: the merged cells differ from the unsharded run's:\n{got}\n{want}")
if sum(per) != len(want) or min(per) == 0:
    sys.exit("ci/slurm.sh: a cell in two shards, or a shard without one")
PY
echo "ci/slurm.sh: array job $job: 3 shards merged into the unsharded run's cells"
