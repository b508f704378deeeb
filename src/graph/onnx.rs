//! Lowering the IR to an ONNX model (opset 18): input `input` [batch, 3, H,
//! W] with a symbolic batch, output `logits` [batch, classes]. The ONNX
//! Runtime backend runs exactly these bytes; `speedbench export` writes them.

use anyhow::Result;
use prost::Message;

use super::onnx_proto::*;
use super::weights::{TensorView, Weights};
use super::{Graph, Op, ResizeMode};

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
    }
}

fn int_tensor(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        dims: vec![v.len() as i64],
        data_type: INT64,
        name: name.into(),
        raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
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
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let out_name = |id: usize| -> String {
        if id == 0 {
            INPUT.into()
        } else {
            g.nodes[id].name.clone()
        }
    };
    let last = g.output();
    for (id, n) in g.nodes.iter().enumerate().skip(1) {
        let mut inputs: Vec<String> = n.inputs.iter().map(|&i| out_name(i)).collect();
        let mut attrs = Vec::new();
        // The weights follow the activations, in the order of `Op::params`
        // (ONNX's Conv, BatchNormalization and Gemm take them so).
        for (suffix, t) in w.params_of(&n.op)? {
            let name = format!("{}.{suffix}", n.name);
            inits.push(float_tensor(&name, &t));
            inputs.push(name);
        }
        let op_type = match &n.op {
            Op::Input => unreachable!("only node 0 is an input"),
            Op::Conv {
                kernel,
                stride,
                pad,
                groups,
                ..
            } => {
                attrs.push(attr_ints("kernel_shape", &[*kernel, *kernel]));
                attrs.push(attr_ints("strides", &[*stride, *stride]));
                attrs.push(attr_ints("pads", &[*pad, *pad, *pad, *pad]));
                attrs.push(attr_int("group", *groups as i64));
                "Conv"
            }
            Op::BatchNorm { eps, .. } => {
                attrs.push(attr_float("epsilon", *eps as f32));
                "BatchNormalization"
            }
            Op::Relu => "Relu",
            Op::Sigmoid => "Sigmoid",
            Op::MaxPool {
                kernel,
                stride,
                pad,
            } => {
                attrs.push(attr_ints("kernel_shape", &[*kernel, *kernel]));
                attrs.push(attr_ints("strides", &[*stride, *stride]));
                attrs.push(attr_ints("pads", &[*pad, *pad, *pad, *pad]));
                "MaxPool"
            }
            Op::GlobalAvgPool => "GlobalAveragePool",
            Op::Resize { h, w: width, mode } => {
                let sizes = format!("{}.sizes", n.name);
                inits.push(int_tensor(&sizes, &[*h as i64, *width as i64]));
                inputs.extend([String::new(), String::new(), sizes]);
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
                    inputs.push(name);
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
        nodes.push(NodeProto {
            input: inputs,
            output: vec![if id == last {
                OUTPUT.into()
            } else {
                n.name.clone()
            }],
            name: n.name.clone(),
            op_type: op_type.into(),
            attribute: attrs,
        });
    }
    let x = g.input();
    let batch = || DimValue::DimParam("batch".into());
    let model = ModelProto {
        ir_version: 8,
        producer_name: "speedbench".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("{} for {}x{} inputs", g.name, x.h, x.w),
        graph: Some(GraphProto {
            node: nodes,
            name: g.name.clone(),
            initializer: inits,
            input: vec![value_info(
                INPUT,
                vec![
                    batch(),
                    DimValue::DimValue(x.c as i64),
                    DimValue::DimValue(x.h as i64),
                    DimValue::DimValue(x.w as i64),
                ],
            )],
            output: vec![value_info(
                OUTPUT,
                vec![batch(), DimValue::DimValue(g.num_classes() as i64)],
            )],
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
    };
    Ok(model.encode_to_vec())
}
