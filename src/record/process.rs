//! One worker process of a cell, as a results file stores it: where it ran
//! in the run's order, how many samples it gave, and what the rest of the
//! machine did while it timed them.

use serde::{Deserialize, Serialize};

/// Other processes' CPU use, in cores, above which a process's timing is
/// marked busy: a quarter of a core taken from a worker that runs on every
/// core shifts its time by more than any interval covers (libtorch's
/// spinning team ran 25x slower beside one busy core).
pub const BUSY_CORES: f64 = 0.25;

/// What the rest of the machine did while a process timed its iterations.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct MachineLoad {
    /// CPU time of everything but the worker (other processes, the kernel's
    /// interrupts, a hypervisor's steal) over the timed wall time, in cores.
    pub other_cores: f64,
    /// Of `other_cores`, what a hypervisor gave other guests (steal time).
    #[serde(default)]
    pub stolen_cores: f64,
    /// The worker's own CPU time over the same wall time, in cores.
    pub own_cores: f64,
    /// Times the kernel took a core from the worker (involuntary context
    /// switches), over the timed iterations.
    pub involuntary_switches: u64,
    /// The 1-minute load average when the timing ended.
    pub load_avg: f64,
    /// Cores of the machine.
    pub cores: usize,
}

impl MachineLoad {
    /// Whether other processes used more than [`BUSY_CORES`].
    pub fn busy(&self) -> bool {
        self.other_cores > BUSY_CORES
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One worker process of a cell.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessRecord {
    /// The process's index among the cell's processes, from 0.
    pub index: usize,
    /// Its position in its model's run order (all cells' processes).
    pub slot: usize,
    /// Device compute samples it gave (GPU; in `compute_samples_ms`, after
    /// those of the processes before it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub compute_samples: usize,
    /// It was stopped (Ctrl-C) before every iteration was timed.
    #[serde(default)]
    pub interrupted: bool,
    /// It chose the cell's schedule (the first process of a parallel cell
    /// calibrates; the others run the schedule it stored).
    #[serde(default)]
    pub calibrated: bool,
    /// The machine's load while it timed; absent where /proc could not be
    /// read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<MachineLoad>,
    /// Its threads that were on a CPU at least a tenth of the timed wall
    /// time (the framework's pool threads that worked or spun, and the
    /// calling thread): what ran, beside the threads the cell asked for.
    /// Absent where /proc could not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads_ran: Option<usize>,
    /// How far apart the machine's first two cores were while it timed:
    /// the median over its rounds of the parent's probe before each
    /// lock-step round ([`crate::bench::placement`]), one-way, in ns.
    /// Absent where not probed (one core, files from before the probe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_to_core_ns: Option<f64>,
    /// The probe before each of its rounds, in round order (`None` where
    /// that probe gave no figure): which placement each pass ran on, where
    /// the host moved the cores while the process timed. Empty in files
    /// from before per-round probes (the median above then stands for
    /// every round).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub round_core_to_core_ns: Vec<Option<f64>>,
    /// The placement of the cores its rounds were held for (`run
    /// --placement`); absent: any.
    #[serde(default, skip_serializing_if = "super::placement::Wanted::is_any")]
    pub placement: super::placement::Wanted,
    /// How long its group waited, before its rounds, for the cores to be
    /// on that placement, in s; absent where it did not hold them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_wait_s: Option<f64>,
}

impl ProcessRecord {
    pub fn busy(&self) -> bool {
        self.load.is_some_and(|l| l.busy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_above_a_quarter_core_of_others() {
        let mut l = MachineLoad {
            other_cores: BUSY_CORES,
            stolen_cores: 0.0,
            own_cores: 2.0,
            involuntary_switches: 0,
            load_avg: 0.0,
            cores: 2,
        };
        assert!(!l.busy());
        l.other_cores = BUSY_CORES + 0.01;
        assert!(l.busy());
        let mut p = ProcessRecord {
            index: 0,
            slot: 0,
            compute_samples: 0,
            interrupted: false,
            calibrated: false,
            load: None,
            threads_ran: None,
            core_to_core_ns: None,
            round_core_to_core_ns: vec![],
            placement: Default::default(),
            placement_wait_s: None,
        };
        assert!(!p.busy());
        p.load = Some(l);
        assert!(p.busy());
    }
}
