//! A cell's processes split by where the host had the machine's cores
//! while they timed ([`super::ProcessRecord::core_to_core_ns`]): near (a
//! shared cache) or far apart. Where the two placements ran the cell at
//! different speeds, that, not the number of rounds or processes, is what
//! widens its intervals.

use super::stats::Ratio;
use super::CellRecord;

/// Far from near: the farthest probe at least this many times the
/// nearest. The two placements seen on the 2-core VMs were 4-5x apart
/// (35 and 165 ns); one placement's probes vary by a few ns.
const APART: f64 = 1.5;

/// The processes of one placement.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The indices of the cell's processes that ran on it.
    pub processes: Vec<usize>,
    /// Their median core-to-core latency, ns.
    pub core_to_core_ns: f64,
    /// The median of their median times, ms.
    pub median_ms: f64,
}

/// A cell's processes on the near and the far placement.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub near: Placement,
    pub far: Placement,
}

impl Split {
    /// The far placement's time over the near one's.
    pub fn slowdown(&self) -> f64 {
        self.far.median_ms / self.near.median_ms
    }
}

/// The cell's processes split at the geometric middle of their probes,
/// where the farthest is at least [`APART`] times the nearest and both
/// sides timed something; `None` otherwise (one placement, or no probes).
pub fn split(cell: &CellRecord) -> Option<Split> {
    let samples = cell.indexed_process_samples();
    let probed: Vec<(f64, f64, usize)> = samples
        .iter()
        .filter(|(_, s)| !s.is_empty())
        .filter_map(|(k, s)| {
            let p = cell.processes.iter().find(|p| p.index == *k)?;
            Some((p.core_to_core_ns?, super::stats::median(s), *k))
        })
        .filter(|(ns, _, _)| ns.is_finite() && *ns > 0.0)
        .collect();
    let lo = probed.iter().map(|p| p.0).reduce(f64::min)?;
    let hi = probed.iter().map(|p| p.0).reduce(f64::max)?;
    if hi < APART * lo {
        return None;
    }
    let middle = (lo * hi).sqrt();
    let side = |far: bool| {
        let on: Vec<&(f64, f64, usize)> = probed.iter().filter(|p| (p.0 > middle) == far).collect();
        Placement {
            processes: on.iter().map(|p| p.2).collect(),
            core_to_core_ns: super::stats::median(&on.iter().map(|p| p.0).collect::<Vec<_>>()),
            median_ms: super::stats::median(&on.iter().map(|p| p.1).collect::<Vec<_>>()),
        }
    };
    Some(Split {
        near: side(false),
        far: side(true),
    })
}

/// The cell with only the processes `keep` (by index).
pub fn only(cell: &CellRecord, keep: &[usize]) -> CellRecord {
    let mut c = cell.clone();
    for p in &cell.processes {
        if !keep.contains(&p.index) {
            c.drop_process(p.index);
        }
    }
    c
}

/// The ratio of `a` over `b` (two cells whose processes timed in the same
/// rounds, [`super::paired`]) on each placement of the cores that `a`'s
/// processes ran on: (near, far); `None` on one placement, or where a
/// side has no pairs.
pub fn ratios(a: &CellRecord, b: &CellRecord) -> Option<(Ratio, Ratio)> {
    let s = split(a)?;
    let on = |p: &Placement| super::paired(&only(a, &p.processes), &only(b, &p.processes));
    Some((on(&s.near)?, on(&s.far)?))
}

/// Whether the ratio of `a` over `b` is bound by the placement of the
/// cores: it differs between the two placements (their 95% intervals are
/// disjoint). Its interval over all processes then spans two ratios, and
/// more processes measure where the host puts the next one, not the
/// ratio.
pub fn bound(a: &CellRecord, b: &CellRecord) -> bool {
    differing(a, b).is_some()
}

/// The ratio of `a` over `b` on each placement, (near, far), where it is
/// [`bound`] by them; `None` otherwise.
pub fn differing(a: &CellRecord, b: &CellRecord) -> Option<(Ratio, Ratio)> {
    ratios(a, b).filter(|(near, far)| near.ci.1 < far.ci.0 || far.ci.1 < near.ci.0)
}

/// The range of the cell's probes, ns: (nearest, farthest); `None`
/// without probes.
pub fn range(cell: &CellRecord) -> Option<(f64, f64)> {
    let ns = cell.processes.iter().filter_map(|p| p.core_to_core_ns);
    Some((ns.clone().reduce(f64::min)?, ns.reduce(f64::max)?))
}

/// A speedup timed in lock-step over four processes, two with the cores
/// near (35-36 ns, sequential 75-76 ms) and two far (165-170 ns, 140-145
/// ms), `near` and `far` the speedup on each, every round's pair jittered
/// by up to 1% and each process's parallel times offset by 0.3% more than
/// the one before.
#[cfg(test)]
pub(crate) fn two_placements(near: f64, far: f64) -> (CellRecord, CellRecord) {
    use super::Mode;
    let jitter = [1.0, 1.01, 0.99, 1.005, 0.995, 1.0];
    let ns = [35.0, 165.0, 36.0, 170.0];
    let seq_ms = [75.0, 140.0, 76.0, 145.0];
    let speedup = [near, far, near, far];
    let cell = |mode, times: Vec<Vec<f64>>| {
        let samples: Vec<&[f64]> = times.iter().map(Vec::as_slice).collect();
        let mut c = super::test_cell(&samples, true);
        c.mode = mode;
        for (p, &n) in c.processes.iter_mut().zip(&ns) {
            p.core_to_core_ns = Some(n);
        }
        c
    };
    let seq = seq_ms
        .iter()
        .map(|ms| jitter.iter().map(|j| ms * j).collect())
        .collect();
    let par = seq_ms
        .iter()
        .zip(speedup)
        .enumerate()
        .map(|(k, (ms, s))| {
            // each process its own offset, 0.3% apart
            let offset = 1.0 + 0.003 * k as f64;
            jitter.iter().rev().map(|j| ms / s * j * offset).collect()
        })
        .collect();
    (cell(Mode::Sequential, seq), cell(Mode::Parallel, par))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::test_cell;

    fn probed(samples: &[&[f64]], ns: &[Option<f64>]) -> CellRecord {
        let mut c = test_cell(samples, true);
        for (p, &n) in c.processes.iter_mut().zip(ns) {
            p.core_to_core_ns = n;
        }
        c
    }

    #[test]
    fn processes_split_by_placement_with_their_times() {
        // near at 35-37 ns runs 75-80 ms, far at 160-170 ns 145-150
        let c = probed(
            &[
                &[75.0, 76.0, 74.0],
                &[146.0, 145.0],
                &[150.0],
                &[80.0, 79.0],
            ],
            &[Some(35.0), Some(165.0), Some(160.0), Some(37.0)],
        );
        let s = split(&c).unwrap();
        assert_eq!(s.near.processes, [0, 3]);
        assert_eq!(s.far.processes, [1, 2]);
        let near = only(&c, &s.near.processes);
        assert_eq!(near.samples_ms, [75.0, 76.0, 74.0, 80.0, 79.0]);
        assert_eq!(near.processes.len(), 2);
        assert_eq!(s.near.core_to_core_ns, 36.0);
        assert_eq!(s.far.core_to_core_ns, 162.5);
        // process medians 75 and 79.5; 145.5 and 150
        assert_eq!(s.near.median_ms, 77.25);
        assert_eq!(s.far.median_ms, 147.75);
        assert!((s.slowdown() - 147.75 / 77.25).abs() < 1e-12);
        assert_eq!(range(&c), Some((35.0, 165.0)));
    }

    /// A speedup of 1.10x on the near placement and 1.47x on the far one
    /// (round-to-round jitter of 1%) is bound by the placement; the same
    /// speedup on both is not, and neither is one placement.
    #[test]
    fn a_ratio_that_differs_between_placements_is_bound_by_them() {
        let (a, b) = two_placements(1.10, 1.47);
        let (near, far) = ratios(&a, &b).unwrap();
        // processes 0 and 2 near (offsets 0 and 0.6%), 1 and 3 far (0.3%
        // and 0.9%): each side's geometric mean
        assert!((near.value - 1.10 / 1.003f64).abs() < 1e-3, "{near:?}");
        assert!((far.value - 1.47 / 1.006f64).abs() < 1e-3, "{far:?}");
        assert!(bound(&a, &b));
        assert!(bound(&b, &a));
        let (a, b) = two_placements(1.10, 1.10);
        assert!(ratios(&a, &b).is_some());
        assert!(!bound(&a, &b));
        // one placement: no split, never bound
        let (mut a, mut b) = two_placements(1.10, 1.47);
        for p in a.processes.iter_mut().chain(b.processes.iter_mut()) {
            p.core_to_core_ns = Some(35.0);
        }
        assert_eq!(ratios(&a, &b), None);
        assert!(!bound(&a, &b));
    }

    #[test]
    fn one_placement_or_no_probe_is_no_split() {
        // 40 against 35 ns: the same placement
        let c = probed(&[&[75.0], &[146.0]], &[Some(35.0), Some(40.0)]);
        assert_eq!(split(&c), None);
        assert_eq!(range(&c), Some((35.0, 40.0)));
        // exactly APART times: two placements
        let c = probed(&[&[75.0], &[146.0]], &[Some(40.0), Some(60.0)]);
        assert!(split(&c).is_some());
        // unprobed processes do not count; one probed is one placement
        let c = probed(&[&[75.0], &[146.0]], &[Some(35.0), None]);
        assert_eq!(split(&c), None);
        let c = probed(&[&[75.0], &[146.0]], &[None, None]);
        assert_eq!((split(&c), range(&c)), (None, None));
        // a probe of 0 is no probe: 35 and 165 split, the 0 on neither side
        let c = probed(
            &[&[75.0], &[146.0], &[80.0]],
            &[Some(0.0), Some(165.0), Some(35.0)],
        );
        let s = split(&c).unwrap();
        assert_eq!((s.near.processes, s.far.processes), (vec![2], vec![1]));
        // a probe exactly at the geometric middle (sqrt(20 * 80) = 40) is near
        let c = probed(
            &[&[75.0], &[146.0], &[80.0]],
            &[Some(20.0), Some(80.0), Some(40.0)],
        );
        let s = split(&c).unwrap();
        assert_eq!((s.near.processes, s.far.processes), (vec![0, 2], vec![1]));
        // a far process that timed nothing is not a side
        let c = probed(&[&[75.0], &[]], &[Some(35.0), Some(165.0)]);
        assert_eq!(split(&c), None);
    }
}
