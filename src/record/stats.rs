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

/// A ratio of medians with its bootstrap 95% confidence interval.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Ratio {
    pub value: f64,
    pub ci: (f64, f64),
}

/// A statistic of some sample sets and its percentile-bootstrap 95%
/// interval (Efron & Tibshirani, An Introduction to the Bootstrap, ch. 13):
/// every set is resampled with replacement, `resamples` times. Seeded, so
/// the same samples always give the same interval.
pub fn bootstrap(
    sets: &[&[f64]],
    resamples: usize,
    seed: u64,
    stat: impl Fn(&[Vec<f64>]) -> f64,
) -> Ratio {
    use rand::{Rng, SeedableRng};
    let mut buf: Vec<Vec<f64>> = sets.iter().map(|s| s.to_vec()).collect();
    let value = stat(&buf);
    if sets.iter().any(|s| s.len() < 2) || resamples == 0 {
        return Ratio {
            value,
            ci: (value, value),
        };
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut values: Vec<f64> = (0..resamples)
        .map(|_| {
            for (b, s) in buf.iter_mut().zip(sets) {
                for x in b.iter_mut() {
                    *x = s[rng.gen_range(0..s.len())];
                }
            }
            stat(&buf)
        })
        .collect();
    values.sort_by(|a, b| a.total_cmp(b));
    Ratio {
        value,
        ci: (quantile(&values, 0.025), quantile(&values, 0.975)),
    }
}

/// `median(num) / median(den)` and its bootstrap 95% interval.
pub fn ratio_of_medians(num: &[f64], den: &[f64], resamples: usize) -> Ratio {
    bootstrap(&[num, den], resamples, 0x5eedb007, |s| {
        median(&s[0]) / median(&s[1])
    })
}

#[cfg(test)]
mod ratio_tests {
    use super::*;

    #[test]
    fn ratio_interval_covers_a_known_shift() {
        // den around 10, num around 12: ratio 1.2, interval tight around it.
        let den: Vec<f64> = (0..200).map(|i| 10.0 + (i % 10) as f64 * 0.01).collect();
        let num: Vec<f64> = den.iter().map(|x| x * 1.2).collect();
        let r = ratio_of_medians(&num, &den, 500);
        assert!((r.value - 1.2).abs() < 1e-9);
        assert!(r.ci.0 <= 1.2 && 1.2 <= r.ci.1, "{r:?}");
        assert!(r.ci.1 - r.ci.0 < 0.02, "{r:?}");
        // deterministic
        assert_eq!(r, ratio_of_medians(&num, &den, 500));
    }

    /// The bootstrap interval of a mean of 1000 values spread evenly over
    /// 0..999 has half-width 1.96 x 288.7 / sqrt(1000) = 17.9 at 95% (an
    /// 80% one would be 11.7, a 90% one 15.0).
    #[test]
    fn bootstrap_interval_is_95_percent_wide() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        let r = bootstrap(&[&v], 4000, 7, |s| {
            s[0].iter().sum::<f64>() / s[0].len() as f64
        });
        let half = (r.ci.1 - r.ci.0) / 2.0;
        assert!((16.5..19.5).contains(&half), "{r:?}");
        assert!(r.ci.0 < 499.5 && 499.5 < r.ci.1, "{r:?}");
        assert_eq!(r.value, 499.5);
        // a ratio's interval: the same width, relative
        let w: Vec<f64> = v.iter().map(|x| x + 1000.0).collect();
        let q = ratio_of_medians(&w, &w, 2000);
        assert_eq!(q.value, 1.0);
        assert!(
            q.ci.0 < 1.0 && q.ci.1 > 1.0 && q.ci.1 - q.ci.0 < 0.1,
            "{q:?}"
        );
    }

    #[test]
    fn one_sample_or_no_resample_gives_a_point_interval() {
        let r = bootstrap(&[&[3.0]], 100, 1, |s| s[0][0]);
        assert_eq!(
            r,
            Ratio {
                value: 3.0,
                ci: (3.0, 3.0)
            }
        );
        let r = bootstrap(&[&[1.0, 2.0]], 0, 1, |s| s[0][0]);
        assert_eq!(r.ci, (1.0, 1.0));
        // two samples are enough to resample
        let r = bootstrap(&[&[1.0, 3.0]], 200, 1, |s| s[0].iter().sum::<f64>() / 2.0);
        assert_eq!(r.value, 2.0);
        assert_eq!(r.ci, (1.0, 3.0));
    }

    #[test]
    fn noisy_samples_give_a_wide_interval() {
        let a: Vec<f64> = (0..30).map(|i| 10.0 + ((i * 7919) % 13) as f64).collect();
        let b: Vec<f64> = (0..30).map(|i| 10.0 + ((i * 104729) % 17) as f64).collect();
        let r = ratio_of_medians(&a, &b, 500);
        assert!(r.ci.1 - r.ci.0 > 0.1, "{r:?}");
    }
}
