//! The traced pass of speedbench's own executor: each operation's start and
//! end on the worker thread (CPU) or stream (CUDA events) that ran it.

use std::time::Instant;

use super::plan::Plan;
use speedbench::graph::NodeId;
use speedbench::record::{OpEvent, Timeline};

/// One executed node: which track ran it and when, µs from the pass start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Span {
    pub node: NodeId,
    pub track: usize,
    pub start_us: f64,
    pub end_us: f64,
}

impl Span {
    /// A span measured on the host clock from `origin`.
    pub(super) fn host(
        node: NodeId,
        track: usize,
        origin: Instant,
        start: Instant,
        end: Instant,
    ) -> Span {
        let us = |t: Instant| t.saturating_duration_since(origin).as_secs_f64() * 1e6;
        Span {
            node,
            track,
            start_us: us(start),
            end_us: us(end),
        }
    }
}

/// The timeline of a pass: one event per span, named and typed by the IR
/// node it ran (the executor runs IR nodes, so every event maps exactly).
pub(super) fn timeline(
    plan: &Plan,
    source: &str,
    device: &str,
    tracks: Vec<String>,
    spans: &[Span],
) -> Timeline {
    Timeline {
        source: source.into(),
        tracks,
        events: spans
            .iter()
            .map(|s| OpEvent {
                name: plan.names[s.node].clone(),
                op: plan.kind(s.node).into(),
                node: Some(plan.names[s.node].clone()),
                track: s.track,
                start_us: s.start_us,
                dur_us: (s.end_us - s.start_us).max(0.0),
                critical: false,
                device: device.into(),
            })
            .collect(),
    }
}
