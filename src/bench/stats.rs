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
    /// Distribution-free 95% confidence interval of the median.
    pub median_ci: (f64, f64),
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
