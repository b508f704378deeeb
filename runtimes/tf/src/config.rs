//! The session's `tensorflow.ConfigProto`, as our own prost messages (the
//! crate's generated protobuf module is private). Only the fields speedbench
//! sets are declared; the field numbers are those of TensorFlow's
//! `tensorflow/core/protobuf/config.proto`.

use std::collections::BTreeMap;

use speedbench::frameworks::{Device, Optimize, Precision, PrepareOptions};

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

/// `tensorflow.RewriterConfig`, the fields used.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RewriterConfig {
    /// Turns grappler (every meta-optimiser pass) off.
    #[prost(bool, tag = "19")]
    pub disable_meta_optimizer: bool,
    /// The CUDA auto-mixed-precision rewrite (to float16), a `Toggle`.
    #[prost(int32, tag = "23")]
    pub auto_mixed_precision: i32,
    /// oneDNN's auto-mixed-precision rewrite to bfloat16 on the CPU, a
    /// `Toggle`.
    #[prost(int32, tag = "31")]
    pub auto_mixed_precision_onednn_bfloat16: i32,
}

/// `RewriterConfig.Toggle`'s `ON`.
const ON: i32 = 1;

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

impl ConfigProto {
    /// (intra-op, inter-op) threads as a cell records them.
    pub fn threads(&self) -> (usize, usize) {
        let n = |t: i32| usize::try_from(t).unwrap_or(1);
        (
            n(self.intra_op_parallelism_threads),
            n(self.inter_op_parallelism_threads),
        )
    }
}

/// The configuration for one prepared graph: intra-op and inter-op threads
/// from the options (1 inter-op thread in sequential mode, set by
/// [`PrepareOptions::new`]), GPUs hidden on `--device cpu`; at `--optimize
/// none` grappler and the classic optimiser are off, otherwise TensorFlow's
/// defaults (grappler on) apply. `--precision bf16` (CPU) and `fp16` (CUDA)
/// turn on grappler's auto-mixed-precision rewrite to that type; TF32 is
/// TensorFlow's own default on a GPU that has it (its C API cannot turn it
/// off, so fp32 on such a GPU is TensorFlow's fp32).
pub fn session_config(opts: &PrepareOptions) -> ConfigProto {
    let threads = |n: usize| i32::try_from(n.max(1)).unwrap_or(i32::MAX);
    let (device_count, gpu_options) = match opts.device {
        Device::Cpu => (BTreeMap::from([("GPU".to_string(), 0)]), None),
        Device::Cuda => (BTreeMap::new(), Some(GpuOptions { allow_growth: true })),
    };
    ConfigProto {
        device_count,
        intra_op_parallelism_threads: threads(opts.intra_threads),
        inter_op_parallelism_threads: threads(opts.inter_threads),
        gpu_options,
        allow_soft_placement: false,
        use_per_session_threads: true,
        graph_options: graph_options(opts),
    }
}

/// The graph options of a level and precision; `None`: TensorFlow's
/// defaults.
fn graph_options(opts: &PrepareOptions) -> Option<GraphOptions> {
    let mut rewrite = RewriterConfig::default();
    match (opts.precision, opts.device) {
        (Precision::Bf16, Device::Cpu) => rewrite.auto_mixed_precision_onednn_bfloat16 = ON,
        (Precision::Fp16, Device::Cuda) => rewrite.auto_mixed_precision = ON,
        _ => {}
    }
    if opts.optimize == Optimize::None {
        // the rewrite is a grappler pass: with grappler off a reduced
        // precision would silently run in fp32, so `prepare` refuses the pair
        rewrite.disable_meta_optimizer = true;
        return Some(GraphOptions {
            optimizer_options: Some(OptimizerOptions { opt_level: -1 }),
            rewrite_options: Some(rewrite),
        });
    }
    (rewrite != RewriterConfig::default()).then_some(GraphOptions {
        optimizer_options: None,
        rewrite_options: Some(rewrite),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use speedbench::frameworks::Mode;
    use tensorflow::SessionOptions;

    fn opts(device: Device, mode: Mode) -> PrepareOptions {
        PrepareOptions::new(device, mode, Optimize::Default, 2, 4, false)
    }

    #[test]
    fn optimize_none_turns_grappler_off() {
        let default = session_config(&opts(Device::Cpu, Mode::Sequential));
        assert_eq!(default.graph_options, None);
        let mut o = opts(Device::Cpu, Mode::Sequential);
        o.optimize = Optimize::None;
        let none = session_config(&o);
        let graph = none.graph_options.clone().unwrap().encode_to_vec();
        // What TensorFlow's own config_pb2 writes for opt_level L0 and
        // disable_meta_optimizer (GraphOptions, field 10 of ConfigProto).
        assert_eq!(
            [vec![0x52, graph.len() as u8], graph].concat(),
            [
                0x52, 0x12, 0x1a, 0x0b, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0x01, 0x52, 0x03, 0x98, 0x01, 0x01
            ]
        );
        SessionOptions::new()
            .set_config(&none.encode_to_vec())
            .unwrap();
    }

    #[test]
    fn config_proto_round_trips() {
        for (mode, inter) in [(Mode::Sequential, 1), (Mode::Parallel, 4)] {
            let bytes = session_config(&opts(Device::Cpu, mode)).encode_to_vec();
            let back = ConfigProto::decode(bytes.as_slice()).unwrap();
            assert_eq!(back.inter_op_parallelism_threads, inter);
            assert_eq!(back.intra_op_parallelism_threads, 2);
            assert_eq!(back.device_count.get("GPU"), Some(&0));
            assert!(back.use_per_session_threads);
            assert!(!back.allow_soft_placement);
            assert_eq!(back.gpu_options, None);
            // Field 5 (inter-op threads) as a varint: key byte 5 << 3 = 0x28.
            assert!(bytes.windows(2).any(|w| w == [0x28, inter as u8]));
            // TensorFlow parses it.
            SessionOptions::new().set_config(&bytes).unwrap();
        }
        let gpu = session_config(&opts(Device::Cuda, Mode::Parallel));
        let back = ConfigProto::decode(gpu.encode_to_vec().as_slice()).unwrap();
        assert!(back.device_count.is_empty());
        assert_eq!(back.gpu_options.map(|g| g.allow_growth), Some(true));
    }

    #[test]
    fn threads_come_from_the_options() {
        let o = |mode| PrepareOptions::new(Device::Cpu, mode, Optimize::Default, 3, 5, false);
        let c = session_config(&o(Mode::Parallel));
        assert_eq!(c.intra_op_parallelism_threads, 3);
        assert_eq!(c.inter_op_parallelism_threads, 5);
        assert_eq!(c.threads(), (3, 5));
        assert_eq!(session_config(&o(Mode::Sequential)).threads(), (3, 1));
    }
}
