//! Shards: one slice of a run's matrix, as a plan and its cells store it.

use serde::{Deserialize, Serialize};

/// Shard `index` of `count`, 1-based (`--shard 2/3` is index 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// 1-based: 1 ..= count.
    pub index: usize,
    /// How many shards the run was cut into.
    pub count: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The slice of the matrix a sharded run measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardPlan {
    pub shard: Shard,
    /// Where the shard came from: `--shard`, a Slurm array task, a
    /// Kubernetes Indexed Job.
    pub source: String,
    /// The (model, framework) workers of this shard, in run order; every
    /// shard of the run computed the same partition of the whole matrix.
    pub workers: Vec<(String, String)>,
}

impl ShardPlan {
    /// Whether this shard runs the worker of (`model`, `framework`).
    pub fn runs(&self, model: &str, framework: &str) -> bool {
        self.workers
            .iter()
            .any(|(m, f)| m == model && f == framework)
    }
}
