//! The parallel mode on the CPU: speedbench's cost-model schedule
//! ([`speedbench::schedule`]). A calibration pass times every operation at one
//! intra-op thread and at all of them; the schedule runs a region's
//! independent branches on concurrent lanes only where that predicts a
//! gain, and everything else one operation after another with every
//! intra-op thread. The calling thread keeps its threads for the
//! sequential stages. A stage of one-thread lanes, no more lanes than
//! those threads, runs on libtorch's own OpenMP team ([`team`]); wider
//! lanes run on worker threads whose intra-op threads are set once
//! (changing them clears oneDNN's caches). Interleaved timed passes of
//! both (the one flow of [`speedbench::schedule::calibrate`]) keep the schedule only if it beat
//! the sequential one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use tch::Tensor;

use super::library::use_intra_threads;
use super::plan::{gather, release, Plan};
use super::team;
use super::trace::Span;
use speedbench::graph::{Graph, NodeId};
use speedbench::schedule::calibrate::{calibrate, Calibrated, Candidate};
use speedbench::schedule::{Lane, Schedule, ScheduleRecord, Stage};

/// What starting and joining a parallel stage costs (a channel send, a
/// wake-up, a receive), µs: the cost model charges it to every parallel
/// stage.
const STAGE_OVERHEAD_US: f64 = 50.0;

/// One lane of a stage, sent to a worker.
struct Job {
    nodes: Vec<NodeId>,
    /// The values the lane reads from earlier stages.
    inputs: Vec<(NodeId, Tensor)>,
    /// The pass's start, when traced.
    origin: Option<Instant>,
    track: usize,
}

/// A lane's work: every value it computed, and its spans when traced.
type LaneOut = (Vec<(NodeId, Tensor)>, Vec<Span>);
/// A finished lane.
type Done = Result<LaneOut>;

/// A thread running lanes with a fixed number of intra-op threads.
struct LaneWorker {
    threads: usize,
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    handle: Option<JoinHandle<()>>,
}

impl LaneWorker {
    fn new(plan: Arc<Plan>, threads: usize, index: usize) -> Result<LaneWorker> {
        let (jobs, job_rx) = channel::<Job>();
        let (done_tx, done) = channel::<Done>();
        let handle = std::thread::Builder::new()
            .name(format!("torch-lane-{index}"))
            .spawn(move || {
                let _grad = plan.grad_guard();
                use_intra_threads(threads);
                for job in job_rx {
                    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_lane(&plan, &job)
                    }))
                    .unwrap_or_else(|_| Err(anyhow!("a lane panicked")));
                    if done_tx.send(out).is_err() {
                        return;
                    }
                }
            })
            .context("cannot start a torch lane thread")?;
        Ok(LaneWorker {
            threads,
            jobs: Some(jobs),
            done,
            handle: Some(handle),
        })
    }

    fn send(&self, job: Job) -> Result<()> {
        self.jobs
            .as_ref()
            .context("lane worker stopped")?
            .send(job)
            .map_err(|_| anyhow!("a torch lane thread ended"))
    }

    fn receive(&self) -> Done {
        self.done
            .recv()
            .map_err(|_| anyhow!("a torch lane thread ended"))?
    }
}

impl Drop for LaneWorker {
    fn drop(&mut self) {
        self.jobs = None; // ends the worker's loop
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Runs a lane's nodes in order: inputs from the lane itself or the job's.
fn run_lane(plan: &Plan, job: &Job) -> Done {
    let mut values: Vec<Option<Tensor>> = (0..plan.len()).map(|_| None).collect();
    for (id, t) in &job.inputs {
        values[*id] = Some(t.shallow_clone());
    }
    let mut spans = Vec::new();
    let mut out = Vec::with_capacity(job.nodes.len());
    for &id in &job.nodes {
        let start = Instant::now();
        let y = {
            let x = gather(&values, &plan.inputs[id])?;
            plan.exec(id, &x)?
        };
        if let Some(origin) = job.origin {
            spans.push(Span::host(id, job.track, origin, start, Instant::now()));
        }
        out.push((id, y.shallow_clone()));
        values[id] = Some(y);
    }
    Ok((out, spans))
}

/// Runs `jobs` on the calling thread's OpenMP team ([`team`]): each thread
/// takes the next lane no thread has taken (one each where the team has a
/// thread per lane) and records its spans on its own track (the calling
/// thread is track 0); what each lane computed, in lane order.
fn on_team(plan: &Plan, jobs: Vec<Job>) -> Result<Vec<LaneOut>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<(Option<Job>, Option<Done>)>> = jobs
        .into_iter()
        .map(|j| Mutex::new((Some(j), None)))
        .collect();
    let work = |thread: usize| loop {
        let Some(slot) = slots.get(next.fetch_add(1, Ordering::Relaxed)) else {
            return;
        };
        let Ok(mut slot) = slot.lock() else { continue };
        let Some(mut job) = slot.0.take() else {
            continue;
        };
        job.track = thread;
        // gradients are off per thread, and this may be a thread of the team
        let _grad = plan.grad_guard();
        slot.1 = Some(
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_lane(plan, &job)))
                .unwrap_or_else(|_| Err(anyhow!("a lane panicked"))),
        );
    };
    if !team::run(&work) {
        bail!(
            "executor bug: a stage for libtorch's OpenMP team, but libtorch runs without libgomp"
        );
    }
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .map_err(|_| anyhow!("a lane panicked"))?
                .1
                .unwrap_or_else(|| Err(anyhow!("executor bug: a lane did not run")))
        })
        .collect()
}

/// Per node, the shortest of `best` and its spans' durations.
fn keep_fastest(best: &mut [f64], spans: &[Span]) {
    for s in spans {
        best[s.node] = best[s.node].min(s.end_us - s.start_us);
    }
}

/// A calibration in progress ([`calibrate`]): the plan is built into
/// `staged`; `probe` runs every operation on one lane.
struct Calibrating<'a> {
    graph: &'a Graph,
    input: &'a Tensor,
    threads: usize,
    probe: Option<Staged>,
    staged: Staged,
}

impl Calibrated for Calibrating<'_> {
    fn node_times(&mut self, threads: usize) -> Result<Vec<f64>> {
        let plan = self.staged.plan.clone();
        let n = plan.len();
        let mut best = vec![f64::INFINITY; n];
        if threads >= self.threads {
            let mut spans = Vec::with_capacity(n);
            drop(plan.run_sequential(self.input.shallow_clone(), Some(&mut spans))?);
            keep_fastest(&mut best, &spans);
            return Ok(best);
        }
        // a stage of one lane: each operation at a lane's threads, on the
        // threads a lane runs on
        let lane = Lane {
            nodes: (1..n).collect(),
            threads,
        };
        let probe = match &mut self.probe {
            Some(p) => p,
            probe => probe.insert(Staged::with_schedule(
                plan.clone(),
                self.graph,
                Schedule {
                    stages: vec![Stage::Parallel(vec![lane.clone()])],
                    predicted_us: 0.0,
                    sequential_us: 0.0,
                },
                self.threads,
            )?),
        };
        let job = Job {
            nodes: lane.nodes.clone(),
            inputs: vec![(0, plan.admit(self.input.shallow_clone())?)],
            origin: Some(Instant::now()),
            track: 0,
        };
        for (_, spans) in probe.run_lanes(std::slice::from_ref(&lane), vec![job])? {
            keep_fastest(&mut best, &spans);
        }
        Ok(best)
    }

    fn build(&mut self, schedule: &Schedule) -> Result<()> {
        let plan = self.staged.plan.clone();
        self.staged = Staged::with_schedule(plan, self.graph, schedule.clone(), self.threads)?;
        Ok(())
    }

    fn pass(&mut self, candidate: Candidate) -> Result<()> {
        let x = self.input.shallow_clone();
        match candidate {
            Candidate::Sequential => drop(self.staged.plan.run_sequential(x, None)?),
            Candidate::Plan => drop(self.staged.run(x, false)?),
            Candidate::Extra => bail!("libtorch's calibration has no third candidate"),
        }
        Ok(())
    }
}

/// The cost-model schedule, its lane workers and what it recorded.
pub(super) struct Staged {
    plan: Arc<Plan>,
    schedule: Schedule,
    /// Intra-op threads of the sequential stages (the calling thread's).
    threads: usize,
    workers: Vec<LaneWorker>,
    /// Whether libtorch runs on libgomp, whose team can run stages of
    /// one-thread lanes ([`team`]).
    team: bool,
    pub(super) record: ScheduleRecord,
}

impl Staged {
    /// Calibrates on `input`, plans, and checks the plan against the
    /// sequential schedule ([`calibrate`]); `workers` is the most lanes at
    /// once.
    pub(super) fn calibrate(
        plan: Arc<Plan>,
        graph: &Graph,
        input: &Tensor,
        threads: usize,
        workers: usize,
    ) -> Result<Staged> {
        use_intra_threads(threads);
        let sequential = || Schedule {
            stages: vec![Stage::Sequential((1..plan.len()).collect())],
            predicted_us: 0.0,
            sequential_us: 0.0,
        };
        let mut c = Calibrating {
            graph,
            input,
            threads,
            probe: None,
            staged: Staged::with_schedule(plan.clone(), graph, sequential(), threads)?,
        };
        let found = calibrate(&mut c, graph, threads, workers, STAGE_OVERHEAD_US)?;
        drop(c.probe.take());
        let mut staged = c.staged;
        if !found.schedule.is_parallel() {
            return Ok(staged);
        }
        let mut record = staged.record.clone();
        if !found.settle(&mut record, "sequential") {
            staged.schedule = Schedule {
                predicted_us: found.schedule.sequential_us,
                sequential_us: found.schedule.sequential_us,
                ..sequential()
            };
            staged.workers.clear();
        }
        record.ran = staged.schedule.stored(graph);
        staged.record = record;
        Ok(staged)
    }

    /// The schedule an earlier process of the cell calibrated and chose
    /// (`record.ran`), started without calibrating; its record kept.
    pub(super) fn reuse(
        plan: Arc<Plan>,
        graph: &Graph,
        record: ScheduleRecord,
        threads: usize,
    ) -> Result<Staged> {
        use_intra_threads(threads);
        let schedule = Schedule::from_stored(graph, &record.ran)?;
        let mut staged = Staged::with_schedule(plan, graph, schedule, threads)?;
        staged.record = record;
        Ok(staged)
    }

    /// Runs `schedule` (its lane workers started); `threads` for its
    /// sequential stages.
    pub(super) fn with_schedule(
        plan: Arc<Plan>,
        graph: &Graph,
        schedule: Schedule,
        threads: usize,
    ) -> Result<Staged> {
        let record = schedule.record(graph, "speedbench cost model over libtorch operations");
        let mut staged = Staged {
            plan,
            workers: Vec::new(),
            threads,
            schedule,
            team: team::available(),
            record,
        };
        staged.start_workers()?;
        Ok(staged)
    }

    /// Whether a stage's `lanes` run on libtorch's OpenMP team: one intra-op
    /// thread each, and a thread of the team for each.
    fn on_team(&self, lanes: &[Lane]) -> bool {
        self.team && lanes.len() <= self.threads && lanes.iter().all(|l| l.threads == 1)
    }

    /// Whether some stage runs on the team (its threads are then tracks
    /// 0..threads of a trace, and the lane workers' come after them).
    fn uses_team(&self) -> bool {
        self.schedule
            .stages
            .iter()
            .any(|s| matches!(s, Stage::Parallel(lanes) if self.on_team(lanes)))
    }

    /// Enough lane workers for the widest stage not on the team, at each
    /// thread count.
    fn start_workers(&mut self) -> Result<()> {
        let mut need: Vec<(usize, usize)> = Vec::new(); // (threads, workers)
        for stage in &self.schedule.stages {
            let Stage::Parallel(lanes) = stage else {
                continue;
            };
            if self.on_team(lanes) {
                continue;
            }
            for t in lanes.iter().map(|l| l.threads) {
                let n = lanes.iter().filter(|l| l.threads == t).count();
                match need.iter_mut().find(|(k, _)| *k == t) {
                    Some((_, m)) => *m = (*m).max(n),
                    None => need.push((t, n)),
                }
            }
        }
        for (t, n) in need {
            for _ in 0..n {
                let index = self.workers.len();
                self.workers
                    .push(LaneWorker::new(self.plan.clone(), t, index + 1)?);
            }
        }
        Ok(())
    }

    /// Runs a stage's lanes at once, `jobs[i]` on `lanes[i]`: on the team,
    /// or each on an idle worker of its thread count; what each lane
    /// computed, in lane order.
    fn run_lanes(&self, lanes: &[Lane], jobs: Vec<Job>) -> Result<Vec<LaneOut>> {
        if self.on_team(lanes) {
            return on_team(&self.plan, jobs);
        }
        let first_track = if self.uses_team() { self.threads } else { 1 };
        let mut busy: Vec<usize> = Vec::with_capacity(lanes.len());
        for (lane, mut job) in lanes.iter().zip(jobs) {
            let w = (0..self.workers.len())
                .find(|&i| self.workers[i].threads == lane.threads && !busy.contains(&i))
                .context("executor bug: no idle lane worker")?;
            job.track = first_track + w;
            self.workers[w].send(job)?;
            busy.push(w);
        }
        // every lane's answer is awaited before an error returns
        let done: Vec<Done> = busy.iter().map(|&w| self.workers[w].receive()).collect();
        done.into_iter().collect()
    }

    /// (intra-op threads of the sequential stages, lanes at most).
    pub(super) fn threads(&self) -> (usize, usize) {
        let lanes = self
            .schedule
            .stages
            .iter()
            .map(|s| match s {
                Stage::Parallel(l) => l.len(),
                Stage::Sequential(_) => 1,
            })
            .max()
            .unwrap_or(1);
        (self.threads, lanes)
    }

    /// One pass; with `trace`, every node's span (on the tracks of
    /// [`Staged::tracks`]).
    pub(super) fn run(&mut self, input: Tensor, trace: bool) -> Result<(Tensor, Vec<Span>)> {
        use_intra_threads(self.threads);
        let plan = self.plan.clone();
        if !self.schedule.is_parallel() {
            // the sequential mode's own pass, not a copy of it
            let mut spans = Vec::new();
            let y = plan.run_sequential(input, trace.then_some(&mut spans))?;
            return Ok((y, spans));
        }
        let origin = trace.then(Instant::now);
        let mut values: Vec<Option<Tensor>> = (0..plan.len()).map(|_| None).collect();
        let mut uses = plan.uses();
        let mut spans = Vec::new();
        values[0] = Some(plan.admit(input)?);
        for stage in &self.schedule.stages {
            match stage {
                Stage::Sequential(nodes) => {
                    for &id in nodes {
                        let start = Instant::now();
                        let y = {
                            let x = gather(&values, &plan.inputs[id])?;
                            plan.exec(id, &x)?
                        };
                        if let Some(o) = origin {
                            spans.push(Span::host(id, 0, o, start, Instant::now()));
                        }
                        release(&mut values, &mut uses, &plan.inputs[id]);
                        values[id] = Some(y);
                    }
                }
                Stage::Parallel(lanes) => {
                    let mut jobs = Vec::with_capacity(lanes.len());
                    for lane in lanes {
                        let inputs = lane
                            .nodes
                            .iter()
                            .flat_map(|&n| plan.inputs[n].iter().copied())
                            .filter(|i| !lane.nodes.contains(i))
                            .map(|i| {
                                values[i]
                                    .as_ref()
                                    .map(|t| (i, t.shallow_clone()))
                                    .with_context(|| {
                                        format!("executor bug: value of node #{i} is missing")
                                    })
                            })
                            .collect::<Result<Vec<_>>>()?;
                        jobs.push(Job {
                            nodes: lane.nodes.clone(),
                            inputs,
                            origin,
                            track: 0,
                        });
                    }
                    let mut done: Vec<(NodeId, Tensor)> = Vec::new();
                    for (values, s) in self.run_lanes(lanes, jobs)? {
                        done.extend(values);
                        spans.extend(s);
                    }
                    // in topological order, so that a value read inside the
                    // stage is stored before its reader releases it
                    done.sort_by_key(|(id, _)| *id);
                    for (id, y) in done {
                        release(&mut values, &mut uses, &plan.inputs[id]);
                        values[id] = Some(y);
                    }
                }
            }
        }
        let y = values[plan.output()]
            .take()
            .context("the graph produced no output")?;
        Ok((y, spans))
    }

    /// Track names of a traced pass: the calling thread, the other threads
    /// of its OpenMP team where a stage runs on it, then the lane workers.
    pub(super) fn tracks(&self) -> Vec<String> {
        let team = if self.uses_team() { self.threads } else { 1 };
        std::iter::once(format!("main thread ({} intra-op)", self.threads))
            .chain((1..team).map(|t| format!("libtorch OpenMP thread {t}")))
            .chain(
                self.workers
                    .iter()
                    .enumerate()
                    .map(|(i, w)| format!("torch-lane-{} ({} intra-op)", i + 1, w.threads)),
            )
            .collect()
    }
}

#[cfg(test)]
#[path = "staged_tests.rs"]
mod tests;
