//! The model zoo: specs (built in, or from a folder) built into the graph IR.

mod builder;
pub mod catalog;
mod resnet;
mod scalenet;
pub mod spec;

use anyhow::{Context, Result};

use crate::graph::weights::Weights;
use crate::graph::{Graph, Shape};
pub use catalog::Catalog;
pub use spec::{ModelSpec, SpecError};

/// Builds the graph of `spec` for square inputs of `size` pixels.
pub fn build(spec: &ModelSpec, size: usize) -> Result<Graph> {
    Ok(build_with_weights(spec, size)?.0)
}

/// The graph of `spec` at `size`, and for an imported model the weights
/// its file holds.
fn build_with_weights(spec: &ModelSpec, size: usize) -> Result<(Graph, Option<Weights>)> {
    if size == 0 {
        anyhow::bail!("--size must be at least 1 pixel");
    }
    let input = Shape::new(3, size, size);
    let built = match &spec.family {
        spec::Family::Resnet(r) => {
            resnet::build(&spec.name, r, spec.num_classes, input).map(|g| (g, None))
        }
        spec::Family::Scalenet(s) => {
            scalenet::build(&spec.name, s, &spec.structure, spec.num_classes, input)
                .map(|g| (g, None))
        }
        spec::Family::Onnx(o) => {
            if o.size != size {
                anyhow::bail!(
                    "model '{}' was imported for {}x{} inputs, not {size}x{size} (run it with --size {})",
                    spec.name,
                    o.size,
                    o.size,
                    o.size
                );
            }
            imported(spec).map(|i| (i.graph, Some(i.weights)))
        }
    };
    built.with_context(|| format!("model '{}' at {size}x{size}", spec.name))
}

/// The input size `spec` runs at where a command's `size` applies to the
/// built-in models: an imported model's own (its file's shape is fixed).
pub fn size_for(spec: &ModelSpec, size: usize) -> usize {
    match &spec.family {
        spec::Family::Onnx(o) => o.size,
        _ => size,
    }
}

/// An imported model read from its ONNX file.
pub fn imported(spec: &ModelSpec) -> Result<crate::graph::import::Imported> {
    let path = spec
        .onnx_file()
        .with_context(|| format!("model '{}' is not an imported one", spec.name))?;
    let bytes = std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    crate::graph::import::import(&bytes, &spec.name).with_context(|| format!("{}", path.display()))
}

/// A model ready for a framework: its graph and its weights.
pub struct Loaded {
    pub spec: ModelSpec,
    pub graph: Graph,
    pub weights: Weights,
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
    let (graph, own) = build_with_weights(&spec, size)?;
    // an imported model's weights are its file's, unless others are given
    let weights = match (weights, own) {
        (Some(p), _) => Weights::load(p, &graph)?,
        (None, Some(w)) => w,
        (None, None) => Weights::seeded(&graph, seed),
    };
    Ok(Loaded {
        spec,
        graph,
        weights,
    })
}
