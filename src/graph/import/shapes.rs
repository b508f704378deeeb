//! Shapes in an imported graph: what the exporter computes from them at
//! run time (folded), reshapes that flatten or shuffle channels, splits,
//! slices and concatenations.

use anyhow::{bail, Result};

use super::konst::{self, Konst, BATCH};
use super::ops::{wrap, Attrs};
use super::{input, Importer, Val};
use crate::graph::onnx_proto::NodeProto;
use crate::graph::Op;

impl Importer {
    /// `Shape` of a value: its dimensions, the batch as the file has it.
    pub(super) fn shape_of(&mut self, n: &NodeProto) -> Result<Konst> {
        let v = self.get(input(n, 0)?)?.clone();
        Ok(Konst::ints(self.full(&v)))
    }

    /// A node's `axes`: the attribute (before opset 13 or 18), else its
    /// second input; none where neither is given.
    pub(super) fn axes(&self, n: &NodeProto, a: &Attrs) -> Result<Vec<i64>> {
        match a.ints("axes") {
            Some(v) => Ok(v),
            None if n.input.get(1).is_some_and(|s| !s.is_empty()) => self.konst(n, 1)?.as_ints(),
            None => Ok(vec![]),
        }
    }

    /// `Unsqueeze` or `Squeeze` of a constant: the same elements, new dims.
    pub(super) fn reshaped_const(&self, n: &NodeProto, a: &Attrs, k: Konst) -> Result<Konst> {
        let axes = self.axes(n, a)?;
        let mut dims = k.dims.clone();
        if n.op_type == "Unsqueeze" {
            for i in sorted_axes(&axes, dims.len() + axes.len())? {
                dims.insert(i, 1);
            }
        } else if axes.is_empty() {
            dims.retain(|&d| d != 1);
        } else {
            for i in sorted_axes(&axes, dims.len())?.into_iter().rev() {
                dims.remove(i);
            }
        }
        Ok(Konst { dims, ..k })
    }

    pub(super) fn concat(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
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
    pub(super) fn reshape(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
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
                groups: konst::dim(*g, "the shuffle's groups")?,
            }),
            _ => bail!(
                "reshape of {} to {} is not supported (flatten, a channel shuffle, or the same shape are)",
                shape_text(&now),
                shape_text(&target)
            ),
        }
    }

    /// The full dimensions of a computed value, batch first.
    pub(super) fn full(&self, v: &Val) -> Vec<i64> {
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

    pub(super) fn transpose(&mut self, n: &NodeProto, a: &Attrs) -> Result<Val> {
        let perm = a.ints("perm").unwrap_or_default();
        match self.get(input(n, 0)?)?.clone() {
            Val::Grouped { x, groups } if perm == [0, 2, 1, 3, 4] => Ok(Val::Swapped { x, groups }),
            _ => bail!("attribute 'perm' = {perm:?}: only the channel shuffle's transpose (0, 2, 1, 3, 4 of a five-dimensional view) is supported"),
        }
    }

    /// `Split` on channels: one slice node per output.
    pub(super) fn split(&mut self, n: &NodeProto, a: &Attrs) -> Result<()> {
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
            (None, None) if parts > 0 && c.is_multiple_of(parts) => vec![(c / parts) as i64; parts],
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
    pub(super) fn slice(&mut self, n: &NodeProto) -> Result<Val> {
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

/// `axes` of a tensor of `rank` dimensions as indices, ascending; an axis
/// named twice is refused.
pub(super) fn sorted_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>> {
    let mut at: Vec<usize> = axes
        .iter()
        .map(|&x| konst::axis(x, rank))
        .collect::<Result<_>>()?;
    at.sort_unstable();
    if at.windows(2).any(|w| w[0] == w[1]) {
        bail!("axes {axes:?} repeat an axis");
    }
    Ok(at)
}

/// `target` with `0` copied from `now` at the same index and one `-1`
/// filled in, where the dimensions then hold `total` elements.
fn resolve(target: &[i64], now: &[i64], total: i64) -> Option<Vec<i64>> {
    let mut dims: Vec<i64> = target
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if d == 0 {
                now.get(i).copied().unwrap_or(0)
            } else {
                d
            }
        })
        .collect();
    if dims.iter().any(|d| !(-1..=konst::MAX_DIM).contains(d)) {
        return None;
    }
    let known: Vec<i64> = dims.iter().copied().filter(|&d| d != -1).collect();
    let known = konst::product(&known)?;
    match dims.iter().filter(|&&d| d == -1).count() {
        0 => {}
        1 if known > 0 && total % known == 0 => {
            for d in dims.iter_mut().filter(|d| **d == -1) {
                *d = total / known;
            }
        }
        _ => return None,
    }
    (dims.iter().all(|&d| d > 0) && konst::product(&dims) == Some(total)).then_some(dims)
}

/// A reshape's target resolved against the current dimensions `now`
/// (batch first) of a value of `per_sample` elements after the batch: the
/// dimensions after the batch, which must stay first.
pub(super) fn per_sample(target: &[i64], now: &[i64], per_sample: usize) -> Result<Vec<i64>> {
    let Some((&first, rest)) = target.split_first() else {
        bail!("reshape target [] is empty");
    };
    let keeps_batch = first == -1 || first == 0 || Some(&first) == now.first();
    let one_hole = first != -1 || !rest.contains(&-1);
    let after = now.get(1..).unwrap_or(&[]);
    keeps_batch
        .then(|| resolve(rest, after, per_sample as i64))
        .flatten()
        .filter(|_| one_hole)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "reshape of {} to {} does not keep the batch first with {per_sample} values per sample",
                shape_text(now),
                shape_text(target)
            )
        })
}

/// A constant's reshape: `0` copies, `-1` infers.
fn const_dims(target: &[i64], now: &[usize], total: usize) -> Result<Vec<usize>> {
    let now: Vec<i64> = now.iter().map(|&d| d as i64).collect();
    let dims = resolve(target, &now, total as i64).ok_or_else(|| {
        anyhow::anyhow!("reshape of a constant of {total} values to {target:?} does not fit")
    })?;
    Ok(dims.into_iter().map(|d| d as usize).collect())
}
