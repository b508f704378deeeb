//! ONNX Runtime's own optimised graph, the form [`super::segments`] cuts
//! its parts from ([`speedbench::graph::onnx_split`]), so that ORT's fusions and
//! its blocked NCHWc layout carry across the boundaries (a split of the IR
//! makes every boundary a plain NCHW value: a reorder out of the blocked
//! layout before it and one back in after it).
//!
//! ORT writes the graph it runs (`optimized_model_filepath`) with its
//! `com.microsoft.nchwc` and `com.microsoft` operators; that form is valid
//! only on the machine that made it, which is this process. Each part
//! becomes a model of its own, loaded with graph optimisations off.

use anyhow::{Context, Result};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use prost::Message;

use speedbench::graph::onnx_proto::ModelProto;

/// ORT's optimised form of the model `bytes` (every optimisation, at
/// `intra` threads), as ORT itself writes it.
pub(super) fn optimized(bytes: &[u8], intra: usize) -> Result<ModelProto> {
    let dir = tempfile::tempdir().context("a folder for ORT's optimised graph")?;
    let path = dir.path().join("optimized.onnx");
    let session = Session::builder(super::env()?)?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_intra_threads(intra)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_optimized_model_path(&path)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .commit_from_memory(bytes)
        .context("ONNX Runtime could not optimise the graph")?;
    drop(session);
    let data = std::fs::read(&path)
        .with_context(|| format!("ORT wrote no optimised graph to {}", path.display()))?;
    ModelProto::decode(data.as_slice()).context("ORT's optimised graph does not decode")
}
