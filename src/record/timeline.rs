//! One traced pass of a cell: every operation the framework ran, on which
//! thread or stream and when ([`Timeline`]), the ideal schedule of the same
//! operations, and the concurrency measured from the timeline
//! ([`Concurrency`]).

use serde::{Deserialize, Serialize};

/// One operation of a traced pass.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OpEvent {
    /// The framework's name for the operation (after its fusions and
    /// renames).
    pub name: String,
    /// The operation's type as the framework names it (`Conv`,
    /// `_FusedConv2D`, `conv`).
    pub op: String,
    /// The IR node it came from; `None` for framework-internal work (copies,
    /// layout changes, constants) that maps to no node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Index into [`Timeline::tracks`].
    pub track: usize,
    /// Start from the start of the pass, µs.
    pub start_us: f64,
    pub dur_us: f64,
    /// On the pass's critical path: the chain of operations, input to
    /// output, each waiting for the one before it that ended last.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub critical: bool,
    /// Where it ran, as the framework names it (`CPU`, `CUDA`, `GPU:0`);
    /// empty where the framework does not say.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
}

impl OpEvent {
    pub fn end_us(&self) -> f64 {
        self.start_us + self.dur_us
    }
}

/// The operations of one pass, by thread or stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Timeline {
    /// What recorded it: the framework's profiler or speedbench's executor.
    pub source: String,
    /// Thread or stream labels; [`OpEvent::track`] indexes them.
    pub tracks: Vec<String>,
    pub events: Vec<OpEvent>,
}

impl Timeline {
    /// First start to last end, µs.
    pub fn wall_us(&self) -> f64 {
        let start = self
            .events
            .iter()
            .map(|e| e.start_us)
            .fold(f64::INFINITY, f64::min);
        let end = self.events.iter().map(OpEvent::end_us).fold(0.0, f64::max);
        if start.is_finite() {
            (end - start).max(0.0)
        } else {
            0.0
        }
    }

    /// Shifts the events so that the first starts at 0.
    pub fn rebase(&mut self) {
        let start = self
            .events
            .iter()
            .map(|e| e.start_us)
            .fold(f64::INFINITY, f64::min);
        if start.is_finite() {
            for e in &mut self.events {
                e.start_us -= start;
            }
        }
    }

    /// The measured concurrency; `branch(node)` says whether an IR node has
    /// another node it neither depends on nor feeds (work that could
    /// overlap).
    pub fn concurrency(&self, branch: &dyn Fn(&str) -> bool) -> Concurrency {
        let wall = self.wall_us();
        let busy: f64 = self.events.iter().map(|e| e.dur_us).sum();
        let mut tracks: Vec<usize> = self.events.iter().map(|e| e.track).collect();
        tracks.sort_unstable();
        tracks.dedup();
        let ir: Vec<&OpEvent> = self.events.iter().filter(|e| e.node.is_some()).collect();
        let overlapped = overlapped_us(&ir);
        let is_branch = |e: &OpEvent| e.node.as_deref().is_some_and(branch);
        let branch_work: f64 = ir.iter().filter(|e| is_branch(e)).map(|e| e.dur_us).sum();
        let branch_overlapped: f64 = ir
            .iter()
            .zip(&overlapped)
            .filter(|(e, _)| is_branch(e))
            .map(|(_, o)| o)
            .sum();
        let ir_work: f64 = ir.iter().map(|e| e.dur_us).sum();
        let all_overlapped: f64 = overlapped.iter().sum();
        Concurrency {
            tracks: tracks.len(),
            in_flight: if wall > 0.0 { busy / wall } else { 0.0 },
            branch_overlap: share(branch_overlapped, branch_work),
            overlap: share(all_overlapped, ir_work),
            ops: ir.len(),
            internal: self.events.len() - ir.len(),
        }
    }
}

fn share(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        (part / whole).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Per event, the time during which at least one other event ran, µs
/// (a sweep over the events' starts and ends).
fn overlapped_us(events: &[&OpEvent]) -> Vec<f64> {
    let mut edges: Vec<(f64, bool, usize)> = Vec::with_capacity(events.len() * 2);
    for (i, e) in events.iter().enumerate() {
        if e.dur_us > 0.0 {
            edges.push((e.start_us, true, i));
            edges.push((e.end_us(), false, i));
        }
    }
    // ends before starts at the same instant: touching is not overlapping
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut out = vec![0.0; events.len()];
    let mut active: Vec<usize> = Vec::new();
    let mut last = 0.0;
    for (t, start, i) in edges {
        if active.len() >= 2 {
            for &a in &active {
                out[a] += t - last;
            }
        }
        last = t;
        if start {
            active.push(i);
        } else if let Some(p) = active.iter().position(|&a| a == i) {
            active.swap_remove(p);
        }
    }
    out
}

/// What a traced pass shows about concurrency.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Concurrency {
    /// Threads or streams that ran at least one operation.
    pub tracks: usize,
    /// Operations in flight on average: summed operation time / wall time
    /// of the pass.
    pub in_flight: f64,
    /// Share of the branch work (operations of IR nodes that have
    /// independent siblings) that ran while another operation ran, 0-1.
    pub branch_overlap: f64,
    /// Share of all IR operation time that overlapped another operation.
    pub overlap: f64,
    /// Events mapped to IR nodes.
    pub ops: usize,
    /// Framework-internal events (mapped to no IR node).
    pub internal: usize,
}

/// Below this share of overlapped operation time a pass counts as having
/// run sequentially (the edges of two events that touch, clock skew
/// between threads).
pub const NO_OVERLAP: f64 = 0.01;

impl Trace {
    /// IR operations that ran on the host's CPU.
    pub fn on_cpu(&self) -> usize {
        self.placement
            .iter()
            .filter(|(d, _)| d.starts_with("CPU"))
            .map(|(_, n)| n)
            .sum()
    }
}

impl Concurrency {
    /// The pass ran one operation at a time.
    pub fn sequential(&self) -> bool {
        self.overlap < NO_OVERLAP
    }
}

/// A cell's traced pass.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Trace {
    /// What ran, as the framework (or speedbench's executor) recorded it.
    pub timeline: Timeline,
    /// The same IR operations with their measured durations, each started
    /// as soon as its inputs were done, with as many lanes as that takes
    /// (work/span: the schedule "of ideal" measures against).
    /// Sequential cells only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ideal: Option<Timeline>,
    pub concurrency: Concurrency,
    /// IR operations per device that ran them (`CPU`, `CUDA`, `GPU:0`):
    /// a `--device cuda` cell with operations on the CPU fell back there.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub placement: std::collections::BTreeMap<String, usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(node: Option<&str>, track: usize, start: f64, dur: f64) -> OpEvent {
        OpEvent {
            name: node.unwrap_or("internal").into(),
            op: "x".into(),
            node: node.map(str::to_string),
            track,
            start_us: start,
            dur_us: dur,
            critical: false,
            device: String::new(),
        }
    }

    fn timeline(events: Vec<OpEvent>) -> Timeline {
        Timeline {
            source: "test".into(),
            tracks: vec!["a".into(), "b".into(), "c".into()],
            events,
        }
    }

    #[test]
    fn one_op_at_a_time_is_sequential() {
        // touching ends and starts do not overlap
        let t = timeline(vec![
            ev(Some("stem"), 0, 0.0, 10.0),
            ev(Some("b1"), 0, 10.0, 5.0),
            ev(Some("b2"), 1, 15.0, 5.0),
            ev(None, 2, 20.0, 10.0),
        ]);
        let c = t.concurrency(&|n| n.starts_with('b'));
        assert_eq!(t.wall_us(), 30.0);
        assert_eq!(c.tracks, 3);
        assert_eq!(c.in_flight, 1.0);
        assert_eq!(c.overlap, 0.0);
        assert_eq!(c.branch_overlap, 0.0);
        assert_eq!((c.ops, c.internal), (3, 1));
        assert!(c.sequential());
    }

    #[test]
    fn an_instant_event_overlaps_nothing() {
        // zero-length events (ORT's fences) neither overlap nor stay open
        let t = timeline(vec![
            ev(Some("fence"), 1, 5.0, 0.0),
            ev(Some("stem"), 0, 0.0, 10.0),
            ev(Some("b1"), 0, 10.0, 5.0),
        ]);
        let c = t.concurrency(&|_| true);
        assert_eq!(c.overlap, 0.0);
        assert!(c.sequential());
    }

    #[test]
    fn the_no_overlap_threshold_is_exclusive() {
        let k = |overlap: f64| Concurrency {
            tracks: 2,
            in_flight: 1.0,
            branch_overlap: overlap,
            overlap,
            ops: 2,
            internal: 0,
        };
        assert!(k(NO_OVERLAP * 0.99).sequential());
        assert!(!k(NO_OVERLAP).sequential());
    }

    #[test]
    fn overlapping_branches_are_measured() {
        // b1 [10, 20) and b2 [14, 24) overlap for 6 µs each
        let t = timeline(vec![
            ev(Some("stem"), 0, 0.0, 10.0),
            ev(Some("b1"), 0, 10.0, 10.0),
            ev(Some("b2"), 1, 14.0, 10.0),
            ev(Some("out"), 0, 24.0, 6.0),
        ]);
        let c = t.concurrency(&|n| n.starts_with('b'));
        assert_eq!(c.tracks, 2);
        assert!((c.in_flight - 36.0 / 30.0).abs() < 1e-12);
        assert!((c.branch_overlap - 12.0 / 20.0).abs() < 1e-12);
        assert!((c.overlap - 12.0 / 36.0).abs() < 1e-12);
        assert!(!c.sequential());
        // internal events count for in-flight but not for overlap
        let mut t2 = t.clone();
        t2.events.push(ev(None, 2, 0.0, 30.0));
        let c2 = t2.concurrency(&|n| n.starts_with('b'));
        assert_eq!(c2.overlap, c.overlap);
        assert!((c2.in_flight - 66.0 / 30.0).abs() < 1e-12);
    }

    #[test]
    fn three_at_once_counts_each_overlapped_event() {
        let t = timeline(vec![
            ev(Some("b1"), 0, 0.0, 10.0),
            ev(Some("b2"), 1, 0.0, 10.0),
            ev(Some("b3"), 2, 5.0, 10.0),
        ]);
        let c = t.concurrency(&|_| true);
        // b1, b2 overlap all 10; b3 overlaps for 5 of its 10
        assert!((c.branch_overlap - 25.0 / 30.0).abs() < 1e-12);
    }

    #[test]
    fn an_empty_timeline_has_no_concurrency() {
        let t = timeline(vec![]);
        assert_eq!(t.wall_us(), 0.0);
        let c = t.concurrency(&|_| true);
        assert_eq!((c.tracks, c.in_flight, c.overlap), (0, 0.0, 0.0));
    }

    #[test]
    fn rebase_moves_the_first_start_to_zero() {
        let mut t = timeline(vec![
            ev(Some("a"), 0, 100.0, 5.0),
            ev(Some("b"), 0, 107.0, 1.0),
        ]);
        // first start to last end, wherever the clock started
        assert_eq!(t.wall_us(), 8.0);
        t.rebase();
        assert_eq!(t.events[0].start_us, 0.0);
        assert_eq!(t.events[1].start_us, 7.0);
        assert_eq!(t.wall_us(), 8.0);
    }
}
