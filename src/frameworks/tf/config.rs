//! The session's `tensorflow.ConfigProto`, as our own prost messages (the
//! crate's generated protobuf module is private). Only the fields speedbench
//! sets are declared; the field numbers are those of TensorFlow's
//! `tensorflow/core/protobuf/config.proto`.

use std::collections::BTreeMap;

use crate::frameworks::{Device, Mode, Optimize, PrepareOptions};

/// `tensorflow.GPUOptions`, the one field used.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GpuOptions {
    /// Allocate GPU memory as needed instead of nearly all of it at start.
    #[prost(bool, tag = "4")]
    pub allow_growth: bool,
}

/// `tensorflow.OptimizerOptions`: the classic (pre-grappler) graph optimiser.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OptimizerOptions {
    /// `L1 = 0` (TensorFlow's default: common subexpressions and constant
    /// folding), `L0 = -1` (off).
    #[prost(int32, tag = "3")]
    pub opt_level: i32,
}

/// `tensorflow.RewriterConfig`, the one field used.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RewriterConfig {
    /// Turns grappler (every meta-optimiser pass) off.
    #[prost(bool, tag = "19")]
    pub disable_meta_optimizer: bool,
}

/// `tensorflow.GraphOptions`, the fields used.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphOptions {
    #[prost(message, optional, tag = "3")]
    pub optimizer_options: Option<OptimizerOptions>,
    #[prost(message, optional, tag = "10")]
    pub rewrite_options: Option<RewriterConfig>,
}

/// `tensorflow.ConfigProto`, the fields used.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConfigProto {
    /// Maximum number of devices of each type (`"GPU": 0` hides GPUs).
    #[prost(btree_map = "string, int32", tag = "1")]
    pub device_count: BTreeMap<String, i32>,
    /// Threads inside one operation.
    #[prost(int32, tag = "2")]
    pub intra_op_parallelism_threads: i32,
    /// Threads running independent operations.
    #[prost(int32, tag = "5")]
    pub inter_op_parallelism_threads: i32,
    #[prost(message, optional, tag = "6")]
    pub gpu_options: Option<GpuOptions>,
    /// Off: an operation that cannot run where it is placed is an error, not
    /// a silent move to the CPU.
    #[prost(bool, tag = "7")]
    pub allow_soft_placement: bool,
    /// Each session gets its own inter-op pool. Without it TensorFlow sizes
    /// one process-wide pool from the first session, and the second mode
    /// loaded in the same worker would silently share that pool.
    #[prost(bool, tag = "9")]
    pub use_per_session_threads: bool,
    /// Absent: TensorFlow's defaults (grappler on, optimiser L1).
    #[prost(message, optional, tag = "10")]
    pub graph_options: Option<GraphOptions>,
}

/// The configuration for one prepared graph: inter-op threads 1 in
/// sequential mode and `opts.inter_threads` in parallel mode (the caller
/// already sets 1 for sequential; it is forced here too), intra-op threads
/// from the options, GPUs hidden on `--device cpu`; at `--optimize none`
/// grappler and the classic optimiser are off, otherwise TensorFlow's
/// defaults (grappler on) apply.
pub fn session_config(opts: &PrepareOptions) -> ConfigProto {
    let threads = |n: usize| i32::try_from(n.max(1)).unwrap_or(i32::MAX);
    let inter = match opts.mode {
        Mode::Sequential => 1,
        Mode::Parallel => threads(opts.inter_threads),
    };
    let (device_count, gpu_options) = match opts.device {
        Device::Cpu => (BTreeMap::from([("GPU".to_string(), 0)]), None),
        Device::Cuda => (BTreeMap::new(), Some(GpuOptions { allow_growth: true })),
    };
    ConfigProto {
        device_count,
        intra_op_parallelism_threads: threads(opts.intra_threads),
        inter_op_parallelism_threads: inter,
        gpu_options,
        allow_soft_placement: false,
        use_per_session_threads: true,
        graph_options: (opts.optimize == Optimize::None).then_some(GraphOptions {
            optimizer_options: Some(OptimizerOptions { opt_level: -1 }),
            rewrite_options: Some(RewriterConfig {
                disable_meta_optimizer: true,
            }),
        }),
    }
}
