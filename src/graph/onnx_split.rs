//! Splitting an ONNX graph written by ONNX Runtime (its optimised form of
//! an IR graph) into the parts of a schedule: each part an ONNX model of
//! its own, reading and writing the values that cross its boundary under
//! ORT's own names (blocked NCHWc values included).

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Context, Result};
use prost::Message;

use super::onnx_proto::{
    DimValue, Dimension, GraphProto, ModelProto, NodeProto, TensorShapeProto, TypeProto,
    TypeProtoTensor, ValueInfoProto, FLOAT,
};
use super::{Graph, NodeId};

/// One part of the optimised graph as an ONNX model, and the names of the
/// values it reads and writes.
#[derive(Debug)]
pub struct PartModel {
    pub model: ModelProto,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

impl PartModel {
    pub fn bytes(&self) -> Vec<u8> {
        self.model.encode_to_vec()
    }

    /// Declares the shapes of the values crossing its boundary, as a pass
    /// measured them (`shapes` by value name), the batch symbolic: a part
    /// whose inputs have no shape makes ONNX Runtime plan every value's
    /// memory at run time. Values not in `shapes` keep what they had.
    pub fn shape(&mut self, shapes: &HashMap<String, Vec<i64>>) {
        let Some(g) = self.model.graph.as_mut() else {
            return;
        };
        for v in g.input.iter_mut().chain(g.output.iter_mut()) {
            let (Some(dims), Some(t)) = (
                shapes.get(&v.name),
                v.r#type.as_mut().and_then(|t| t.tensor_type.as_mut()),
            ) else {
                continue;
            };
            let dim = |(i, &d): (usize, &i64)| Dimension {
                value: Some(if i == 0 {
                    DimValue::DimParam("batch".into())
                } else {
                    DimValue::DimValue(d)
                }),
            };
            t.shape = Some(TensorShapeProto {
                dim: dims.iter().enumerate().map(dim).collect(),
            });
        }
    }
}

/// Splits `model` (ORT's optimised form of `graph`) into parts.
/// `part_of[n]` is the part of IR node `n` (`None` for the input), and
/// `stage_of[p]` the stage part `p` runs in: stages run in order, the parts
/// of one stage concurrently. An ORT node goes to the part of the IR node
/// it stands for by name, as in a trace ([`super::names::ir_node`]: ORT
/// names a fused node after the last operation it took in, and a node
/// moved to NCHWc after its source with `_nchwc`); one that stands for
/// none goes with the producer of its inputs that runs last, else with its
/// earliest consumer. Before that, a node of a lane that computes another
/// lane's values moves to the stage before (where that is one part). A
/// node that
/// reads a value of another part of its own stage (ORT names a
/// convolution that took in a residual sum after the convolution) moves
/// to the next stage; one that reads a later stage's value joins that part
/// (or goes after that stage where it reads two of its parts); its readers
/// follow. So no value flows backwards or between two parts of one stage.
/// Fails where a node reads two parts of the last stage. A part
/// that ends up with no node (its operations fused into a later part's) is
/// `None`.
pub fn split(
    model: &ModelProto,
    graph: &Graph,
    part_of: &[Option<usize>],
    stage_of: &[usize],
) -> Result<Vec<Option<PartModel>>> {
    let g = model
        .graph
        .as_ref()
        .context("ORT's optimised model has no graph")?;
    if let Some(p) = part_of.iter().flatten().find(|&&p| p >= stage_of.len()) {
        bail!("part {p} has no stage ({} parts)", stage_of.len());
    }
    if let Some(t) = g.initializer.iter().find(|t| t.data_location != 0) {
        bail!("initializer '{}' is stored outside the model", t.name);
    }
    let index = super::names::operation_names(graph);
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
    // every part has a stage (checked above)
    let stage = |p: usize| stage_of[p];
    let mut part: Vec<Option<usize>> = g
        .node
        .iter()
        .map(|n| {
            super::names::ir_node(&index, &n.name)
                .and_then(|(_, id)| part_of.get(id).copied().flatten())
        })
        .collect();
    hoist_shared(g, &index, part_of, &mut part, stage_of);
    // nodes of ORT's own, by their neighbours, until none moves
    loop {
        let mut moved = false;
        for i in 0..g.node.len() {
            if part[i].is_some() {
                continue;
            }
            let producers: Vec<usize> = g.node[i]
                .input
                .iter()
                .filter_map(|v| producer.get(v.as_str()).copied())
                .collect();
            let pick = if producers.is_empty() {
                consumers[i]
                    .iter()
                    .filter_map(|&c| part[c])
                    .min_by_key(|&p| stage(p))
            } else {
                // once every producer is placed
                producers
                    .iter()
                    .map(|&p| part[p])
                    .collect::<Option<Vec<_>>>()
                    .and_then(|from| from.into_iter().max_by_key(|&p| stage(p)))
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
            let to = if let ([one], true) = (&from[..], late > stage(part[i])) {
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
            if to != part[i] {
                part[i] = to;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    let graph_outputs: HashSet<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    Ok((0..stage_of.len())
        .map(|p| part_model(model, g, &part, p, &initializers, &graph_outputs))
        .collect())
}

/// A node of a lane that computes values of another lane of its stage
/// (ORT fuses a branch point's slices into one `Split`, named after one
/// lane's slice, whose outputs keep every slice's name) moves to the part
/// of the stage before, where that stage is one part: left in the lane, it
/// would pull the other lanes' operations after the stage, and the lanes
/// would run one after another. `part` holds the nodes named after IR
/// nodes only. (One that reads a value of its stage is moved back by the
/// repair that follows, to where it would have gone from its lane.)
fn hoist_shared(
    g: &GraphProto,
    index: &HashMap<&str, NodeId>,
    part_of: &[Option<usize>],
    part: &mut [Option<usize>],
    stage_of: &[usize],
) {
    for (i, n) in g.node.iter().enumerate() {
        let Some(p) = part[i] else { continue };
        let s = stage_of[p];
        let shared = n
            .output
            .iter()
            .filter_map(|o| index.get(o.as_str()))
            .filter_map(|&id| part_of.get(id).copied().flatten())
            .any(|q| q != p && stage_of[q] == s);
        let Some(before) = stage_of.iter().copied().filter(|&t| t < s).max() else {
            continue;
        };
        let before: Vec<usize> = (0..stage_of.len())
            .filter(|&q| stage_of[q] == before)
            .collect();
        if let ([one], true) = (&before[..], shared) {
            part[i] = Some(*one);
        }
    }
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
    // the graph's input as the graph declares it, the others as floats
    let value = |name: &String| {
        if let Some(v) = g.input.iter().find(|v| &v.name == name) {
            return v.clone();
        }
        ValueInfoProto {
            name: name.clone(),
            r#type: Some(TypeProto {
                tensor_type: Some(TypeProtoTensor {
                    elem_type: FLOAT,
                    shape: None,
                }),
            }),
        }
    };
    let model = ModelProto {
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
        model,
        inputs,
        outputs,
    })
}

#[cfg(test)]
mod tests;
