//! The runtimes behind one trait: each lowers the same IR with the same
//! weights and runs a batch of NCHW float32 inputs to logits.

pub mod cuda_stack;
#[cfg(feature = "ort")]
pub mod ort;
pub mod precision;
#[cfg(feature = "tf")]
pub mod tf;
pub mod tf_cpu;
#[cfg(feature = "torch")]
pub mod torch;

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

/// Names of the frameworks this binary was built with.
pub fn built_in() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "ort") {
        v.extend(["ort", "ort-own"]);
    }
    if cfg!(feature = "torch") {
        v.push("torch");
    }
    if cfg!(feature = "tf") {
        v.push("tf");
    }
    v
}

/// The framework called `name`.
pub fn by_name(name: &str) -> Result<Box<dyn Framework>> {
    match crate::record::base_framework(name) {
        #[cfg(feature = "ort")]
        "ort" => Ok(Box::new(ort::Ort { own: false })),
        #[cfg(feature = "ort")]
        "ort-own" => Ok(Box::new(ort::Ort { own: true })),
        #[cfg(feature = "torch")]
        "torch" => Ok(Box::new(torch::Torch)),
        #[cfg(feature = "tf")]
        "tf" => Ok(Box::new(tf::Tf)),
        n if FRAMEWORKS.contains(&n) => bail!(
            "framework '{n}' is not built into this binary (built: {}); rebuild with --features {}",
            built_in().join(", "),
            n.split('-').next().unwrap_or(n)
        ),
        n => bail!(
            "unknown framework '{n}' (expected one of: {})",
            FRAMEWORKS.join(", ")
        ),
    }
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

    /// `g` run by every framework built in, in sequential mode at every
    /// optimisation level: (what ran, its flattened output).
    fn everywhere(
        g: &crate::graph::Graph,
        w: &Weights,
        x: &Array4<f32>,
    ) -> Vec<(String, Vec<f32>)> {
        let mut out = Vec::new();
        for name in crate::record::FRAMEWORKS {
            let Ok(fw) = by_name(name) else { continue };
            for level in [Optimize::None, Optimize::Default, Optimize::Max] {
                let opts = PrepareOptions::new(Device::Cpu, Mode::Sequential, level, 1, 1, false);
                let mut p = prepare(fw.as_ref(), g, w, &opts).unwrap();
                let y = p.run(x).unwrap();
                out.push((format!("{name} at {level}"), y.iter().copied().collect()));
            }
        }
        assert!(!out.is_empty(), "no framework built in");
        out
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() < 1e-4,
                "{what}: [{i}] {g} against {w}\n{got:?}"
            );
        }
    }

    /// 1, 2, 3, ... over a `[1, 1, side, side]` map.
    fn ascending(side: usize) -> Array4<f32> {
        Array4::from_shape_fn((1, 1, side, side), |(_, _, i, j)| (i * side + j + 1) as f32)
    }

    /// A stride-2 window over an even map pads one row and column on each
    /// side, as PyTorch and the authors' models do, never TensorFlow's
    /// `SAME` (none before, one after): a 3x3/2 convolution of ones and
    /// a 3x3/2 max-pool, both with padding 1, over 1..16 on 4x4.
    #[test]
    // they need a framework: the mutants build (no default features) has none
    #[cfg_attr(not(any(feature = "ort", feature = "torch", feature = "tf")), ignore)]
    fn every_framework_pads_stride_two_windows_on_both_sides() {
        use crate::graph::{Graph, Op, ParamRef};
        let mut g = Graph::new("stride2", Shape::new(1, 4, 4));
        let conv = Op::Conv {
            out: 1,
            kernel: 3,
            stride: 2,
            pad: 1,
            groups: 1,
            bias: false,
            params: ParamRef::whole("c"),
        };
        let c = g.add("c", conv, &[0]).unwrap();
        let pool = Op::MaxPool {
            kernel: 3,
            stride: 2,
            pad: 1,
        };
        let m = g.add("m", pool, &[0]).unwrap();
        let both = g.add("both", Op::Concat, &[c, m]).unwrap();
        g.add("flat", Op::Flatten, &[both]).unwrap();
        let mut w = Weights::seeded(&g, 0);
        w.tensors.get_mut("c.weight").unwrap().data.fill(1.0);
        // output (r, c) covers rows and columns 2r-1..=2r+1 and 2c-1..=2c+1
        // of the map: their sums, then their maxima
        let want = [14.0, 30.0, 57.0, 99.0, 6.0, 8.0, 14.0, 16.0];
        for (what, got) in everywhere(&g, &w, &ascending(4)) {
            assert_close(&got, &want, &what);
        }
    }

    /// ScaleNet's upsampling: nearest (an integer factor: the rule picks
    /// it only where the map divides the size) takes source
    /// `floor(dst * in / out)`; bilinear has half-pixel centres
    /// (align_corners false), sources below 0 clamped to the edge. 3x3 up
    /// to 6x6 nearest and to 7x7 bilinear, against the formulas here.
    #[test]
    // they need a framework: the mutants build (no default features) has none
    #[cfg_attr(not(any(feature = "ort", feature = "torch", feature = "tf")), ignore)]
    fn every_framework_resizes_as_the_scalenet_authors() {
        use crate::graph::{Graph, Op, ResizeMode};
        let from = 3usize;
        let x = ascending(from);
        let at = |i: usize, j: usize| x[[0, 0, i, j]];
        let scale = |to: usize| from as f64 / to as f64;
        let linear = |d: usize, to: usize| {
            let s = ((d as f64 + 0.5) * scale(to) - 0.5).max(0.0);
            let lo = (s.floor() as usize).min(from - 1);
            (lo, (lo + 1).min(from - 1), (s - lo as f64) as f32)
        };
        let (mut nearest, mut bilinear) = (Vec::new(), Vec::new());
        for i in 0..6 {
            for j in 0..6 {
                let src = |d: usize| (d as f64 * scale(6)) as usize;
                nearest.push(at(src(i), src(j)));
            }
        }
        for i in 0..7 {
            for j in 0..7 {
                let ((i0, i1, a), (j0, j1, b)) = (linear(i, 7), linear(j, 7));
                let top = at(i0, j0) * (1.0 - b) + at(i0, j1) * b;
                let bottom = at(i1, j0) * (1.0 - b) + at(i1, j1) * b;
                bilinear.push(top * (1.0 - a) + bottom * a);
            }
        }
        assert_eq!(&nearest[..6], [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        assert_eq!(bilinear[0], 1.0);
        for (mode, to, want) in [
            (ResizeMode::Nearest, 6, nearest),
            (ResizeMode::Bilinear, 7, bilinear),
        ] {
            let mut g = Graph::new("resize", Shape::new(1, from, from));
            let up = g
                .add("up", Op::Resize { h: to, w: to, mode }, &[0])
                .unwrap();
            g.add("flat", Op::Flatten, &[up]).unwrap();
            let w = Weights::seeded(&g, 0);
            for (what, got) in everywhere(&g, &w, &x) {
                assert_close(&got, &want, &format!("{mode:?} in {what}"));
            }
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
