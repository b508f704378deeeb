//! One measured cell and one failed worker, as a results file stores them.

use serde::{Deserialize, Serialize};

use super::env::Environment;
use super::stats::Summary;
use super::timeline::Trace;
use super::{Device, Mode, Optimize, Shard};

/// One timed cell: (model, framework, device, mode, batch, size).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CellRecord {
    pub model: String,
    pub framework: String,
    /// Version of the runtime library that was loaded.
    pub framework_version: String,
    pub device: Device,
    pub mode: Mode,
    /// `--optimize` level; files from before the option were at `default`.
    #[serde(default)]
    pub optimize: Optimize,
    pub batch: usize,
    pub size: usize,
    pub warmup: usize,
    pub intra_threads: usize,
    /// Inter-op threads or streams; 1 in sequential mode.
    pub inter_threads: usize,
    /// Learnable parameters of the model.
    pub params: u64,
    /// Conv + fc multiply-accumulates per image.
    pub macs: u64,
    /// Ideal parallel speedup of the graph (work / span).
    pub ideal_speedup: f64,
    /// Host the cell ran on (cells from many machines merge into one report).
    pub host: String,
    /// Host-to-host latency of every timed iteration, milliseconds.
    pub samples_ms: Vec<f64>,
    pub latency: Summary,
    /// Timed iterations asked for; more than `samples_ms.len()` when the run
    /// was interrupted.
    #[serde(default)]
    pub iters: usize,
    /// The run was stopped (Ctrl-C) before all iterations were timed.
    #[serde(default)]
    pub interrupted: bool,
    /// The best GEMM through this framework on this device: GMAC/s of a
    /// large float32 matrix product, the median of several, measured once
    /// per run per framework; absent where it could not be measured.
    /// (Files before it was separated from the machine peak called it
    /// `peak_gmacs`, measured per worker.)
    #[serde(default, alias = "peak_gmacs")]
    pub gemm_gmacs: Option<f64>,
    /// The machine's FMA peak for the cores (or the GPU) the run used,
    /// GMAC/s: the limit "% of peak" is measured against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_peak_gmacs: Option<f64>,
    /// Resident memory this mode's session added when prepared and run once
    /// (weights, plan, activations), MiB; the parallel mode's extra cost is
    /// its figure minus the sequential one's.
    #[serde(default)]
    pub session_mib: Option<f64>,
    /// Peak resident memory of the worker process (both modes loaded), MiB.
    #[serde(default)]
    pub worker_peak_rss_mib: Option<f64>,
    /// On a GPU: the most device memory (framework allocator, tensors) this
    /// mode needed while prepared and run once beyond what was held before,
    /// MiB; absent where the framework does not expose it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_session_mib: Option<f64>,
    /// On a GPU: the allocator's peak over the timed iterations (every mode
    /// loaded), MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_peak_mib: Option<f64>,
    /// On a GPU: device compute time of every timed iteration (input and
    /// output resident on the device, between synchronisations), ms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compute_samples_ms: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<Summary>,
    /// One traced pass after the timed iterations: the operations as they
    /// ran, the ideal schedule, the measured concurrency; absent where the
    /// trace failed or in files from before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
    /// The schedule a parallel cell ran, where speedbench chose it (the
    /// cost model over libtorch operations or ONNX Runtime segments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<super::ScheduleRecord>,
    /// The shard of a sharded run that measured the cell (`--shard K/N`);
    /// absent for a whole run and in files from before shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The machine and software the cell was measured on: a copy of its
    /// run's `env`, so that a merged file keeps every cell's CPU, GPU and
    /// speedbench build. Absent in files from before `merge`, where the
    /// file's `env` holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Environment>,
}

impl CellRecord {
    pub fn images_per_s(&self) -> f64 {
        self.batch as f64 * 1000.0 / self.latency.median
    }

    /// Conv + fc multiply-accumulates per second at the median, in 1e9.
    pub fn achieved_gmacs(&self) -> f64 {
        self.macs as f64 * self.images_per_s() / 1e9
    }

    /// Achieved GMAC/s over the machine's FMA peak, as a fraction.
    /// What the traced pass measured about concurrency.
    pub fn concurrency(&self) -> Option<&super::Concurrency> {
        self.trace.as_ref().map(|t| &t.concurrency)
    }

    pub fn of_peak(&self) -> Option<f64> {
        self.machine_peak_gmacs
            .filter(|p| *p > 0.0)
            .map(|p| self.achieved_gmacs() / p)
    }
}

/// The `--optimize` levels the cells ran at.
pub fn levels(cells: &[CellRecord]) -> std::collections::BTreeSet<Optimize> {
    cells.iter().map(|c| c.optimize).collect()
}

/// A cell whose worker failed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    pub model: String,
    pub framework: String,
    pub device: Device,
    pub cause: String,
    /// Last lines the worker wrote to stderr.
    pub stderr_tail: Vec<String>,
}
