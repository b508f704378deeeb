//! Lowering the IR to an ONNX model (opset 18): input `input` [batch, 3, H,
//! W] with a symbolic batch, output `logits` [batch, classes]. The ONNX
//! Runtime backend runs exactly these bytes; `speedbench export` writes them.

use anyhow::Result;
use prost::Message;

use super::onnx_proto::*;
use super::weights::{TensorView, Weights};
use super::{Graph, NodeId, Op, ResizeMode};

pub const OPSET: i64 = 18;
pub const INPUT: &str = "input";
pub const OUTPUT: &str = "logits";

fn attr_ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.iter().map(|&x| x as i64).collect(),
        r#type: ATTR_INTS,
        ..Default::default()
    }
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: v,
        r#type: ATTR_INT,
        ..Default::default()
    }
}

fn attr_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: v.as_bytes().to_vec(),
        r#type: ATTR_STRING,
        ..Default::default()
    }
}

fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: v,
        r#type: ATTR_FLOAT,
        ..Default::default()
    }
}

fn float_tensor(name: &str, t: &TensorView) -> TensorProto {
    TensorProto {
        dims: t.shape.iter().map(|&d| d as i64).collect(),
        data_type: FLOAT,
        name: name.into(),
        raw_data: t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn int_tensor(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        dims: vec![v.len() as i64],
        data_type: INT64,
        name: name.into(),
        raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: Vec<DimValue>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .into_iter()
                        .map(|d| Dimension { value: Some(d) })
                        .collect(),
                }),
            }),
        }),
    }
}

/// The ONNX model of `g` with weights `w`, serialised.
pub fn to_onnx(g: &Graph, w: &Weights) -> Result<Vec<u8>> {
    let all: Vec<NodeId> = (1..g.nodes.len()).collect();
    Ok(segment(g, w, &all)?.bytes)
}

/// A part of a graph as an ONNX model of its own.
#[derive(Debug, Clone)]
pub struct Segment {
    pub bytes: Vec<u8>,
    /// The values it reads from outside (node 0 is the graph's input), in
    /// the order of the model's inputs.
    pub inputs: Vec<NodeId>,
    /// The values it hands on: read by a node outside it, or the graph's
    /// output; in the order of the model's outputs.
    pub outputs: Vec<NodeId>,
}

/// The ONNX name of node `id`'s value: `input` for node 0, `logits` for
/// the graph's output, else the node's name.
pub fn value_name(g: &Graph, id: NodeId) -> String {
    if id == 0 {
        INPUT.into()
    } else if id == g.output() {
        OUTPUT.into()
    } else {
        g.nodes[id].name.clone()
    }
}

/// The attributes of a square pooling window.
fn window(kernel: usize, stride: usize, pad: usize) -> [AttributeProto; 3] {
    [
        attr_ints("kernel_shape", &[kernel, kernel]),
        attr_ints("strides", &[stride, stride]),
        attr_ints("pads", &[pad, pad, pad, pad]),
    ]
}

/// Per node, whether its value is a `[batch, C]` matrix in ONNX: flatten
/// and linear layers, and what works element-wise (or concatenates) on
/// them only. The others are `[batch, C, H, W]`.
pub fn vectors(g: &Graph) -> Vec<bool> {
    let mut v = vec![false; g.nodes.len()];
    for (id, n) in g.nodes.iter().enumerate() {
        v[id] = match n.op {
            Op::Flatten | Op::Linear { .. } => true,
            Op::Add
            | Op::Mul
            | Op::Relu
            | Op::Sigmoid
            | Op::Clip { .. }
            | Op::HardSigmoid { .. }
            | Op::HardSwish
            | Op::BatchNorm { .. }
            | Op::Concat
            | Op::Slice { .. } => n.inputs.iter().all(|&i| v[i]),
            _ => false,
        };
    }
    v
}

/// The ONNX shape of node `id`'s value for a symbolic batch ([`vectors`]).
fn value_dims(g: &Graph, vectors: &[bool], id: NodeId) -> Vec<DimValue> {
    let batch = DimValue::DimParam("batch".into());
    let s = g.nodes[id].shape;
    if vectors[id] {
        vec![batch, DimValue::DimValue(s.c as i64)]
    } else {
        vec![
            batch,
            DimValue::DimValue(s.c as i64),
            DimValue::DimValue(s.h as i64),
            DimValue::DimValue(s.w as i64),
        ]
    }
}

/// The ONNX model of `nodes` (in topological order) of `g`: its inputs the
/// values it reads from outside, its outputs the values read outside it.
pub fn segment(g: &Graph, w: &Weights, nodes: &[NodeId]) -> Result<Segment> {
    let inside: std::collections::HashSet<NodeId> = nodes.iter().copied().collect();
    let consumers = g.consumers();
    let mut inputs: Vec<NodeId> = Vec::new();
    for &id in nodes {
        for &i in &g.nodes[id].inputs {
            if !inside.contains(&i) && !inputs.contains(&i) {
                inputs.push(i);
            }
        }
    }
    let outputs: Vec<NodeId> = nodes
        .iter()
        .copied()
        .filter(|&id| id == g.output() || consumers[id].iter().any(|c| !inside.contains(c)))
        .collect();
    let mut onnx_nodes = Vec::new();
    let mut inits = Vec::new();
    for &id in nodes {
        let n = &g.nodes[id];
        let mut node_inputs: Vec<String> = n.inputs.iter().map(|&i| value_name(g, i)).collect();
        let mut attrs = Vec::new();
        // The weights follow the activations, in the order of `Op::params`
        // (ONNX's Conv, BatchNormalization and Gemm take them so).
        for (suffix, t) in w.params_of(&n.op)? {
            let name = format!("{}.{suffix}", n.name);
            inits.push(float_tensor(&name, &t));
            node_inputs.push(name);
        }
        let op_type = match &n.op {
            Op::Input => anyhow::bail!("node {id} is the graph input, not an operation"),
            Op::Conv {
                kernel,
                stride,
                pad,
                groups,
                ..
            } => {
                attrs.push(attr_ints("kernel_shape", kernel));
                attrs.push(attr_ints("strides", stride));
                attrs.push(attr_ints("pads", &[pad[0], pad[1], pad[0], pad[1]]));
                attrs.push(attr_int("group", *groups as i64));
                "Conv"
            }
            Op::BatchNorm { eps, .. } => {
                attrs.push(attr_float("epsilon", *eps as f32));
                "BatchNormalization"
            }
            Op::Relu => "Relu",
            Op::Sigmoid => "Sigmoid",
            Op::Clip { min, max } => {
                for (s, v) in [("min", *min), ("max", *max)] {
                    let name = format!("{}.{s}", n.name);
                    inits.push(TensorProto {
                        data_type: FLOAT,
                        name: name.clone(),
                        raw_data: v.to_le_bytes().to_vec(),
                        ..Default::default()
                    });
                    node_inputs.push(name);
                }
                "Clip"
            }
            Op::HardSigmoid { alpha, beta } => {
                attrs.push(attr_float("alpha", *alpha));
                attrs.push(attr_float("beta", *beta));
                "HardSigmoid"
            }
            Op::HardSwish => "HardSwish",
            Op::MaxPool {
                kernel,
                stride,
                pad,
                ceil,
            } => {
                attrs.extend(window(*kernel, *stride, *pad));
                attrs.push(attr_int("ceil_mode", i64::from(*ceil)));
                "MaxPool"
            }
            Op::AvgPool {
                kernel,
                stride,
                pad,
                count_include_pad,
            } => {
                attrs.extend(window(*kernel, *stride, *pad));
                attrs.push(attr_int("count_include_pad", i64::from(*count_include_pad)));
                "AveragePool"
            }
            Op::ChannelShuffle { groups } => {
                // Reshape to [N, g, C/g, H, W], swap g and C/g, reshape back.
                let s = n.shape;
                let (c, h, w_) = (s.c as i64, s.h as i64, s.w as i64);
                let g_ = *groups as i64;
                let grouped = format!("{}.grouped", n.name);
                let swapped = format!("{}.swapped", n.name);
                let to5 = format!("{}.to5", n.name);
                let to4 = format!("{}.to4", n.name);
                inits.push(int_tensor(&to5, &[-1, g_, c / g_, h, w_]));
                inits.push(int_tensor(&to4, &[-1, c, h, w_]));
                onnx_nodes.push(NodeProto {
                    input: vec![node_inputs[0].clone(), to5],
                    output: vec![grouped.clone()],
                    name: grouped.clone(),
                    op_type: "Reshape".into(),
                    ..Default::default()
                });
                onnx_nodes.push(NodeProto {
                    input: vec![grouped],
                    output: vec![swapped.clone()],
                    name: swapped.clone(),
                    op_type: "Transpose".into(),
                    attribute: vec![attr_ints("perm", &[0, 2, 1, 3, 4])],
                    ..Default::default()
                });
                node_inputs = vec![swapped, to4];
                "Reshape"
            }
            Op::GlobalAvgPool => "GlobalAveragePool",
            Op::Resize { h, w: width, mode } => {
                let sizes = format!("{}.sizes", n.name);
                inits.push(int_tensor(&sizes, &[*h as i64, *width as i64]));
                node_inputs.extend([String::new(), String::new(), sizes]);
                attrs.push(attr_ints("axes", &[2, 3]));
                match mode {
                    ResizeMode::Nearest => {
                        attrs.push(attr_str("mode", "nearest"));
                        attrs.push(attr_str("coordinate_transformation_mode", "asymmetric"));
                        attrs.push(attr_str("nearest_mode", "floor"));
                    }
                    ResizeMode::Bilinear => {
                        attrs.push(attr_str("mode", "linear"));
                        attrs.push(attr_str("coordinate_transformation_mode", "half_pixel"));
                    }
                }
                "Resize"
            }
            Op::Add => "Add",
            Op::Mul => "Mul",
            Op::Concat => {
                attrs.push(attr_int("axis", 1));
                "Concat"
            }
            Op::Slice { start, end } => {
                for (s, v) in [("starts", *start), ("ends", *end), ("axes", 1)] {
                    let name = format!("{}.{s}", n.name);
                    inits.push(int_tensor(&name, &[v as i64]));
                    node_inputs.push(name);
                }
                "Slice"
            }
            Op::Flatten => {
                attrs.push(attr_int("axis", 1));
                "Flatten"
            }
            Op::Linear { .. } => {
                attrs.push(attr_int("transB", 1));
                "Gemm"
            }
        };
        onnx_nodes.push(NodeProto {
            input: node_inputs,
            output: vec![value_name(g, id)],
            name: n.name.clone(),
            op_type: op_type.into(),
            attribute: attrs,
            ..Default::default()
        });
    }
    let x = g.input();
    let vectors = vectors(g);
    let model = ModelProto {
        ir_version: 8,
        producer_name: "speedbench".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("{} for {}x{} inputs", g.name, x.h, x.w),
        graph: Some(GraphProto {
            node: onnx_nodes,
            name: g.name.clone(),
            initializer: inits,
            input: inputs
                .iter()
                .map(|&i| value_info(&value_name(g, i), value_dims(g, &vectors, i)))
                .collect(),
            output: outputs
                .iter()
                .map(|&o| value_info(&value_name(g, o), value_dims(g, &vectors, o)))
                .collect(),
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
    };
    Ok(Segment {
        bytes: model.encode_to_vec(),
        inputs,
        outputs,
    })
}
