//! Lowering the IR into a frozen TensorFlow inference graph with the crate's
//! operation builder (`Graph::new_operation`, raw TensorFlow ops; no GraphDef
//! is written). Weights become `Const` operations.
//!
//! Layout: TensorFlow's CPU `Conv2D` takes NHWC only, so on the CPU the graph
//! works in NHWC (the NCHW input is transposed once inside the graph, callers
//! still give NCHW); on the GPU it stays NCHW. Filters are transposed on the
//! host from PyTorch's OIHW to TensorFlow's HWIO (the same for both layouts).
//!
//! Every IR node becomes a TensorFlow operation of the same name; helper
//! operations (constants, transposes, reshapes) are named `<node>/<what>`.
//! The output `<last node>/logits` is `[N, classes]`.

use anyhow::{anyhow, bail, Context, Result};
use tensorflow::{
    DataType, Graph as TfGraph, Operation, OperationDescription, Output, Shape as TfShape, Tensor,
};

use speedbench::graph::weights::Weights;
use speedbench::graph::{Graph, Op, ResizeMode};

mod pool;

/// Memory order of the 4-D activations inside the TensorFlow graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Nhwc,
    Nchw,
}

impl Layout {
    fn format(self) -> &'static str {
        match self {
            Layout::Nhwc => "NHWC",
            Layout::Nchw => "NCHW",
        }
    }

    /// Four per-axis values given as (n, c, h, w), in this layout's order.
    fn order<T>(self, n: T, c: T, h: T, w: T) -> [T; 4] {
        match self {
            Layout::Nhwc => [n, h, w, c],
            Layout::Nchw => [n, c, h, w],
        }
    }

    fn spatial_axes(self) -> [i32; 2] {
        match self {
            Layout::Nhwc => [1, 2],
            Layout::Nchw => [2, 3],
        }
    }

    fn channel_axis(self) -> i32 {
        match self {
            Layout::Nhwc => 3,
            Layout::Nchw => 1,
        }
    }
}

/// Permutation taking an NCHW tensor to NHWC, and back.
const TO_NHWC: [i32; 4] = [0, 2, 3, 1];
const TO_NCHW: [i32; 4] = [0, 3, 1, 2];

/// A lowered network: its graph, the NCHW input placeholder, the logits.
pub struct Lowered {
    pub graph: TfGraph,
    pub input: Operation,
    pub output: Operation,
}

/// Adds operations to a TensorFlow graph, all on one device.
struct Builder<'a> {
    tf: TfGraph,
    device: &'a str,
    layout: Layout,
    kernels: Kernels,
}

/// Which CPU kernels the graph will run on: grappler fuses differently for
/// each ([`speedbench::frameworks::tf_cpu`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// oneDNN's, or a GPU's: every convolution is written plainly
    /// (Conv2D, then BiasAdd or FusedBatchNormV3) for grappler to fuse.
    Fusing,
    /// TensorFlow's own Eigen kernels on the CPU. Grappler's remapper fuses
    /// Conv2D + BiasAdd or FusedBatchNorm (+ Relu) into `_FusedConv2D`,
    /// which has no grouped form on Eigen ("Fused conv implementation does
    /// not support grouped convolutions for now"), and the remapper does
    /// not check for groups. So a grouped convolution's bias is an AddV2
    /// of a per-channel constant, and a batch norm right after it a Mul and
    /// an AddV2 of its folded scale and shift: the same function, in
    /// operations the remapper leaves alone on Eigen (its bias-like-Add
    /// pattern is oneDNN's only). Ungrouped convolutions fuse as before.
    Eigen,
}

fn dims_u64(shape: &[usize]) -> Vec<u64> {
    shape.iter().map(|&d| d as u64).collect()
}

fn int(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| anyhow!("{v} does not fit a TensorFlow int32"))
}

impl Builder<'_> {
    /// One operation: type, name, inputs, and its attributes set by `attrs`.
    fn op(
        &mut self,
        ty: &str,
        name: &str,
        inputs: &[Output],
        attrs: impl FnOnce(&mut OperationDescription<'_>) -> tensorflow::Result<()>,
    ) -> Result<Output> {
        let mut d = self
            .tf
            .new_operation(ty, name)
            .with_context(|| format!("TensorFlow operation name '{name}'"))?;
        d.set_device(self.device)
            .with_context(|| format!("device '{}'", self.device))?;
        for i in inputs {
            d.add_input(i.clone());
        }
        let op = attrs(&mut d)
            .and_then(|()| d.finish())
            .map_err(|e| anyhow!("TensorFlow {ty} '{name}': {e}"))?;
        Ok(op.into())
    }

    /// A float operation whose only attribute is `T`.
    fn simple(&mut self, ty: &str, name: &str, inputs: &[Output]) -> Result<Output> {
        self.op(ty, name, inputs, |d| {
            d.set_attr_type("T", DataType::Float)?;
            Ok(())
        })
    }

    fn constant<T: tensorflow::TensorType>(
        &mut self,
        name: &str,
        dims: &[u64],
        values: &[T],
    ) -> Result<Output> {
        let t = Tensor::<T>::new(dims)
            .with_values(values)
            .map_err(|e| anyhow!("constant '{name}' of shape {dims:?}: {e}"))?;
        self.op("Const", name, &[], |d| {
            d.set_attr_type("dtype", T::data_type())?;
            d.set_attr_tensor("value", t)
        })
    }

    fn float_vec(&mut self, name: &str, values: &[f32]) -> Result<Output> {
        self.constant(name, &[values.len() as u64], values)
    }

    fn int_vec(&mut self, name: &str, values: &[i32]) -> Result<Output> {
        self.constant(name, &[values.len() as u64], values)
    }

    fn transpose(&mut self, name: &str, x: &Output, perm: [i32; 4]) -> Result<Output> {
        let p = self.int_vec(&format!("{name}/perm"), &perm)?;
        self.op("Transpose", name, &[x.clone(), p], |d| {
            d.set_attr_type("T", DataType::Float)?;
            d.set_attr_type("Tperm", DataType::Int32)?;
            Ok(())
        })
    }

    fn reshape(&mut self, name: &str, x: &Output, shape: &[i32]) -> Result<Output> {
        let s = self.int_vec(&format!("{name}/shape"), shape)?;
        self.op("Reshape", name, &[x.clone(), s], |d| {
            d.set_attr_type("T", DataType::Float)?;
            d.set_attr_type("Tshape", DataType::Int32)?;
            Ok(())
        })
    }

    /// `x + v` for a per-channel vector `v`, as AddV2 (broadcast over the
    /// last axis: NHWC only).
    fn channel_add(&mut self, name: &str, x: &Output, v: &[f32]) -> Result<Output> {
        let c = self.float_vec(&format!("{name}/value"), v)?;
        self.simple("AddV2", name, &[x.clone(), c])
    }

    /// `x * v` for a per-channel vector `v` (NHWC only).
    fn channel_mul(&mut self, name: &str, x: &Output, v: &[f32]) -> Result<Output> {
        let c = self.float_vec(&format!("{name}/value"), v)?;
        self.simple("Mul", name, &[x.clone(), c])
    }

    /// Whether a grouped convolution must stay out of grappler's fusions.
    fn unfused(&self, groups: usize) -> bool {
        groups > 1 && self.kernels == Kernels::Eigen && self.layout == Layout::Nhwc
    }

    /// `min(max(x, lo), hi)`.
    fn clip(&mut self, name: &str, x: &Output, lo: f32, hi: f32) -> Result<Output> {
        let lo = self.constant(&format!("{name}/min"), &[], &[lo])?;
        let hi = self.constant(&format!("{name}/max"), &[], &[hi])?;
        self.simple("ClipByValue", name, &[x.clone(), lo, hi])
    }

    /// `clip(alpha * x + beta, 0, 1)`.
    fn hard_sigmoid(&mut self, name: &str, x: &Output, alpha: f32, beta: f32) -> Result<Output> {
        let a = self.constant(&format!("{name}/alpha"), &[], &[alpha])?;
        let scaled = self.simple("Mul", &format!("{name}/scaled"), &[x.clone(), a])?;
        let bias = self.constant(&format!("{name}/beta"), &[], &[beta])?;
        let shifted = self.simple("AddV2", &format!("{name}/shifted"), &[scaled, bias])?;
        self.clip(name, &shifted, 0.0, 1.0)
    }

    fn bias_add(&mut self, name: &str, x: &Output, bias: &[f32]) -> Result<Output> {
        let b = self.float_vec(&format!("{name}/bias"), bias)?;
        let format = self.layout.format();
        self.op(
            "BiasAdd",
            &format!("{name}/bias_add"),
            &[x.clone(), b],
            |d| {
                d.set_attr_type("T", DataType::Float)?;
                d.set_attr_string("data_format", format)?;
                Ok(())
            },
        )
    }
}

/// PyTorch's OIHW filter `[o, i, kh, kw]` as TensorFlow's HWIO
/// `[kh, kw, i, o]`.
fn oihw_to_hwio(data: &[f32], o: usize, i: usize, [kh, kw]: [usize; 2]) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for oc in 0..o {
        for ic in 0..i {
            for y in 0..kh {
                for x in 0..kw {
                    out[((y * kw + x) * i + ic) * o + oc] = data[((oc * i + ic) * kh + y) * kw + x];
                }
            }
        }
    }
    out
}

/// Builds the TensorFlow graph of `g` with weights `w`, every operation on
/// `device` ("" lets TensorFlow choose), activations in `layout`.
pub fn lower(
    g: &Graph,
    w: &Weights,
    layout: Layout,
    device: &str,
    kernels: Kernels,
) -> Result<Lowered> {
    let mut b = Builder {
        tf: TfGraph::new(),
        device,
        layout,
        kernels,
    };
    let x = g.input();
    let input = b.op("Placeholder", &g.nodes[0].name, &[], |d| {
        d.set_attr_type("dtype", DataType::Float)?;
        d.set_attr_shape(
            "shape",
            &TfShape::from(Some(vec![
                None,
                Some(x.c as i64),
                Some(x.h as i64),
                Some(x.w as i64),
            ])),
        )?;
        Ok(())
    })?;
    let first = match layout {
        Layout::Nchw => input.clone(),
        Layout::Nhwc => b.transpose(&format!("{}/nhwc", g.nodes[0].name), &input, TO_NHWC)?,
    };
    let mut outs: Vec<Output> = vec![first];
    for n in &g.nodes[1..] {
        let y = lower_node(&mut b, g, w, n, &outs).with_context(|| {
            format!("lowering node '{}' ({}) to TensorFlow", n.name, n.op.kind())
        })?;
        outs.push(y);
    }
    let last = &g.nodes[g.output()];
    let logits = b.reshape(
        &format!("{}/logits", last.name),
        &outs[g.output()],
        &[-1, int(last.shape.numel())?],
    )?;
    Ok(Lowered {
        graph: b.tf,
        input: input.operation,
        output: logits.operation,
    })
}

fn lower_node(
    b: &mut Builder,
    g: &Graph,
    w: &Weights,
    n: &speedbench::graph::Node,
    outs: &[Output],
) -> Result<Output> {
    let layout = b.layout;
    let format = layout.format();
    let name = n.name.as_str();
    let ins: Vec<Output> = n.inputs.iter().map(|&i| outs[i].clone()).collect();
    let in_shape = n.inputs.first().map(|&i| g.nodes[i].shape);
    // The node's tensors in the order of `Op::params`: [weight, bias] or a
    // batch norm's four.
    let params = w.params_of(&n.op)?;
    Ok(match &n.op {
        Op::Input => bail!("only the graph's first node may be an input"),
        Op::Conv {
            out,
            kernel,
            stride,
            pad,
            groups,
            bias,
            ..
        } => {
            let c_in = in_shape.map_or(0, |s| s.c) / groups;
            let wt = &params[0].1;
            let [kh, kw] = *kernel;
            if wt.shape != [*out, c_in, kh, kw] {
                bail!(
                    "weight is {:?}, expected {:?}",
                    wt.shape,
                    [*out, c_in, kh, kw]
                );
            }
            let hwio = oihw_to_hwio(wt.data, *out, c_in, *kernel);
            let filter = b.constant(
                &format!("{name}/weight"),
                &dims_u64(&[kh, kw, c_in, *out]),
                &hwio,
            )?;
            let strides = layout.order(1, 1, stride[0] as i64, stride[1] as i64);
            let [ph, pw] = pad.map(|p| p as i64);
            let paddings = layout.order([0, 0], [0, 0], [ph, ph], [pw, pw]).concat();
            let conv = b.op("Conv2D", name, &[ins[0].clone(), filter], |d| {
                d.set_attr_type("T", DataType::Float)?;
                d.set_attr_int_list("strides", &strides)?;
                d.set_attr_string("data_format", format)?;
                if ph == 0 && pw == 0 {
                    d.set_attr_string("padding", "VALID")?;
                } else {
                    d.set_attr_string("padding", "EXPLICIT")?;
                    d.set_attr_int_list("explicit_paddings", &paddings)?;
                }
                Ok(())
            })?;
            match (*bias, b.unfused(*groups)) {
                (true, true) => {
                    b.channel_add(&format!("{name}/bias_add"), &conv, params[1].1.data)?
                }
                (true, false) => b.bias_add(name, &conv, params[1].1.data)?,
                (false, _) => conv,
            }
        }
        Op::BatchNorm { eps, .. } if after_grouped_conv(g, n).is_some_and(|k| b.unfused(k)) => {
            // (x - mean) / sqrt(var + eps) * gamma + beta as x * scale + shift
            let [gamma, beta, mean, var] = [0, 1, 2, 3].map(|i| params[i].1.data);
            let scale: Vec<f32> = gamma
                .iter()
                .zip(var)
                .map(|(g, v)| g / (v + *eps as f32).sqrt())
                .collect();
            let shift: Vec<f32> = beta
                .iter()
                .zip(mean)
                .zip(&scale)
                .map(|((b, m), s)| b - m * s)
                .collect();
            let scaled = b.channel_mul(&format!("{name}/scale"), &ins[0], &scale)?;
            b.channel_add(name, &scaled, &shift)?
        }
        Op::BatchNorm { eps, .. } => {
            let mut inputs = vec![ins[0].clone()];
            for (t, v) in &params {
                inputs.push(b.float_vec(&format!("{name}/{t}"), v.data)?);
            }
            let eps = *eps as f32;
            b.op("FusedBatchNormV3", name, &inputs, |d| {
                d.set_attr_type("T", DataType::Float)?;
                d.set_attr_type("U", DataType::Float)?;
                d.set_attr_float("epsilon", eps)?;
                d.set_attr_string("data_format", format)?;
                d.set_attr_bool("is_training", false)?;
                Ok(())
            })?
        }
        Op::Relu => b.simple("Relu", name, &ins)?,
        Op::Sigmoid => b.simple("Sigmoid", name, &ins)?,
        Op::MaxPool { .. } | Op::AvgPool { .. } => {
            let input = in_shape.context("a pool has an input")?;
            let win = pool::Window::of(n, input).context("a pooling node")?;
            match n.op {
                Op::AvgPool {
                    count_include_pad, ..
                } => b.avg_pool(name, &ins[0], &win, count_include_pad)?,
                _ => b.max_pool(name, &ins[0], &win)?,
            }
        }
        Op::Clip { min, max } => b.clip(name, &ins[0], *min, *max)?,
        Op::HardSigmoid { alpha, beta } => b.hard_sigmoid(name, &ins[0], *alpha, *beta)?,
        Op::HardSwish => {
            let gate = b.hard_sigmoid(&format!("{name}/gate"), &ins[0], 1.0 / 6.0, 0.5)?;
            b.simple("Mul", name, &[ins[0].clone(), gate])?
        }
        Op::ChannelShuffle { groups } => {
            let s = n.shape;
            let (g_, c, h, wd) = (int(*groups)?, int(s.c)?, int(s.h)?, int(s.w)?);
            let (five, perm) = match layout {
                Layout::Nchw => ([-1, g_, c / g_, h, wd], [0, 2, 1, 3, 4]),
                Layout::Nhwc => ([-1, h, wd, g_, c / g_], [0, 1, 2, 4, 3]),
            };
            let grouped = b.reshape(&format!("{name}/grouped"), &ins[0], &five)?;
            let p = b.int_vec(&format!("{name}/perm"), &perm)?;
            let swapped = b.op(
                "Transpose",
                &format!("{name}/swapped"),
                &[grouped, p],
                |d| {
                    d.set_attr_type("T", DataType::Float)?;
                    d.set_attr_type("Tperm", DataType::Int32)?;
                    Ok(())
                },
            )?;
            b.reshape(name, &swapped, &layout.order(-1, c, h, wd))?
        }
        Op::GlobalAvgPool => {
            let axes = b.int_vec(&format!("{name}/axes"), &layout.spatial_axes())?;
            b.op("Mean", name, &[ins[0].clone(), axes], |d| {
                d.set_attr_type("T", DataType::Float)?;
                d.set_attr_type("Tidx", DataType::Int32)?;
                d.set_attr_bool("keep_dims", true)?;
                Ok(())
            })?
        }
        Op::Resize { h, w: width, mode } => {
            // The resize ops take NHWC only.
            let x = match layout {
                Layout::Nhwc => ins[0].clone(),
                Layout::Nchw => b.transpose(&format!("{name}/nhwc"), &ins[0], TO_NHWC)?,
            };
            let size = b.int_vec(&format!("{name}/size"), &[int(*h)?, int(*width)?])?;
            let resized_name = match layout {
                Layout::Nhwc => name.to_string(),
                Layout::Nchw => format!("{name}/resize"),
            };
            let y = match mode {
                // Default flags: source index floor(out * in / out_size),
                // PyTorch's nearest for integer factors.
                ResizeMode::Nearest => {
                    b.simple("ResizeNearestNeighbor", &resized_name, &[x, size])?
                }
                ResizeMode::Bilinear => b.op("ResizeBilinear", &resized_name, &[x, size], |d| {
                    d.set_attr_type("T", DataType::Float)?;
                    d.set_attr_bool("half_pixel_centers", true)?;
                    Ok(())
                })?,
            };
            match layout {
                Layout::Nhwc => y,
                Layout::Nchw => b.transpose(name, &y, TO_NCHW)?,
            }
        }
        Op::Add => b.simple("AddV2", name, &ins)?,
        Op::Mul => b.simple("Mul", name, &ins)?,
        Op::Concat if ins.len() == 1 => b.simple("Identity", name, &ins)?,
        Op::Concat => {
            let axis = b.constant(&format!("{name}/axis"), &[], &[layout.channel_axis()])?;
            let count = ins.len() as i64;
            // ConcatV2 takes its values as one list input, then the axis.
            b.op("ConcatV2", name, &[], |d| {
                d.add_input_list(&ins);
                d.add_input(axis);
                d.set_attr_int("N", count)?;
                d.set_attr_type("T", DataType::Float)?;
                d.set_attr_type("Tidx", DataType::Int32)?;
                Ok(())
            })?
        }
        Op::Slice { start, end } => {
            let begin = layout.order(0, int(*start)?, 0, 0);
            let size = layout.order(-1, int(end - start)?, -1, -1);
            let begin = b.int_vec(&format!("{name}/begin"), &begin)?;
            let size = b.int_vec(&format!("{name}/size"), &size)?;
            b.op("Slice", name, &[ins[0].clone(), begin, size], |d| {
                d.set_attr_type("T", DataType::Float)?;
                d.set_attr_type("Index", DataType::Int32)?;
                Ok(())
            })?
        }
        Op::Flatten => {
            // PyTorch flattens in C, H, W order.
            let s = in_shape.context("flatten has no input")?;
            let x = if layout == Layout::Nhwc && s.h * s.w > 1 {
                b.transpose(&format!("{name}/nchw"), &ins[0], TO_NCHW)?
            } else {
                ins[0].clone()
            };
            b.reshape(name, &x, &layout.order(-1, int(s.numel())?, 1, 1))?
        }
        Op::Linear { out, .. } => {
            let c_in = in_shape.map_or(0, |s| s.c);
            let (wt, bias) = (&params[0].1, &params[1].1);
            let x = b.reshape(&format!("{name}/rows"), &ins[0], &[-1, int(c_in)?])?;
            let weight = b.constant(&format!("{name}/weight"), &dims_u64(&wt.shape), wt.data)?;
            let y = b.op("MatMul", &format!("{name}/matmul"), &[x, weight], |d| {
                d.set_attr_type("T", DataType::Float)?;
                d.set_attr_bool("transpose_b", true)?;
                Ok(())
            })?;
            let bias = b.float_vec(&format!("{name}/bias"), bias.data)?;
            let y = b.op("BiasAdd", &format!("{name}/bias_add"), &[y, bias], |d| {
                d.set_attr_type("T", DataType::Float)?;
                Ok(())
            })?;
            b.reshape(name, &y, &layout.order(-1, int(*out)?, 1, 1))?
        }
    })
}

/// The groups of the convolution whose output `n` reads, where it reads
/// a grouped one.
fn after_grouped_conv(g: &Graph, n: &speedbench::graph::Node) -> Option<usize> {
    match g.nodes[*n.inputs.first()?].op {
        Op::Conv { groups, .. } if groups > 1 => Some(groups),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_hwio() {
        // o=2, i=1, k=2: w[o][0][y][x] = 10*o + 2*y + x.
        let w: Vec<f32> = (0..2)
            .flat_map(|o| (0..4).map(move |yx| (10 * o + yx) as f32))
            .collect();
        let h = oihw_to_hwio(&w, 2, 1, [2, 2]);
        // hwio[y][x][0][o]
        assert_eq!(h, vec![0.0, 10.0, 1.0, 11.0, 2.0, 12.0, 3.0, 13.0]);
    }
}
