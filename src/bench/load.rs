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

fn ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
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
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some((secs(u.ru_utime) + secs(u.ru_stime), u.ru_nivcsw as u64))
}

/// The machine's busy and stolen seconds so far.
fn machine_busy_s() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let (busy, steal) = busy_ticks(&stat)?;
    Some((busy as f64 / ticks_per_s(), steal as f64 / ticks_per_s()))
}

/// A reading at the start of the timed iterations.
pub struct Probe {
    wall: Instant,
    machine_s: (f64, f64),
    own_s: f64,
    switches: u64,
}

impl Probe {
    /// `None` where /proc/stat or getrusage cannot be read.
    pub fn start() -> Option<Probe> {
        let (own_s, switches) = own()?;
        Some(Probe {
            machine_s: machine_busy_s()?,
            own_s,
            switches,
            wall: Instant::now(),
        })
    }

    /// What the rest of the machine did since [`Probe::start`].
    pub fn finish(self) -> Option<MachineLoad> {
        let wall = self.wall.elapsed().as_secs_f64();
        let (own_s, switches) = own()?;
        let (busy, steal) = machine_busy_s()?;
        let (machine, stolen) = (busy - self.machine_s.0, steal - self.machine_s.1);
        let mine = own_s - self.own_s;
        // each of the two readings of /proc/stat can be a tick off on
        // every core
        let resolution = 2.0 * crate::record::env::cores() as f64 / ticks_per_s();
        Some(measured(
            machine - resolution,
            (stolen - resolution).max(0.0),
            mine,
            wall,
            switches.saturating_sub(self.switches),
            std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|t| load_avg(&t))
                .unwrap_or(0.0),
        ))
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

    /// A probe across real work reads the worker's own CPU time.
    #[test]
    fn a_probe_reads_this_process() {
        let p = Probe::start().expect("/proc/stat and getrusage");
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 200 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let l = p.finish().unwrap();
        assert!(x > 0);
        assert!(l.own_cores > 0.5, "{l:?}");
        assert!(l.other_cores >= 0.0 && l.cores >= 1);
    }
}
