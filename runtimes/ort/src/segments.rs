//! ONNX Runtime's parallel mode under speedbench's schedule: ORT 1.31's own
//! parallel executor runs every node on one thread here (its timelines), so
//! speedbench splits the IR at its cut nodes ([`speedbench::schedule`]), makes
//! one ONNX model and one ORT session per segment (a run of sequential
//! stages, or one lane of a parallel stage), and runs the lanes of a stage
//! on concurrent threads, each session with the lane's intra-op threads.
//! Values pass between sessions as ORT values, never copied.
//!
//! The segments are cut from ORT's own optimised graph ([`super::optimized`]),
//! so ORT's fusions and its blocked NCHWc layout carry across their
//! boundaries; where that graph cannot be split along the schedule (or its
//! parts disagree with the whole graph), from the IR.
//!
//! The first pass calibrates by the one flow of [`speedbench::schedule::calibrate`]:
//! ORT's profiler times every node in a whole-graph session at all
//! intra-op threads and at a lane's, the cost model plans, and interleaved
//! passes measure the schedule against the whole graph in one session
//! (the schedule is kept only if it is faster) and, for the record, the
//! segments run one after another at every intra-op thread (what the
//! boundaries cost).

use std::collections::HashMap;

use anyhow::{Context, Result};
use ndarray::{Array2, Array4};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::DynValue;

use super::config::{session_config, SessionConfig};
use super::session::OrtSession;
use speedbench::frameworks::{check_input, Device, Mode, PrepareOptions, Prepared};
use speedbench::graph::onnx_split::{self, PartModel};
use speedbench::graph::weights::Weights;
use speedbench::graph::{onnx, Graph, NodeId};
use speedbench::record::{OpEvent, ScheduleRecord, Timeline};
use speedbench::schedule::calibrate::{calibrate, Calibrated, Candidate};
use speedbench::schedule::{Schedule, Stage};

/// A part's outputs by ONNX value name.
type Values = Vec<(String, DynValue)>;
/// A part's span in a traced pass: (track, start µs, end µs).
type PartSpan = (usize, f64, f64);

/// What starting and joining a parallel stage of sessions costs, µs.
const STAGE_OVERHEAD_US: f64 = 80.0;
/// One ORT session over a part of the graph.
struct Part {
    session: Session,
    /// ONNX value names of its inputs and outputs.
    inputs: Vec<String>,
    outputs: Vec<String>,
    /// Its session's intra-op threads.
    threads: usize,
    /// The IR node it ends with, which names it in a trace.
    last: String,
}

enum Step {
    One(Part),
    Lanes(Vec<Part>),
}

/// The calibrated schedule.
struct Ready {
    steps: Vec<Step>,
    record: ScheduleRecord,
    /// Lanes of the widest stage.
    lanes: usize,
    /// The whole graph in one sequential session, where the schedule lost
    /// to it.
    fallback: Option<OrtSession>,
}

pub(super) struct Segmented {
    graph: Graph,
    /// Kept until calibration has built the segments.
    weights: Option<Weights>,
    opts: PrepareOptions,
    ready: Option<Ready>,
}

impl Segmented {
    pub(super) fn new(graph: &Graph, weights: &Weights, opts: &PrepareOptions) -> Segmented {
        Segmented {
            graph: graph.clone(),
            weights: Some(weights.clone()),
            opts: opts.clone(),
            ready: None,
        }
    }

    fn config(&self, intra: usize) -> SessionConfig {
        let mut c = session_config(&PrepareOptions {
            mode: Mode::Sequential,
            ..self.opts.clone()
        });
        c.intra_threads = intra;
        c
    }

    /// A part cut from the IR: `nodes` as an ONNX model of their own.
    fn ir_part(&self, weights: &Weights, nodes: &[NodeId], threads: usize) -> Result<Part> {
        let seg = onnx::segment(&self.graph, weights, nodes)?;
        let session = super::session(&seg.bytes, &self.config(threads), Device::Cpu)?;
        let name = |&i: &NodeId| onnx::value_name(&self.graph, i);
        Ok(Part {
            session,
            inputs: seg.inputs.iter().map(name).collect(),
            outputs: seg.outputs.iter().map(name).collect(),
            threads,
            last: self.last_name(nodes),
        })
    }

    /// A part cut from ORT's optimised graph, loaded with graph
    /// optimisations off (it is optimised already).
    fn optimized_part(&self, m: &PartModel, nodes: &[NodeId], threads: usize) -> Result<Part> {
        let mut config = self.config(threads);
        config.optimization = GraphOptimizationLevel::Disable;
        Ok(Part {
            session: super::session(&m.bytes(), &config, Device::Cpu)
                .context("a part of ORT's optimised graph")?,
            inputs: m.inputs.clone(),
            outputs: m.outputs.clone(),
            threads,
            last: self.last_name(nodes),
        })
    }

    /// `session` of the whole graph as a prepared sequential graph.
    fn whole(&self, session: Session, threads: usize) -> OrtSession {
        OrtSession::new(
            session,
            Device::Cpu,
            (self.graph.input(), self.graph.num_classes()),
            (threads, 1),
            false,
        )
    }

    /// The IR node a part ends with, which names it in a trace.
    fn last_name(&self, nodes: &[NodeId]) -> String {
        nodes
            .last()
            .map_or(String::new(), |&n| self.graph.nodes[n].name.clone())
    }

    /// Calibrates on `input` by the one flow ([`calibrate`]): the cost
    /// model's plan, built as segments, against the whole graph in one
    /// session; the segments one after another beside them (what the
    /// boundaries alone cost).
    fn calibrate(&mut self, input: &Array4<f32>) -> Result<Ready> {
        let weights = self
            .weights
            .take()
            .context("ORT segments: calibrated twice")?;
        let threads = self.opts.intra_threads.max(1);
        let workers = self.opts.inter_threads.max(1);
        let whole_bytes = onnx::to_onnx(&self.graph, &weights)?;
        let session = super::session(&whole_bytes, &self.config(threads), Device::Cpu)?;
        let mut c = Calibrating {
            segmented: self,
            whole: self.whole(session, threads),
            narrow: None,
            weights,
            whole_bytes,
            input,
            split_steps: Vec::new(),
            steps: Vec::new(),
            record: None,
        };
        let found = calibrate(&mut c, &self.graph, threads, workers, STAGE_OVERHEAD_US)?;
        let mut record = c.record.take().context("ORT segments: no plan built")?;
        if let (Some(w), Some(split)) = (found.sequential_ms, found.extra_ms) {
            record.boundary = Some((w, split));
        }
        let runs = found.settle(&mut record, "for the whole graph in one session");
        let mut ready = Ready {
            lanes: widest(&c.steps),
            steps: std::mem::take(&mut c.steps),
            record,
            fallback: None,
        };
        if !runs {
            ready.steps.clear();
            ready.lanes = 1;
            ready.fallback = Some(c.whole);
            ready.record.ran = sequential(&self.graph).stored(&self.graph);
        }
        Ok(ready)
    }

    /// The schedule an earlier process of the cell calibrated and chose
    /// (`record.ran`), built again without calibrating: its segments, or
    /// the whole graph in one session where it chose sequential.
    fn reuse(&mut self, record: ScheduleRecord, input: &Array4<f32>) -> Result<Ready> {
        let weights = self.weights.take().context("ORT segments: built twice")?;
        let threads = self.opts.intra_threads.max(1);
        let schedule = Schedule::from_stored(&self.graph, &record.ran)?;
        let whole_bytes = onnx::to_onnx(&self.graph, &weights)?;
        let session = super::session(&whole_bytes, &self.config(threads), Device::Cpu)?;
        let mut whole = self.whole(session, threads);
        if !schedule.is_parallel() {
            return Ok(Ready {
                steps: Vec::new(),
                record,
                lanes: 1,
                fallback: Some(whole),
            });
        }
        let (_, cut) = self.cut(&weights, &whole_bytes, &schedule, &mut whole, input)?;
        let steps = self.build(&weights, &schedule, &cut, false)?;
        Ok(Ready {
            lanes: widest(&steps),
            steps,
            record,
            fallback: None,
        })
    }

    /// Where the schedule's parts are cut from, and those parts built at
    /// every intra-op thread: ORT's optimised graph where it splits along
    /// the schedule and its parts give the whole session's logits on
    /// `input`, else the IR (and why).
    fn cut(
        &self,
        weights: &Weights,
        whole_bytes: &[u8],
        schedule: &Schedule,
        whole: &mut OrtSession,
        input: &Array4<f32>,
    ) -> Result<(Vec<Step>, Cut)> {
        if self.config(1).optimization != GraphOptimizationLevel::All {
            let steps = self.build(weights, schedule, &Cut::Ir(None), true)?;
            return Ok((steps, Cut::Ir(None)));
        }
        let why = match self.split(whole_bytes, schedule) {
            Ok(models) => {
                // one pass to learn the boundary values' shapes, then the
                // parts again with them declared
                let mut cut = Cut::Optimized(models);
                let shapes = value_shapes(&mut self.build(weights, schedule, &cut, true)?, input)?;
                cut.shape(&shapes);
                let mut steps = self.build(weights, schedule, &cut, true)?;
                let want = whole.run(input)?;
                let got = super::logits(run_steps(&mut steps, input, false, false)?.0)?;
                let (diff, rel, _) = speedbench::io::compare_logits(&got, &want)?;
                if rel <= 1e-4 {
                    return Ok((steps, cut));
                }
                format!("its parts' logits differ from the whole graph's by {diff:.3e}")
            }
            Err(e) => format!("{e:#}"),
        };
        if self.opts.verbose {
            eprintln!("ort parallel: segments cut from the IR: ORT's optimised graph: {why}");
        }
        let cut = Cut::Ir(Some(why));
        Ok((self.build(weights, schedule, &cut, true)?, cut))
    }

    /// ORT's optimised form of the whole graph (`whole_bytes`), split into
    /// the schedule's parts ([`parts`]).
    fn split(&self, whole_bytes: &[u8], schedule: &Schedule) -> Result<Vec<Option<PartModel>>> {
        let threads = self.opts.intra_threads.max(1);
        let model = super::optimized::optimized(whole_bytes, threads)?;
        let parts = parts(schedule, threads);
        let mut part_of = vec![None; self.graph.nodes.len()];
        for (p, (_, nodes, _)) in parts.iter().enumerate() {
            for &n in *nodes {
                part_of[n] = Some(p);
            }
        }
        let stage_of: Vec<usize> = parts.iter().map(|p| p.0).collect();
        onnx_split::split(&model, &self.graph, &part_of, &stage_of)
    }

    /// One session per part of `schedule`, cut as `cut` says; `full`: every
    /// part at every intra-op thread (else a lane at its own). A part of
    /// ORT's optimised graph whose operations ORT fused into a later
    /// part's is left out.
    fn build(
        &self,
        weights: &Weights,
        schedule: &Schedule,
        cut: &Cut,
        full: bool,
    ) -> Result<Vec<Step>> {
        let threads = self.opts.intra_threads.max(1);
        let parts = parts(schedule, threads);
        let mut steps: Vec<Step> = Vec::new();
        for (i, stage) in schedule.stages.iter().enumerate() {
            let mut built = Vec::new();
            for (p, &(_, nodes, t)) in parts.iter().enumerate().filter(|(_, q)| q.0 == i) {
                let t = if full { threads } else { t };
                let part = match cut {
                    Cut::Ir(_) => Some(self.ir_part(weights, nodes, t)?),
                    Cut::Optimized(models) => models
                        .get(p)
                        .and_then(Option::as_ref)
                        .map(|m| self.optimized_part(m, nodes, t))
                        .transpose()?,
                };
                built.extend(part);
            }
            match stage {
                Stage::Sequential(_) => steps.extend(built.into_iter().map(Step::One)),
                Stage::Parallel(_) if !built.is_empty() => steps.push(Step::Lanes(built)),
                Stage::Parallel(_) => {}
            }
        }
        Ok(steps)
    }

    fn ready(&mut self, input: &Array4<f32>) -> Result<&mut Ready> {
        if self.ready.is_none() {
            let r = match self.opts.schedule.take().filter(|r| !r.ran.is_empty()) {
                Some(stored) => self.reuse(stored, input)?,
                None => self.calibrate(input)?,
            };
            if self.opts.verbose {
                eprintln!("ort parallel: {}", r.record.chosen);
            }
            self.ready = Some(r);
        }
        self.ready.as_mut().context("ORT segments not calibrated")
    }
}

/// A calibration in progress ([`calibrate`]): the whole graph in one
/// session at every intra-op thread (the baseline) and at a lane's, and
/// once planned, the segments one after another at every thread (the
/// extra candidate) and as the plan's steps.
struct Calibrating<'a> {
    segmented: &'a Segmented,
    whole: OrtSession,
    narrow: Option<OrtSession>,
    weights: Weights,
    whole_bytes: Vec<u8>,
    input: &'a Array4<f32>,
    split_steps: Vec<Step>,
    steps: Vec<Step>,
    record: Option<ScheduleRecord>,
}

impl Calibrated for Calibrating<'_> {
    /// Per IR node, its time in µs in a traced pass (a fused node's time
    /// counts for the node ORT named it after).
    fn node_times(&mut self, threads: usize) -> Result<Vec<f64>> {
        let s = self.segmented;
        let session = if threads >= s.opts.intra_threads.max(1) {
            &mut self.whole
        } else {
            match &mut self.narrow {
                Some(n) => n,
                narrow => {
                    let config = s.config(threads);
                    let session = super::session(&self.whole_bytes, &config, Device::Cpu)?;
                    narrow.insert(s.whole(session, threads))
                }
            }
        };
        let mut t = session.trace(self.input)?;
        speedbench::trace::map_to_ir(&mut t, &s.graph);
        let index: HashMap<&str, NodeId> = s
            .graph
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect();
        let mut cost = vec![0.0; s.graph.nodes.len()];
        for e in &t.events {
            if let Some(&i) = e.node.as_deref().and_then(|n| index.get(n)) {
                cost[i] += e.dur_us;
            }
        }
        Ok(cost)
    }

    fn build(&mut self, schedule: &Schedule) -> Result<()> {
        drop(self.narrow.take());
        let s = self.segmented;
        let mut record =
            schedule.record(&s.graph, "speedbench cost model over ONNX Runtime segments");
        let (split_steps, cut) = s.cut(
            &self.weights,
            &self.whole_bytes,
            schedule,
            &mut self.whole,
            self.input,
        )?;
        record.segments = Some(cut.describe());
        if schedule.is_parallel() {
            self.steps = s.build(&self.weights, schedule, &cut, false)?;
        }
        self.split_steps = split_steps;
        self.record = Some(record);
        Ok(())
    }

    fn extra(&self) -> bool {
        true
    }

    fn pass(&mut self, candidate: Candidate) -> Result<()> {
        let x = self.input;
        match candidate {
            Candidate::Sequential => drop(self.whole.run(x)?),
            Candidate::Plan => drop(run_steps(&mut self.steps, x, true, false)?),
            Candidate::Extra => drop(run_steps(&mut self.split_steps, x, false, false)?),
        }
        Ok(())
    }
}

/// The lanes of the widest step.
fn widest(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|s| match s {
            Step::Lanes(l) => l.len(),
            Step::One(_) => 1,
        })
        .max()
        .unwrap_or(1)
}

/// Every node of `g` but the input, one after another.
fn sequential(g: &Graph) -> Schedule {
    Schedule {
        stages: vec![Stage::Sequential((1..g.nodes.len()).collect())],
        predicted_us: 0.0,
        sequential_us: 0.0,
    }
}

/// What the segments are cut from.
enum Cut {
    /// ORT's optimised graph, split per part (`None`: a part whose
    /// operations ORT fused into a later part's).
    Optimized(Vec<Option<PartModel>>),
    /// The IR, and why not ORT's optimised graph (`None`: graph
    /// optimisations are off).
    Ir(Option<String>),
}

impl Cut {
    /// Declares the boundary values' `shapes` on every part of ORT's
    /// optimised graph.
    fn shape(&mut self, shapes: &HashMap<String, Vec<i64>>) {
        if let Cut::Optimized(models) = self {
            for m in models.iter_mut().flatten() {
                m.shape(shapes);
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Cut::Optimized(_) => {
                "ORT's optimised graph (fusions and NCHWc layouts kept across boundaries)".into()
            }
            Cut::Ir(None) => "the IR (graph optimisations off)".into(),
            Cut::Ir(Some(why)) => format!("the IR (ORT's optimised graph: {why})"),
        }
    }
}

/// The parts of `schedule` in order: (stage index, IR nodes, intra-op
/// threads); a sequential stage is one part at `threads`, a parallel
/// stage one part per lane at the lane's.
fn parts(schedule: &Schedule, threads: usize) -> Vec<(usize, &[NodeId], usize)> {
    let mut parts = Vec::new();
    for (i, stage) in schedule.stages.iter().enumerate() {
        match stage {
            Stage::Sequential(nodes) => parts.push((i, nodes.as_slice(), threads)),
            Stage::Parallel(lanes) => {
                parts.extend(lanes.iter().map(|l| (i, l.nodes.as_slice(), l.threads)))
            }
        }
    }
    parts
}

impl Prepared for Segmented {
    fn run(&mut self, input: &Array4<f32>) -> Result<Array2<f32>> {
        check_input(self.graph.input(), input)?;
        let ready = self.ready(input)?;
        if let Some(whole) = ready.fallback.as_mut() {
            return whole.run(input);
        }
        super::logits(run_steps(&mut ready.steps, input, true, false)?.0)
    }

    fn threads_used(&self) -> Option<(usize, usize)> {
        let threads = self.opts.intra_threads;
        Some(match &self.ready {
            Some(r) => (threads, r.lanes),
            None => (threads, self.opts.inter_threads),
        })
    }

    fn schedule(&self) -> Option<ScheduleRecord> {
        self.ready.as_ref().map(|r| r.record.clone())
    }

    /// Each segment's span on the thread that ran it (ORT's per-node
    /// profile of a segment would need a profiled session per segment;
    /// the segments are the scheduling unit). A fallback to the whole
    /// graph traces like a plain session.
    fn trace(&mut self, input: &Array4<f32>) -> Result<Timeline> {
        check_input(self.graph.input(), input)?;
        let ready = self.ready(input)?;
        if let Some(whole) = ready.fallback.as_mut() {
            return whole.trace(input);
        }
        let lanes = ready.lanes;
        let names: Vec<(String, usize)> = ready
            .steps
            .iter()
            .flat_map(|s| match s {
                Step::One(p) => vec![p],
                Step::Lanes(l) => l.iter().collect(),
            })
            .map(|p| (p.last.clone(), p.threads))
            .collect();
        let (_, spans) = run_steps(&mut ready.steps, input, true, true)?;
        Ok(Timeline {
            source: "speedbench ORT segments (host clock per segment)".into(),
            tracks: std::iter::once("main thread".to_string())
                .chain((1..=lanes).map(|i| format!("ort-lane-{i}")))
                .collect(),
            events: spans
                .into_iter()
                .zip(names)
                .map(|((track, start, end), (name, threads))| OpEvent {
                    name,
                    op: format!("segment ({threads} intra-op)"),
                    node: None,
                    track,
                    start_us: start,
                    dur_us: (end - start).max(0.0),
                    critical: false,
                    device: "CPU".into(),
                })
                .collect(),
        })
    }
}

mod run;
use run::{run_steps, value_shapes};

#[cfg(test)]
mod tests;
