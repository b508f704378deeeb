//! The traced pass of TensorFlow: one run with `RunOptions.trace_level =
//! FULL_TRACE`, its `RunMetadata.step_stats` decoded (our own prost
//! messages, as for `ConfigProto`) into a [`Timeline`].

use anyhow::{bail, Context, Result};
use prost::Message;

use speedbench::record::{OpEvent, Timeline};

#[derive(Clone, PartialEq, prost::Message)]
pub struct RunOptions {
    /// `FULL_TRACE` is 3.
    #[prost(int32, tag = "1")]
    pub trace_level: i32,
}

pub const FULL_TRACE: i32 = 3;

#[derive(Clone, PartialEq, prost::Message)]
pub struct RunMetadata {
    #[prost(message, optional, tag = "1")]
    pub step_stats: Option<StepStats>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StepStats {
    #[prost(message, repeated, tag = "1")]
    pub dev_stats: Vec<DeviceStepStats>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceStepStats {
    #[prost(string, tag = "1")]
    pub device: String,
    #[prost(message, repeated, tag = "2")]
    pub node_stats: Vec<NodeExecStats>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeExecStats {
    #[prost(string, tag = "1")]
    pub node_name: String,
    #[prost(int64, tag = "2")]
    pub all_start_micros: i64,
    #[prost(int64, tag = "3")]
    pub op_start_rel_micros: i64,
    #[prost(int64, tag = "4")]
    pub op_end_rel_micros: i64,
    #[prost(int64, tag = "5")]
    pub all_end_rel_micros: i64,
    /// `name = Op(inputs)`.
    #[prost(string, tag = "8")]
    pub timeline_label: String,
    #[prost(uint32, tag = "10")]
    pub thread_id: u32,
    #[prost(int64, tag = "13")]
    pub all_start_nanos: i64,
    #[prost(int64, tag = "14")]
    pub op_start_rel_nanos: i64,
    #[prost(int64, tag = "15")]
    pub op_end_rel_nanos: i64,
    #[prost(int64, tag = "16")]
    pub all_end_rel_nanos: i64,
}

/// The serialised `RunOptions` of a traced run.
pub fn full_trace_options() -> Vec<u8> {
    RunOptions {
        trace_level: FULL_TRACE,
    }
    .encode_to_vec()
}

impl NodeExecStats {
    /// (start, duration) of the operation itself, µs: nanoseconds where
    /// TensorFlow filled them, else microseconds.
    fn span_us(&self) -> (f64, f64) {
        let (start, op_start, op_end, all_end) = if self.all_start_nanos != 0 {
            (
                self.all_start_nanos,
                self.op_start_rel_nanos,
                self.op_end_rel_nanos,
                self.all_end_rel_nanos,
            )
        } else {
            let k = 1000;
            (
                self.all_start_micros * k,
                self.op_start_rel_micros * k,
                self.op_end_rel_micros * k,
                self.all_end_rel_micros * k,
            )
        };
        let (s, e) = if op_end > op_start {
            (op_start, op_end)
        } else {
            (0, all_end)
        };
        ((start + s) as f64 / 1e3, (e - s).max(0) as f64 / 1e3)
    }

    /// The op type from the timeline label `name = Op(inputs)`.
    fn op_type(&self) -> String {
        self.timeline_label
            .split_once(" = ")
            .and_then(|(_, rest)| rest.split('(').next())
            .unwrap_or("")
            .to_string()
    }
}

/// The operations of a run's metadata. On a GPU the per-stream devices
/// (`.../stream:N`, not the `stream:all` summary) carry the kernels; when
/// they are present the GPU's host-side launch records are left out. One
/// track per (device, thread) or stream.
pub fn parse_metadata(bytes: &[u8]) -> Result<Timeline> {
    let meta = RunMetadata::decode(bytes).context("TensorFlow's RunMetadata does not decode")?;
    let stats = meta
        .step_stats
        .context("TensorFlow returned no step_stats")?;
    let is_stream = |d: &str| d.contains("/stream:") && !d.ends_with("/stream:all");
    let has_streams = stats.dev_stats.iter().any(|d| is_stream(&d.device));
    let mut tracks: Vec<String> = Vec::new();
    let mut events = Vec::new();
    for dev in &stats.dev_stats {
        let stream = is_stream(&dev.device);
        let gpu_host = dev.device.contains("GPU") && !stream;
        if dev.device.ends_with("/stream:all") || (has_streams && gpu_host) {
            continue;
        }
        let short = dev
            .device
            .rsplit("/device:")
            .next()
            .unwrap_or(&dev.device)
            .to_string();
        // the weights are constants: handing out a reference is no work
        for n in dev.node_stats.iter().filter(|n| n.op_type() != "Const") {
            // TensorFlow leaves the CPU thread id 0: overlapping operations then
            // get lanes of their own (`trace::split_overlapping_tracks`)
            let label = if stream {
                short.clone()
            } else {
                format!("{short} thread {}", n.thread_id)
            };
            let track = match tracks.iter().position(|t| *t == label) {
                Some(i) => i,
                None => {
                    tracks.push(label);
                    tracks.len() - 1
                }
            };
            let (start_us, dur_us) = n.span_us();
            // GPU stream records are named `node:Op`
            let (name, op) = match n.node_name.split_once(':') {
                Some((name, op)) if stream => (name.to_string(), op.to_string()),
                _ => (n.node_name.clone(), n.op_type()),
            };
            events.push(OpEvent {
                name,
                op,
                node: None,
                track,
                start_us,
                dur_us,
                critical: false,
                device: short.split('/').next().unwrap_or_default().to_string(),
            });
        }
    }
    if events.is_empty() {
        bail!("TensorFlow's step_stats hold no operation");
    }
    Ok(Timeline {
        source: "TensorFlow step_stats (FULL_TRACE)".into(),
        tracks,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, label: &str, tid: u32, start_ns: i64, dur_ns: i64) -> NodeExecStats {
        NodeExecStats {
            node_name: name.into(),
            timeline_label: label.into(),
            thread_id: tid,
            all_start_nanos: start_ns,
            op_start_rel_nanos: 100,
            op_end_rel_nanos: 100 + dur_ns,
            all_end_rel_nanos: 200 + dur_ns,
            ..Default::default()
        }
    }

    #[test]
    fn cpu_step_stats_become_operations_per_thread() {
        let meta = RunMetadata {
            step_stats: Some(StepStats {
                dev_stats: vec![DeviceStepStats {
                    device: "/job:localhost/replica:0/task:0/device:CPU:0".into(),
                    node_stats: vec![
                        node("_SOURCE", "_SOURCE = NoOp()", 5, 1_000_000, 1_000),
                        node("stem/w", "stem/w = Const()", 5, 1_001_000, 1_000),
                        node(
                            "stem",
                            "stem = _FusedConv2D(input, stem/w)",
                            5,
                            1_002_000,
                            40_000,
                        ),
                        node("left", "left = Conv2D(stem, left/w)", 6, 1_050_000, 20_000),
                    ],
                }],
            }),
        };
        let t = parse_metadata(&meta.encode_to_vec()).unwrap();
        assert_eq!(t.tracks, ["CPU:0 thread 5", "CPU:0 thread 6"]);
        let stem = &t.events[1];
        assert_eq!(
            (stem.name.as_str(), stem.op.as_str(), stem.track),
            ("stem", "_FusedConv2D", 0)
        );
        assert_eq!((stem.start_us, stem.dur_us), (1002.1, 40.0));
        assert_eq!(t.events[2].track, 1);
        assert_eq!(t.events[2].device, "CPU:0");
    }

    #[test]
    fn gpu_streams_replace_the_host_side_launches() {
        let dev = |d: &str, n: Vec<NodeExecStats>| DeviceStepStats {
            device: d.into(),
            node_stats: n,
        };
        let meta = RunMetadata {
            step_stats: Some(StepStats {
                dev_stats: vec![
                    dev(
                        "/job:localhost/replica:0/task:0/device:GPU:0",
                        vec![node("stem", "stem = Conv2D()", 1, 0, 5_000)],
                    ),
                    dev(
                        "/device:GPU:0/stream:all",
                        vec![node("stem:Conv2D", "", 0, 1_000, 30_000)],
                    ),
                    dev(
                        "/device:GPU:0/stream:7",
                        vec![node("stem:Conv2D", "", 0, 1_000, 30_000)],
                    ),
                ],
            }),
        };
        let t = parse_metadata(&meta.encode_to_vec()).unwrap();
        assert_eq!(t.tracks, ["GPU:0/stream:7"]);
        assert_eq!(t.events.len(), 1);
        assert_eq!(
            (t.events[0].name.as_str(), t.events[0].op.as_str()),
            ("stem", "Conv2D")
        );
    }

    #[test]
    fn microseconds_are_read_where_nanoseconds_are_missing() {
        let n = NodeExecStats {
            node_name: "a".into(),
            all_start_micros: 10,
            op_start_rel_micros: 1,
            op_end_rel_micros: 4,
            all_end_rel_micros: 5,
            ..Default::default()
        };
        assert_eq!(n.span_us(), (11.0, 3.0));
        assert!(parse_metadata(&RunMetadata::default().encode_to_vec()).is_err());
    }
}
