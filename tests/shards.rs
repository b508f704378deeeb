//! `run --shard K/N` and `merge`: three shards of a smoke matrix, each in its
//! own process, merge into exactly the cells of the unsharded run, none in
//! two shards, their expected costs balanced; a resumed shard stays in its
//! slice; bad values and duplicate cells fail with one line.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cell, fails_with, run_file, speedbench, Out};
use speedbench::compare::CellKey;
use speedbench::record::{Mode, RunFile, Shard};

/// A small smoke matrix: two frameworks (ONNX Runtime as it schedules, and
/// speedbench's own schedule over ORT sessions) x two models x both modes,
/// one timed iteration: four workers in a few seconds each.
const MATRIX: &[&str] = &[
    "run",
    "--profile",
    "smoke",
    "--framework",
    "ort",
    "--framework",
    "ort-own",
    "--model",
    "resnet50",
    "--model",
    "scalenet50",
    "--mode",
    "both",
    "--warmup",
    "0",
    "--iters",
    "1",
];

/// `speedbench` with `args` and the environment `env` added.
fn speedbench_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_speedbench"));
    cmd.current_dir(common::repo()).args(args);
    // the test runner's own environment must not pick a shard
    for k in [
        "SLURM_ARRAY_TASK_ID",
        "JOB_COMPLETION_INDEX",
        "SPEEDBENCH_SHARD_COUNT",
    ] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("the speedbench binary runs");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `args` plus `--out out`; the results file it printed.
fn run(args: &[&str], out: &Path, env: &[(&str, &str)]) -> (PathBuf, Out) {
    let mut all = args.to_vec();
    all.extend(["--out", out.to_str().unwrap()]);
    let o = speedbench_env(&all, env);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let path = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("results: "))
        .unwrap_or_else(|| panic!("no results line: {}", o.stdout));
    (PathBuf::from(path), o)
}

fn keys(f: &RunFile) -> BTreeSet<CellKey> {
    f.cells.iter().map(CellKey::of).collect()
}

/// Expected cost of each worker (model, framework) from its cells: MACs x
/// batch x (warm-up + timed iterations), summed over its modes and levels.
fn worker_costs(f: &RunFile) -> BTreeMap<(String, String), u128> {
    let mut costs = BTreeMap::new();
    for c in &f.cells {
        *costs
            .entry((c.model.clone(), c.framework.clone()))
            .or_insert(0) += u128::from(c.macs) * (c.batch * (c.warmup + c.iters)) as u128;
    }
    costs
}

/// The largest shard of the best assignment of `costs` to `n` shards.
fn optimum(costs: &[u128], n: usize) -> u128 {
    let mut best = u128::MAX;
    for code in 0..n.pow(costs.len() as u32) {
        let mut load = vec![0u128; n];
        let mut c = code;
        for cost in costs {
            load[c % n] += cost;
            c /= n;
        }
        best = best.min(*load.iter().max().unwrap());
    }
    best
}

/// How a shard process learns its shard: flags, environment, and what its
/// line must say it came from.
type Pickup<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn three_shards_merge_into_the_unsharded_run() {
    let t = tempfile::tempdir().unwrap();
    let (whole, _) = run(MATRIX, &t.path().join("whole"), &[]);
    let whole = RunFile::load(&whole).unwrap();
    assert_eq!(whole.cells.len(), 8, "2 models x 2 frameworks x 2 modes");
    assert!(whole.plan.shard.is_none() && whole.cells.iter().all(|c| c.shard.is_none()));
    // every shard in its own process: the flag, a Slurm array task counted
    // from its minimum, an Indexed Job's 0-based index
    let shards_dir = t.path().join("shards");
    let pickups: [Pickup; 3] = [
        (&["--shard", "1/3"], &[], "(from --shard)"),
        (
            &[],
            &[
                ("SLURM_ARRAY_TASK_ID", "8"),
                ("SLURM_ARRAY_TASK_MIN", "7"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
            ],
            "SLURM_ARRAY_TASK_ID=8",
        ),
        (
            &["--shard-count", "3"],
            &[("JOB_COMPLETION_INDEX", "2")],
            "JOB_COMPLETION_INDEX=2",
        ),
    ];
    let mut paths = vec![];
    let mut shards = vec![];
    for (k, (flags, env, source)) in pickups.iter().enumerate() {
        let args: Vec<&str> = MATRIX.iter().chain(flags.iter()).copied().collect();
        let (path, out) = run(&args, &shards_dir, env);
        let line = format!("shard {}/3 ", k + 1);
        let said: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with(&line))
            .collect();
        assert_eq!(said.len(), 1, "{}", out.stderr);
        assert!(said[0].contains(source), "{}", said[0]);
        let file = RunFile::load(&path).unwrap();
        let plan = file.plan.shard.clone().expect("the plan records its shard");
        assert_eq!(
            plan.shard,
            Shard {
                index: k + 1,
                count: 3
            }
        );
        assert!(file.cells.iter().all(|c| c.shard == Some(plan.shard)));
        assert!(file.cells.iter().all(|c| c.env.as_ref() == Some(&file.env)));
        paths.push(path);
        shards.push(file);
    }
    // no cell in two shards, and the shards' workers cut the run's in three
    let mut owner: BTreeMap<CellKey, usize> = BTreeMap::new();
    for (k, f) in shards.iter().enumerate() {
        for key in keys(f) {
            assert_eq!(owner.insert(key.clone(), k), None, "{key} in two shards");
        }
    }
    let workers: Vec<(String, String)> = shards
        .iter()
        .flat_map(|f| f.plan.shard.as_ref().unwrap().workers.clone())
        .collect();
    assert_eq!(workers.len(), 4);
    assert_eq!(
        workers.iter().collect::<BTreeSet<_>>(),
        worker_costs(&whole).keys().collect::<BTreeSet<_>>()
    );
    // balanced by expected cost: within LPT's bound of the best partition
    let costs = worker_costs(&whole);
    let loads: Vec<u128> = shards
        .iter()
        .map(|f| {
            let plan = f.plan.shard.as_ref().unwrap();
            plan.workers.iter().map(|w| costs[w]).sum()
        })
        .collect();
    let opt = optimum(&costs.values().copied().collect::<Vec<_>>(), 3);
    let max = *loads.iter().max().unwrap();
    assert!(max * 9 <= 11 * opt, "{loads:?} vs optimum {opt}");
    // merged: exactly the unsharded run's cells, each with its shard
    let all = t.path().join("merged/ALL.json");
    let mut args = vec!["merge"];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--out", all.to_str().unwrap()]);
    let out = speedbench(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("results: {}", all.display())),
        "{}",
        out.stdout
    );
    let merged = RunFile::load(&all).unwrap();
    assert_eq!(keys(&merged), keys(&whole));
    assert_eq!(merged.cells.len(), whole.cells.len());
    for c in &merged.cells {
        let k = owner[&CellKey::of(c)];
        assert_eq!(c.shard.map(|s| s.index), Some(k + 1));
        assert!(c.env.is_some());
    }
    assert!(merged.plan.shard.is_none());
    assert_eq!(merged.merged_from.len(), 3);
    for ext in ["csv", "md", "svg"] {
        assert!(all.with_extension(ext).is_file(), "no .{ext} beside it");
    }
    // a second merge onto the same file is refused unless forced
    let again = speedbench(&args);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(
        again.stderr.contains("--out") && again.stderr.contains("exists; give --force"),
        "{}",
        again.stderr
    );
    assert_eq!(RunFile::load(&all).unwrap(), merged);
    args.push("--force");
    assert_eq!(speedbench(&args).code, 0);
    // report and compare read it like any other results file
    let out = speedbench(&["report", all.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1 + 8, "{}", out.stdout);
    let whole_path = t.path().join("whole.json");
    whole.save(&whole_path).unwrap();
    let out = speedbench(&[
        "compare",
        whole_path.to_str().unwrap(),
        all.to_str().unwrap(),
    ]);
    assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
    assert!(!out.stdout.contains("Only in"), "{}", out.stdout);
}

#[test]
fn a_resumed_shard_measures_only_its_own_workers() {
    let t = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "--profile",
        "smoke",
        "--framework",
        "ort",
        "--model",
        "resnet50",
        "--model",
        "scalenet50",
        "--mode",
        "sequential",
        "--warmup",
        "0",
        "--iters",
        "1",
        "--shard",
        "1/2",
    ];
    let (path, _) = run(&args, t.path(), &[]);
    let done = RunFile::load(&path).unwrap();
    let workers = done.plan.shard.as_ref().unwrap().workers.clone();
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert_eq!(done.cells.len(), 1);
    // as if interrupted before its worker finished
    let mut cut = done.clone();
    cut.cells.clear();
    cut.finished = None;
    cut.save(&path).unwrap();
    let out = speedbench_env(&["run", "--resume", path.to_str().unwrap()], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("shard 1/2 (kept from the resumed file"),
        "{}",
        out.stderr
    );
    let resumed = RunFile::load(&path).unwrap();
    assert_eq!(resumed.plan, done.plan);
    assert_eq!(keys(&resumed), keys(&done));
    assert!(resumed.finished.is_some());
    assert!(resumed
        .cells
        .iter()
        .all(|c| c.shard == Some(Shard { index: 1, count: 2 })));
    // a shard flag beside --resume is refused
    let out = speedbench_env(
        &["run", "--resume", path.to_str().unwrap(), "--shard", "2/2"],
        &[],
    );
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("--shard"), "{}", out.stderr);
}

#[test]
fn bad_shards_fail_with_one_line_naming_the_flag() {
    for bad in ["3/2", "0/3", "2", "a/b", "1/0"] {
        let out = speedbench_env(&["run", "--profile", "smoke", "--shard", bad], &[]);
        fails_with(
            &out,
            &[&format!(
                "--shard: expected K/N with 1 <= K <= N, got '{bad}'"
            )],
        );
    }
    let out = speedbench_env(&["run", "--profile", "smoke", "--shard-count", "3"], &[]);
    fails_with(&out, &["--shard-count", "JOB_COMPLETION_INDEX"]);
    let out = speedbench_env(
        &["run", "--profile", "smoke"],
        &[("JOB_COMPLETION_INDEX", "1")],
    );
    fails_with(&out, &["JOB_COMPLETION_INDEX=1", "--shard-count"]);
    let out = speedbench_env(
        &["run", "--profile", "smoke"],
        &[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ],
    );
    fails_with(&out, &["SLURM_ARRAY_TASK_ID=4", "--shard K/N"]);
}

#[test]
fn merging_a_cell_twice_is_refused_naming_both_files() {
    let t = tempfile::tempdir().unwrap();
    let s = || vec![10.0, 11.0, 12.0];
    let write = |name: &str, cells| {
        let p = t.path().join(name);
        run_file(cells).save(&p).unwrap();
        p.to_str().unwrap().to_string()
    };
    let a = write(
        "a.json",
        vec![
            cell("resnet50", "ort", Mode::Sequential, 1, s()),
            cell("resnet50", "ort", Mode::Parallel, 1, s()),
        ],
    );
    let b = write(
        "b.json",
        vec![cell("resnet50", "ort", Mode::Parallel, 1, s())],
    );
    let out_path = t.path().join("all.json");
    let out = speedbench(&["merge", &a, &b, "--out", out_path.to_str().unwrap()]);
    fails_with(
        &out,
        &["merge:", "resnet50 ort cpu parallel b1 128px", &a, &b],
    );
    assert!(!out_path.exists());
    // a .json output only: the CSV, markdown and SVG go beside it
    let out = speedbench(&[
        "merge",
        &a,
        "--out",
        t.path().join("all.csv").to_str().unwrap(),
    ]);
    fails_with(&out, &["--out", ".json"]);
}

#[test]
fn merged_files_from_before_shards_keep_each_machine() {
    let t = tempfile::tempdir().unwrap();
    let s = || vec![10.0, 11.0, 12.0];
    // two machines' files as older versions wrote them: no shard, no
    // environment per cell
    let mut a = run_file(vec![cell("resnet50", "ort", Mode::Sequential, 1, s())]);
    a.env.host = "alpha".into();
    a.env.gpu = Some("GPU A (driver 1)".into());
    let mut b = run_file(vec![cell("resnet50", "torch", Mode::Sequential, 1, s())]);
    b.env.host = "beta".into();
    b.cells[0].host = "beta".into();
    b.cells[0].framework_version = "2.11.0".into();
    b.plan.frameworks = vec!["torch".into()];
    b.started = "2026-11-25T00:00:00+00:00".into();
    let (pa, pb) = (t.path().join("a.json"), t.path().join("b.json"));
    for (f, p) in [(&a, &pa), (&b, &pb)] {
        let text = serde_json::to_string(f).unwrap();
        assert!(!text.contains("\"shard\"") && !text.contains("\"merged_from\""));
        std::fs::write(p, text).unwrap();
    }
    let all = t.path().join("all.json");
    let out = speedbench(&[
        "merge",
        pa.to_str().unwrap(),
        pb.to_str().unwrap(),
        "--out",
        all.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let m = RunFile::load(&all).unwrap();
    assert_eq!(m.cells.len(), 2);
    let env = |i: usize| m.cells[i].env.clone().unwrap();
    assert_eq!(
        (env(0).host, env(0).gpu),
        ("alpha".into(), Some("GPU A (driver 1)".into()))
    );
    assert_eq!((env(1).host, env(1).gpu), ("beta".into(), None));
    assert_eq!(m.cells[1].host, "beta");
    assert_eq!(m.cells[1].framework_version, "2.11.0");
    assert_eq!(m.plan.frameworks, ["ort", "torch"]);
    assert_eq!(m.started, b.started, "the earliest start");
    let hosts: Vec<&str> = m.merged_from.iter().map(|i| i.host.as_str()).collect();
    assert_eq!(hosts, ["alpha", "beta"]);
    let out = speedbench(&["report", all.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(",beta"), "{}", out.stdout);
}
