//! Chrome trace-event JSON (the format Perfetto and chrome://tracing open):
//! one process per cell, one track (thread) per framework thread or stream,
//! a complete event (`"ph": "X"`) per operation with its IR node in `args`.
//! The ideal schedule of each sequential cell is a process of its own.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::record::{CellRecord, Timeline};

/// The label of a cell's process.
fn label(c: &CellRecord) -> String {
    format!(
        "{} · {} · {} · {} · {} · batch {}",
        c.model, c.framework, c.mode, c.device, c.optimize, c.batch
    )
}

fn process(events: &mut Vec<Value>, pid: usize, name: &str, args: Value, timeline: &Timeline) {
    let mut meta = args;
    meta["name"] = json!(name);
    events.push(
        json!({"name": "process_name", "ph": "M", "ts": 0, "pid": pid, "tid": 0, "args": meta}),
    );
    events.push(json!({"name": "process_sort_index", "ph": "M", "ts": 0, "pid": pid, "tid": 0, "args": {"sort_index": pid}}));
    for (tid, track) in timeline.tracks.iter().enumerate() {
        events.push(json!({"name": "thread_name", "ph": "M", "ts": 0, "pid": pid, "tid": tid, "args": {"name": track}}));
    }
    for e in &timeline.events {
        let mut args = json!({"op": e.op, "critical": e.critical});
        match &e.node {
            Some(n) => args["ir_node"] = json!(n),
            None => args["framework_internal"] = json!(true),
        }
        events.push(json!({
            "name": e.node.as_deref().unwrap_or(&e.name),
            "cat": if e.node.is_some() { "op" } else { "internal" },
            "ph": "X",
            "ts": e.start_us,
            "dur": e.dur_us,
            "pid": pid,
            "tid": e.track,
            "args": args,
        }));
    }
}

/// The trace-event document of the cells that have a trace.
pub fn document(cells: &[&CellRecord]) -> Value {
    let mut events = Vec::new();
    let mut pid = 0;
    for c in cells {
        let Some(t) = &c.trace else { continue };
        pid += 1;
        let conc = &t.concurrency;
        let args = json!({
            "model": c.model,
            "framework": c.framework,
            "framework_version": c.framework_version,
            "mode": c.mode.to_string(),
            "device": c.device.to_string(),
            "optimize": c.optimize.to_string(),
            "batch": c.batch,
            "size": c.size,
            "host": c.host,
            "median_ms": c.latency.median,
            "traced_ms": t.timeline.wall_us() / 1e3,
            "source": t.timeline.source,
            "threads_or_streams_used": conc.tracks,
            "ops_in_flight": conc.in_flight,
            "branch_overlap": conc.branch_overlap,
        });
        process(&mut events, pid, &label(c), args, &t.timeline);
        if let Some(ideal) = &t.ideal {
            pid += 1;
            let name = format!("{} · ideal schedule", label(c));
            let args = json!({"model": c.model, "framework": c.framework, "source": ideal.source});
            process(&mut events, pid, &name, args, ideal);
        }
    }
    json!({"traceEvents": events, "displayTimeUnit": "ms"})
}

/// Checks a document against the trace-event format's required fields:
/// a `traceEvents` array whose events each have a string `name` and `ph`,
/// integer `pid` and `tid`, a numeric `ts`, and (complete events) a
/// non-negative `dur`.
pub fn validate(doc: &Value) -> Result<()> {
    let events = doc
        .get("traceEvents")
        .and_then(Value::as_array)
        .context("no traceEvents array")?;
    for (i, e) in events.iter().enumerate() {
        let field = |k: &str| e.get(k).with_context(|| format!("event {i} has no '{k}'"));
        field("name")?
            .as_str()
            .with_context(|| format!("event {i}: name is not a string"))?;
        let ph = field("ph")?
            .as_str()
            .with_context(|| format!("event {i}: ph is not a string"))?;
        for k in ["pid", "tid"] {
            field(k)?
                .as_u64()
                .with_context(|| format!("event {i}: {k} is not an integer"))?;
        }
        let ts = field("ts")?
            .as_f64()
            .with_context(|| format!("event {i}: ts is not a number"))?;
        if !ts.is_finite() || ts < 0.0 {
            bail!("event {i}: ts {ts} is not a time");
        }
        match ph {
            "X" => {
                let dur = field("dur")?
                    .as_f64()
                    .with_context(|| format!("event {i}: dur is not a number"))?;
                if !dur.is_finite() || dur < 0.0 {
                    bail!("event {i}: dur {dur} is negative or not finite");
                }
            }
            "M" => {
                field("args")?
                    .get("name")
                    .or_else(|| e["args"].get("sort_index"))
                    .with_context(|| format!("event {i}: metadata without a name"))?;
            }
            "B" | "E" | "i" | "I" | "C" => {}
            other => bail!("event {i}: unknown phase '{other}'"),
        }
    }
    Ok(())
}

/// Writes the document to `path`, validated first.
pub fn write(path: &std::path::Path, cells: &[&CellRecord]) -> Result<usize> {
    let doc = document(cells);
    validate(&doc)?;
    let n = doc["traceEvents"]
        .as_array()
        .map_or(0, |e| e.iter().filter(|e| e["ph"] == "X").count());
    let text = serde_json::to_string(&doc)?;
    std::fs::write(path, text)
        .with_context(|| format!("cannot write the trace {}", path.display()))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Mode, OpEvent, Optimize};

    fn cell(mode: Mode) -> CellRecord {
        let g = super::super::tests::diamond();
        let ev = |name: &str, track, start, dur| OpEvent {
            name: name.into(),
            op: "conv".into(),
            node: None,
            track,
            start_us: start,
            dur_us: dur,
            critical: false,
            device: String::new(),
        };
        let raw = Timeline {
            source: "test".into(),
            tracks: vec!["worker 0".into(), "worker 1".into()],
            events: vec![
                ev("stem", 0, 5.0, 10.0),
                ev("left", 0, 15.0, 10.0),
                ev("right", 1, 15.0, 12.0),
                ev("MemcpyToHost", 1, 27.0, 1.0),
                ev("add", 0, 28.0, 2.0),
            ],
        };
        let json = serde_json::json!({
            "model": "diamond", "framework": "torch", "framework_version": "2", "device": "cpu",
            "mode": mode, "optimize": Optimize::Default, "batch": 1, "size": 8, "warmup": 0,
            "intra_threads": 1, "inter_threads": 2, "params": 0, "macs": 0, "ideal_speedup": 1.0,
            "host": "h", "samples_ms": [1.0], "latency": crate::record::stats::summarise(&[1.0]),
        });
        let mut c: CellRecord = serde_json::from_value(json).unwrap();
        c.trace = Some(super::super::finish(raw, &g, mode == Mode::Sequential));
        c
    }

    #[test]
    fn a_document_has_a_process_per_cell_and_validates() {
        let (s, p) = (cell(Mode::Sequential), cell(Mode::Parallel));
        let doc = document(&[&s, &p]);
        validate(&doc).unwrap();
        let events = doc["traceEvents"].as_array().unwrap();
        let names: Vec<&str> = events
            .iter()
            .filter(|e| e["name"] == "process_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        // the sequential cell, its ideal schedule, the parallel cell
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names[0].contains("diamond · torch · sequential"));
        assert!(names[1].ends_with("ideal schedule"));
        assert!(names[2].contains("parallel"));
        let meta = &events.iter().find(|e| e["name"] == "process_name").unwrap()["args"];
        assert_eq!(meta["framework"], "torch");
        assert_eq!(meta["optimize"], "default");
        let ops: Vec<&Value> = events
            .iter()
            .filter(|e| e["ph"] == "X" && e["pid"] == 1)
            .collect();
        assert_eq!(ops.len(), 5);
        let copy = ops.iter().find(|e| e["name"] == "MemcpyToHost").unwrap();
        assert_eq!(copy["args"]["framework_internal"], true);
        let right = ops.iter().find(|e| e["name"] == "right").unwrap();
        assert_eq!(
            (right["tid"].as_u64(), right["ts"].as_f64()),
            (Some(1), Some(10.0))
        );
        assert_eq!(right["args"]["ir_node"], "right");
        // every track is named
        let threads = events
            .iter()
            .filter(|e| e["name"] == "thread_name" && e["pid"] == 1)
            .count();
        assert_eq!(threads, 2);
    }

    #[test]
    fn validation_names_what_is_missing() {
        let bad = |events: Value| {
            validate(&serde_json::json!({"traceEvents": events}))
                .unwrap_err()
                .to_string()
        };
        assert!(
            bad(serde_json::json!([{"ph": "X", "ts": 0, "dur": 1, "pid": 1, "tid": 0}]))
                .contains("no 'name'")
        );
        assert!(
            bad(serde_json::json!([{"name": "a", "ph": "X", "ts": 0, "pid": 1, "tid": 0}]))
                .contains("no 'dur'")
        );
        assert!(bad(
            serde_json::json!([{"name": "a", "ph": "X", "ts": 0, "dur": -1, "pid": 1, "tid": 0}])
        )
        .contains("negative"));
        assert!(bad(
            serde_json::json!([{"name": "a", "ph": "X", "ts": 0, "dur": 1, "pid": "p", "tid": 0}])
        )
        .contains("pid is not"));
        assert!(
            bad(serde_json::json!([{"name": "a", "ph": "Q", "ts": 0, "pid": 1, "tid": 0}]))
                .contains("unknown phase")
        );
        assert!(validate(&serde_json::json!({"events": []}))
            .unwrap_err()
            .to_string()
            .contains("traceEvents"));
        validate(&serde_json::json!({"traceEvents": [{"name": "a", "ph": "X", "ts": 0.5, "dur": 0, "pid": 1, "tid": 3}]})).unwrap();
    }

    #[test]
    fn cells_without_a_trace_are_left_out() {
        let mut c = cell(Mode::Parallel);
        c.trace = None;
        let doc = document(&[&c]);
        assert_eq!(doc["traceEvents"].as_array().unwrap().len(), 0);
    }
}
