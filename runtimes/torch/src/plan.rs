//! The lowered graph: every node's libtorch call with its weights already on
//! the device ([`Plan`]), the sequential schedule, and the bookkeeping of
//! values every schedule shares ([`gather`], [`release`]).

use std::ffi::c_void;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use tch::{Device as TchDevice, Tensor};

use super::ffi::{self, check};
use super::fuse::{fusions, Fused};
use super::trace::Span;
use speedbench::frameworks::{Optimize, Precision};
use speedbench::graph::weights::Weights;
use speedbench::graph::{Graph, NodeId, Op, ResizeMode, Shape};

/// A graph ready to execute: every node's operation and weights (on the
/// device), wiring and use counts.
pub(super) struct Plan {
    pub(super) names: Vec<String>,
    ops: Vec<Op>,
    /// Per node, the tensors of [`Op::params`], in that order.
    params: Vec<Vec<Tensor>>,
    pub(super) inputs: Vec<Vec<NodeId>>,
    pub(super) consumers: Vec<Vec<NodeId>>,
    /// Per-sample input shape and the number of classes.
    pub(super) input: Shape,
    pub(super) classes: i64,
    /// Run under inference mode (`--optimize default` and `max`), else
    /// only `no_grad`.
    inference: bool,
    /// Input and convolution weights in channels-last layout (`max`).
    channels_last: bool,
    /// The element type of weights and activations (`--precision`).
    pub(super) kind: tch::Kind,
    /// Per node, what it runs: all [`Fused::Plain`] unless the plan fuses
    /// (`max` on the CPU in fp32, [`fuses`]).
    fused: Vec<Fused>,
    /// Per convolution that runs fused, its weight reordered for oneDNN
    /// once, for the input size it was reordered for (the first pass's;
    /// again if the batch changes).
    packed: Vec<Mutex<Option<Packed>>>,
}

/// A convolution weight reordered for oneDNN, and the input size it was
/// reordered for.
type Packed = (Vec<i64>, Tensor);

/// Whether a plan runs convolutions through oneDNN's fused operator with
/// their weights reordered once ([`super::fuse`]): at `max` on the CPU, in
/// float32, where PyTorch's own inference paths (frozen
/// `optimize_for_inference`, Inductor) do the same.
pub(super) fn fuses(level: Optimize, device: TchDevice, kind: tch::Kind) -> bool {
    level.rewrites() && device == TchDevice::Cpu && kind == tch::Kind::Float
}

/// The libtorch element type a precision computes in: bf16 and fp16 are
/// the weights' and activations' own type; TF32 is float32 storage (the
/// tensor-core mode is a CUDA setting, [`super::library::use_tf32`]).
pub(super) fn kind_of(precision: Precision) -> tch::Kind {
    match precision {
        Precision::Fp32 | Precision::Tf32 => tch::Kind::Float,
        Precision::Bf16 => tch::Kind::BFloat16,
        Precision::Fp16 => tch::Kind::Half,
    }
}

/// Autograd off for the calling thread, as far as the level asks.
pub(super) enum GradGuard {
    NoGrad(#[allow(dead_code)] tch::NoGradGuard),
    Inference(*mut c_void),
}

impl Drop for GradGuard {
    fn drop(&mut self) {
        if let GradGuard::Inference(g) = *self {
            // SAFETY: made by sb_inference_mode_enter on this thread (the
            // guard is not Send), freed once.
            unsafe { ffi::sb_inference_mode_exit(g) }
        }
    }
}

/// `t` in channels-last memory format.
fn channels_last(t: &Tensor) -> Result<Tensor> {
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: a live tensor in; on success `out` is a new heap at::Tensor,
    // which `Tensor::from_ptr` takes ownership of.
    check("converting to channels-last", unsafe {
        ffi::sb_channels_last(t.as_ptr() as *mut c_void, &mut out)
    })?;
    Ok(unsafe { Tensor::from_ptr(out as *mut torch_sys::C_tensor) })
}

// SAFETY: after construction a plan is only read. Its tensors are handed to
// libtorch operations as `const at::Tensor&`, which may be read from several
// threads at once (reference counts are atomic).
unsafe impl Sync for Plan {}

pub(super) fn int(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Plan {
    pub(super) fn new(
        graph: &Graph,
        weights: &Weights,
        device: TchDevice,
        level: Optimize,
        precision: Precision,
    ) -> Result<Plan> {
        let channels_last_weights = level.rewrites();
        let kind = kind_of(precision);
        let mut params = Vec::with_capacity(graph.nodes.len());
        for node in &graph.nodes {
            let mut tensors = Vec::new();
            let prefix = node.op.params().map_or("", |(p, _)| p.prefix.as_str());
            for (suffix, t) in weights.params_of(&node.op)? {
                let shape: Vec<i64> = t.shape.iter().map(|&d| int(d)).collect();
                let t = Tensor::f_from_slice(t.data)
                    .and_then(|t| t.f_reshape(shape))
                    .and_then(|t| t.f_to_device(device))
                    .and_then(|t| t.f_to_kind(kind))
                    .with_context(|| format!("uploading {prefix}.{suffix}"))?;
                let t = if channels_last_weights && t.dim() == 4 {
                    channels_last(&t)?
                } else {
                    t
                };
                tensors.push(t);
            }
            params.push(tensors);
        }
        let fused = if fuses(level, device, kind) {
            fusions(graph)
        } else {
            vec![Fused::Plain; graph.nodes.len()]
        };
        Ok(Plan {
            fused,
            packed: graph.nodes.iter().map(|_| Mutex::new(None)).collect(),
            names: graph.nodes.iter().map(|n| n.name.clone()).collect(),
            ops: graph.nodes.iter().map(|n| n.op.clone()).collect(),
            params,
            inputs: graph.nodes.iter().map(|n| n.inputs.clone()).collect(),
            consumers: graph.consumers(),
            input: graph.input(),
            classes: int(graph.num_classes()),
            inference: level != Optimize::None,
            channels_last: channels_last_weights,
            kind,
        })
    }

    /// Autograd off for the calling thread at this plan's level.
    pub(super) fn grad_guard(&self) -> GradGuard {
        if self.inference {
            // SAFETY: no arguments; the guard is freed by `GradGuard::drop`.
            GradGuard::Inference(unsafe { ffi::sb_inference_mode_enter() })
        } else {
            GradGuard::NoGrad(tch::no_grad_guard())
        }
    }

    /// The input as the graph's first value: in the plan's element type,
    /// channels-last at `max`.
    pub(super) fn admit(&self, x: Tensor) -> Result<Tensor> {
        let x = if x.kind() == self.kind {
            x
        } else {
            x.f_to_kind(self.kind)?
        };
        if self.channels_last {
            channels_last(&x)
        } else {
            Ok(x)
        }
    }

    pub(super) fn len(&self) -> usize {
        self.ops.len()
    }

    pub(super) fn output(&self) -> NodeId {
        self.len() - 1
    }

    /// How many times each node's value is read.
    pub(super) fn uses(&self) -> Vec<usize> {
        self.consumers.iter().map(Vec::len).collect()
    }

    /// Runs node `id` on its input values.
    pub(super) fn exec(&self, id: NodeId, x: &[&Tensor]) -> Result<Tensor> {
        self.kernel(id, x)
            .with_context(|| format!("node '{}' ({})", self.names[id], self.ops[id].kind()))
    }

    /// The libtorch call of node `id`, with PyTorch's semantics for each op.
    /// `x` holds as many inputs as the operation takes: the graph checked
    /// that when the node was added ([`speedbench::graph::infer`]).
    fn kernel(&self, id: NodeId, x: &[&Tensor]) -> Result<Tensor> {
        match self.fused[id] {
            Fused::Plain => {}
            Fused::Alias => return Ok(x[0].shallow_clone()),
            Fused::Conv { relu } => return self.conv_pointwise(id, x[0], None, relu),
            Fused::ConvAdd { conv, at, relu } => {
                return self.conv_pointwise(conv, x[at], Some(x[1 - at]), relu)
            }
        }
        let op = &self.ops[id];
        let p = &self.params[id];
        Ok(match op {
            Op::Input => bail!("the input node is not executed"),
            Op::Conv {
                stride,
                pad,
                groups,
                ..
            } => x[0].f_conv2d(
                &p[0],
                p.get(1),
                stride.map(int),
                pad.map(int),
                [1, 1],
                int(*groups),
            )?,
            // Eval mode: running statistics, momentum unused.
            Op::BatchNorm { eps, .. } => x[0].f_batch_norm(
                Some(&p[0]),
                Some(&p[1]),
                Some(&p[2]),
                Some(&p[3]),
                false,
                0.0,
                *eps,
                true,
            )?,
            Op::Relu => x[0].f_relu()?,
            Op::Sigmoid => x[0].f_sigmoid()?,
            Op::Clip { min, max } => x[0].f_clamp(f64::from(*min), f64::from(*max))?,
            Op::HardSigmoid { alpha, beta } => x[0]
                .f_mul_scalar(f64::from(*alpha))?
                .f_add_scalar(f64::from(*beta))?
                .f_clamp(0.0, 1.0)?,
            Op::HardSwish => x[0].f_hardswish()?,
            Op::MaxPool {
                kernel,
                stride,
                pad,
                ceil,
            } => x[0].f_max_pool2d(
                [int(*kernel); 2],
                [int(*stride); 2],
                [int(*pad); 2],
                [1, 1],
                *ceil,
            )?,
            Op::AvgPool {
                kernel,
                stride,
                pad,
                count_include_pad,
            } => x[0].f_avg_pool2d(
                [int(*kernel); 2],
                [int(*stride); 2],
                [int(*pad); 2],
                false,
                *count_include_pad,
                None,
            )?,
            Op::ChannelShuffle { groups } => {
                let s = x[0].size();
                let g = int(*groups);
                x[0].f_reshape([s[0], g, s[1] / g, s[2], s[3]])?
                    .f_transpose(1, 2)?
                    .f_reshape([s[0], s[1], s[2], s[3]])?
            }
            Op::GlobalAvgPool => x[0].f_adaptive_avg_pool2d([1, 1])?,
            Op::Resize { h, w, mode } => {
                let size = [int(*h), int(*w)];
                match mode {
                    ResizeMode::Nearest => x[0].f_upsample_nearest2d(size, None, None)?,
                    ResizeMode::Bilinear => x[0].f_upsample_bilinear2d(size, false, None, None)?,
                }
            }
            Op::Add => x[0].f_add(x[1])?,
            Op::Mul => x[0].f_mul(x[1])?,
            Op::Concat => Tensor::f_cat(x, 1)?,
            Op::Slice { start, end } => x[0].f_narrow(1, int(*start), int(end - start))?,
            // The IR keeps vectors as [N, C, 1, 1].
            Op::Flatten => x[0].f_flatten(1, -1)?.f_unsqueeze(-1)?.f_unsqueeze(-1)?,
            Op::Linear { out, .. } => x[0]
                .f_flatten(1, -1)?
                .f_linear(&p[0], Some(&p[1]))?
                .f_reshape([-1, int(*out), 1, 1])?,
        })
    }

    /// Convolution node `conv` on `x` through oneDNN's fused operator, plus
    /// `other` and then ReLU where asked.
    fn conv_pointwise(
        &self,
        conv: NodeId,
        x: &Tensor,
        other: Option<&Tensor>,
        relu: bool,
    ) -> Result<Tensor> {
        let Op::Conv {
            stride,
            pad,
            groups,
            ..
        } = &self.ops[conv]
        else {
            bail!("executor bug: node #{conv} is fused as a convolution but is not one");
        };
        let weight = self.packed_weight(conv, x, stride[0], pad[0], *groups)?;
        let bias = self.params[conv].get(1);
        let ptr = |t: &Tensor| t.as_ptr() as *mut c_void;
        let mut out: *mut c_void = std::ptr::null_mut();
        // SAFETY: live tensors in (null where absent); on success `out` is a
        // new heap at::Tensor, which `Tensor::from_ptr` takes ownership of.
        check("fused convolution", unsafe {
            ffi::sb_conv_pointwise(
                ptr(x),
                ptr(&weight),
                bias.map_or(std::ptr::null_mut(), ptr),
                other.map_or(std::ptr::null_mut(), ptr),
                int(stride[0]),
                int(pad[0]),
                int(*groups),
                i32::from(relu),
                &mut out,
            )
        })?;
        Ok(unsafe { Tensor::from_ptr(out as *mut torch_sys::C_tensor) })
    }

    /// The weight of convolution `conv` reordered for oneDNN for `x`'s size
    /// (`mkldnn_reorder_conv2d_weight`), once per size.
    fn packed_weight(
        &self,
        conv: NodeId,
        x: &Tensor,
        stride: usize,
        pad: usize,
        groups: usize,
    ) -> Result<Tensor> {
        let size = x.size();
        let mut slot = self.packed[conv]
            .lock()
            .map_err(|_| anyhow!("the packed weight of node #{conv} was poisoned"))?;
        if let Some((packed_for, w)) = slot.as_ref() {
            if *packed_for == size {
                return Ok(w.shallow_clone());
            }
        }
        let w = self.params[conv][0]
            .f_contiguous()?
            .f_to_mkldnn(None)?
            .f_mkldnn_reorder_conv2d_weight(
                [int(pad); 2],
                [int(stride); 2],
                [1, 1],
                int(groups),
                Some(size.as_slice()),
            )?;
        *slot = Some((size, w.shallow_clone()));
        Ok(w)
    }

    /// The IR operation type of node `id`.
    pub(super) fn kind(&self, id: NodeId) -> &'static str {
        self.ops[id].kind()
    }

    /// Runs every node in topological order on the calling thread (and, on
    /// CUDA, its current stream), freeing each value after its last use;
    /// with `spans`, records each node's start and end on the host clock
    /// (on the CPU, where the host waits for each operation).
    pub(super) fn run_sequential(
        &self,
        input: Tensor,
        mut spans: Option<&mut Vec<Span>>,
    ) -> Result<Tensor> {
        let mut values: Vec<Option<Tensor>> = (0..self.len()).map(|_| None).collect();
        let mut uses = self.uses();
        let origin = Instant::now();
        values[0] = Some(self.admit(input)?);
        for id in 1..self.len() {
            let y = {
                let x = gather(&values, &self.inputs[id])?;
                let start = Instant::now();
                let y = self.exec(id, &x)?;
                if let Some(spans) = spans.as_deref_mut() {
                    spans.push(Span::host(id, 0, origin, start, Instant::now()));
                }
                y
            };
            release(&mut values, &mut uses, &self.inputs[id]);
            values[id] = Some(y);
        }
        values[self.output()]
            .take()
            .context("the graph produced no output")
    }
}

/// The input values of a node, by reference.
pub(super) fn gather<'a>(
    values: &'a [Option<Tensor>],
    inputs: &[NodeId],
) -> Result<Vec<&'a Tensor>> {
    inputs
        .iter()
        .map(|&i| {
            values[i]
                .as_ref()
                .with_context(|| format!("executor bug: value of node #{i} is missing"))
        })
        .collect()
}

/// Counts one use of each input and frees the values no one reads any more.
pub(super) fn release(values: &mut [Option<Tensor>], uses: &mut [usize], inputs: &[NodeId]) {
    for &i in inputs {
        uses[i] -= 1;
        if uses[i] == 0 {
            values[i] = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::diamond;

    #[test]
    fn levels_set_layout_and_autograd_mode() {
        let g = diamond();
        let w = Weights::seeded(&g, 1);
        let conv_weight = |p: &Plan| p.params[1][0].shallow_clone();
        let none = Plan::new(&g, &w, TchDevice::Cpu, Optimize::None, Precision::Fp32).unwrap();
        let max = Plan::new(&g, &w, TchDevice::Cpu, Optimize::Max, Precision::Fp32).unwrap();
        // [4, 3, 3, 3] weights: channels-last strides only at max
        assert!(conv_weight(&none).is_contiguous());
        assert!(!conv_weight(&max).is_contiguous());
        assert_eq!(conv_weight(&max).stride()[1], 1);
        let x = Tensor::zeros([1, 3, 12, 12], (tch::Kind::Float, TchDevice::Cpu));
        assert_eq!(max.admit(x.shallow_clone()).unwrap().stride()[1], 1);
        assert!(none.admit(x).unwrap().is_contiguous());
        // inference mode at default and max, no_grad only at none
        let made_under = |p: &Plan| {
            let _g = p.grad_guard();
            Tensor::ones([2], (tch::Kind::Float, TchDevice::Cpu)).is_inference()
        };
        assert!(!made_under(&none));
        assert!(made_under(&max));
        let default =
            Plan::new(&g, &w, TchDevice::Cpu, Optimize::Default, Precision::Fp32).unwrap();
        assert!(made_under(&default));
        // the guard is gone with its scope
        assert!(!Tensor::ones([2], (tch::Kind::Float, TchDevice::Cpu)).is_inference());
    }

    #[test]
    fn max_on_the_cpu_fuses_and_computes_what_default_does() {
        let g = diamond();
        let w = Weights::seeded(&g, 3);
        let plan = |level| Plan::new(&g, &w, TchDevice::Cpu, level, Precision::Fp32).unwrap();
        let (default, max) = (plan(Optimize::Default), plan(Optimize::Max));
        assert!(default.fused.iter().all(|f| *f == Fused::Plain));
        assert!(max.fused.iter().any(|f| matches!(f, Fused::ConvAdd { .. })));
        // a second batch size reorders the weights again and still agrees
        for batch in [2, 3, 2] {
            let x = Tensor::randn([batch, 3, 12, 12], (tch::Kind::Float, TchDevice::Cpu));
            let run = |p: &Plan| {
                let _g = p.grad_guard();
                p.run_sequential(x.shallow_clone(), None).unwrap()
            };
            let (a, b) = (run(&default), run(&max));
            assert_eq!(a.size(), b.size());
            let diff = (&a - &b).abs().max().double_value(&[]);
            let scale = a.abs().max().double_value(&[]);
            assert!(
                diff <= 1e-5 * scale,
                "batch {batch}: {diff} against {scale}"
            );
        }
        let packed = max.packed.iter().filter(|m| m.lock().unwrap().is_some());
        assert_eq!(packed.count(), 4, "every convolution of the diamond packed");
    }

    #[test]
    fn only_max_on_the_cpu_in_float32_fuses() {
        use tch::Kind::{BFloat16, Float};
        assert!(fuses(Optimize::Max, TchDevice::Cpu, Float));
        assert!(fuses(Optimize::CudaGraph, TchDevice::Cpu, Float));
        assert!(!fuses(Optimize::Default, TchDevice::Cpu, Float));
        assert!(!fuses(Optimize::Max, TchDevice::Cuda(0), Float));
        assert!(!fuses(Optimize::Max, TchDevice::Cpu, BFloat16));
    }
}
