//! The runtimes behind one trait: each lowers the same IR with the same
//! weights and runs a batch of NCHW float32 inputs to logits.

pub mod conformance;
pub mod cuda_stack;
pub mod precision;
pub mod tf_cpu;
mod workers;

pub use workers::{by_name, installed, register, runs_here, worker_exe, Backend};

use anyhow::{bail, Result};
use ndarray::{Array2, Array4};
use serde::{Deserialize, Serialize};

use crate::record::Timeline;
pub use crate::record::{Device, Mode, Optimize, Precision, ScheduleRecord, FRAMEWORKS};

use crate::graph::weights::Weights;
use crate::graph::{Graph, Shape};

/// Everything a framework needs to set a graph up for timing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PrepareOptions {
    pub device: Device,
    pub mode: Mode,
    /// Threads inside one operation.
    pub intra_threads: usize,
    /// Threads (or streams) running independent operations; 1 in sequential
    /// mode (see [`PrepareOptions::new`]).
    pub inter_threads: usize,
    pub optimize: Optimize,
    /// The number format ([`precision`] says where each framework can).
    #[serde(default)]
    pub precision: Precision,
    /// Show the framework's own log output.
    pub verbose: bool,
    /// A schedule an earlier process of the cell calibrated and chose: the
    /// parallel mode runs it instead of calibrating again, so every process
    /// of a cell times the same schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleRecord>,
}

impl PrepareOptions {
    /// The options of one cell. The thread rule lives here and only here:
    /// sequential mode runs 1 inter-op thread, parallel mode `inter_threads`.
    pub fn new(
        device: Device,
        mode: Mode,
        optimize: Optimize,
        intra_threads: usize,
        inter_threads: usize,
        verbose: bool,
    ) -> PrepareOptions {
        PrepareOptions {
            device,
            mode,
            intra_threads,
            inter_threads: match mode {
                Mode::Sequential => 1,
                Mode::Parallel => inter_threads,
            },
            optimize,
            precision: Precision::Fp32,
            verbose,
            schedule: None,
        }
    }
}

/// A graph loaded into a framework, ready to run.
pub trait Prepared {
    /// One forward pass: `[N, C, H, W]` in, `[N, classes]` logits out, host to
    /// host (the data is on the host again when this returns).
    fn run(&mut self, input: &Array4<f32>) -> Result<Array2<f32>>;

    /// The (intra-op threads, inter-op threads or streams) the framework was
    /// given, from its backend's options mapping (`config.rs`), which may
    /// differ from what was asked; `None` where unknown.
    fn threads_used(&self) -> Option<(usize, usize)> {
        None
    }

    /// Device compute time of one forward pass in ms, input and output kept
    /// on the device, timed between device synchronisations; `None` where
    /// the framework or device does not separate it from `run`.
    fn compute_ms(&mut self, _input: &Array4<f32>) -> Result<Option<f64>> {
        Ok(None)
    }

    /// One traced pass: every operation the framework ran, with its thread
    /// or stream, start and duration, as the framework's profiler (or
    /// speedbench's executor) recorded it. Events carry the framework's
    /// names; [`crate::trace::finish`] maps them to IR nodes. Called after
    /// the timed iterations, never between them.
    fn trace(&mut self, input: &Array4<f32>) -> Result<Timeline>;

    /// The schedule speedbench chose for this graph, where it chose one
    /// (after the first pass, which calibrates it).
    fn schedule(&self) -> Option<crate::record::ScheduleRecord> {
        None
    }
}

/// Checks a batch against the per-sample input shape a graph was built for;
/// every framework's [`Prepared::run`] starts with it.
pub fn check_input(graph_input: Shape, input: &Array4<f32>) -> Result<()> {
    let s = graph_input;
    if input.shape()[1..] != [s.c, s.h, s.w] {
        bail!(
            "input is {:?}; this graph was built for [N, {}, {}, {}]",
            input.shape(),
            s.c,
            s.h,
            s.w
        );
    }
    Ok(())
}

/// Checks the logits a runtime returned are `[N, classes]`, and gives
/// `(N, classes)`; `runtime` names it in the error.
pub fn check_output(runtime: &str, dims: &[usize]) -> Result<(usize, usize)> {
    match *dims {
        [n, classes] => Ok((n, classes)),
        _ => bail!("{runtime} returned logits of shape {dims:?}, expected [N, classes]"),
    }
}

/// Device memory a framework's allocator holds for tensors, MiB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceMemory {
    pub current_mib: f64,
    /// The most held since the last [`Framework::reset_device_peak`].
    pub peak_mib: f64,
}

/// A runtime that can load a graph.
pub trait Framework {
    /// Short name used on the command line: `ort`, `torch`, `tf`.
    fn name(&self) -> &'static str;
    /// Version of the runtime library actually loaded.
    fn version(&self) -> Result<String>;
    fn prepare(
        &self,
        graph: &Graph,
        weights: &Weights,
        opts: &PrepareOptions,
    ) -> Result<Box<dyn Prepared>>;

    /// Memory its allocator holds on `device`; `None` on the CPU and where
    /// the framework does not expose it.
    fn device_memory(&self, _device: Device) -> Option<DeviceMemory> {
        None
    }

    /// Starts a new peak for [`Framework::device_memory`].
    fn reset_device_peak(&self, _device: Device) {}

    /// The CUDA stack this runtime maps for `cuda-libs`: the environment's
    /// folder it must come from, its CUDA major version, and the library
    /// names of that stack; the runtime's CUDA library is loaded first.
    fn cuda_stack(&self) -> Result<(std::path::PathBuf, u32, Vec<String>)> {
        let (site, major, names) = cuda_stack::expected(self.name())?;
        cuda_stack::load_for(self.name())?;
        Ok((site, major, names.iter().map(|n| n.to_string()).collect()))
    }

    /// Runs an ONNX file as it is, with no IR in between, on the CPU: what
    /// an imported model is verified against. `batch` is the file's fixed
    /// batch where it has one; the input is then fed in parts of that size.
    fn run_onnx_file(
        &self,
        _bytes: &[u8],
        _input: &ndarray::Array4<f32>,
        _batch: Option<usize>,
    ) -> Result<ndarray::Array2<f32>> {
        anyhow::bail!(
            "{} does not run ONNX files as they are; ort does",
            self.name()
        )
    }

    /// After [`Framework::cuda_stack`]: loads the runtime's own CUDA
    /// provider on top, where it has one apart from its CUDA library, and
    /// says what it loaded.
    fn probe_cuda_provider(&self) -> Result<Option<String>> {
        Ok(None)
    }
}

/// Loads a graph into a framework at `opts.optimize`: the IR-level rewrites
/// of `max` (batch-norm folding) happen here, once for every framework; the
/// framework applies its own part of the level in [`Framework::prepare`].
/// Every caller (run, verify, infer, peak) loads graphs through this.
pub fn prepare(
    fw: &dyn Framework,
    graph: &Graph,
    weights: &Weights,
    opts: &PrepareOptions,
) -> Result<Box<dyn Prepared>> {
    check_cuda_graph(&[opts.optimize], opts.device, &[fw.name().to_string()])?;
    precision::check(fw.name(), opts.device, opts.precision)?;
    if opts.optimize.rewrites() {
        let (g, w) = crate::graph::fold::fold_batchnorm(graph, weights)?;
        return fw.prepare(&g, &w, opts);
    }
    fw.prepare(graph, weights, opts)
}

/// Whether this machine has an NVIDIA GPU driver.
pub fn cuda_present() -> bool {
    std::path::Path::new("/dev/nvidiactl").exists()
        || std::path::Path::new("/proc/driver/nvidia/version").exists()
}

/// The error every framework gives for `--device cuda` without a GPU.
pub fn require_cuda(framework: &str) -> Result<()> {
    if !cuda_present() {
        bail!("--device cuda: no NVIDIA GPU or driver found on this machine ({framework}); use --device cpu");
    }
    Ok(())
}

/// `--optimize cuda-graph` captures CUDA graphs: refused off CUDA, and for a
/// framework with no such mode (TensorFlow), naming what to do instead.
pub fn check_cuda_graph(levels: &[Optimize], device: Device, frameworks: &[String]) -> Result<()> {
    if !levels.contains(&Optimize::CudaGraph) {
        return Ok(());
    }
    if device != Device::Cuda {
        bail!("--optimize cuda-graph captures CUDA graphs: it needs --device cuda (this run is on {device})");
    }
    if let Some(f) = frameworks
        .iter()
        .find(|f| crate::record::runtimes::runtime(f).is_none_or(|r| !r.cuda_graph))
    {
        bail!(
            "--optimize cuda-graph: {f} has no CUDA-graph mode (only {} have); time it in a run of its own, or name the others with --framework",
            crate::record::runtimes::cuda_graph_runtimes().join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_mode_runs_one_inter_op_thread() {
        let o = PrepareOptions::new(Device::Cuda, Mode::Sequential, Optimize::Max, 3, 4, true);
        assert_eq!(
            o,
            PrepareOptions {
                device: Device::Cuda,
                mode: Mode::Sequential,
                intra_threads: 3,
                inter_threads: 1,
                optimize: Optimize::Max,
                precision: Precision::Fp32,
                verbose: true,
                schedule: None,
            }
        );
    }

    #[test]
    fn parallel_mode_runs_the_given_inter_op_threads() {
        let o = PrepareOptions::new(Device::Cpu, Mode::Parallel, Optimize::None, 3, 4, false);
        assert_eq!(
            o,
            PrepareOptions {
                device: Device::Cpu,
                mode: Mode::Parallel,
                intra_threads: 3,
                inter_threads: 4,
                optimize: Optimize::None,
                precision: Precision::Fp32,
                verbose: false,
                schedule: None,
            }
        );
    }

    #[test]
    fn input_must_fit_the_graph() {
        let s = Shape::new(3, 9, 8);
        check_input(s, &Array4::zeros((2, 3, 9, 8))).unwrap();
        for bad in [(1, 3, 8, 8), (1, 1, 9, 8), (1, 3, 9, 9)] {
            let err = check_input(s, &Array4::zeros(bad)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "input is {:?}; this graph was built for [N, 3, 9, 8]",
                    [bad.0, bad.1, bad.2, bad.3]
                )
            );
        }
    }

    #[test]
    fn output_must_be_logits() {
        assert_eq!(check_output("X", &[2, 1000]).unwrap(), (2, 1000));
        for bad in [&[2, 1000, 1, 1][..], &[2000], &[]] {
            let err = check_output("X", bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("X returned logits of shape {bad:?}, expected [N, classes]")
            );
        }
    }
}
