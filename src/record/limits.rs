//! What limits a paired ratio's precision: how much of the two cells'
//! noise in time the pairs cancel (drift common to a round), how much is
//! left in the pairs (round to round), and how much lies between worker
//! processes (each process's own offset, which more rounds cannot
//! average away).

use super::cell::{paired_times, CellRecord};

/// The variance decomposition of a paired ratio `a / b` (log space).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Limits {
    /// Pairs of passes timed back to back.
    pub pairs: usize,
    /// Processes with pairs.
    pub processes: usize,
    /// Standard deviation of one pair's log ratio within a process.
    pub pair_sd: f64,
    /// Share of the two cells' within-process variance of log time that
    /// pairing cancelled (what they shared round by round):
    /// `1 - var(ln a - ln b) / (var(ln a) + var(ln b))`. Negative where
    /// pairing added noise. `None` where neither cell varied.
    pub drift_cancelled: Option<f64>,
    /// Share of the ratio's variance of the mean that lies between
    /// processes ([`between_variance`] over R, against the pairs' own
    /// variance over their number); 0 with one process.
    pub process_share: f64,
}

/// The mean of `v` and the sum of its squared deviations from it.
fn mean_and_squares(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (m, v.iter().map(|x| (x - m).powi(2)).sum())
}

/// The process-level variance of paired log ratios: `processes` holds each
/// process's log ratios; the variance of their means less what their
/// pairs' own noise explains (the one-way random-effects estimate), never
/// below 0. `None` with fewer than two processes of two pairs.
pub fn between_variance(processes: &[Vec<f64>]) -> Option<f64> {
    let ps: Vec<&Vec<f64>> = processes.iter().filter(|p| p.len() >= 2).collect();
    if ps.len() < 2 {
        return None;
    }
    let stats: Vec<(f64, f64)> = ps
        .iter()
        .map(|p| {
            let n = p.len() as f64;
            let (m, ss) = mean_and_squares(p);
            (m, ss / (n - 1.0) / n)
        })
        .collect();
    let k = stats.len() as f64;
    let grand = stats.iter().map(|s| s.0).sum::<f64>() / k;
    let of_means = stats.iter().map(|s| (s.0 - grand).powi(2)).sum::<f64>() / (k - 1.0);
    let noise = stats.iter().map(|s| s.1).sum::<f64>() / k;
    Some((of_means - noise).max(0.0))
}

/// The pooled within-group variance of `values` grouped by `group` (each
/// group about its own mean, n - groups degrees of freedom); `None`
/// without a degree of freedom.
fn pooled_variance(values: &[(usize, f64)]) -> Option<f64> {
    let mut by: std::collections::BTreeMap<usize, Vec<f64>> = Default::default();
    for &(g, x) in values {
        by.entry(g).or_default().push(x);
    }
    let df = values.len().checked_sub(by.len()).filter(|&d| d > 0)?;
    let ss: f64 = by.values().map(|v| mean_and_squares(v).1).sum();
    Some(ss / df as f64)
}

/// What limits the paired ratio `a / b`; `None` where the cells share
/// fewer than two pairs within a process.
pub fn limits(a: &CellRecord, b: &CellRecord) -> Option<Limits> {
    let times = paired_times(a, b)?;
    let logs = |f: fn(&(usize, f64, f64)) -> f64| -> Vec<(usize, f64)> {
        times.iter().map(|t| (t.0, f(t))).collect()
    };
    let d = logs(|t| t.1.ln() - t.2.ln());
    let pair = pooled_variance(&d)?;
    let (va, vb) = (
        pooled_variance(&logs(|t| t.1.ln()))?,
        pooled_variance(&logs(|t| t.2.ln()))?,
    );
    let drift_cancelled = (va + vb > 0.0).then(|| 1.0 - pair / (va + vb));
    let groups = super::group_by_process(
        &d.iter().map(|x| x.1).collect::<Vec<_>>(),
        &d.iter().map(|x| x.0).collect::<Vec<_>>(),
    );
    let processes = groups.iter().filter(|g| !g.is_empty()).count();
    let between = between_variance(&groups).unwrap_or(0.0) / processes as f64;
    let within = pair / d.len() as f64;
    Some(Limits {
        pairs: d.len(),
        processes,
        pair_sd: pair.sqrt(),
        drift_cancelled,
        process_share: if between + within > 0.0 {
            between / (between + within)
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three processes whose pairs are exact and whose means are 0, 0.1
    /// and 0.2: the process level holds all their variance, 0.01; with
    /// noise inside each process, less of it is the processes'.
    #[test]
    fn the_process_level_variance() {
        let exact = [vec![0.0, 0.0], vec![0.1, 0.1], vec![0.2, 0.2]];
        assert!((between_variance(&exact).unwrap() - 0.01).abs() < 1e-12);
        // means 0, 0.1, 0.2 again, each pair set with variance 0.02 (sd
        // 0.1414 over two pairs): 0.02 / 2 = 0.01 of it is noise
        let noisy = [vec![-0.1, 0.1], vec![0.0, 0.2], vec![0.1, 0.3]];
        assert!(between_variance(&noisy).unwrap().abs() < 1e-12);
        // three pairs each (sd 0.1): each mean known to 0.01 / 3
        let three = [
            vec![-0.1, 0.0, 0.1],
            vec![0.0, 0.1, 0.2],
            vec![0.1, 0.2, 0.3],
        ];
        let want = 0.01 - 0.01 / 3.0;
        assert!((between_variance(&three).unwrap() - want).abs() < 1e-12);
        // never below zero; two processes of two pairs at least
        let calm = [vec![0.0, 0.2], vec![0.0, 0.2]];
        assert_eq!(between_variance(&calm), Some(0.0));
        assert_eq!(between_variance(&[vec![0.0, 0.1]]), None);
        assert_eq!(between_variance(&[vec![0.0], vec![0.1]]), None);
    }

    #[test]
    fn the_pooled_variance_is_about_each_groups_own_mean() {
        // groups 0: 1, 3 (ss 2) and 1: 10, 12, 14 (ss 8); df 5 - 2 = 3
        let v = [(0, 1.0), (0, 3.0), (1, 10.0), (1, 12.0), (1, 14.0)];
        assert!((pooled_variance(&v).unwrap() - 10.0 / 3.0).abs() < 1e-12);
        assert_eq!(pooled_variance(&[(0, 1.0), (1, 2.0)]), None);
    }

    use crate::record::cell::tests::cell;

    #[test]
    fn drift_shared_by_a_round_cancels_and_offsets_of_a_process_stay() {
        // both cells slow down together round by round: the ratio is
        // exactly 2 in every pair, so all of the drift cancels
        let drift = [10.0, 14.0, 11.0, 17.0];
        let a = cell(&[&drift.map(|x| 2.0 * x)], true);
        let b = cell(&[&drift], true);
        let l = limits(&a, &b).unwrap();
        assert_eq!((l.pairs, l.processes), (4, 1));
        assert!(l.pair_sd < 1e-12);
        assert!((l.drift_cancelled.unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(l.process_share, 0.0);

        // two processes whose ratios differ (2 and 2.2) with some noise
        // in the pairs: most of the ratio's variance is between them
        let a = cell(&[&[20.0, 20.2, 19.8], &[22.0, 22.2, 21.8]], true);
        let b = cell(&[&[10.0; 3], &[10.0; 3]], true);
        let l = limits(&a, &b).unwrap();
        assert_eq!((l.pairs, l.processes), (6, 2));
        assert!(l.process_share > 0.9, "{l:?}");
        // b never varies: pairing cancels nothing
        assert!(l.drift_cancelled.unwrap().abs() < 1e-12);
        // the pairs' sd is within a process, not across the two
        assert!(l.pair_sd < 0.011, "{l:?}");

        // pairs in other rounds than the other cell's are not pairs
        let mut c = cell(&[&[10.0; 4]], true);
        c.sample_round = vec![4, 5, 6, 7];
        let a = cell(&[&[20.0; 4]], true);
        assert_eq!(limits(&a, &c), None);
        // nor a cell without rounds
        assert_eq!(limits(&a, &cell(&[&[10.0; 4]], false)), None);
    }
}
