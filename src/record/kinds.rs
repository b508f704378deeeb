//! The words every layer shares: where a graph runs, how its branches are
//! scheduled, how far a framework may rewrite it, and the frameworks' names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// All framework names speedbench knows, built in or not, in report order
/// (the names of [`super::runtimes::RUNTIMES`]).
pub const FRAMEWORKS: [&str; 4] = {
    let r = super::runtimes::RUNTIMES;
    [r[0].name, r[1].name, r[2].name, r[3].name]
};

/// The framework a name stands for: `ort#2` (the second timing of `ort` in
/// an A/A run) is `ort`.
pub fn base_framework(name: &str) -> &str {
    name.split_once('#').map_or(name, |(base, _)| base)
}

/// Where a graph runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    Cuda,
}

/// How independent branches are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One operation after another.
    Sequential,
    /// Independent branches run concurrently.
    Parallel,
}

macro_rules! text_enum {
    ($t:ty, $($v:ident = $s:literal),+) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(Self::$v => $s),+ })
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s { $($s => Ok(Self::$v),)+
                    _ => Err(format!("'{s}' is not one of: {}", [$($s),+].join(", "))) }
            }
        }
    };
}
impl Mode {
    /// The modes `sequential`, `parallel` or `both` name.
    pub fn set_named(name: &str) -> Option<Vec<Mode>> {
        match name {
            "sequential" => Some(vec![Mode::Sequential]),
            "parallel" => Some(vec![Mode::Parallel]),
            "both" => Some(vec![Mode::Sequential, Mode::Parallel]),
            _ => None,
        }
    }
}

text_enum!(Device, Cpu = "cpu", Cuda = "cuda");
text_enum!(Mode, Sequential = "sequential", Parallel = "parallel");
text_enum!(
    Precision,
    Fp32 = "fp32",
    Bf16 = "bf16",
    Fp16 = "fp16",
    Tf32 = "tf32"
);
text_enum!(
    Optimize,
    None = "none",
    Default = "default",
    Max = "max",
    CudaGraph = "cuda-graph"
);

/// How much each framework may rewrite the graph before running it
/// (`--optimize`). Recorded in every result; reports and comparisons keep
/// cells of different levels apart.
///
/// | level | ort | torch | tf |
/// |---|---|---|---|
/// | none | graph optimisations disabled | eager, `no_grad` only | grappler and the classic graph optimiser off |
/// | default | optimisation level all | inference mode | grappler on (TensorFlow's default) |
/// | max | default + batch norms folded into convolutions in the IR | default + folded batch norms + channels-last layout | default + folded batch norms + oneDNN on the CPU (`frameworks::tf_cpu`) |
/// | cuda-graph (CUDA only) | max + the CUDA execution provider's CUDA graph | max + the pass captured as one CUDA graph (the multi-stream pass in parallel) and replayed | none: refused |
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum Optimize {
    /// Every framework runs the graph as written.
    None,
    /// Each framework at its own standard best for inference.
    #[default]
    Default,
    /// Default plus the rewrites speedbench does itself.
    Max,
    /// Max, and each pass replayed as one captured CUDA graph.
    #[serde(rename = "cuda-graph")]
    CudaGraph,
}

impl Optimize {
    /// Whether the level includes speedbench's own rewrites (`max` and
    /// what builds on it).
    pub fn rewrites(self) -> bool {
        self >= Optimize::Max
    }
}

/// The number format a cell computes in (`--precision`). Recorded in every
/// result; reports and comparisons keep cells of different precisions
/// apart, as they do levels. What each framework does with it, and where it
/// cannot, is [`crate::frameworks::precision_support`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// IEEE single precision throughout (TF32 off on a GPU).
    #[default]
    Fp32,
    /// bfloat16 weights and activations (libtorch), or the framework's
    /// bfloat16 mixed-precision rewrite (TensorFlow).
    Bf16,
    /// IEEE half precision, likewise.
    Fp16,
    /// float32 storage, products on TF32 tensor cores (CUDA only).
    Tf32,
}

impl Precision {
    /// Whether this is the default precision (files from before the option
    /// were all fp32).
    pub fn is_fp32(&self) -> bool {
        *self == Precision::Fp32
    }

    /// How far a cell's logits may be from the fp32 reference: the
    /// relative L2 error ||y - ref|| / ||ref|| `verify` allows. fp32 and
    /// TF32 are held to [`crate::verify`]'s element tolerance instead; TF32
    /// keeps a 10-bit mantissa in its products, as fp16 does.
    /// The most relative L2 error (against fp32 logits) that fp32 itself
    /// shows between runtimes and kernel paths (1e-7 to 1e-6 here): a
    /// reduced-precision cell whose error is this low ran fp32.
    pub const FP32_ERROR: f64 = 1e-5;

    pub fn relative_l2_tolerance(self) -> Option<f64> {
        match self {
            Precision::Fp32 => None,
            Precision::Bf16 => Some(2e-2),
            Precision::Fp16 | Precision::Tf32 => Some(5e-3),
        }
    }
}

/// A cell's setting beyond its mode: `--optimize` level, `--precision` and
/// batch. Cells of different settings are never compared with each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct Setting {
    pub optimize: Optimize,
    pub precision: Precision,
    pub batch: usize,
}

/// How a setting differs from the defaults, as flags: ` --optimize max
/// --precision bf16`; nothing at `default` and fp32 (the batch is named
/// by whoever prints it).
pub fn setting_suffix(optimize: Optimize, precision: Precision) -> String {
    let mut s = level_suffix(optimize);
    if !precision.is_fp32() {
        s.push_str(&format!(" --precision {precision}"));
    }
    s
}

/// ` --optimize LEVEL` where the level is not the default, else nothing.
pub fn level_suffix(level: Optimize) -> String {
    if level == Optimize::Default {
        String::new()
    } else {
        format!(" --optimize {level}")
    }
}
