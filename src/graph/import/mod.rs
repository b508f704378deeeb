//! Reading an ONNX CNN into the graph IR (`speedbench import`).
//!
//! The file's nodes are walked in their (topological) order. Each ONNX
//! value becomes one of [`Val`]: a feature map or a vector that an IR node
//! computes, a constant (initializers, `Constant`, and what the exporter
//! computes from shapes at run time, folded here), or one step of a
//! channel shuffle (Reshape to five dimensions, Transpose, Reshape back).
//! What the IR cannot express exactly is refused with the node's name, op
//! and attribute, never approximated. Weights come from the initializers
//! and are stored under `<IR node>.<weight|bias|...>`.

mod konst;
mod layers;
mod ops;
mod shapes;

use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, bail, Context, Result};
use prost::Message;

use super::onnx_proto::{DimValue, GraphProto, ModelProto, NodeProto};
use super::weights::{Tensor, Weights};
use super::{Graph, NodeId, Op, Shape};
pub use konst::{Konst, BATCH};

/// The opsets the importer reads.
pub const OPSETS: std::ops::RangeInclusive<i64> = 7..=21;

/// An imported network: its graph, its weights, and the file's fixed batch
/// size (`None` where the file leaves it symbolic).
#[derive(Debug, Clone)]
pub struct Imported {
    pub graph: Graph,
    pub weights: Weights,
    pub batch: Option<usize>,
}

/// What an ONNX value is.
#[derive(Debug, Clone)]
enum Val {
    /// `[N, C, H, W]`, computed by an IR node.
    Map(NodeId),
    /// `[N, K]`, computed by an IR node of shape `[K, 1, 1]` that lowers
    /// to a vector (flatten, linear, or element-wise on vectors).
    Vector(NodeId),
    /// A `MatMul` of a vector by a constant, waiting for a bias `Add`.
    MatMul {
        x: NodeId,
        weight: Konst,
        node: String,
    },
    /// `[N, g, C/g, H, W]`: the first step of a channel shuffle.
    Grouped {
        x: NodeId,
        groups: usize,
    },
    /// `[N, C/g, g, H, W]`: the second step.
    Swapped {
        x: NodeId,
        groups: usize,
    },
    Const(Konst),
}

/// The importer's state while it walks the nodes.
struct Importer {
    graph: Graph,
    weights: Weights,
    values: HashMap<String, Val>,
    /// The names of every value some node defines, to tell a node that
    /// reads a later value (a cycle) from one that reads a missing one.
    defined: HashSet<String>,
    /// The file's fixed batch, or the placeholder.
    batch: i64,
}

/// Reads `bytes` as an ONNX model into the IR under `name`.
pub fn import(bytes: &[u8], name: &str) -> Result<Imported> {
    let model = ModelProto::decode(bytes)
        .map_err(|e| anyhow!("not a complete ONNX model (protobuf: {e})"))?;
    let Some(graph) = model.graph.as_ref() else {
        bail!("not an ONNX model: it holds no graph");
    };
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version);
    match opset {
        None => bail!("not an ONNX model: it names no ONNX operator set"),
        Some(v) if !OPSETS.contains(&v) => bail!(
            "operator set {v} is not read (opsets {}-{} are)",
            OPSETS.start(),
            OPSETS.end()
        ),
        Some(_) => {}
    }
    if graph.node.is_empty() {
        bail!("not an ONNX model: its graph has no nodes");
    }
    let mut imp = Importer::start(graph, name)?;
    for (i, node) in graph.node.iter().enumerate() {
        imp.node(node)
            .with_context(|| format!("node '{}' ({})", node_name(node, i), node.op_type))?;
    }
    imp.finish(graph)
}

/// A node's name, or its position where it has none.
fn node_name(n: &NodeProto, i: usize) -> String {
    if n.name.is_empty() {
        format!("#{i}")
    } else {
        n.name.clone()
    }
}

impl Importer {
    /// Reads the initializers and the one image input.
    fn start(g: &GraphProto, name: &str) -> Result<Importer> {
        let mut values = HashMap::new();
        let mut defined: HashSet<String> = g
            .node
            .iter()
            .flat_map(|n| n.output.iter().cloned())
            .collect();
        for t in &g.initializer {
            let k = konst::from_proto(t).with_context(|| format!("initializer '{}'", t.name))?;
            defined.insert(t.name.clone());
            values.insert(t.name.clone(), Val::Const(k));
        }
        let images: Vec<_> = g
            .input
            .iter()
            .filter(|i| !values.contains_key(&i.name))
            .collect();
        let [input] = images.as_slice() else {
            bail!(
                "expected one image input, found {} ({})",
                images.len(),
                images
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        let dims: Vec<Option<i64>> = input
            .r#type
            .as_ref()
            .and_then(|t| t.tensor_type.as_ref())
            .and_then(|t| t.shape.as_ref())
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(DimValue::DimValue(v)) if *v > 0 => Some(*v),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let shown = |d: &[Option<i64>]| {
            d.iter()
                .map(|x| x.map_or("?".to_string(), |v| v.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let [n, Some(c), Some(h), Some(w)] = dims.as_slice() else {
            bail!(
                "input '{}' has shape [{}]; expected [batch, channels, height, width] with channels, height and width fixed (export with a static input shape)",
                input.name,
                shown(&dims)
            );
        };
        if h != w || *c != 3 {
            bail!(
                "input '{}' has shape [{}]; expected a square 3-channel image",
                input.name,
                shown(&dims)
            );
        }
        let mut graph = Graph::new(name, Shape::new(3, *h as usize, *w as usize));
        graph.name = name.to_string();
        defined.insert(input.name.clone());
        values.insert(input.name.clone(), Val::Map(0));
        Ok(Importer {
            graph,
            weights: Weights {
                tensors: Default::default(),
            },
            values,
            defined,
            batch: n.unwrap_or(BATCH),
        })
    }

    /// The value `name` a node reads.
    fn get(&self, name: &str) -> Result<&Val> {
        self.values.get(name).ok_or_else(|| {
            if self.defined.contains(name) {
                anyhow!("reads '{name}' before it is computed (the graph has a cycle or is not in topological order)")
            } else {
                anyhow!("reads '{name}', which no node, initializer or input defines")
            }
        })
    }

    /// Input `i` of `n` as a constant.
    fn konst(&self, n: &NodeProto, i: usize) -> Result<Konst> {
        match self.get(input(n, i)?)? {
            Val::Const(k) => Ok(k.clone()),
            _ => bail!("input {i} ('{}') must be a constant", input(n, i)?),
        }
    }

    /// Whether input `i` of `n` is present and a constant.
    fn is_const(&self, n: &NodeProto, i: usize) -> bool {
        n.input
            .get(i)
            .and_then(|v| self.values.get(v))
            .is_some_and(|v| matches!(v, Val::Const(_)))
    }

    /// Input `i` of `n` as an IR node: a feature map or a vector (a pending
    /// MatMul becomes a linear layer without bias).
    fn act(&mut self, n: &NodeProto, i: usize) -> Result<(NodeId, bool)> {
        let name = input(n, i)?.to_string();
        match self.get(&name)?.clone() {
            Val::Map(id) => Ok((id, false)),
            Val::Vector(id) => Ok((id, true)),
            Val::MatMul { x, weight, node } => {
                let out = weight.dims[1];
                let id = self.linear(&node, x, &weight, false, &Konst {
                    dims: vec![out],
                    data: konst::Data::F(vec![0.0; out]),
                })?;
                self.values.insert(name, Val::Vector(id));
                Ok((id, true))
            }
            Val::Grouped { .. } | Val::Swapped { .. } => bail!(
                "reads '{name}', a five-dimensional view of a feature map; only a channel shuffle (Reshape, Transpose 0 2 1 3 4, Reshape) is read"
            ),
            Val::Const(_) => bail!("input {i} ('{name}') is a constant where a feature map is expected"),
        }
    }

    /// Input `i` of `n` as a `[N, K]` vector, flattening a feature map.
    fn vector(&mut self, n: &NodeProto, i: usize) -> Result<NodeId> {
        let (id, is_vec) = self.act(n, i)?;
        if is_vec {
            return Ok(id);
        }
        let name = format!("{}.flatten", self.graph.nodes[id].name);
        let name = self.unique(&name);
        Ok(self.graph.add(&name, Op::Flatten, &[id])?)
    }

    /// A free IR node name from an ONNX name (`/layer1/conv/Conv` becomes
    /// `layer1.conv.Conv`).
    fn unique(&self, onnx: &str) -> String {
        let base: String = onnx
            .trim_start_matches('/')
            .replace(['/', ':'], ".")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let base = if base.is_empty() {
            "node".to_string()
        } else {
            base
        };
        if !self.graph.has_name(&base) {
            return base;
        }
        (2..)
            .map(|k| format!("{base}.{k}"))
            .find(|c| !self.graph.has_name(c))
            .unwrap_or(base)
    }

    /// Stores a node's tensors under `<node>.<suffix>` with the shapes the
    /// graph declared for them.
    fn store(&mut self, node: &str, tensors: &[(&str, Vec<f32>)]) -> Result<()> {
        for (suffix, data) in tensors {
            let key = format!("{node}.{suffix}");
            let shape = self
                .graph
                .params
                .get(&key)
                .cloned()
                .ok_or_else(|| anyhow!("importer bug: no parameter '{key}'"))?;
            let want: usize = shape.iter().product();
            if data.len() != want {
                bail!(
                    "its {suffix} holds {} values; the layer needs {want} ({shape:?})",
                    data.len()
                );
            }
            self.weights.tensors.insert(
                key,
                Tensor {
                    shape,
                    data: data.clone(),
                },
            );
        }
        Ok(())
    }

    /// Adds a linear layer on vector `x`: `weight` is `[in, out]`
    /// (`transposed` false, MatMul's) or `[out, in]` (Gemm's transB).
    fn linear(
        &mut self,
        onnx_name: &str,
        x: NodeId,
        weight: &Konst,
        transposed: bool,
        bias: &Konst,
    ) -> Result<NodeId> {
        let [a, b] = weight.dims.as_slice() else {
            bail!(
                "weight has shape {:?}; expected two dimensions",
                weight.dims
            );
        };
        let (rows, cols) = (*a, *b);
        let w = weight.as_floats()?;
        let (out, inp, w) = if transposed {
            (rows, cols, w)
        } else {
            let mut t = vec![0.0; w.len()];
            for r in 0..rows {
                for c in 0..cols {
                    t[c * rows + r] = w[r * cols + c];
                }
            }
            (cols, rows, t)
        };
        let k = self.graph.nodes[x].shape.c;
        if inp != k {
            bail!("weight has {inp} inputs; the vector it multiplies has {k}");
        }
        let name = self.unique(onnx_name);
        let id = self.graph.add(
            &name,
            Op::Linear {
                out,
                params: super::ParamRef::whole(name.clone()),
            },
            &[x],
        )?;
        self.store(&name, &[("weight", w), ("bias", bias.as_floats()?)])?;
        Ok(id)
    }

    fn finish(mut self, g: &GraphProto) -> Result<Imported> {
        let [out] = g.output.as_slice() else {
            bail!("expected one output, found {}", g.output.len());
        };
        let fake = NodeProto {
            input: vec![out.name.clone()],
            ..Default::default()
        };
        let (mut id, is_vec) = self
            .act(&fake, 0)
            .with_context(|| format!("output '{}'", out.name))?;
        if !is_vec {
            let name = self.unique("output.flatten");
            id = self.graph.add(&name, Op::Flatten, &[id])?;
        }
        let (graph, weights) = prune(&self.graph, &self.weights, id)?;
        Ok(Imported {
            graph,
            weights,
            batch: (self.batch != BATCH).then_some(self.batch as usize),
        })
    }
}

/// Input `i` of `n` by name (an empty name is an absent optional input).
fn input(n: &NodeProto, i: usize) -> Result<&str> {
    match n.input.get(i).map(String::as_str) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => bail!("input {i} is missing"),
    }
}

/// The graph of the nodes `out` depends on, in their order, with their
/// weights: what the exporter left unused is dropped, and `out` is last.
fn prune(g: &Graph, w: &Weights, out: NodeId) -> Result<(Graph, Weights)> {
    let mut keep = vec![false; g.nodes.len()];
    keep[out] = true;
    for id in (0..=out).rev() {
        if keep[id] {
            for &i in &g.nodes[id].inputs {
                keep[i] = true;
            }
        }
    }
    let mut new = Graph::new(&g.name, g.input());
    let mut map = vec![0; g.nodes.len()];
    for (id, n) in g.nodes.iter().enumerate().skip(1) {
        if keep[id] {
            let inputs: Vec<NodeId> = n.inputs.iter().map(|&i| map[i]).collect();
            map[id] = new.add(&n.name, n.op.clone(), &inputs)?;
        }
    }
    let tensors = w
        .tensors
        .iter()
        .filter(|(k, _)| new.params.contains_key(*k))
        .map(|(k, t)| (k.clone(), t.clone()))
        .collect();
    Ok((new, Weights { tensors }))
}

#[cfg(test)]
mod tests;
