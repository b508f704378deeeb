//! A comparison as grids: per-cell times, within-run ratios, and the cells
//! found on one side only. The markdown form is fit for a pull-request comment.

use super::grid::Grid;
use crate::compare::{Change, Comparison, Verdict};

fn rows(changes: &[Change], unit: &str) -> Vec<Vec<String>> {
    changes
        .iter()
        .map(|c| {
            vec![
                c.what.clone(),
                format!("{:.3}{unit}", c.baseline),
                format!("{:.3}{unit}", c.current),
                format!("{:+.1}%", (c.ratio.value - 1.0) * 100.0),
                format!(
                    "[{:+.1}%, {:+.1}%]",
                    (c.ratio.ci.0 - 1.0) * 100.0,
                    (c.ratio.ci.1 - 1.0) * 100.0
                ),
                c.verdict.to_string(),
            ]
        })
        .collect()
}

/// How many were inconclusive because a cell was timed on a busy machine.
pub fn inconclusive_note(n: usize) -> Option<String> {
    (n > 0).then(|| {
        format!(
            "{n} inconclusive: timed while other processes took more than {} of a core (marked ! in the run's report); rerun on an idle machine.",
            crate::record::BUSY_CORES
        )
    })
}

fn header(first: &str) -> Vec<String> {
    [first, "baseline", "current", "change", "95% CI", "verdict"]
        .map(String::from)
        .to_vec()
}

pub fn grids(c: &Comparison) -> Vec<Grid> {
    let count = |v: &[Change], x: Verdict| v.iter().filter(|c| c.verdict == x).count();
    let summary = format!(
        "{} regressed, {} improved, {} unchanged at a {:.0}% threshold (a change counts only when its whole 95% interval lies beyond it).",
        count(&c.cells, Verdict::Regressed),
        count(&c.cells, Verdict::Improved),
        count(&c.cells, Verdict::Unchanged),
        c.threshold * 100.0
    );
    let mut notes = vec![summary];
    notes.extend(inconclusive_note(count(&c.cells, Verdict::Inconclusive)));
    if !c.only_in_baseline.is_empty() {
        notes.push(format!(
            "Only in the baseline: {}.",
            c.only_in_baseline.join("; ")
        ));
    }
    if !c.only_in_current.is_empty() {
        notes.push(format!(
            "Only in the current run: {}.",
            c.only_in_current.join("; ")
        ));
    }
    let times = Grid {
        title: "Median latency, current vs baseline".into(),
        header: header("cell"),
        rows: rows(&c.cells, " ms"),
        notes,
    };
    if c.within_run.is_empty() {
        return vec![times];
    }
    vec![
        times,
        Grid {
            title: "Within-run ratios, current vs baseline (robust to a slower or busier runner)"
                .into(),
            header: header("ratio"),
            rows: rows(&c.within_run, ""),
            notes: vec![format!(
                "{} of {} ratios moved beyond the threshold.",
                c.within_run
                    .iter()
                    .filter(|x| x.verdict != Verdict::Unchanged)
                    .count(),
                c.within_run.len()
            )],
        },
    ]
}
