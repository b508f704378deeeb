//! The worker: one child process per (model, framework, device, batch, size).
//! It loads every requested mode, warms them up, and times them interleaved
//! (A B B A ...) so that drift on a shared machine hits all modes alike.
//! It speaks JSON lines on stdout; its stderr is the framework's noise.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::memory;
use super::timing::{time_sessions, Protocol};
use crate::frameworks::{self, PrepareOptions, Prepared};
use crate::graph::analysis::analyse;
use crate::io::seeded_input;
use crate::record::stats::summarise;
use crate::record::{CellRecord, Device, Mode, RunPlan};

/// What the parent asks a worker to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub model: String,
    pub framework: String,
    /// The run's plan: device, modes, batch, size, iterations, threads, seed
    /// and weights.
    pub plan: RunPlan,
    /// The user's models folder, if any (the built-in models otherwise).
    pub models_dir: Option<PathBuf>,
    pub verbose: bool,
    /// The best GEMM through this framework, where an earlier worker of the
    /// run measured it; this worker measures it otherwise.
    #[serde(default)]
    pub gemm_gmacs: Option<f64>,
}

/// One line of the worker's stdout.
#[derive(Debug, Serialize, Deserialize)]
pub enum Message {
    /// Iterations done so far (warm-up included) out of `total`.
    Progress { done: usize, total: usize },
    /// The finished cells, one per mode.
    Cells(Vec<CellRecord>),
    /// A clean failure with its message.
    Error(String),
}

/// Set by Ctrl-C: the worker finishes the sample in flight and reports
/// what it has.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Runs a job, reporting progress through `emit`.
pub fn run_job(job: &Job, emit: &mut dyn FnMut(Message)) -> Result<Vec<CellRecord>> {
    let catalog = crate::zoo::Catalog::open(job.models_dir.as_deref())?;
    let loaded = crate::zoo::load(
        &catalog,
        &job.model,
        job.plan.size,
        job.plan.weights.as_deref(),
        job.plan.seed,
    )?;
    let analysis = analyse(&loaded.graph);
    let fw = frameworks::by_name(&job.framework)?;
    let version = fw.version()?;
    let input = seeded_input(job.plan.batch, job.plan.size, job.plan.seed);
    let mut prepared = Vec::new();
    let sessions = job
        .plan
        .optimize
        .iter()
        .flat_map(|&level| job.plan.modes.iter().map(move |&mode| (level, mode)));
    for (level, mode) in sessions {
        let opts = PrepareOptions::new(
            job.plan.device,
            mode,
            level,
            job.plan.intra_threads,
            job.plan.inter_threads,
            job.verbose,
        );
        let before = memory::rss_mib();
        let gpu_before = fw.device_memory(job.plan.device);
        fw.reset_device_peak(job.plan.device);
        let mut p = frameworks::prepare(fw.as_ref(), &loaded.graph, &loaded.weights, &opts)
            .with_context(|| {
                format!(
                    "{} {mode} on {} at --optimize {level}",
                    job.framework, job.plan.device
                )
            })?;
        // one pass allocates the activations: count them with the session
        p.run(&input)?;
        let grew = before.zip(memory::rss_mib()).map(|(b, a)| a - b);
        let gpu_grew = gpu_before
            .zip(fw.device_memory(job.plan.device))
            .map(|(b, a)| a.peak_mib - b.current_mib);
        prepared.push((opts, p, (grew, gpu_grew)));
    }
    // The best GEMM through this framework and device, once per run.
    let gemm = job
        .gemm_gmacs
        .or_else(|| super::peak::gemm(fw.as_ref(), job.plan.device, job.plan.intra_threads).ok());
    // the device-memory peak of the timed passes, not of the GEMM's matrices
    fw.reset_device_peak(job.plan.device);
    if std::env::var_os("SPEEDBENCH_TEST_CRASH").is_some_and(|m| m == job.model.as_str()) {
        // Test hook: a worker that dies the hard way, as a segfaulting
        // framework would (tests/durability.rs).
        std::process::abort();
    }
    if let Some(marker) = std::env::var_os("SPEEDBENCH_TEST_TIMING") {
        // Test hook: the timed iterations begin now (tests/durability.rs
        // interrupts a worker then, however long the sessions took to load).
        let _ = std::fs::write(marker, job.model.as_bytes());
    }
    let protocol = Protocol {
        warmup: job.plan.warmup,
        iters: job.plan.iters,
        compute: job.plan.device == Device::Cuda,
    };
    let origin = Instant::now();
    let clock = || origin.elapsed().as_secs_f64() * 1e3;
    let timed = {
        let mut sessions: Vec<&mut dyn Prepared> = prepared
            .iter_mut()
            .map(|(_, p, _)| p.as_mut() as &mut dyn Prepared)
            .collect();
        time_sessions(
            &mut sessions,
            &input,
            protocol,
            &INTERRUPTED,
            &clock,
            &mut |done, total| emit(Message::Progress { done, total }),
        )?
    };
    let (samples, compute, interrupted) = (timed.samples, timed.compute, timed.interrupted);
    // One traced pass per cell, after the timed iterations: a failed trace
    // costs the cell its timeline, never its samples.
    let traces: Vec<_> = prepared
        .iter_mut()
        .map(|(opts, p, _)| match p.trace(&input) {
            Ok(t) => Some(crate::trace::finish(
                t,
                &loaded.graph,
                opts.mode == Mode::Sequential,
            )),
            Err(e) => {
                eprintln!(
                    "warning: {} {} trace failed: {e:#}",
                    job.framework, opts.mode
                );
                None
            }
        })
        .collect();
    let host = crate::record::env::host();
    let gpu_peak = fw.device_memory(job.plan.device).map(|m| m.peak_mib);
    Ok(prepared
        .iter()
        .zip(samples.into_iter().zip(compute).zip(traces))
        .map(|((opts, p, grew), ((s, c), t))| {
            (opts.clone(), p.threads_used(), p.schedule(), *grew, s, c, t)
        })
        .map(|(opts, used, schedule, grew, s, c, trace)| CellRecord {
            model: job.model.clone(),
            framework: job.framework.clone(),
            framework_version: version.clone(),
            device: job.plan.device,
            mode: opts.mode,
            optimize: opts.optimize,
            batch: job.plan.batch,
            size: job.plan.size,
            warmup: job.plan.warmup,
            intra_threads: used.map_or(opts.intra_threads, |u| u.0),
            inter_threads: used.map_or(opts.inter_threads, |u| u.1),
            params: analysis.params,
            macs: analysis.macs,
            ideal_speedup: analysis.ideal_speedup,
            host: host.clone(),
            latency: summarise(&s),
            samples_ms: s,
            iters: job.plan.iters,
            interrupted,
            gemm_gmacs: gemm,
            machine_peak_gmacs: None,
            session_mib: grew.0,
            gpu_session_mib: grew.1,
            gpu_peak_mib: gpu_peak,
            compute: (!c.is_empty()).then(|| summarise(&c)),
            compute_samples_ms: c,
            worker_peak_rss_mib: memory::peak_rss_mib(),
            trace,
            schedule,
            // the parent fills both in
            shard: None,
            env: None,
        })
        .filter(|c| !c.samples_ms.is_empty())
        .collect())
}

/// Entry point of `speedbench worker`: a job on stdin, messages on stdout.
pub fn main() -> Result<()> {
    // Ctrl-C reaches the whole process group: finish the sample in flight.
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    let job: Job = serde_json::from_reader(std::io::stdin().lock())
        .context("worker: the job on stdin is not valid JSON")?;
    let stdout = std::io::stdout();
    let mut send = |m: Message| {
        let mut out = stdout.lock();
        // A parent that went away cannot be told anything more.
        let _ = serde_json::to_writer(&mut out, &m);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    };
    match run_job(&job, &mut send) {
        Ok(cells) => {
            send(Message::Cells(cells));
            Ok(())
        }
        Err(e) => {
            send(Message::Error(format!("{e:#}")));
            std::process::exit(3);
        }
    }
}
