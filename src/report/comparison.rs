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

/// How many changes came with the host moving the machine's cores
/// ([`Verdict::Moved`]).
pub fn moved_note(n: usize) -> Option<String> {
    (n > 0).then(|| {
        format!(
            "{n} inconclusive (cores moved): the change came with the host moving the machine's cores (the probe before each round read them near in one run and far apart in the other, or the reverse), so it may be where the host put them, not the code; rerun, or compare runs on one placement (the run's limits table gives each cell's 'cores apart')."
        )
    })
}

/// How many of `changes` moved beyond the threshold: regressed or
/// improved.
pub fn changed(changes: impl IntoIterator<Item = Verdict>) -> usize {
    changes
        .into_iter()
        .filter(|v| matches!(v, Verdict::Regressed | Verdict::Improved))
        .count()
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
    notes.extend(moved_note(count(&c.cells, Verdict::Moved)));
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
            [format!(
                "{} of {} ratios moved beyond the threshold.",
                changed(c.within_run.iter().map(|x| x.verdict)),
                c.within_run.len()
            )]
            .into_iter()
            .chain(moved_note(count(&c.within_run, Verdict::Moved)))
            .collect(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regressed_and_improved_count_as_changed() {
        use Verdict::*;
        assert_eq!(
            changed([
                Regressed,
                Improved,
                Unchanged,
                Inconclusive,
                Moved,
                Regressed
            ]),
            3
        );
        assert_eq!(changed([Unchanged, Inconclusive, Moved]), 0);
        assert!(moved_note(0).is_none());
        assert!(moved_note(2)
            .unwrap()
            .starts_with("2 inconclusive (cores moved): "));
    }
}
