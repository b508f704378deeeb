//! The threads that ran while a process timed: each thread's time on a CPU
//! from the kernel's scheduler statistics (`/proc/self/task/*/schedstat`,
//! nanoseconds), read at both ends of the timed iterations. A framework's
//! pool thread that worked (or spun) through them counts; one that slept,
//! or ran only now and then, does not. What a framework says it was given
//! can differ from what ran; this is what ran.

use std::collections::HashMap;

/// A thread counts as running when it was on a CPU at least this share of
/// the timed wall time.
pub const RAN_SHARE: f64 = 0.1;

/// Each thread's time on a CPU so far, ns, by thread id.
pub type ThreadTimes = HashMap<u64, u64>;

/// The first field of a `schedstat` file: time on a CPU, ns.
fn on_cpu_ns(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().next()?.parse().ok()
}

/// This process's threads' times on a CPU; `None` where /proc cannot say.
pub fn now() -> Option<ThreadTimes> {
    let mut times = ThreadTimes::new();
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(entry) = entry else { continue };
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // a thread that ended between the listing and the read is skipped
        if let Some(ns) = std::fs::read_to_string(entry.path().join("schedstat"))
            .ok()
            .and_then(|s| on_cpu_ns(&s))
        {
            times.insert(tid, ns);
        }
    }
    (!times.is_empty()).then_some(times)
}

/// The ids of the threads on a CPU at least [`RAN_SHARE`] of the
/// `wall_ns` between the readings `before` and `after` (a thread started
/// between them counts from zero), in order.
pub fn ran(before: &ThreadTimes, after: &ThreadTimes, wall_ns: u64) -> Vec<u64> {
    let least = RAN_SHARE * wall_ns as f64;
    let mut tids: Vec<u64> = after
        .iter()
        .filter(|(tid, &ns)| {
            let was = before.get(tid).copied().unwrap_or(0);
            wall_ns > 0 && ns.saturating_sub(was) as f64 >= least
        })
        .map(|(&tid, _)| tid)
        .collect();
    tids.sort_unstable();
    tids
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    #[test]
    fn schedstat_gives_the_time_on_a_cpu() {
        assert_eq!(on_cpu_ns("123456 789 10\n"), Some(123456));
        assert_eq!(on_cpu_ns(""), None);
        assert_eq!(on_cpu_ns("x 1 2"), None);
    }

    #[test]
    fn threads_count_from_a_tenth_of_the_wall_time() {
        let before = ThreadTimes::from([(1, 1_000), (2, 5_000), (3, 0)]);
        // over 1000 ns: thread 1 ran 100 (a tenth), 2 ran 99, 3 ran 1000,
        // 4 started and ran 500, 5 started and ran 99
        let after = ThreadTimes::from([(1, 1_100), (2, 5_099), (3, 1_000), (4, 500), (5, 99)]);
        assert_eq!(ran(&before, &after, 1_000), [1, 3, 4]);
        // a thread gone from the second reading, or one whose clock went
        // back, does not count; no wall time, no threads
        let back = ThreadTimes::from([(1, 0)]);
        assert!(ran(&before, &back, 1_000).is_empty());
        assert!(ran(&before, &after, 0).is_empty());
    }

    /// Two threads spinning through the readings count; a sleeping one
    /// does not (other tests' threads may count too).
    #[test]
    fn spinning_threads_ran_and_a_sleeping_one_did_not() {
        let stop = AtomicBool::new(false);
        let (tx, rx) = std::sync::mpsc::channel();
        let (before, after, wall) = std::thread::scope(|s| {
            for spins in [true, true, false] {
                let (tx, stop) = (tx.clone(), &stop);
                s.spawn(move || {
                    // SAFETY: gettid has no preconditions
                    let tid = unsafe { libc::gettid() } as u64;
                    tx.send((tid, spins)).unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        if !spins {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                });
            }
            // the spinning threads stop however this closure ends: a failed
            // read fails the test instead of hanging it
            struct Stop<'a>(&'a AtomicBool);
            impl Drop for Stop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
            let _stop = Stop(&stop);
            let tids: Vec<(u64, bool)> = (0..3).map(|_| rx.recv().unwrap()).collect();
            let before = now().expect("/proc/self/task is readable on Linux");
            let start = Instant::now();
            std::thread::sleep(Duration::from_millis(300));
            let after = now().expect("/proc/self/task is readable on Linux");
            let wall = start.elapsed().as_nanos() as u64;
            (before, after, (wall, tids))
        });
        let (wall, tids) = wall;
        let counted = ran(&before, &after, wall);
        for (tid, spins) in tids {
            assert_eq!(
                counted.contains(&tid),
                spins,
                "thread {tid} (spins: {spins}) in {counted:?}"
            );
        }
    }
}
