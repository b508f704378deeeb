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
//! - parallel: independent branches run concurrently, on at most
//!   `min(inter_threads, the graph's widest antichain)` workers or streams.
//!   On CPU a [`Pool`] of worker threads takes ready nodes (dependency
//!   counting); a worker that finishes a node continues with a successor that
//!   became ready and hands the others to idle workers. Each worker runs its
//!   operations with `max(1, intra_threads / workers)` intra-op threads, so
//!   that workers times intra-op threads stay within the cores (the
//!   sequential schedule keeps all `intra_threads`). On CUDA a single host
//!   thread queues each node on the stream of its branch ([`lanes`]), streams
//!   from libtorch's pool joined with CUDA events (the C++ shim `shim.cpp`).
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
//! graph and holds the kernels, [`pool`] and [`streams`] are the parallel
//! schedules, [`session`] the prepared model, [`library`] the libtorch in
//! use, [`ffi`] the shim's declarations.

pub mod config;
mod ffi;
mod library;
mod plan;
mod pool;
mod session;
mod streams;
#[cfg(test)]
mod tests;
mod trace;

use anyhow::Result;

use super::{Device, DeviceMemory, Framework, PrepareOptions, Prepared};
use crate::graph::weights::Weights;
use crate::graph::Graph;
use library::{check_cuda, cuda_memory, load_cuda, loaded_version};
use session::TorchModel;

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
}
