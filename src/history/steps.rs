//! Step changes in a series of per-run medians: a change point where the
//! level shifts and stays, not a single outlier.
//!
//! asv's approach (airspeed velocity, `asv/step_detect.py`): fit the series
//! with a piecewise-constant function minimising the sum of absolute
//! deviations plus a penalty `gamma` per segment (an L1 Potts problem),
//! solved exactly by dynamic programming over the segment ends. Each segment
//! holds at least `min_segment` runs; its level is its median. With the L1
//! cost a lone outlier never pays for a segment of its own: a two-run
//! segment of the outlier and a neighbour costs their distance, just what
//! the outlier cost inside the long segment. `gamma = penalty x sigma`, with
//! sigma the noise of the series estimated from successive differences
//! (1.4826 x median |y[i+1] - y[i]| / sqrt 2: robust to the few large
//! differences a step or an outlier makes). A step of size d followed by m
//! runs lowers the cost by about m x d, so a step is found once
//! `m x d > gamma`: a large step after two runs, a smaller one after more.
//! Steps smaller than `min_change` (relative) are not reported.
//!
//! Pure: imports nothing of the crate. O(n^3) in the number of runs, meant
//! for histories of up to a few hundred runs.

use serde::Serialize;

/// A level change: the series' level before and from `index` on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Step {
    /// The first point of the new level.
    pub index: usize,
    /// Median of the segment before the step.
    pub before: f64,
    /// Median of the segment from `index` on.
    pub after: f64,
}

impl Step {
    /// Relative size, after / before - 1.
    pub fn change(&self) -> f64 {
        self.after / self.before - 1.0
    }
}

/// The detector's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// The fewest points a level must hold (2: a shift that stays for at
    /// least two runs).
    pub min_segment: usize,
    /// Penalty per segment, in units of the series' noise.
    pub penalty: f64,
    /// Smallest relative level change reported.
    pub min_change: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            min_segment: 2,
            penalty: 10.0,
            min_change: 0.05,
        }
    }
}

fn median_sorted(s: &[f64]) -> f64 {
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn median(y: &[f64]) -> f64 {
    let mut s = y.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    median_sorted(&s)
}

/// The series' noise from successive differences: 1.4826 x median |dy| /
/// sqrt 2, floored at a billionth of its level (a flat series is not split
/// on rounding).
pub fn noise(y: &[f64]) -> f64 {
    let level = median(y).abs();
    let floor = 1e-9 * level.max(f64::MIN_POSITIVE);
    if y.len() < 2 {
        return floor;
    }
    let d: Vec<f64> = y.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    (1.4826 * median(&d) / std::f64::consts::SQRT_2).max(floor)
}

/// Sum of absolute deviations from the median of `y[i..j]`, for every i < j.
fn costs(y: &[f64]) -> Vec<Vec<f64>> {
    let n = y.len();
    let mut c = vec![vec![0.0; n + 1]; n + 1];
    for (i, row) in c.iter_mut().enumerate().take(n) {
        let mut sorted: Vec<f64> = Vec::with_capacity(n - i);
        for (j, &v) in y.iter().enumerate().skip(i) {
            let at = sorted.partition_point(|x| *x < v);
            sorted.insert(at, v);
            let m = median_sorted(&sorted);
            row[j + 1] = sorted.iter().map(|x| (x - m).abs()).sum();
        }
    }
    c
}

/// The segment boundaries of the penalised L1 fit: the start of every
/// segment after the first.
fn segments(y: &[f64], gamma: f64, min_segment: usize) -> Vec<usize> {
    let n = y.len();
    let m = min_segment.max(1);
    let cost = costs(y);
    // best[j]: the least cost of y[..j] cut into segments of >= m points,
    // gamma per segment; from[j]: where its last segment starts
    let mut best = vec![f64::INFINITY; n + 1];
    let mut from = vec![0usize; n + 1];
    best[0] = 0.0;
    // ties go to fewer segments: a cut must lower the cost by more than this
    let eps = 1e-12
        * y.iter()
            .map(|x| x.abs())
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
    for j in m..=n {
        for i in (0..=j - m).filter(|&i| i == 0 || i >= m) {
            if !best[i].is_finite() {
                continue;
            }
            let v = best[i] + cost[i][j] + gamma;
            if v < best[j] - eps {
                best[j] = v;
                from[j] = i;
            }
        }
    }
    let mut cuts = Vec::new();
    let mut j = n;
    while j > 0 {
        let i = from[j];
        if i > 0 {
            cuts.push(i);
        }
        j = i;
    }
    cuts.reverse();
    cuts
}

/// The steps of a series, in order. Fewer than `2 x min_segment` points
/// have none.
pub fn detect(y: &[f64], p: &Params) -> Vec<Step> {
    let m = p.min_segment.max(1);
    if y.len() < 2 * m || y.iter().any(|x| !x.is_finite()) {
        return Vec::new();
    }
    let gamma = p.penalty * noise(y);
    let cuts = segments(y, gamma, m);
    let mut bounds = vec![0];
    bounds.extend(&cuts);
    bounds.push(y.len());
    let levels: Vec<f64> = bounds.windows(2).map(|w| median(&y[w[0]..w[1]])).collect();
    cuts.iter()
        .zip(levels.windows(2))
        .map(|(&index, l)| Step {
            index,
            before: l[0],
            after: l[1],
        })
        .filter(|s| s.change().abs() >= p.min_change)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&[10.0, 1.0, 4.0, 2.0]), 3.0);
        assert_eq!(median_sorted(&[1.0, 2.0, 4.0, 10.0, 11.0, 12.0]), 7.0);
    }

    /// A deterministic noisy series: `n` points at `level` per part, each
    /// times 1 + N(0, cv) (seeded).
    fn noisy(levels: &[(usize, f64)], cv: f64, seed: u64) -> Vec<f64> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let d = Normal::new(0.0, cv).unwrap();
        let mut out = Vec::new();
        for &(n, level) in levels {
            out.extend((0..n).map(|_| level * (1.0 + d.sample(&mut rng))));
        }
        out
    }

    fn p() -> Params {
        Params::default()
    }

    #[test]
    fn a_step_is_found_at_the_first_run_of_the_new_level() {
        let y = noisy(&[(8, 40.0), (6, 52.0)], 0.03, 1);
        let s = detect(&y, &p());
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].index, 8);
        assert!((s[0].change() - 0.3).abs() < 0.06, "{s:?}");
        assert!(s[0].before < s[0].after);
    }

    #[test]
    fn a_step_two_runs_from_the_end_is_found_one_run_from_the_end_is_not() {
        let y = noisy(&[(10, 40.0), (2, 56.0)], 0.03, 2);
        assert_eq!(
            detect(&y, &p()).iter().map(|s| s.index).collect::<Vec<_>>(),
            [10]
        );
        // one run at a new level is an outlier until the next run confirms it
        let y = noisy(&[(10, 40.0), (1, 56.0)], 0.03, 2);
        assert_eq!(detect(&y, &p()), []);
    }

    #[test]
    fn a_single_outlier_is_not_a_step() {
        for seed in 0..50 {
            for at in [0, 1, 5, 10, 18, 19] {
                let mut y = noisy(&[(20, 40.0)], 0.03, seed);
                y[at] *= 1.6;
                let s = detect(&y, &p());
                assert!(s.is_empty(), "seed {seed}, outlier at {at}: {s:?}");
                y[at] *= 0.4; // and a fast one
                assert!(detect(&y, &p()).is_empty(), "seed {seed} at {at}");
            }
        }
    }

    /// Flat noise of 5% (per-run medians of a noisy cell): at most 1% of
    /// series of 6 to 40 runs show a step (the penalty's false-alarm rate,
    /// measured over 200 series per length).
    #[test]
    fn flat_noise_has_no_step() {
        for n in [6, 10, 20, 40] {
            let flagged: Vec<u64> = (0..200)
                .filter(|&seed| !detect(&noisy(&[(n, 40.0)], 0.05, seed), &p()).is_empty())
                .collect();
            assert!(flagged.len() <= 2, "n {n}: steps in seeds {flagged:?}");
        }
        // and these series, none
        for seed in 0..20 {
            assert_eq!(
                detect(&noisy(&[(10, 40.0)], 0.05, seed), &p()),
                [],
                "{seed}"
            );
        }
    }

    #[test]
    fn two_steps_are_both_found() {
        let y = noisy(&[(7, 40.0), (6, 60.0), (7, 45.0)], 0.03, 3);
        let s = detect(&y, &p());
        assert_eq!(
            s.iter().map(|s| s.index).collect::<Vec<_>>(),
            [7, 13],
            "{s:?}"
        );
        assert!(s[0].change() > 0.4 && s[1].change() < -0.2, "{s:?}");
    }

    #[test]
    fn a_step_smaller_than_min_change_is_not_reported() {
        // exact levels, no noise: a 3% shift is a segment, not a reported step
        let y: Vec<f64> = [40.0; 6].into_iter().chain([41.2; 6]).collect();
        assert_eq!(detect(&y, &p()), []);
        let low = Params {
            min_change: 0.01,
            ..p()
        };
        let s = detect(&y, &low);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].index, s[0].before, s[0].after), (6, 40.0, 41.2));
    }

    #[test]
    fn short_or_exactly_flat_series_have_no_step() {
        assert_eq!(detect(&[], &p()), []);
        assert_eq!(detect(&[1.0, 9.0, 9.0], &p()), []);
        assert_eq!(detect(&[5.0; 30], &p()), []);
        assert_eq!(detect(&[1.0, f64::NAN, 1.0, 1.0], &p()), []);
    }

    #[test]
    fn noise_is_the_scaled_median_successive_difference() {
        // |dy| = 1, 1, 1, 3 -> median 1 -> 1.4826 / sqrt 2
        let y = [10.0, 11.0, 10.0, 11.0, 14.0];
        assert!((noise(&y) - 1.4826 / 2f64.sqrt()).abs() < 1e-12);
        assert!(noise(&[3.0; 4]) > 0.0);
        // the floor: a billionth of the level, for a flat series and for one
        // point alone; two points already have a difference
        assert!((noise(&[3.0; 4]) - 3e-9).abs() < 1e-18);
        assert!((noise(&[5.0]) - 5e-9).abs() < 1e-18);
        assert!((noise(&[1.0, 3.0]) - 1.4826 * 2.0 / 2f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn the_fit_is_the_least_penalised_l1_cost() {
        // 0 0 0 10 10 10: one cut at 3 costs 0 + 2 gamma; no cut costs 30 + gamma
        assert_eq!(segments(&[0., 0., 0., 10., 10., 10.], 5.0, 2), [3]);
        // a penalty above the gain keeps one segment
        assert_eq!(
            segments(&[0., 0., 0., 10., 10., 10.], 31.0, 2),
            Vec::<usize>::new()
        );
        // the minimum segment length holds: a cut at 1 or 5 is not allowed
        assert_eq!(
            segments(&[10., 0., 0., 0., 0., 10.], 0.5, 2),
            Vec::<usize>::new()
        );
        assert_eq!(costs(&[1.0, 5.0, 2.0])[0][3], 4.0);
    }
}
