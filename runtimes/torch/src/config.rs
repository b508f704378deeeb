//! What the options become in speedbench's libtorch executor: the schedule
//! and its threads, as a pure function of [`PrepareOptions`] and the graph's
//! width.

use speedbench::frameworks::{Device, Mode, PrepareOptions};

/// How the plan's nodes are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleKind {
    /// One node after another on the calling thread (and its current CUDA
    /// stream).
    Sequential,
    /// CPU: speedbench's cost-model schedule (`staged.rs`): sequential
    /// stages on the calling thread with every intra-op thread, branches on
    /// concurrent lanes where the calibrated costs predict a gain.
    Staged,
    /// CUDA: one host thread queueing each branch on its own stream.
    Streams,
}

/// The schedule one prepared graph runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleConfig {
    pub kind: ScheduleKind,
    /// Lanes at most (CPU) or CUDA streams; 1 for the sequential schedule.
    pub workers: usize,
    /// Intra-op threads of the calling thread (its sequential stages); a
    /// CPU lane gets `max(1, intra_threads / workers)`.
    pub intra_threads: usize,
}

impl ScheduleConfig {
    /// (intra-op threads, workers or streams) as a cell records them.
    pub fn threads(&self) -> (usize, usize) {
        (self.intra_threads, self.workers)
    }
}

/// The schedule for `opts` on a graph whose widest antichain has
/// `max_parallel_branches` nodes. Sequential mode keeps all
/// `intra_threads` on one thread. Parallel mode runs at most
/// `min(inter_threads, max_parallel_branches)` workers or streams (more would
/// only sit idle or, on the CPU, take intra-op threads from the others); on
/// the CPU the sequential stages keep every intra-op thread and each
/// concurrent lane gets `max(1, intra_threads / workers)`, so that lanes
/// times intra-op threads stay within the cores.
pub fn schedule_config(opts: &PrepareOptions, max_parallel_branches: usize) -> ScheduleConfig {
    let inter = opts.inter_threads.min(max_parallel_branches).max(1);
    match (opts.mode, opts.device) {
        (Mode::Sequential, _) => ScheduleConfig {
            kind: ScheduleKind::Sequential,
            workers: 1,
            intra_threads: opts.intra_threads,
        },
        (Mode::Parallel, Device::Cpu) => ScheduleConfig {
            kind: ScheduleKind::Staged,
            workers: inter,
            intra_threads: opts.intra_threads,
        },
        (Mode::Parallel, Device::Cuda) => ScheduleConfig {
            kind: ScheduleKind::Streams,
            workers: inter,
            intra_threads: opts.intra_threads,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use speedbench::frameworks::Optimize;

    fn opts(device: Device, mode: Mode, intra: usize, inter: usize) -> PrepareOptions {
        PrepareOptions::new(device, mode, Optimize::Default, intra, inter, false)
    }

    fn config(kind: ScheduleKind, workers: usize, intra_threads: usize) -> ScheduleConfig {
        ScheduleConfig {
            kind,
            workers,
            intra_threads,
        }
    }

    #[test]
    fn sequential_keeps_every_intra_op_thread_on_one_thread() {
        for device in [Device::Cpu, Device::Cuda] {
            let c = schedule_config(&opts(device, Mode::Sequential, 4, 2), 5);
            assert_eq!(c, config(ScheduleKind::Sequential, 1, 4));
            assert_eq!(c.threads(), (4, 1));
        }
    }

    #[test]
    fn parallel_on_the_cpu_keeps_every_intra_op_thread_for_sequential_stages() {
        let c = schedule_config(&opts(Device::Cpu, Mode::Parallel, 4, 2), 5);
        assert_eq!(c, config(ScheduleKind::Staged, 2, 4));
        assert_eq!(c.threads(), (4, 2));
        let c = schedule_config(&opts(Device::Cpu, Mode::Parallel, 1, 2), 5);
        assert_eq!(c, config(ScheduleKind::Staged, 2, 1));
    }

    #[test]
    fn no_more_workers_than_branches_can_run_at_once() {
        let c = schedule_config(&opts(Device::Cpu, Mode::Parallel, 8, 6), 4);
        assert_eq!(c, config(ScheduleKind::Staged, 4, 8));
        let c = schedule_config(&opts(Device::Cpu, Mode::Parallel, 8, 6), 1);
        assert_eq!(c, config(ScheduleKind::Staged, 1, 8));
        // at least one lane, whatever the options say
        let c = schedule_config(&opts(Device::Cpu, Mode::Parallel, 8, 0), 4);
        assert_eq!(c, config(ScheduleKind::Staged, 1, 8));
    }

    #[test]
    fn parallel_on_cuda_runs_a_stream_per_branch() {
        let c = schedule_config(&opts(Device::Cuda, Mode::Parallel, 4, 3), 5);
        assert_eq!(c, config(ScheduleKind::Streams, 3, 4));
        assert_eq!(c.threads(), (4, 3));
        let c = schedule_config(&opts(Device::Cuda, Mode::Parallel, 4, 8), 5);
        assert_eq!(c, config(ScheduleKind::Streams, 5, 4));
    }
}
