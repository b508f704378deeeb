//! The table of what limits each paired ratio's precision: per speedup
//! (and A/A repeat), how much of the noise in time its pairs cancelled,
//! how much the pairs kept, how much lies between worker processes, and
//! the hypervisor's steal while they timed; so a reader knows whether more
//! rounds or more processes (or a quieter machine) would narrow it.

use super::grid::{self, Grid};
use crate::record::limits::{limits, Limits};
use crate::record::CellRecord;

/// Above this share of a ratio's variance between processes, more
/// processes narrow its interval and more rounds do not.
const PROCESS_BOUND: f64 = 0.5;

fn share(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

/// What would narrow a ratio whose variance is `l`.
fn bound_by(l: &Limits) -> &'static str {
    if l.process_share > PROCESS_BOUND {
        "processes"
    } else {
        "rounds"
    }
}

/// The most steal time of either cell's processes, in cores.
fn steal(a: &CellRecord, b: &CellRecord) -> String {
    match a
        .stolen_cores()
        .into_iter()
        .chain(b.stolen_cores())
        .reduce(f64::max)
    {
        Some(s) => format!("{s:.2}"),
        None => "-".into(),
    }
}

/// What a row's two cells are to each other.
#[derive(Clone, Copy)]
enum Paired {
    /// A cell's sequential and parallel modes.
    Speedup,
    /// An A/A repeat and its original.
    Repeat,
}

/// The cells' paired ratios: each speedup (sequential over parallel) and
/// each A/A repeat over its original, with what limits it; `None` where
/// no ratio was timed in lock-step.
pub fn grid(cells: &[CellRecord]) -> Option<Grid> {
    let speedups = cells
        .iter()
        .filter_map(|par| Some((super::sequential_twin(par, cells)?, par, Paired::Speedup)));
    let repeats = cells
        .iter()
        .filter_map(|c| Some((c, super::repeats::original(c, cells)?, Paired::Repeat)));
    let mut rows = Vec::new();
    for (a, b, what) in speedups.chain(repeats) {
        let Some(l) = limits(a, b) else {
            continue;
        };
        let (r, ratio) = match what {
            Paired::Speedup => (grid::speedup(a, b), "seq / par".to_string()),
            Paired::Repeat => (
                crate::compare::within(a, b),
                format!("repeat / original {}", a.mode),
            ),
        };
        rows.push(vec![
            a.model.clone(),
            format!(
                "{}{}",
                b.framework,
                crate::record::setting_suffix(b.optimize, b.precision)
            ),
            ratio,
            format!(
                "{:.3}x ±{}",
                r.value,
                crate::record::target::percent(r.half_width())
            ),
            format!("{} · {}", l.pairs, l.processes),
            share(l.pair_sd),
            l.drift_cancelled.map_or("-".into(), share),
            share(l.process_share),
            steal(a, b),
            bound_by(&l).into(),
        ]);
    }
    if rows.is_empty() {
        return None;
    }
    Some(Grid {
        title: "What limits each ratio's precision".into(),
        header: [
            "model",
            "framework",
            "ratio",
            "value ±95%",
            "pairs · processes",
            "pair sd",
            "drift cancelled",
            "between processes",
            "steal (cores)",
            "narrowed by more",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        notes: vec![
            "pair sd: how much one pair's log ratio varies within a process (round to round). drift cancelled: the share of the two cells' variance in time that they shared round by round, which the pairs cancel (negative: pairing added noise). between processes: the share of the ratio's variance of the mean that lies between worker processes (each process's own offset); above half, more processes narrow the interval and more rounds do not. steal: the most a hypervisor gave other guests while these processes timed.".into(),
        ],
    })
    .map(|mut g| {
        g.notes.extend(grid::busy_note(cells));
        g
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_speedup_of_the_quick_run_says_what_limits_it() {
        let file = super::super::fixture("quick-cpu-2core-lockstep.json");
        let g = grid(&file.cells).unwrap();
        let speedups = file
            .cells
            .iter()
            .filter(|p| super::super::sequential_twin(p, &file.cells).is_some())
            .count();
        assert_eq!(g.rows.len(), speedups);
        for row in &g.rows {
            assert_eq!(row.len(), g.header.len());
            assert!(row[9] == "rounds" || row[9] == "processes", "{row:?}");
        }
    }

    #[test]
    fn the_bound_follows_the_process_share() {
        let l = |process_share| Limits {
            pairs: 10,
            processes: 2,
            pair_sd: 0.05,
            drift_cancelled: Some(0.5),
            process_share,
        };
        assert_eq!(bound_by(&l(0.6)), "processes");
        assert_eq!(bound_by(&l(0.5)), "rounds");
        assert_eq!(bound_by(&l(0.1)), "rounds");
    }
}
