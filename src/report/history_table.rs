//! A run judged against its history, and the step changes of a history, as
//! grids (terminal table, markdown for a pull-request comment).

use super::against::{Row, Table};
use super::grid::Grid;
use crate::compare::Verdict;
use crate::history::verdict::{count, Basis, HistoryComparison, Judged, MIN_RUNS};
use crate::history::Listed;

fn rows(v: &[Judged]) -> Vec<Row<'_>> {
    v.iter()
        .map(|j| {
            let n = match (j.basis, j.since_step) {
                (Basis::LastRun, _) => format!("{} (last run)", j.hist_n),
                (Basis::History, true) => format!("{} since step", j.hist_n),
                (Basis::History, false) => j.hist_n.to_string(),
            };
            Row {
                what: &j.what,
                reference: j.reference,
                current: j.current,
                ratio: &j.ratio,
                extra: vec![
                    n,
                    j.spread.map_or("-".into(), |s| {
                        format!("±{:.1}%", s / j.reference.abs() * 100.0)
                    }),
                    j.z.map_or("-".into(), |z| format!("{z:+.1}")),
                ],
                verdict: j.verdict,
            }
        })
        .collect()
}

/// The table of a comparison with the history: `first` names a row,
/// `unit` its values.
fn table<'a>(title: &str, first: &'a str, unit: &'a str) -> Table<'a> {
    Table {
        title: title.into(),
        first,
        reference: "reference",
        extra: &["hist n", "hist spread", "z"],
        unit,
    }
}

fn fallback_note(v: &[Judged]) -> Option<String> {
    let few: Vec<&str> = v
        .iter()
        .filter(|j| j.basis == Basis::LastRun)
        .map(|j| j.what.as_str())
        .collect();
    if !few.is_empty() && few.len() == v.len() {
        return Some(format!("Fewer than {MIN_RUNS} runs in the history for every one: judged against the last run alone (the single-baseline rule)."));
    }
    (!few.is_empty()).then(|| {
        format!(
            "Fewer than {MIN_RUNS} runs in the history, judged against the last run alone (the single-baseline rule): {}.",
            few.join("; ")
        )
    })
}

pub fn grids(c: &HistoryComparison) -> Vec<Grid> {
    let mut notes = vec![format!(
        "{} regressed, {} improved, {} unchanged against the last {} runs holding each cell ({} run(s) in the history): a change counts only when its whole 95% interval lies beyond the {:.0}% threshold and it lies beyond z = {} spreads: z = (current - reference) / sqrt(spread^2 + SE^2), spread the run-to-run spread (1.4826 x MAD of the runs' medians), SE the current median's standard error.",
        count(&c.cells, Verdict::Regressed),
        count(&c.cells, Verdict::Improved),
        count(&c.cells, Verdict::Unchanged),
        c.lookback,
        c.runs,
        c.threshold * 100.0,
        c.z
    )];
    notes.extend(fallback_note(&c.cells));
    notes.extend(super::comparison::inconclusive_note(count(
        &c.cells,
        Verdict::Inconclusive,
    )));
    notes.extend(super::comparison::moved_note(count(
        &c.cells,
        Verdict::Moved,
    )));
    if c.cells.iter().any(|j| j.since_step) {
        notes.push(
            "\"since step\": the cell's level changed in the window; its history starts there."
                .into(),
        );
    }
    if !c.no_history.is_empty() {
        notes.push(format!(
            "No earlier run holds: {}.",
            c.no_history.join("; ")
        ));
    }
    if !c.missing.is_empty() {
        notes.push(format!(
            "In the latest earlier run, not in the current one: {}.",
            c.missing.join("; ")
        ));
    }
    let times =
        table("Median latency, current vs history", "cell", " ms").grid(&rows(&c.cells), notes);
    if c.within_run.is_empty() {
        return vec![times];
    }
    let mut notes = vec![format!(
        "{} of {} ratios moved beyond the threshold and the spread.",
        super::comparison::changed(c.within_run.iter().map(|x| x.verdict)),
        c.within_run.len()
    )];
    notes.extend(fallback_note(&c.within_run));
    notes.extend(super::comparison::moved_note(count(
        &c.within_run,
        Verdict::Moved,
    )));
    vec![
        times,
        table("Within-run ratios, current vs history", "ratio", "")
            .grid(&rows(&c.within_run), notes),
    ]
}

/// The step changes of a history, one row each.
pub fn steps(steps: &[Listed], cells: usize, runs: usize) -> Grid {
    Grid {
        title: "Step changes per cell (a level that shifted and stayed for at least two runs)"
            .into(),
        header: ["cell", "run", "started", "before", "after", "change"]
            .map(String::from)
            .to_vec(),
        rows: steps
            .iter()
            .map(|s| {
                vec![
                    s.cell.clone(),
                    s.run.to_string(),
                    s.started.clone(),
                    format!("{:.3} ms", s.before_ms),
                    format!("{:.3} ms", s.after_ms),
                    format!("{:+.1}%", s.change * 100.0),
                ]
            })
            .collect(),
        notes: vec![format!(
            "{} step(s) in {cells} cells over {runs} runs (run 1 is the oldest). A step is a change point of a penalised least-absolute-deviations fit of the per-run medians (asv's method): a single outlier is not one, nor a change under 5%.",
            steps.len()
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::stats::Ratio;

    fn judged(basis: Basis, since_step: bool) -> Judged {
        Judged {
            what: "resnet50 ort cpu sequential b1 128px".into(),
            reference: 40.0,
            current: 48.0,
            ratio: Ratio::new(1.2, (1.15, 1.25)),
            hist_n: if basis == Basis::History { 10 } else { 2 },
            since_step,
            current_se: 0.5,
            spread: (basis == Basis::History).then_some(2.0),
            z: (basis == Basis::History).then_some(4.0),
            basis,
            verdict: Verdict::Regressed,
        }
    }

    #[test]
    fn rows_show_hist_n_spread_z_and_the_fallback() {
        let c = HistoryComparison {
            threshold: 0.05,
            z: 3.0,
            lookback: 10,
            runs: 12,
            cells: vec![
                judged(Basis::History, false),
                judged(Basis::LastRun, false),
                judged(Basis::History, true),
            ],
            within_run: vec![],
            no_history: vec!["x".into()],
            missing: vec![],
            across: vec![],
        };
        let g = grids(&c);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].header[5..], ["hist n", "hist spread", "z", "verdict"]);
        assert_eq!(
            g[0].rows[0][1..],
            [
                "40.000 ms",
                "48.000 ms",
                "+20.0%",
                "[+15.0%, +25.0%]",
                "10",
                "±5.0%",
                "+4.0",
                "REGRESSED"
            ]
        );
        assert_eq!(g[0].rows[1][5..8], ["2 (last run)", "-", "-"]);
        assert_eq!(g[0].rows[2][5], "10 since step");
        assert!(g[0].notes[0]
            .starts_with("3 regressed, 0 improved, 0 unchanged against the last 10 runs"));
        assert!(g[0].notes[1].starts_with("Fewer than 3 runs in the history"));
        assert!(g[0].notes.iter().any(|n| n == "No earlier run holds: x."));
        // all on the fallback: said once, not cell by cell
        let all = [judged(Basis::LastRun, false), judged(Basis::LastRun, false)];
        assert_eq!(
            fallback_note(&all).unwrap(),
            "Fewer than 3 runs in the history for every one: judged against the last run alone (the single-baseline rule)."
        );
        assert_eq!(fallback_note(&[judged(Basis::History, false)]), None);
    }
}
