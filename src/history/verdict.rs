//! `compare --history`: a verdict that knows each cell's run-to-run spread.
//!
//! One baseline file cannot tell a regression from the drift between two
//! identical runs (two smoke runs back to back on a shared 2-core VM moved
//! some cells by 10-15%). So each cell is judged against the last
//! `lookback` runs holding it: their medians give a reference (their median)
//! and a spread (1.4826 x their median absolute deviation, a robust
//! standard deviation: Rousseeuw & Croux, JASA 88, 1993). A cell regressed
//! only when the new run lies beyond both
//! - the threshold, as in [`crate::compare`]: the whole 95% interval of
//!   the new run's median, over the reference, above
//!   `1 + threshold`; and
//! - the spread: `z = (new median - reference) / sqrt(spread^2 + se^2)`
//!   above `z` (Conbench's lookback z-score), where `se` is the standard
//!   error of the new run's median, read from its 95% interval with the
//!   interval's own quantile ([`Ratio::log_se`]: Student's t at its degrees
//!   of freedom, 4.30 for three processes, not 1.96). The new median is one draw with its own error: a run that a
//!   burst of load made noisy is judged by that noise as well, and a few
//!   runs that happen to agree closely (a median absolute deviation near 0)
//!   do not make every change look like many spreads.
//!
//! Improved likewise below. A level change in the window (a step, found by
//! [`super::steps`]) followed by at least [`MIN_RUNS`] runs starts the
//! window there: the old level is not this cell's level any more. With
//! fewer than [`MIN_RUNS`] runs a cell falls back to the single-baseline
//! rule against the last run holding it, and says so. Within-run ratios
//! (parallel/sequential, framework/framework) are judged the same way.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::compare::{self, CellKey, Verdict};
use crate::record::stats::{median, Ratio};
use crate::record::CellRecord;

/// The fewest runs that give a spread; below, the single-baseline rule.
pub const MIN_RUNS: usize = 3;
/// 1.4826 x MAD estimates the standard deviation of normal data.
const MAD_SCALE: f64 = 1.4826;

/// The verdict's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Noise threshold, a fraction (0.05 = 5%).
    pub threshold: f64,
    /// How many spreads from the reference a change must lie.
    pub z: f64,
    /// How many of the latest runs holding a cell make its history.
    pub lookback: usize,
}

/// What a quantity was judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The last `hist_n` runs: reference, spread and z.
    History,
    /// Fewer than [`MIN_RUNS`] runs: the last run alone, as `compare
    /// BASELINE CURRENT` would.
    LastRun,
}

/// One judged quantity: a cell's time or a within-run ratio.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    pub what: String,
    /// The median of the history's medians (History), or the last run's
    /// median (LastRun); ms for a cell.
    pub reference: f64,
    pub current: f64,
    /// current / reference with its 95% CI.
    pub ratio: Ratio,
    /// Runs in the history window.
    pub hist_n: usize,
    /// The window starts after a step change in the cell's history.
    pub since_step: bool,
    /// Run-to-run spread of the window's medians (1.4826 x MAD), in the
    /// reference's unit; absent for LastRun.
    pub spread: Option<f64>,
    /// Standard error of the current run's median (from its 95% interval
    /// and the interval's own quantile), in the reference's unit.
    pub current_se: f64,
    /// (current - reference) / sqrt(spread^2 + current_se^2); absent for
    /// LastRun.
    pub z: Option<f64>,
    pub basis: Basis,
    pub verdict: Verdict,
}

/// A run judged against its history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryComparison {
    pub threshold: f64,
    pub z: f64,
    pub lookback: usize,
    /// Runs in the history (before the current one).
    pub runs: usize,
    pub cells: Vec<Judged>,
    pub within_run: Vec<Judged>,
    /// Cells of the current run that no earlier run holds.
    pub no_history: Vec<String>,
    /// Cells of the latest earlier run that the current run lacks.
    pub missing: Vec<String>,
    /// Each speedup pooled over the runs ([`super::across`]); filled by
    /// the command, which knows whether the run held its schedules.
    pub across: Vec<super::across::Across>,
}

impl HistoryComparison {
    pub fn regressions(&self) -> usize {
        count(&self.cells, Verdict::Regressed)
    }

    pub fn ratio_regressions(&self) -> usize {
        count(&self.within_run, Verdict::Regressed)
    }
}

pub fn count(v: &[Judged], x: Verdict) -> usize {
    v.iter().filter(|j| j.verdict == x).count()
}

/// Median and 1.4826 x median absolute deviation.
pub fn centre_and_spread(xs: &[f64]) -> (f64, f64) {
    let c = median(xs);
    let dev: Vec<f64> = xs.iter().map(|x| (x - c).abs()).collect();
    (c, MAD_SCALE * median(&dev))
}

/// (x - centre) / spread; a history without spread makes any change
/// infinitely many spreads wide (capped at 1e9, to stay a JSON number).
pub fn z_score(x: f64, centre: f64, spread: f64) -> f64 {
    let d = x - centre;
    if d == 0.0 {
        return 0.0;
    }
    (d / spread.max(f64::MIN_POSITIVE)).clamp(-1e9, 1e9)
}

/// Beyond the threshold (the whole interval) and beyond z spreads.
pub fn verdict(ratio: &Ratio, z: f64, p: &Params) -> Verdict {
    match compare::verdict(ratio, p.threshold) {
        Verdict::Regressed if z > p.z => Verdict::Regressed,
        Verdict::Improved if z < -p.z => Verdict::Improved,
        _ => Verdict::Unchanged,
    }
}

/// The window of a history series: the last `lookback` values, from the
/// last step change on when at least [`MIN_RUNS`] values follow it.
/// Returns where the window starts in `series` and whether a step cut it.
pub fn window(series: &[f64], lookback: usize) -> (usize, bool) {
    let start = series.len().saturating_sub(lookback.max(1));
    let last = &series[start..];
    let step = super::steps::detect(last, &super::steps::Params::default())
        .into_iter()
        .rev()
        .find(|s| last.len() - s.index >= MIN_RUNS);
    match step {
        Some(s) => (start + s.index, true),
        None => (start, false),
    }
}

/// A quantity's history `values` (oldest first, one per run), its current
/// value with the 95% interval of the current run alone, and the
/// two-run comparison against the last run for the fallback.
fn judge(
    what: String,
    values: &[f64],
    current: Ratio,
    against_last: impl FnOnce() -> Ratio,
    p: &Params,
) -> Judged {
    let (start, since_step) = window(values, p.lookback);
    // in units of the value, from the interval's own quantile
    let current_se = current.log_se() * current.value;
    let w = &values[start..];
    if w.len() < MIN_RUNS {
        let ratio = against_last();
        return Judged {
            what,
            reference: values[values.len() - 1],
            current: current.value,
            verdict: compare::verdict(&ratio, p.threshold),
            ratio,
            hist_n: w.len(),
            since_step,
            current_se,
            spread: None,
            z: None,
            basis: Basis::LastRun,
        };
    }
    let (reference, spread) = centre_and_spread(w);
    let ratio = Ratio {
        value: current.value / reference,
        ci: (current.ci.0 / reference, current.ci.1 / reference),
        z: current.z,
    };
    let z = z_score(current.value, reference, spread.hypot(current_se));
    Judged {
        what,
        reference,
        current: current.value,
        verdict: verdict(&ratio, z, p),
        ratio,
        hist_n: w.len(),
        since_step,
        current_se,
        spread: Some(spread),
        z: Some(z),
        basis: Basis::History,
    }
}

type Index<'a> = BTreeMap<CellKey, &'a CellRecord>;

/// The earlier cells `j` was judged against, of the `held` (oldest
/// first): the last run's where it fell back to it, else its window's.
fn compared_with<'a>(held: &[&'a CellRecord], j: &Judged) -> Vec<&'a CellRecord> {
    let n = match j.basis {
        Basis::LastRun => 1,
        Basis::History => j.hist_n,
    };
    held[held.len().saturating_sub(n)..].to_vec()
}

/// `j`, inconclusive where a cell of the current run behind it was busy.
fn unless_busy(mut j: Judged, cells: &[&CellRecord]) -> Judged {
    if cells.iter().any(|c| c.busy()) {
        j.verdict = Verdict::Inconclusive;
    }
    j
}

/// `current` judged against `history`: the cells of earlier runs, oldest
/// first.
pub fn judge_run(
    history: &[&[CellRecord]],
    current: &[CellRecord],
    p: &Params,
) -> HistoryComparison {
    let runs: Vec<Index> = history.iter().map(|r| compare::index(r)).collect();
    let cur = compare::index(current);
    let mut cells = Vec::new();
    let mut no_history = Vec::new();
    for (k, c) in &cur {
        let held: Vec<&CellRecord> = runs.iter().filter_map(|r| r.get(k).copied()).collect();
        let Some(last) = held.last() else {
            no_history.push(k.to_string());
            continue;
        };
        // each run's value by the method that gives the current one
        let values: Vec<f64> = held.iter().map(|b| compare::median_of(b).value).collect();
        let now = compare::median_of(c);
        let mut j = judge(
            k.to_string(),
            &values,
            now,
            || compare::time_ratio(c, last),
            p,
        );
        let against = compared_with(&held, &j);
        j.verdict = compare::unless_moved(j.verdict, &[(c, &against)]);
        cells.push(unless_busy(j, &[c]));
    }
    let mut within_run = Vec::new();
    for (num, den, what) in compare::ratio_pairs(&cur) {
        let held: Vec<(&CellRecord, &CellRecord)> = runs
            .iter()
            .filter_map(|r| Some((*r.get(&num)?, *r.get(&den)?)))
            .collect();
        let Some(&last) = held.last() else {
            continue;
        };
        let values: Vec<f64> = held
            .iter()
            .map(|(n, d)| compare::within(n, d).value)
            .collect();
        let (cn, cd) = (cur[&num], cur[&den]);
        let now = compare::within(cn, cd);
        let mut j = judge(
            what,
            &values,
            now,
            || compare::ratio_of_ratios((cn, cd), last),
            p,
        );
        let nums: Vec<&CellRecord> = held.iter().map(|h| h.0).collect();
        let dens: Vec<&CellRecord> = held.iter().map(|h| h.1).collect();
        let (an, ad) = (compared_with(&nums, &j), compared_with(&dens, &j));
        j.verdict = compare::unless_moved(j.verdict, &[(cn, &an), (cd, &ad)]);
        within_run.push(unless_busy(j, &[cn, cd]));
    }
    let missing = runs
        .last()
        .map(|r| {
            r.keys()
                .filter(|k| !cur.contains_key(*k))
                .map(ToString::to_string)
                .collect()
        })
        .unwrap_or_default();
    HistoryComparison {
        threshold: p.threshold,
        z: p.z,
        lookback: p.lookback,
        runs: history.len(),
        cells,
        within_run,
        no_history,
        missing,
        across: Vec::new(),
    }
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
