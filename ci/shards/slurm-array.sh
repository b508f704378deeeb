#!/usr/bin/env bash
# Example: the paper matrix as a Slurm job array, one shard per task.
# speedbench takes its shard from SLURM_ARRAY_TASK_ID (counted from
# SLURM_ARRAY_TASK_MIN) of SLURM_ARRAY_TASK_COUNT: no --shard needed.
# Build once first, so that every task runs the same binary, then submit
# from the repository root and merge when all tasks are done:
#
#   bash ci/setup.sh --gpu && cargo build --release --locked
#   mkdir -p results/shards
#   job=$(sbatch --parsable ci/shards/slurm-array.sh)
#   sbatch --dependency=afterany:"$job" --wrap \
#     'target/release/speedbench merge results/shards/*.json --out results/all.json &&
#      target/release/speedbench report results/all.json --format md --out results/all.md'
#
#SBATCH --job-name=speedbench
#SBATCH --array=0-3
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=04:00:00
#SBATCH --output=results/shards/slurm-%A_%a.out
#
# SPEEDBENCH_PROFILE (default paper) and SPEEDBENCH_OUT (default
# results/shards) change the profile and the folder; arguments after the
# script's name go to `speedbench run` (ci/slurm.sh submits it this way on
# a one-node cluster).
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
exec ./target/release/speedbench run --profile "${SPEEDBENCH_PROFILE:-paper}" \
  --out "${SPEEDBENCH_OUT:-results/shards}" "$@"
