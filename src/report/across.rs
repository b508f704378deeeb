//! The table of each speedup across runs ([`crate::history::across`]):
//! this run's reading with its own interval, the speedup pooled with the
//! earlier runs of the results folder, and how far it moves from run to
//! run beyond each run's own error.

use super::grid::Grid;
use crate::history::across::Across;
use crate::record::target::percent;

/// The table's title, by which the HTML page links to it.
pub const TITLE: &str = "Across runs: each speedup with the earlier runs of the results folder";

fn interval(r: &crate::record::stats::Ratio) -> String {
    format!("{:.3}x ±{}", r.value, percent(r.half_width()))
}

/// `None` where no speedup has earlier runs enough; `held`: the run held
/// its schedules, so only runs of the same schedule were pooled;
/// `target`: the run's precision target.
pub fn grid(across: &[Across], held: bool, target: Option<f64>) -> Option<Grid> {
    if across.is_empty() {
        return None;
    }
    let rows = across
        .iter()
        .map(|a| {
            vec![
                a.what.clone(),
                a.runs.to_string(),
                interval(&a.this),
                interval(&a.pooled),
                percent(a.tau),
                interval(&a.next),
                if a.this_off() { "NO" } else { "yes" }.to_string(),
            ]
        })
        .collect();
    let off = across.iter().filter(|a| a.this_off()).count();
    let mut notes = vec![format!(
        "Each speedup pooled over its latest runs on this machine (its host, CPU, cores and GPU) in the results folder, this one included (random effects: DerSimonian-Laird's run-to-run sd, Hartung-Knapp's interval at Student's t over runs - 1). The run sd is how far a speedup moves from run to run beyond each run's own interval: more rounds in one run cannot narrow it, more runs can. 'next run': where another run on this machine should read (a prediction interval over the pooled error, the run sd and a run's own error); a run outside it differs by more than this machine's runs do. 'holds it': this run's interval holds the pooled speedup; {off} of {} miss it.",
        across.len()
    )];
    if held {
        notes.push("This run held its schedules (--schedules-from): only runs that ran the same schedule are pooled.".into());
    }
    if let Some(t) = target {
        let above: Vec<String> = across
            .iter()
            .filter(|a| a.tau > t)
            .map(|a| format!("{} ±{}", a.what, percent(a.tau)))
            .collect();
        if !above.is_empty() {
            notes.push(format!(
                "Run sd above the target ±{}: {}. One run of these reads to its own interval, another run may read elsewhere; pool runs to pin them.",
                percent(t),
                above.join(", ")
            ));
        }
    }
    Some(Grid {
        title: TITLE.into(),
        header: [
            "speedup",
            "runs",
            "this run [95%]",
            "pooled [95%]",
            "run sd",
            "next run [95%]",
            "holds it",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::stats::Ratio;

    fn across(this: (f64, f64, f64), pooled: (f64, f64, f64), tau: f64) -> Across {
        let r = |(v, lo, hi): (f64, f64, f64)| Ratio {
            value: v,
            ci: (lo, hi),
            z: 2.0,
        };
        Across {
            what: "scalenet50 torch cpu b16 224px".into(),
            runs: 4,
            this: r(this),
            values: vec![1.0; 4],
            tau,
            pooled: r(pooled),
            next: r((pooled.0, pooled.1 - 0.05, pooled.2 + 0.05)),
        }
    }

    #[test]
    fn rows_say_whether_this_run_holds_the_pooled_speedup() {
        assert!(grid(&[], false, Some(0.02)).is_none());
        let a = [
            across((1.10, 1.08, 1.12), (1.09, 1.05, 1.13), 0.01),
            across((1.20, 1.18, 1.22), (1.12, 1.02, 1.22), 0.04),
        ];
        let g = grid(&a, true, Some(0.02)).unwrap();
        assert_eq!(
            g.rows[0],
            [
                "scalenet50 torch cpu b16 224px",
                "4",
                "1.100x ±1.8%",
                "1.090x ±3.7%",
                "1%",
                "1.090x ±8.3%",
                "yes"
            ]
        );
        assert_eq!(g.rows[1][6], "NO");
        assert!(g.notes[0].ends_with("1 of 2 miss it."), "{:?}", g.notes);
        assert!(g.notes[1].contains("only runs that ran the same schedule"));
        assert!(
            g.notes[2]
                .starts_with("Run sd above the target ±2%: scalenet50 torch cpu b16 224px ±4%."),
            "{:?}",
            g.notes
        );
        // no target, not held: the first note alone
        assert_eq!(grid(&a, false, None).unwrap().notes.len(), 1);
        assert_eq!(grid(&a, false, Some(0.05)).unwrap().notes.len(), 1);
    }
}
