//! The traced pass of ONNX Runtime: one run with the run-level profiler on
//! (`RunOptionsEnableProfiling`, so the timed session is never profiled),
//! its JSON profile parsed into a [`Timeline`].

use std::ffi::CString;

use anyhow::{anyhow, bail, Context, Result};
use ort::session::{RunOptions, Session};
use ort::value::TensorRef;
use ort::AsPointer;
use serde::Deserialize;

use speedbench::graph::onnx;
use speedbench::record::{OpEvent, Timeline};

/// One event of ORT's profile (the Chrome trace-event objects it writes).
#[derive(Debug, Deserialize)]
struct ProfileEvent {
    #[serde(default)]
    cat: String,
    name: String,
    #[serde(default)]
    tid: u64,
    #[serde(default)]
    ts: f64,
    #[serde(default)]
    dur: f64,
    #[serde(default)]
    args: serde_json::Value,
}

/// The operations of an ORT profile: its `Node` events named
/// `<node>_kernel_time` (fences and session events left out), one track
/// per thread id in order of first appearance.
pub(super) fn parse_profile(text: &str) -> Result<Timeline> {
    let events: Vec<ProfileEvent> = serde_json::from_str(text)
        .context("ONNX Runtime's profile is not a JSON array of events")?;
    let mut tids: Vec<u64> = Vec::new();
    let mut out = Vec::new();
    for e in events.into_iter().filter(|e| e.cat == "Node") {
        let Some(node) = e.name.strip_suffix("_kernel_time") else {
            continue;
        };
        let track = match tids.iter().position(|&t| t == e.tid) {
            Some(i) => i,
            None => {
                tids.push(e.tid);
                tids.len() - 1
            }
        };
        let op = e
            .args
            .get("op_name")
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        let provider = e.args.get("provider").and_then(|v| v.as_str());
        out.push(OpEvent {
            name: node.to_string(),
            op: match provider {
                Some(p) if p != "CPUExecutionProvider" => format!("{op} ({p})"),
                _ => op.to_string(),
            },
            node: None,
            track,
            start_us: e.ts,
            dur_us: e.dur.max(0.0),
            critical: false,
            device: match provider {
                Some("CPUExecutionProvider") => "CPU".into(),
                Some("CUDAExecutionProvider") => "CUDA".into(),
                Some(p) => p.trim_end_matches("ExecutionProvider").into(),
                None => String::new(),
            },
        });
    }
    if out.is_empty() {
        bail!("ONNX Runtime's profile has no operation (Node) events");
    }
    Ok(Timeline {
        source: "ONNX Runtime profiler".into(),
        tracks: tids.iter().map(|t| format!("thread {t}")).collect(),
        events: out,
    })
}

/// One run of `session` on `input` with the run-level profiler writing
/// under a temporary folder; the profile parsed.
pub(super) fn traced_run(session: &mut Session, shape: Vec<i64>, data: &[f32]) -> Result<Timeline> {
    let dir = tempfile::tempdir().context("no temporary folder for ONNX Runtime's profile")?;
    let prefix = dir.path().join("ort_profile");
    let c_prefix = CString::new(prefix.to_string_lossy().as_bytes())?;
    let mut options = RunOptions::new()?;
    // SAFETY: a live run options object and a NUL-terminated path, which ORT
    // copies.
    let status =
        unsafe { (ort::api().RunOptionsEnableProfiling)(options.ptr_mut(), c_prefix.as_ptr()) };
    status_ok(status).context("ONNX Runtime refused run-level profiling")?;
    let tensor = TensorRef::from_array_view((shape, data))?;
    drop(session.run_with_options(ort::inputs![onnx::INPUT => tensor], &options)?);
    drop(options);
    let file = std::fs::read_dir(dir.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .context("ONNX Runtime wrote no profile for the traced run")?;
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    parse_profile(&text)
}

/// An `OrtStatus` pointer: null is success; otherwise its message, released.
fn status_ok(status: ort::sys::OrtStatusPtr) -> Result<()> {
    if status.0.is_null() {
        return Ok(());
    }
    // SAFETY: a status ORT returned, read once and released once.
    let msg = unsafe {
        let m = (ort::api().GetErrorMessage)(status.0);
        let s = std::ffi::CStr::from_ptr(m).to_string_lossy().into_owned();
        (ort::api().ReleaseStatus)(status.0);
        s
    };
    Err(anyhow!("{msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_events_become_operations_and_fences_do_not() {
        let text = r#"[
          {"cat":"Session","pid":1,"tid":7,"dur":900,"ts":10,"ph":"X","name":"model_run","args":{}},
          {"cat":"Node","pid":1,"tid":7,"dur":0,"ts":20,"ph":"X","name":"stem_fence_before","args":{"op_name":"Conv"}},
          {"cat":"Node","pid":1,"tid":7,"dur":300,"ts":21,"ph":"X","name":"stem_kernel_time","args":{"op_name":"Conv","provider":"CPUExecutionProvider"}},
          {"cat":"Node","pid":1,"tid":9,"dur":200,"ts":330,"ph":"X","name":"left_kernel_time","args":{"op_name":"FusedConv","provider":"CUDAExecutionProvider"}},
          {"cat":"Node","pid":1,"tid":7,"dur":250,"ts":330,"ph":"X","name":"right_kernel_time","args":{"op_name":"Conv"}}
        ]"#;
        let t = parse_profile(text).unwrap();
        assert_eq!(t.tracks, ["thread 7", "thread 9"]);
        let names: Vec<&str> = t.events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["stem", "left", "right"]);
        assert_eq!(
            (t.events[1].track, t.events[1].start_us, t.events[1].dur_us),
            (1, 330.0, 200.0)
        );
        assert_eq!(t.events[1].op, "FusedConv (CUDAExecutionProvider)");
        assert_eq!(t.events[2].op, "Conv");
        assert_eq!(
            (t.events[0].device.as_str(), t.events[1].device.as_str()),
            ("CPU", "CUDA")
        );
        assert_eq!(t.events[2].device, "");
    }

    #[test]
    fn a_profile_without_operations_is_an_error() {
        assert!(parse_profile("[]")
            .unwrap_err()
            .to_string()
            .contains("no operation"));
        assert!(parse_profile("{").is_err());
    }
}
