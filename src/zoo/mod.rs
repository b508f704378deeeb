//! The model zoo: specs (built in, or from a folder) built into the graph IR.

mod builder;
pub mod catalog;
mod resnet;
mod scalenet;
pub mod spec;

use anyhow::{Context, Result};

use crate::graph::{Graph, Shape};
pub use catalog::Catalog;
pub use spec::{ModelSpec, SpecError};

/// Builds the graph of `spec` for square inputs of `size` pixels.
pub fn build(spec: &ModelSpec, size: usize) -> Result<Graph> {
    if size == 0 {
        anyhow::bail!("--size must be at least 1 pixel");
    }
    let input = Shape::new(3, size, size);
    let graph = match &spec.family {
        spec::Family::Resnet(r) => resnet::build(&spec.name, r, spec.num_classes, input),
        spec::Family::Scalenet(s) => {
            scalenet::build(&spec.name, s, &spec.structure, spec.num_classes, input)
        }
    };
    graph.with_context(|| format!("model '{}' at {size}x{size}", spec.name))
}

/// A model ready for a framework: its graph and its weights.
pub struct Loaded {
    pub spec: ModelSpec,
    pub graph: Graph,
    pub weights: crate::graph::weights::Weights,
}

/// Finds the model `name` in `catalog`, builds it for `size`, and loads
/// `weights` (safetensors) or makes seeded ones.
pub fn load(
    catalog: &Catalog,
    name: &str,
    size: usize,
    weights: Option<&std::path::Path>,
    seed: u64,
) -> Result<Loaded> {
    let spec = catalog.find(name)?.clone();
    let graph = build(&spec, size)?;
    let weights = match weights {
        Some(p) => crate::graph::weights::Weights::load(p, &graph)?,
        None => crate::graph::weights::Weights::seeded(&graph, seed),
    };
    Ok(Loaded {
        spec,
        graph,
        weights,
    })
}
