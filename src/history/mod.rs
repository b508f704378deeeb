//! Results over time: a cell's per-run medians as a series, verdicts that
//! know each cell's run-to-run spread ([`verdict`]), and step changes in a
//! series ([`steps`]). Reads `record` and `compare`; pure.

pub mod across;
pub mod steps;
pub mod verdict;

use serde::Serialize;

use crate::compare::CellKey;
use crate::record::stats::median;
use crate::record::RunFile;

/// One cell over the runs: its median in each run holding it.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub key: CellKey,
    /// (run index, median ms), oldest first.
    pub points: Vec<(usize, f64)>,
    /// Level changes, `index` into `points`.
    pub steps: Vec<steps::Step>,
}

/// A step as listed: the cell, the run where the new level starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    pub cell: String,
    /// The run's place in time order (1: the oldest).
    pub run: usize,
    pub started: String,
    pub before_ms: f64,
    pub after_ms: f64,
    /// after / before - 1.
    pub change: f64,
}

/// Every cell's series over `runs` (in time order), keys sorted, with its
/// steps. The last record of a key in a run wins.
pub fn series(runs: &[RunFile], p: &steps::Params) -> Vec<Series> {
    let index: Vec<_> = runs
        .iter()
        .map(|r| crate::compare::index(&r.cells))
        .collect();
    let mut keys: Vec<CellKey> = index.iter().flat_map(|i| i.keys().cloned()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|key| {
            let points: Vec<(usize, f64)> = index
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.get(&key).map(|c| (i, median(&c.samples_ms))))
                .filter(|(_, m)| m.is_finite())
                .collect();
            let y: Vec<f64> = points.iter().map(|p| p.1).collect();
            Series {
                steps: steps::detect(&y, p),
                key,
                points,
            }
        })
        .collect()
}

/// The steps of every series, cell by cell, as listed.
pub fn listed(series: &[Series], runs: &[RunFile]) -> Vec<Listed> {
    series
        .iter()
        .flat_map(|s| {
            s.steps.iter().map(|st| {
                let run = s.points[st.index].0;
                Listed {
                    cell: s.key.to_string(),
                    run: run + 1,
                    started: runs[run].started.clone(),
                    before_ms: st.before,
                    after_ms: st.after,
                    change: st.change(),
                }
            })
        })
        .collect()
}
