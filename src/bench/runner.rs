//! The parent side of `speedbench run`: one worker process per (model,
//! framework), progress bars, and a results file rewritten atomically after
//! every worker so that nothing measured is lost.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use super::worker::{Job, Message};
use crate::record::{CellRecord, Failure, RunFile};
use crate::zoo::Catalog;

const STDERR_TAIL: usize = 20;

enum Event {
    Line(Message),
    Garbage,
    Eof,
}

/// Runs one job in a child process.
fn run_worker(job: &Job, timeout: Duration, bar: &ProgressBar) -> Result<Vec<CellRecord>, Failure> {
    let fail = |cause: String, tail: Vec<String>| Failure {
        model: job.model.clone(),
        framework: job.framework.clone(),
        device: job.plan.device,
        cause,
        stderr_tail: tail,
    };
    let exe = std::env::current_exe()
        .map_err(|e| fail(format!("cannot find own executable: {e}"), vec![]))?;
    let mut child = Command::new(exe)
        .arg("worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start worker: {e}"), vec![]))?;
    if let Some(mut stdin) = child.stdin.take() {
        let json = serde_json::to_vec(job).unwrap_or_default();
        let _ = stdin.write_all(&json);
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
            Ok(Event::Line(Message::Cells(c))) => cells = Some(c),
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

/// Runs every (model, framework) of the file's plan (of its shard, for a
/// shard) that it does not hold yet, saving the file after each worker. `--resume` passes a file loaded
/// from disk; a fresh run one from [`crate::results::start`].
pub fn run(path: PathBuf, mut file: RunFile, catalog: &Catalog, verbose: bool) -> Result<Outcome> {
    let _ = ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst));
    let plan = file.plan.clone();
    for f in &plan.skipped {
        eprintln!("note: framework '{f}' is not built into this binary; skipped");
    }
    let style = ProgressStyle::with_template("{prefix:<32} [{bar:30}] {pos}/{len} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let machine_peak = file.machine_peak.as_ref().map(|p| p.all_gmacs);
    // the best GEMM through each framework, measured by its first worker
    let mut gemm: std::collections::BTreeMap<String, f64> = file
        .cells
        .iter()
        .filter_map(|c| Some((c.framework.clone(), c.gemm_gmacs?)))
        .collect();
    let mut interrupted = false;
    let shard = plan.shard.as_ref().map(|s| s.shard);
    'matrix: for model in &plan.models {
        for framework in &plan.frameworks {
            if !plan.runs(model, framework) {
                continue;
            }
            let done = plan.modes.iter().all(|m| {
                plan.optimize.iter().all(|o| {
                    file.cells.iter().any(|c| {
                        &c.model == model
                            && &c.framework == framework
                            && c.mode == *m
                            && c.optimize == *o
                            && !c.interrupted
                    })
                })
            });
            if done {
                continue;
            }
            // A cell that is redone replaces its partial or failed record.
            file.cells
                .retain(|c| !(&c.model == model && &c.framework == framework));
            file.failures
                .retain(|f| !(&f.model == model && &f.framework == framework));
            if STOP.load(Ordering::SeqCst) {
                interrupted = true;
                break 'matrix;
            }
            let job = Job {
                model: model.clone(),
                framework: framework.clone(),
                plan: plan.clone(),
                models_dir: catalog.dir.clone(),
                verbose,
                gemm_gmacs: gemm.get(framework).copied(),
            };
            let bar = ProgressBar::new(((plan.warmup + plan.iters) * plan.sessions()) as u64);
            bar.set_style(style.clone());
            bar.set_prefix(format!("{model} {framework} {}", plan.device));
            match run_worker(&job, Duration::from_secs(plan.timeout_s), &bar) {
                Ok(mut cells) => {
                    bar.finish();
                    for c in &mut cells {
                        c.machine_peak_gmacs = machine_peak;
                        c.shard = shard;
                        c.env = Some(file.env.clone());
                        if let Some(g) = c.gemm_gmacs {
                            gemm.entry(framework.clone()).or_insert(g);
                        }
                    }
                    file.cells.extend(cells);
                }
                Err(f) if STOP.load(Ordering::SeqCst) => {
                    bar.abandon_with_message("interrupted");
                    eprintln!("interrupted: {model} {framework}: {}", f.cause);
                }
                Err(f) => {
                    bar.abandon_with_message("failed");
                    eprintln!("error: {model} {framework}: {}", f.cause);
                    file.failures.push(f);
                }
            }
            file.save(&path)?;
            if STOP.load(Ordering::SeqCst) {
                interrupted = true;
                break 'matrix;
            }
        }
    }
    if !interrupted {
        file.finished = Some(chrono::Local::now().to_rfc3339());
    }
    file.save(&path)?;
    Ok(Outcome {
        path,
        file,
        interrupted,
    })
}
