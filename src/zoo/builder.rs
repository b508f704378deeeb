//! Small helpers shared by the model families: conv + BN (+ ReLU), the
//! ImageNet stem and the classification head.

use anyhow::Result;

use crate::graph::{Graph, NodeId, Op, ParamRef};

pub const BN_EPS: f64 = 1e-5;

/// A convolution without bias named `prefix`.
pub fn conv(
    g: &mut Graph,
    prefix: &str,
    x: NodeId,
    out: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
) -> Result<NodeId> {
    let op = Op::Conv {
        out,
        kernel: [kernel; 2],
        stride: [stride; 2],
        pad: [kernel / 2; 2],
        groups,
        bias: false,
        params: ParamRef::whole(prefix),
    };
    Ok(g.add(prefix, op, &[x])?)
}

pub fn bn(g: &mut Graph, prefix: &str, x: NodeId) -> Result<NodeId> {
    let op = Op::BatchNorm {
        eps: BN_EPS,
        params: ParamRef::whole(prefix),
    };
    Ok(g.add(prefix, op, &[x])?)
}

pub fn relu(g: &mut Graph, name: &str, x: NodeId) -> Result<NodeId> {
    Ok(g.add(name, Op::Relu, &[x])?)
}

/// `conv1` 7x7/2 to 64, `bn1`, ReLU, 3x3/2 max-pool with padding 1.
pub fn stem(g: &mut Graph) -> Result<NodeId> {
    let x = conv(g, "conv1", 0, 64, 7, 2, 1)?;
    let x = bn(g, "bn1", x)?;
    let x = relu(g, "relu", x)?;
    let pool = Op::MaxPool {
        kernel: 3,
        stride: 2,
        pad: 1,
        ceil: false,
    };
    Ok(g.add("maxpool", pool, &[x])?)
}

/// Global average pool, flatten, `fc`.
pub fn head(g: &mut Graph, x: NodeId, classes: usize) -> Result<NodeId> {
    let x = g.add("avgpool", Op::GlobalAvgPool, &[x])?;
    let x = g.add("flatten", Op::Flatten, &[x])?;
    let fc = Op::Linear {
        out: classes,
        params: ParamRef::whole("fc"),
    };
    Ok(g.add("fc", fc, &[x])?)
}
