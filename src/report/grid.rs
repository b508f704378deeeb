//! The report's tables as plain grids of text (header, rows, notes), built
//! once from the records and rendered by every text format.

use std::collections::BTreeSet;

use super::notes;
use super::published;
use crate::record::stats::{quantile, Ratio};
use crate::record::CellRecord;
use crate::record::{Device, Mode, Optimize, Precision};

/// The 95% half-width (a share of the value) above which a reading, a
/// cell's median or a ratio, is marked imprecise.
pub const IMPRECISE: f64 = 0.02;
const NOISE_MARK: &str = "~";
pub use super::notes::BUSY_MARK;
/// Seed of the speedups' bootstrap.
const SEED: u64 = 0x5eedb007;

#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

/// The cells of one column group: same host, device, framework,
/// `--optimize` level and `--precision`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Group {
    pub(super) host: String,
    pub(super) device: Device,
    pub(super) framework: String,
    pub(super) optimize: Optimize,
    pub(super) precision: Precision,
    /// The CPU only emulates the precision ([`CellRecord::emulated`]).
    pub(super) emulated: bool,
}

pub(super) fn framework_rank(f: &str) -> usize {
    crate::record::FRAMEWORKS
        .iter()
        .position(|k| *k == crate::record::base_framework(f))
        .unwrap_or(99)
}

pub(super) fn groups(cells: &[CellRecord]) -> Vec<Group> {
    let mut g: Vec<Group> = cells
        .iter()
        .map(|c| Group {
            host: c.host.clone(),
            device: c.device,
            framework: c.framework.clone(),
            optimize: c.optimize,
            precision: c.precision,
            emulated: c.emulated.is_some(),
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    g.sort_by_key(|g| {
        (
            g.host.clone(),
            g.device,
            framework_rank(&g.framework),
            g.optimize,
            g.precision,
        )
    });
    g
}

/// The notes that say at which `--optimize` level(s) and precision(s) the
/// cells ran: a report never sets a tuned or reduced-precision cell beside
/// another unlabelled.
fn levels_note(cells: &[CellRecord]) -> Vec<String> {
    let levels = crate::record::levels(cells);
    let names: Vec<String> = levels.iter().map(Optimize::to_string).collect();
    let mut notes = vec![if levels.len() > 1 {
        format!("Cells ran at different --optimize levels ({}): each column is labelled with its level, so a tuned cell never stands beside an untuned one unmarked.", names.join(", "))
    } else {
        format!("Every cell ran at --optimize {}.", names.join(""))
    }];
    let precisions: BTreeSet<Precision> = cells.iter().map(|c| c.precision).collect();
    if precisions.len() > 1 || precisions.iter().any(|p| !p.is_fp32()) {
        let names: Vec<String> = precisions.iter().map(Precision::to_string).collect();
        notes.push(format!("Cells ran in --precision {}: each column is labelled with its precision where they differ; a reduced precision's speed is its own, and verify --precision reports how far its logits are from fp32.", names.join(", ")));
    }
    let emulated: BTreeSet<String> = cells
        .iter()
        .filter_map(|c| {
            Some(format!(
                "{} on {}: {}",
                c.precision,
                c.host,
                c.emulated.as_ref()?
            ))
        })
        .collect();
    for e in emulated {
        notes.push(format!("Emulated: {e}; its cells, labelled (emulated), time conversions around fp32 arithmetic, not the precision's own."));
    }
    notes
}

/// A column group's name: framework and device, the host first when the
/// groups come from several hosts, the `--optimize` level and the
/// precision last when the cells ran at several.
pub(super) fn labeller(groups: &[Group]) -> impl Fn(&Group) -> String {
    let count = |f: &dyn Fn(&Group) -> String| groups.iter().map(f).collect::<BTreeSet<_>>().len();
    let hosts = count(&|g| g.host.clone());
    let mixed_levels = count(&|g| g.optimize.to_string()) > 1;
    let mixed_precisions = count(&|g| g.precision.to_string()) > 1;
    move |g: &Group| {
        let mut level = String::new();
        if mixed_levels {
            level.push_str(&format!(" {}", g.optimize));
        }
        if mixed_precisions || g.emulated {
            level.push_str(&format!(" {}", g.precision));
        }
        if g.emulated {
            level.push_str(" (emulated)");
        }
        if hosts > 1 {
            format!("{} {} {}{level}", g.host, g.device, g.framework)
        } else {
            format!("{} {}{level}", g.framework, g.device)
        }
    }
}

/// (model, batch, size) rows, in first-seen order.
pub(super) fn row_keys(cells: &[CellRecord]) -> Vec<(String, usize, usize)> {
    let mut keys: Vec<(String, usize, usize)> = Vec::new();
    for c in cells {
        let k = (c.model.clone(), c.batch, c.size);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

pub(super) fn find<'a>(
    cells: &'a [CellRecord],
    key: &(String, usize, usize),
    g: &Group,
    mode: Mode,
) -> Option<&'a CellRecord> {
    cells.iter().rev().find(|c| {
        c.model == key.0
            && c.batch == key.1
            && c.size == key.2
            && c.host == g.host
            && c.device == g.device
            && c.framework == g.framework
            && c.optimize == g.optimize
            && c.precision == g.precision
            && c.mode == mode
    })
}

/// Which schedule a cell ran: for a parallel cell the framework's own
/// executor, or speedbench's cost-model schedule (and whether it ran it or
/// chose sequential).
pub fn schedule(c: &CellRecord) -> String {
    if c.mode == Mode::Sequential {
        return "sequential".into();
    }
    if let Some(s) = &c.schedule {
        let over = if s.scheduler.contains("ONNX Runtime") {
            "ORT segments"
        } else {
            "libtorch ops"
        };
        // what the segment boundaries cost, run one after another
        let boundary = match s.boundary {
            Some((whole, split)) if whole > 0.0 && !s.parallel_stages.is_empty() => {
                format!("; boundaries {:+.1}%", (split / whole - 1.0) * 100.0)
            }
            _ => String::new(),
        };
        return if s.chosen.starts_with("sequential") {
            format!(
                "sequential (cost model over {over}: {}{boundary})",
                if s.measured.is_some() {
                    "measured no gain"
                } else {
                    "no gain predicted"
                }
            )
        } else {
            format!(
                "cost model over {over}: {} parallel stage(s){boundary}",
                s.parallel_stages.len()
            )
        };
    }
    match (c.framework.as_str(), c.device) {
        ("ort-own", _) | ("ort", Device::Cuda) => "ORT's own (ORT_PARALLEL)".into(),
        ("tf", _) => "TensorFlow's inter-op pool".into(),
        ("torch", Device::Cuda) => "CUDA stream per branch".into(),
        _ => String::new(),
    }
}

/// Marks a parallel cell whose traced pass ran one operation at a time.
pub const SEQUENTIAL_MARK: &str = "(ran sequentially)";

/// What a cell's traced pass ran: `2 · 1.26 · 64%`, marked when a parallel
/// cell overlapped nothing.
pub fn concurrency(c: &CellRecord) -> String {
    concurrency_marked(c, SEQUENTIAL_MARK)
}

/// [`concurrency`] with `mark` for a parallel cell that overlapped nothing.
pub(super) fn concurrency_marked(c: &CellRecord, mark: &str) -> String {
    let Some(k) = c.concurrency() else {
        return String::new();
    };
    let mark = if c.mode == Mode::Parallel && k.sequential() {
        format!(" {mark}")
    } else {
        String::new()
    };
    format!(
        "{} · {:.2} · {:.0}%{mark}",
        k.tracks,
        k.in_flight,
        k.branch_overlap * 100.0
    )
}

/// Whether a cell's median is known to worse than [`IMPRECISE`]: its 95%
/// interval's half-width over the median. (How much single iterations
/// vary is the per-cell table's CV column, not this.)
pub fn noisy(c: &CellRecord) -> bool {
    let m = c.latency.median;
    let (lo, hi) = c.latency.median_ci;
    m.is_nan() || m <= 0.0 || (hi - m).max(m - lo) / m > IMPRECISE
}

/// Whether a ratio is known to worse than [`IMPRECISE`].
pub fn imprecise(r: &Ratio) -> bool {
    r.half_width() > IMPRECISE
}

/// Median ms, marked when noisy (~) and when the machine was busy (!).
pub(super) fn ms(c: &CellRecord) -> String {
    format!("{:.2}{}", c.latency.median, marks(&[c]))
}

/// The marks of `cells` together: `~` where one is noisy, `!` where the
/// machine was busy while one timed.
pub(super) fn marks(cells: &[&CellRecord]) -> String {
    let noise = if cells.iter().any(|c| noisy(c)) {
        NOISE_MARK
    } else {
        ""
    };
    let busy = if cells.iter().any(|c| c.busy()) {
        BUSY_MARK
    } else {
        ""
    };
    format!("{noise}{busy}")
}

/// Sequential over parallel median: above 1 means parallel is faster; the
/// interval spans both cells' processes (paired) and iterations.
pub fn speedup(seq: &CellRecord, par: &CellRecord) -> Ratio {
    crate::record::contrast(&[(seq, 0, 1.0), (par, 0, -1.0)], SEED)
}

/// The share of the gain the graph allows that a speedup got:
/// (speedup - 1) / (ideal - 1); `None` where the graph allows none (no
/// branches).
pub fn gain_share(speedup: f64, ideal: f64) -> Option<f64> {
    (ideal - 1.0 > 1e-9).then(|| (speedup - 1.0) / (ideal - 1.0))
}

/// A ratio with its interval, marked where it is imprecise.
fn ratio_text(r: &Ratio) -> String {
    let mark = if imprecise(r) { NOISE_MARK } else { "" };
    format!("{:.2}x{mark} [{:.2}, {:.2}]", r.value, r.ci.0, r.ci.1)
}

/// p-th percentile of a cell's samples.
pub fn percentile(c: &CellRecord, p: f64) -> f64 {
    let mut s = c.samples_ms.clone();
    s.sort_by(|a, b| a.total_cmp(b));
    quantile(&s, p)
}

/// The paper-style table: one row per model, per framework the sequential
/// and parallel medians, the speedup with its 95% CI and how much of the
/// graph's ideal speedup it achieved; optionally the published numbers.
pub fn paper(cells: &[CellRecord], with_published: bool) -> Grid {
    let groups = groups(cells);
    let traced = cells.iter().any(|c| c.trace.is_some());
    let level_notes = levels_note(cells);
    let label = labeller(&groups);
    let mut header: Vec<String> = ["model", "batch", "size", "params (M)", "GMACs"]
        .map(String::from)
        .to_vec();
    if with_published {
        header.push("published GFLOPs".into());
        header.push("published TF GTX 1060 ms".into());
    }
    for g in &groups {
        let l = label(g);
        header.push(format!("{l} seq ms"));
        header.push(format!("{l} par ms"));
        header.push(format!("{l} seq/par speedup [95% CI]"));
        header.push(format!("{l} gain share"));
        header.push(format!("{l} machine ideal"));
        if traced {
            header.push(format!("{l} par ran"));
        }
    }
    header.push("ideal speedup (work/span)".into());
    let mut rows = Vec::new();
    let mut any_noisy = false;
    let mut ran_sequentially: Vec<String> = Vec::new();
    for key in row_keys(cells) {
        let Some(first) = cells
            .iter()
            .find(|c| (c.model.clone(), c.batch, c.size) == key)
        else {
            continue;
        };
        let mut row = vec![
            key.0.clone(),
            key.1.to_string(),
            key.2.to_string(),
            format!("{:.2}", first.params as f64 / 1e6),
            format!("{:.2}", first.macs as f64 / 1e9),
        ];
        if with_published {
            match published::lookup(&key.0) {
                Some(p) => {
                    row.push(format!("{:.1}", p.gflops));
                    row.push(format!("{:.0}", p.gpu_ms));
                }
                None => row.extend([String::new(), String::new()]),
            }
        }
        for g in &groups {
            let seq = find(cells, &key, g, Mode::Sequential);
            let par = find(cells, &key, g, Mode::Parallel);
            any_noisy |= seq.is_some_and(noisy) || par.is_some_and(noisy);
            row.push(seq.map(ms).unwrap_or_default());
            row.push(par.map(ms).unwrap_or_default());
            match (seq, par) {
                (Some(s), Some(p)) => {
                    let r = speedup(s, p);
                    any_noisy |= imprecise(&r);
                    row.push(ratio_text(&r));
                    row.push(
                        gain_share(r.value, first.ideal_speedup)
                            .map_or("-".into(), |g| format!("{:.0}%", 100.0 * g)),
                    );
                }
                _ => row.extend([String::new(), String::new()]),
            }
            row.push(
                par.and_then(CellRecord::machine_ideal)
                    .map_or(String::new(), |m| format!("{m:.2}x")),
            );
            if traced {
                row.push(par.map(concurrency).unwrap_or_default());
            }
            if let Some(p) = par.filter(|p| p.concurrency().is_some_and(|k| k.sequential())) {
                let chose = p
                    .schedule
                    .as_ref()
                    .is_some_and(|s| s.chosen.starts_with("sequential"));
                let why = if chose {
                    ", by the cost model's choice"
                } else {
                    ""
                };
                ran_sequentially.push(format!("{} ({}{why})", key.0, p.framework));
            }
        }
        row.push(format!("{:.2}x", first.ideal_speedup));
        rows.push(row);
    }
    let mut notes = vec![
        "Times are medians of host-to-host latency in ms over every worker process of a cell. Speedup = sequential / parallel (above 1: parallel is faster): where the two modes were timed in lock-step, the geometric mean of the ratios of passes timed back to back, with its Student-t 95% CI over the pairs; otherwise the ratio of the medians with the Student-t 95% CI over the per-process medians (a bootstrap over iterations with one process); 'gain share' = (speedup - 1) / (ideal - 1), the part of the gain the graph's branches allow (work/span, unlimited cores) that the parallel mode got: 0% none, 100% all, below 0 slower ('-': no branches). 'machine ideal' = the cost model's predicted sequential time over the best schedule it found from the per-operation times measured on this machine at each thread count: what branch parallelism can gain here (blank where no cost model scheduled: TensorFlow, the frameworks' own executors).".to_string(),
    ];
    notes.extend(level_notes);
    if traced {
        notes.push(format!("'par ran' is from one traced pass after the timed ones: threads or streams that ran operations · operations in flight on average (summed operation time / wall time) · share of the branch work that overlapped other work (the same for every cell in the per-cell table's 'ran'); {SEQUENTIAL_MARK} marks a parallel mode that ran one operation at a time."));
    }
    if !ran_sequentially.is_empty() {
        notes.push(format!(
            "{SEQUENTIAL_MARK} The parallel mode ran sequentially for {}: no two operations overlapped in its timeline, so its 'speedup' measures the executor (or, where speedbench's cost model chose sequential because overlapping measured no gain, is 1 by design), not branch parallelism.",
            ran_sequentially.join(", ")
        ));
    }
    let fell_back: Vec<String> = cells
        .iter()
        .filter(|c| c.device == Device::Cuda)
        .filter_map(|c| c.trace.as_ref().filter(|t| t.on_cpu() > 0).map(|t| (c, t)))
        .map(|(c, t)| {
            format!(
                "{} {} {} ({} of {} operations)",
                c.model,
                c.framework,
                c.mode,
                t.on_cpu(),
                t.concurrency.ops
            )
        })
        .collect();
    if !fell_back.is_empty() {
        notes.push(format!(
            "Operations ran on the CPU in --device cuda cells (the framework placed them there): {}.",
            fell_back.join(", ")
        ));
    }
    if any_noisy {
        notes.push(format!(
            "{NOISE_MARK} marks an imprecise reading: a median or a speedup whose 95% interval reaches more than {:.0}% from it.",
            IMPRECISE * 100.0
        ));
    }
    notes.extend(notes::busy(cells));
    notes.extend(notes::held(cells));
    if with_published {
        notes.push("Published columns: Li et al., CVPR 2019 (TensorFlow, GTX 1060, batch 16, 224 px); quoted, not measured here.".into());
    }
    Grid {
        title: "Speed: sequential vs parallel branches".into(),
        header,
        rows,
        notes,
    }
}

/// Where the per-cell table has its 'ran' and 'schedule' columns (dropped
/// for files from before traces and schedules).
const RAN_COLUMN: usize = 18;

/// `R: between% · within%` of a cell's processes ("1: - · within%" with
/// one process).
/// `intra x inter` as the cell asked, and the threads that ran in its
/// processes (`· 2 ran`; `· 1-2 ran` where its processes differ).
fn threads_text(c: &CellRecord) -> String {
    let asked = format!("{} x {}", c.intra_threads, c.inter_threads);
    match c.threads_ran() {
        Some((few, most)) if few == most => format!("{asked} · {most} ran"),
        Some((few, most)) => format!("{asked} · {few}-{most} ran"),
        None => asked,
    }
}

fn spread_text(c: &CellRecord) -> String {
    let s = c.spread();
    let between = s
        .between_cv
        .map_or("-".to_string(), |b| format!("{:.1}%", b * 100.0));
    format!("{}: {between} · {:.1}%", s.processes, s.within_cv * 100.0)
}

/// One row per cell: the spread of its samples.
pub fn detail(cells: &[CellRecord]) -> Grid {
    let mut header: Vec<&str> = vec!["model", "framework"];
    header.extend(super::SETTING_COLUMNS);
    header.extend([
        "threads intra x inter (requested) · ran",
        "n",
        "median ms",
        "compute ms",
        "median 95% CI",
        "p90 ms",
        "p99 ms",
        "images/s",
        "GMAC/s (% of its precision's peak)",
        "best GEMM GMAC/s",
        "session MiB (GPU)",
        "ran",
        "schedule",
        "CV",
        "processes: CV between · within",
        "host",
    ]);
    let header: Vec<String> = header.into_iter().map(String::from).collect();
    let mut sorted: Vec<&CellRecord> = cells.iter().collect();
    sorted.sort_by_key(|c| {
        (
            c.host.clone(),
            c.device,
            framework_rank(&c.framework),
            c.framework.clone(),
            c.optimize,
            c.precision,
            c.model.clone(),
            c.batch,
            c.mode,
        )
    });
    let traced = cells.iter().any(|c| c.trace.is_some());
    let rows = sorted
        .iter()
        .map(|c| {
            let l = &c.latency;
            let mut row = vec![
                c.model.clone(),
                format!("{} {}", c.framework, c.framework_version),
            ];
            row.extend(super::setting_values(c));
            row.extend([
                threads_text(c),
                l.n.to_string(),
                ms(c),
                c.compute
                    .as_ref()
                    .map_or(String::new(), |s| format!("{:.2}", s.median)),
                format!("[{:.2}, {:.2}]", l.median_ci.0, l.median_ci.1),
                format!("{:.2}", l.p90),
                format!("{:.2}", l.p99),
                format!("{:.1}", c.images_per_s()),
                match (c.machine_peak_gmacs, c.of_peak()) {
                    (Some(p), Some(f)) => {
                        format!("{:.1} ({:.0}% of {p:.0})", c.achieved_gmacs(), f * 100.0)
                    }
                    _ => format!("{:.1}", c.achieved_gmacs()),
                },
                c.gemm_gmacs.map_or(String::new(), |g| format!("{g:.0}")),
                match (c.session_mib, c.gpu_session_mib) {
                    (Some(m), Some(g)) => format!("{m:.0} ({g:.0})"),
                    (None, Some(g)) => format!("- ({g:.0})"),
                    (Some(m), None) => format!("{m:.0}"),
                    (None, None) => String::new(),
                },
                concurrency(c),
                schedule(c),
                format!("{:.1}%", l.cv * 100.0),
                spread_text(c),
                c.host.clone(),
            ]);
            if !traced {
                row.drain(RAN_COLUMN..RAN_COLUMN + 2);
            }
            row
        })
        .collect();
    let mut header = header;
    if !traced {
        header.drain(RAN_COLUMN..RAN_COLUMN + 2);
    }
    Grid {
        title: "Per cell".into(),
        header,
        rows,
        notes: vec![
            "Median 95% CI: the Student-t interval of the per-process medians (centred on their geometric mean) where the cell has two or more worker processes, else the bootstrap over its iterations. Processes: how many timed the cell, the coefficient of variation of their medians (between) and the median of their own (within): where between dominates, more processes narrow the interval, more iterations do not.".into(),
            "Session MiB: resident memory a mode's session added when prepared and run once; in brackets, on a GPU, the device memory it needed (framework allocator).".into(),
            "% of its precision's peak: achieved conv+fc GMAC/s against the machine's peak for the cell's precision (fp32: independent FMA chains on the widest vector unit; bf16: AVX-512 BF16 dot products; fp16: AVX-512 FP16 FMAs; on the cores the run used), measured once per run; blank where the machine has no figure for the precision (TF32, a CPU with AMX tiles); on a GPU the nominal figure (SMs x FP32 units x clock, from a table: not measured). Best GEMM: float32 matrix products through the same framework, once per run: four chained products per pass, so that the host copies in and out weigh a quarter of what one product's would. Threads: what the plan asked each framework for; the 'ran' column shows how many threads ran operations in the traced pass.".into(),
        ]
        .into_iter()
        .chain(notes::busy(cells))
        .collect(),
    }
}

#[cfg(test)]
#[path = "grid_tests.rs"]
mod tests;
