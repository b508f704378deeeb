//! Summary statistics of timing samples: pure functions.

use serde::{Deserialize, Serialize};

/// Summary of one cell's samples, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub mean: f64,
    pub p90: f64,
    pub p99: f64,
    pub stddev: f64,
    /// Coefficient of variation, stddev / mean.
    pub cv: f64,
    /// 95% confidence interval of the median: over processes and
    /// iterations where more than one process measured the cell
    /// ([`super::intervals`]), else distribution-free over the iterations.
    pub median_ci: (f64, f64),
    /// Worker processes the samples came from (1 in files from before
    /// process repetition).
    #[serde(default = "one")]
    pub processes: usize,
    /// Coefficient of variation of the per-process medians: the spread
    /// between processes; absent with one process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between_cv: Option<f64>,
    /// Median of the processes' own coefficients of variation: the spread
    /// within a process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_cv: Option<f64>,
}

fn one() -> usize {
    1
}

/// Seed of a cell's median interval.
const MEDIAN_SEED: u64 = 0x6d656469;

/// [`summarise`] of the pooled samples of `processes`, with the median's
/// interval over both levels and the spread at each.
pub fn summarise_processes(processes: &[Vec<f64>]) -> Summary {
    let pooled: Vec<f64> = processes.concat();
    let mut s = summarise(&pooled);
    let refs: Vec<&[f64]> = processes.iter().map(Vec::as_slice).collect();
    let spread = super::intervals::spread(&refs);
    s.processes = spread.processes.max(1);
    s.between_cv = spread.between_cv;
    s.within_cv = Some(spread.within_cv);
    if spread.processes > 1 {
        let term = super::intervals::Term::new(refs, 0, 1.0);
        s.median_ci = super::intervals::contrast(&[term], MEDIAN_SEED).ci;
    }
    s
}

/// Quantile with linear interpolation between closest ranks (type 7, as
/// numpy's default), on sorted data.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// 95% CI of the median from order statistics: ranks n/2 -+ 1.96 sqrt(n)/2
/// (normal approximation of the binomial; Conover, Practical Nonparametric
/// Statistics, 3rd ed., section 3.2).
pub fn median_ci(sorted: &[f64]) -> (f64, f64) {
    let n = sorted.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let half = 1.96 * (n as f64).sqrt() / 2.0;
    let lo = ((n as f64 / 2.0 - half).floor().max(0.0)) as usize;
    let hi = ((n as f64 / 2.0 + half).ceil() as usize).min(n - 1);
    (sorted[lo], sorted[hi])
}

pub fn summarise(samples: &[f64]) -> Summary {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let mean = s.iter().sum::<f64>() / n.max(1) as f64;
    let var = if n > 1 {
        s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    let stddev = var.sqrt();
    Summary {
        n,
        min: s.first().copied().unwrap_or(f64::NAN),
        median: quantile(&s, 0.5),
        mean,
        p90: quantile(&s, 0.9),
        p99: quantile(&s, 0.99),
        stddev,
        cv: if mean > 0.0 { stddev / mean } else { 0.0 },
        median_ci: median_ci(&s),
        processes: 1,
        between_cv: None,
        within_cv: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&s, 0.5), 2.5);
        assert!((quantile(&s, 0.9) - 3.7).abs() < 1e-12);
        assert_eq!(quantile(&s, 0.0), 1.0);
    }

    /// Order statistics of 0..999: ranks 500 -+ 1.96 sqrt(1000) / 2 = 30.99,
    /// so 469 and 531; quantiles of type 7.
    #[test]
    fn summary_of_0_to_999() {
        let v: Vec<f64> = (0..1000).rev().map(f64::from).collect();
        let s = summarise(&v);
        assert_eq!(s.median_ci, (469.0, 531.0));
        assert_eq!((s.n, s.min, s.median, s.mean), (1000, 0.0, 499.5, 499.5));
        assert!((s.p90 - 899.1).abs() < 1e-9, "{}", s.p90);
        assert!((s.p99 - 989.01).abs() < 1e-9, "{}", s.p99);
        // sample standard deviation: sqrt(sum (x - 499.5)^2 / 999)
        assert!(
            (s.stddev - 288.819_436_095_749_9).abs() < 1e-9,
            "{}",
            s.stddev
        );
        assert!((s.cv - s.stddev / 499.5).abs() < 1e-15);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert!(quantile(&[], 0.5).is_nan());
        assert_eq!(summarise(&[4.0]).stddev, 0.0);
        // all-zero samples: no spread, a CV of 0 (not 0/0)
        assert_eq!(summarise(&[0.0, 0.0]).cv, 0.0);
    }

    #[test]
    fn summary_over_processes() {
        // one process: the iteration-level summary, its spread within
        let one = summarise_processes(&[vec![1.0, 2.0, 3.0]]);
        assert_eq!(one.median_ci, summarise(&[1.0, 2.0, 3.0]).median_ci);
        assert_eq!((one.processes, one.between_cv), (1, None));
        assert!((one.within_cv.unwrap() - 0.5).abs() < 1e-12);
        // two processes of one sample: the interval of intervals' hand case
        // (the interval is centred on the processes' geometric mean, sqrt 8)
        let two = summarise_processes(&[vec![2.0], vec![4.0]]);
        assert_eq!((two.n, two.median, two.processes), (2, 3.0, 2));
        let half = 12.706 * std::f64::consts::LN_2 / 2.0;
        assert!(
            (two.median_ci.1 - 8f64.sqrt() * half.exp()).abs() < 1e-9,
            "{two:?}"
        );
        assert!((two.between_cv.unwrap() - 2f64.sqrt() / 3.0).abs() < 1e-12);
    }

    #[test]
    fn summary_of_known_samples() {
        let v: Vec<f64> = (1..=101).map(f64::from).collect();
        let s = summarise(&v);
        assert_eq!(s.median, 51.0);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.mean, 51.0);
        assert!((s.stddev - 29.300_170_647_967_224).abs() < 1e-9);
        // ranks 50.5 -+ 9.85 -> 40 and 61 (0-based)
        assert_eq!(s.median_ci, (41.0, 62.0));
        assert!(s.median_ci.0 < s.median && s.median < s.median_ci.1);
    }
}

/// Median of unsorted data.
pub fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    quantile(&s, 0.5)
}

/// A ratio (of medians, or the geometric mean of paired ratios) with its
/// 95% confidence interval.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Ratio {
    pub value: f64,
    pub ci: (f64, f64),
    /// The quantile the interval was drawn at: its half-width in log space
    /// is `z` standard errors (Student's t at the interval's degrees of
    /// freedom, or the normal 1.96 for a bootstrap). Files from before it
    /// held bootstrap intervals.
    #[serde(default = "z95")]
    pub z: f64,
}

/// The normal distribution's two-sided 95% quantile.
pub fn z95() -> f64 {
    1.959_964
}

impl Ratio {
    /// A ratio with a percentile (bootstrap) or degenerate interval.
    pub fn new(value: f64, ci: (f64, f64)) -> Ratio {
        Ratio {
            value,
            ci,
            z: z95(),
        }
    }

    /// The standard error of ln(value), from the interval and its own
    /// quantile (the log half-width over `z`); 0 for a point.
    pub fn log_se(&self) -> f64 {
        let (lo, hi) = self.ci;
        if lo > 0.0 && hi > 0.0 && self.z > 0.0 && self.z.is_finite() {
            (hi.ln() - lo.ln()) / (2.0 * self.z)
        } else {
            0.0
        }
    }

    /// The interval's half-width as a share of the value: the larger of
    /// the distances to either end over the value.
    pub fn half_width(&self) -> f64 {
        if self.value > 0.0 {
            ((self.ci.1 - self.value).max(self.value - self.ci.0) / self.value).max(0.0)
        } else {
            f64::INFINITY
        }
    }
}
