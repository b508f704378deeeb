//! Lock-step timing, the parent's side. The cells a ratio compares (a
//! framework's sequential and parallel modes at one setting, and their A/A
//! repeats) each get a worker process of their own, started one after
//! another (so no session loads or calibrates beside another's timing) and
//! kept alive together. Then the parent runs *rounds*: in each, every live
//! worker times one pass, one at a time, in a seeded shuffled order. A
//! sequential and a parallel pass of one round ran a pass apart, so the
//! machine's drift (a neighbour on the VM, a clock change) is in both and
//! cancels in their ratio ([`crate::record::paired`]), while each session
//! keeps its own process, threads and memory. The idle workers wait on a
//! pipe read; their thread pools sleep (ONNX Runtime's spinning is off,
//! libtorch's OpenMP team and TensorFlow's pools park after a short spin).
//!
//! Rounds go on until the group's minimum is timed and then until every
//! ratio's 95% half-width is at or below the run's target, the group's share
//! of the time budget is spent, or the cap is reached ([`Rounds`]).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::placement::{Gate, NotNow};
use super::timing::Command as WorkerCommand;
use super::worker::{Job, Message};
use crate::record::{CellRecord, Failure, ScheduleRecord};

const STDERR_TAIL: usize = 20;

enum Event {
    Line(Message),
    Garbage,
    Eof,
}

/// What a worker said that the parent waited for.
enum Reply {
    Ready,
    Sample(f64),
    Cell(Box<CellRecord>),
}

/// A failed worker of `job`, boxed (it is large).
pub fn failure(job: &Job, cause: String, stderr_tail: Vec<String>) -> Box<Failure> {
    Box::new(Failure {
        model: job.model.clone(),
        framework: job.framework.clone(),
        device: job.plan.device,
        mode: Some(job.mode),
        optimize: Some(job.setting.optimize),
        precision: Some(job.setting.precision),
        batch: Some(job.setting.batch),
        process: Some(job.process),
        cause,
        stderr_tail,
    })
}

/// A worker process that is alive and answering.
pub struct Live {
    job: Job,
    child: Child,
    stdin: Option<ChildStdin>,
    rx: mpsc::Receiver<Event>,
    tail: Option<JoinHandle<Vec<String>>>,
    timeout: Duration,
    /// The schedule the worker calibrated while it warmed up, if it did.
    calibrated: Option<ScheduleRecord>,
}

impl Live {
    /// Starts the worker of `job` with `env` added to its environment and
    /// sends it the job; it loads and warms up on its own.
    pub fn start(job: &Job, env: &[(&str, &str)], timeout: Duration) -> Result<Live, Box<Failure>> {
        let exe = crate::frameworks::worker_exe(&job.framework)
            .map_err(|e| failure(job, format!("{e:#}"), vec![]))?;
        let mut command = Command::new(exe);
        command.arg("worker").envs(env.iter().copied());
        Live::spawn(job, command, timeout)
    }

    /// Starts `command` as the worker of `job` and sends it the job.
    fn spawn(job: &Job, mut command: Command, timeout: Duration) -> Result<Live, Box<Failure>> {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        dies_with_parent(&mut command);
        let mut child = command
            .spawn()
            .map_err(|e| failure(job, format!("cannot start worker: {e}"), vec![]))?;
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take();
        std::thread::spawn(move || {
            if let Some(out) = stdout {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let ev = match serde_json::from_str::<Message>(&line) {
                        Ok(m) => Event::Line(m),
                        Err(_) => Event::Garbage,
                    };
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
            }
            let _ = tx.send(Event::Eof);
        });
        let stderr = child.stderr.take();
        let verbose = job.verbose;
        let tail = std::thread::spawn(move || {
            let mut tail = VecDeque::new();
            if let Some(err) = stderr {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if verbose {
                        eprintln!("{line}");
                    }
                    keep_last(&mut tail, line, STDERR_TAIL);
                }
            }
            tail.into_iter().collect::<Vec<_>>()
        });
        let mut live = Live {
            job: job.clone(),
            stdin: child.stdin.take(),
            child,
            rx,
            tail: Some(tail),
            timeout,
            calibrated: None,
        };
        match serde_json::to_string(job) {
            Ok(line) => live.send_line(&line)?,
            Err(e) => return Err(live.fail(format!("cannot send the job to the worker: {e}"))),
        }
        Ok(live)
    }

    /// Kills the worker (if it still runs) and names the cause, with the
    /// last lines of its stderr.
    fn fail(&mut self, cause: String) -> Box<Failure> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stdin = None;
        let tail = self
            .tail
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        failure(&self.job, cause, tail)
    }

    fn send_line(&mut self, line: &str) -> Result<(), Box<Failure>> {
        let sent = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|()| stdin.flush()),
            None => Err(std::io::Error::other("no pipe to its stdin")),
        };
        match sent {
            Ok(()) => Ok(()),
            Err(e) => {
                // the worker may have died with a message of its own
                let why = self.wait(Some(Duration::from_secs(5)), None).err();
                Err(why.unwrap_or_else(|| self.fail(format!("cannot talk to the worker: {e}"))))
            }
        }
    }

    fn send(&mut self, c: WorkerCommand) -> Result<(), Box<Failure>> {
        let line = serde_json::to_string(&c).unwrap_or_default();
        self.send_line(&line)
    }

    /// The worker's next reply, its warm-up progress shown on `bar`;
    /// `limit` overrides the job's timeout.
    fn wait(
        &mut self,
        limit: Option<Duration>,
        bar: Option<&ProgressBar>,
    ) -> Result<Reply, Box<Failure>> {
        let deadline = Instant::now() + limit.unwrap_or(self.timeout);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Event::Line(Message::Progress { done, total })) => {
                    if let Some(bar) = bar {
                        bar.set_length(total as u64);
                        bar.set_position(done as u64);
                    }
                }
                Ok(Event::Line(Message::Schedule(s))) => self.calibrated = Some(*s),
                Ok(Event::Line(Message::Ready)) => return Ok(Reply::Ready),
                Ok(Event::Line(Message::Sample(ms))) => return Ok(Reply::Sample(ms)),
                Ok(Event::Line(Message::Cell(c))) => return Ok(Reply::Cell(c)),
                Ok(Event::Line(Message::Error(e))) => return Err(self.fail(e)),
                Ok(Event::Garbage) => {}
                Ok(Event::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    let cause = match status {
                        Ok(s) => describe_exit(s),
                        Err(e) => format!("lost the worker: {e}"),
                    };
                    return Err(self.fail(cause));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let secs = limit.unwrap_or(self.timeout).as_secs();
                    return Err(self.fail(format!("timed out after {secs} s")));
                }
            }
        }
    }

    /// Waits until the worker has loaded and warmed up.
    pub fn ready(&mut self, bar: &ProgressBar) -> Result<(), Box<Failure>> {
        match self.wait(None, Some(bar))? {
            Reply::Ready => Ok(()),
            _ => Err(self.fail("the worker answered out of turn before it was ready".into())),
        }
    }

    /// Times one pass, ms.
    pub fn pass(&mut self) -> Result<f64, Box<Failure>> {
        self.send(WorkerCommand::Pass)?;
        match self.wait(None, None)? {
            Reply::Sample(ms) => Ok(ms),
            _ => Err(self.fail("the worker answered a pass with something else".into())),
        }
    }

    /// Ends the timing: the worker traces (where asked) and reports its
    /// cell, then exits.
    pub fn finish(mut self) -> Result<CellRecord, Box<Failure>> {
        self.send(WorkerCommand::Finish)?;
        let cell = match self.wait(None, None)? {
            Reply::Cell(c) => *c,
            _ => return Err(self.fail("the worker answered finish with something else".into())),
        };
        self.stdin = None;
        match self.child.wait() {
            Ok(s) if s.success() => Ok(cell),
            Ok(s) => Err(self.fail(describe_exit(s))),
            Err(e) => Err(self.fail(format!("lost the worker: {e}"))),
        }
    }
}

/// The worker is killed (SIGKILL) when the parent dies, however it dies,
/// so a killed run never leaves a worker timing on its own.
fn dies_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the closure calls only prctl and
    // getppid, both async-signal-safe, and allocates nothing.
    let parent = std::process::id() as libc::pid_t;
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // the parent died before the death signal was armed
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the parent has exited"));
            }
            Ok(())
        });
    }
}

fn describe_exit(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("worker exited with code {c} without a result"),
        (None, Some(sig)) => format!(
            "worker killed by signal {sig}{}",
            match sig {
                6 => " (abort)",
                9 => " (kill; out of memory?)",
                11 => " (segmentation fault)",
                _ => "",
            }
        ),
        _ => "worker ended abnormally".into(),
    }
}

/// Appends `line` to `tail`, which keeps the last `n` lines.
fn keep_last(tail: &mut VecDeque<String>, line: String, n: usize) {
    if tail.len() == n {
        tail.pop_front();
    }
    tail.push_back(line);
}

/// How many rounds a group runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rounds {
    /// Always timed (the profile's iterations of this process).
    pub min: usize,
    /// Never more.
    pub max: usize,
    /// Stop once every ratio's 95% half-width (a share, 0.02 for 2%) is at
    /// or below it.
    pub target: Option<f64>,
    /// Stop once this much time has gone into the group's rounds.
    pub budget: Option<Duration>,
    /// The variance, in log space, by which the earlier processes of these
    /// cells' ratios differ from each other beyond their pairs' own noise
    /// (the process level;
    /// [`crate::record::limits::between_variance`]): once this process's mean
    /// is known better than that, more rounds do not narrow the interval
    /// and more processes do. `None` before two processes.
    pub between: Option<f64>,
}

impl Rounds {
    /// Whether a group that has timed `done` rounds in `spent` stops, its
    /// ratios' widest 95% half-width and largest variance of the mean (in
    /// log space) being `now` (`None`: it has none).
    pub fn enough(&self, done: usize, spent: Duration, now: Option<Precision>) -> bool {
        if done < self.min {
            return false;
        }
        if done >= self.max || self.budget.is_some_and(|b| spent >= b) {
            return true;
        }
        match (self.target, now) {
            (Some(t), Some(p)) => {
                p.half_width <= t || self.between.is_some_and(|b| p.mean_variance <= b)
            }
            // no target, or nothing to reach it on: the minimum is all
            _ => true,
        }
    }
}

/// How well a group's ratios are known so far in this process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Precision {
    /// The widest 95% half-width, a share.
    pub half_width: f64,
    /// The largest variance of a ratio's mean log.
    pub mean_variance: f64,
}

/// The precision of the ratios `pairs` (indices into `samples`, one
/// series per cell, round by round), over the rounds both cells of a pair
/// have; `None` where no pair has two rounds.
pub fn widest(samples: &[Vec<f64>], pairs: &[(usize, usize)]) -> Option<Precision> {
    pairs
        .iter()
        .filter_map(|&(a, b)| {
            let logs: Vec<f64> = samples[a]
                .iter()
                .zip(&samples[b])
                .filter(|(x, y)| **x > 0.0 && **y > 0.0)
                .map(|(x, y)| x.ln() - y.ln())
                .collect();
            let r = crate::record::intervals::mean_log_interval(&logs)?;
            Some(Precision {
                half_width: r.half_width(),
                mean_variance: r.log_se().powi(2),
            })
        })
        .reduce(|p, q| Precision {
            half_width: p.half_width.max(q.half_width),
            mean_variance: p.mean_variance.max(q.mean_variance),
        })
}

/// What a worker of a group needs besides its job.
pub struct Member {
    pub job: Job,
    pub env: Vec<(&'static str, &'static str)>,
    pub bar: ProgressBar,
    /// An A/A repeat's original among the members: where the job has no
    /// schedule yet, the repeat runs the one the original calibrated, so
    /// that the two time the same thing.
    pub schedule_of: Option<usize>,
}

/// The job of member `m`, with the schedule its original's live worker
/// calibrated where `m` is an A/A repeat that has none of its own yet.
fn handed_over(m: &Member, live: &[Option<Live>]) -> Job {
    let mut job = m.job.clone();
    if job.schedule.is_none() {
        job.schedule = m
            .schedule_of
            .and_then(|o| live.get(o)?.as_ref())
            .and_then(|w| w.calibrated.clone());
    }
    job
}

/// The order in which a group's workers start: every original before the
/// repeats that run its schedule, otherwise as given.
fn start_order(members: &[Member]) -> Vec<usize> {
    let (repeats, firsts): (Vec<usize>, Vec<usize>) =
        (0..members.len()).partition(|&i| members[i].schedule_of.is_some());
    firsts.into_iter().chain(repeats).collect()
}

/// How a group's workers start: a member's job and environment to its
/// live worker ([`Live::start`] in a run).
pub type Start<'a> = dyn FnMut(&Job, &[(&str, &str)]) -> Result<Live, Box<Failure>> + 'a;

/// Times the cells of one group in lock-step: starts each member's worker
/// in turn, runs rounds in a seeded shuffled order until `rounds` says
/// enough (or `stop` is set: then cells short of the minimum are marked
/// interrupted), and collects each worker's cell with its rounds numbered.
/// `pairs` are the ratios the target applies to; `gate` probes the cores
/// before each round and holds it until they are where the run wants them
/// (the time it holds a round counts in the budget; where it gives up,
/// the cells short of their minimum fail with its reason); `start` starts
/// a member's worker with its job and environment ([`Live::start`]). One
/// result per member, in order.
pub fn run_group(
    members: &[Member],
    pairs: &[(usize, usize)],
    rounds: Rounds,
    seed: u64,
    stop: &AtomicBool,
    gate: &mut Gate,
    start: &mut Start,
) -> Vec<Result<CellRecord, Box<Failure>>> {
    let mut results: Vec<Option<Result<CellRecord, Box<Failure>>>> =
        members.iter().map(|_| None).collect();
    let mut live: Vec<Option<Live>> = members.iter().map(|_| None).collect();
    for i in start_order(members) {
        let m = &members[i];
        let job = handed_over(m, &live);
        let started = if stop.load(Ordering::SeqCst) {
            Err(failure(
                &job,
                "interrupted before it started".into(),
                vec![],
            ))
        } else {
            start(&job, &m.env).and_then(|mut w| w.ready(&m.bar).map(|()| w))
        };
        match started {
            Ok(w) => live[i] = Some(w),
            Err(f) => results[i] = Some(Err(f)),
        }
    }
    for m in members {
        m.bar.set_length(rounds.min as u64);
        m.bar.set_position(0);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); members.len()];
    let began = Instant::now();
    let mut done = 0;
    let mut interrupted = false;
    let mut apart = Vec::new();
    let mut waited = Duration::ZERO;
    let mut gave_up = None;
    loop {
        if stop.load(Ordering::SeqCst) {
            interrupted = done < rounds.min;
            break;
        }
        let alive: Vec<(usize, usize)> = pairs
            .iter()
            .copied()
            .filter(|&(a, b)| live[a].is_some() && live[b].is_some())
            .collect();
        if rounds.enough(done, began.elapsed(), widest(&samples, &alive)) {
            break;
        }
        let mut turn: Vec<usize> = (0..members.len()).filter(|&i| live[i].is_some()).collect();
        if turn.is_empty() {
            break;
        }
        // where the host has the cores now (workers idle between rounds)
        match gate.before_round(stop) {
            Ok((probe, w)) => {
                apart.push(probe);
                waited += w;
            }
            Err(NotNow::Stopped) => {
                interrupted = done < rounds.min;
                break;
            }
            Err(NotNow::Patience(why)) => {
                gave_up = Some(why);
                break;
            }
        }
        turn.shuffle(&mut rng);
        for i in turn {
            let Some(w) = live[i].as_mut() else { continue };
            match w.pass() {
                Ok(ms) => {
                    samples[i].push(ms);
                    let bar = &members[i].bar;
                    if done + 1 > rounds.min {
                        bar.set_length(done as u64 + 1);
                    }
                    bar.set_position(done as u64 + 1);
                }
                Err(f) => {
                    results[i] = Some(Err(f));
                    live[i] = None;
                }
            }
        }
        done += 1;
    }
    for (i, w) in live.into_iter().enumerate() {
        let Some(w) = w else { continue };
        results[i] = Some(w.finish().map(|mut cell| {
            cell.sample_round = (0..cell.samples_ms.len()).collect();
            let probed: Vec<f64> = apart.iter().flatten().copied().collect();
            let core_to_core = (!probed.is_empty()).then(|| crate::record::stats::median(&probed));
            for p in &mut cell.processes {
                p.core_to_core_ns = core_to_core;
                // the probes of the rounds it timed (all of them: a worker
                // that failed a pass left the group); none on one core
                if core_to_core.is_some() {
                    let timed = cell.samples_ms.len().min(apart.len());
                    p.round_core_to_core_ns = apart[..timed].to_vec();
                }
                p.placement = gate.want;
                p.placement_wait_s = (!gate.want.is_any()).then_some(waited.as_secs_f64());
            }
            if interrupted {
                cell.interrupted = true;
                for p in &mut cell.processes {
                    p.interrupted = true;
                }
            }
            cell
        }));
    }
    results
        .into_iter()
        .zip(members)
        .map(|(r, m)| match (r, &gave_up) {
            // the gate gave up before the minimum: no cell to keep
            (Some(Ok(cell)), Some(why)) if cell.samples_ms.len() < rounds.min => {
                Err(failure(&m.job, why.clone(), vec![]))
            }
            (Some(r), _) => r,
            (None, _) => Err(failure(&m.job, "executor bug: no result".into(), vec![])),
        })
        .collect()
}

#[cfg(test)]
#[path = "lockstep_tests.rs"]
mod tests;
