//! The words every layer shares: where a graph runs, how its branches are
//! scheduled, how far a framework may rewrite it, and the frameworks' names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// All framework names speedbench knows, built in or not, in report order.
pub const FRAMEWORKS: [&str; 4] = ["ort", "ort-own", "torch", "tf"];

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
/// | max | default + batch norms folded into convolutions in the IR | default + folded batch norms + channels-last layout | default + folded batch norms |
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

/// ` --optimize LEVEL` where the level is not the default, else nothing.
pub fn level_suffix(level: Optimize) -> String {
    if level == Optimize::Default {
        String::new()
    } else {
        format!(" --optimize {level}")
    }
}
