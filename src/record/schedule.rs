//! Which schedule a parallel cell ran: the framework's own executor or
//! speedbench's cost-model schedule ([`crate::schedule`]), as a results file
//! stores it.

use serde::{Deserialize, Serialize};

/// A stage that ran lanes concurrently, as a cell records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ParallelStage {
    /// The stage's first node.
    pub first: String,
    /// Per lane: (nodes, intra-op threads).
    pub lanes: Vec<(usize, usize)>,
}

/// Which schedule a parallel cell ran, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScheduleRecord {
    /// `speedbench cost model over libtorch operations`, `... over ONNX
    /// Runtime segments`, or the framework's own executor.
    pub scheduler: String,
    pub stages: usize,
    pub parallel_stages: Vec<ParallelStage>,
    pub predicted_ms: f64,
    pub predicted_sequential_ms: f64,
    /// Calibration passes: (sequential median, schedule median) ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<(f64, f64)>,
    /// ORT segments: (the whole graph in one session, the segments one
    /// after another) ms, sequential: what the boundaries cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<(f64, f64)>,
    /// ORT segments: what they were cut from (ORT's optimised graph, or
    /// the IR and why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<String>,
    /// What ran: the cost model's schedule, or sequential and why.
    pub chosen: String,
    /// The schedule that ran, stage by stage, by IR node name: the cell's
    /// first process stores it and its other processes run it again
    /// without calibrating; empty in files from before process repetition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ran: Vec<StageNodes>,
}

impl ScheduleRecord {
    /// The machine's ideal speedup for this cell: the cost model's
    /// predicted sequential time over the best schedule it found from the
    /// measured per-operation times at each thread count (on this
    /// machine's cores, not the graph's unbounded ones); `None` where no
    /// cost model predicted (a framework's own executor).
    pub fn machine_ideal(&self) -> Option<f64> {
        (self.predicted_ms > 0.0 && self.predicted_sequential_ms > 0.0)
            .then(|| self.predicted_sequential_ms / self.predicted_ms)
    }
}

/// One stage of a stored schedule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum StageNodes {
    /// Nodes one after another at every intra-op thread.
    Sequential(Vec<String>),
    /// Lanes at the same time: each its nodes and intra-op threads.
    Parallel(Vec<LaneNodes>),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LaneNodes {
    pub nodes: Vec<String>,
    pub threads: usize,
}
