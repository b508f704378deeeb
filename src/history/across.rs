//! A speedup across runs: what one run's interval cannot see.
//!
//! A run's 95% interval of a speedup is over its own processes and rounds,
//! all timed within the few minutes the run took. On a shared VM the
//! speedup itself moves from run to run by more than that (five identical
//! runs of TensorFlow's ResNeXt-50-branched read 1.125-1.186x, each known
//! to +-1.5-2.5%): the host's state, which lasts minutes, changes how well
//! two cores run at once, and no pairing inside one run cancels it.
//!
//! So, where a results folder holds earlier runs of the same speedup on
//! the same host, the speedup is pooled over them as a random-effects
//! meta-analysis: each run's log speedup `y_i` with its own standard error
//! `s_i` (from its interval, with the interval's own quantile), the
//! run-to-run variance `tau^2` by DerSimonian and Laird's moment estimator
//! (Controlled Clinical Trials 7, 1986), the pooled mean weighted by
//! `1 / (s_i^2 + tau^2)`, and its interval by Hartung and Knapp (Stat Med
//! 20, 2001): Student's t at `k - 1` degrees of freedom over the weighted
//! spread of the runs about the mean, never narrower than the weights'
//! own error. `tau` is the share by which the speedup moves from run to
//! run beyond each run's error; more rounds in one run cannot narrow it,
//! more runs can.

use serde::Serialize;

use crate::compare::{self, CellKey};
use crate::record::intervals::t975;
use crate::record::stats::Ratio;
use crate::record::{CellRecord, Mode};

/// How many of the latest runs holding a speedup `run` pools (as
/// `compare --history`'s default lookback).
pub const LOOKBACK: usize = 10;
/// The fewest runs (the current one included) that are pooled.
pub const MIN_RUNS: usize = 3;
/// A run's log standard error is at least this (a one-process cell's
/// interval can be a point).
const MIN_SE: f64 = 1e-4;

/// One speedup over runs.
#[derive(Debug, Clone, Serialize)]
pub struct Across {
    /// The speedup, as `model framework device b.. ..px`.
    pub what: String,
    /// The runs pooled, the current one included.
    pub runs: usize,
    /// This run's speedup with its own interval.
    pub this: Ratio,
    /// Every pooled run's speedup, oldest first, the current one last.
    pub values: Vec<f64>,
    /// The run-to-run standard deviation beyond each run's own error, as a
    /// share of the speedup (the log scale's sd).
    pub tau: f64,
    /// The pooled speedup with its 95% interval.
    pub pooled: Ratio,
    /// Where another run on this machine should read, 95%: a prediction
    /// interval about the pooled speedup, over the pooled error, the
    /// run-to-run sd and a run's own error (the pooled runs' median).
    pub next: Ratio,
}

impl Across {
    /// This run's interval misses the pooled speedup.
    pub fn this_off(&self) -> bool {
        self.pooled.value < self.this.ci.0 || self.pooled.value > self.this.ci.1
    }
}

/// One run's log speedup and its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub log: f64,
    pub se: f64,
}

impl Reading {
    pub fn of(r: &Ratio) -> Reading {
        Reading {
            log: r.value.ln(),
            se: r.log_se().max(MIN_SE),
        }
    }
}

/// The pooled log speedup, its 95% half-width (log scale), the quantile it
/// was drawn at and `tau`, over `k >= 2` readings.
pub fn pool(readings: &[Reading]) -> (f64, f64, f64, f64) {
    let k = readings.len();
    let w: Vec<f64> = readings.iter().map(|r| 1.0 / (r.se * r.se)).collect();
    let sw: f64 = w.iter().sum();
    let sw2: f64 = w.iter().map(|w| w * w).sum();
    let fixed: f64 = readings.iter().zip(&w).map(|(r, w)| w * r.log).sum::<f64>() / sw;
    let q: f64 = readings
        .iter()
        .zip(&w)
        .map(|(r, w)| w * (r.log - fixed).powi(2))
        .sum();
    let df = (k - 1) as f64;
    let tau2 = ((q - df) / (sw - sw2 / sw)).max(0.0);
    let ws: Vec<f64> = readings
        .iter()
        .map(|r| 1.0 / (r.se * r.se + tau2))
        .collect();
    let sws: f64 = ws.iter().sum();
    let mu = readings
        .iter()
        .zip(&ws)
        .map(|(r, w)| w * r.log)
        .sum::<f64>()
        / sws;
    let hk = readings
        .iter()
        .zip(&ws)
        .map(|(r, w)| w * (r.log - mu).powi(2))
        .sum::<f64>()
        / (df * sws);
    let t = t975(k - 1);
    (mu, t * hk.max(1.0 / sws).sqrt(), t, tau2.sqrt())
}

/// The 95% half-width (log scale) of the prediction interval for another
/// run: the pooled mean's error (`hw / t`), the run-to-run sd and a run's
/// own error, the median of the readings', at the same quantile `t`.
pub fn predict(readings: &[Reading], hw: f64, t: f64, tau: f64) -> f64 {
    let se: Vec<f64> = readings.iter().map(|r| r.se).collect();
    let own = crate::record::stats::median(&se);
    t * ((hw / t).powi(2) + tau * tau + own * own).sqrt()
}

/// A ratio `exp(mu)` with the interval `exp(mu +- hw)` drawn at `z`.
fn log_ratio(mu: f64, hw: f64, z: f64) -> Ratio {
    Ratio {
        value: mu.exp(),
        ci: ((mu - hw).exp(), (mu + hw).exp()),
        z,
    }
}

/// Whether two cells were timed on one machine: the same host, and the
/// same CPU, cores and GPU where both record them.
fn same_machine(a: &CellRecord, b: &CellRecord) -> bool {
    a.host == b.host
        && match (&a.env, &b.env) {
            (Some(x), Some(y)) => x.same_machine(y),
            _ => true,
        }
}

/// The placement of the cores a cell's rounds were held for (`run
/// --placement`).
fn held_for(c: &CellRecord) -> crate::record::placement::Wanted {
    c.processes.first().map(|p| p.placement).unwrap_or_default()
}

/// The runs that count for a speedup of the current run: on its machine,
/// held for the same placement of its cores, and where the current run
/// held its schedule (`held`), with the same schedule in the parallel
/// cell.
fn comparable(
    seq: &CellRecord,
    par: &CellRecord,
    now: (&CellRecord, &CellRecord),
    held: bool,
) -> bool {
    same_machine(seq, now.0)
        && same_machine(par, now.1)
        && held_for(seq) == held_for(now.0)
        && !(held && compare::other_schedule(par, now.1))
}

/// Every speedup of `current` that at least `MIN_RUNS - 1` of the
/// `earlier` runs (their cells, oldest first) hold as well, pooled over the
/// last `lookback` runs holding it (the current one among them). `held`:
/// the current run held its schedules (`run --schedules-from`).
pub fn across(
    earlier: &[&[CellRecord]],
    current: &[CellRecord],
    lookback: usize,
    held: bool,
) -> Vec<Across> {
    let runs: Vec<_> = earlier.iter().map(|r| compare::index(r)).collect();
    let cur = compare::index(current);
    let mut out = Vec::new();
    for (k, &par) in cur.iter().filter(|(k, _)| k.mode == Mode::Parallel) {
        let seq_key = CellKey {
            mode: Mode::Sequential,
            ..k.clone()
        };
        let Some(&seq) = cur.get(&seq_key) else {
            continue;
        };
        let now = (seq, par);
        let mut pairs: Vec<(&CellRecord, &CellRecord)> = Vec::new();
        for (s, p) in runs
            .iter()
            .filter_map(|r| Some((*r.get(&seq_key)?, *r.get(k)?)))
            .filter(|(s, p)| comparable(s, p, now, held))
        {
            // a run in the folder twice (a merged file beside its shards,
            // a copy) counts once, and never as the current run
            let same = |(a, b): &(&CellRecord, &CellRecord)| {
                a.samples_ms == s.samples_ms && b.samples_ms == p.samples_ms
            };
            if !same(&now) && !pairs.iter().any(same) {
                pairs.push((s, p));
            }
        }
        let mut ratios: Vec<Ratio> = pairs
            .into_iter()
            .map(|(s, p)| compare::within(s, p))
            .filter(|r| r.value > 0.0 && r.value.is_finite())
            .collect();
        let this = compare::within(seq, par);
        ratios.push(this);
        let ratios = &ratios[ratios.len().saturating_sub(lookback.max(MIN_RUNS))..];
        if ratios.len() < MIN_RUNS || !(this.value > 0.0 && this.value.is_finite()) {
            continue;
        }
        let readings: Vec<Reading> = ratios.iter().map(Reading::of).collect();
        let (mu, hw, t, tau) = pool(&readings);
        let next = predict(&readings, hw, t, tau);
        out.push(Across {
            what: format!(
                "{} {} {} b{} {}px{}",
                k.model,
                k.framework,
                k.device,
                k.batch,
                k.size,
                crate::record::setting_suffix(k.optimize, k.precision)
            ),
            runs: ratios.len(),
            this,
            values: ratios.iter().map(|r| r.value).collect(),
            tau,
            pooled: log_ratio(mu, hw, t),
            next: log_ratio(mu, next, t),
        });
    }
    out
}

#[cfg(test)]
#[path = "across_tests.rs"]
mod tests;
