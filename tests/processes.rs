//! One session per worker process, R processes per cell: the order of the
//! processes (balanced, seeded, resumable), the schedule the first process
//! of a parallel cell chose and the others reuse, and the busy-machine
//! guard with a real CPU hog beside a run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::speedbench;
use speedbench::bench::order::{model_seed, order};
use speedbench::record::{Mode, RunFile};

/// `speedbench run` of the smoke profile's ort ResNet-50 into `out`, with
/// `extra`, whatever its outcome.
fn run_args(out: &Path, extra: &[&str]) -> common::Out {
    let mut args = vec![
        "run",
        "--profile",
        "smoke",
        "--framework",
        "ort",
        "--model",
        "resnet50",
        "--warmup",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    speedbench(&args)
}

/// [`run_args`], which must succeed: its output and results file.
fn run(out: &Path, extra: &[&str]) -> (common::Out, PathBuf) {
    let o = run_args(out, extra);
    assert!(o.code == 0, "{}", o.stderr);
    let path = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("results: "))
        .map(PathBuf::from)
        .expect("a results line");
    (o, path)
}

#[test]
fn each_cell_runs_in_its_own_processes_in_the_recorded_order_and_reuses_its_schedule() {
    let t = tempfile::tempdir().unwrap();
    let (o, path) = run(
        t.path(),
        &["--processes", "3", "--iters", "7", "--order-seed", "5"],
    );
    // stderr is not a terminal: one line per finished process, the time
    // left on each but the last
    let lines: Vec<&str> = o.stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(lines.len(), 6, "{}", o.stderr);
    for (i, l) in lines.iter().enumerate() {
        assert!(
            l.starts_with(&format!("[{}/6] resnet50 ort ", i + 1)),
            "{l}"
        );
        assert!(
            l.contains(": median ") && l.contains(" ms (") && l.contains("; elapsed "),
            "{l}"
        );
        assert_eq!(l.contains(" left"), i < 5, "{l}");
    }
    let f = RunFile::load(&path).unwrap();
    assert_eq!((f.plan.processes, f.plan.order_seed), (3, 5));
    assert_eq!(f.cells.len(), 2);
    // the plan's cells are (ort, default, sequential) and (ort, default,
    // parallel): their slots are the recorded order's
    let expected = order(&[2], 3, model_seed(5, 0));
    // this seed runs the parallel cell first; the file keeps the plan's order
    assert_eq!(expected[0].cell, 1);
    let modes: Vec<Mode> = f.cells.iter().map(|c| c.mode).collect();
    assert_eq!(modes, [Mode::Sequential, Mode::Parallel]);
    for (i, mode) in [Mode::Sequential, Mode::Parallel].into_iter().enumerate() {
        let c = f.cells.iter().find(|c| c.mode == mode).unwrap();
        let idx: Vec<usize> = c.processes.iter().map(|p| p.index).collect();
        assert_eq!(idx, [0, 1, 2], "{mode}");
        let slots: Vec<usize> = c.processes.iter().map(|p| p.slot).collect();
        let want: Vec<usize> = expected
            .iter()
            .enumerate()
            .filter(|(_, u)| u.cell == i)
            .map(|(s, _)| s)
            .collect();
        assert_eq!(slots, want, "{mode}");
        // 7 iterations shared out 3, 2, 2, every sample with its process
        assert_eq!(c.sample_process, [0, 0, 0, 1, 1, 2, 2]);
        assert_eq!(c.samples_ms.len(), 7);
        assert_eq!(c.latency.processes, 3);
        assert!(c.latency.between_cv.is_some());
        assert!(c.processes.iter().all(|p| p.load.is_some()));
        // one traced pass, by the first process
        assert!(c.trace.is_some(), "{mode}");
    }
    // the parallel cell's first process calibrated the schedule; the
    // others ran the one it stored
    let par = f.cells.iter().find(|c| c.mode == Mode::Parallel).unwrap();
    let calibrated: Vec<bool> = par.processes.iter().map(|p| p.calibrated).collect();
    assert_eq!(calibrated, [true, false, false]);
    let s = par.schedule.as_ref().expect("the parallel cell's schedule");
    assert!(!s.ran.is_empty(), "{s:?}");
    let seq = f.cells.iter().find(|c| c.mode == Mode::Sequential).unwrap();
    assert!(seq.processes.iter().all(|p| !p.calibrated));
}

/// An A/A repeat times what its original times: its parallel cell runs
/// the schedule the original's first process calibrated (handed over in
/// the same lock-step group), never one of its own.
#[test]
fn a_repeat_runs_its_originals_schedule() {
    let t = tempfile::tempdir().unwrap();
    let (_, path) = run(
        t.path(),
        &[
            "--framework",
            "ort",
            "--mode",
            "parallel",
            "--processes",
            "2",
            "--iters",
            "4",
            "--quiet",
        ],
    );
    let f = RunFile::load(&path).unwrap();
    let cell = |fw: &str| f.cells.iter().find(|c| c.framework == fw).unwrap();
    let (a, b) = (cell("ort"), cell("ort#2"));
    let calibrated = |c: &speedbench::record::CellRecord| -> Vec<bool> {
        c.processes.iter().map(|p| p.calibrated).collect()
    };
    assert_eq!(calibrated(a), [true, false]);
    assert_eq!(calibrated(b), [false, false]);
    let s = a.schedule.as_ref().expect("the original's schedule");
    assert_eq!(b.schedule.as_ref(), Some(s));
}

/// `--schedules-from` an earlier run: every process of the parallel cell
/// runs the schedule that run chose, none calibrates, and the report says
/// so; a file of sequential cells holds none and is refused before
/// anything is timed.
#[test]
fn a_run_holds_the_schedule_an_earlier_run_chose() {
    let t = tempfile::tempdir().unwrap();
    let first = t.path().join("first");
    let (_, earlier) = run(&first, &["--iters", "2", "--quiet"]);
    let earlier_file = RunFile::load(&earlier).unwrap();
    let chose = earlier_file
        .cells
        .iter()
        .find(|c| c.mode == Mode::Parallel)
        .and_then(|c| c.schedule.clone())
        .expect("the earlier run's schedule");
    assert!(!chose.ran.is_empty());
    let second = t.path().join("second");
    // two earlier runs in the results folder, their speedups 2% apart
    std::fs::create_dir_all(&second).unwrap();
    for (i, scale) in [0.98, 1.02].into_iter().enumerate() {
        let text = std::fs::read_to_string(&earlier).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["started"] = format!("2000-01-01T00:0{i}:00+00:00").into();
        for c in v["cells"].as_array_mut().unwrap() {
            if c["mode"] == "sequential" {
                for s in c["samples_ms"].as_array_mut().unwrap() {
                    *s = (s.as_f64().unwrap() * scale).into();
                }
            }
        }
        std::fs::write(second.join(format!("earlier-{i}.json")), v.to_string()).unwrap();
    }
    let (o, path) = run(
        &second,
        &[
            "--processes",
            "2",
            "--iters",
            "4",
            "--schedules-from",
            earlier.to_str().unwrap(),
        ],
    );
    assert!(
        o.stderr.contains(&format!(
            "schedules from {}: 1 parallel cell(s) run the schedule it chose",
            earlier.display()
        )),
        "{}",
        o.stderr
    );
    let f = RunFile::load(&path).unwrap();
    assert_eq!(f.plan.schedules_from.as_deref(), Some(earlier.as_path()));
    assert_eq!(f.plan.schedules.len(), 1);
    let par = f.cells.iter().find(|c| c.mode == Mode::Parallel).unwrap();
    assert_eq!(par.processes.len(), 2);
    assert!(par.processes.iter().all(|p| !p.calibrated));
    assert_eq!(par.schedule.as_ref().map(|s| &s.ran), Some(&chose.ran));
    let md = std::fs::read_to_string(path.with_extension("md")).unwrap();
    assert!(
        md.contains(&format!(
            "Schedules held: 1 parallel cell(s) ran the schedule chosen in {}",
            earlier.display()
        )),
        "{md}"
    );
    // the speedup pooled with the folder's earlier runs of its schedule,
    // printed and in the markdown
    for text in [&o.stdout, &md] {
        assert!(text.contains("Across runs: each speedup"), "{text}");
        assert!(
            text.contains("only runs that ran the same schedule are pooled"),
            "{text}"
        );
    }
    // sequential cells only: nothing to hold, nothing written
    let third = t.path().join("third");
    let (_, seq_only) = run(&third, &["--mode", "sequential", "--iters", "1", "--quiet"]);
    let fourth = t.path().join("fourth");
    let o = run_args(&fourth, &["--schedules-from", seq_only.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("holds no schedule for this run's parallel cells"),
        "{}",
        o.stderr
    );
    assert!(!fourth.exists());
}

#[test]
fn resume_redoes_only_the_missing_process_in_its_place() {
    let t = tempfile::tempdir().unwrap();
    let (o, path) = run(
        t.path(),
        &[
            "--processes",
            "2",
            "--iters",
            "4",
            "--mode",
            "sequential",
            "--order-seed",
            "1",
            "--quiet",
        ],
    );
    assert!(
        !o.stderr.lines().any(|l| l.starts_with('[')),
        "{}",
        o.stderr
    );
    let done = RunFile::load(&path).unwrap();
    let mut f = done.clone();
    // as if the run had stopped during the second process
    let c = &mut f.cells[0];
    c.drop_process(1);
    assert_eq!((c.samples_ms.len(), c.processes.len()), (2, 1));
    f.finished = None;
    f.save(&path).unwrap();
    let o = speedbench(&["run", "--resume", path.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let again = RunFile::load(&path).unwrap();
    let (a, b) = (&done.cells[0], &again.cells[0]);
    // process 0 kept as it was, process 1 timed again in its slot
    assert_eq!(a.samples_ms[..2], b.samples_ms[..2]);
    assert_eq!(b.sample_process, [0, 0, 1, 1]);
    assert_eq!(a.processes[1].slot, b.processes[1].slot);
    assert_eq!(b.processes[0], a.processes[0]);
    assert!(again.finished.is_some());
}

/// One core kept busy by a shell loop, for as long as the guard lives.
struct Hog(Child);

impl Hog {
    fn start() -> Hog {
        Hog(Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap())
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_cpu_hog_beside_a_run_marks_its_cells_busy_and_compare_inconclusive() {
    let t = tempfile::tempdir().unwrap();
    let hog = Hog::start();
    let (o, path) = run(
        t.path(),
        &["--mode", "sequential", "--iters", "30", "--wide"],
    );
    drop(hog);
    let f = RunFile::load(&path).unwrap();
    let c = &f.cells[0];
    assert!(c.busy(), "{:?}", c.processes);
    assert!(c.other_cores().unwrap() > 0.5, "{:?}", c.processes);
    assert!(
        o.stderr
            .contains("warning: busy machine: other processes took CPU")
            && o.stderr.contains("while resnet50 ort sequential ("),
        "{}",
        o.stderr
    );
    // the busy mark beside the median, and its note
    assert!(o.stdout.contains(&format!("{:.2}", c.latency.median)));
    assert!(o.stdout.contains("! busy machine"), "{}", o.stdout);
    let cmp = speedbench(&[
        "compare",
        path.to_str().unwrap(),
        path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(cmp.code, 0, "{}", cmp.stderr);
    assert!(
        cmp.stdout.contains("\"verdict\": \"inconclusive\""),
        "{}",
        cmp.stdout
    );
}

/// What a cell records as its threads is what ran: for each framework, the
/// intra-op threads asked for in sequential mode and the threads that were
/// on a CPU while it timed (libtorch's and ONNX Runtime's pools are the
/// calling thread and intra - 1 helpers; TensorFlow's inter-op thread may
/// run beside its intra-op pool).
#[test]
fn each_framework_runs_its_sequential_pass_on_the_threads_it_records() {
    let t = tempfile::tempdir().unwrap();
    for intra in [1usize, 2] {
        let config = t.path().join(format!("threads{intra}.toml"));
        std::fs::write(&config, format!("[threads]\nintra = {intra}\ninter = 1\n")).unwrap();
        let out = t.path().join(format!("out{intra}"));
        let o = speedbench(&[
            "run",
            "--profile",
            "smoke",
            "--model",
            "resnet50",
            "--mode",
            "sequential",
            "--framework",
            "ort",
            "--framework",
            "torch",
            "--framework",
            "tf",
            "--iters",
            "20",
            "--warmup",
            "1",
            "--processes",
            "1",
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.code == 0, "{}", o.stderr);
        let path = o
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("results: "))
            .unwrap();
        let f = RunFile::load(Path::new(path)).unwrap();
        assert_eq!(f.cells.len(), 3);
        for c in &f.cells {
            let ran = c.processes[0]
                .threads_ran
                .expect("/proc/self/task is readable");
            let what = format!("{} at intra {intra}: {ran} ran", c.framework);
            assert_eq!(c.intra_threads, intra, "{what}");
            if c.framework == "tf" {
                assert!((intra..=intra + 2).contains(&ran), "{what}");
            } else {
                assert_eq!(ran, intra, "{what}");
            }
        }
    }
}
