//! A comparison as grids: per-cell times, within-run ratios, and the cells
//! found on one side only. The markdown form is fit for a pull-request comment.

use super::against::{Row, Table};
use super::grid::Grid;
use crate::compare::{Change, Comparison, Verdict};

fn rows(changes: &[Change]) -> Vec<Row<'_>> {
    changes
        .iter()
        .map(|c| Row {
            what: &c.what,
            reference: c.baseline,
            current: c.current,
            ratio: &c.ratio,
            extra: vec![],
            verdict: c.verdict,
        })
        .collect()
}

/// The table of a comparison with a baseline: `first` names a row, `unit`
/// its values.
fn table<'a>(title: &str, first: &'a str, unit: &'a str) -> Table<'a> {
    Table {
        title: title.into(),
        first,
        reference: "baseline",
        extra: &[],
        unit,
    }
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
    if !c.other_schedule.is_empty() {
        notes.push(format!(
            "Another schedule than the baseline's: {} (each run calibrated its own; `run --schedules-from` the baseline holds its schedules, so a change is the runtime's).",
            c.other_schedule.join("; ")
        ));
    }
    let times =
        table("Median latency, current vs baseline", "cell", " ms").grid(&rows(&c.cells), notes);
    if c.within_run.is_empty() {
        return vec![times];
    }
    vec![
        times,
        table(
            "Within-run ratios, current vs baseline (robust to a slower or busier runner)",
            "ratio",
            "",
        )
        .grid(
            &rows(&c.within_run),
            vec![format!(
                "{} of {} ratios moved beyond the threshold.",
                c.within_run
                    .iter()
                    .filter(|x| x.verdict != Verdict::Unchanged)
                    .count(),
                c.within_run.len()
            )],
        ),
    ]
}
