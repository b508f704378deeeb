//! The table both comparisons print, a run's cells or within-run ratios
//! against a reference (a baseline run, or the history): what, the
//! reference, the current value, the change with its 95% interval, the
//! comparison's own columns, the verdict.

use super::grid::Grid;
use crate::compare::Verdict;
use crate::record::stats::Ratio;

/// One compared quantity.
pub struct Row<'a> {
    pub what: &'a str,
    pub reference: f64,
    pub current: f64,
    /// current / reference, with its 95% interval.
    pub ratio: &'a Ratio,
    /// The comparison's own columns, between the interval and the verdict.
    pub extra: Vec<String>,
    pub verdict: Verdict,
}

/// A ratio as a signed change in percent.
fn change(x: f64) -> String {
    format!("{:+.1}%", (x - 1.0) * 100.0)
}

/// Where the rows go and how they are named.
pub struct Table<'a> {
    pub title: String,
    /// What a row is: `cell` or `ratio`.
    pub first: &'a str,
    /// What it is compared with: `baseline`, `reference`.
    pub reference: &'a str,
    /// The comparison's own columns' names.
    pub extra: &'a [&'a str],
    /// The values' unit (` ms`, or nothing for a ratio).
    pub unit: &'a str,
}

impl Table<'_> {
    pub fn grid(&self, rows: &[Row], notes: Vec<String>) -> Grid {
        let mut header = vec![self.first, self.reference, "current", "change", "95% CI"];
        header.extend(self.extra);
        header.push("verdict");
        let unit = self.unit;
        Grid {
            title: self.title.clone(),
            header: header.into_iter().map(String::from).collect(),
            rows: rows
                .iter()
                .map(|r| {
                    let mut v = vec![
                        r.what.to_string(),
                        format!("{:.3}{unit}", r.reference),
                        format!("{:.3}{unit}", r.current),
                        change(r.ratio.value),
                        format!("[{}, {}]", change(r.ratio.ci.0), change(r.ratio.ci.1)),
                    ];
                    v.extend(r.extra.iter().cloned());
                    v.push(r.verdict.to_string());
                    v
                })
                .collect(),
            notes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reads_reference_current_change_interval_extra_verdict() {
        let ratio = Ratio {
            value: 1.1,
            ci: (1.05, 1.16),
            z: 1.96,
        };
        let t = Table {
            title: "t".into(),
            first: "cell",
            reference: "baseline",
            extra: &["z"],
            unit: " ms",
        };
        let row = Row {
            what: "resnet50 ort",
            reference: 10.0,
            current: 11.0,
            ratio: &ratio,
            extra: vec!["+3.0".into()],
            verdict: Verdict::Regressed,
        };
        let g = t.grid(&[row], vec![]);
        assert_eq!(
            g.header,
            ["cell", "baseline", "current", "change", "95% CI", "z", "verdict"]
        );
        assert_eq!(
            g.rows[0],
            [
                "resnet50 ort",
                "10.000 ms",
                "11.000 ms",
                "+10.0%",
                "[+5.0%, +16.0%]",
                "+3.0",
                &Verdict::Regressed.to_string()
            ]
        );
    }
}
