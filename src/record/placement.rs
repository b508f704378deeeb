//! A cell's rounds split by where the host had the machine's cores while
//! they timed (the probe before each round,
//! [`super::ProcessRecord::round_core_to_core_ns`], else the process's
//! median probe): near (a shared cache) or far apart. Where the two
//! placements ran the cell at different speeds, that, not the number of
//! rounds or processes, is what widens its intervals. A process whose
//! cores the host moved while it timed has rounds on both.

use super::stats::Ratio;
use super::CellRecord;

/// Far from near: the far side's median probe at least this many times
/// the near side's. The two placements seen on the 2-core VMs were 4-5x
/// apart (35 and 165 ns); one placement's probes vary by a few ns.
const APART: f64 = 1.5;

/// The fewest probes a placement is made of: one stray probe (a probe
/// the host interrupted) is no placement.
const FEWEST: usize = 2;

/// Which placement of the cores a run times its rounds on (`run
/// --placement`): any (as the host has them), or only near or only far,
/// the runner holding each round until the probe before it reads so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wanted {
    #[default]
    Any,
    Near,
    Far,
}

impl Wanted {
    pub fn is_any(&self) -> bool {
        *self == Wanted::Any
    }

    pub fn name(self) -> &'static str {
        match self {
            Wanted::Any => "any",
            Wanted::Near => "near",
            Wanted::Far => "far",
        }
    }

    /// Whether a round whose probe read `ns` runs on this placement, the
    /// run's probes so far being `seen` ([`near_band`] through them and
    /// `ns`): near within the band, far above it. No figure is no
    /// placement (only `Any` admits it).
    pub fn admits(self, ns: Option<f64>, seen: &[f64]) -> bool {
        let band = |ns: f64| {
            let all: Vec<f64> = seen.iter().copied().chain([ns]).collect();
            near_band(&all)
        };
        match (self, ns) {
            (Wanted::Any, _) => true,
            (_, None) => false,
            (Wanted::Near, Some(ns)) => band(ns).contains(&ns),
            (Wanted::Far, Some(ns)) => ns >= band(ns).end,
        }
    }
}

/// The probes of two cores that share a cache but not a core, among the
/// probes `seen`. The probes split at their [`threshold`]; where a side
/// splits again there are three placements (one core's two hardware
/// threads, near, far) and near is the middle one. Where they split once,
/// the upper side is far where its median is at least [`CUT_NS`], else
/// it is near (below [`CUT_NS`]) and the lower side one core's. Where they
/// do not split, near is below [`CUT_NS`]. On the 2-core Zen 4 VMs a few
/// percent of the probes read 17-25 ns against the usual 34-45: the host
/// had put both virtual cores on one physical core's two hardware
/// threads, and every framework's passes ran 1.3-1.6x slower.
pub fn near_band(seen: &[f64]) -> std::ops::Range<f64> {
    let Some(cut) = threshold(seen) else {
        return 0.0..CUT_NS;
    };
    let (lower, upper): (Vec<f64>, Vec<f64>) = seen.iter().partition(|&&ns| ns < cut);
    match (threshold(&lower), threshold(&upper)) {
        (Some(low), _) => low..cut,
        (None, Some(high)) => cut..high,
        _ if super::stats::median(&upper) >= CUT_NS => 0.0..cut,
        _ => cut..CUT_NS,
    }
}

/// The placement the cells' rounds were held for (`run --placement`) and
/// how long their groups waited for it in all, in s (a group's wait once:
/// its original cells' at one setting, process by process); `None` where
/// they ran on any.
pub fn held(cells: &[CellRecord]) -> Option<(Wanted, f64)> {
    let mut waits = std::collections::BTreeMap::new();
    let mut want = None;
    for c in cells.iter().filter(|c| !c.framework.contains('#')) {
        for p in c.processes.iter().filter(|p| !p.placement.is_any()) {
            want = Some(p.placement);
            let group = (
                &c.model,
                &c.framework,
                c.optimize,
                c.precision,
                c.batch,
                p.index,
            );
            let w: &mut f64 = waits.entry(group).or_default();
            *w = w.max(p.placement_wait_s.unwrap_or(0.0));
        }
    }
    Some((want?, waits.values().sum()))
}

/// Near from far where a run's probes have shown one placement only, ns:
/// between the 35-75 ns of two cores that share a last-level cache on this
/// project's VMs (and of any two cores of one Intel die) and the 160-180
/// ns of two that do not.
pub const CUT_NS: f64 = 110.0;

/// The rounds of one placement.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The (process, round) of each of the cell's samples that ran on it
    /// ([`keys`]).
    pub rounds: Vec<(usize, usize)>,
    /// The indices of the processes with rounds on it.
    pub processes: Vec<usize>,
    /// The median probe of its rounds, ns.
    pub core_to_core_ns: f64,
    /// The median over its processes of their median time on it, ms.
    pub median_ms: f64,
}

/// A cell's rounds on the near and the far placement.
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

/// The (process, round) of each of the cell's samples: its round where
/// the cell numbers them, else its place among its process's samples
/// (files from before lock-step).
pub fn keys(cell: &CellRecord) -> Vec<(usize, usize)> {
    let n = cell.samples_ms.len();
    let process = |i: usize| cell.sample_process.get(i).copied().unwrap_or(0);
    match cell.rounds() {
        Some(rounds) => (0..n).map(|i| (process(i), rounds[i])).collect(),
        None => {
            let mut seen: std::collections::HashMap<usize, usize> = Default::default();
            (0..n)
                .map(|i| {
                    let k = seen.entry(process(i)).or_default();
                    *k += 1;
                    (process(i), *k - 1)
                })
                .collect()
        }
    }
}

/// The probe before each of the cell's samples: its round's, where its
/// process recorded one, else its process's median; `None` where neither
/// (or a probe of 0 or less).
fn probes(cell: &CellRecord) -> Vec<Option<f64>> {
    keys(cell)
        .into_iter()
        .map(|(k, round)| {
            let p = cell.processes.iter().find(|p| p.index == k)?;
            let own = p.round_core_to_core_ns.get(round).copied().flatten();
            own.or(p.core_to_core_ns)
                .filter(|ns| ns.is_finite() && *ns > 0.0)
        })
        .collect()
}

/// Where near ends: the cut through the probes' logarithms that leaves
/// the least spread within its two sides (Otsu's threshold; the first of
/// equals), at the geometric middle of the two probes it falls between,
/// where each side holds at least [`FEWEST`] probes and the far side's
/// median is at least [`APART`] times the near side's; `None` otherwise
/// (one placement, or a cut that only sets stray probes apart). One stray
/// probe does not move the cut, as the middle of the extremes would.
pub fn threshold(ns: &[f64]) -> Option<f64> {
    let mut sorted = ns.to_vec();
    sorted.sort_by(f64::total_cmp);
    let v: Vec<f64> = sorted.iter().map(|x| x.ln()).collect();
    let n = v.len() as f64;
    let total: f64 = v.iter().sum();
    let mut below = 0.0;
    let mut best: Option<(f64, usize)> = None;
    for i in 1..v.len() {
        below += v[i - 1];
        if v[i] <= v[i - 1] {
            continue;
        }
        let (w0, w1) = (i as f64, n - i as f64);
        let gap = (total - below) / w1 - below / w0;
        let score = w0 * w1 * gap * gap;
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, i));
        }
    }
    let (_, i) = best?;
    let (near, far) = sorted.split_at(i);
    let median = super::stats::median;
    (near.len() >= FEWEST && far.len() >= FEWEST && median(far) >= APART * median(near))
        .then(|| (near[i - 1] * far[0]).sqrt())
}

/// The cell's rounds split at the [`threshold`] of their probes; `None`
/// with one placement, or no probes.
pub fn split(cell: &CellRecord) -> Option<Split> {
    let keys = keys(cell);
    let probed: Vec<(f64, usize)> = probes(cell)
        .into_iter()
        .enumerate()
        .filter_map(|(i, ns)| Some((ns?, i)))
        .collect();
    let middle = threshold(&probed.iter().map(|p| p.0).collect::<Vec<_>>())?;
    let side = |far: bool| {
        let on: Vec<&(f64, usize)> = probed.iter().filter(|p| (p.0 > middle) == far).collect();
        let rounds: Vec<(usize, usize)> = on.iter().map(|p| keys[p.1]).collect();
        let mut processes: Vec<usize> = rounds.iter().map(|r| r.0).collect();
        processes.sort_unstable();
        processes.dedup();
        let medians: Vec<f64> = processes
            .iter()
            .map(|&k| {
                let times: Vec<f64> = on
                    .iter()
                    .filter(|p| keys[p.1].0 == k)
                    .map(|p| cell.samples_ms[p.1])
                    .collect();
                super::stats::median(&times)
            })
            .collect();
        Placement {
            rounds,
            processes,
            core_to_core_ns: super::stats::median(&on.iter().map(|p| p.0).collect::<Vec<_>>()),
            median_ms: super::stats::median(&medians),
        }
    };
    Some(Split {
        near: side(false),
        far: side(true),
    })
}

/// The cell with only the samples of `rounds` ((process, round), as
/// [`keys`] gives them), and only the processes that have some.
pub fn only(cell: &CellRecord, rounds: &[(usize, usize)]) -> CellRecord {
    let keep: std::collections::HashSet<(usize, usize)> = rounds.iter().copied().collect();
    let mut c = cell.clone();
    for p in &cell.processes {
        if !keep.iter().any(|r| r.0 == p.index) {
            c.drop_process(p.index);
        }
    }
    let kept: Vec<usize> = keys(&c)
        .into_iter()
        .enumerate()
        .filter(|(_, k)| keep.contains(k))
        .map(|(i, _)| i)
        .collect();
    c.keep_samples(&kept);
    c
}

/// The ratio of `a` over `b` (two cells whose processes timed in the same
/// rounds, [`super::paired`]) on each placement of the cores that `a`'s
/// processes ran on: (near, far); `None` on one placement, or where a
/// side has no pairs.
pub fn ratios(a: &CellRecord, b: &CellRecord) -> Option<(Ratio, Ratio)> {
    let s = split(a)?;
    let on = |p: &Placement| super::paired(&only(a, &p.rounds), &only(b, &p.rounds));
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

/// Whether `current` timed on another placement of the cores than the
/// `earlier` cells of its kind did: the probes before all their rounds
/// split in two placements ([`threshold`]), and the current cell's median
/// probe lies on the other side of the cut from the median of the earlier
/// cells' median probes. A cell whose time moved with the cores (libtorch's
/// sequential ResNeXt-50-branched ran 1.8x slower far) then changed where
/// the host put them, which no code change explains. False with one
/// placement among them all, or without probes on either side.
pub fn moved(current: &CellRecord, earlier: &[&CellRecord]) -> bool {
    let probed = |c: &CellRecord| -> Vec<f64> { probes(c).into_iter().flatten().collect() };
    let median = super::stats::median;
    let now = probed(current);
    let then: Vec<Vec<f64>> = earlier.iter().map(|c| probed(c)).collect();
    let medians: Vec<f64> = then
        .iter()
        .filter(|v| !v.is_empty())
        .map(|v| median(v))
        .collect();
    if now.is_empty() || medians.is_empty() {
        return false;
    }
    let all: Vec<f64> = then.iter().flatten().chain(&now).copied().collect();
    threshold(&all).is_some_and(|cut| (median(&now) > cut) != (median(&medians) > cut))
}

/// The range of the probes before the cell's rounds, ns: (nearest,
/// farthest); `None` without probes.
pub fn range(cell: &CellRecord) -> Option<(f64, f64)> {
    let ns = probes(cell).into_iter().flatten();
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

    /// What a run held its rounds for, and its groups' waits, each once:
    /// a group's two modes and its A/A repeat waited together; its
    /// processes, and other settings, waited apart.
    #[test]
    fn a_run_held_for_a_placement_says_so_and_how_long_it_waited() {
        let cell = |framework: &str, mode: super::super::Mode, batch: usize, waits: &[f64]| {
            let mut c = test_cell(&[&[1.0], &[1.0]], true);
            (c.framework, c.mode, c.batch) = (framework.into(), mode, batch);
            for (p, &w) in c.processes.iter_mut().zip(waits) {
                p.placement = Wanted::Near;
                p.placement_wait_s = Some(w);
            }
            c
        };
        use super::super::Mode::{Parallel, Sequential};
        let mut cells = vec![
            cell("torch", Sequential, 16, &[2.0, 3.0]),
            cell("torch", Parallel, 16, &[2.0, 3.0]),
            cell("torch#2", Sequential, 16, &[2.0, 3.0]),
            cell("torch", Sequential, 8, &[1.5, 0.0]),
        ];
        assert_eq!(held(&cells), Some((Wanted::Near, 6.5)));
        cells[3].processes[1].placement_wait_s = None;
        assert_eq!(held(&cells), Some((Wanted::Near, 6.5)));
        assert_eq!(held(&[test_cell(&[&[1.0]], true)]), None);
        assert_eq!(held(&[]), None);
    }

    /// Near below 110 ns while the probes show one placement; below the
    /// cut through them once they show two (here two cores 125 ns apart
    /// are near on a machine whose far ones are 260 ns apart); far the
    /// rest; no figure is on no placement, and any admits everything.
    #[test]
    fn a_probe_is_near_below_the_cut_through_the_run_s_probes() {
        assert_eq!(near_band(&[]), 0.0..CUT_NS);
        for (ns, near) in [(35.0, true), (109.0, true), (111.0, false), (165.0, false)] {
            assert_eq!(Wanted::Near.admits(Some(ns), &[]), near, "{ns}");
            assert_eq!(Wanted::Far.admits(Some(ns), &[]), !near, "{ns}");
            assert!(Wanted::Any.admits(Some(ns), &[]));
        }
        let seen = [125.0, 128.0, 260.0, 255.0];
        assert!((near_band(&seen).end - (128.0f64 * 255.0).sqrt()).abs() < 1e-9);
        assert_eq!(near_band(&seen).start, 0.0);
        assert!(Wanted::Near.admits(Some(126.0), &seen));
        assert!(!Wanted::Far.admits(Some(126.0), &seen));
        assert!(Wanted::Far.admits(Some(250.0), &seen));
        // the probe itself counts: with one near probe seen, a second
        // makes the two placements
        assert!(Wanted::Near.admits(Some(120.0), &[121.0, 260.0, 255.0]));
        assert!(!Wanted::Near.admits(Some(120.0), &[260.0, 255.0]));
        for w in [Wanted::Near, Wanted::Far] {
            assert!(!w.admits(None, &seen));
        }
        assert!(Wanted::Any.admits(None, &[]));
        assert_eq!(
            [Wanted::Any, Wanted::Near, Wanted::Far].map(Wanted::name),
            ["any", "near", "far"]
        );
        assert!(Wanted::Any.is_any() && !Wanted::Near.is_any() && !Wanted::Far.is_any());
    }

    /// Two cores on one physical core (17-25 ns on the Zen 4 VMs) are not
    /// near, once the run's probes show them apart from the usual 34-45
    /// ns; nor are they far. A machine whose probes all read alike has
    /// one near band, whatever its figure.
    #[test]
    fn one_core_s_two_hardware_threads_are_not_near() {
        let seen = [36.0, 37.0, 35.0, 38.0, 45.0, 21.0, 20.0, 165.0, 170.0];
        let band = near_band(&seen);
        assert!(
            (band.start - (21.0f64 * 35.0).sqrt()).abs() < 1e-9,
            "{band:?}"
        );
        assert!(
            (band.end - (45.0f64 * 165.0).sqrt()).abs() < 1e-9,
            "{band:?}"
        );
        for (ns, near, far) in [
            (36.0, true, false),
            (21.0, false, false),
            (165.0, false, true),
        ] {
            assert_eq!(Wanted::Near.admits(Some(ns), &seen), near, "{ns}");
            assert_eq!(Wanted::Far.admits(Some(ns), &seen), far, "{ns}");
        }
        // one such probe is no placement yet; the second is
        assert!(Wanted::Near.admits(Some(20.0), &[36.0, 37.0, 35.0]));
        assert!(!Wanted::Near.admits(Some(20.0), &[36.0, 37.0, 35.0, 21.0]));
        assert!(Wanted::Near.admits(Some(21.0), &[20.0, 22.0, 21.0]));
        // one core's and near, no far yet: near up to 110 ns
        let band = near_band(&[36.0, 37.0, 35.0, 21.0, 20.0]);
        assert!(
            (band.start - (21.0f64 * 35.0).sqrt()).abs() < 1e-9,
            "{band:?}"
        );
        assert_eq!(band.end, CUT_NS);
        assert!(!Wanted::Far.admits(Some(60.0), &[36.0, 37.0, 35.0, 21.0]));
        // where one core's probes stand furthest apart, the first cut sets
        // them off, and near and far split above it
        let seen = [10.0, 10.5, 11.0, 36.0, 37.0, 60.0, 62.0];
        let band = near_band(&seen);
        assert!(
            (band.start - (11.0f64 * 36.0).sqrt()).abs() < 1e-9,
            "{band:?}"
        );
        assert!(
            (band.end - (37.0f64 * 60.0).sqrt()).abs() < 1e-9,
            "{band:?}"
        );
        for (ns, near, far) in [
            (36.5, true, false),
            (10.5, false, false),
            (61.0, false, true),
        ] {
            assert_eq!(Wanted::Near.admits(Some(ns), &seen), near, "{ns}");
            assert_eq!(Wanted::Far.admits(Some(ns), &seen), far, "{ns}");
        }
    }

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
        assert_eq!(s.near.rounds, [(0, 0), (0, 1), (0, 2), (3, 0), (3, 1)]);
        assert_eq!(s.far.rounds, [(1, 0), (1, 1), (2, 0)]);
        let near = only(&c, &s.near.rounds);
        assert_eq!(near.samples_ms, [75.0, 76.0, 74.0, 80.0, 79.0]);
        assert_eq!(near.sample_process, [0, 0, 0, 3, 3]);
        assert_eq!(near.sample_round, [0, 1, 2, 0, 1]);
        assert_eq!(near.processes.len(), 2);
        assert_eq!(near.latency.n, 5);
        // the median probe of the rounds: 35 35 35 37 37; 165 165 160
        assert_eq!(s.near.core_to_core_ns, 35.0);
        assert_eq!(s.far.core_to_core_ns, 165.0);
        // process medians 75 and 79.5; 145.5 and 150
        assert_eq!(s.near.median_ms, 77.25);
        assert_eq!(s.far.median_ms, 147.75);
        assert!((s.slowdown() - 147.75 / 77.25).abs() < 1e-12);
        assert_eq!(range(&c), Some((35.0, 165.0)));
        // a file from before lock-step numbers each process's samples
        let mut old = c.clone();
        old.sample_round.clear();
        assert_eq!(keys(&old), keys(&c));
        assert_eq!(split(&old), Some(s));
    }

    /// A cell timed with the cores far where the earlier ones ran near
    /// (or the reverse) moved; one on the placement of most earlier ones,
    /// or among one placement only, or without probes, did not.
    #[test]
    fn a_cell_moved_where_it_timed_on_the_other_placement() {
        const TIMES: [&[f64]; 3] = [&[75.0, 76.0], &[75.0, 76.0], &[75.0, 76.0]];
        let at = |ns: &[f64]| probed(&TIMES, &ns.iter().map(|&n| Some(n)).collect::<Vec<_>>());
        let near = [at(&[35.0, 36.0, 35.0]), at(&[36.0, 37.0, 35.0])];
        let far = at(&[165.0, 170.0, 160.0]);
        let mixed_near = at(&[35.0, 36.0, 168.0]);
        let near_refs: Vec<&CellRecord> = near.iter().collect();
        assert!(moved(&far, &near_refs));
        assert!(moved(&near[0], &[&far, &far]));
        // mostly near now: the earlier's placement
        assert!(!moved(&mixed_near, &near_refs));
        // the earlier cells mostly far, this one far too
        assert!(!moved(&far, &[&far, &mixed_near, &far]));
        // the median of the earlier cells' medians decides
        assert!(moved(&far, &[&near[0], &far, &near[1]]));
        assert!(!moved(&far, &[&far, &near[0], &far]));
        // one placement among them all: no cut
        assert!(!moved(&near[1], &near_refs));
        assert!(!moved(&far, &[&far]));
        // without probes: nothing is known
        let blind = probed(&TIMES, &[None, None, None]);
        assert!(!moved(&blind, &near_refs));
        assert!(!moved(&blind, &[&far, &near[0], &far]));
        assert!(!moved(&far, &[&blind]));
        assert!(!moved(&far, &[]));
    }

    /// The host moved the cores while a process timed: its rounds before
    /// the move are near, those after far, each with the speedup of its
    /// placement, where the process's median probe would put all of them
    /// on one side.
    #[test]
    fn a_process_the_host_moved_has_rounds_on_both_placements() {
        let near = [35.0, 36.0, 35.0, 37.0];
        let far = [165.0, 170.0, 168.0];
        let seq: Vec<f64> = [75.0, 76.0, 75.5, 74.5, 140.0, 141.0, 142.0].to_vec();
        let speedup = [1.10, 1.10, 1.10, 1.10, 1.47, 1.47, 1.47];
        let jitter = [1.0, 1.004, 0.996, 1.002, 0.998, 1.0, 1.003];
        let par: Vec<f64> = (0..7).map(|r| seq[r] / speedup[r] * jitter[r]).collect();
        let mut a = test_cell(&[&seq, &[75.0, 76.0]], true);
        let mut b = test_cell(&[&par, &[75.0 / 1.1, 76.0 / 1.1]], true);
        let rounds: Vec<Option<f64>> = near.iter().chain(&far).map(|&x| Some(x)).collect();
        for c in [&mut a, &mut b] {
            c.processes[0].core_to_core_ns = Some(37.0);
            c.processes[0].round_core_to_core_ns = rounds.clone();
            c.processes[1].core_to_core_ns = Some(36.0);
            c.processes[1].round_core_to_core_ns = vec![Some(36.0), None];
        }
        let s = split(&a).unwrap();
        // process 1's second round has no probe of its own: its median's
        assert_eq!(
            s.near.rounds,
            [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)]
        );
        assert_eq!(s.far.rounds, [(0, 4), (0, 5), (0, 6)]);
        assert_eq!((s.near.processes, s.far.processes), (vec![0, 1], vec![0]));
        assert_eq!(range(&a), Some((35.0, 170.0)));
        // each side's time is its own processes' on it: far, process 0's
        // 140-142 ms; near, 75.25 and 75.5
        assert_eq!((s.near.median_ms, s.far.median_ms), (75.375, 141.0));
        // the near rounds alone, summarised again
        let near = only(&a, &s.near.rounds);
        assert_eq!(near.latency.n, 6);
        assert_eq!(near.sample_round, [0, 1, 2, 3, 0, 1]);
        let (n, f) = ratios(&a, &b).unwrap();
        assert!((n.value - 1.10).abs() < 0.01, "{n:?}");
        assert!((f.value - 1.47).abs() < 0.01, "{f:?}");
        assert!(bound(&a, &b));
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

    /// The cut leaves the least spread within the two sides: a stray probe
    /// far out does not pull it past a placement, as the middle of the
    /// extremes (sqrt(35 x 900) = 177) would; nor is it a placement alone.
    #[test]
    fn the_cut_falls_between_the_placements_not_at_the_extremes() {
        let mut ns = vec![35.0, 36.0, 37.0, 35.5, 165.0, 170.0, 160.0, 166.0];
        let t = threshold(&ns).unwrap();
        assert!((t - (37.0f64 * 160.0).sqrt()).abs() < 1e-9, "{t}");
        ns.push(900.0);
        let t = threshold(&ns).unwrap();
        assert!(t > 37.0 && t < 160.0, "{t}");
        // one placement and one stray probe: one placement
        assert_eq!(threshold(&[35.0, 36.0, 37.0, 35.5, 900.0]), None);
        // two strays are a placement of two rounds
        let t = threshold(&[35.0, 36.0, 37.0, 35.5, 900.0, 950.0]).unwrap();
        assert!(t > 37.0 && t < 900.0, "{t}");
        // sides exactly APART: two placements; just under: one
        assert!(threshold(&[40.0, 40.0, 60.0, 60.0]).is_some());
        assert_eq!(threshold(&[40.0, 40.0, 59.9, 59.9]), None);
        // too few probes for two sides, or none
        assert_eq!(threshold(&[35.0, 165.0, 166.0]), None);
        assert_eq!(threshold(&[]), None);
        // the least spread within the sides, squared gaps weighed by both
        // sides' sizes: {20 20 20 50} and {80 300}, not {20 20 20} and
        // {50 80 300}, which a plainer score prefers
        let t = threshold(&[20.0, 20.0, 20.0, 50.0, 80.0, 300.0]).unwrap();
        assert!((t - (50.0f64 * 80.0).sqrt()).abs() < 1e-9, "{t}");
        // equal probes are never cut apart: the cut is between values
        assert_eq!(threshold(&[35.0, 35.0, 35.0, 35.0]), None);
        let t = threshold(&[35.0, 35.0, 35.0, 160.0, 160.0]).unwrap();
        assert!((t - (35.0f64 * 160.0).sqrt()).abs() < 1e-9, "{t}");
    }

    #[test]
    fn one_placement_or_no_probe_is_no_split() {
        // 40 against 35 ns: the same placement
        let c = probed(&[&[75.0, 76.0], &[146.0, 147.0]], &[Some(35.0), Some(40.0)]);
        assert_eq!(split(&c), None);
        assert_eq!(range(&c), Some((35.0, 40.0)));
        // exactly APART times: two placements
        let c = probed(&[&[75.0, 76.0], &[146.0, 147.0]], &[Some(40.0), Some(60.0)]);
        assert!(split(&c).is_some());
        // one round each side is too few
        let c = probed(&[&[75.0], &[146.0]], &[Some(40.0), Some(60.0)]);
        assert_eq!(split(&c), None);
        // unprobed processes do not count; one probed is one placement
        let c = probed(&[&[75.0, 76.0], &[146.0, 147.0]], &[Some(35.0), None]);
        assert_eq!(split(&c), None);
        let c = probed(&[&[75.0], &[146.0]], &[None, None]);
        assert_eq!((split(&c), range(&c)), (None, None));
        // a probe of 0 is no probe: 35 and 165 split, the 0 on neither side
        let c = probed(
            &[&[75.0, 76.0], &[146.0, 147.0], &[80.0, 81.0]],
            &[Some(0.0), Some(165.0), Some(35.0)],
        );
        let s = split(&c).unwrap();
        assert_eq!((s.near.processes, s.far.processes), (vec![2], vec![1]));
        // a far process that timed nothing is not a side
        let c = probed(&[&[75.0, 76.0], &[]], &[Some(35.0), Some(165.0)]);
        assert_eq!(split(&c), None);
    }
}
