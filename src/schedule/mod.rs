//! Inter-operator schedules by measured cost, for any executor speedbench
//! drives (libtorch operations, ONNX Runtime segments).
//!
//! The graph splits at its cut nodes (nodes every path goes through) into
//! regions; a region of branch nodes splits into its independent
//! components. Stage by stage (the idea of IOS, MLSys 2021), the schedule
//! either runs a region one operation after another with every intra-op
//! thread, or runs its components on concurrent lanes that share the
//! threads, whichever the measured per-operation costs predict is faster.
//! Sequential is always a candidate, so the predicted time never exceeds
//! the sequential one.

pub mod calibrate;

use anyhow::{bail, Context, Result};

use crate::graph::analysis::{branch_nodes, branch_nodes_within};
use crate::graph::{Graph, NodeId};
pub use crate::record::{LaneNodes, ParallelStage, ScheduleRecord, StageNodes};

/// Timed passes of each candidate in a calibration's comparisons when the
/// sequential pass takes `pass_ms`: as many as fit in about
/// [`CHECK_BUDGET_MS`], within [`CHECK_PASSES`] (a difference of a few
/// percent needs more than five passes to stand out of a shared machine's
/// noise; a slow pass gets at least five).
pub fn check_passes(pass_ms: f64) -> usize {
    let (low, high) = CHECK_PASSES;
    // a pass of 0 ms fits without end (the float saturates), NaN not at all
    ((CHECK_BUDGET_MS / pass_ms) as usize).clamp(low, high)
}

/// Bounds of [`check_passes`].
pub const CHECK_PASSES: (usize, usize) = (5, 30);
/// About how long each candidate's comparison passes take in all, ms.
pub const CHECK_BUDGET_MS: f64 = 1500.0;

/// A plan runs only if it measured at least this much faster than
/// sequential (a fraction): one within a shared machine's noise of
/// sequential gains nothing, and can measure slower in the timed passes.
pub const PLAN_MARGIN: f64 = 0.01;

/// Whether a plan that measured `plan_ms` against `sequential_ms` runs on
/// its merits: faster by [`PLAN_MARGIN`] at least.
pub fn plan_wins(sequential_ms: f64, plan_ms: f64) -> bool {
    plan_ms < sequential_ms * (1.0 - PLAN_MARGIN)
}

/// The end of a calibration, one flow for every executor: whether the plan
/// runs, and what the record says ran where it is not simply the plan: a
/// plan that lost runs anyway when `forced` (`SPEEDBENCH_SCHEDULE=plan`),
/// and the record says it was forced, never that the cost model chose it.
pub fn judge(
    sequential_ms: f64,
    plan_ms: f64,
    forced: bool,
    against: &str,
) -> (bool, Option<String>) {
    if plan_wins(sequential_ms, plan_ms) {
        (true, None)
    } else if forced {
        (
            true,
            Some(format!(
                "forced by SPEEDBENCH_SCHEDULE=plan: the cost model's schedule measured {plan_ms:.2} ms against {sequential_ms:.2} ms {against} (not {:.0}% faster)",
                PLAN_MARGIN * 100.0
            )),
        )
    } else {
        (false, Some(plan_lost(sequential_ms, plan_ms, against)))
    }
}

/// Records a calibration's medians in `record` and settles it by
/// [`judge`] with the environment's [`keep_plan`]: true where the plan
/// runs.
pub fn settle(
    record: &mut ScheduleRecord,
    sequential_ms: f64,
    plan_ms: f64,
    against: &str,
) -> bool {
    record.measured = Some((sequential_ms, plan_ms));
    let (runs, chosen) = judge(sequential_ms, plan_ms, keep_plan(), against);
    if let Some(c) = chosen {
        record.chosen = c;
    }
    runs
}

/// Why a measured plan did not run, for the record.
pub fn plan_lost(sequential_ms: f64, plan_ms: f64, against: &str) -> String {
    format!(
        "sequential: the cost model's schedule measured {plan_ms:.2} ms against {sequential_ms:.2} ms {against} (not {:.0}% faster)",
        PLAN_MARGIN * 100.0
    )
}

/// `SPEEDBENCH_SCHEDULE=plan` keeps the cost model's plan even where it
/// measured slower than sequential (to look at it in a trace); unset or
/// `auto`, the faster of the two runs.
pub fn keep_plan() -> bool {
    std::env::var("SPEEDBENCH_SCHEDULE").is_ok_and(|v| v == "plan")
}

/// One step of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Nodes one after another, every intra-op thread each.
    Sequential(Vec<NodeId>),
    /// Lanes at the same time, each its nodes in order on its threads.
    Parallel(Vec<Lane>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    pub nodes: Vec<NodeId>,
    pub threads: usize,
}

/// A whole schedule and what the cost model predicts for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub stages: Vec<Stage>,
    /// Predicted wall time of one pass, µs.
    pub predicted_us: f64,
    /// Predicted wall time of the all-sequential schedule, µs.
    pub sequential_us: f64,
}

/// Consecutive nodes between cut nodes, in topological order: either one
/// cut node (`branch == false`) or a run of branch nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub nodes: Vec<NodeId>,
    pub branch: bool,
}

/// The regions of `g` (node 0, the input, is in none). A cut node is
/// comparable with every node, so its ancestors come before it in
/// topological order and its descendants after: the branch nodes between
/// two cuts are contiguous.
pub fn regions(g: &Graph) -> Vec<Region> {
    let branch = branch_nodes(g);
    let mut out: Vec<Region> = Vec::new();
    for (id, &on_branch) in branch.iter().enumerate().skip(1) {
        match out.last_mut() {
            Some(r) if r.branch && on_branch => r.nodes.push(id),
            _ => out.push(Region {
                nodes: vec![id],
                branch: on_branch,
            }),
        }
    }
    out
}

/// The weakly connected components of the subgraph on `nodes`, each in
/// topological order, in order of their first node.
pub fn components(g: &Graph, nodes: &[NodeId]) -> Vec<Vec<NodeId>> {
    let index = |id: NodeId| nodes.iter().position(|&n| n == id);
    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, &id) in nodes.iter().enumerate() {
        for &input in &g.nodes[id].inputs {
            if let Some(j) = index(input) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut groups: Vec<(usize, Vec<NodeId>)> = Vec::new();
    for (i, &id) in nodes.iter().enumerate() {
        let r = root(&mut parent, i);
        match groups.iter_mut().find(|(k, _)| *k == r) {
            Some((_, g)) => g.push(id),
            None => groups.push((r, vec![id])),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

/// Longest-processing-time packing of `items` (cost each) onto `lanes`:
/// per lane, the item indices in their original order, and the lane's sum.
fn pack(costs: &[f64], lanes: usize) -> Vec<(Vec<usize>, f64)> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by(|&a, &b| costs[b].total_cmp(&costs[a]).then(a.cmp(&b)));
    let mut out: Vec<(Vec<usize>, f64)> = vec![(Vec::new(), 0.0); lanes];
    for i in order {
        let lane = (0..lanes)
            .min_by(|&a, &b| out[a].1.total_cmp(&out[b].1).then(a.cmp(&b)))
            .unwrap_or(0);
        out[lane].0.push(i);
        out[lane].1 += costs[i];
    }
    for lane in &mut out {
        lane.0.sort_unstable();
    }
    out.retain(|l| !l.0.is_empty());
    out
}

/// The intra-op threads of each of `lanes` lanes that share `threads` (at
/// least one).
pub fn lane_threads(threads: usize, lanes: usize) -> usize {
    (threads / lanes.max(1)).max(1)
}

/// The fastest packing of `items` (each a run of nodes in order) onto 2 to
/// `workers` concurrent lanes that share `threads`, by `cost`: its time
/// (the slowest lane plus `overhead_us`) and lanes.
fn best_lanes(
    items: &[Vec<NodeId>],
    cost: &dyn Fn(NodeId, usize) -> f64,
    threads: usize,
    workers: usize,
    overhead_us: f64,
) -> Option<(f64, Vec<Lane>)> {
    let mut best: Option<(f64, Vec<Lane>)> = None;
    for lanes in 2..=workers.min(items.len()) {
        // lanes share the threads: lanes that each kept all of them
        // (oversubscribed) made the sequential cell of the same worker
        // twice as slow on a 2-core machine (their idle OpenMP teams),
        // so they are not a candidate
        let per_lane = lane_threads(threads, lanes);
        let costs: Vec<f64> = items
            .iter()
            .map(|p| p.iter().map(|&n| cost(n, per_lane)).sum())
            .collect();
        let packed = pack(&costs, lanes);
        let time = packed.iter().map(|l| l.1).fold(0.0, f64::max) + overhead_us;
        if best.as_ref().is_none_or(|b| time < b.0) {
            let lanes = packed
                .into_iter()
                .map(|(picked, _)| {
                    let mut nodes: Vec<NodeId> =
                        picked.iter().flat_map(|&i| items[i].clone()).collect();
                    nodes.sort_unstable();
                    Lane {
                        nodes,
                        threads: per_lane,
                    }
                })
                .collect();
            best = Some((time, lanes));
        }
    }
    best
}

/// The stages of a branch region whose components are `parts` that nest
/// one level: the costliest component runs one operation after another
/// except for its own costliest run of branches, which runs as a parallel
/// stage together with the other components (independent of all of it),
/// as in the first block of a ResNeXt stage, where the downsample branch
/// spans the block and the group branches sit inside the main path. The
/// predicted time and the stages; None where that component has no
/// branches of its own.
fn nested(
    g: &Graph,
    parts: &[Vec<NodeId>],
    cost: &dyn Fn(NodeId, usize) -> f64,
    threads: usize,
    workers: usize,
    overhead_us: f64,
) -> Option<(f64, Vec<Stage>)> {
    let seq = |nodes: &[NodeId]| nodes.iter().map(|&n| cost(n, threads)).sum::<f64>();
    let big = (0..parts.len()).max_by(|&a, &b| seq(&parts[a]).total_cmp(&seq(&parts[b])))?;
    let main = &parts[big];
    let inner = branch_nodes_within(g, main);
    // the component's runs of branch nodes, as index ranges of `main`
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, &on_branch) in inner.iter().enumerate() {
        match runs.last_mut() {
            Some((_, end)) if on_branch && *end == i => *end = i + 1,
            _ if on_branch => runs.push((i, i + 1)),
            _ => {}
        }
    }
    let &(start, end) = runs
        .iter()
        .max_by(|a, b| seq(&main[a.0..a.1]).total_cmp(&seq(&main[b.0..b.1])))?;
    let mut items = components(g, &main[start..end]);
    items.extend(
        parts
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != big)
            .map(|(_, p)| p.clone()),
    );
    let (time, lanes) = best_lanes(&items, cost, threads, workers, overhead_us)?;
    let (before, after) = (&main[..start], &main[end..]);
    let stages = [
        Stage::Sequential(before.to_vec()),
        Stage::Parallel(lanes),
        Stage::Sequential(after.to_vec()),
    ]
    .into_iter()
    .filter(|s| !matches!(s, Stage::Sequential(n) if n.is_empty()))
    .collect();
    Some((seq(before) + time + seq(after), stages))
}

/// The schedule the costs predict fastest. `cost(node, threads)` is a
/// node's measured time in µs at that many intra-op threads; `threads` the
/// intra-op threads of the sequential schedule, `workers` the most lanes
/// that may run at once, `overhead_us` what starting and joining a
/// parallel stage costs. A branch region runs one operation after
/// another, its components on concurrent lanes, or (where one component
/// holds branches of its own) [`nested`], whichever is predicted fastest.
pub fn plan(
    g: &Graph,
    cost: &dyn Fn(NodeId, usize) -> f64,
    threads: usize,
    workers: usize,
    overhead_us: f64,
) -> Schedule {
    let threads = threads.max(1);
    let mut stages: Vec<Stage> = Vec::new();
    let (mut predicted, mut sequential) = (0.0, 0.0);
    for region in regions(g) {
        let seq: f64 = region.nodes.iter().map(|&n| cost(n, threads)).sum();
        sequential += seq;
        let parts = if region.branch {
            components(g, &region.nodes)
        } else {
            vec![]
        };
        let flat = best_lanes(&parts, cost, threads, workers, overhead_us)
            .map(|(time, lanes)| (time, vec![Stage::Parallel(lanes)]));
        let inside = nested(g, &parts, cost, threads, workers, overhead_us);
        let best = [flat, inside]
            .into_iter()
            .flatten()
            .filter(|(time, _)| *time < seq)
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let (time, chosen) = best.unwrap_or((seq, vec![Stage::Sequential(region.nodes)]));
        predicted += time;
        for stage in chosen {
            match (stage, stages.last_mut()) {
                (Stage::Sequential(nodes), Some(Stage::Sequential(run))) => run.extend(nodes),
                (stage, _) => stages.push(stage),
            }
        }
    }
    Schedule {
        stages,
        predicted_us: predicted,
        sequential_us: sequential,
    }
}

impl Schedule {
    /// Whether any stage runs lanes concurrently.
    pub fn is_parallel(&self) -> bool {
        self.stages.iter().any(|s| matches!(s, Stage::Parallel(_)))
    }

    /// Every node in order of execution (lanes of a stage one after
    /// another): each node exactly once.
    pub fn nodes(&self) -> Vec<NodeId> {
        self.stages
            .iter()
            .flat_map(|s| match s {
                Stage::Sequential(n) => n.clone(),
                Stage::Parallel(lanes) => lanes.iter().flat_map(|l| l.nodes.clone()).collect(),
            })
            .collect()
    }

    /// The schedule in words, for the cell.
    pub fn record(&self, g: &Graph, scheduler: &str) -> ScheduleRecord {
        let parallel = self
            .stages
            .iter()
            .filter_map(|s| match s {
                Stage::Parallel(lanes) => Some(ParallelStage {
                    first: lanes
                        .iter()
                        .filter_map(|l| l.nodes.first())
                        .min()
                        .map_or(String::new(), |&n| g.nodes[n].name.clone()),
                    lanes: lanes.iter().map(|l| (l.nodes.len(), l.threads)).collect(),
                }),
                Stage::Sequential(_) => None,
            })
            .collect();
        ScheduleRecord {
            scheduler: scheduler.into(),
            stages: self.stages.len(),
            parallel_stages: parallel,
            predicted_ms: self.predicted_us / 1e3,
            predicted_sequential_ms: self.sequential_us / 1e3,
            measured: None,
            boundary: None,
            segments: None,
            chosen: if self.is_parallel() {
                "cost model".into()
            } else {
                "sequential: the cost model predicts no gain from overlapping".into()
            },
            ran: self.stored(g),
        }
    }

    /// The stages by node name, as a cell stores the schedule it ran.
    pub fn stored(&self, g: &Graph) -> Vec<StageNodes> {
        let names = |nodes: &[NodeId]| nodes.iter().map(|&n| g.nodes[n].name.clone()).collect();
        self.stages
            .iter()
            .map(|s| match s {
                Stage::Sequential(n) => StageNodes::Sequential(names(n)),
                Stage::Parallel(lanes) => StageNodes::Parallel(
                    lanes
                        .iter()
                        .map(|l| LaneNodes {
                            nodes: names(&l.nodes),
                            threads: l.threads,
                        })
                        .collect(),
                ),
            })
            .collect()
    }

    /// A stored schedule on `g` again (see [`Schedule::stored`]); refused
    /// unless it names every node of `g` but the input exactly once.
    pub fn from_stored(g: &Graph, stages: &[StageNodes]) -> Result<Schedule> {
        let ids = |names: &[String]| -> Result<Vec<NodeId>> {
            names
                .iter()
                .map(|n| {
                    g.nodes.iter().position(|x| &x.name == n).with_context(|| {
                        format!(
                            "the stored schedule names node '{n}', which this graph does not have"
                        )
                    })
                })
                .collect()
        };
        let stages = stages
            .iter()
            .map(|s| match s {
                StageNodes::Sequential(n) => Ok(Stage::Sequential(ids(n)?)),
                StageNodes::Parallel(lanes) => Ok(Stage::Parallel(
                    lanes
                        .iter()
                        .map(|l| {
                            Ok(Lane {
                                nodes: ids(&l.nodes)?,
                                threads: l.threads.max(1),
                            })
                        })
                        .collect::<Result<_>>()?,
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        let s = Schedule {
            stages,
            predicted_us: 0.0,
            sequential_us: 0.0,
        };
        let mut seen = s.nodes();
        seen.sort_unstable();
        if seen != (1..g.nodes.len()).collect::<Vec<_>>() {
            bail!(
                "the stored schedule does not run each of this graph's {} nodes exactly once",
                g.nodes.len() - 1
            );
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests;
