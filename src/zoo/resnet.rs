//! ResNet-50/101/152 (torchvision v1.5), SE-ResNet (timm) and ResNeXt
//! (grouped, or as explicit branches).

use anyhow::Result;

use super::builder::{bn, conv, head, relu, stem};
use super::spec::{GroupForm, ResNetSpec};
use crate::graph::{ChannelSlice, Graph, NodeId, Op, ParamRef, Shape};

pub fn build(name: &str, spec: &ResNetSpec, classes: usize, input: Shape) -> Result<Graph> {
    let mut g = Graph::new(name, input);
    let mut x = stem(&mut g)?;
    let mut inplanes = 64;
    for (stage, &blocks) in spec.layers.iter().enumerate() {
        let planes = 64 << stage;
        for b in 0..blocks {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let prefix = format!("layer{}.{b}", stage + 1);
            x = bottleneck(&mut g, spec, &prefix, x, inplanes, planes, stride)?;
            inplanes = planes * 4;
        }
    }
    head(&mut g, x, classes)?;
    Ok(g)
}

fn bottleneck(
    g: &mut Graph,
    spec: &ResNetSpec,
    p: &str,
    input: NodeId,
    inplanes: usize,
    planes: usize,
    stride: usize,
) -> Result<NodeId> {
    let width = planes * spec.width_per_group / 64 * spec.groups;
    let out = planes * 4;
    let x = conv(g, &format!("{p}.conv1"), input, width, 1, 1, 1)?;
    let x = bn(g, &format!("{p}.bn1"), x)?;
    let x = relu(g, &format!("{p}.relu1"), x)?;
    let x = match spec.group_form {
        GroupForm::Grouped => conv(g, &format!("{p}.conv2"), x, width, 3, stride, spec.groups)?,
        GroupForm::Branched => {
            branched_conv(g, &format!("{p}.conv2"), x, width, stride, spec.groups)?
        }
    };
    let x = bn(g, &format!("{p}.bn2"), x)?;
    let x = relu(g, &format!("{p}.relu2"), x)?;
    let x = conv(g, &format!("{p}.conv3"), x, out, 1, 1, 1)?;
    let mut x = bn(g, &format!("{p}.bn3"), x)?;
    if let Some(r) = spec.se_reduction {
        x = squeeze_excite(g, &format!("{p}.se"), x, out, r)?;
    }
    let shortcut = if stride != 1 || inplanes != out {
        let s = conv(g, &format!("{p}.downsample.0"), input, out, 1, stride, 1)?;
        bn(g, &format!("{p}.downsample.1"), s)?
    } else {
        input
    };
    let sum = g.add(&format!("{p}.add"), Op::Add, &[x, shortcut])?;
    relu(g, &format!("{p}.relu3"), sum)
}

/// The grouped 3x3 convolution as `groups` branches: slice the channels,
/// convolve each with its slice of the one stored weight, concat.
fn branched_conv(
    g: &mut Graph,
    prefix: &str,
    x: NodeId,
    width: usize,
    stride: usize,
    groups: usize,
) -> Result<NodeId> {
    let cin = g.nodes[x].shape.c / groups;
    let cout = width / groups;
    let mut outs = Vec::with_capacity(groups);
    for i in 0..groups {
        let part = g.add(
            &format!("{prefix}.split{i}"),
            Op::Slice {
                start: i * cin,
                end: (i + 1) * cin,
            },
            &[x],
        )?;
        let op = Op::Conv {
            out: cout,
            kernel: [3; 2],
            stride: [stride; 2],
            pad: [1; 2],
            groups: 1,
            bias: false,
            params: ParamRef {
                prefix: prefix.into(),
                out_slice: Some(ChannelSlice {
                    start: i * cout,
                    len: cout,
                    total: width,
                }),
            },
        };
        outs.push(g.add(&format!("{prefix}.{i}"), op, &[part])?);
    }
    Ok(g.add(&format!("{prefix}.concat"), Op::Concat, &outs)?)
}

/// timm's SE module: mean, `fc1` (1x1 conv with bias), ReLU, `fc2`, sigmoid,
/// channel-wise gate.
fn squeeze_excite(
    g: &mut Graph,
    p: &str,
    x: NodeId,
    channels: usize,
    reduction: usize,
) -> Result<NodeId> {
    let hidden = (channels / reduction).max(1);
    let s = g.add(&format!("{p}.pool"), Op::GlobalAvgPool, &[x])?;
    let fc = |out: usize, name: &str| Op::Conv {
        out,
        kernel: [1; 2],
        stride: [1; 2],
        pad: [0; 2],
        groups: 1,
        bias: true,
        params: ParamRef::whole(format!("{p}.{name}")),
    };
    let s = g.add(&format!("{p}.fc1"), fc(hidden, "fc1"), &[s])?;
    let s = g.add(&format!("{p}.relu"), Op::Relu, &[s])?;
    let s = g.add(&format!("{p}.fc2"), fc(channels, "fc2"), &[s])?;
    let s = g.add(&format!("{p}.gate"), Op::Sigmoid, &[s])?;
    Ok(g.add(&format!("{p}.mul"), Op::Mul, &[x, s])?)
}
