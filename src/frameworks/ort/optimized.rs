//! ONNX Runtime's own optimised graph, split into a schedule's parts, so
//! that the segments of [`super::segments`] keep ORT's fusions and its
//! blocked NCHWc layout across their boundaries (a split of the IR makes
//! every boundary a plain NCHW value: a reorder out of the blocked layout
//! before it and one back in after it).
//!
//! ORT writes the graph it runs (`optimized_model_filepath`) with its
//! `com.microsoft.nchwc` and `com.microsoft` operators; that form is valid
//! only on the machine that made it, which is this process. Each part
//! becomes a model of its own, loaded with graph optimisations off.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Context, Result};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use prost::Message;

use crate::graph::onnx_proto::{
    GraphProto, ModelProto, NodeProto, TypeProto, TypeProtoTensor, ValueInfoProto, FLOAT,
};
use crate::graph::{Graph, NodeId};

/// One part of the optimised graph as an ONNX model, and the names of the
/// values it reads and writes.
#[derive(Debug)]
pub(super) struct PartModel {
    pub bytes: Vec<u8>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

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

/// Splits `model` (ORT's optimised form of `graph`) into parts.
/// `part_of[n]` is the part of IR node `n` (`None` for the input), and
/// `stage_of[p]` the stage part `p` runs in: stages run in order, the parts
/// of one stage concurrently. An ORT node goes to the part of the IR node
/// it stands for by name, as in a trace ([`crate::trace::ir_node`]: ORT
/// names a fused node after the last operation it took in, and a node
/// moved to NCHWc after its source with `_nchwc`); one that stands for none goes with the producer of its
/// inputs that runs last, else with its earliest consumer. A node that
/// reads a value of another part of its own stage (ORT names a
/// convolution that took in a residual sum after the convolution) moves
/// to the next stage; one that reads a later stage's value joins that part
/// (or goes after that stage where it reads two of its parts); its readers
/// follow. So no value flows backwards or between two parts of one stage.
/// Fails where a node reads two parts of the last stage. A part
/// that ends up with no node (its operations fused into a later part's) is
/// `None`.
pub(super) fn split(
    model: &ModelProto,
    graph: &Graph,
    part_of: &[Option<usize>],
    stage_of: &[usize],
) -> Result<Vec<Option<PartModel>>> {
    let g = model
        .graph
        .as_ref()
        .context("ORT's optimised model has no graph")?;
    if let Some(t) = g.initializer.iter().find(|t| t.data_location != 0) {
        bail!("initializer '{}' is stored outside the model", t.name);
    }
    let index: HashMap<&str, NodeId> = graph
        .nodes
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let initializers: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for o in &n.output {
            producer.insert(o.as_str(), i);
        }
    }
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); g.node.len()];
    for (i, n) in g.node.iter().enumerate() {
        for v in &n.input {
            if let Some(&p) = producer.get(v.as_str()) {
                consumers[p].push(i);
            }
        }
    }
    let stage = |p: usize| stage_of.get(p).copied().unwrap_or(usize::MAX);
    let mut part: Vec<Option<usize>> = g
        .node
        .iter()
        .map(|n| {
            crate::trace::ir_node(&index, &n.name)
                .and_then(|(_, id)| part_of.get(id).copied().flatten())
        })
        .collect();
    // nodes of ORT's own, by their neighbours, until none moves
    loop {
        let mut moved = false;
        for i in 0..g.node.len() {
            if part[i].is_some() {
                continue;
            }
            let from: Vec<usize> = g.node[i]
                .input
                .iter()
                .filter_map(|v| producer.get(v.as_str()))
                .map(|&p| part[p])
                .collect::<Option<Vec<_>>>()
                .unwrap_or_default();
            let has_producers = g.node[i]
                .input
                .iter()
                .any(|v| producer.contains_key(v.as_str()));
            let pick = if has_producers {
                from.into_iter().max_by_key(|&p| stage(p))
            } else {
                consumers[i]
                    .iter()
                    .filter_map(|&c| part[c])
                    .min_by_key(|&p| stage(p))
            };
            if pick.is_some() {
                part[i] = pick;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    let mut part: Vec<usize> = part
        .iter()
        .zip(&g.node)
        .map(|(p, n)| p.with_context(|| format!("ORT node '{}' belongs to no part", n.name)))
        .collect::<Result<_>>()?;
    // A fused node named after an operation of one lane may read another
    // lane's value (a convolution that took in the residual sum): it moves
    // to the first stage after that lane's; a node that reads a later
    // stage's value joins that part where it is one part (after them
    // otherwise); readers follow the same way.
    let parts_count = stage_of.len();
    loop {
        let mut moved = false;
        for i in 0..g.node.len() {
            let mut from: Vec<usize> = g.node[i]
                .input
                .iter()
                .filter_map(|v| producer.get(v.as_str()))
                .map(|&u| part[u])
                .filter(|&q| q != part[i])
                .collect();
            let Some(late) = from.iter().map(|&q| stage(q)).max() else {
                continue;
            };
            if late < stage(part[i]) {
                continue;
            }
            from.retain(|&q| stage(q) == late);
            from.dedup();
            // every move goes to a later stage, so this ends
            part[i] = if let ([one], true) = (&from[..], late > stage(part[i])) {
                *one
            } else {
                let next = (0..parts_count)
                    .map(stage)
                    .filter(|&s| s > late)
                    .min()
                    .with_context(|| {
                        format!(
                            "ORT node '{}' reads values of two parts of the last stage",
                            g.node[i].name
                        )
                    })?;
                let candidates: Vec<usize> =
                    (0..parts_count).filter(|&q| stage(q) == next).collect();
                consumers[i]
                    .iter()
                    .map(|&c| part[c])
                    .find(|q| candidates.contains(q))
                    .unwrap_or(candidates[0])
            };
            moved = true;
        }
        if !moved {
            break;
        }
    }
    let graph_outputs: HashSet<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    let parts = stage_of
        .len()
        .max(part.iter().map(|&p| p + 1).max().unwrap_or(0));
    Ok((0..parts)
        .map(|p| part_model(model, g, &part, p, &initializers, &graph_outputs))
        .collect())
}

/// The model of part `p`: its nodes in the optimised graph's order, the
/// initializers they read, the values from other parts as inputs and
/// those other parts (or the graph's output) read as outputs.
fn part_model(
    model: &ModelProto,
    g: &GraphProto,
    part: &[usize],
    p: usize,
    initializers: &HashSet<&str>,
    graph_outputs: &HashSet<&str>,
) -> Option<PartModel> {
    let nodes: Vec<&NodeProto> = g
        .node
        .iter()
        .zip(part)
        .filter(|(_, &q)| q == p)
        .map(|(n, _)| n)
        .collect();
    if nodes.is_empty() {
        return None;
    }
    let made: HashSet<&str> = nodes
        .iter()
        .flat_map(|n| n.output.iter().map(String::as_str))
        .collect();
    let mut inputs: Vec<String> = Vec::new();
    let mut used: HashSet<&str> = HashSet::new();
    for v in nodes.iter().flat_map(|n| n.input.iter()) {
        if v.is_empty() || !used.insert(v.as_str()) {
            continue;
        }
        if !made.contains(v.as_str()) && !initializers.contains(v.as_str()) {
            inputs.push(v.clone());
        }
    }
    let read_elsewhere: HashSet<&str> = g
        .node
        .iter()
        .zip(part)
        .filter(|(_, &q)| q != p)
        .flat_map(|(n, _)| n.input.iter().map(String::as_str))
        .collect();
    let outputs: Vec<String> = nodes
        .iter()
        .flat_map(|n| n.output.iter())
        .filter(|v| read_elsewhere.contains(v.as_str()) || graph_outputs.contains(v.as_str()))
        .cloned()
        .collect();
    let value = |name: &String| ValueInfoProto {
        name: name.clone(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: FLOAT,
                shape: None,
            }),
        }),
    };
    let sub = ModelProto {
        ir_version: model.ir_version,
        producer_name: "speedbench".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("part {p} of ONNX Runtime's optimised graph"),
        graph: Some(GraphProto {
            node: nodes.into_iter().cloned().collect(),
            name: format!("part{p}"),
            initializer: g
                .initializer
                .iter()
                .filter(|t| used.contains(t.name.as_str()))
                .cloned()
                .collect(),
            input: inputs.iter().map(value).collect(),
            output: outputs.iter().map(value).collect(),
        }),
        opset_import: model.opset_import.clone(),
    };
    Some(PartModel {
        bytes: sub.encode_to_vec(),
        inputs,
        outputs,
    })
}

#[cfg(test)]
mod tests;
