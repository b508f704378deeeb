//! The parallel schedule on the CPU: a pool of worker threads taking ready
//! nodes (dependency counting). A worker that finishes a node continues with
//! a successor that became ready and hands the others to idle workers.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use tch::Tensor;

use super::library::use_intra_threads;
use super::plan::{gather, release, Plan};
use super::trace::Span;
use crate::graph::NodeId;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the workers share during one run.
#[derive(Default)]
struct RunState {
    /// Nodes whose inputs are all computed, not yet taken by a worker.
    ready: Vec<NodeId>,
    /// Per node, inputs not computed yet.
    pending: Vec<usize>,
    /// Per node, consumers that have not run yet.
    uses: Vec<usize>,
    values: Vec<Option<Tensor>>,
    /// Nodes not finished yet.
    left: usize,
    /// Nodes being executed right now.
    running: usize,
    error: Option<anyhow::Error>,
    shutdown: bool,
    /// In a traced pass: its start, and each node's span as it finishes.
    trace: Option<(Instant, Vec<Span>)>,
}

impl RunState {
    fn finished(&self) -> bool {
        self.left == 0 || (self.error.is_some() && self.running == 0)
    }

    /// Stores node `id`'s value and releases its successors: the first that
    /// becomes ready goes to `next` (the calling worker's own), the others
    /// to the ready list for idle workers.
    fn complete(
        &mut self,
        plan: &Plan,
        id: NodeId,
        value: Tensor,
        next: &mut Option<NodeId>,
        work: &Condvar,
    ) {
        release(&mut self.values, &mut self.uses, &plan.inputs[id]);
        self.values[id] = Some(value);
        self.left -= 1;
        for &c in &plan.consumers[id] {
            self.pending[c] -= 1;
            if self.pending[c] == 0 {
                if next.is_none() {
                    *next = Some(c);
                } else {
                    self.ready.push(c);
                    work.notify_one();
                }
            }
        }
    }
}

struct PoolShared {
    plan: Arc<Plan>,
    state: Mutex<RunState>,
    /// Workers wait here for ready nodes.
    work: Condvar,
    /// The caller waits here for the end of a run.
    done: Condvar,
}

/// `workers` threads, alive as long as the prepared model, each running its
/// operations with `intra` intra-op threads.
pub(super) struct Pool {
    shared: Arc<PoolShared>,
    threads: Vec<JoinHandle<()>>,
    /// The intra-op threads each worker's libtorch reported after setting
    /// them: what the cell records is what ran.
    intra_seen: Vec<usize>,
}

impl Pool {
    pub(super) fn new(plan: Arc<Plan>, workers: usize, intra: usize) -> Result<Pool> {
        let shared = Arc::new(PoolShared {
            plan,
            state: Mutex::new(RunState::default()),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let mut pool = Pool {
            shared,
            threads: Vec::with_capacity(workers),
            intra_seen: Vec::with_capacity(workers),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..workers {
            let shared = pool.shared.clone();
            let tx = tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("torch-worker-{i}"))
                .spawn(move || worker(&shared, i, intra, &tx))
                .context("cannot start a torch worker thread")?;
            pool.threads.push(handle);
        }
        drop(tx);
        // every worker reports its intra-op threads once it has set them
        pool.intra_seen = rx.iter().take(workers).collect();
        if pool.intra_seen.len() != workers {
            return Err(anyhow!("a torch worker thread ended before it started"));
        }
        Ok(pool)
    }

    /// (intra-op threads per worker, workers) running, as the workers
    /// reported them (the fewest, were they to differ).
    pub(super) fn threads(&self) -> (usize, usize) {
        let intra = self.intra_seen.iter().copied().min().unwrap_or(0);
        (intra, self.threads.len())
    }

    pub(super) fn run(&mut self, input: Tensor) -> Result<Tensor> {
        Ok(self.run_traced(input, false)?.0)
    }

    /// A pass; with `trace`, also every node's span on the worker that ran
    /// it.
    pub(super) fn run_traced(&mut self, input: Tensor, trace: bool) -> Result<(Tensor, Vec<Span>)> {
        let plan = &self.shared.plan;
        let mut st = lock(&self.shared.state);
        st.trace = trace.then(|| (Instant::now(), Vec::with_capacity(plan.len())));
        st.values = (0..plan.len()).map(|_| None).collect();
        st.uses = plan.uses();
        st.pending = plan.inputs.iter().map(Vec::len).collect();
        st.left = plan.len() - 1;
        st.running = 0;
        st.error = None;
        st.ready.clear();
        st.values[0] = Some(plan.admit(input)?);
        for &c in &plan.consumers[0] {
            st.pending[c] -= 1;
            if st.pending[c] == 0 {
                st.ready.push(c);
            }
        }
        self.shared.work.notify_all();
        while !st.finished() {
            st = self
                .shared
                .done
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let out = st.values[plan.output()].take();
        st.values.clear();
        let spans = st.trace.take().map(|(_, s)| s).unwrap_or_default();
        if let Some(e) = st.error.take() {
            return Err(e);
        }
        Ok((out.context("the graph produced no output")?, spans))
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        self.shared.work.notify_all();
        for t in self.threads.drain(..) {
            // A worker never panics outside `catch_unwind`; nothing to report.
            let _ = t.join();
        }
    }
}

fn worker(
    shared: &PoolShared,
    index: usize,
    intra: usize,
    started: &std::sync::mpsc::Sender<usize>,
) {
    let _grad = shared.plan.grad_guard();
    use_intra_threads(intra);
    let _ = started.send(usize::try_from(tch::get_num_threads()).unwrap_or(0));
    let plan = &shared.plan;
    let mut next: Option<NodeId> = None;
    let mut st = lock(&shared.state);
    loop {
        let id = match next.take() {
            Some(id) => id,
            None => loop {
                if st.shutdown {
                    return;
                }
                if let Some(id) = st.ready.pop() {
                    break id;
                }
                st = shared.work.wait(st).unwrap_or_else(PoisonError::into_inner);
            },
        };
        let inputs: Result<Vec<Tensor>> = gather(&st.values, &plan.inputs[id])
            .map(|v| v.into_iter().map(Tensor::shallow_clone).collect());
        st.running += 1;
        let origin = st.trace.as_ref().map(|(o, _)| *o);
        drop(st);
        let start = Instant::now();
        let result = inputs.and_then(|x| {
            let refs: Vec<&Tensor> = x.iter().collect();
            catch_unwind(AssertUnwindSafe(|| plan.exec(id, &refs)))
                .unwrap_or_else(|_| Err(anyhow!("node '{}' panicked", plan.names[id])))
        });
        let end = Instant::now();
        st = lock(&shared.state);
        st.running -= 1;
        if let (Some(origin), Some((_, spans))) = (origin, st.trace.as_mut()) {
            spans.push(Span::host(id, index, origin, start, end));
        }
        match result {
            Ok(y) if st.error.is_none() => st.complete(plan, id, y, &mut next, &shared.work),
            Ok(_) => {}
            Err(e) => {
                st.error.get_or_insert(e);
                st.ready.clear();
            }
        }
        if st.finished() {
            shared.done.notify_all();
        }
    }
}
