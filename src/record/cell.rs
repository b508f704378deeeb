//! One measured cell and one failed worker, as a results file stores them.

use serde::{Deserialize, Serialize};

use super::env::Environment;
use super::intervals::{self, Term};
use super::process::ProcessRecord;
use super::stats::Ratio;
use super::stats::Summary;
use super::timeline::Trace;
use super::{Device, Mode, Optimize, Precision, Setting, Shard};

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
    /// `--precision`; files from before the option were fp32.
    #[serde(default)]
    pub precision: Precision,
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
    /// The worker process (its index in `processes`) of every sample in
    /// `samples_ms`; empty in files from before process repetition, where
    /// every sample came from one process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_process: Vec<usize>,
    /// The lock-step round of every sample in `samples_ms`, within its
    /// process: the samples of two cells of one group with the same process
    /// and round were timed back to back, and ratios pair them
    /// ([`paired`]). Empty in files from before lock-step timing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_round: Vec<usize>,
    /// The worker processes that measured the cell, in their order;
    /// empty in files from before process repetition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<ProcessRecord>,
    /// Summary of `samples_ms`; its median interval is over both levels
    /// (processes, then iterations).
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
    /// TensorFlow's CPU kernels in this cell (tf on the CPU only): oneDNN's
    /// or its own, and why; absent for other frameworks and in files from
    /// before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_path: Option<CpuPath>,
    /// Why the CPU only emulates this cell's reduced precision (no unit
    /// for it: the arithmetic runs in fp32 after conversions), where it
    /// does; the tables label such a cell "emulated".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulated: Option<String>,
}

/// Which CPU kernels TensorFlow ran: oneDNN's (`onednn`) or its own
/// (Eigen's), and why (the level, the CPU's features, or the user's
/// `TF_ENABLE_ONEDNN_OPTS`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CpuPath {
    pub onednn: bool,
    pub why: String,
}

impl std::fmt::Display for CpuPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = if self.onednn { "on" } else { "off" };
        write!(f, "oneDNN {on} ({})", self.why)
    }
}

impl CellRecord {
    /// The cell's level, precision and batch.
    pub fn setting(&self) -> Setting {
        Setting {
            optimize: self.optimize,
            precision: self.precision,
            batch: self.batch,
        }
    }

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

    /// The machine's ideal speedup (see
    /// [`super::ScheduleRecord::machine_ideal`]) of a parallel cell that
    /// ran a cost model's schedule.
    pub fn machine_ideal(&self) -> Option<f64> {
        self.schedule.as_ref()?.machine_ideal()
    }

    /// The samples of each worker process, in process order (one group in
    /// files from before process repetition).
    pub fn process_samples(&self) -> Vec<Vec<f64>> {
        group_by_process(&self.samples_ms, &self.sample_process)
    }

    /// The lock-step round of every sample, where every sample has one.
    pub fn rounds(&self) -> Option<&[usize]> {
        let n = self.samples_ms.len();
        (n > 0 && self.sample_round.len() == n && self.sample_process.len() == n)
            .then_some(self.sample_round.as_slice())
    }

    /// The samples of each worker process with its index, in order of
    /// index (index 0 for files from before process repetition).
    pub fn indexed_process_samples(&self) -> Vec<(usize, Vec<f64>)> {
        if self.sample_process.len() != self.samples_ms.len() {
            return vec![(0, self.samples_ms.clone())];
        }
        let mut out: std::collections::BTreeMap<usize, Vec<f64>> = Default::default();
        for (&x, &p) in self.samples_ms.iter().zip(&self.sample_process) {
            out.entry(p).or_default().push(x);
        }
        out.into_iter().collect()
    }

    /// Some process timed while other processes used more than
    /// [`super::BUSY_CORES`].
    pub fn busy(&self) -> bool {
        self.processes.iter().any(ProcessRecord::busy)
    }

    /// The largest CPU share other processes took while a process of the
    /// cell timed, in cores.
    pub fn other_cores(&self) -> Option<f64> {
        self.processes
            .iter()
            .filter_map(|p| p.load.map(|l| l.other_cores))
            .reduce(f64::max)
    }

    /// The fewest and the most threads that ran in the cell's processes
    /// ([`ProcessRecord::threads_ran`]); `None` where none could say.
    pub fn threads_ran(&self) -> Option<(usize, usize)> {
        let ran = self.processes.iter().filter_map(|p| p.threads_ran);
        Some((ran.clone().min()?, ran.max()?))
    }

    /// The most steal time (a hypervisor's other guests) while a process
    /// of the cell timed, in cores.
    pub fn stolen_cores(&self) -> Option<f64> {
        self.processes
            .iter()
            .filter_map(|p| p.load.map(|l| l.stolen_cores))
            .reduce(f64::max)
    }

    /// How the samples spread between and within processes.
    pub fn spread(&self) -> intervals::Spread {
        let groups = self.process_samples();
        let refs: Vec<&[f64]> = groups.iter().map(Vec::as_slice).collect();
        intervals::spread(&refs)
    }

    /// Whether process `index` of the cell was timed to the end; a cell
    /// from before process repetition was timed in one process.
    pub fn has_process(&self, index: usize) -> bool {
        if self.processes.is_empty() {
            return !self.interrupted;
        }
        self.processes
            .iter()
            .any(|p| p.index == index && !p.interrupted)
    }

    /// Keeps only the samples at positions `kept` (in order), each with its
    /// process and round, and summarises them again where any are left.
    pub fn keep_samples(&mut self, kept: &[usize]) {
        let rounds = self.rounds().map(<[usize]>::to_vec);
        self.samples_ms = kept.iter().map(|&i| self.samples_ms[i]).collect();
        if !self.sample_process.is_empty() {
            let process: Vec<usize> = kept
                .iter()
                .filter_map(|&i| self.sample_process.get(i).copied())
                .collect();
            self.sample_process = process;
        }
        if let Some(rounds) = rounds {
            self.sample_round = kept.iter().map(|&i| rounds[i]).collect();
        }
        if !self.samples_ms.is_empty() {
            self.summarise();
        }
    }

    /// Removes process `index`'s samples and record (to time it again).
    pub fn drop_process(&mut self, index: usize) {
        if self.processes.is_empty() {
            // from before process repetition: its one process is all of it
            self.samples_ms.clear();
            self.compute_samples_ms.clear();
            self.interrupted = false;
            return;
        }
        let kept: Vec<usize> = (0..self.samples_ms.len())
            .filter(|&i| self.sample_process.get(i) != Some(&index))
            .collect();
        self.keep_samples(&kept);
        // compute samples follow the processes' order, by their counts
        if let Some(pos) = self.processes.iter().position(|p| p.index == index) {
            let from: usize = self.processes[..pos]
                .iter()
                .map(|p| p.compute_samples)
                .sum();
            let to =
                (from + self.processes[pos].compute_samples).min(self.compute_samples_ms.len());
            self.compute_samples_ms.drain(from.min(to)..to);
        }
        self.processes.retain(|p| p.index != index);
        self.interrupted = self.processes.iter().any(|p| p.interrupted);
        if !self.samples_ms.is_empty() {
            self.summarise();
        }
    }

    /// Adds the samples and process record of `part`, another process of
    /// the same cell; what only one process measures (the trace, the
    /// schedule, the session's memory) stays from the first that had it.
    pub fn absorb(&mut self, part: CellRecord) {
        // rounds are kept only while every process has them
        match (self.rounds(), part.rounds()) {
            (Some(_), Some(_)) => self.sample_round.extend(part.sample_round),
            _ => self.sample_round.clear(),
        }
        self.samples_ms.extend(part.samples_ms);
        self.sample_process.extend(part.sample_process);
        self.compute_samples_ms.extend(part.compute_samples_ms);
        self.processes.extend(part.processes);
        self.interrupted |= part.interrupted;
        self.worker_peak_rss_mib = larger(self.worker_peak_rss_mib, part.worker_peak_rss_mib);
        self.gpu_peak_mib = larger(self.gpu_peak_mib, part.gpu_peak_mib);
        self.trace = self.trace.take().or(part.trace);
        self.schedule = self.schedule.take().or(part.schedule);
        self.session_mib = self.session_mib.or(part.session_mib);
        self.gpu_session_mib = self.gpu_session_mib.or(part.gpu_session_mib);
        self.gemm_gmacs = self.gemm_gmacs.or(part.gemm_gmacs);
        self.cpu_path = self.cpu_path.take().or(part.cpu_path);
        self.emulated = self.emulated.take().or(part.emulated);
        self.summarise();
    }

    /// Recomputes `latency` (and `compute`) from the samples of every
    /// process.
    pub fn summarise(&mut self) {
        self.latency = super::stats::summarise_processes(&self.process_samples());
        if !self.compute_samples_ms.is_empty() {
            self.compute = Some(super::stats::summarise(&self.compute_samples_ms));
        }
    }
}

/// The cells timed while other processes took more than
/// [`super::BUSY_CORES`], each named with its level and the most CPU others
/// took ("resnet50 ort sequential --optimize max (0.40 cores)").
pub fn busy_cells(cells: &[CellRecord]) -> Vec<String> {
    cells
        .iter()
        .filter(|c| c.busy())
        .map(|c| {
            format!(
                "{} {} {}{} ({:.2} cores)",
                c.model,
                c.framework,
                c.mode,
                super::setting_suffix(c.optimize, c.precision),
                c.other_cores().unwrap_or(0.0)
            )
        })
        .collect()
}

/// The larger of two optional peaks (either, where only one is known).
fn larger(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// `samples` grouped by their process index (`process`, one per sample;
/// empty: one group), in order of index.
pub fn group_by_process(samples: &[f64], process: &[usize]) -> Vec<Vec<f64>> {
    if process.len() != samples.len() {
        return vec![samples.to_vec()];
    }
    let n = process.iter().copied().max().map_or(0, |m| m + 1);
    let mut groups = vec![Vec::new(); n];
    for (&x, &p) in samples.iter().zip(process) {
        groups[p].push(x);
    }
    groups.retain(|g| !g.is_empty());
    groups
}

/// The product of cells' medians, each to its sign (+1 or -1), with its
/// 95% interval over processes and iterations ([`intervals::contrast`]):
/// `(cell, block, sign)`, where cells of one block (one run) are paired by
/// process index; two cells of one block timed in lock-step, a ratio, by
/// their pairs of passes ([`paired`]).
pub fn contrast(cells: &[(&CellRecord, usize, f64)], seed: u64) -> Ratio {
    if let [(a, ba, sa), (b, bb, sb)] = cells {
        if ba == bb && *sa == 1.0 && *sb == -1.0 {
            if let Some(r) = paired(a, b) {
                return r;
            }
        }
    }
    let indexed: Vec<Vec<(usize, Vec<f64>)>> = cells
        .iter()
        .map(|(c, _, _)| c.indexed_process_samples())
        .collect();
    // the cells of a block are paired by process index: only the processes
    // every one of them has take part (a process lost to a failure in one
    // cell drops out of the others, never shifting the pairs)
    let common = |block: usize| -> Vec<usize> {
        let mut sets = cells
            .iter()
            .zip(&indexed)
            .filter(|((_, b, _), _)| *b == block)
            .map(|(_, g)| g.iter().map(|(i, _)| *i).collect::<Vec<_>>());
        let first = sets.next().unwrap_or_default();
        sets.fold(first, |acc, s| {
            acc.into_iter().filter(|i| s.contains(i)).collect()
        })
    };
    let groups: Vec<Vec<Vec<f64>>> = cells
        .iter()
        .zip(indexed.clone())
        .map(|((_, block, _), g)| {
            let keep = common(*block);
            let kept: Vec<Vec<f64>> = g
                .iter()
                .filter(|(i, _)| keep.contains(i))
                .map(|(_, s)| s.clone())
                .collect();
            // no process in common: each cell's own processes
            if kept.is_empty() {
                g.into_iter().map(|(_, s)| s).collect()
            } else {
                kept
            }
        })
        .collect();
    let terms: Vec<Term> = cells
        .iter()
        .zip(&groups)
        .map(|((_, block, sign), g)| {
            Term::new(g.iter().map(Vec::as_slice).collect(), *block, *sign)
        })
        .collect();
    intervals::contrast(&terms, seed)
}

/// The ratio of cell `a` over cell `b` from their samples timed back to
/// back in lock-step (the same process and round), in log space: with one
/// process, the geometric mean of the per-pair ratios and its Student-t
/// 95% interval over the pairs; with several, the mean of the per-process
/// mean log ratios, with the wider of the t interval over those means (R -
/// 1 degrees of freedom: a process's own offset, which its pairs share, is
/// part of the error) and the one over all pairs
/// ([`intervals::two_level_paired`]). `None` where the cells have no
/// rounds or share fewer than two pairs.
pub fn paired(a: &CellRecord, b: &CellRecord) -> Option<Ratio> {
    intervals::two_level_paired(&paired_by_process(a, b)?)
}

/// The log ratios of [`paired_logs`] grouped by process, in order of
/// process index.
pub fn paired_by_process(a: &CellRecord, b: &CellRecord) -> Option<Vec<Vec<f64>>> {
    let (process, logs): (Vec<usize>, Vec<f64>) = paired_logs(a, b)?.into_iter().unzip();
    Some(group_by_process(&logs, &process))
}

/// (process, ln(a) - ln(b)) of every pair of samples of `a` and `b` with
/// the same process and round, in `a`'s order; `None` without rounds.
pub fn paired_logs(a: &CellRecord, b: &CellRecord) -> Option<Vec<(usize, f64)>> {
    let times = paired_times(a, b)?;
    Some(
        times
            .into_iter()
            .map(|(p, x, y)| (p, x.ln() - y.ln()))
            .collect(),
    )
}

/// (process, a's time, b's time) of every pair of samples of `a` and `b`
/// with the same process and round (both above 0), in `a`'s order; `None`
/// without rounds.
pub fn paired_times(a: &CellRecord, b: &CellRecord) -> Option<Vec<(usize, f64, f64)>> {
    let (ra, rb) = (a.rounds()?, b.rounds()?);
    let at: std::collections::HashMap<(usize, usize), f64> = b
        .sample_process
        .iter()
        .zip(rb)
        .zip(&b.samples_ms)
        .map(|((&p, &r), &x)| ((p, r), x))
        .collect();
    let times = a
        .sample_process
        .iter()
        .zip(ra)
        .zip(&a.samples_ms)
        .filter_map(|((&p, &r), &x)| {
            let y = *at.get(&(p, r))?;
            (x > 0.0 && y > 0.0).then_some((p, x, y))
        })
        .collect();
    Some(times)
}

/// The `--optimize` levels the cells ran at.
pub fn levels(cells: &[CellRecord]) -> std::collections::BTreeSet<Optimize> {
    cells.iter().map(|c| c.optimize).collect()
}

/// A worker process that failed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    pub model: String,
    pub framework: String,
    pub device: Device,
    /// The cell's mode, level and the process that failed; absent in files
    /// from before one process per cell, whose workers held every mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimize: Option<Optimize>,
    /// The cell's precision and batch; absent in files from before they
    /// were axes (fp32, the run's one batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<usize>,
    pub cause: String,
    /// Last lines the worker wrote to stderr.
    pub stderr_tail: Vec<String>,
}

impl Failure {
    /// Whether this failure is of the cell (model, framework, mode,
    /// setting); one from before one process per cell is of every mode and
    /// level, one from before precisions and batch lists of every one.
    pub fn is_of(&self, model: &str, framework: &str, mode: Mode, setting: Setting) -> bool {
        self.model == model
            && self.framework == framework
            && self.mode.is_none_or(|m| m == mode)
            && self.optimize.is_none_or(|o| o == setting.optimize)
            && self.precision.is_none_or(|p| p == setting.precision)
            && self.batch.is_none_or(|b| b == setting.batch)
    }
}

#[cfg(test)]
#[path = "cell_tests.rs"]
pub(crate) mod tests;
