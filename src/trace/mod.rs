//! From a framework's raw timeline of one pass to a cell's [`Trace`]: every
//! event mapped back to the IR node it came from, the critical path marked,
//! the ideal schedule of the same durations, the measured concurrency. And
//! the trace-event JSON that Perfetto and chrome://tracing open
//! ([`chrome`]).

pub mod chrome;

use std::collections::HashMap;

use crate::graph::analysis::branch_nodes;
pub use crate::graph::names::{ir_node, operation_names};
use crate::graph::{Graph, NodeId};
use crate::record::{OpEvent, Timeline, Trace};

/// Operation types that are framework bookkeeping, never an IR node's
/// work, whatever their names (TensorFlow's weight constants are named
/// after the node that reads them).
pub const INTERNAL_OPS: &[&str] = &[
    "Const",
    "Identity",
    "NoOp",
    "_Arg",
    "_Retval",
    "_Recv",
    "_Send",
    "_HostRecv",
    "_HostSend",
    "MemcpyToHost",
    "MemcpyFromHost",
    "MemcpyHtoD",
    "MemcpyDtoH",
];

/// Fills in the IR node of every event that has none yet, by name
/// ([`ir_node`]); the input node is never an operation, and the
/// [`INTERNAL_OPS`] stay unmapped.
pub fn map_to_ir(timeline: &mut Timeline, graph: &Graph) {
    let names = operation_names(graph);
    for e in &mut timeline.events {
        if e.node.is_none() && !INTERNAL_OPS.contains(&e.op.as_str()) {
            e.node = ir_node(&names, &e.name).map(|(n, _)| n.to_string());
        }
    }
}

/// Per IR node, the indices of its events.
fn events_by_node(timeline: &Timeline, graph: &Graph) -> Vec<Vec<usize>> {
    let ids: HashMap<&str, NodeId> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut by = vec![Vec::new(); graph.nodes.len()];
    for (i, e) in timeline.events.iter().enumerate() {
        if let Some(&id) = e.node.as_deref().and_then(|n| ids.get(n)) {
            by[id].push(i);
        }
    }
    by
}

/// Marks the critical path: from the output back to the input, each node
/// waiting on the input whose work ended last (nodes the framework fused
/// away pass the latest end of their own inputs on).
pub fn mark_critical_path(timeline: &mut Timeline, graph: &Graph) {
    let by = events_by_node(timeline, graph);
    let mut end = vec![0.0f64; graph.nodes.len()];
    for (id, node) in graph.nodes.iter().enumerate() {
        let own = by[id]
            .iter()
            .map(|&i| timeline.events[i].end_us())
            .fold(f64::NEG_INFINITY, f64::max);
        let inputs = node.inputs.iter().map(|&i| end[i]).fold(0.0, f64::max);
        end[id] = if own.is_finite() { own } else { inputs };
    }
    let Some(mut id) = graph.nodes.len().checked_sub(1) else {
        return;
    };
    loop {
        for &i in &by[id] {
            timeline.events[i].critical = true;
        }
        let inputs = &graph.nodes[id].inputs;
        match inputs
            .iter()
            .copied()
            .max_by(|&a, &b| end[a].total_cmp(&end[b]))
        {
            Some(p) => id = p,
            None => break,
        }
    }
}

/// The ideal schedule of `timeline`'s IR operations: each node takes the
/// summed duration of its events and starts the moment its last input is
/// done, on the first lane free then (as many lanes as that needs). Its
/// wall time is the measured span; its summed time the measured work.
pub fn ideal_schedule(timeline: &Timeline, graph: &Graph) -> Timeline {
    let by = events_by_node(timeline, graph);
    let dur: Vec<f64> = by
        .iter()
        .map(|evs| evs.iter().map(|&i| timeline.events[i].dur_us).sum())
        .collect();
    let mut finish = vec![0.0f64; graph.nodes.len()];
    let mut slots: Vec<(NodeId, f64)> = Vec::new();
    for (id, node) in graph.nodes.iter().enumerate() {
        let start = node.inputs.iter().map(|&i| finish[i]).fold(0.0, f64::max);
        finish[id] = start + dur[id];
        if !by[id].is_empty() {
            slots.push((id, start));
        }
    }
    slots.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let mut lane_free: Vec<f64> = Vec::new();
    let mut events = Vec::with_capacity(slots.len());
    for (id, start) in slots {
        let lane = match lane_free.iter().position(|&f| f <= start) {
            Some(l) => l,
            None => {
                lane_free.push(0.0);
                lane_free.len() - 1
            }
        };
        lane_free[lane] = start + dur[id];
        let node = &graph.nodes[id];
        events.push(OpEvent {
            name: node.name.clone(),
            op: node.op.kind().to_string(),
            node: Some(node.name.clone()),
            track: lane,
            start_us: start,
            dur_us: dur[id],
            critical: false,
            device: String::new(),
        });
    }
    let mut ideal = Timeline {
        source: format!(
            "ideal: {}'s durations, every operation as early as its inputs allow",
            timeline.source
        ),
        tracks: (1..=lane_free.len()).map(|l| format!("lane {l}")).collect(),
        events,
    };
    mark_critical_path(&mut ideal, graph);
    ideal
}

/// Gives overlapping events of one track lanes of their own (`label ·
/// lane 2`): one thread runs one operation at a time, so a track whose
/// events overlap stands for several threads the framework did not tell
/// apart (TensorFlow's CPU step_stats leave the thread id 0).
pub fn split_overlapping_tracks(timeline: &mut Timeline) {
    let mut lanes: Vec<(usize, f64, usize)> = Vec::new(); // (track, free at, new index)
    let mut labels: Vec<String> = Vec::new();
    let mut order: Vec<usize> = (0..timeline.events.len()).collect();
    order.sort_by(|&a, &b| {
        timeline.events[a]
            .start_us
            .total_cmp(&timeline.events[b].start_us)
    });
    for i in order {
        let e = &timeline.events[i];
        let free = lanes
            .iter()
            .position(|&(t, at, _)| t == e.track && at <= e.start_us);
        let lane = match free {
            Some(l) => l,
            None => {
                let nth = lanes.iter().filter(|l| l.0 == e.track).count();
                let base = timeline
                    .tracks
                    .get(e.track)
                    .cloned()
                    .unwrap_or_else(|| format!("track {}", e.track));
                labels.push(if nth == 0 {
                    base
                } else {
                    format!("{base} · lane {}", nth + 1)
                });
                lanes.push((e.track, 0.0, labels.len() - 1));
                lanes.len() - 1
            }
        };
        lanes[lane].1 = e.end_us();
        let index = lanes[lane].2;
        timeline.events[i].track = index;
    }
    timeline.tracks = labels;
}

/// A cell's trace from a framework's raw timeline of one pass; with
/// `ideal`, the ideal schedule of its durations too (the sequential pass's
/// durations are the ones "of ideal" is measured against).
pub fn finish(mut timeline: Timeline, graph: &Graph, ideal: bool) -> Trace {
    timeline.rebase();
    timeline.events.sort_by(|a, b| {
        a.start_us
            .total_cmp(&b.start_us)
            .then(a.track.cmp(&b.track))
    });
    split_overlapping_tracks(&mut timeline);
    map_to_ir(&mut timeline, graph);
    mark_critical_path(&mut timeline, graph);
    let ideal = ideal.then(|| ideal_schedule(&timeline, graph));
    let branch = branch_nodes(graph);
    let ids: HashMap<&str, NodeId> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let concurrency = timeline.concurrency(&|n| ids.get(n).is_some_and(|&i| branch[i]));
    let mut placement = std::collections::BTreeMap::new();
    for e in timeline
        .events
        .iter()
        .filter(|e| e.node.is_some() && !e.device.is_empty())
    {
        *placement.entry(e.device.clone()).or_insert(0) += 1;
    }
    Trace {
        timeline,
        ideal,
        concurrency,
        placement,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    pub(crate) use crate::frameworks::conformance::{diamond, diamond_of};

    fn ev(name: &str, track: usize, start: f64, dur: f64) -> OpEvent {
        OpEvent {
            name: name.into(),
            op: "op".into(),
            node: None,
            track,
            start_us: start,
            dur_us: dur,
            critical: false,
            device: String::new(),
        }
    }

    #[test]
    fn names_map_to_the_longest_ir_node_before_a_separator() {
        let g = diamond();
        let names: HashMap<&str, NodeId> = g
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect();
        assert_eq!(ir_node(&names, "left"), Some(("left", 2)));
        assert_eq!(ir_node(&names, "left/perm"), Some(("left", 2)));
        assert_eq!(ir_node(&names, "right_fused_relu"), Some(("right", 3)));
        assert_eq!(ir_node(&names, "stem:0"), Some(("stem", 1)));
        // a name that merely starts like a node's is not that node
        assert_eq!(ir_node(&names, "leftover"), None);
        assert_eq!(ir_node(&names, "MemcpyToHost"), None);
    }

    #[test]
    fn a_traced_diamond_maps_marks_and_measures() {
        let g = diamond();
        let raw = Timeline {
            source: "test".into(),
            tracks: vec!["t0".into(), "t1".into()],
            events: vec![
                ev("stem", 0, 1000.0, 10.0),
                ev("right", 1, 1010.0, 30.0),
                ev("left", 0, 1010.0, 20.0),
                ev("copy", 0, 1030.0, 1.0),
                OpEvent {
                    op: "Const".into(),
                    ..ev("left/w", 1, 1000.0, 0.5)
                },
                ev("add", 0, 1040.0, 5.0),
            ],
        };
        let t = finish(raw, &g, true);
        let tl = &t.timeline;
        assert_eq!(tl.events[0].start_us, 0.0);
        assert_eq!(tl.wall_us(), 45.0);
        let by_name = |n: &str| tl.events.iter().find(|e| e.name == n).unwrap();
        assert_eq!(by_name("copy").node, None);
        // a weight constant named after its node is framework-internal
        assert_eq!(by_name("left/w").node, None);
        assert_eq!(by_name("left").node.as_deref(), Some("left"));
        // the critical path goes through the branch that ended last
        let critical: Vec<&str> = tl
            .events
            .iter()
            .filter(|e| e.critical)
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(critical, ["stem", "right", "add"]);
        // left and right overlapped for 20 µs each: all of left, 2/3 of right
        let c = t.concurrency;
        assert_eq!((c.tracks, c.ops, c.internal), (2, 4, 2));
        assert!((c.branch_overlap - 40.0 / 50.0).abs() < 1e-9, "{c:?}");
        assert!(!c.sequential());
        // the ideal runs the branches side by side: span 10 + 30 + 5
        let ideal = t.ideal.unwrap();
        assert_eq!(ideal.tracks.len(), 2);
        assert_eq!(ideal.wall_us(), 45.0);
        let ideal_work: f64 = ideal.events.iter().map(|e| e.dur_us).sum();
        assert_eq!(ideal_work, 65.0);
        assert!(ideal.events.iter().any(|e| e.name == "right" && e.critical));
        assert!(ideal.events.iter().any(|e| e.name == "left" && !e.critical));
    }

    #[test]
    fn placement_counts_ir_operations_per_device() {
        let g = diamond();
        let on = |name: &str, device: &str, start: f64| OpEvent {
            device: device.into(),
            ..ev(name, 0, start, 1.0)
        };
        let raw = Timeline {
            source: "test".into(),
            tracks: vec!["t0".into()],
            events: vec![
                on("stem", "CUDA", 0.0),
                on("left", "CUDA", 1.0),
                on("right", "CPU", 2.0),
                // framework-internal work and events with no device count not
                on("MemcpyToHost", "CPU", 3.0),
                on("add", "", 4.0),
                on("fc", "CPU:0", 5.0),
            ],
        };
        let t = finish(raw, &g, false);
        assert_eq!(t.placement.get("CUDA"), Some(&2));
        assert_eq!(t.placement.get("CPU"), Some(&1));
        assert_eq!(t.placement.len(), 3);
        // every CPU device counts
        assert_eq!(t.on_cpu(), 2);
    }

    #[test]
    fn overlapping_events_of_one_track_get_lanes() {
        let mut t = Timeline {
            source: "test".into(),
            tracks: vec!["CPU:0".into(), "other".into()],
            events: vec![
                ev("a", 0, 0.0, 10.0),
                ev("b", 0, 5.0, 10.0),
                ev("c", 0, 10.0, 2.0),
                ev("d", 1, 0.0, 1.0),
                ev("e", 0, 6.0, 1.0),
            ],
        };
        split_overlapping_tracks(&mut t);
        let track =
            |n: &str| t.tracks[t.events.iter().find(|e| e.name == n).unwrap().track].clone();
        assert_eq!(track("a"), "CPU:0");
        assert_eq!(track("b"), "CPU:0 · lane 2");
        assert_eq!(track("c"), "CPU:0");
        assert_eq!(track("d"), "other");
        assert_eq!(track("e"), "CPU:0 · lane 3");
        assert_eq!(t.tracks.len(), 4);
        assert_eq!(t.concurrency(&|_| true).tracks, 4);
    }

    #[test]
    fn a_pass_on_one_thread_shows_no_overlap() {
        let g = diamond();
        let raw = Timeline {
            source: "test".into(),
            tracks: vec!["t0".into()],
            events: vec![
                ev("stem", 0, 0.0, 10.0),
                ev("left", 0, 10.0, 20.0),
                ev("right", 0, 30.0, 30.0),
                ev("add", 0, 60.0, 5.0),
            ],
        };
        let t = finish(raw, &g, true);
        assert!(t.concurrency.sequential());
        assert_eq!(t.concurrency.in_flight, 1.0);
        // its ideal would still have overlapped the branches
        assert_eq!(t.ideal.unwrap().wall_us(), 45.0);
    }
}
