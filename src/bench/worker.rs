//! The worker: one child process per cell and process (model, framework,
//! mode, level; process i of R). It loads one session, warms it up, says it
//! is ready, then times one pass each time the parent asks
//! ([`Command::Pass`]; the parent alternates the workers of a lock-step
//! group, [`super::lockstep`]) while watching what the rest of the machine
//! does, and on [`Command::Finish`] traces one pass where asked and reports
//! the cell. The job comes as the first line of stdin, the commands as the
//! lines after it; it speaks JSON lines on stdout; its stderr is the
//! framework's noise.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::load::PassProbe;
use super::memory;
use super::threads;
pub use super::timing::Command;
use super::timing::{time_commanded, warm_up, Protocol};
use crate::frameworks::{self, PrepareOptions};
use crate::graph::analysis::analyse;
use crate::io::seeded_input;
use crate::record::stats::summarise;
use crate::record::{
    CellRecord, Device, Mode, Precision, ProcessRecord, RunPlan, ScheduleRecord, Setting,
};

/// What the parent asks a worker to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub model: String,
    /// As the plan names it (`ort#2` for a second timing of `ort`).
    pub framework: String,
    pub mode: Mode,
    /// Level, precision and batch.
    pub setting: Setting,
    /// Which of the cell's processes this is, from 0.
    pub process: usize,
    /// Its position in its model's run order.
    pub slot: usize,
    /// The run's plan: device, batch, size, iterations, threads, seed and
    /// weights.
    pub plan: RunPlan,
    /// The user's models folder, if any (the built-in models otherwise).
    pub models_dir: Option<PathBuf>,
    pub verbose: bool,
    /// The best GEMM through this framework, where an earlier worker of the
    /// run measured it; this worker measures it otherwise.
    #[serde(default)]
    pub gemm_gmacs: Option<f64>,
    /// The schedule an earlier process of the cell chose: run it again
    /// rather than calibrate.
    #[serde(default)]
    pub schedule: Option<ScheduleRecord>,
    /// Trace one pass after the timed ones (the cell's first process).
    #[serde(default)]
    pub trace: bool,
}

/// One line of the worker's stdout.
#[derive(Debug, Serialize, Deserialize)]
pub enum Message {
    /// Warm-up iterations done so far out of `total`.
    Progress { done: usize, total: usize },
    /// The schedule this process calibrated and chose, sent before
    /// [`Message::Ready`] so that the parent can hand it to an A/A repeat
    /// it starts next.
    Schedule(Box<ScheduleRecord>),
    /// Loaded and warm: waiting for [`Command`]s.
    Ready,
    /// One timed pass, ms.
    Sample(f64),
    /// The process's part of the cell: its samples, one process record.
    Cell(Box<CellRecord>),
    /// A clean failure with its message.
    Error(String),
}

/// Set by Ctrl-C: a worker still warming up stops; one that is timing
/// goes on answering the parent, which stops asking for passes.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Runs a job, reporting through `emit` and taking the parent's commands
/// from `next`.
pub fn run_job(
    job: &Job,
    emit: &mut dyn FnMut(Message),
    next: &mut dyn FnMut() -> Result<Command>,
) -> Result<CellRecord> {
    let plan = &job.plan;
    let catalog = crate::zoo::Catalog::open(job.models_dir.as_deref())?;
    let loaded = crate::zoo::load(
        &catalog,
        &job.model,
        plan.size,
        plan.weights.as_deref(),
        plan.seed,
    )?;
    let analysis = analyse(&loaded.graph);
    let fw = frameworks::by_name(&job.framework)?;
    let version = fw.version()?;
    let input = seeded_input(job.setting.batch, plan.size, plan.seed);
    let mut opts = PrepareOptions::new(
        plan.device,
        job.mode,
        job.setting.optimize,
        plan.intra_threads,
        plan.inter_threads,
        job.verbose,
    );
    opts.precision = job.setting.precision;
    opts.schedule = job.schedule.clone();
    let before = memory::rss_mib();
    let gpu_before = fw.device_memory(plan.device);
    fw.reset_device_peak(plan.device);
    let mut p = frameworks::prepare(fw.as_ref(), &loaded.graph, &loaded.weights, &opts)
        .with_context(|| {
            format!(
                "{} {} on {} at --optimize {} --precision {}",
                job.framework, job.mode, plan.device, job.setting.optimize, job.setting.precision
            )
        })?;
    // one pass allocates the activations (and calibrates a schedule):
    // count them with the session
    let first = p.run(&input)?;
    let grew = before.zip(memory::rss_mib()).map(|(b, a)| a - b);
    let gpu_grew = gpu_before
        .zip(fw.device_memory(plan.device))
        .map(|(b, a)| a.peak_mib - b.current_mib);
    if !opts.precision.is_fp32() {
        reduced_for_real(
            fw.as_ref(),
            (&loaded.graph, &loaded.weights),
            &opts,
            &input,
            &first,
        )
        .with_context(|| format!("{} --precision {}", job.framework, opts.precision))?;
    }
    // The best GEMM through this framework and device, once per run.
    let gemm = job
        .gemm_gmacs
        .or_else(|| super::peak::gemm(fw.as_ref(), plan.device, plan.intra_threads).ok());
    // the device-memory peak of the timed passes, not of the GEMM's matrices
    fw.reset_device_peak(plan.device);
    if std::env::var_os("SPEEDBENCH_TEST_CRASH").is_some_and(|m| m == job.model.as_str()) {
        // Test hook: a worker that dies the hard way, as a segfaulting
        // framework would (tests/durability.rs).
        std::process::abort();
    }
    let protocol = Protocol {
        warmup: plan.warmup,
        iters: plan.iters_of(job.process),
        compute: plan.device == Device::Cuda,
    };
    let mut progress = |done, total| emit(Message::Progress { done, total });
    warm_up(
        p.as_mut(),
        &input,
        Protocol {
            iters: 0,
            ..protocol
        },
        &INTERRUPTED,
        &mut progress,
    )?;
    if job.schedule.is_none() {
        if let Some(chosen) = p.schedule() {
            emit(Message::Schedule(Box::new(chosen)));
        }
    }
    emit(Message::Ready);
    // Test hook: the timed passes have begun (tests/durability.rs
    // interrupts a run then, however long its sessions took to load).
    let mut marker = std::env::var_os("SPEEDBENCH_TEST_TIMING");
    let origin = Instant::now();
    let clock = || origin.elapsed().as_secs_f64() * 1e3;
    let mut probe = PassProbe::default();
    let threads_before = threads::now();
    let timed = time_commanded(
        p.as_mut(),
        &input,
        protocol,
        next,
        &clock,
        &mut |ms| {
            if let Some(m) = marker.take() {
                let _ = std::fs::write(m, job.model.as_bytes());
            }
            emit(Message::Sample(ms))
        },
        &mut |begins| {
            if begins {
                probe.begin()
            } else {
                probe.end()
            }
        },
    )?;
    let threads_ran = threads_before
        .zip(threads::now())
        .map(|(b, a)| threads::ran(&b, &a, origin.elapsed().as_nanos() as u64).len());
    let load = probe.finish();
    // One traced pass after the timed iterations: a failed trace costs
    // the cell its timeline, never its samples.
    let trace = if job.trace {
        match p.trace(&input) {
            Ok(t) => Some(crate::trace::finish(
                t,
                &loaded.graph,
                job.mode == Mode::Sequential,
            )),
            Err(e) => {
                eprintln!(
                    "warning: {} {} trace failed: {e:#}",
                    job.framework, job.mode
                );
                None
            }
        }
    } else {
        None
    };
    let used = p.threads_used();
    let schedule = p.schedule();
    let n = timed.samples.len();
    Ok(CellRecord {
        model: job.model.clone(),
        framework: job.framework.clone(),
        framework_version: version,
        device: plan.device,
        mode: job.mode,
        optimize: job.setting.optimize,
        precision: job.setting.precision,
        batch: job.setting.batch,
        size: plan.size,
        warmup: plan.warmup,
        intra_threads: used.map_or(opts.intra_threads, |u| u.0),
        inter_threads: used.map_or(opts.inter_threads, |u| u.1),
        params: analysis.params,
        macs: analysis.macs,
        ideal_speedup: analysis.ideal_speedup,
        host: crate::record::env::host(),
        latency: summarise(&timed.samples),
        sample_process: vec![job.process; n],
        // the parent numbers the rounds
        sample_round: Vec::new(),
        processes: vec![ProcessRecord {
            index: job.process,
            slot: job.slot,
            compute_samples: timed.compute.len(),
            // the parent knows whether it stopped asking early
            interrupted: false,
            calibrated: job.schedule.is_none() && schedule.is_some(),
            load,
            threads_ran,
            // the parent probes between rounds
            core_to_core_ns: None,
            round_core_to_core_ns: Vec::new(),
            placement: Default::default(),
            placement_wait_s: None,
        }],
        samples_ms: timed.samples,
        iters: plan.iters,
        interrupted: false,
        gemm_gmacs: gemm,
        machine_peak_gmacs: None,
        session_mib: grew,
        gpu_session_mib: gpu_grew,
        gpu_peak_mib: fw.device_memory(plan.device).map(|m| m.peak_mib),
        compute: (!timed.compute.is_empty()).then(|| summarise(&timed.compute)),
        compute_samples_ms: timed.compute,
        worker_peak_rss_mib: memory::peak_rss_mib(),
        trace,
        schedule,
        // the parent fills these in
        shard: None,
        env: None,
        cpu_path: None,
        emulated: None,
    })
}

/// Refuses a reduced-precision cell whose output is fp32's: one pass of an
/// fp32 session of the same framework on the same input, and the relative
/// L2 error of `got` against it must exceed [`Precision::FP32_ERROR`]
/// (a rewrite that silently did nothing, as TensorFlow's bf16 one does
/// without oneDNN, would otherwise be timed as bf16).
fn reduced_for_real(
    fw: &dyn frameworks::Framework,
    (graph, weights): (&crate::graph::Graph, &crate::graph::weights::Weights),
    opts: &PrepareOptions,
    input: &ndarray::Array4<f32>,
    got: &ndarray::Array2<f32>,
) -> Result<()> {
    let mut fp32 = opts.clone();
    fp32.precision = Precision::Fp32;
    fp32.mode = Mode::Sequential;
    fp32.inter_threads = 1;
    fp32.schedule = None;
    let want = frameworks::prepare(fw, graph, weights, &fp32)?.run(input)?;
    let l2 = crate::io::relative_l2(got, &want)?;
    if l2 <= Precision::FP32_ERROR {
        anyhow::bail!(
            "its logits are fp32's (relative L2 {l2:.1e} against an fp32 session, at most {:.0e}): it ran fp32, and is not timed under a {} label",
            Precision::FP32_ERROR,
            opts.precision
        );
    }
    Ok(())
}

/// Entry point of `speedbench worker`: a job on stdin, messages on stdout.
pub fn main() -> Result<()> {
    // Ctrl-C reaches the whole process group: finish the sample in flight.
    if let Err(e) = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst)) {
        eprintln!(
            "worker: cannot install the Ctrl-C handler ({e}); Ctrl-C loses this process's samples"
        );
    }
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .context("worker: cannot read the job from stdin")?;
    let job: Job =
        serde_json::from_str(&line).context("worker: the job on stdin is not valid JSON")?;
    let mut next = || -> Result<Command> {
        let mut line = String::new();
        if stdin.read_line(&mut line)? == 0 {
            // the parent went away or closed the pipe: report what there is
            return Ok(Command::Finish);
        }
        serde_json::from_str(&line).context("worker: a command on stdin is not valid JSON")
    };
    let stdout = std::io::stdout();
    let mut send = |m: Message| {
        let mut out = stdout.lock();
        // A parent that went away cannot be told anything more.
        let _ = serde_json::to_writer(&mut out, &m);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    };
    match run_job(&job, &mut send, &mut next) {
        Ok(cell) => {
            send(Message::Cell(Box::new(cell)));
            Ok(())
        }
        Err(e) => {
            send(Message::Error(format!("{e:#}")));
            std::process::exit(3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::weights::Weights;
    use crate::graph::{Graph, Op, Shape};
    use ndarray::{Array2, Array4};

    /// A framework whose logits are 1.0, plus `bump` in a reduced precision:
    /// what a rewrite that did nothing (bump 0) or something looks like.
    struct Fake {
        bump: f32,
    }

    struct FakeRun(f32);

    impl frameworks::Prepared for FakeRun {
        fn run(&mut self, input: &Array4<f32>) -> Result<Array2<f32>> {
            let n = input.shape()[0];
            Ok(Array2::from_shape_fn((n, 4), |(i, j)| {
                (i + j) as f32 + 1.0 + self.0
            }))
        }

        fn trace(&mut self, _: &Array4<f32>) -> Result<crate::record::Timeline> {
            anyhow::bail!("no trace")
        }
    }

    impl frameworks::Framework for Fake {
        fn name(&self) -> &'static str {
            "torch"
        }

        fn version(&self) -> Result<String> {
            Ok("0".into())
        }

        fn prepare(
            &self,
            _: &Graph,
            _: &Weights,
            opts: &PrepareOptions,
        ) -> Result<Box<dyn frameworks::Prepared>> {
            let bump = if opts.precision.is_fp32() {
                0.0
            } else {
                self.bump
            };
            Ok(Box::new(FakeRun(bump)))
        }
    }

    #[test]
    fn a_reduced_precision_whose_logits_are_fp32s_is_refused() {
        let mut g = Graph::new("tiny", Shape::new(3, 4, 4));
        g.add("relu", Op::Relu, &[0]).unwrap();
        let w = Weights::seeded(&g, 1);
        let x = seeded_input(2, 4, 0);
        let mut opts = PrepareOptions::new(
            Device::Cpu,
            Mode::Parallel,
            crate::record::Optimize::Default,
            1,
            2,
            false,
        );
        opts.precision = Precision::Bf16;
        let check = |bump: f32| {
            let fw = Fake { bump };
            let got = frameworks::Framework::prepare(&fw, &g, &w, &opts)
                .unwrap()
                .run(&x)
                .unwrap();
            reduced_for_real(&fw, (&g, &w), &opts, &x, &got)
        };
        let e = check(0.0).unwrap_err().to_string();
        assert!(
            e.starts_with("its logits are fp32's (relative L2 0.0e0"),
            "{e}"
        );
        assert!(e.ends_with("not timed under a bf16 label"), "{e}");
        // fp32's own rounding is still fp32; a bf16-sized error is not
        assert!(check(1e-7).is_err());
        check(1e-2).unwrap();
    }
}
