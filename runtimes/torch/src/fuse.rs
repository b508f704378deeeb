//! Which nodes `--optimize max` runs as one oneDNN call on the CPU: a
//! convolution with the ReLU after it, or with the residual add (and the
//! ReLU) after it, as PyTorch's own CPU inference paths do
//! (`optimize_for_inference`, Inductor's `mkldnn::_convolution_pointwise`).
//!
//! The graph keeps its nodes: the node that absorbs the others runs the
//! fused call and the absorbed ones pass their input on ([`Fused::Alias`]),
//! so every schedule's dependencies stay as they are. A convolution fused
//! into the add after it passes its *input* on, and the add, which already
//! waits for both of its operands, runs conv(x) + other.

use speedbench::graph::{Graph, NodeId, Op};

/// What a node runs at `max` on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fused {
    /// The node's own operation.
    Plain,
    /// A convolution through oneDNN's fused operator, with the ReLU after
    /// it when `relu`.
    Conv { relu: bool },
    /// An add whose operand `at` is a convolution that nothing else reads:
    /// conv(x) + the other operand, then ReLU when `relu`. The
    /// convolution's node is [`Fused::Alias`] and its value is `x`.
    ConvAdd { conv: NodeId, at: usize, relu: bool },
    /// Passes its (only) input on: a ReLU or a convolution that another
    /// node runs.
    Alias,
}

/// The fusion of every node of `graph`.
pub(super) fn fusions(graph: &Graph) -> Vec<Fused> {
    let consumers = graph.consumers();
    let sole = |id: NodeId| match consumers[id].as_slice() {
        [only] => Some(*only),
        _ => None,
    };
    let is = |id: NodeId, f: fn(&Op) -> bool| f(&graph.nodes[id].op);
    // The fused operator takes one stride and one padding for both axes.
    let conv = |op: &Op| matches!(op, Op::Conv { stride, pad, .. } if stride[0] == stride[1] && pad[0] == pad[1]);
    let relu = |op: &Op| matches!(op, Op::Relu);
    let mut fused = vec![Fused::Plain; graph.nodes.len()];
    // The ReLU that only `id`'s value feeds, if any, becomes an alias.
    let absorb_relu = |fused: &mut Vec<Fused>, id: NodeId| {
        let r = sole(id).filter(|&r| is(r, relu))?;
        fused[r] = Fused::Alias;
        Some(())
    };
    for (id, node) in graph.nodes.iter().enumerate() {
        if !matches!(node.op, Op::Add) {
            continue;
        }
        let operand = node
            .inputs
            .iter()
            .enumerate()
            .find(|&(_, &c)| is(c, conv) && sole(c) == Some(id) && fused[c] == Fused::Plain);
        if let Some((at, &c)) = operand {
            fused[c] = Fused::Alias;
            let relu = absorb_relu(&mut fused, id).is_some();
            fused[id] = Fused::ConvAdd { conv: c, at, relu };
        }
    }
    for id in 0..graph.nodes.len() {
        if is(id, conv) && fused[id] == Fused::Plain {
            let relu = absorb_relu(&mut fused, id).is_some();
            fused[id] = Fused::Conv { relu };
        }
    }
    fused
}

#[cfg(test)]
mod tests {
    use super::*;
    use speedbench::graph::{Graph, Op, ParamRef, Shape};

    fn conv(c: usize) -> Op {
        Op::Conv {
            out: c,
            kernel: [1; 2],
            stride: [1; 2],
            pad: [0; 2],
            groups: 1,
            bias: false,
            params: ParamRef::whole("c"),
        }
    }

    #[test]
    fn residual_block_fuses_conv_add_relu_and_conv_relu() {
        // x -> a (conv) -> r (relu) -> b (conv) -> sum(b, x) -> out (relu)
        let mut g = Graph::new("g", Shape::new(4, 8, 8));
        let a = g.add("a", conv(4), &[0]).unwrap();
        let r = g.add("r", Op::Relu, &[a]).unwrap();
        let b = g.add("b", conv(4), &[r]).unwrap();
        let sum = g.add("sum", Op::Add, &[0, b]).unwrap();
        let out = g.add("out", Op::Relu, &[sum]).unwrap();
        let f = fusions(&g);
        assert_eq!(f[a], Fused::Conv { relu: true });
        assert_eq!(f[r], Fused::Alias);
        assert_eq!(f[b], Fused::Alias);
        assert_eq!(
            f[sum],
            Fused::ConvAdd {
                conv: b,
                at: 1,
                relu: true
            }
        );
        assert_eq!(f[out], Fused::Alias);
        assert_eq!(f[0], Fused::Plain);
    }

    #[test]
    fn a_value_read_twice_is_not_fused_away() {
        // a feeds both the relu and the add: neither may absorb it; the
        // relu's value is read by the add and the output, so it stays too.
        let mut g = Graph::new("g", Shape::new(4, 8, 8));
        let a = g.add("a", conv(4), &[0]).unwrap();
        let r = g.add("r", Op::Relu, &[a]).unwrap();
        let sum = g.add("sum", Op::Add, &[a, r]).unwrap();
        let twice = g.add("twice", Op::Add, &[sum, sum]).unwrap();
        let s = g.add("s", Op::Sigmoid, &[twice]).unwrap();
        let f = fusions(&g);
        assert_eq!(f[a], Fused::Conv { relu: false });
        assert_eq!(f[r], Fused::Plain);
        assert_eq!(f[sum], Fused::Plain);
        assert_eq!(f[twice], Fused::Plain);
        assert_eq!(f[s], Fused::Plain);
    }

    #[test]
    fn an_add_of_two_convolutions_absorbs_the_first() {
        let mut g = Graph::new("g", Shape::new(4, 8, 8));
        let a = g.add("a", conv(4), &[0]).unwrap();
        let b = g.add("b", conv(4), &[0]).unwrap();
        let sum = g.add("sum", Op::Add, &[a, b]).unwrap();
        let f = fusions(&g);
        assert_eq!(f[a], Fused::Alias);
        assert_eq!(f[b], Fused::Conv { relu: false });
        assert_eq!(
            f[sum],
            Fused::ConvAdd {
                conv: a,
                at: 0,
                relu: false
            }
        );
    }

    #[test]
    fn a_convolution_with_two_strides_or_paddings_runs_plain() {
        // oneDNN's fused call takes one stride and one padding for both axes
        let rect = |stride: [usize; 2], pad: [usize; 2], p: &str| Op::Conv {
            out: 4,
            kernel: [3; 2],
            stride,
            pad,
            groups: 1,
            bias: false,
            params: ParamRef::whole(p),
        };
        let mut g = Graph::new("g", Shape::new(4, 8, 8));
        let a = g.add("a", rect([1, 1], [0, 1], "a"), &[0]).unwrap();
        let r = g.add("r", Op::Relu, &[a]).unwrap();
        let b = g.add("b", rect([1, 2], [1, 1], "b"), &[r]).unwrap();
        let c = g.add("c", rect([2, 2], [1, 1], "c"), &[b]).unwrap();
        let f = fusions(&g);
        assert_eq!(f[a], Fused::Plain);
        assert_eq!(f[r], Fused::Plain);
        assert_eq!(f[b], Fused::Plain);
        assert_eq!(f[c], Fused::Conv { relu: false });
    }
}
