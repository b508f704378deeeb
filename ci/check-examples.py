"""Checks the fleet examples that cannot run here (no Kubernetes cluster, no
GitHub runner) as far as a file can be checked: each parses as YAML, has
the fields its platform requires for what it claims (an Indexed Job whose
shard count matches its completions; workflow jobs with steps, a shard
matrix of 1..N read back through `strategy.job-total`, a merge job that
needs the shards), and every speedbench command line in it is accepted by
the binary's own argument parser (run with `--help` appended, GitHub
expressions replaced by sample values). ci/slurm.sh runs the Slurm example
on a real one-node cluster instead.

Usage: python3 ci/check-examples.py target/release/speedbench
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/release/speedbench")
SAMPLES = {"matrix.shard": "1", "strategy.job-total": "3"}
failures = []


def fail(where, what):
    failures.append(f"{where}: {what}")


def expression(m):
    name = m.group(1).strip()
    return SAMPLES.get(name, "x")


def commands(script):
    """speedbench argument lists in a shell script (`speedbench ...` or
    `ci/bench.sh ...`, which passes its arguments to `speedbench run`)."""
    script = re.sub(r"\$\{\{\s*([^}]*)\}\}", expression, script)
    script = script.replace("\\\n", " ")
    for line in script.splitlines():
        for part in re.split(r"&&|\|\||;|\|", line):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:
                continue
            for i, w in enumerate(words):
                if w.endswith("ci/bench.sh"):
                    yield ["run"] + stop_at_redirect(words[i + 1:])
                    break
                if w == "speedbench" or w.endswith("/speedbench"):
                    yield stop_at_redirect(words[i + 1:])
                    break


def stop_at_redirect(words):
    out = []
    for w in words:
        if w.startswith(">") or w.startswith("<") or w == "2>&1":
            break
        out.append(w)
    return out


def parses(where, args):
    if not args:
        fail(where, "a speedbench command without a subcommand")
        return
    r = subprocess.run([BIN, *args, "--help"], capture_output=True, text=True)
    if r.returncode != 0:
        first = (r.stderr.strip().splitlines() or ["?"])[0]
        fail(where, f"speedbench {' '.join(args)}: {first}")


def check_indexed_job(path):
    doc = yaml.safe_load(path.read_text())
    where = path.relative_to(ROOT)
    if (doc.get("apiVersion"), doc.get("kind")) != ("batch/v1", "Job"):
        fail(where, "not a batch/v1 Job")
        return
    spec = doc.get("spec", {})
    if spec.get("completionMode") != "Indexed":
        fail(where, "completionMode is not Indexed (no JOB_COMPLETION_INDEX)")
    completions = spec.get("completions")
    if not isinstance(completions, int) or completions < 1:
        fail(where, "completions is not a positive integer")
    pod = spec.get("template", {}).get("spec", {})
    if pod.get("restartPolicy") not in ("Never", "OnFailure"):
        fail(where, "a Job's pods need restartPolicy Never or OnFailure")
    for c in pod.get("containers", []):
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        if env.get("SPEEDBENCH_SHARD_COUNT") != str(completions):
            fail(where, f"SPEEDBENCH_SHARD_COUNT {env.get('SPEEDBENCH_SHARD_COUNT')} != completions {completions}")
        command = c.get("command", [])
        if not command or not command[0].endswith("speedbench"):
            fail(where, "the container does not run speedbench")
        else:
            parses(where, command[1:])
        mounts = {m["name"] for m in c.get("volumeMounts", [])}
        volumes = {v["name"] for v in pod.get("volumes", [])}
        if not mounts <= volumes:
            fail(where, f"volume mounts {sorted(mounts - volumes)} have no volume")


def check_workflow(path, sharded):
    doc = yaml.safe_load(path.read_text())
    where = path.relative_to(ROOT)
    # YAML reads the key `on` as True
    if "on" not in doc and True not in doc:
        fail(where, "no `on` trigger")
    jobs = doc.get("jobs") or {}
    if not jobs:
        fail(where, "no jobs")
    for name, job in jobs.items():
        if "runs-on" not in job:
            fail(where, f"job {name} has no runs-on")
        for need in [job.get("needs")] if isinstance(job.get("needs"), str) else job.get("needs") or []:
            if need not in jobs:
                fail(where, f"job {name} needs {need}, which is not a job")
        steps = job.get("steps") or []
        if not steps:
            fail(where, f"job {name} has no steps")
        for i, step in enumerate(steps):
            if ("run" in step) == ("uses" in step):
                fail(where, f"job {name} step {i + 1}: exactly one of run and uses")
            for args in commands(step.get("run", "")):
                parses(f"{where} job {name}", args)
    if sharded:
        shard = jobs.get("shard", {})
        matrix = shard.get("strategy", {}).get("matrix", {}).get("shard")
        if matrix != list(range(1, len(matrix or []) + 1)):
            fail(where, f"the shard matrix {matrix} is not 1..N")
        runs = " ".join(s.get("run", "") for s in shard.get("steps", []))
        if "--shard ${{ matrix.shard }}/${{ strategy.job-total }}" not in runs:
            fail(where, "the shard job does not pass --shard K/N from the matrix")
        if "shard" not in (jobs.get("merge", {}).get("needs") or []):
            fail(where, "the merge job does not need the shards")


check_indexed_job(ROOT / "ci/shards/k8s-indexed-job.yaml")
check_workflow(ROOT / "ci/shards/github-workflow.yml", sharded=True)
check_workflow(ROOT / "ci/github-workflow.example.yml", sharded=False)
if failures:
    print("\n".join(f"ci/check-examples.py: {f}" for f in failures), file=sys.stderr)
    sys.exit(1)
print("ci/check-examples.py: the Kubernetes Job and both GitHub workflows check out")
