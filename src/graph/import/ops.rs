//! One ONNX node at a time: folded when its inputs are constants, mapped to
//! an IR node where the IR has the operation, refused otherwise.

use anyhow::{bail, Context, Result};

use super::konst::{self, Data, Konst, BATCH};
use super::{input, Importer, Val};
use crate::graph::onnx_proto::{AttributeProto, NodeProto};
use crate::graph::{NodeId, Op, ParamRef, ResizeMode};

/// Attribute lookups on a node, each naming the attribute in its error.
struct Attrs<'a>(&'a [AttributeProto]);

impl Attrs<'_> {
    fn get(&self, name: &str) -> Option<&AttributeProto> {
        self.0.iter().find(|a| a.name == name)
    }
    fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }
    fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).map_or(default, |a| a.f)
    }
    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }
    fn string(&self, name: &str, default: &str) -> String {
        self.get(name).map_or(default.to_string(), |a| {
            String::from_utf8_lossy(&a.s).into_owned()
        })
    }
    /// An attribute that must hold `want` where present.
    fn only(&self, name: &str, want: i64) -> Result<()> {
        match self.get(name) {
            Some(a) if a.i != want => {
                bail!("attribute '{name}' = {}: only {want} is supported", a.i)
            }
            _ => Ok(()),
        }
    }
}

/// A square window: `kernel_shape`, `strides` and `pads` of a pooling node,
/// each the same on both axes (and pads on both sides).
struct Window {
    kernel: usize,
    stride: usize,
    pad: usize,
    ceil: bool,
}

fn square(name: &str, v: &[i64]) -> Result<usize> {
    match v {
        [x, rest @ ..] if *x >= 0 && rest.iter().all(|y| y == x) => Ok(*x as usize),
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
        [t, l, b, r] if t == b && l == r && *t >= 0 && *l >= 0 => Ok([*t as usize, *l as usize]),
        [] => Ok([0, 0]),
        _ => bail!("attribute 'pads' = {p:?}: only the same padding on both sides is supported"),
    }
}

fn pair(name: &str, v: Option<Vec<i64>>, default: usize) -> Result<[usize; 2]> {
    match v.as_deref() {
        None => Ok([default; 2]),
        Some([h, w]) if *h > 0 && *w > 0 => Ok([*h as usize, *w as usize]),
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

impl Importer {
    /// Maps or folds one node.
    pub(super) fn node(&mut self, n: &NodeProto) -> Result<()> {
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            bail!("operator domain '{}' is not ONNX's own", n.domain);
        }
        let a = Attrs(&n.attribute);
        let all_const = (0..n.input.len())
            .filter(|&i| !n.input[i].is_empty())
            .all(|i| self.is_const(n, i));
        let out = match n.op_type.as_str() {
            "Constant" => Val::Const(self.constant(&a)?),
            "Identity" | "Dropout" => {
                if n.output.len() > 1 && n.output[1..].iter().any(|o| !o.is_empty()) {
                    bail!("its mask output is used; only inference Dropout is supported");
                }
                self.get(input(n, 0)?)?.clone()
            }
            "Shape" => Val::Const(self.shape_of(n)?),
            "Gather" => Val::Const(konst::gather(
                &self.konst(n, 0)?,
                &self.konst(n, 1)?,
                a.int("axis", 0) as usize,
            )?),
            "Unsqueeze" | "Squeeze" if self.is_const(n, 0) => {
                let k = self.konst(n, 0)?;
                Val::Const(self.reshaped_const(n, &a, k)?)
            }
            "Concat" if all_const => {
                let parts: Result<Vec<Konst>> =
                    (0..n.input.len()).map(|i| self.konst(n, i)).collect();
                Val::Const(konst::concat(&parts?)?)
            }
            "Cast" if all_const => {
                let k = self.konst(n, 0)?;
                Val::Const(match a.int("to", 1) {
                    1 | 11 => Konst {
                        dims: k.dims.clone(),
                        data: Data::F(k.as_floats()?),
                    },
                    6 | 7 => Konst {
                        dims: k.dims.clone(),
                        data: Data::I(k.as_ints()?),
                    },
                    t => bail!("attribute 'to' = {t}: only casts to float or int are folded"),
                })
            }
            "Add" | "Sub" | "Mul" | "Div" if all_const => {
                let (x, y) = (self.konst(n, 0)?, self.konst(n, 1)?);
                match (&x.data, &y.data) {
                    (Data::I(_), Data::I(_)) => Val::Const(konst::arith(&n.op_type, &x, &y)?),
                    _ => bail!("float arithmetic on constants is not folded"),
                }
            }
            "Conv" => self.conv(n, &a)?,
            "BatchNormalization" => {
                a.only("training_mode", 0)?;
                if n.output.len() > 1 && n.output[1..].iter().any(|o| !o.is_empty()) {
                    bail!("it outputs running statistics; only inference batch norm is supported");
                }
                let (x, is_vec) = self.act(n, 0)?;
                let name = self.unique(&n.name);
                let op = Op::BatchNorm {
                    eps: f64::from(a.float("epsilon", 1e-5)),
                    params: ParamRef::whole(name.clone()),
                };
                let id = self.graph.add(&name, op, &[x])?;
                let mut tensors = Vec::new();
                for (i, suffix) in crate::graph::BN_TENSORS.iter().enumerate() {
                    tensors.push((*suffix, self.konst(n, i + 1)?.as_floats()?));
                }
                self.store(&name, &tensors)?;
                wrap(id, is_vec)
            }
            "Relu" => self.unary(n, Op::Relu)?,
            "Sigmoid" => self.unary(n, Op::Sigmoid)?,
            "HardSwish" => self.unary(n, Op::HardSwish)?,
            "HardSigmoid" => {
                let op = Op::HardSigmoid {
                    alpha: a.float("alpha", 0.2),
                    beta: a.float("beta", 0.5),
                };
                self.unary(n, op)?
            }
            "Clip" => {
                // Opset 11 on: bounds as optional inputs; before: attributes.
                let bound = |i: usize, attr: &str, default: f32| -> Result<f32> {
                    match n.input.get(i).filter(|s| !s.is_empty()) {
                        Some(_) => self.konst(n, i)?.scalar_f(),
                        None => Ok(a.float(attr, default)),
                    }
                };
                let op = Op::Clip {
                    min: bound(1, "min", f32::NEG_INFINITY)?,
                    max: bound(2, "max", f32::INFINITY)?,
                };
                self.unary(n, op)?
            }
            "Add" | "Mul" => self.binary(n)?,
            "MaxPool" | "AveragePool" => self.pool(n, &a)?,
            "GlobalAveragePool" => self.unary(n, Op::GlobalAvgPool)?,
            "ReduceMean" => self.reduce_mean(n, &a)?,
            "Concat" => self.concat(n, &a)?,
            "Flatten" => {
                let ax = a.int("axis", 1);
                if ax != 1 {
                    bail!("attribute 'axis' = {ax}: only 1 is supported");
                }
                Val::Vector(self.vector(n, 0)?)
            }
            "Reshape" => self.reshape(n, &a)?,
            "Transpose" => self.transpose(n, &a)?,
            "Split" => return self.split(n, &a),
            "Slice" => self.slice(n)?,
            "Gemm" => self.gemm(n, &a)?,
            "MatMul" => {
                let x = self.vector(n, 0)?;
                Val::MatMul {
                    x,
                    weight: self.konst(n, 1)?,
                    node: n.name.clone(),
                }
            }
            "Resize" | "Upsample" => self.resize(n, &a)?,
            op => bail!("operator {op} is not supported (docs/models.md lists what is)"),
        };
        let [o] = n.output.as_slice() else {
            bail!("expected one output, found {}", n.output.len());
        };
        self.values.insert(o.clone(), out);
        Ok(())
    }

    fn constant(&self, a: &Attrs) -> Result<Konst> {
        if let Some(t) = a.get("value").and_then(|v| v.t.as_ref()) {
            return konst::from_proto(t).context("attribute 'value'");
        }
        if let Some(v) = a.get("value_ints") {
            return Ok(Konst::ints(v.ints.clone()));
        }
        if let Some(v) = a.get("value_int") {
            return Ok(Konst {
                dims: vec![],
                data: Data::I(vec![v.i]),
            });
        }
        if let Some(v) = a.get("value_float") {
            return Ok(Konst {
                dims: vec![],
                data: Data::F(vec![v.f]),
            });
        }
        if let Some(v) = a.get("value_floats") {
            return Ok(Konst {
                dims: vec![v.floats.len()],
                data: Data::F(v.floats.clone()),
            });
        }
        bail!("it holds none of the attributes 'value', 'value_ints', 'value_int', 'value_float', 'value_floats'")
    }

    /// `Shape` of a value: its dimensions, the batch as the file has it.
    fn shape_of(&mut self, n: &NodeProto) -> Result<Konst> {
        let v = self.get(input(n, 0)?)?.clone();
        Ok(Konst::ints(self.full(&v)))
    }

    /// `Unsqueeze` or `Squeeze` of a constant: the same elements, new dims.
    fn reshaped_const(&self, n: &NodeProto, a: &Attrs, k: Konst) -> Result<Konst> {
        let axes = match a.ints("axes") {
            Some(v) => v,
            None if n.input.len() > 1 && !n.input[1].is_empty() => self.konst(n, 1)?.as_ints()?,
            None => vec![],
        };
        let mut dims = k.dims.clone();
        if n.op_type == "Unsqueeze" {
            let rank = dims.len() + axes.len();
            let mut at: Vec<usize> = axes
                .iter()
                .map(|&x| konst::axis(x, rank))
                .collect::<Result<_>>()?;
            at.sort_unstable();
            for i in at {
                dims.insert(i, 1);
            }
        } else if axes.is_empty() {
            dims.retain(|&d| d != 1);
        } else {
            let rank = dims.len();
            let mut at: Vec<usize> = axes
                .iter()
                .map(|&x| konst::axis(x, rank))
                .collect::<Result<_>>()?;
            at.sort_unstable();
            for i in at.into_iter().rev() {
                dims.remove(i);
            }
        }
        Ok(Konst { dims, ..k })
    }

    fn unary(&mut self, n: &NodeProto, op: Op) -> Result<Val> {
        let (x, is_vec) = self.act(n, 0)?;
        let keeps_vec = is_vec && !matches!(op, Op::GlobalAvgPool);
        let name = self.unique(&n.name);
        Ok(wrap(self.graph.add(&name, op, &[x])?, keeps_vec))
    }

    /// `Add` or `Mul` of two computed values (a MatMul's bias `Add` makes
    /// a linear layer); a constant operand is refused.
    fn binary(&mut self, n: &NodeProto) -> Result<Val> {
        if n.op_type == "Add" {
            for (m, b) in [(0, 1), (1, 0)] {
                if let (Val::MatMul { x, weight, node }, true) =
                    (self.get(input(n, m)?)?.clone(), self.is_const(n, b))
                {
                    let bias = self.konst(n, b)?;
                    let out = weight.dims.get(1).copied().unwrap_or(0);
                    if bias.len() != out {
                        bail!(
                            "its bias has {} values; the MatMul has {out} outputs",
                            bias.len()
                        );
                    }
                    let name = if n.name.is_empty() {
                        node
                    } else {
                        n.name.clone()
                    };
                    return Ok(Val::Vector(self.linear(&name, x, &weight, false, &bias)?));
                }
            }
        }
        for i in 0..2 {
            if self.is_const(n, i) {
                bail!(
                    "input {i} ('{}') is a constant; {} with a constant is not supported",
                    input(n, i)?,
                    n.op_type
                );
            }
        }
        let (mut x, xv) = self.act(n, 0)?;
        let (mut y, yv) = self.act(n, 1)?;
        if xv != yv {
            bail!("mixes a vector and a feature map");
        }
        // The IR's Mul broadcasts its second input ([C, 1, 1] gates).
        let (sx, sy) = (self.graph.nodes[x].shape, self.graph.nodes[y].shape);
        if n.op_type == "Mul" && sx.h * sx.w == 1 && sy.h * sy.w > 1 {
            std::mem::swap(&mut x, &mut y);
        }
        let op = if n.op_type == "Add" { Op::Add } else { Op::Mul };
        let name = self.unique(&n.name);
        Ok(wrap(self.graph.add(&name, op, &[x, y])?, xv))
    }

    fn conv(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
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
        let bias = n.input.get(2).is_some_and(|s| !s.is_empty());
        let name = self.unique(&n.name);
        let op = Op::Conv {
            out: *out,
            kernel,
            stride: pair("strides", a.ints("strides"), 1)?,
            pad: symmetric_pads(&a.ints("pads").unwrap_or_default())?,
            groups: groups as usize,
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

    fn pool(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
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

    fn reduce_mean(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
        let axes = match a.ints("axes") {
            Some(v) => v,
            None if n.input.len() > 1 => self.konst(n, 1)?.as_ints()?,
            None => vec![],
        };
        let mut axes: Vec<usize> = axes
            .iter()
            .map(|&x| konst::axis(x, 4))
            .collect::<Result<_>>()?;
        axes.sort_unstable();
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

    fn concat(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
        let mut ids = Vec::new();
        let mut kinds = Vec::new();
        for i in 0..n.input.len() {
            let (id, v) = self.act(n, i)?;
            ids.push(id);
            kinds.push(v);
        }
        let rank = if kinds.iter().all(|&v| v) {
            2
        } else if kinds.iter().all(|&v| !v) {
            4
        } else {
            bail!("mixes vectors and feature maps");
        };
        let ax = konst::axis(a.int("axis", 1), rank)?;
        if ax != 1 {
            bail!("attribute 'axis' = {ax}: only the channel axis (1) is supported");
        }
        let name = self.unique(&n.name);
        Ok(wrap(self.graph.add(&name, Op::Concat, &ids)?, rank == 2))
    }

    /// A reshape that flattens, starts or ends a channel shuffle, or keeps
    /// the shape; the batch dimension must stay where it is.
    fn reshape(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
        a.only("allowzero", 0)?;
        let target = self.konst(n, 1)?.as_ints()?;
        let src = self.get(input(n, 0)?)?.clone();
        if let Val::Const(k) = &src {
            let dims = const_dims(&target, &k.dims, k.len())?;
            return Ok(Val::Const(Konst { dims, ..k.clone() }));
        }
        let now = self.full(&src);
        match &src {
            Val::Swapped { x, groups } => {
                let s = self.graph.nodes[*x].shape;
                let dims = per_sample(&target, &now, s.numel())?;
                if dims != [s.c as i64, s.h as i64, s.w as i64] {
                    bail!(
                        "reshapes a channel shuffle to {}; expected [batch, {}, {}, {}]",
                        shape_text(&target),
                        s.c,
                        s.h,
                        s.w
                    );
                }
                let name = self.unique(&n.name);
                let op = Op::ChannelShuffle { groups: *groups };
                return Ok(Val::Map(self.graph.add(&name, op, &[*x])?));
            }
            Val::Grouped { .. } => {
                bail!("reshapes a five-dimensional view again; only a channel shuffle is read")
            }
            _ => {}
        }
        let (node, is_vec) = self.act(n, 0)?;
        let s = self.graph.nodes[node].shape;
        let dims = per_sample(&target, &now, s.numel())?;
        match dims.as_slice() {
            [_] if is_vec => Ok(Val::Vector(node)),
            [_] => {
                let name = self.unique(&n.name);
                Ok(Val::Vector(self.graph.add(&name, Op::Flatten, &[node])?))
            }
            [c, h, w] if !is_vec && [*c, *h, *w] == [s.c as i64, s.h as i64, s.w as i64] => {
                Ok(Val::Map(node))
            }
            [g, _, h, w] if !is_vec && [*h, *w] == [s.h as i64, s.w as i64] => Ok(Val::Grouped {
                x: node,
                groups: *g as usize,
            }),
            _ => bail!(
                "reshape of {} to {} is not supported (flatten, a channel shuffle, or the same shape are)",
                shape_text(&now),
                shape_text(&target)
            ),
        }
    }

    /// The full dimensions of a computed value, batch first.
    fn full(&self, v: &Val) -> Vec<i64> {
        match v {
            Val::Map(id) => {
                let s = self.graph.nodes[*id].shape;
                vec![self.batch, s.c as i64, s.h as i64, s.w as i64]
            }
            Val::Vector(id) => vec![self.batch, self.graph.nodes[*id].shape.c as i64],
            Val::Grouped { x, groups } | Val::Swapped { x, groups } => {
                let s = self.graph.nodes[*x].shape;
                let (g, c) = (*groups as i64, (s.c / groups) as i64);
                let mid = if matches!(v, Val::Grouped { .. }) {
                    [g, c]
                } else {
                    [c, g]
                };
                vec![self.batch, mid[0], mid[1], s.h as i64, s.w as i64]
            }
            Val::MatMul { weight, .. } => vec![self.batch, weight.dims[1] as i64],
            Val::Const(k) => k.dims.iter().map(|&d| d as i64).collect(),
        }
    }

    fn transpose(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
        let perm = a.ints("perm").unwrap_or_default();
        match self.get(input(n, 0)?)?.clone() {
            Val::Grouped { x, groups } if perm == [0, 2, 1, 3, 4] => Ok(Val::Swapped { x, groups }),
            _ => bail!("attribute 'perm' = {perm:?}: only the channel shuffle's transpose (0, 2, 1, 3, 4 of a five-dimensional view) is supported"),
        }
    }

    /// `Split` on channels: one slice node per output.
    fn split(&mut self, n: &NodeProto, a: &Attrs) -> Result<()> {
        let (x, is_vec) = self.act(n, 0)?;
        let rank = if is_vec { 2 } else { 4 };
        let ax = konst::axis(a.int("axis", 0), rank)?;
        if ax != 1 {
            bail!("attribute 'axis' = {ax}: only the channel axis (1) is supported");
        }
        let c = self.graph.nodes[x].shape.c;
        let parts = n.output.len();
        let sizes: Vec<i64> = match (a.ints("split"), n.input.get(1).filter(|s| !s.is_empty())) {
            (Some(v), _) => v,
            (None, Some(_)) => self.konst(n, 1)?.as_ints()?,
            (None, None) if parts > 0 && c % parts == 0 => vec![(c / parts) as i64; parts],
            (None, None) => bail!("{c} channels do not split into {parts} equal parts"),
        };
        if sizes.len() != parts
            || sizes.iter().any(|&s| s <= 0)
            || sizes.iter().sum::<i64>() != c as i64
        {
            bail!("split sizes {sizes:?} do not cover {c} channels in {parts} outputs");
        }
        let mut start = 0;
        for (o, len) in n.output.iter().zip(sizes) {
            let end = start + len as usize;
            let name = self.unique(if o.is_empty() { &n.name } else { o });
            let id = self.graph.add(&name, Op::Slice { start, end }, &[x])?;
            self.values.insert(o.clone(), wrap(id, is_vec));
            start = end;
        }
        Ok(())
    }

    /// `Slice` of constants (shape chains) or of channels of a feature map.
    fn slice(&mut self, n: &NodeProto) -> Result<Val> {
        let starts = self.konst(n, 1)?.as_ints()?;
        let ends = self.konst(n, 2)?.as_ints()?;
        let axes = if self.is_const(n, 3) {
            self.konst(n, 3)?.as_ints()?
        } else {
            (0..starts.len() as i64).collect()
        };
        let steps = if self.is_const(n, 4) {
            self.konst(n, 4)?.as_ints()?
        } else {
            vec![1; starts.len()]
        };
        if steps.iter().any(|&s| s != 1) || axes.len() != 1 || starts.len() != 1 || ends.len() != 1
        {
            bail!("only a slice of one axis with step 1 is supported");
        }
        let clamp = |v: i64, n: usize| -> usize {
            let n = n as i64;
            (if v < 0 { v + n } else { v }).clamp(0, n) as usize
        };
        if let Val::Const(k) = self.get(input(n, 0)?)?.clone() {
            if k.dims.len() != 1 || axes[0] != 0 {
                bail!("only 1-D constants are sliced here");
            }
            let (s, e) = (clamp(starts[0], k.len()), clamp(ends[0], k.len()));
            let idx = Konst::ints((s as i64..e.max(s) as i64).collect());
            return Ok(Val::Const(konst::gather(&k, &idx, 0)?));
        }
        let (x, is_vec) = self.act(n, 0)?;
        let ax = konst::axis(axes[0], if is_vec { 2 } else { 4 })?;
        if ax != 1 {
            bail!("slices axis {ax}; only the channel axis (1) is supported");
        }
        let c = self.graph.nodes[x].shape.c;
        let (start, end) = (clamp(starts[0], c), clamp(ends[0], c));
        let name = self.unique(&n.name);
        Ok(wrap(
            self.graph.add(&name, Op::Slice { start, end }, &[x])?,
            is_vec,
        ))
    }

    fn gemm(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
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
    fn resize(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
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
        let (h, w) = if self.is_const(n, sizes_at) && self.konst(n, sizes_at)?.len() > 0 {
            let v = self.konst(n, sizes_at)?.as_ints()?;
            match v.as_slice() {
                [_, _, h, w] | [h, w] => (*h as usize, *w as usize),
                _ => bail!("sizes {v:?}: expected four values"),
            }
        } else {
            let v = self.konst(n, scales_at)?.as_floats()?;
            let [_, _, sh, sw] = v.as_slice() else {
                bail!("scales {v:?}: expected four values");
            };
            (
                (s.h as f32 * sh).floor() as usize,
                (s.w as f32 * sw).floor() as usize,
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

/// A computed value of node `id`.
fn wrap(id: NodeId, is_vec: bool) -> Val {
    if is_vec {
        Val::Vector(id)
    } else {
        Val::Map(id)
    }
}

fn shape_text(d: &[i64]) -> String {
    let parts: Vec<String> = d
        .iter()
        .map(|&x| {
            if x == BATCH {
                "batch".into()
            } else {
                x.to_string()
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// A reshape's target with `0` (copy) and `-1` (infer) resolved against
/// the current dimensions `now` (batch first) of a value of `per_sample`
/// elements after the batch: the dimensions after the batch. The batch must
/// stay the first dimension.
pub(super) fn per_sample(target: &[i64], now: &[i64], per_sample: usize) -> Result<Vec<i64>> {
    let shown = || shape_text(target);
    let Some((&first, rest)) = target.split_first() else {
        bail!("reshape target [] is empty");
    };
    let per = per_sample as i64;
    let mut dims: Vec<i64> = rest
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if d == 0 {
                now.get(i + 1).copied().unwrap_or(0)
            } else {
                d
            }
        })
        .collect();
    let known: i64 = dims.iter().filter(|&&d| d != -1).product();
    match dims.iter().filter(|&&d| d == -1).count() {
        0 => {}
        1 if first != -1 && known > 0 && per % known == 0 => {
            for d in dims.iter_mut().filter(|d| **d == -1) {
                *d = per / known;
            }
        }
        _ => bail!(
            "reshape target {} leaves the per-sample shape open",
            shown()
        ),
    }
    let keeps_batch = first == -1 || first == 0 || first == now[0];
    if !keeps_batch || dims.iter().any(|&d| d <= 0) || dims.iter().product::<i64>() != per {
        bail!(
            "reshape of {} to {} does not keep the batch first with {per_sample} values per sample",
            shape_text(now),
            shown()
        );
    }
    Ok(dims)
}

/// A constant's reshape: `0` copies, `-1` infers.
fn const_dims(target: &[i64], now: &[usize], total: usize) -> Result<Vec<usize>> {
    let dims: Vec<i64> = target
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if d == 0 {
                now.get(i).map_or(0, |&x| x as i64)
            } else {
                d
            }
        })
        .collect();
    let known: i64 = dims.iter().filter(|&&d| d != -1).product();
    let holes = dims.iter().filter(|&&d| d == -1).count();
    let fill = if known > 0 { total as i64 / known } else { 0 };
    let dims: Vec<i64> = dims
        .iter()
        .map(|&d| if d == -1 { fill } else { d })
        .collect();
    if holes > 1 || dims.iter().any(|&d| d < 0) || dims.iter().product::<i64>() != total as i64 {
        bail!("reshape of a constant of {total} values to {target:?} does not fit");
    }
    Ok(dims.into_iter().map(|d| d as usize).collect())
}
