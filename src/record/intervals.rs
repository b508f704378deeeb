//! Intervals over the levels of repetition that vary: worker processes,
//! then the iterations inside each (Kalibera & Jones, "Rigorous
//! Benchmarking in Reasonable Time", ISMM 2013). Pure functions.
//!
//! Every quantity speedbench bounds is a *contrast*: a product of cells'
//! medians raised to +1 or -1 (a cell's median; sequential over parallel;
//! now over then; a ratio of ratios). One method gives both its value and
//! its 95% interval:
//!
//! - two cells of one run timed in lock-step (a speedup, an A/A repeat):
//!   the pairs of passes timed back to back, [`mean_log_interval`] of their
//!   log ratios (Student's t over the pairs; `record::paired`). The
//!   machine's drift is in both passes of a pair and cancels;
//! - otherwise, where every cell has two or more processes: the Student-t
//!   interval over the per-process medians in log space, centred on the
//!   mean of the per-process log contrasts (each block's per-process
//!   contrast, its variance over its processes, the variances of the
//!   blocks added; R - 1 degrees of freedom of the smallest block). Cells
//!   of one *block* (one run) are paired by process index;
//! - with one process per cell: the bootstrap over iterations (the
//!   two-level bootstrap degenerates to it), centred on the pooled
//!   medians; it says nothing about how a second process would differ.
//!
//! Every [`Ratio`] carries the quantile its interval was drawn at, so that
//! a standard error read back from it (the history's verdicts) is the
//! interval's own.

use rand::{Rng, SeedableRng};

use super::stats::{median, quantile, Ratio};

/// Resamples of every bootstrap.
pub const RESAMPLES: usize = 2000;

/// One cell in a contrast: its samples grouped by process, the block it
/// belongs to, and its exponent (+1 numerator, -1 denominator).
#[derive(Debug, Clone)]
pub struct Term<'a> {
    pub processes: Vec<&'a [f64]>,
    pub block: usize,
    pub sign: f64,
}

impl<'a> Term<'a> {
    pub fn new(processes: Vec<&'a [f64]>, block: usize, sign: f64) -> Term<'a> {
        Term {
            processes: processes.into_iter().filter(|p| !p.is_empty()).collect(),
            block,
            sign,
        }
    }
}

/// The product of `medians` to their signs, numerators over denominators
/// (so that a ratio of two medians is exactly their quotient).
fn combine(medians: impl Iterator<Item = (f64, f64)>) -> f64 {
    let (mut num, mut den) = (1.0, 1.0);
    for (m, sign) in medians {
        if sign >= 0.0 {
            num *= m.powf(sign);
        } else {
            den *= m.powf(-sign);
        }
    }
    num / den
}

/// The contrast's value: the product of the pooled medians to their signs.
fn value(terms: &[Term]) -> f64 {
    combine(terms.iter().map(|t| {
        let pooled: Vec<f64> = t.processes.iter().flat_map(|p| p.iter().copied()).collect();
        (median(&pooled), t.sign)
    }))
}

/// Terms sharing a process draw: same block and same number of processes
/// (a block whose cells have different counts is split by count).
fn draw_groups(terms: &[Term]) -> Vec<Vec<usize>> {
    let mut groups: Vec<((usize, usize), Vec<usize>)> = Vec::new();
    for (i, t) in terms.iter().enumerate() {
        let key = (t.block, t.processes.len());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    groups.into_iter().map(|(_, v)| v).collect()
}

/// The two-level percentile bootstrap 95% interval of the contrast.
pub fn two_level_bootstrap(terms: &[Term], resamples: usize, seed: u64) -> Ratio {
    let v = value(terms);
    let resamplable = terms
        .iter()
        .all(|t| t.processes.len() > 1 || t.processes.iter().any(|p| p.len() > 1));
    if terms.is_empty() || resamples == 0 || !resamplable {
        return Ratio::new(v, (v, v));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let groups = draw_groups(terms);
    let mut pooled: Vec<Vec<f64>> = vec![Vec::new(); terms.len()];
    let mut values: Vec<f64> = (0..resamples)
        .map(|_| {
            for g in &groups {
                let r = terms[g[0]].processes.len();
                let picks: Vec<usize> = (0..r).map(|_| rng.gen_range(0..r)).collect();
                for &ti in g {
                    let buf = &mut pooled[ti];
                    buf.clear();
                    for &k in &picks {
                        let p = terms[ti].processes[k];
                        buf.extend((0..p.len()).map(|_| p[rng.gen_range(0..p.len())]));
                    }
                }
            }
            combine(terms.iter().zip(&pooled).map(|(t, s)| (median(s), t.sign)))
        })
        .collect();
    values.sort_by(|a, b| a.total_cmp(b));
    Ratio::new(v, (quantile(&values, 0.025), quantile(&values, 0.975)))
}

/// Two-sided 95% quantile of Student's t with `df` degrees of freedom.
pub fn t975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        _ => {
            // Cornish-Fisher expansion about the normal quantile
            let (z, n): (f64, f64) = (1.959_964, df as f64);
            z + (z.powi(3) + z) / (4.0 * n)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * n * n)
        }
    }
}

/// Sample standard deviation (n - 1), 0 for fewer than two values.
pub fn sd(v: &[f64]) -> f64 {
    variance(v).sqrt()
}

/// Sample variance (n - 1), 0 for fewer than two values.
fn variance(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64
}

/// The Student-t 95% interval of the contrast over its per-process medians,
/// in log space, centred where its spread is measured: on the mean of the
/// per-process log contrasts (their geometric mean); `None` where some term
/// has a single process.
pub fn process_t_interval(terms: &[Term]) -> Option<Ratio> {
    if terms.is_empty() || terms.iter().any(|t| t.processes.len() < 2) {
        return None;
    }
    let (mut centre, mut var, mut df) = (0.0, 0.0, usize::MAX);
    for g in draw_groups(terms) {
        let r = terms[g[0]].processes.len();
        let contrast: Vec<f64> = (0..r)
            .map(|k| {
                g.iter()
                    .map(|&ti| terms[ti].sign * median(terms[ti].processes[k]).ln())
                    .sum()
            })
            .collect();
        centre += contrast.iter().sum::<f64>() / r as f64;
        var += variance(&contrast) / r as f64;
        df = df.min(r - 1);
    }
    let z = t975(df);
    let half = z * var.sqrt();
    Some(Ratio {
        value: centre.exp(),
        ci: ((centre - half).exp(), (centre + half).exp()),
        z,
    })
}

/// The half-width of the 95% t interval of the mean of `n` values whose
/// standard deviation is `sd`; `None` below two values.
pub fn mean_half_width(sd: f64, n: usize) -> Option<f64> {
    (n >= 2).then(|| t975(n - 1) * sd / (n as f64).sqrt())
}

/// The geometric mean of ratios given as logs, with its Student-t 95%
/// interval (n - 1 degrees of freedom): the paired ratio of two cells timed
/// in lock-step ([`super::cell::paired`]). `None` for fewer than two.
pub fn mean_log_interval(logs: &[f64]) -> Option<Ratio> {
    let n = logs.len();
    if n < 2 {
        return None;
    }
    let m = logs.iter().sum::<f64>() / n as f64;
    let z = t975(n - 1);
    let half = mean_half_width(variance(logs).sqrt(), n)?;
    Some(Ratio {
        value: m.exp(),
        ci: ((m - half).exp(), (m + half).exp()),
        z,
    })
}

/// The paired ratio over processes: `groups` holds each process's log
/// ratios (one per pair). With one process (or one with pairs), the mean
/// log and its t interval over the pairs; with several, the mean of the
/// per-process means, with the wider of the t interval over those means
/// (R - 1 degrees of freedom) and the t interval over all pairs. `None`
/// with fewer than two pairs in all.
pub fn two_level_paired(groups: &[Vec<f64>]) -> Option<Ratio> {
    let groups: Vec<&Vec<f64>> = groups.iter().filter(|g| !g.is_empty()).collect();
    let all: Vec<f64> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    let pairs = mean_log_interval(&all)?;
    if groups.len() < 2 {
        return Some(pairs);
    }
    let means: Vec<f64> = groups
        .iter()
        .map(|g| g.iter().sum::<f64>() / g.len() as f64)
        .collect();
    let r = means.len();
    let centre = means.iter().sum::<f64>() / r as f64;
    let z = t975(r - 1);
    let between = z * (variance(&means) / r as f64).sqrt();
    let within = pairs.z * pairs.log_se();
    let (half, z) = if between >= within {
        (between, z)
    } else {
        (within, pairs.z)
    };
    Some(Ratio {
        value: centre.exp(),
        ci: ((centre - half).exp(), (centre + half).exp()),
        z,
    })
}

/// The contrast by one method: over processes (the t interval, its value
/// the geometric mean of the per-process contrasts) where every term has
/// two or more; else the bootstrap over the iterations of the one process
/// (its value the contrast of the pooled medians).
pub fn contrast(terms: &[Term], seed: u64) -> Ratio {
    process_t_interval(terms).unwrap_or_else(|| two_level_bootstrap(terms, RESAMPLES, seed))
}

/// How the samples of one cell spread at each level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Processes with samples.
    pub processes: usize,
    /// Coefficient of variation of the per-process medians (between
    /// processes); `None` with one process.
    pub between_cv: Option<f64>,
    /// Median over processes of each one's coefficient of variation
    /// (within a process).
    pub within_cv: f64,
}

fn cv(v: &[f64]) -> f64 {
    let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
    if m > 0.0 {
        variance(v).sqrt() / m
    } else {
        0.0
    }
}

pub fn spread(processes: &[&[f64]]) -> Spread {
    let ps: Vec<&[f64]> = processes
        .iter()
        .copied()
        .filter(|p| !p.is_empty())
        .collect();
    let medians: Vec<f64> = ps.iter().map(|p| median(p)).collect();
    let within: Vec<f64> = ps.iter().map(|p| cv(p)).collect();
    Spread {
        processes: ps.len(),
        between_cv: (ps.len() > 1).then(|| cv(&medians)),
        within_cv: if within.is_empty() {
            0.0
        } else {
            median(&within)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one<'a>(p: &[&'a [f64]], block: usize, sign: f64) -> Term<'a> {
        Term::new(p.to_vec(), block, sign)
    }

    /// A hand-computed case: two processes of one sample each, [2] and [4].
    /// Each resample draws two processes: (2,2), (2,4), (4,2), (4,4) with
    /// probability 1/4 each, so the median is 2 (1/4), 3 (1/2) or 4 (1/4);
    /// the 2.5% and 97.5% quantiles of 2000 such draws are 2 and 4. The
    /// t interval: log medians ln 2, ln 4, centred on their mean ln 8 / 2
    /// (the geometric mean sqrt 8), sd ln2 / sqrt 2, standard error ln2 /
    /// 2, t(1) = 12.706: sqrt 8 x exp(-+ 12.706 x 0.3466).
    #[test]
    fn two_processes_of_one_sample_by_hand() {
        let (a, b) = ([2.0], [4.0]);
        let t = [one(&[&a, &b], 0, 1.0)];
        let r = two_level_bootstrap(&t, 2000, 1);
        assert_eq!(r.value, 3.0);
        assert_eq!(r.ci, (2.0, 4.0));
        assert_eq!(r.z, 1.959_964);
        let p = process_t_interval(&t).unwrap();
        let (lo, hi) = p.ci;
        let centre = 8f64.sqrt();
        let half = 12.706 * std::f64::consts::LN_2 / 2.0;
        assert!((p.value - centre).abs() < 1e-12, "{p:?}");
        assert!((lo - centre * (-half).exp()).abs() < 1e-9, "{lo}");
        assert!((hi - centre * half.exp()).abs() < 1e-9, "{hi}");
        assert_eq!(p.z, 12.706);
        // one method: the t interval gives value and interval both
        assert_eq!(contrast(&t, 1), p);
        // one process: the bootstrap over its iterations
        let (c, d) = ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]);
        let single = [one(&[&c], 0, 1.0), one(&[&d], 0, -1.0)];
        let b = contrast(&single, 1);
        assert_eq!(b.value, 0.5);
        assert_eq!(b.z, 1.959_964);
    }

    /// The issue's own case: per-process ratios 0.802, 0.788, 0.806 (one
    /// sample each) are reported at their geometric mean 0.7986, inside
    /// their interval, not at a pooled-median ratio outside it.
    #[test]
    fn the_t_interval_is_centred_on_the_per_process_geometric_mean() {
        let num = [[0.802], [0.788], [0.806]];
        let den = [[1.0], [1.0], [1.0]];
        let t = [
            one(&[&num[0], &num[1], &num[2]], 0, 1.0),
            one(&[&den[0], &den[1], &den[2]], 0, -1.0),
        ];
        let r = process_t_interval(&t).unwrap();
        let g = (0.802f64 * 0.788 * 0.806).powf(1.0 / 3.0);
        assert!((r.value - g).abs() < 1e-12, "{r:?}");
        assert!(r.ci.0 < g && g < r.ci.1, "{r:?}");
        assert_eq!(r.z, 4.303);
        // symmetric in log space about the centre
        assert!(((r.ci.1 / r.value).ln() - (r.value / r.ci.0).ln()).abs() < 1e-12);
    }

    /// Paired logs by hand: ln ratios 0.1, 0.2, 0.3: mean 0.2, sd 0.1,
    /// standard error 0.1 / sqrt 3, t(2) = 4.303.
    #[test]
    fn the_mean_log_interval_by_hand() {
        let r = mean_log_interval(&[0.1, 0.2, 0.3]).unwrap();
        let half = 4.303 * 0.1 / 3f64.sqrt();
        assert!((r.value - 0.2f64.exp()).abs() < 1e-12);
        assert!((r.ci.0 - (0.2 - half).exp()).abs() < 1e-12);
        assert!((r.ci.1 - (0.2 + half).exp()).abs() < 1e-12);
        assert_eq!(r.z, 4.303);
        assert!((r.log_se() - 0.1 / 3f64.sqrt()).abs() < 1e-12);
        assert!((r.half_width() - (half.exp() - 1.0)).abs() < 1e-12);
        assert_eq!(mean_log_interval(&[0.1]), None);
        assert_eq!(mean_log_interval(&[]), None);
    }

    /// A term of one process with one sample has nothing to resample: the
    /// bootstrap gives no interval rather than one from the other terms
    /// alone, however those vary.
    #[test]
    fn a_single_sample_term_gives_no_bootstrap_interval() {
        let single = [5.0];
        let (a, b) = ([1.0, 2.0, 3.0], [4.0, 6.0, 8.0]);
        let t = [one(&[&single], 0, 1.0), one(&[&a, &b], 0, -1.0)];
        let r = two_level_bootstrap(&t, 500, 3);
        assert_eq!(r.ci, (r.value, r.value));
        // no resamples: no interval either
        let r = two_level_bootstrap(&t[1..], 0, 3);
        assert_eq!(r.ci, (r.value, r.value));
        // the varying term alone has one
        let r = two_level_bootstrap(&t[1..], 500, 3);
        assert!(r.ci.0 < r.ci.1, "{r:?}");
    }

    /// The draw of processes matters: three processes with identical
    /// iterations inside each (no within-process spread) still give an
    /// interval as wide as their medians' range, which an iteration-only
    /// bootstrap over the pooled samples would not.
    #[test]
    fn between_process_spread_widens_the_interval() {
        let p: Vec<Vec<f64>> = [10.0, 11.0, 12.0].iter().map(|&m| vec![m; 50]).collect();
        let procs: Vec<&[f64]> = p.iter().map(|v| v.as_slice()).collect();
        let r = two_level_bootstrap(&[one(&procs, 0, 1.0)], 2000, 3);
        assert_eq!(r.value, 11.0);
        assert_eq!(r.ci, (10.0, 12.0));
        let pooled: Vec<f64> = p.concat();
        let flat = two_level_bootstrap(&[one(&[&pooled], 0, 1.0)], 2000, 3);
        assert!(flat.ci.1 - flat.ci.0 < 1.0 + 1e-9, "{flat:?}");
        assert!(flat.ci.1 - flat.ci.0 < r.ci.1 - r.ci.0);
    }

    /// Paired: sequential and parallel share each process's drift (x1, x2,
    /// x3 by round) and differ by exactly 1.25: the paired contrast is 1.25
    /// with no spread; drawn independently it spreads with the drift.
    #[test]
    fn a_paired_block_cancels_drift_between_rounds() {
        let seq: Vec<Vec<f64>> = [1.0, 2.0, 3.0]
            .iter()
            .map(|&d| vec![12.5 * d; 20])
            .collect();
        let par: Vec<Vec<f64>> = [1.0, 2.0, 3.0]
            .iter()
            .map(|&d| vec![10.0 * d; 20])
            .collect();
        let s: Vec<&[f64]> = seq.iter().map(|v| v.as_slice()).collect();
        let p: Vec<&[f64]> = par.iter().map(|v| v.as_slice()).collect();
        let paired = contrast(&[one(&s, 0, 1.0), one(&p, 0, -1.0)], 9);
        assert!((paired.value - 1.25).abs() < 1e-12);
        assert!(
            (paired.ci.0 - 1.25).abs() < 1e-9 && (paired.ci.1 - 1.25).abs() < 1e-9,
            "{paired:?}"
        );
        let apart = contrast(&[one(&s, 0, 1.0), one(&p, 1, -1.0)], 9);
        assert!(apart.ci.0 < 1.0 && apart.ci.1 > 2.0, "{apart:?}");
    }

    /// A block whose cells have different process counts cannot pair them:
    /// each draws on its own.
    #[test]
    fn unequal_counts_draw_apart() {
        let (a, b, c) = ([1.0], [2.0], [3.0]);
        let t = [one(&[&a, &b], 0, 1.0), one(&[&a, &b, &c], 0, -1.0)];
        assert_eq!(draw_groups(&t), vec![vec![0], vec![1]]);
        let t = [
            one(&[&a, &b], 0, 1.0),
            one(&[&b, &c], 0, -1.0),
            one(&[&a, &c], 1, 1.0),
        ];
        assert_eq!(draw_groups(&t), vec![vec![0, 1], vec![2]]);
    }

    #[test]
    fn one_process_is_the_iteration_bootstrap() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        let r = contrast(&[one(&[&v], 0, 1.0)], 7);
        assert_eq!(r.value, 499.5);
        // the median's spread over 1000 uniform values: about -+ 31
        assert!(
            r.ci.0 > 455.0 && r.ci.0 < 480.0 && r.ci.1 > 519.0 && r.ci.1 < 545.0,
            "{r:?}"
        );
        assert!(process_t_interval(&[one(&[&v], 0, 1.0)]).is_none());
        // a single sample cannot be resampled
        let r = contrast(&[one(&[&[5.0][..]], 0, 1.0)], 7);
        assert_eq!(r.ci, (5.0, 5.0));
        // empty processes are left out
        assert_eq!(Term::new(vec![&[], &v], 0, 1.0).processes.len(), 1);
    }

    #[test]
    fn t_quantiles() {
        assert_eq!(t975(1), 12.706);
        assert_eq!(t975(2), 4.303);
        assert_eq!(t975(30), 2.042);
        assert!(t975(0).is_infinite());
        // the expansion continues the table smoothly towards 1.96: the
        // true quantiles are 2.03951 (31) and 1.97993 (120); its two terms,
        // by hand, 2.0394259 and 1.9799289
        assert!((t975(31) - 2.03951).abs() < 1e-4, "{}", t975(31));
        assert!((t975(120) - 1.97993).abs() < 1e-5, "{}", t975(120));
        assert!((t975(31) - 2.039_425_923_356).abs() < 1e-9);
        assert!((t975(120) - 1.979_928_934_177).abs() < 1e-9);
        assert!(t975(1000) > 1.96 && t975(1000) < 1.963);
    }

    #[test]
    fn spread_between_and_within() {
        let (a, b) = ([9.0, 11.0], [19.0, 21.0]);
        let s = spread(&[&a, &b, &[]]);
        assert_eq!(s.processes, 2);
        // medians 10 and 20: sd 7.071, mean 15
        assert!((s.between_cv.unwrap() - 50f64.sqrt() / 15.0).abs() < 1e-12);
        // within: sd sqrt 2 over 10 and over 20, median of the two
        let w = (2f64.sqrt() / 10.0 + 2f64.sqrt() / 20.0) / 2.0;
        assert!((s.within_cv - w).abs() < 1e-12, "{s:?}");
        let one = spread(&[&a]);
        assert_eq!(one.between_cv, None);
        assert_eq!(spread(&[]).within_cv, 0.0);
    }
}
