//! How far apart the machine's first two cores are: the one-way latency of
//! a cache line passed back and forth between two threads pinned to them.
//!
//! On a cloud VM the host decides where the guest's cores run, and it
//! moves them: on the 2-core Zen 4 VMs of this project the two cores were
//! about 75 ns apart at times and about 180 ns at others (sharing a last
//! level cache, or not), for tens of seconds each, with no steal time to
//! show it. Work split across both cores at every operation (libtorch's
//! sequential pass of a model of many small operations) ran twice as slow
//! when they were far apart. The runner probes before every lock-step
//! round, so that a report can say which processes ran on which placement,
//! and where a run asks for one placement (`--placement`), its [`Gate`]
//! holds each round until the cores are on it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::record::placement::Wanted;

/// Round trips of the probe before each round (a few tens of
/// microseconds).
pub const PROBE_TRIPS: usize = 64;

/// The longest a round waits for the cores to come to the wanted
/// placement: past it the group gives up.
pub const PATIENCE: Duration = Duration::from_secs(300);

/// Between two probes of a round that waits.
const STEP: Duration = Duration::from_millis(250);

/// Whether rounds can be held for `want`: any can; near and far need the
/// probe to give a figure (two cores, pinned threads), in one of a few
/// tries.
pub fn can_hold(want: Wanted) -> anyhow::Result<()> {
    if want.is_any() || (0..3).any(|_| core_to_core_ns(PROBE_TRIPS).is_some()) {
        return Ok(());
    }
    anyhow::bail!(
        "--placement {}: cannot tell where the cores are: the probe needs two CPUs this process may pin threads to (it may use {})",
        want.name(),
        allowed_cpus().len()
    )
}

/// Why a round did not start.
#[derive(Debug, Clone, PartialEq)]
pub enum NotNow {
    /// The run was told to stop while the round waited.
    Stopped,
    /// The cores were not on the wanted placement for [`PATIENCE`]: why,
    /// in words.
    Patience(String),
}

/// Holds each lock-step round of a run until the probe before it reads
/// the cores on the wanted placement ([`Wanted::admits`]), telling near
/// from far by all the run's probes.
pub struct Gate<'a> {
    pub want: Wanted,
    seen: Vec<f64>,
    patience: Duration,
    step: Duration,
    probe: Box<dyn FnMut() -> Option<f64> + 'a>,
}

impl Gate<'static> {
    /// The gate of a run that wants `want`, probing this machine's first
    /// two cores.
    pub fn new(want: Wanted) -> Self {
        Gate::with(want, PATIENCE, STEP, || core_to_core_ns(PROBE_TRIPS))
    }
}

impl<'a> Gate<'a> {
    /// A gate that probes with `probe`, waits `step` between probes and at
    /// most `patience` for a round.
    pub fn with(
        want: Wanted,
        patience: Duration,
        step: Duration,
        probe: impl FnMut() -> Option<f64> + 'a,
    ) -> Self {
        Gate {
            want,
            seen: Vec::new(),
            patience,
            step,
            probe: Box::new(probe),
        }
    }

    /// Probes before a round until the cores are on the wanted placement
    /// (at once for any): the probe the round starts on and how long it
    /// waited; [`NotNow`] where `stop` was set while it waited, or it
    /// waited [`PATIENCE`] in vain.
    pub fn before_round(&mut self, stop: &AtomicBool) -> Result<(Option<f64>, Duration), NotNow> {
        let began = Instant::now();
        loop {
            let ns = (self.probe)();
            let admitted = self.want.admits(ns, &self.seen);
            self.seen.extend(ns);
            if admitted {
                return Ok((ns, began.elapsed()));
            }
            if stop.load(Ordering::SeqCst) {
                return Err(NotNow::Stopped);
            }
            if began.elapsed() >= self.patience {
                return Err(NotNow::Patience(self.why(began.elapsed())));
            }
            std::thread::sleep(self.step);
        }
    }

    /// Why a round that waited `waited` did not start, with what the
    /// probes read.
    fn why(&self, waited: Duration) -> String {
        let read = match self.seen.iter().copied().reduce(f64::min) {
            Some(least) => {
                let most = self.seen.iter().copied().fold(least, f64::max);
                format!("the probes read {least:.0}-{most:.0} ns apart")
            }
            None => "the probe gave no figure (it needs two cores that answer)".into(),
        };
        let near = crate::record::placement::near_band(&self.seen);
        format!(
            "--placement {}: the cores were not {} in {:.0} s of waiting ({read}; near is {:.0}-{:.0} ns)",
            self.want.name(),
            self.want.name(),
            waited.as_secs_f64(),
            near.start,
            near.end,
        )
    }
}

/// Round trips timed together; the median over blocks is the figure.
const BLOCK: usize = 8;

/// A probe that has not finished in this long gives up (a partner core
/// that is not running): no figure rather than a stall between rounds.
const GIVE_UP: Duration = Duration::from_millis(50);

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the call writes at
    // most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } == 0;
    if !ok {
        return vec![];
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `set` is initialised and `c` below its size.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Pins the calling thread to `cpu`; false where the kernel refuses.
fn pin(cpu: usize) -> bool {
    // SAFETY: as in `allowed_cpus`; pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) == 0
    }
}

/// The one-way core-to-core latency between the first two CPUs this
/// process may use, in ns: the median over blocks of `BLOCK` round trips
/// of `trips` in all, halved. `None` with fewer than two CPUs, where a
/// thread cannot be pinned, or where the probe does not finish in
/// [`GIVE_UP`]. Takes well under a millisecond on an idle machine.
pub fn core_to_core_ns(trips: usize) -> Option<f64> {
    let cpus = allowed_cpus();
    let (&a, &b) = (cpus.first()?, cpus.get(1)?);
    let turn = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let blocks = trips.div_ceil(BLOCK).max(1);
    std::thread::scope(|s| {
        let partner = s.spawn(|| {
            if !pin(b) {
                stop.store(true, Ordering::Release);
                return;
            }
            // answers every odd turn with the next even one
            let mut want = 1;
            while !stop.load(Ordering::Acquire) {
                if turn.load(Ordering::Acquire) == want {
                    turn.store(want + 1, Ordering::Release);
                    want += 2;
                } else {
                    std::hint::spin_loop();
                }
            }
        });
        let timed = s
            .spawn(|| {
                let result = pin(a).then(|| ping(&turn, &stop, blocks)).flatten();
                stop.store(true, Ordering::Release);
                result
            })
            .join()
            .ok()
            .flatten();
        stop.store(true, Ordering::Release);
        let _ = partner.join();
        timed
    })
}

/// Times `blocks` blocks of round trips against the partner; the median
/// block's one-way time in ns, or `None` where the partner stopped or the
/// probe ran past [`GIVE_UP`].
fn ping(turn: &AtomicU64, stop: &AtomicBool, blocks: usize) -> Option<f64> {
    let began = Instant::now();
    let mut next = 1;
    let mut per_block = Vec::with_capacity(blocks);
    for _ in 0..blocks {
        let t0 = Instant::now();
        for _ in 0..BLOCK {
            turn.store(next, Ordering::Release);
            let mut spins = 0u32;
            while turn.load(Ordering::Acquire) != next + 1 {
                std::hint::spin_loop();
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(1024)
                    && (stop.load(Ordering::Acquire) || began.elapsed() > GIVE_UP)
                {
                    return None;
                }
            }
            next += 2;
        }
        per_block.push(t0.elapsed().as_secs_f64() * 1e9 / (2 * BLOCK) as f64);
    }
    (!per_block.is_empty()).then(|| crate::record::stats::median(&per_block))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sanity bound, not a timing claim: a cache line crosses between
    /// two cores in more than 5 ns and, on an idle pair, well under 5 us
    /// (35 and 165 ns on this project's VMs). The least of a few probes,
    /// since the tests run beside each other.
    #[test]
    fn two_cores_are_some_nanoseconds_apart() {
        if allowed_cpus().len() < 2 {
            assert_eq!(core_to_core_ns(64), None);
            return;
        }
        let ns = (0..5)
            .filter_map(|_| core_to_core_ns(64))
            .reduce(f64::min)
            .expect("two CPUs: a figure");
        assert!(ns > 5.0 && ns < 5000.0, "{ns} ns");
    }

    #[test]
    fn the_allowed_cpus_are_this_process_s_cpus_in_order() {
        let cpus = allowed_cpus();
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(cpus.len(), n, "{cpus:?}");
        assert!(cpus.windows(2).all(|w| w[0] < w[1]), "{cpus:?}");
    }

    #[test]
    fn a_pinned_thread_runs_on_its_cpu() {
        for &cpu in allowed_cpus().iter().take(2) {
            let on = std::thread::spawn(move || {
                assert!(pin(cpu));
                // SAFETY: no arguments; returns the CPU of the calling thread.
                unsafe { libc::sched_getcpu() }
            })
            .join()
            .unwrap();
            assert_eq!(usize::try_from(on).ok(), Some(cpu));
        }
    }

    /// A gate probes until the cores are where it wants them, waiting a
    /// step between probes, and gives up after its patience with what the
    /// probes read, or when told to stop; any takes the first probe.
    #[test]
    fn a_gate_waits_for_the_wanted_placement() {
        let stop = AtomicBool::new(false);
        let script = |v: Vec<Option<f64>>| {
            let mut it = v.into_iter();
            move || it.next().flatten()
        };
        let mut g = Gate::with(
            Wanted::Far,
            Duration::from_secs(5),
            Duration::from_millis(3),
            script(vec![Some(35.0), None, Some(36.0), Some(170.0)]),
        );
        let (ns, waited) = g.before_round(&stop).unwrap();
        assert_eq!(ns, Some(170.0));
        assert!(waited >= Duration::from_millis(9), "{waited:?}");
        assert_eq!(g.seen, [35.0, 36.0, 170.0]);
        let mut g = Gate::with(
            Wanted::Any,
            Duration::ZERO,
            Duration::ZERO,
            script(vec![None]),
        );
        assert_eq!(g.before_round(&stop).unwrap().0, None);
        let mut g = Gate::with(
            Wanted::Far,
            Duration::from_millis(20),
            Duration::from_millis(5),
            || Some(35.0),
        );
        let t0 = Instant::now();
        let Err(NotNow::Patience(why)) = g.before_round(&stop) else {
            panic!("a gate that waits in vain gives up")
        };
        assert!(t0.elapsed() >= Duration::from_millis(20));
        assert!(
            why.starts_with("--placement far: the cores were not far in 0 s of waiting")
                && why.ends_with("(the probes read 35-35 ns apart; near is 0-110 ns)"),
            "{why}"
        );
        let mut g = Gate::with(
            Wanted::Near,
            Duration::from_millis(10),
            Duration::from_millis(5),
            || None,
        );
        let Err(NotNow::Patience(why)) = g.before_round(&stop) else {
            panic!("no figure is no placement")
        };
        assert!(why.contains("the probe gave no figure"), "{why}");
        let stop = AtomicBool::new(true);
        let mut g = Gate::with(
            Wanted::Near,
            Duration::from_secs(60),
            Duration::ZERO,
            || Some(170.0),
        );
        assert_eq!(g.before_round(&stop), Err(NotNow::Stopped));
        // any and, on two cores, near and far can be held
        assert!(can_hold(Wanted::Any).is_ok());
        let two = allowed_cpus().len() >= 2;
        for w in [Wanted::Near, Wanted::Far] {
            match can_hold(w) {
                Ok(()) => assert!(two),
                Err(e) => assert!(!two && e.to_string().contains("needs two CPUs"), "{e}"),
            }
        }
    }

    /// A thread that may run on one CPU cannot probe: near and far are
    /// refused at once, naming the CPUs it may use; any is not.
    #[test]
    fn one_cpu_cannot_hold_a_placement() {
        let Some(&cpu) = allowed_cpus().first() else {
            return;
        };
        std::thread::spawn(move || {
            assert!(pin(cpu));
            for w in [Wanted::Near, Wanted::Far] {
                let e = can_hold(w).unwrap_err().to_string();
                assert!(e.ends_with("(it may use 1)"), "{e}");
                assert!(e.starts_with(&format!("--placement {}: ", w.name())), "{e}");
            }
            assert!(can_hold(Wanted::Any).is_ok());
        })
        .join()
        .unwrap();
    }

    /// No partner answers: the probe gives up after [`GIVE_UP`] with no
    /// figure, or at once where it is told to stop.
    #[test]
    fn a_probe_without_a_partner_gives_up() {
        let (turn, stop) = (AtomicU64::new(0), AtomicBool::new(false));
        let t0 = Instant::now();
        assert_eq!(ping(&turn, &stop, 2), None);
        assert!(t0.elapsed() >= GIVE_UP, "{:?}", t0.elapsed());
        stop.store(true, Ordering::Release);
        let t0 = Instant::now();
        assert_eq!(ping(&turn, &stop, 2), None);
        assert!(t0.elapsed() < GIVE_UP, "{:?}", t0.elapsed());
    }
}
