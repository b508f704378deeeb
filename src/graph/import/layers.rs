//! The layers of an imported graph: convolutions, pooling windows, the
//! mean over the image, fully connected layers and resizes, each mapped
//! with PyTorch's semantics or refused.

use anyhow::{bail, Context, Result};

use super::konst::{self, Data, Konst};
use super::ops::Attrs;
use super::{Importer, Val};
use crate::graph::onnx_proto::NodeProto;
use crate::graph::{Op, ParamRef, ResizeMode};

fn square(name: &str, v: &[i64]) -> Result<usize> {
    match v {
        [x, rest @ ..] if rest.iter().all(|y| y == x) => {
            konst::dim(*x, &format!("attribute '{name}'"))
        }
        _ => bail!("attribute '{name}' = {v:?}: only equal values are supported here"),
    }
}

fn window(a: &Attrs, with_dilations: bool) -> Result<Window> {
    if a.string("auto_pad", "NOTSET") != "NOTSET" && a.string("auto_pad", "NOTSET") != "VALID" {
        bail!(
            "attribute 'auto_pad' = {}: only explicit pads are supported",
            a.string("auto_pad", "")
        );
    }
    let kernel = a
        .ints("kernel_shape")
        .context("attribute 'kernel_shape' is missing")?;
    if with_dilations {
        if let Some(d) = a.ints("dilations").filter(|d| d.iter().any(|&x| x != 1)) {
            bail!("attribute 'dilations' = {d:?}: only 1 is supported");
        }
    }
    a.only("storage_order", 0)?;
    Ok(Window {
        kernel: square("kernel_shape", &kernel)?,
        stride: square("strides", &a.ints("strides").unwrap_or(vec![1, 1]))?,
        pad: square("pads", &a.ints("pads").unwrap_or(vec![0; 4]))?,
        ceil: a.int("ceil_mode", 0) == 1,
    })
}

/// Pads `[top, left, bottom, right]` as `[h, w]`, the same on both sides.
fn symmetric_pads(p: &[i64]) -> Result<[usize; 2]> {
    match p {
        [t, l, b, r] if t == b && l == r => Ok([
            konst::dim(*t, "attribute 'pads'")?,
            konst::dim(*l, "attribute 'pads'")?,
        ]),
        [] => Ok([0, 0]),
        _ => bail!("attribute 'pads' = {p:?}: only the same padding on both sides is supported"),
    }
}

fn pair(name: &str, v: Option<Vec<i64>>, default: usize) -> Result<[usize; 2]> {
    match v.as_deref() {
        None => Ok([default; 2]),
        Some([h, w]) if *h > 0 && *w > 0 => Ok([konst::dim(*h, name)?, konst::dim(*w, name)?]),
        Some(v) => bail!("attribute '{name}' = {v:?}: expected two positive values"),
    }
}

/// The floor-mode output size of a window (PyTorch's and ONNX's).
fn out_size(size: usize, k: usize, s: usize, p: usize, ceil: bool) -> usize {
    let span = (size + 2 * p).saturating_sub(k);
    let mut o = if ceil { span.div_ceil(s) } else { span / s } + 1;
    // The last window must start inside the input or its left padding.
    if ceil && (o - 1) * s >= size + p {
        o -= 1;
    }
    o
}

/// A square window: `kernel_shape`, `strides` and `pads` of a pooling node,
/// each the same on both axes (and pads on both sides).
struct Window {
    kernel: usize,
    stride: usize,
    pad: usize,
    ceil: bool,
}

impl Importer {
    pub(super) fn conv(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
        let auto = a.string("auto_pad", "NOTSET");
        if auto != "NOTSET" && auto != "VALID" {
            bail!("attribute 'auto_pad' = {auto}: only explicit pads are supported");
        }
        if let Some(d) = a.ints("dilations").filter(|d| d.iter().any(|&x| x != 1)) {
            bail!("attribute 'dilations' = {d:?}: only 1 is supported");
        }
        let (x, is_vec) = self.act(n, 0)?;
        if is_vec {
            bail!("its input is a vector, not a feature map");
        }
        let w = self.konst(n, 1)?;
        let [out, _, kh, kw] = w.dims.as_slice() else {
            bail!(
                "weight has shape {:?}; expected [out, in/groups, kh, kw]",
                w.dims
            );
        };
        let kernel = [*kh, *kw];
        if let Some(k) = a.ints("kernel_shape") {
            if k != [*kh as i64, *kw as i64] {
                bail!("attribute 'kernel_shape' = {k:?} differs from the weight's {kernel:?}");
            }
        }
        let groups = a.int("group", 1);
        if groups < 1 {
            bail!("attribute 'group' = {groups}: expected at least 1");
        }
        let c_in = self.graph.nodes[x].shape.c;
        if w.dims[1] as i64 * groups != c_in as i64 {
            bail!(
                "weight has shape {:?}; {c_in} input channels in {groups} group(s) need [out, {}, kh, kw]",
                w.dims,
                c_in as i64 / groups
            );
        }
        let bias = n.input.get(2).is_some_and(|s| !s.is_empty());
        let name = self.unique(&n.name);
        let op = Op::Conv {
            out: *out,
            kernel,
            stride: pair("strides", a.ints("strides"), 1)?,
            pad: symmetric_pads(&a.ints("pads").unwrap_or_default())?,
            groups: konst::dim(groups, "attribute 'group'")?,
            bias,
            params: ParamRef::whole(name.clone()),
        };
        let id = self.graph.add(&name, op, &[x])?;
        let mut tensors = vec![("weight", w.as_floats()?)];
        if bias {
            tensors.push(("bias", self.konst(n, 2)?.as_floats()?));
        }
        self.store(&name, &tensors)?;
        Ok(Val::Map(id))
    }

    pub(super) fn pool(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
        let max = n.op_type == "MaxPool";
        let w = window(a, max)?;
        if n.output.len() > 1 && n.output[1..].iter().any(|o| !o.is_empty()) {
            bail!("its indices output is used; only the pooled values are supported");
        }
        let (x, is_vec) = self.act(n, 0)?;
        if is_vec {
            bail!("its input is a vector, not a feature map");
        }
        let s = self.graph.nodes[x].shape;
        let op = if max {
            Op::MaxPool {
                kernel: w.kernel,
                stride: w.stride,
                pad: w.pad,
                ceil: w.ceil,
            }
        } else {
            // ceil_mode changes which windows an average counts; it is read
            // only where it gives the floor mode's size.
            let same = |d: usize| {
                out_size(d, w.kernel, w.stride, w.pad, true)
                    == out_size(d, w.kernel, w.stride, w.pad, false)
            };
            if w.ceil && !(same(s.h) && same(s.w)) {
                bail!("attribute 'ceil_mode' = 1 adds a partial window here; only windows inside the padded input are supported");
            }
            Op::AvgPool {
                kernel: w.kernel,
                stride: w.stride,
                pad: w.pad,
                count_include_pad: a.int("count_include_pad", 0) == 1,
            }
        };
        let name = self.unique(&n.name);
        Ok(Val::Map(self.graph.add(&name, op, &[x])?))
    }

    pub(super) fn reduce_mean(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
        let axes = super::shapes::sorted_axes(&self.axes(n, a)?, 4)?;
        if axes != [2, 3] {
            bail!("attribute 'axes' = {axes:?}: only the mean over height and width (2, 3) is supported");
        }
        let (x, is_vec) = self.act(n, 0)?;
        if is_vec {
            bail!("its input is a vector, not a feature map");
        }
        let name = self.unique(&n.name);
        let id = self.graph.add(&name, Op::GlobalAvgPool, &[x])?;
        if a.int("keepdims", 1) == 1 {
            return Ok(Val::Map(id));
        }
        let flat = self.unique(&format!("{name}.flatten"));
        Ok(Val::Vector(self.graph.add(&flat, Op::Flatten, &[id])?))
    }

    pub(super) fn gemm(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
        a.only("transA", 0)?;
        for attr in ["alpha", "beta"] {
            let v = a.float(attr, 1.0);
            if v != 1.0 {
                bail!("attribute '{attr}' = {v}: only 1 is supported");
            }
        }
        let x = self.vector(n, 0)?;
        let w = self.konst(n, 1)?;
        let transposed = a.int("transB", 0) == 1;
        let out = if transposed {
            w.dims[0]
        } else {
            *w.dims.get(1).unwrap_or(&0)
        };
        let bias = if n.input.get(2).is_some_and(|s| !s.is_empty()) {
            let b = self.konst(n, 2)?;
            if b.len() != out {
                bail!("its bias C has {} values; the layer has {out} outputs (a broadcast C is not supported)", b.len());
            }
            b
        } else {
            Konst {
                dims: vec![out],
                data: Data::F(vec![0.0; out]),
            }
        };
        Ok(Val::Vector(self.linear(&n.name, x, &w, transposed, &bias)?))
    }

    /// `Resize` in the two modes the IR lowers exactly: nearest by an
    /// integer factor (asymmetric, floor) and bilinear with half-pixel
    /// centres.
    pub(super) fn resize(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
        let (x, is_vec) = self.act(n, 0)?;
        if is_vec {
            bail!("its input is a vector, not a feature map");
        }
        let s = self.graph.nodes[x].shape;
        // Upsample: scales is input 1; Resize: roi, scales, sizes.
        let (scales_at, sizes_at) = if n.op_type == "Upsample" {
            (1, usize::MAX)
        } else {
            (2, 3)
        };
        let (h, w) = if self.is_const(n, sizes_at) && !self.konst(n, sizes_at)?.is_empty() {
            let v = self.konst(n, sizes_at)?.as_ints()?;
            match v.as_slice() {
                [_, _, h, w] | [h, w] => (konst::dim(*h, "sizes")?, konst::dim(*w, "sizes")?),
                _ => bail!("sizes {v:?}: expected four values"),
            }
        } else {
            let v = self.konst(n, scales_at)?.as_floats()?;
            let [_, _, sh, sw] = v.as_slice() else {
                bail!("scales {v:?}: expected four values");
            };
            (
                konst::dim((s.h as f32 * sh).floor() as i64, "the resized height")?,
                konst::dim((s.w as f32 * sw).floor() as i64, "the resized width")?,
            )
        };
        let mode = a.string("mode", "nearest");
        let ctm = a.string("coordinate_transformation_mode", "half_pixel");
        if a.int("antialias", 0) != 0 {
            bail!("attribute 'antialias' = 1 is not supported");
        }
        let mode = match mode.as_str() {
            "nearest" => {
                let nearest = a.string("nearest_mode", "round_prefer_floor");
                let whole = h % s.h == 0 && w % s.w == 0 && h >= s.h && w >= s.w;
                if n.op_type == "Resize" && (ctm != "asymmetric" || nearest != "floor") {
                    bail!("nearest resize with coordinate_transformation_mode '{ctm}' and nearest_mode '{nearest}': only 'asymmetric' with 'floor' is supported");
                }
                if !whole {
                    bail!("nearest resize from {}x{} to {h}x{w}: only whole up-sampling factors are supported", s.h, s.w);
                }
                ResizeMode::Nearest
            }
            "linear" | "bilinear" if ctm == "half_pixel" || (ctm == "pytorch_half_pixel" && h > 1 && w > 1) => ResizeMode::Bilinear,
            other => bail!("resize mode '{other}' with coordinate_transformation_mode '{ctm}' is not supported (nearest asymmetric floor and linear half_pixel are)"),
        };
        let name = self.unique(&n.name);
        Ok(Val::Map(self.graph.add(
            &name,
            Op::Resize { h, w, mode },
            &[x],
        )?))
    }
}
