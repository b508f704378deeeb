//! Counts that need no framework: parameters, multiply-accumulates, and the
//! work/span of the graph (how much running independent branches in parallel
//! could buy at best).

use serde::Serialize;

use super::{Graph, NodeId, Op};

/// What `speedbench models` prints for one model.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Analysis {
    pub name: String,
    /// Input size the counts are for (square).
    pub size: usize,
    /// Learnable parameters (batch-norm running statistics excluded).
    pub params: u64,
    /// Multiply-accumulates of convolutions and fully connected layers, batch 1.
    pub macs: u64,
    /// MACs on the heaviest dependency chain (the critical path).
    pub span_macs: u64,
    /// `macs / span_macs`: the ideal speedup from running branches in parallel.
    pub ideal_speedup: f64,
    /// The most operations that can run at once: the largest set of nodes no
    /// two of which depend on each other.
    pub max_parallel_branches: usize,
    /// Number of IR nodes.
    pub nodes: usize,
}

pub fn analyse(g: &Graph) -> Analysis {
    let macs: u64 = (0..g.nodes.len()).map(|i| node_macs(g, i)).sum();
    let span = span_macs(g);
    Analysis {
        name: g.name.clone(),
        size: g.input().h,
        params: param_count(g),
        macs,
        span_macs: span,
        ideal_speedup: if span == 0 {
            1.0
        } else {
            macs as f64 / span as f64
        },
        max_parallel_branches: max_antichain(g),
        nodes: g.nodes.len(),
    }
}

/// Learnable parameters, as PyTorch's `parameters()` counts them: batch-norm
/// running statistics are buffers and are left out.
pub fn param_count(g: &Graph) -> u64 {
    g.params
        .iter()
        .filter(|(k, _)| !k.ends_with(".running_mean") && !k.ends_with(".running_var"))
        .map(|(_, s)| s.iter().product::<usize>() as u64)
        .sum()
}

/// Conv and fully connected multiply-accumulates of one node, batch 1.
pub fn node_macs(g: &Graph, id: NodeId) -> u64 {
    let n = &g.nodes[id];
    match &n.op {
        Op::Conv { kernel, groups, .. } => {
            let cin = g.nodes[n.inputs[0]].shape.c / groups;
            (n.shape.numel() * cin * kernel[0] * kernel[1]) as u64
        }
        Op::Linear { out, .. } => (g.nodes[n.inputs[0]].shape.c * out) as u64,
        _ => 0,
    }
}

/// Heaviest path through the graph, weighted by MACs.
fn span_macs(g: &Graph) -> u64 {
    let mut best = vec![0u64; g.nodes.len()];
    for (id, n) in g.nodes.iter().enumerate() {
        let before = n.inputs.iter().map(|&i| best[i]).max().unwrap_or(0);
        best[id] = before + node_macs(g, id);
    }
    best.into_iter().max().unwrap_or(0)
}

/// Reachability as bitsets: `reach[a]` has bit `b` when `b` depends on `a`.
fn reachability(g: &Graph) -> Vec<Vec<u64>> {
    let n = g.nodes.len();
    let words = n.div_ceil(64);
    let mut reach = vec![vec![0u64; words]; n];
    let consumers = g.consumers();
    for a in (0..n).rev() {
        for &c in &consumers[a] {
            let (lo, hi) = reach.split_at_mut(c);
            let row = &mut lo[a];
            row[c / 64] |= 1 << (c % 64);
            for (w, r) in row.iter_mut().zip(&hi[0]) {
                *w |= r;
            }
        }
    }
    reach
}

fn bit(row: &[u64], b: usize) -> bool {
    row[b / 64] >> (b % 64) & 1 == 1
}

/// Width of the graph: its largest antichain. The graph is cut at nodes that
/// every other node is ordered with (block inputs and outputs); an antichain
/// lies between two cuts, and within each segment Dilworth's theorem gives
/// its size as `nodes - maximum matching` of the reachability relation.
/// Per node, whether some other node neither depends on it nor feeds it:
/// work that could run beside other work (on a branch). The others are
/// cuts every path from input to output goes through.
pub fn branch_nodes(g: &Graph) -> Vec<bool> {
    branches(g, &reachability(g))
}

/// [`branch_nodes`] of the subgraph on `nodes` (a component of a region:
/// the paths between its nodes stay inside it), in the order of `nodes`.
pub fn branch_nodes_within(g: &Graph, nodes: &[NodeId]) -> Vec<bool> {
    let reach = reachability(g);
    nodes
        .iter()
        .map(|&a| {
            nodes
                .iter()
                .any(|&b| a != b && !bit(&reach[a], b) && !bit(&reach[b], a))
        })
        .collect()
}

fn branches(g: &Graph, reach: &[Vec<u64>]) -> Vec<bool> {
    let n = g.nodes.len();
    let comparable = |a: usize, b: usize| bit(&reach[a], b) || bit(&reach[b], a);
    (0..n)
        .map(|a| (0..n).any(|b| a != b && !comparable(a, b)))
        .collect()
}

fn max_antichain(g: &Graph) -> usize {
    let reach = reachability(g);
    let on_branch = branches(g, &reach);
    let mut best = 1;
    let mut segment = Vec::new();
    for (a, &branch) in on_branch.iter().enumerate() {
        if !branch {
            if !segment.is_empty() {
                best = best.max(segment_width(&segment, &reach));
                segment.clear();
            }
        } else {
            segment.push(a);
        }
    }
    if !segment.is_empty() {
        best = best.max(segment_width(&segment, &reach));
    }
    best
}

/// Kuhn's augmenting paths on the segment's comparability (left a -> right b
/// when b depends on a); width = size - matching.
fn segment_width(seg: &[usize], reach: &[Vec<u64>]) -> usize {
    let m = seg.len();
    let adj: Vec<Vec<usize>> = (0..m)
        .map(|i| (0..m).filter(|&j| bit(&reach[seg[i]], seg[j])).collect())
        .collect();
    let mut match_right: Vec<Option<usize>> = vec![None; m];
    fn augment(
        u: usize,
        adj: &[Vec<usize>],
        seen: &mut [bool],
        match_right: &mut [Option<usize>],
    ) -> bool {
        for &v in &adj[u] {
            if !seen[v] {
                seen[v] = true;
                if match_right[v].is_none_or(|w| augment(w, adj, seen, match_right)) {
                    match_right[v] = Some(u);
                    return true;
                }
            }
        }
        false
    }
    let mut matched = 0;
    for u in 0..m {
        let mut seen = vec![false; m];
        if augment(u, &adj, &mut seen, &mut match_right) {
            matched += 1;
        }
    }
    m - matched
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{ParamRef, Shape};

    fn conv(name: &str, out: usize) -> Op {
        Op::Conv {
            out,
            kernel: [3; 2],
            stride: [1; 2],
            pad: [1; 2],
            groups: 1,
            bias: false,
            params: ParamRef::whole(name),
        }
    }

    #[test]
    fn diamond_has_width_two_and_span_of_heavier_branch() {
        let mut g = Graph::new("d", Shape::new(1, 4, 4));
        let a = g.add("a", conv("a", 2), &[0]).unwrap();
        let b = g.add("b", conv("b", 4), &[0]).unwrap();
        let b2 = g.add("b2", Op::Slice { start: 0, end: 2 }, &[b]).unwrap();
        g.add("sum", Op::Add, &[a, b2]).unwrap();
        let an = analyse(&g);
        // a: 16 px * 2 out * 1 in * 9; b: 16 * 4 * 9
        assert_eq!(an.macs, 16 * 2 * 9 + 16 * 4 * 9);
        assert_eq!(an.span_macs, 16 * 4 * 9);
        assert_eq!(an.max_parallel_branches, 2);
        assert_eq!(an.params, 2 * 9 + 4 * 9);
    }

    #[test]
    fn chain_has_width_one() {
        let mut g = Graph::new("c", Shape::new(1, 4, 4));
        let a = g.add("a", conv("a", 2), &[0]).unwrap();
        g.add("r", Op::Relu, &[a]).unwrap();
        let an = analyse(&g);
        assert_eq!(an.max_parallel_branches, 1);
        assert_eq!(an.ideal_speedup, 1.0);
    }
}
