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
//! round, so that a report can say which processes ran on which placement.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
                if spins % 1024 == 0 && (stop.load(Ordering::Acquire) || began.elapsed() > GIVE_UP)
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

    /// A sanity bound, not a timing claim: on any machine with two cores
    /// a cache line crosses between them in more than a nanosecond and
    /// less than a millisecond (well under one on every machine seen).
    #[test]
    fn two_cores_are_some_nanoseconds_apart() {
        if allowed_cpus().len() < 2 {
            assert_eq!(core_to_core_ns(64), None);
            return;
        }
        let ns = core_to_core_ns(64).expect("two CPUs: a figure");
        assert!(ns > 1.0 && ns < 1e6, "{ns} ns");
    }

    #[test]
    fn the_allowed_cpus_are_distinct_and_ordered() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]), "{cpus:?}");
    }
}
