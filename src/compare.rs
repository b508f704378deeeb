//! `speedbench compare`: is the current run slower than the baseline?
//!
//! A cell regressed only when the whole 95% interval of the ratio of
//! medians (current / baseline; [`crate::record::intervals`] says which
//! interval) lies beyond `1 + threshold`: that makes
//! the change both statistically significant and larger than the noise
//! threshold (criterion's rule). Improved likewise below `1 - threshold`.
//! Within-run ratios (parallel/sequential per framework, framework/framework
//! per model) are compared the same way: a slower or busier runner moves them
//! far less than it moves milliseconds. The intervals span the worker
//! processes of each cell as well as its iterations
//! ([`crate::record::intervals`]); a cell timed while other processes took
//! more than a quarter of a core is inconclusive, never REGRESSED or
//! improved.

pub use crate::record::level_suffix;
use crate::record::setting_suffix;
use serde::Serialize;

use crate::record::stats::{median, Ratio};
use crate::record::{placement, CellRecord};
use crate::record::{Device, Mode, Optimize, Precision};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Regressed,
    Improved,
    Unchanged,
    /// A cell (or a cell of a ratio) was timed while other processes took
    /// more than [`crate::record::BUSY_CORES`]: neither regressed nor
    /// improved can be told.
    Inconclusive,
    /// A change that coincides with the host moving the machine's cores:
    /// the current cell timed on another placement than the one it is
    /// compared with ([`crate::record::placement::moved`]), so the change
    /// may be where the host put the cores, not the code.
    Moved,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Regressed => "REGRESSED",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
            Verdict::Inconclusive => "inconclusive (busy)",
            Verdict::Moved => "inconclusive (cores moved)",
        })
    }
}

/// Which cells are compared with which: everything but the host. The
/// `--optimize` level is part of it: a tuned cell is never compared with an
/// untuned one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct CellKey {
    pub model: String,
    pub framework: String,
    pub device: Device,
    pub mode: Mode,
    pub optimize: Optimize,
    pub precision: Precision,
    pub batch: usize,
    pub size: usize,
}

impl CellKey {
    pub fn of(c: &CellRecord) -> CellKey {
        CellKey {
            model: c.model.clone(),
            framework: c.framework.clone(),
            device: c.device,
            mode: c.mode,
            optimize: c.optimize,
            precision: c.precision,
            batch: c.batch,
            size: c.size,
        }
    }
}

impl std::fmt::Display for CellKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {} b{} {}px{}",
            self.model,
            self.framework,
            self.device,
            self.mode,
            self.batch,
            self.size,
            setting_suffix(self.optimize, self.precision)
        )
    }
}

/// One compared quantity: a cell's time or a within-run ratio.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub what: String,
    pub baseline: f64,
    pub current: f64,
    /// current / baseline, with its 95% CI.
    pub ratio: Ratio,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub threshold: f64,
    pub cells: Vec<Change>,
    pub within_run: Vec<Change>,
    pub only_in_baseline: Vec<String>,
    pub only_in_current: Vec<String>,
    /// Parallel cells that ran another cost-model schedule than the
    /// baseline's: a change in them is of the schedule as well as of the
    /// runtime (`run --schedules-from` holds the baseline's).
    pub other_schedule: Vec<String>,
}

impl Comparison {
    pub fn regressions(&self) -> usize {
        self.cells
            .iter()
            .filter(|c| c.verdict == Verdict::Regressed)
            .count()
    }
}

pub fn verdict(r: &Ratio, threshold: f64) -> Verdict {
    if r.ci.0 > 1.0 + threshold {
        Verdict::Regressed
    } else if r.ci.1 < 1.0 - threshold {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    }
}

/// Seed of the comparison's bootstrap (one-process cells).
const SEED: u64 = 0xc0ffee;

/// A cell's median with its interval over processes and iterations.
pub(crate) fn median_of(c: &CellRecord) -> Ratio {
    crate::record::contrast(&[(c, 0, 1.0)], SEED)
}

/// `num`'s median over `den`'s, cells of one run (paired by process).
pub(crate) fn within(num: &CellRecord, den: &CellRecord) -> Ratio {
    crate::record::contrast(&[(num, 0, 1.0), (den, 0, -1.0)], SEED)
}

/// A cell's median now over its median then, with its interval over the
/// processes and iterations of both runs.
pub(crate) fn time_ratio(current: &CellRecord, baseline: &CellRecord) -> Ratio {
    crate::record::contrast(&[(current, 0, 1.0), (baseline, 1, -1.0)], SEED)
}

/// A within-run ratio (numerator, denominator) now over the same ratio
/// then: a ratio of ratios of medians, each run's pair paired by process.
pub(crate) fn ratio_of_ratios(
    (cn, cd): (&CellRecord, &CellRecord),
    (bn, bd): (&CellRecord, &CellRecord),
) -> Ratio {
    crate::record::contrast(
        &[(cn, 0, 1.0), (cd, 0, -1.0), (bn, 1, -1.0), (bd, 1, 1.0)],
        SEED,
    )
}

/// `v`, or [`Verdict::Moved`] where it is a change and the current cells
/// behind it timed on another placement of the cores than the cells they
/// are compared with (`pairs`: each current cell with those).
pub(crate) fn unless_moved(v: Verdict, pairs: &[(&CellRecord, &[&CellRecord])]) -> Verdict {
    let change = matches!(v, Verdict::Regressed | Verdict::Improved);
    if change && pairs.iter().any(|(c, e)| placement::moved(c, e)) {
        Verdict::Moved
    } else {
        v
    }
}

/// The verdict on `r`, inconclusive where a cell behind it was busy.
/// `pairs`: each current cell with the one it is compared with, for
/// [`unless_moved`].
pub(crate) fn judged(
    r: &Ratio,
    threshold: f64,
    cells: &[&CellRecord],
    pairs: &[(&CellRecord, &[&CellRecord])],
) -> Verdict {
    if cells.iter().any(|c| c.busy()) {
        Verdict::Inconclusive
    } else {
        unless_moved(verdict(r, threshold), pairs)
    }
}

pub(crate) fn index(cells: &[CellRecord]) -> std::collections::BTreeMap<CellKey, &CellRecord> {
    // the last record of a key wins (a resumed or merged file)
    cells.iter().map(|c| (CellKey::of(c), c)).collect()
}

pub fn compare(baseline: &[CellRecord], current: &[CellRecord], threshold: f64) -> Comparison {
    let base = index(baseline);
    let cur = index(current);
    let mut cells = Vec::new();
    for (k, c) in &cur {
        if let Some(b) = base.get(k) {
            let ratio = time_ratio(c, b);
            cells.push(Change {
                what: k.to_string(),
                baseline: median(&b.samples_ms),
                current: median(&c.samples_ms),
                verdict: judged(&ratio, threshold, &[c, b], &[(c, &[b])]),
                ratio,
            });
        }
    }
    let only_in_baseline = base
        .keys()
        .filter(|k| !cur.contains_key(*k))
        .map(|k| k.to_string())
        .collect();
    let only_in_current = cur
        .keys()
        .filter(|k| !base.contains_key(*k))
        .map(|k| k.to_string())
        .collect();
    let other_schedule = cur
        .iter()
        .filter(|(k, c)| base.get(*k).is_some_and(|b| other_schedule(c, b)))
        .map(|(k, _)| k.to_string())
        .collect();
    let mut within_run = Vec::new();
    for (num, den, what) in ratio_pairs(&cur) {
        let (Some(bn), Some(bd)) = (base.get(&num), base.get(&den)) else {
            continue;
        };
        let (cn, cd) = (cur[&num], cur[&den]);
        let ratio = ratio_of_ratios((cn, cd), (bn, bd));
        within_run.push(Change {
            what,
            baseline: median(&bn.samples_ms) / median(&bd.samples_ms),
            current: median(&cn.samples_ms) / median(&cd.samples_ms),
            verdict: judged(
                &ratio,
                threshold,
                &[cn, cd, bn, bd],
                &[(cn, &[bn]), (cd, &[bd])],
            ),
            ratio,
        });
    }
    Comparison {
        threshold,
        cells,
        within_run,
        only_in_baseline,
        only_in_current,
        other_schedule,
    }
}

/// Whether `current` ran another stored schedule than `baseline` (both
/// ran one of speedbench's: a framework's own executor stores none).
pub(crate) fn other_schedule(current: &CellRecord, baseline: &CellRecord) -> bool {
    fn ran(c: &CellRecord) -> Option<&Vec<crate::record::StageNodes>> {
        c.schedule
            .as_ref()
            .map(|s| &s.ran)
            .filter(|r| !r.is_empty())
    }
    matches!((ran(current), ran(baseline)), (Some(a), Some(b)) if a != b)
}

/// The within-run ratios of a run: parallel/sequential per framework and
/// model, and every framework over the first one per model and mode.
pub(crate) fn ratio_pairs(
    cells: &std::collections::BTreeMap<CellKey, &CellRecord>,
) -> Vec<(CellKey, CellKey, String)> {
    let mut out = Vec::new();
    for k in cells.keys() {
        if k.mode == Mode::Parallel {
            let seq = CellKey {
                mode: Mode::Sequential,
                ..k.clone()
            };
            if cells.contains_key(&seq) {
                let what = format!(
                    "{} {} {} b{} {}px{}: parallel/sequential",
                    k.model,
                    k.framework,
                    k.device,
                    k.batch,
                    k.size,
                    setting_suffix(k.optimize, k.precision)
                );
                out.push((k.clone(), seq, what));
            }
        }
    }
    let first = crate::record::FRAMEWORKS
        .iter()
        .find(|f| cells.keys().any(|k| k.framework == **f));
    if let Some(first) = first {
        for k in cells.keys() {
            if k.framework != *first {
                let den = CellKey {
                    framework: first.to_string(),
                    ..k.clone()
                };
                if cells.contains_key(&den) {
                    let what = format!(
                        "{} {} {} b{} {}px{}: {}/{}",
                        k.model,
                        k.mode,
                        k.device,
                        k.batch,
                        k.size,
                        setting_suffix(k.optimize, k.precision),
                        k.framework,
                        first
                    );
                    out.push((k.clone(), den, what));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(lo: f64, hi: f64) -> Ratio {
        Ratio::new((lo + hi) / 2.0, (lo, hi))
    }

    /// A change counts only when the whole interval lies beyond the
    /// threshold: an interval that touches it is unchanged.
    #[test]
    fn verdicts_need_the_whole_interval_strictly_beyond_the_threshold() {
        assert_eq!(verdict(&r(1.5, 2.0), 0.5), Verdict::Unchanged);
        assert_eq!(verdict(&r(1.500_001, 2.0), 0.5), Verdict::Regressed);
        assert_eq!(verdict(&r(0.2, 0.5), 0.5), Verdict::Unchanged);
        assert_eq!(verdict(&r(0.2, 0.499_999), 0.5), Verdict::Improved);
        assert_eq!(verdict(&r(0.9, 1.2), 0.05), Verdict::Unchanged);
    }

    #[test]
    fn verdicts_and_keys_read_as_reports_print_them() {
        let words: Vec<String> = [
            Verdict::Regressed,
            Verdict::Improved,
            Verdict::Unchanged,
            Verdict::Inconclusive,
            Verdict::Moved,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            words,
            [
                "REGRESSED",
                "improved",
                "unchanged",
                "inconclusive (busy)",
                "inconclusive (cores moved)"
            ]
        );
        assert_eq!(level_suffix(Optimize::Default), "");
        assert_eq!(level_suffix(Optimize::Max), " --optimize max");
        let key = CellKey {
            model: "resnet50".into(),
            framework: "ort".into(),
            device: Device::Cpu,
            mode: Mode::Parallel,
            optimize: Optimize::None,
            precision: Precision::Fp32,
            batch: 16,
            size: 224,
        };
        assert_eq!(
            key.to_string(),
            "resnet50 ort cpu parallel b16 224px --optimize none"
        );
    }
}
