//! The runtimes behind one trait: each lowers the same IR with the same
//! weights and runs a batch of NCHW float32 inputs to logits.

#[cfg(feature = "ort")]
pub mod ort;
#[cfg(feature = "tf")]
pub mod tf;
#[cfg(feature = "torch")]
pub mod torch;

use anyhow::{bail, Result};
use ndarray::{Array2, Array4};
use serde::{Deserialize, Serialize};

pub use crate::record::{Device, Mode, Optimize, FRAMEWORKS};

use crate::graph::Graph;
use crate::weights::Weights;

/// Everything a framework needs to set a graph up for timing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PrepareOptions {
    pub device: Device,
    pub mode: Mode,
    /// Threads inside one operation.
    pub intra_threads: usize,
    /// Threads (or streams) running independent operations; 1 in sequential mode.
    pub inter_threads: usize,
    pub optimize: Optimize,
    /// Show the framework's own log output.
    pub verbose: bool,
}

/// A graph loaded into a framework, ready to run.
pub trait Prepared {
    /// One forward pass: `[N, C, H, W]` in, `[N, classes]` logits out, host to
    /// host (the data is on the host again when this returns).
    fn run(&mut self, input: &Array4<f32>) -> Result<Array2<f32>>;

    /// The (intra-op threads, inter-op threads or streams) actually used,
    /// where the framework chose other than it was asked.
    fn threads_used(&self) -> Option<(usize, usize)> {
        None
    }

    /// Device compute time of one forward pass in ms, input and output kept
    /// on the device, timed between device synchronisations; `None` where
    /// the framework or device does not separate it from `run`.
    fn compute_ms(&mut self, _input: &Array4<f32>) -> Result<Option<f64>> {
        Ok(None)
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
    if opts.optimize == Optimize::Max {
        let (g, w) = crate::graph::fold::fold_batchnorm(graph, weights)?;
        return fw.prepare(&g, &w, opts);
    }
    fw.prepare(graph, weights, opts)
}

/// Names of the frameworks this binary was built with.
pub fn built_in() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "ort") {
        v.push("ort");
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
    match name {
        #[cfg(feature = "ort")]
        "ort" => Ok(Box::new(ort::Ort)),
        #[cfg(feature = "torch")]
        "torch" => Ok(Box::new(torch::Torch)),
        #[cfg(feature = "tf")]
        "tf" => Ok(Box::new(tf::Tf)),
        n if FRAMEWORKS.contains(&n) => bail!(
            "framework '{n}' is not built into this binary (built: {}); rebuild with --features {n}",
            built_in().join(", ")
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
