//! libtorch through the `tch` crate, executed eagerly by speedbench's own
//! graph executor (no TorchScript, no autograd: gradients are off in every
//! thread that runs an operation and the weights never require them).
//!
//! The graph is lowered once per cell into a [`Plan`]: one libtorch call per
//! IR node, with the node's weights already on the device. Two schedules run
//! that plan:
//!
//! - sequential: one node after another in topological order, on the calling
//!   thread (on CUDA: on the current stream), which is what eager PyTorch does;
//! - parallel: on CUDA, a single host thread queues each node on the stream
//!   of its branch ([`lanes`]), at most `min(inter_threads, the graph's
//!   widest antichain)` streams from libtorch's pool joined with CUDA events
//!   (the C++ shim `shim.cpp`). On the CPU, speedbench's cost-model schedule
//!   ([`staged`], planned by [`speedbench::schedule`]): the first pass times every
//!   operation at one intra-op thread and at all of them, the graph splits at
//!   its cut nodes into regions, and a region's independent branches run on
//!   concurrent lanes (each with `max(1, intra_threads / lanes)` intra-op
//!   threads; one-thread lanes on libtorch's own OpenMP team, [`team`]) only
//!   where the costs predict a gain; everything else runs one
//!   operation after another with every intra-op thread. Interleaved passes
//!   of each (as many as fit in 1.5 s, 5 to 30) then keep the plan only if
//!   it beat sequential.
//!
//! Both schedules make the same libtorch calls on the same values, so their
//! outputs are bit-identical whenever each operation gets the same number of
//! intra-op threads (always on CUDA; on CPU with `intra_threads` 1). With more
//! threads in the sequential schedule they differ in the last bits only:
//! oneDNN's 1x1 convolution blocks its reduction by the thread count (PyTorch
//! itself gives different bits with 1 and 2 threads).
//!
//! `--device cuda` loads `libtorch_cuda.so` from the folder of the libtorch in
//! use (the linker drops it as unneeded otherwise, and CUDA stays invisible).
//! Convolutions and matrix products then run in plain float32 (TF32 off).
//!
//! Files: [`config`] maps the options to a schedule, [`plan`] lowers the
//! graph and holds the kernels ([`fuse`]: which of them `max` fuses on the
//! CPU), [`staged`] and [`streams`] are the parallel
//! schedules ([`team`] runs a stage on libtorch's OpenMP threads), [`trace`]
//! records a traced pass, [`session`] the prepared model, [`library`] the
//! libtorch in use, [`ffi`] the shim's declarations.

pub mod config;
mod ffi;
mod fuse;
mod graphs;
mod library;
mod plan;
mod session;
mod staged;
mod streams;
mod team;
#[cfg(test)]
mod tests;
mod trace;

use anyhow::Result;

use library::{check_cuda, cuda_memory, load_cuda, loaded_version};
use session::TorchModel;
use speedbench::frameworks::{Backend, Device, DeviceMemory, Framework, PrepareOptions, Prepared};
use speedbench::graph::weights::Weights;
use speedbench::graph::Graph;

pub struct Torch;

impl Framework for Torch {
    fn name(&self) -> &'static str {
        "torch"
    }

    fn version(&self) -> Result<String> {
        // Only a `--device cuda` run needs CUDA; see `load_cuda`.
        let _ = load_cuda();
        loaded_version()
    }

    fn device_memory(&self, device: Device) -> Option<DeviceMemory> {
        (device == Device::Cuda && check_cuda().is_ok())
            .then(cuda_memory)
            .and_then(Result::ok)
    }

    fn reset_device_peak(&self, device: Device) {
        if device == Device::Cuda && check_cuda().is_ok() {
            // SAFETY: plain value in. A failure leaves the old peak, which
            // only overstates; nothing to report.
            let _ = unsafe { ffi::sb_cuda_reset_peak(0) };
        }
    }

    fn prepare(
        &self,
        graph: &Graph,
        weights: &Weights,
        opts: &PrepareOptions,
    ) -> Result<Box<dyn Prepared>> {
        Ok(Box::new(TorchModel::new(graph, weights, opts)?))
    }

    /// Loads `libtorch_cuda.so` from the libtorch in use, with or without a
    /// GPU (its CUDA libraries resolve through its own RUNPATH); the stack
    /// is what its environment's nvidia/ folders hold (a TensorFlow GPU
    /// build maps its own CUDA 12 runtime too).
    fn cuda_stack(&self) -> Result<(std::path::PathBuf, u32, Vec<String>)> {
        let site = library::load_cuda_library()?;
        let names = speedbench::frameworks::cuda_stack::nvidia_dirs(&site)
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        Ok((site, 13, names))
    }
}

fn make(_: &str) -> Box<dyn Framework> {
    Box::new(Torch)
}

/// libtorch, as `speedbench-torch` registers it.
pub static BACKEND: Backend = Backend {
    names: &["torch"],
    make,
};
