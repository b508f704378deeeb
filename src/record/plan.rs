//! The stored run plan: everything a run was asked to do, validated, as
//! every results file keeps it (no command-line type in it).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Device, Mode, Optimize, ShardPlan};

/// Plans saved before `--optimize` existed ran at `default`.
fn default_levels() -> Vec<Optimize> {
    vec![Optimize::Default]
}

/// A level or a list of levels (`"max"` or `["default", "max"]`).
pub fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Optimize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Optimize),
        Many(Vec<Optimize>),
    }
    match OneOrMany::deserialize(d) {
        Ok(OneOrMany::One(o)) => Ok(vec![o]),
        Ok(OneOrMany::Many(v)) => Ok(v),
        Err(_) => Err(serde::de::Error::custom(
            "expected one of \"none\", \"default\", \"max\", or a list of them",
        )),
    }
}

/// Everything `run` needs, validated.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunPlan {
    pub profile: String,
    pub frameworks: Vec<String>,
    pub models: Vec<String>,
    pub device: Device,
    pub modes: Vec<Mode>,
    /// `--optimize` levels, each timed beside the others in every worker.
    /// Plans saved before `--optimize` existed ran at `default`.
    #[serde(default = "default_levels", deserialize_with = "one_or_many")]
    pub optimize: Vec<Optimize>,
    pub batch: usize,
    pub size: usize,
    pub warmup: usize,
    pub iters: usize,
    pub intra_threads: usize,
    pub inter_threads: usize,
    pub seed: u64,
    pub timeout_s: u64,
    pub out: PathBuf,
    pub weights: Option<PathBuf>,
    /// Frameworks of the default matrix left out because not built in.
    pub skipped: Vec<String>,
    /// Models that `all` stood for but that are not defined at this size.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_models: Vec<SkippedModel>,
    /// `--shard K/N`: the slice of the matrix this run measures; absent for
    /// a whole run (and in files from before shards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardPlan>,
}

/// A model left out of a run, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SkippedModel {
    pub model: String,
    pub reason: String,
}

impl RunPlan {
    /// Sessions each worker loads and times side by side: one per mode and
    /// `--optimize` level.
    pub fn sessions(&self) -> usize {
        self.modes.len() * self.optimize.len()
    }

    /// Whether this run measures (`model`, `framework`): always, unless it
    /// is a shard that left the pair to another.
    pub fn runs(&self, model: &str, framework: &str) -> bool {
        self.shard.as_ref().is_none_or(|s| s.runs(model, framework))
    }
}
