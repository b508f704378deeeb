//! The model zoo: specs from `models/` built into the graph IR.

mod builder;
mod resnet;
mod scalenet;
pub mod spec;

use anyhow::{Context, Result};

use crate::graph::{Graph, Shape};
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
