//! What the rest of the machine did while a worker timed: the machine's
//! busy CPU time from /proc/stat minus the worker's own (getrusage), the
//! worker's involuntary context switches, and the load average.

use std::time::Instant;

use crate::record::MachineLoad;

/// Busy CPU time of the whole machine from the text of /proc/stat, in
/// clock ticks: user, nice, system, irq, softirq and steal of the `cpu`
/// line (idle and iowait are not busy; guest time is inside user), and of
/// it the steal (time a hypervisor gave other guests).
pub fn busy_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    (v.len() >= 4).then(|| (at(0) + at(1) + at(2) + at(5) + at(6) + at(7), at(7)))
}

/// The 1-minute load average from the text of /proc/loadavg.
pub fn load_avg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Clock ticks per second from `sysconf(_SC_CLK_TCK)`'s answer: Linux's
/// USER_HZ (100) where it gives none.
fn hz(sysconf: libc::c_long) -> f64 {
    if sysconf > 0 {
        sysconf as f64
    } else {
        100.0
    }
}

fn ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    hz(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
}

/// Seconds of a `timeval`.
fn seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// The worker's own CPU time (all its threads) in seconds, and its
/// involuntary context switches.
fn own() -> Option<(f64, u64)> {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes the struct it is given.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: initialised by the successful call above.
    let u = unsafe { u.assume_init() };
    Some((
        seconds(u.ru_utime) + seconds(u.ru_stime),
        u.ru_nivcsw as u64,
    ))
}

/// Busy and stolen seconds from the text of /proc/stat at `hz` ticks a
/// second.
fn busy_seconds(stat: &str, hz: f64) -> Option<(f64, f64)> {
    let (busy, steal) = busy_ticks(stat)?;
    Some((busy as f64 / hz, steal as f64 / hz))
}

/// The machine's busy and stolen seconds so far.
fn machine_busy_s() -> Option<(f64, f64)> {
    busy_seconds(&std::fs::read_to_string("/proc/stat").ok()?, ticks_per_s())
}

/// The clocks the probe reads at each end of the timed iterations.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    /// The machine's busy seconds, and of them the stolen ones.
    machine_s: f64,
    stolen_s: f64,
    /// The worker's own CPU seconds and involuntary context switches.
    own_s: f64,
    switches: u64,
}

impl Reading {
    fn now() -> Option<Reading> {
        let (own_s, switches) = own()?;
        let (machine_s, stolen_s) = machine_busy_s()?;
        Some(Reading {
            machine_s,
            stolen_s,
            own_s,
            switches,
        })
    }
}

/// What /proc/stat can tell apart: each of two readings can be a tick off
/// on every core.
fn resolution_s(cores: usize, hz: f64) -> f64 {
    2.0 * cores as f64 / hz
}

/// The load between readings `a` and `b`, `wall` seconds apart, with the
/// readings' `resolution` seconds taken off the machine's time and the
/// steal.
fn between(a: Reading, b: Reading, wall: f64, resolution: f64, load: f64) -> MachineLoad {
    measured(
        b.machine_s - a.machine_s - resolution,
        (b.stolen_s - a.stolen_s - resolution).max(0.0),
        b.own_s - a.own_s,
        wall,
        b.switches.saturating_sub(a.switches),
        load,
    )
}

/// The machine's load over a worker's timed passes only: the readings'
/// differences summed pass by pass, so that the sibling workers of a
/// lock-step group, which run between this worker's passes, are not read
/// as load on it ([`super::lockstep`]).
#[derive(Default)]
pub struct PassProbe {
    open: Option<(Reading, Instant)>,
    sum: Option<Reading>,
    wall: f64,
    passes: usize,
}

impl PassProbe {
    /// A timed pass begins.
    pub fn begin(&mut self) {
        self.open = Reading::now().map(|r| (r, Instant::now()));
    }

    /// The pass begun last ended.
    pub fn end(&mut self) {
        let Some((a, at)) = self.open.take() else {
            return;
        };
        let Some(b) = Reading::now() else {
            return;
        };
        self.wall += at.elapsed().as_secs_f64();
        self.passes += 1;
        let s = self.sum.get_or_insert(Reading {
            machine_s: 0.0,
            stolen_s: 0.0,
            own_s: 0.0,
            switches: 0,
        });
        s.machine_s += b.machine_s - a.machine_s;
        s.stolen_s += b.stolen_s - a.stolen_s;
        s.own_s += b.own_s - a.own_s;
        s.switches += b.switches.saturating_sub(a.switches);
    }

    /// What the rest of the machine did during the passes: `None` where
    /// none was read. Each pass's readings round to a tick; their errors
    /// add up like a random walk, so the resolution taken off grows with
    /// the square root of the passes.
    pub fn finish(self) -> Option<MachineLoad> {
        let sum = self.sum?;
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|t| load_avg(&t))
            .unwrap_or(0.0);
        let resolution =
            resolution_s(crate::record::env::cores(), ticks_per_s()) * (self.passes as f64).sqrt();
        let zero = Reading {
            machine_s: 0.0,
            stolen_s: 0.0,
            own_s: 0.0,
            switches: 0,
        };
        Some(between(zero, sum, self.wall, resolution, load))
    }
}

/// The load from the machine's busy seconds and the worker's own over
/// `wall` seconds. /proc/stat counts in ticks (10 ms) and getrusage in
/// microseconds: the caller takes the readings' resolution off the
/// machine's time, so that a short timing reads no load it cannot tell
/// from rounding, and what reads below zero is none.
pub fn measured(
    machine_s: f64,
    stolen_s: f64,
    own_s: f64,
    wall: f64,
    switches: u64,
    load: f64,
) -> MachineLoad {
    let per = |s: f64| if wall > 0.0 { s / wall } else { 0.0 };
    MachineLoad {
        other_cores: per(machine_s - own_s).max(0.0),
        stolen_cores: per(stolen_s).max(0.0),
        own_cores: per(own_s),
        involuntary_switches: switches,
        load_avg: load,
        cores: crate::record::env::cores(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_ticks_of_proc_stat() {
        let stat = "cpu  100 5 20 9000 7 3 2 11 40 0\ncpu0 50 2 10 4500 3 1 1 5 20 0\nintr 1 2\n";
        // user 100 + nice 5 + system 20 + irq 3 + softirq 2 + steal 11
        assert_eq!(busy_ticks(stat), Some((141, 11)));
        // an old kernel's four columns
        assert_eq!(busy_ticks("cpu 1 2 3 4\n"), Some((6, 0)));
        assert_eq!(busy_ticks("cpu 1 2 3\n"), None);
        assert_eq!(busy_ticks("cpu0 1 2 3 4\n"), None);
        assert_eq!(busy_ticks("cpu 1 x 3 4\n"), None);
    }

    #[test]
    fn ticks_and_seconds() {
        assert_eq!(hz(250), 250.0);
        // no answer: Linux's USER_HZ
        assert_eq!((hz(0), hz(-1)), (100.0, 100.0));
        assert_eq!(ticks_per_s(), 100.0, "USER_HZ on Linux");
        let tv = |s, us| libc::timeval {
            tv_sec: s,
            tv_usec: us,
        };
        assert_eq!(seconds(tv(2, 250_000)), 2.25);
        let stat = "cpu  300 0 100 9000 0 0 0 50 0 0\n";
        assert_eq!(busy_seconds(stat, 100.0), Some((4.5, 0.5)));
        assert_eq!(busy_seconds("cpu0 1\n", 100.0), None);
    }

    /// The worker's own CPU time and the machine's busy time both count a
    /// spin of this thread (user and system time alike).
    /// This thread's CPU time (user and system), in seconds.
    fn thread_cpu_s() -> f64 {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the struct it is given.
        assert_eq!(
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) },
            0
        );
        t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
    }

    #[test]
    fn own_and_machine_time_count_this_process() {
        let thread0 = thread_cpu_s();
        let (own0, _) = own().unwrap();
        let (busy0, _) = machine_busy_s().unwrap();
        // spin until 0.3 s of this process's CPU time has passed, half of
        // it in system calls
        let mut x = 0u64;
        while own().unwrap().0 - own0 < 0.3 {
            x = x.wrapping_add(std::hint::black_box(1));
            if x.is_multiple_of(4) {
                std::hint::black_box(std::fs::metadata("/proc/self").ok());
            }
        }
        let (own1, _) = own().unwrap();
        let (busy1, _) = machine_busy_s().unwrap();
        let thread = thread_cpu_s() - thread0;
        let mine = own1 - own0;
        // the process's time holds this thread's, user and system
        assert!(mine >= thread - 0.02, "{mine} < {thread}");
        assert!((0.3..5.0).contains(&mine), "{mine}");
        // /proc/stat counts everything, this spin included, to a tick per
        // core at each end
        let slack = 2.0 * crate::record::env::cores() as f64 / ticks_per_s();
        assert!(busy1 - busy0 >= mine - slack, "{busy0} {busy1} {mine}");
        // and more than this process could use on every core meanwhile
        assert!(busy1 - busy0 < 1000.0 && busy0 > 0.0);
    }

    #[test]
    fn the_load_between_two_readings() {
        let a = Reading {
            machine_s: 10.0,
            stolen_s: 1.0,
            own_s: 4.0,
            switches: 3,
        };
        let b = Reading {
            machine_s: 16.5,
            stolen_s: 2.5,
            own_s: 8.0,
            switches: 10,
        };
        // machine 6.5 - 0.5 resolution - own 4 = 2 s of others over 2 s;
        // steal 1.5 - 0.5 = 1 s
        let l = between(a, b, 2.0, 0.5, 0.7);
        assert_eq!(
            (l.other_cores, l.stolen_cores, l.own_cores),
            (1.0, 0.5, 2.0)
        );
        assert_eq!((l.involuntary_switches, l.load_avg), (7, 0.7));
        // steal within the resolution is none
        let c = Reading { stolen_s: 1.2, ..b };
        assert_eq!(between(a, c, 2.0, 0.5, 0.0).stolen_cores, 0.0);
        // a counter that went back (a new process) counts no switches
        assert_eq!(between(b, a, 1.0, 0.0, 0.0).involuntary_switches, 0);
        assert_eq!(resolution_s(4, 100.0), 0.08);
    }

    #[test]
    fn load_average_first_field() {
        assert_eq!(load_avg("1.25 0.80 0.40 2/300 1234\n"), Some(1.25));
        assert_eq!(load_avg(""), None);
    }

    #[test]
    fn others_are_the_machine_less_the_worker() {
        let l = measured(5.0, 1.0, 3.0, 2.0, 7, 1.5);
        assert_eq!(
            (l.other_cores, l.own_cores, l.stolen_cores),
            (1.0, 1.5, 0.5)
        );
        assert_eq!((l.involuntary_switches, l.load_avg), (7, 1.5));
        // tick rounding never reads as negative use
        assert_eq!(measured(2.99, 0.0, 3.0, 2.0, 0, 0.0).other_cores, 0.0);
        assert_eq!(measured(1.0, 1.0, 0.0, 0.0, 0, 0.0).other_cores, 0.0);
        assert_eq!(measured(1.0, -1.0, 0.0, 1.0, 0, 0.0).stolen_cores, 0.0);
    }

    /// A probe across real work reads the worker's own CPU time, over
    /// its passes only: an idle gap between two passes adds no wall time.
    #[test]
    fn a_probe_reads_this_process_over_its_passes() {
        assert!(PassProbe::default().finish().is_none(), "no pass, no load");
        let mut p = PassProbe::default();
        let mut x = 0u64;
        for _ in 0..2 {
            p.begin();
            let t = Instant::now();
            while t.elapsed().as_millis() < 100 {
                x = x.wrapping_add(std::hint::black_box(1));
            }
            p.end();
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let wall = p.wall;
        let l = p.finish().unwrap();
        assert!(x > 0);
        assert!((0.2..0.3).contains(&wall), "{wall}");
        assert!(l.own_cores > 0.5, "{l:?}");
        assert!(l.other_cores >= 0.0 && l.cores >= 1);
    }
}
