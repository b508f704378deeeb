//! One ONNX node at a time: folded when its inputs are constants, mapped to
//! an IR node where the IR has the operation, refused otherwise.

use anyhow::{bail, Context, Result};

use super::konst::{self, Data, Konst};
use super::{input, Importer, Val};
use crate::graph::onnx_proto::{AttributeProto, NodeProto};
use crate::graph::{NodeId, Op, ParamRef};

/// Attribute lookups on a node, each naming the attribute in its error.
pub(super) struct Attrs<'a>(&'a [AttributeProto]);

impl Attrs<'_> {
    pub(super) fn get(&self, name: &str) -> Option<&AttributeProto> {
        self.0.iter().find(|a| a.name == name)
    }
    pub(super) fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }
    pub(super) fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).map_or(default, |a| a.f)
    }
    pub(super) fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }
    pub(super) fn string(&self, name: &str, default: &str) -> String {
        self.get(name).map_or(default.to_string(), |a| {
            String::from_utf8_lossy(&a.s).into_owned()
        })
    }
    /// An attribute that must hold `want` where present.
    pub(super) fn only(&self, name: &str, want: i64) -> Result<()> {
        match self.get(name) {
            Some(a) if a.i != want => {
                bail!("attribute '{name}' = {}: only {want} is supported", a.i)
            }
            _ => Ok(()),
        }
    }
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
}

/// A computed value of node `id`.
pub(super) fn wrap(id: NodeId, is_vec: bool) -> Val {
    if is_vec {
        Val::Vector(id)
    } else {
        Val::Map(id)
    }
}
