//! The parent side of `speedbench run`: one worker process per cell and
//! process, in each model's balanced, shuffled order ([`super::order`]),
//! progress bars, and a results file rewritten atomically after every
//! process so that nothing measured is lost.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::ProgressBar;

use super::progress::{finished, Progress};

use super::order::{model_seed, order};
use super::worker::{Job, Message};
use crate::record::{base_framework, CellRecord, Failure, Mode, RunFile, RunPlan, Setting};
use crate::zoo::Catalog;

const STDERR_TAIL: usize = 20;

enum Event {
    Line(Message),
    Garbage,
    Eof,
}

/// Whether the job is TensorFlow on the CPU, whose kernels (oneDNN's or
/// Eigen's) are chosen as the process loads.
fn is_tf_cpu(job: &Job) -> bool {
    base_framework(&job.framework) == "tf" && job.plan.device == crate::record::Device::Cpu
}

/// `TF_ENABLE_ONEDNN_OPTS` for the worker of a tf CPU job where speedbench
/// sets it (`--optimize max`; [`crate::frameworks::tf_cpu`]).
fn tf_env(job: &Job) -> Option<&'static str> {
    if !is_tf_cpu(job) {
        return None;
    }
    crate::frameworks::tf_cpu::env_for(job.setting.optimize)
        .ok()
        .flatten()
}

/// The CPU path a tf CPU job's worker took.
fn tf_path(job: &Job) -> Option<crate::record::CpuPath> {
    if !is_tf_cpu(job) {
        return None;
    }
    crate::frameworks::tf_cpu::here(job.setting.optimize).ok()
}

/// Runs one job in a child process; a failure comes boxed (it is large).
fn run_worker(job: &Job, timeout: Duration, bar: &ProgressBar) -> Result<CellRecord, Box<Failure>> {
    let fail = |cause: String, tail: Vec<String>| {
        Box::new(Failure {
            model: job.model.clone(),
            framework: job.framework.clone(),
            device: job.plan.device,
            mode: Some(job.mode),
            optimize: Some(job.setting.optimize),
            precision: Some(job.setting.precision),
            batch: Some(job.setting.batch),
            process: Some(job.process),
            cause,
            stderr_tail: tail,
        })
    };
    let exe = std::env::current_exe()
        .map_err(|e| fail(format!("cannot find own executable: {e}"), vec![]))?;
    let mut command = Command::new(exe);
    command
        .arg("worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    dies_with_parent(&mut command);
    if let Some(v) = tf_env(job) {
        command.env(crate::frameworks::tf_cpu::ENV, v);
    }
    let mut child = command
        .spawn()
        .map_err(|e| fail(format!("cannot start worker: {e}"), vec![]))?;
    let sent = match (child.stdin.take(), serde_json::to_vec(job)) {
        (Some(mut stdin), Ok(json)) => stdin.write_all(&json).map_err(|e| e.to_string()),
        (None, _) => Err("no pipe to its stdin".into()),
        (_, Err(e)) => Err(e.to_string()),
    };
    if let Err(e) = sent {
        let _ = child.kill();
        let _ = child.wait();
        return Err(fail(
            format!("cannot send the job to the worker: {e}"),
            vec![],
        ));
    }
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take();
    std::thread::spawn(move || {
        if let Some(out) = stdout {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let ev = match serde_json::from_str::<Message>(&line) {
                    Ok(m) => Event::Line(m),
                    Err(_) => Event::Garbage,
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
        }
        let _ = tx.send(Event::Eof);
    });
    let stderr = child.stderr.take();
    let verbose = job.verbose;
    let tail_thread = std::thread::spawn(move || {
        let mut tail = VecDeque::new();
        if let Some(err) = stderr {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if verbose {
                    eprintln!("{line}");
                }
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
        tail.into_iter().collect::<Vec<_>>()
    });
    let deadline = Instant::now() + timeout;
    let mut cells = None;
    let mut error = None;
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Event::Line(Message::Progress { done, total })) => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
            Ok(Event::Line(Message::Cell(c))) => cells = Some(*c),
            Ok(Event::Line(Message::Error(e))) => error = Some(e),
            Ok(Event::Garbage) => {}
            Ok(Event::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                let _ = child.kill();
                break;
            }
        }
    }
    let status = child.wait();
    let tail = tail_thread.join().unwrap_or_default();
    if timed_out {
        return Err(fail(
            format!("timed out after {} s", timeout.as_secs()),
            tail,
        ));
    }
    if let Some(e) = error {
        return Err(fail(e, tail));
    }
    match (cells, status) {
        (Some(c), Ok(s)) if s.success() => Ok(c),
        (_, Ok(s)) => Err(fail(describe_exit(s), tail)),
        (_, Err(e)) => Err(fail(format!("lost the worker: {e}"), tail)),
    }
}

/// The worker is killed (SIGKILL) when the parent dies, however it dies,
/// so a killed run never leaves a worker timing on its own.
fn dies_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the closure calls only prctl and
    // getppid, both async-signal-safe, and allocates nothing.
    let parent = std::process::id() as libc::pid_t;
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // the parent died before the death signal was armed
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the parent has exited"));
            }
            Ok(())
        });
    }
}

fn describe_exit(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("worker exited with code {c} without a result"),
        (None, Some(sig)) => format!(
            "worker killed by signal {sig}{}",
            match sig {
                6 => " (abort)",
                9 => " (kill; out of memory?)",
                11 => " (segmentation fault)",
                _ => "",
            }
        ),
        _ => "worker ended abnormally".into(),
    }
}

/// Set by Ctrl-C in the parent: stop after the worker in flight.
static STOP: AtomicBool = AtomicBool::new(false);

/// How a run ended.
pub struct Outcome {
    pub path: PathBuf,
    pub file: RunFile,
    /// Ctrl-C stopped the run; what was measured is saved.
    pub interrupted: bool,
}

/// Where a cell stands in the plan: model, framework, level, precision,
/// batch, mode (the order a results file keeps its cells in; the run's
/// order is shuffled).
fn plan_order(plan: &crate::record::RunPlan, c: &CellRecord) -> [usize; 6] {
    fn at<T: PartialEq>(v: &[T], x: &T) -> usize {
        v.iter().position(|y| y == x).unwrap_or(usize::MAX)
    }
    [
        at(&plan.models, &c.model),
        at(&plan.frameworks, &c.framework),
        at(&plan.optimize, &c.optimize),
        at(&plan.precision, &c.precision),
        at(&plan.batch, &c.batch),
        at(&plan.modes, &c.mode),
    ]
}

/// One cell of a model: (framework, setting, mode).
type Cell = (String, Setting, Mode);

/// Saves `file` at `path`. Where it cannot, a file this run created
/// (`fresh`) that still holds no measurement is removed, so a failed run
/// leaves no empty results file behind; one that holds measurements keeps
/// them (the save before this one), and the error says so.
fn save(file: &RunFile, path: &std::path::Path, fresh: bool) -> Result<()> {
    use anyhow::Context;
    let Err(e) = file.save(path) else {
        return Ok(());
    };
    let held = RunFile::load(path).map_or(0, |f| f.cells.len() + f.failures.len());
    if fresh && held == 0 {
        let _ = std::fs::remove_file(path);
        Err(e).context(
            "cannot save the results; nothing had been saved, and the run's file is removed",
        )
    } else {
        Err(e).with_context(|| {
            format!(
                "cannot save the results; {} holds what was saved before (finish with --resume)",
                path.display()
            )
        })
    }
}

/// ` b4` where the run has several batches, else nothing.
fn batch_suffix(plan: &RunPlan, batch: usize) -> String {
    if plan.batch.len() > 1 {
        format!(" b{batch}")
    } else {
        String::new()
    }
}

/// Every worker process of `plan`: each model's cells (the frameworks that
/// run it, at each setting they can run and mode) times the processes of a
/// cell.
pub fn plan_processes(plan: &RunPlan) -> usize {
    let cells: usize = plan
        .models
        .iter()
        .flat_map(|m| plan.frameworks.iter().filter(move |f| plan.runs(m, f)))
        .map(|f| plan.settings(f).len())
        .sum();
    cells * plan.modes.len() * plan.processes.max(1)
}

/// Runs every cell of the file's plan (of its shard, for a shard) in its
/// processes, each model's in their recorded order, skipping the processes
/// the file holds already and saving the file after each. `--resume`
/// passes a file loaded from disk; a fresh run (`fresh`) one from
/// [`crate::results::start`].
pub fn run(
    path: PathBuf,
    mut file: RunFile,
    fresh: bool,
    catalog: &Catalog,
    verbose: bool,
    progress: Progress,
) -> Result<Outcome> {
    if let Err(e) = ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst)) {
        eprintln!(
            "warning: cannot install the Ctrl-C handler ({e}): Ctrl-C will end the run at once, and the process in flight is lost"
        );
    }
    let plan = file.plan.clone();
    for f in &plan.skipped {
        eprintln!("note: framework '{f}' is not built into this binary; skipped");
    }
    // each cell's peak is its precision's: fp32's FMA peak, a reduced
    // precision's own unit, none where the machine has no figure for it
    let peak_of = |p: crate::record::Precision| {
        if p.is_fp32() {
            file.machine_peak.as_ref().map(|m| m.all_gmacs)
        } else {
            file.precision_peaks.get(&p).map(|m| m.all_gmacs)
        }
    };
    let peaks: std::collections::BTreeMap<_, _> =
        plan.precision.iter().map(|&p| (p, peak_of(p))).collect();
    // the best GEMM through each framework, measured by its first worker
    let mut gemm: std::collections::BTreeMap<String, f64> = file
        .cells
        .iter()
        .filter_map(|c| Some((c.framework.clone(), c.gemm_gmacs?)))
        .collect();
    let mut interrupted = false;
    let shard = plan.shard.as_ref().map(|s| s.shard);
    let processes = plan.processes.max(1);
    // every process of the run, less those the file holds (for --resume)
    let started = Instant::now();
    let mut done = 0;
    let held: usize = file.cells.iter().map(|c| c.processes.len()).sum();
    let mut total = plan_processes(&plan).saturating_sub(held);
    'matrix: for (mi, model) in plan.models.iter().enumerate() {
        // the cells compared with each other side by side: a framework's
        // modes at one level, with its A/A repeats
        let mut cells: Vec<Cell> = Vec::new();
        let mut groups: Vec<usize> = Vec::new();
        let ran: Vec<&String> = plan
            .frameworks
            .iter()
            .filter(|f| plan.runs(model, f))
            .collect();
        let mut bases: Vec<&str> = ran.iter().map(|f| base_framework(f)).collect();
        let mut seen = std::collections::BTreeSet::new();
        bases.retain(|b| seen.insert(*b));
        for base in bases {
            for setting in plan.settings(base) {
                let before = cells.len();
                for f in ran.iter().filter(|f| base_framework(f) == base) {
                    cells.extend(plan.modes.iter().map(|&m| ((*f).clone(), setting, m)));
                }
                groups.push(cells.len() - before);
            }
        }
        // a cell whose process failed runs no more processes in this run
        let mut failed = vec![false; cells.len()];
        let units = order(&groups, processes, model_seed(plan.order_seed, mi));
        for (slot, unit) in units.into_iter().enumerate() {
            let (framework, setting, mode) = &cells[unit.cell];
            let is = |c: &CellRecord| {
                &c.model == model
                    && &c.framework == framework
                    && c.mode == *mode
                    && c.setting() == *setting
            };
            if file
                .cells
                .iter()
                .any(|c| is(c) && c.has_process(unit.process))
            {
                continue;
            }
            if failed[unit.cell] {
                total = total.saturating_sub(1);
                continue;
            }
            if STOP.load(Ordering::SeqCst) {
                interrupted = true;
                break 'matrix;
            }
            // A failure of the cell is tried again (and replaced by this
            // try's outcome).
            file.failures
                .retain(|f| !f.is_of(model, framework, *mode, *setting));
            let earlier = file.cells.iter().find(|c| is(c));
            let job = Job {
                model: model.clone(),
                framework: framework.clone(),
                mode: *mode,
                setting: *setting,
                process: unit.process,
                slot,
                plan: plan.clone(),
                models_dir: catalog.dir.clone(),
                verbose,
                gemm_gmacs: gemm.get(framework).copied(),
                schedule: earlier.and_then(|c| c.schedule.clone()),
                trace: earlier.is_none_or(|c| c.trace.is_none()),
            };
            let what = format!(
                "{model} {framework} {mode}{}{} {}/{processes}",
                batch_suffix(&plan, setting.batch),
                crate::record::setting_suffix(setting.optimize, setting.precision),
                unit.process + 1
            );
            let steps = (plan.warmup + plan.iters_of(unit.process)) as u64;
            let bar = progress.bar(steps, what.clone());
            let took = Instant::now();
            let outcome = run_worker(&job, Duration::from_secs(plan.timeout_s), &bar);
            done += 1;
            match outcome {
                Ok(mut part) => {
                    bar.finish();
                    progress.line(|| {
                        let median = crate::record::stats::median(&part.samples_ms);
                        let took = took.elapsed();
                        finished(done, total, &what, median, took, started.elapsed())
                    });
                    part.machine_peak_gmacs = peaks.get(&part.precision).copied().flatten();
                    part.shard = shard;
                    part.env = Some(file.env.clone());
                    part.cpu_path = tf_path(&job);
                    part.emulated = crate::frameworks::precision::emulated(
                        plan.device,
                        part.precision,
                        &crate::bench::fma::cpu_flags(),
                        std::env::var("ONEDNN_MAX_CPU_ISA").ok().as_deref(),
                    )
                    .map(String::from);
                    if let Some(g) = part.gemm_gmacs {
                        gemm.entry(framework.clone()).or_insert(g);
                    }
                    // a process that is redone replaces its partial
                    // record only now: a redo that fails keeps it
                    for c in file.cells.iter_mut().filter(|c| is(c)) {
                        c.drop_process(unit.process);
                    }
                    file.cells.retain(|c| !c.samples_ms.is_empty() || !is(c));
                    match file.cells.iter_mut().find(|c| is(c)) {
                        Some(c) => c.absorb(part),
                        None => {
                            part.summarise();
                            file.cells.push(part);
                            // cells in the plan's order, whatever the run's
                            file.cells.sort_by_key(|c| plan_order(&plan, c));
                        }
                    }
                }
                Err(f) if STOP.load(Ordering::SeqCst) => {
                    bar.abandon_with_message("interrupted");
                    eprintln!("interrupted: {model} {framework} {mode}: {}", f.cause);
                }
                Err(f) => {
                    bar.abandon_with_message("failed");
                    eprintln!(
                        "error: {model} {framework} {mode} process {}/{processes}: {}",
                        unit.process + 1,
                        f.cause
                    );
                    failed[unit.cell] = true;
                    file.failures.push(*f);
                }
            }
            save(&file, &path, fresh)?;
            if STOP.load(Ordering::SeqCst) {
                interrupted = true;
                break 'matrix;
            }
        }
    }
    if !interrupted {
        file.finished = Some(chrono::Local::now().to_rfc3339());
    }
    save(&file, &path, fresh)?;
    Ok(Outcome {
        path,
        file,
        interrupted,
    })
}
