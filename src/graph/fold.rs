//! Batch-norm folding, the IR-level rewrite of `--optimize max`: a
//! convolution read only by an inference batch norm becomes one convolution
//! with a bias. Per output channel `c`, with `s = gamma / sqrt(var + eps)`:
//! `W'[c] = W[c] * s` and `b'[c] = (b[c] - mean) * s + beta`. Arithmetic is
//! in f64, stored as f32. Every other node is kept as it is.

use anyhow::Result;

use super::weights::{Tensor, Weights};
use super::{Graph, NodeId, Op, ParamRef};

/// The convolution a batch norm can be folded into: its only input, read by
/// nothing else.
fn foldable(graph: &Graph, consumers: &[Vec<NodeId>], bn: NodeId) -> Option<NodeId> {
    let node = &graph.nodes[bn];
    let Op::BatchNorm { .. } = node.op else {
        return None;
    };
    let conv = *node.inputs.first()?;
    matches!(graph.nodes[conv].op, Op::Conv { .. })
        .then_some(conv)
        .filter(|&c| consumers[c] == [bn])
}

/// The folded weight and bias of `conv` followed by `bn`.
fn folded(weights: &Weights, conv: &Op, bn: &Op) -> Result<(Tensor, Tensor)> {
    let (Op::Conv { out, .. }, Op::BatchNorm { eps, .. }) = (conv, bn) else {
        anyhow::bail!("fold: expected a convolution and a batch norm");
    };
    // [weight] or [weight, bias], then [gamma, beta, mean, var]
    let conv_params = weights.params_of(conv)?;
    let bn_params = weights.params_of(bn)?;
    let (w, b) = (&conv_params[0].1, conv_params.get(1).map(|(_, b)| b.data));
    let [gamma, beta, mean, var] = [0, 1, 2, 3].map(|i| bn_params[i].1.data);
    let row = w.data.len() / out;
    let mut new_w = Vec::with_capacity(w.data.len());
    let mut new_b = Vec::with_capacity(*out);
    for c in 0..*out {
        let s = f64::from(gamma[c]) / (f64::from(var[c]) + eps).sqrt();
        new_w.extend(
            w.data[c * row..(c + 1) * row]
                .iter()
                .map(|&v| (f64::from(v) * s) as f32),
        );
        let bias = b.map_or(0.0, |b| b[c]);
        new_b.push(((f64::from(bias) - f64::from(mean[c])) * s + f64::from(beta[c])) as f32);
    }
    Ok((
        Tensor {
            shape: w.shape.clone(),
            data: new_w,
        },
        Tensor {
            shape: vec![*out],
            data: new_b,
        },
    ))
}

/// `graph` with every foldable batch norm folded into its convolution, and
/// the weights of the new graph (only the tensors it declares).
pub fn fold_batchnorm(graph: &Graph, weights: &Weights) -> Result<(Graph, Weights)> {
    let consumers = graph.consumers();
    // conv id -> its batch norm id, and the batch norms that go
    let mut fold_into = vec![None; graph.nodes.len()];
    let mut folded_away = vec![false; graph.nodes.len()];
    for bn in 0..graph.nodes.len() {
        if let Some(conv) = foldable(graph, &consumers, bn) {
            fold_into[conv] = Some(bn);
        }
    }
    for &bn in fold_into.iter().flatten() {
        folded_away[bn] = true;
    }
    let mut out = Graph::new(&graph.name, graph.input());
    let mut new_id: Vec<NodeId> = vec![0; graph.nodes.len()];
    let mut tensors = std::collections::BTreeMap::new();
    for (id, node) in graph.nodes.iter().enumerate().skip(1) {
        if folded_away[id] {
            // a folded batch norm: its value is its convolution's, which
            // comes before it
            new_id[id] = new_id[node.inputs[0]];
            continue;
        }
        let inputs: Vec<NodeId> = node.inputs.iter().map(|&i| new_id[i]).collect();
        let mut op = node.op.clone();
        if let Some(bn) = fold_into[id] {
            let bn_node = &graph.nodes[bn];
            let prefix = format!("folded.{}", bn_node.name);
            let (w, b) = folded(weights, &node.op, &bn_node.op)?;
            tensors.insert(format!("{prefix}.weight"), w);
            tensors.insert(format!("{prefix}.bias"), b);
            if let Op::Conv { bias, params, .. } = &mut op {
                *bias = true;
                *params = ParamRef::whole(prefix);
            }
        }
        new_id[id] = out.add(&node.name, op, &inputs)?;
    }
    for name in out.params.keys() {
        if !tensors.contains_key(name) {
            let t = weights
                .tensors
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("weights have no tensor '{name}'"))?;
            tensors.insert(name.clone(), t.clone());
        }
    }
    Ok((out, Weights { tensors }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zoo;

    #[test]
    fn every_conv_batchnorm_pair_of_resnet50_folds() {
        let l = zoo::load(&zoo::Catalog::built_in().unwrap(), "resnet50", 64, None, 0).unwrap();
        let (g, w) = fold_batchnorm(&l.graph, &l.weights).unwrap();
        let bns = |g: &Graph| {
            g.nodes
                .iter()
                .filter(|n| matches!(n.op, Op::BatchNorm { .. }))
                .count()
        };
        assert_eq!(bns(&l.graph), 53);
        assert_eq!(bns(&g), 0);
        assert_eq!(g.nodes.len(), l.graph.nodes.len() - 53);
        // the same work; only the batch norms' parameters are gone
        let (a, b) = (
            crate::graph::analysis::analyse(&l.graph),
            crate::graph::analysis::analyse(&g),
        );
        assert_eq!(a.macs, b.macs);
        assert_eq!(w.tensors.len(), g.params.len());
    }

    /// A graph of one convolution (`out` channels, k x k) and its batch norm.
    fn conv_bn(c: usize, size: usize, out: usize, kernel: usize, bias: bool) -> (Graph, NodeId) {
        let mut g = Graph::new("t", crate::graph::Shape::new(c, size, size));
        let conv = Op::Conv {
            out,
            kernel: [kernel; 2],
            stride: [1; 2],
            pad: [kernel / 2; 2],
            groups: 1,
            bias,
            params: ParamRef::whole("c"),
        };
        let conv = g.add("c", conv, &[0]).unwrap();
        let bn = Op::BatchNorm {
            eps: 0.0,
            params: ParamRef::whole("bn"),
        };
        g.add("bn", bn, &[conv]).unwrap();
        (g, conv)
    }

    #[test]
    fn a_conv_read_twice_keeps_its_batch_norm() {
        let (mut g, conv) = conv_bn(3, 8, 4, 3, false);
        let bn = g.output();
        g.add("sum", Op::Add, &[conv, bn]).unwrap();
        let w = Weights::seeded(&g, 1);
        let (f, _) = fold_batchnorm(&g, &w).unwrap();
        assert_eq!(f.nodes.len(), g.nodes.len());
    }

    #[test]
    fn folding_is_exact_on_one_channel() {
        let (g, _) = conv_bn(1, 1, 1, 1, true);
        let mut w = Weights::seeded(&g, 1);
        for (k, v) in [
            ("c.weight", 2.0),
            ("c.bias", 1.0),
            ("bn.weight", 3.0),
            ("bn.bias", 0.5),
            ("bn.running_mean", 4.0),
            ("bn.running_var", 9.0),
        ] {
            w.tensors.get_mut(k).unwrap().data = vec![v];
        }
        let (_, f) = fold_batchnorm(&g, &w).unwrap();
        // y = ((2x + 1) - 4) * 3/3 + 0.5 = 2x - 2.5
        assert_eq!(f.tensors["folded.bn.weight"].data, vec![2.0]);
        assert_eq!(f.tensors["folded.bn.bias"].data, vec![-2.5]);
    }
}
