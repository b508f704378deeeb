//! Nothing measured is lost: a killed parent leaves every finished cell
//! readable, a crashing worker costs one process, Ctrl-C saves and exits
//! 130, and --resume finishes the run.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::speedbench;
use speedbench::record::RunFile;

fn spawn(out: &Path, models: &[&str], iters: &str, env: Option<(&str, &str)>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_speedbench"));
    cmd.current_dir(common::repo())
        .args([
            "run",
            "--framework",
            "ort",
            "--profile",
            "smoke",
            "--warmup",
            "1",
            "--iters",
            iters,
        ])
        .args(["--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    for m in models {
        cmd.args(["--model", m]);
    }
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn results_file(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
}

/// Waits until the results file holds at least `n` cells.
fn wait_for_cells(dir: &Path, n: usize) -> RunFile {
    let start = Instant::now();
    loop {
        if let Some(p) = results_file(dir) {
            if let Ok(f) = RunFile::load(&p) {
                if f.cells.len() >= n {
                    return f;
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no cells after 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A run of `models` with endless iterations, returned once its first
/// worker is timing (loading and calibrating its session takes long on a
/// loaded machine).
fn spawn_timing(out: &Path, models: &[&str]) -> Child {
    let marker = out.join("timing-started");
    let child = spawn(
        out,
        models,
        "100000",
        Some(("SPEEDBENCH_TEST_TIMING", marker.to_str().unwrap())),
    );
    let start = Instant::now();
    while !marker.exists() && start.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(marker.exists(), "the first worker never started timing");
    child
}

#[test]
fn sigkill_of_the_parent_keeps_every_finished_cell() {
    let t = tempfile::tempdir().unwrap();
    let mut child = spawn(
        t.path(),
        &["resnet50", "scalenet50", "se_resnet50"],
        "50",
        None,
    );
    let before = wait_for_cells(t.path(), 2);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let after = RunFile::load(&results_file(t.path()).unwrap()).unwrap();
    assert!(after.cells.len() >= before.cells.len());
    assert!(after.finished.is_none(), "the run did not finish");
    for c in &after.cells {
        assert_eq!(c.samples_ms.len(), 50, "{} {}", c.model, c.mode);
    }
    assert_eq!(after.cells[0].model, "resnet50");
}

#[test]
fn a_crashing_worker_costs_one_cell_and_is_recorded() {
    let t = tempfile::tempdir().unwrap();
    let mut child = spawn(
        t.path(),
        &["resnet50", "se_resnet50", "resnext50"],
        "2",
        Some(("SPEEDBENCH_TEST_CRASH", "se_resnet50")),
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "some cells failed");
    let f = RunFile::load(&results_file(t.path()).unwrap()).unwrap();
    let models: Vec<&str> = f.cells.iter().map(|c| c.model.as_str()).collect();
    assert_eq!(models, ["resnet50", "resnet50", "resnext50", "resnext50"]);
    // one process per cell, each of se_resnet50's two crashed
    assert_eq!(f.failures.len(), 2);
    for fail in &f.failures {
        assert_eq!(
            (fail.model.as_str(), fail.process),
            ("se_resnet50", Some(0))
        );
        assert!(fail.cause.contains("signal 6 (abort)"), "{}", fail.cause);
    }
    assert_ne!(f.failures[0].mode, f.failures[1].mode);
    assert!(f.finished.is_some());
}

#[test]
fn ctrl_c_saves_what_is_done_exits_130_and_resume_finishes() {
    let t = tempfile::tempdir().unwrap();
    // wait until the first worker is timing, then interrupt the group
    let mut child = spawn_timing(t.path(), &["resnet50", "se_resnet50"]);
    std::thread::sleep(Duration::from_secs(2));
    let pgid = format!("-{}", child.id());
    let kill = Command::new("kill")
        .args(["-INT", "--", &pgid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let path = results_file(t.path()).unwrap();
    let partial = RunFile::load(&path).unwrap();
    // the group in flight: resnet50's two modes, timed in lock-step
    assert_eq!(partial.cells.len(), 2, "the group in flight");
    for c in &partial.cells {
        assert_eq!(c.model, partial.cells[0].model);
        assert!(c.interrupted && c.processes[0].interrupted);
        assert!(!c.samples_ms.is_empty() && c.samples_ms.len() < 100000);
        // one pass each per round, in the same rounds
        assert_eq!(c.rounds().map(<[usize]>::len), Some(c.samples_ms.len()));
    }
    let rounds = |c: &speedbench::record::CellRecord| c.samples_ms.len();
    assert!(rounds(&partial.cells[0]).abs_diff(rounds(&partial.cells[1])) <= 1);
    // --resume redoes the interrupted cell with the original plan: shorten
    // it by editing the plan, as a user would not, to keep the test quick.
    let mut f = partial.clone();
    f.plan.iters = 2;
    f.save(&path).unwrap();
    // a redo that crashes keeps the interrupted process's samples
    let crashed = Command::new(env!("CARGO_BIN_EXE_speedbench"))
        .args(["run", "--resume", path.to_str().unwrap()])
        .env("SPEEDBENCH_TEST_CRASH", partial.cells[0].model.as_str())
        .output()
        .unwrap();
    assert_eq!(crashed.status.code(), Some(1));
    let kept = RunFile::load(&path).unwrap();
    let same = kept
        .cells
        .iter()
        .find(|c| c.mode == partial.cells[0].mode && c.model == partial.cells[0].model);
    assert_eq!(
        same.map(|c| &c.samples_ms),
        Some(&partial.cells[0].samples_ms)
    );
    assert!(kept
        .failures
        .iter()
        .any(|f| f.model == partial.cells[0].model));
    let out = speedbench(&["run", "--resume", path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let done = RunFile::load(&path).unwrap();
    assert!(done.finished.is_some());
    let models: Vec<&str> = done.cells.iter().map(|c| c.model.as_str()).collect();
    assert_eq!(
        models,
        ["resnet50", "resnet50", "se_resnet50", "se_resnet50"]
    );
    assert!(done
        .cells
        .iter()
        .all(|c| !c.interrupted && c.samples_ms.len() == 2));
}

#[test]
fn resume_refuses_unreadable_files() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("r.json");
    std::fs::write(&p, "{\"schema_version\": 99}").unwrap();
    let out = speedbench(&["run", "--resume", p.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("schema_version 99 is newer"),
        "{}",
        out.stderr
    );
    std::fs::write(&p, "{\"schema_ver").unwrap();
    let out = speedbench(&["run", "--resume", p.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("not a results JSON file"),
        "{}",
        out.stderr
    );
}

/// The worker processes of `parent`, from /proc.
fn children(parent: u32) -> Vec<u32> {
    let task = format!("/proc/{parent}/task/{parent}/children");
    std::fs::read_to_string(task)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Whether `pid` still runs (a zombie waiting to be reaped does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

#[test]
fn a_killed_run_takes_its_worker_with_it() {
    let t = tempfile::tempdir().unwrap();
    let mut child = spawn_timing(t.path(), &["resnet50"]);
    let workers = children(child.id());
    // SIGKILL to the parent alone, not its process group (before any
    // assertion, so that a failing test leaves no run behind)
    child.kill().unwrap();
    child.wait().unwrap();
    // the group's two modes time in lock-step, each in its own process
    assert_eq!(workers.len(), 2, "two workers time");
    let start = Instant::now();
    while workers.iter().any(|&w| alive(w)) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !workers.iter().any(|&w| alive(w)),
        "a worker outlived its parent"
    );
}

/// Runs `script` in a mount namespace of its own with a tmpfs of `size` at
/// DIR (`$1`); `None` where this machine cannot (no root, no unshare).
fn on_a_small_disk(size: &str, script: &str) -> Option<(std::process::Output, Vec<String>)> {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("disk");
    std::fs::create_dir(&dir).unwrap();
    let list = t.path().join("files");
    let full = format!(
        "mount -t tmpfs -o size={size} tmpfs \"$1\" || exit 99; {script}; rc=$?; ls -A \"$1\" > \"$2\"; exit $rc"
    );
    let out = Command::new("unshare")
        .args(["--mount", "sh", "-c", &full, "sh"])
        .arg(&dir)
        .arg(&list)
        .env("SB", env!("CARGO_BIN_EXE_speedbench"))
        .current_dir(common::repo())
        .output()
        .ok()?;
    if out.status.code() == Some(99) || !list.exists() {
        eprintln!(
            "skipped: cannot mount a tmpfs here: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let files = std::fs::read_to_string(list).unwrap();
    Some((out, files.lines().map(String::from).collect()))
}

#[test]
fn a_full_disk_leaves_no_empty_or_temporary_file() {
    let run = "$SB run --profile smoke --framework ort --model resnet50 --model se_resnet50 --warmup 1 --iters 2 --out \"$1\"";
    // full before the run's file is first written, or before its first
    // cell is: no file under a results name, no temporary file
    for fill in ["head -c 7800 /dev/zero > \"$1/fill\"", "true"] {
        let Some((out, files)) = on_a_small_disk("8k", &format!("{fill}; {run}")) else {
            return;
        };
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("No space left on device"), "{err}");
        let files: Vec<&String> = files.iter().filter(|f| *f != "fill").collect();
        assert!(files.is_empty(), "{fill}: {files:?}");
    }
    // room for a few saves (the first group: resnet50's two modes), not
    // all: what was saved stays, readable
    let Some((out, files)) = on_a_small_disk("128k", run) else {
        return;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("holds what was saved before"), "{err}");
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with(".json"), "{files:?}");
}
