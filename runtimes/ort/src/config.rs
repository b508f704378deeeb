//! What the options become in ONNX Runtime: the session builder's settings,
//! as a pure function of [`PrepareOptions`].

use ort::session::builder::GraphOptimizationLevel;

use speedbench::frameworks::{Mode, Optimize, Precision, PrepareOptions};

/// The settings one ONNX Runtime session is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// `Disable` at `--optimize none`, `All` otherwise.
    pub optimization: GraphOptimizationLevel,
    /// Threads inside one operation.
    pub intra_threads: usize,
    /// `ORT_PARALLEL` (on) or `ORT_SEQUENTIAL` (off).
    pub parallel_execution: bool,
    /// Threads running independent operations; set in parallel mode only
    /// (ONNX Runtime uses none in sequential execution).
    pub inter_threads: Option<usize>,
    /// The CUDA execution provider's `enable_cuda_graph` (`--optimize
    /// cuda-graph`): the first bound pass is captured, later ones replay it.
    pub cuda_graph: bool,
    /// The CUDA execution provider's `use_tf32` (`--precision tf32`); off
    /// otherwise, so that fp32 is plain float32.
    pub tf32: bool,
}

impl SessionConfig {
    /// (intra-op, inter-op) threads as a cell records them: 1 inter-op
    /// thread in sequential execution.
    pub fn threads(&self) -> (usize, usize) {
        (self.intra_threads, self.inter_threads.unwrap_or(1))
    }
}

/// The session settings for `opts`: parallel execution with
/// `opts.inter_threads` inter-op threads in parallel mode, sequential
/// execution otherwise; intra-op threads from the options; graph
/// optimisations off at `--optimize none`, all of them otherwise.
pub fn session_config(opts: &PrepareOptions) -> SessionConfig {
    let parallel = opts.mode == Mode::Parallel;
    SessionConfig {
        optimization: match opts.optimize {
            Optimize::None => GraphOptimizationLevel::Disable,
            Optimize::Default | Optimize::Max | Optimize::CudaGraph => GraphOptimizationLevel::All,
        },
        cuda_graph: opts.optimize == Optimize::CudaGraph,
        tf32: opts.precision == Precision::Tf32,
        intra_threads: opts.intra_threads,
        parallel_execution: parallel,
        inter_threads: parallel.then_some(opts.inter_threads),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use speedbench::frameworks::Device;

    fn opts(mode: Mode, optimize: Optimize) -> PrepareOptions {
        PrepareOptions::new(Device::Cpu, mode, optimize, 3, 5, false)
    }

    #[test]
    fn parallel_mode_executes_in_parallel_with_the_inter_op_threads() {
        let c = session_config(&opts(Mode::Parallel, Optimize::Default));
        assert!(c.parallel_execution);
        assert_eq!(c.inter_threads, Some(5));
        assert_eq!(c.intra_threads, 3);
        assert_eq!(c.threads(), (3, 5));
    }

    #[test]
    fn sequential_mode_executes_sequentially() {
        let c = session_config(&opts(Mode::Sequential, Optimize::Default));
        assert!(!c.parallel_execution);
        assert_eq!(c.inter_threads, None);
        assert_eq!(c.intra_threads, 3);
        assert_eq!(c.threads(), (3, 1));
    }

    #[test]
    fn optimize_none_disables_graph_optimisations() {
        let level = |o| session_config(&opts(Mode::Sequential, o)).optimization;
        assert_eq!(level(Optimize::None), GraphOptimizationLevel::Disable);
        assert_eq!(level(Optimize::Default), GraphOptimizationLevel::All);
        assert_eq!(level(Optimize::Max), GraphOptimizationLevel::All);
    }
}
