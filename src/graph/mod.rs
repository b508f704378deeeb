//! The graph IR: one definition of a network that every framework lowers.
//!
//! A [`Graph`] is a list of nodes in topological order (a node only reads
//! nodes before it). Every node has one output whose per-sample shape
//! `[C, H, W]` is inferred when the node is added, so a bad wire fails at once
//! with the node's name in the error. The batch dimension is left out: a graph
//! is built for one spatial input size and any batch.
//!
//! Parameters live in a table of PyTorch state_dict names and shapes; nodes
//! refer to them by name (and, for the branched ResNeXt, by a slice of the
//! output channels), so the same weights drive every framework.

pub mod analysis;
pub mod fold;
pub mod import;
pub mod names;
pub mod onnx;
pub mod onnx_proto;
pub mod onnx_split;
pub mod weights;

use std::collections::{BTreeMap, HashSet};

use thiserror::Error;

/// Index of a node in [`Graph::nodes`].
pub type NodeId = usize;

/// Per-sample activation shape, channels first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    pub fn new(c: usize, h: usize, w: usize) -> Self {
        Shape { c, h, w }
    }
    pub fn numel(&self) -> usize {
        self.c * self.h * self.w
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {}, {}]", self.c, self.h, self.w)
    }
}

/// How an up-sampling node interpolates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ResizeMode {
    /// Integer factor, nearest neighbour (index = floor(out / factor)).
    Nearest,
    /// Bilinear with half-pixel centres (PyTorch `align_corners=False`).
    Bilinear,
}

/// Where a parameterised node finds its tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamRef {
    /// State-dict prefix, e.g. `layer1.0.conv1` (tensors `<prefix>.weight`...).
    pub prefix: String,
    /// Output channels `[start, start + len)` of a stored tensor with `total`
    /// output channels (the branched ResNeXt slices one grouped convolution's
    /// weight into its 32 branches).
    pub out_slice: Option<ChannelSlice>,
}

impl ParamRef {
    pub fn whole(prefix: impl Into<String>) -> Self {
        ParamRef {
            prefix: prefix.into(),
            out_slice: None,
        }
    }
}

/// A range of output channels of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelSlice {
    pub start: usize,
    pub len: usize,
    pub total: usize,
}

/// The operations of the IR. Semantics follow PyTorch's.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The network input, `[N, C, H, W]` float32.
    Input,
    /// 2-D convolution; weight `[out, in/groups, kh, kw]`. `kernel`,
    /// `stride` and `pad` are `[height, width]`; the padding is the same on
    /// both sides of an axis.
    Conv {
        out: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 2],
        groups: usize,
        bias: bool,
        params: ParamRef,
    },
    /// Inference batch norm with running statistics.
    BatchNorm {
        eps: f64,
        params: ParamRef,
    },
    Relu,
    Sigmoid,
    /// `min(max(x, min), max)` (ReLU6 is `Clip { min: 0, max: 6 }`).
    Clip {
        min: f32,
        max: f32,
    },
    /// `clip(alpha * x + beta, 0, 1)` (PyTorch's is alpha 1/6, beta 1/2).
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x * clip(x / 6 + 1/2, 0, 1)`.
    HardSwish,
    /// Max pooling, square window; padding is -inf. `ceil`: the output size
    /// rounds up (PyTorch's `ceil_mode`; a last window must start inside the
    /// input or its left padding).
    MaxPool {
        kernel: usize,
        stride: usize,
        pad: usize,
        ceil: bool,
    },
    /// Average pooling, square window, floor mode, zero padding; the
    /// divisor is the whole window (`count_include_pad`) or only its part
    /// inside the input.
    AvgPool {
        kernel: usize,
        stride: usize,
        pad: usize,
        count_include_pad: bool,
    },
    /// Channel shuffle: `[C, H, W]` viewed as `[groups, C/groups, H, W]`,
    /// the first two axes swapped, viewed back (ShuffleNet).
    ChannelShuffle {
        groups: usize,
    },
    /// Mean over H and W, keeps `[C, 1, 1]`.
    GlobalAvgPool,
    /// Resize to `h x w`.
    Resize {
        h: usize,
        w: usize,
        mode: ResizeMode,
    },
    /// Element-wise sum of two equal shapes.
    Add,
    /// `a * b` where `b` is `[C, 1, 1]` (channel gate) or equal to `a`.
    Mul,
    /// Concatenation on channels.
    Concat,
    /// Channels `[start, end)` of the input.
    Slice {
        start: usize,
        end: usize,
    },
    /// `[C, H, W]` to `[C*H*W, 1, 1]` (a vector).
    Flatten,
    /// Fully connected with bias; weight `[out, in]`.
    Linear {
        out: usize,
        params: ParamRef,
    },
}

/// The tensor names of a batch norm, in the order every lowering reads them.
pub const BN_TENSORS: [&str; 4] = ["weight", "bias", "running_mean", "running_var"];

impl Op {
    /// Where a parameterised node finds its tensors and the suffixes of the
    /// tensors it reads (`<prefix>.<suffix>`), in the order every lowering
    /// reads them; `None` for an operation without parameters.
    pub fn params(&self) -> Option<(&ParamRef, &'static [&'static str])> {
        match self {
            Op::Conv {
                bias: true, params, ..
            } => Some((params, &["weight", "bias"])),
            Op::Conv { params, .. } => Some((params, &["weight"])),
            Op::BatchNorm { params, .. } => Some((params, &BN_TENSORS)),
            Op::Linear { params, .. } => Some((params, &["weight", "bias"])),
            _ => None,
        }
    }
}

impl Op {
    /// Short operation name used in errors and tables.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Conv { .. } => "conv",
            Op::BatchNorm { .. } => "batchnorm",
            Op::Relu => "relu",
            Op::Sigmoid => "sigmoid",
            Op::Clip { .. } => "clip",
            Op::HardSigmoid { .. } => "hardsigmoid",
            Op::HardSwish => "hardswish",
            Op::MaxPool { .. } => "maxpool",
            Op::AvgPool { .. } => "avgpool",
            Op::ChannelShuffle { .. } => "channelshuffle",
            Op::GlobalAvgPool => "globalavgpool",
            Op::Resize { .. } => "resize",
            Op::Add => "add",
            Op::Mul => "mul",
            Op::Concat => "concat",
            Op::Slice { .. } => "slice",
            Op::Flatten => "flatten",
            Op::Linear { .. } => "linear",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    /// Unique, readable: `layer2.0.conv2.3` or `layer2.0.add`.
    pub name: String,
    pub op: Op,
    pub inputs: Vec<NodeId>,
    /// Per-sample output shape.
    pub shape: Shape,
}

/// Shape or wiring errors found while a graph is built.
#[derive(Debug, Error, PartialEq)]
pub enum GraphError {
    #[error("node '{node}' ({op}): {msg}")]
    Shape {
        node: String,
        op: &'static str,
        msg: String,
    },
    #[error("node '{node}' reads node #{input}, which does not exist yet")]
    BadInput { node: String, input: NodeId },
    #[error("node name '{0}' is used twice")]
    DuplicateName(String),
    #[error("parameter '{name}' is declared twice with shapes {a:?} and {b:?}")]
    ParamConflict {
        name: String,
        a: Vec<usize>,
        b: Vec<usize>,
    },
}

/// A network for one input size.
#[derive(Debug, Clone)]
pub struct Graph {
    pub name: String,
    pub nodes: Vec<Node>,
    /// State-dict name to shape, every tensor the network needs.
    pub params: BTreeMap<String, Vec<usize>>,
    /// The names in `nodes`, so that adding a node checks for a duplicate in
    /// constant time (building a graph stays linear in its nodes).
    names: HashSet<String>,
}

impl Graph {
    /// A graph holding only its input node.
    pub fn new(name: &str, input: Shape) -> Self {
        Graph {
            name: name.to_string(),
            nodes: vec![Node {
                name: "input".into(),
                op: Op::Input,
                inputs: vec![],
                shape: input,
            }],
            params: BTreeMap::new(),
            names: HashSet::from(["input".to_string()]),
        }
    }

    pub fn input(&self) -> Shape {
        self.nodes[0].shape
    }

    /// The last node is the output (logits as `[classes, 1, 1]`).
    pub fn output(&self) -> NodeId {
        self.nodes.len() - 1
    }

    pub fn num_classes(&self) -> usize {
        self.nodes[self.output()].shape.c
    }

    /// Adds a node, inferring its shape and declaring its parameters.
    pub fn add(&mut self, name: &str, op: Op, inputs: &[NodeId]) -> Result<NodeId, GraphError> {
        for &i in inputs {
            if i >= self.nodes.len() {
                return Err(GraphError::BadInput {
                    node: name.into(),
                    input: i,
                });
            }
        }
        if self.names.contains(name) {
            return Err(GraphError::DuplicateName(name.into()));
        }
        let shapes: Vec<Shape> = inputs.iter().map(|&i| self.nodes[i].shape).collect();
        let shape = infer(&op, &shapes).map_err(|msg| GraphError::Shape {
            node: name.into(),
            op: op.kind(),
            msg,
        })?;
        for (pname, pshape) in param_shapes(&op, &shapes) {
            self.declare(pname, pshape)?;
        }
        self.names.insert(name.to_string());
        self.nodes.push(Node {
            name: name.into(),
            op,
            inputs: inputs.to_vec(),
            shape,
        });
        Ok(self.nodes.len() - 1)
    }

    fn declare(&mut self, name: String, shape: Vec<usize>) -> Result<(), GraphError> {
        match self.params.get(&name) {
            Some(old) if *old != shape => Err(GraphError::ParamConflict {
                name,
                a: old.clone(),
                b: shape,
            }),
            _ => {
                self.params.insert(name, shape);
                Ok(())
            }
        }
    }

    /// Whether a node is called `name`.
    pub fn has_name(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// For every node, the nodes that read it.
    pub fn consumers(&self) -> Vec<Vec<NodeId>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for (id, n) in self.nodes.iter().enumerate() {
            for &i in &n.inputs {
                out[i].push(id);
            }
        }
        out
    }
}

/// The full shape of the stored tensors behind a node's parameters, and the
/// names they are stored under ([`Op::params`]). A sliced node declares the
/// whole tensor.
fn param_shapes(op: &Op, inputs: &[Shape]) -> Vec<(String, Vec<usize>)> {
    let Some((params, suffixes)) = op.params() else {
        return vec![];
    };
    // A convolution's or linear layer's first tensor is its weight, the
    // others (bias) have one value per output; a batch norm's all have one
    // per channel.
    let shape = |i: usize| match op {
        Op::Conv {
            out,
            kernel,
            groups,
            ..
        } => {
            let total_out = params.out_slice.map_or(*out, |s| s.total);
            if i == 0 {
                vec![total_out, inputs[0].c / groups, kernel[0], kernel[1]]
            } else {
                vec![total_out]
            }
        }
        Op::Linear { out, .. } if i == 0 => vec![*out, inputs[0].c],
        Op::Linear { out, .. } => vec![*out],
        _ => vec![inputs[0].c],
    };
    suffixes
        .iter()
        .enumerate()
        .map(|(i, suffix)| (format!("{}.{suffix}", params.prefix), shape(i)))
        .collect()
}

fn need(n: usize, inputs: &[Shape]) -> Result<(), String> {
    if inputs.len() == n {
        Ok(())
    } else {
        Err(format!("expects {n} input(s), got {}", inputs.len()))
    }
}

/// The output size of a window on one axis, PyTorch's rule: floor, or with
/// `ceil` rounded up unless the last window would start in the right
/// padding.
fn pooled(
    size: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    ceil: bool,
) -> Result<usize, String> {
    if stride == 0 || kernel == 0 {
        return Err("kernel and stride must be at least 1".into());
    }
    if size + 2 * pad < kernel {
        return Err(format!(
            "input size {size} (padding {pad}) is smaller than the window of {kernel}"
        ));
    }
    let span = size + 2 * pad - kernel;
    let out = if ceil {
        span.div_ceil(stride)
    } else {
        span / stride
    } + 1;
    Ok(if ceil && (out - 1) * stride >= size + pad {
        out - 1
    } else {
        out
    })
}

/// A square pooling window's output shape on `x`.
fn pooled_shape(
    x: Shape,
    kernel: usize,
    stride: usize,
    pad: usize,
    ceil: bool,
) -> Result<Shape, String> {
    if 2 * pad > kernel {
        return Err(format!("padding {pad} exceeds half the kernel {kernel}"));
    }
    Ok(Shape::new(
        x.c,
        pooled(x.h, kernel, stride, pad, ceil)?,
        pooled(x.w, kernel, stride, pad, ceil)?,
    ))
}

/// Shape inference: the output shape of `op` on `inputs`, or why not.
pub fn infer(op: &Op, inputs: &[Shape]) -> Result<Shape, String> {
    match op {
        Op::Input => Err("only the graph's first node is an input".into()),
        Op::Conv {
            out,
            kernel,
            stride,
            pad,
            groups,
            ..
        } => {
            need(1, inputs)?;
            let x = inputs[0];
            if *out == 0 || *groups == 0 {
                return Err(format!(
                    "output channels ({out}) and groups ({groups}) must be at least 1"
                ));
            }
            if !x.c.is_multiple_of(*groups) || !out.is_multiple_of(*groups) {
                return Err(format!(
                    "{} input and {out} output channels are not divisible by {groups} groups",
                    x.c
                ));
            }
            Ok(Shape::new(
                *out,
                pooled(x.h, kernel[0], stride[0], pad[0], false)?,
                pooled(x.w, kernel[1], stride[1], pad[1], false)?,
            ))
        }
        Op::BatchNorm { .. }
        | Op::Relu
        | Op::Sigmoid
        | Op::Clip { .. }
        | Op::HardSigmoid { .. }
        | Op::HardSwish => {
            need(1, inputs)?;
            Ok(inputs[0])
        }
        Op::ChannelShuffle { groups } => {
            need(1, inputs)?;
            if *groups == 0 || !inputs[0].c.is_multiple_of(*groups) {
                return Err(format!(
                    "{} channels are not divisible by {groups} groups",
                    inputs[0].c
                ));
            }
            Ok(inputs[0])
        }
        Op::MaxPool {
            kernel,
            stride,
            pad,
            ceil,
        } => {
            need(1, inputs)?;
            pooled_shape(inputs[0], *kernel, *stride, *pad, *ceil)
        }
        Op::AvgPool {
            kernel,
            stride,
            pad,
            ..
        } => {
            need(1, inputs)?;
            pooled_shape(inputs[0], *kernel, *stride, *pad, false)
        }
        Op::GlobalAvgPool => {
            need(1, inputs)?;
            Ok(Shape::new(inputs[0].c, 1, 1))
        }
        Op::Resize { h, w, .. } => {
            need(1, inputs)?;
            if *h == 0 || *w == 0 {
                return Err("target size must be at least 1x1".into());
            }
            Ok(Shape::new(inputs[0].c, *h, *w))
        }
        Op::Add => {
            need(2, inputs)?;
            if inputs[0] != inputs[1] {
                return Err(format!("shapes differ: {} vs {}", inputs[0], inputs[1]));
            }
            Ok(inputs[0])
        }
        Op::Mul => {
            need(2, inputs)?;
            let (a, b) = (inputs[0], inputs[1]);
            if a == b || (b.c == a.c && b.h == 1 && b.w == 1) {
                Ok(a)
            } else {
                Err(format!("cannot broadcast {b} onto {a}"))
            }
        }
        Op::Concat => {
            if inputs.is_empty() {
                return Err("needs at least one input".into());
            }
            let first = inputs[0];
            if let Some(bad) = inputs.iter().find(|s| s.h != first.h || s.w != first.w) {
                return Err(format!(
                    "spatial sizes differ: {}x{} vs {}x{}",
                    first.h, first.w, bad.h, bad.w
                ));
            }
            Ok(Shape::new(
                inputs.iter().map(|s| s.c).sum(),
                first.h,
                first.w,
            ))
        }
        Op::Slice { start, end } => {
            need(1, inputs)?;
            if start >= end || *end > inputs[0].c {
                return Err(format!(
                    "channels [{start}, {end}) are not inside 0..{}",
                    inputs[0].c
                ));
            }
            Ok(Shape::new(end - start, inputs[0].h, inputs[0].w))
        }
        Op::Flatten => {
            need(1, inputs)?;
            Ok(Shape::new(inputs[0].numel(), 1, 1))
        }
        Op::Linear { out, .. } => {
            need(1, inputs)?;
            if inputs[0].h != 1 || inputs[0].w != 1 {
                return Err(format!("expects a vector, got {}", inputs[0]));
            }
            if *out == 0 {
                return Err("output features must be at least 1".into());
            }
            Ok(Shape::new(*out, 1, 1))
        }
    }
}

#[cfg(test)]
mod tests;
