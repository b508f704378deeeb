//! libtorch through the `tch` crate, executed eagerly by speedbench's own
//! graph executor (no TorchScript, no autograd: gradients are off in every
//! thread that runs an operation and the weights never require them).
//!
//! The graph is lowered once per cell into a [`Plan`]: one libtorch call per
//! IR node, with the node's weights already on the device. Two schedules run
//! that plan:
//!
//! - sequential: one node after another in topological order, on the calling
//!   thread (on CUDA: on the current stream), which is what eager PyTorch does;
//! - parallel: independent branches run concurrently, on at most
//!   `min(inter_threads, the graph's widest antichain)` workers or streams.
//!   On CPU a [`Pool`] of worker threads takes ready nodes (dependency
//!   counting); a worker that finishes a node continues with a successor that
//!   became ready and hands the others to idle workers. Each worker runs its
//!   operations with `max(1, intra_threads / workers)` intra-op threads, so
//!   that workers times intra-op threads stay within the cores (the
//!   sequential schedule keeps all `intra_threads`). On CUDA a single host
//!   thread queues each node on the stream of its branch ([`lanes`]), streams
//!   from libtorch's pool joined with CUDA events (the C++ shim
//!   `torch_cuda.cpp`).
//!
//! Both schedules make the same libtorch calls on the same values, so their
//! outputs are bit-identical whenever each operation gets the same number of
//! intra-op threads (always on CUDA; on CPU with `intra_threads` 1). With more
//! threads in the sequential schedule they differ in the last bits only:
//! oneDNN's 1x1 convolution blocks its reduction by the thread count (PyTorch
//! itself gives different bits with 1 and 2 threads).
//!
//! `--device cuda` loads `libtorch_cuda.so` from the folder of the libtorch in
//! use (the linker drops it as unneeded otherwise, and CUDA stays invisible).
//! Convolutions and matrix products then run in plain float32 (TF32 off).

use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;

use anyhow::{anyhow, bail, Context, Result};
use ndarray::{Array2, Array4};
use tch::{Device as TchDevice, Tensor};

use super::{
    require_cuda, Device, DeviceMemory, Framework, Mode, Optimize, PrepareOptions, Prepared,
};
use crate::graph::analysis::analyse;
use crate::graph::{Graph, NodeId, Op, ResizeMode};
use crate::weights::Weights;

pub struct Torch;

/// The C++ shim (src/frameworks/torch_cuda.cpp, built by build.rs). Each call
/// returns null or an error message.
mod ffi {
    use std::ffi::{c_char, c_void};

    /// A `c10::Stream` as plain data.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Stream {
        pub id: i64,
        pub device_index: i32,
        pub device_type: i32,
    }

    extern "C" {
        pub fn sb_torch_config(out: *mut *const c_char) -> *const c_char;
        pub fn sb_cuda_disable_tf32() -> *const c_char;
        pub fn sb_stream_from_pool(device: i32, out: *mut Stream) -> *const c_char;
        pub fn sb_stream_exchange(s: Stream, prev: *mut Stream) -> *const c_char;
        pub fn sb_stream_synchronize(s: Stream) -> *const c_char;
        pub fn sb_event_new(out: *mut *mut c_void) -> *const c_char;
        pub fn sb_event_free(ev: *mut c_void);
        pub fn sb_event_record(ev: *mut c_void, s: Stream) -> *const c_char;
        pub fn sb_event_block(ev: *mut c_void, s: Stream) -> *const c_char;
        pub fn sb_record_stream(t: *mut c_void, s: Stream) -> *const c_char;
        pub fn sb_inference_mode_enter() -> *mut c_void;
        pub fn sb_inference_mode_exit(guard: *mut c_void);
        pub fn sb_channels_last(t: *mut c_void, out: *mut *mut c_void) -> *const c_char;
        pub fn sb_cuda_memory(device: i32, current: *mut i64, peak: *mut i64) -> *const c_char;
        pub fn sb_cuda_reset_peak(device: i32) -> *const c_char;
    }
}

/// Turns a shim result into a `Result`, naming the call.
fn check(what: &str, err: *const c_char) -> Result<()> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null result is a NUL-terminated string owned by the shim
    // that stays valid until this thread's next shim call.
    let msg = unsafe { CStr::from_ptr(err) }.to_string_lossy();
    bail!("libtorch {what}: {}", msg.trim())
}

/// The libtorch version compiled into the loaded `libtorch_cpu.so`.
fn loaded_version() -> Result<String> {
    let mut config: *const c_char = std::ptr::null();
    // SAFETY: the shim writes a pointer to a static string on success.
    check("show_config", unsafe { ffi::sb_torch_config(&mut config) })?;
    // SAFETY: set to a valid static C string by the successful call above.
    let config = unsafe { CStr::from_ptr(config) }.to_string_lossy();
    config
        .split(|c: char| c == ',' || c.is_whitespace())
        .find_map(|w| w.strip_prefix("TORCH_VERSION="))
        .map(str::to_string)
        .context("libtorch's build configuration names no TORCH_VERSION")
}

/// The folder of the `libtorch_cpu.so` this process runs on.
fn libtorch_dir() -> Result<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").context("reading /proc/self/maps")?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| std::path::Path::new(p).parent().map(PathBuf::from))
        .context("libtorch_cpu.so is not loaded in this process")
}

/// Loads `libtorch_cuda.so` once per process (kept loaded) where an NVIDIA
/// driver is present. This must come before the first libtorch call: libtorch
/// looks its CUDA support up once (even `show_config` does) and keeps the
/// answer, so every entry point of this module calls it first.
fn load_cuda() -> Result<(), &'static str> {
    static CUDA: OnceLock<Result<libloading::os::unix::Library, String>> = OnceLock::new();
    CUDA.get_or_init(|| {
        if !super::cuda_present() {
            return Err("no NVIDIA driver".into());
        }
        let path = libtorch_dir()
            .map_err(|e| format!("{e:#}"))?
            .join("libtorch_cuda.so");
        use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
        // SAFETY: loading libtorch's own CUDA library runs its static
        // initialisers, which register CUDA with the libtorch already loaded.
        unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_GLOBAL) }
            .map_err(|e| format!("cannot load {}: {e}", path.display()))
    })
    .as_ref()
    .map(|_| ())
    .map_err(String::as_str)
}

/// Checks that libtorch sees a GPU, and turns TF32 off.
fn check_cuda() -> Result<()> {
    require_cuda("torch")?;
    load_cuda().map_err(|e| anyhow!("--device cuda: {e}"))?;
    if !tch::Cuda::is_available() {
        bail!("--device cuda: libtorch_cuda.so is loaded but libtorch sees no CUDA device");
    }
    // SAFETY: plain setter calls on libtorch's global context.
    check("disabling TF32", unsafe { ffi::sb_cuda_disable_tf32() })
}

/// Makes the calling thread's libtorch operations use `n` intra-op threads.
/// The setting is per thread (OpenMP), but `set_num_threads` also clears
/// oneDNN's caches, so it is called only when the value changes.
fn use_intra_threads(n: usize) {
    let n = i32::try_from(n.max(1)).unwrap_or(i32::MAX);
    if tch::get_num_threads() != n {
        tch::set_num_threads(n);
    }
}

impl Framework for Torch {
    fn name(&self) -> &'static str {
        "torch"
    }

    fn version(&self) -> Result<String> {
        // Only a `--device cuda` run needs CUDA; see `load_cuda`.
        let _ = load_cuda();
        loaded_version()
    }

    fn device_memory(&self, device: Device) -> Option<DeviceMemory> {
        (device == Device::Cuda && check_cuda().is_ok())
            .then(cuda_memory)
            .and_then(Result::ok)
    }

    fn reset_device_peak(&self, device: Device) {
        if device == Device::Cuda && check_cuda().is_ok() {
            // SAFETY: plain value in. A failure leaves the old peak, which
            // only overstates; nothing to report.
            let _ = unsafe { ffi::sb_cuda_reset_peak(0) };
        }
    }

    fn prepare(
        &self,
        graph: &Graph,
        weights: &Weights,
        opts: &PrepareOptions,
    ) -> Result<Box<dyn Prepared>> {
        let _ = load_cuda();
        let device = match opts.device {
            Device::Cpu => TchDevice::Cpu,
            Device::Cuda => {
                check_cuda()?;
                TchDevice::Cuda(0)
            }
        };
        let _no_grad = tch::no_grad_guard();
        let plan = Arc::new(Plan::new(graph, weights, device, opts.optimize)?);
        // More workers (streams) than branches that can run at once would
        // only sit idle, or on CPU take intra-op threads from the others.
        let inter = opts
            .inter_threads
            .min(analyse(graph).max_parallel_branches)
            .max(1);
        let schedule = match (opts.mode, opts.device) {
            (Mode::Sequential, _) => Schedule::Sequential {
                intra: opts.intra_threads,
            },
            (Mode::Parallel, Device::Cpu) => {
                let workers = inter;
                let intra = (opts.intra_threads / workers).max(1);
                if opts.verbose {
                    eprintln!(
                        "torch parallel: {workers} worker thread(s) x {intra} intra-op thread(s)"
                    );
                }
                Schedule::Pool(Pool::new(plan.clone(), workers, intra)?)
            }
            (Mode::Parallel, Device::Cuda) => {
                let lanes = lanes(graph, inter);
                if opts.verbose {
                    let used = lanes.iter().max().map_or(1, |m| m + 1);
                    eprintln!("torch parallel: {used} CUDA stream(s)");
                }
                Schedule::Streams(Streams::new(graph, lanes)?)
            }
        };
        let threads = match &schedule {
            Schedule::Sequential { intra } => (*intra, 1),
            Schedule::Pool(_) => ((opts.intra_threads / inter).max(1), inter),
            Schedule::Streams(_) => {
                let used = lanes(graph, inter).iter().max().map_or(1, |m| m + 1);
                (opts.intra_threads, used)
            }
        };
        Ok(Box::new(TorchModel {
            plan,
            device,
            schedule,
            resident: None,
            threads,
        }))
    }
}

/// The CUDA caching allocator's figures for device 0. The allocator has no
/// statistics before its first allocation: one tiny tensor starts it (and is
/// freed at once, so it adds nothing to `current`).
fn cuda_memory() -> Result<DeviceMemory> {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let _ = Tensor::f_zeros([1], (tch::Kind::Float, TchDevice::Cuda(0)));
    });
    let (mut current, mut peak) = (0i64, 0i64);
    // SAFETY: two out-pointers to live integers.
    check("reading CUDA memory statistics", unsafe {
        ffi::sb_cuda_memory(0, &mut current, &mut peak)
    })?;
    let mib = |b: i64| b as f64 / (1024.0 * 1024.0);
    Ok(DeviceMemory {
        current_mib: mib(current),
        peak_mib: mib(peak),
    })
}

/// A graph ready to execute: every node's operation and weights (on the
/// device), wiring and use counts.
struct Plan {
    names: Vec<String>,
    ops: Vec<Op>,
    /// Per node, the tensors of [`Op::params`], in that order.
    params: Vec<Vec<Tensor>>,
    inputs: Vec<Vec<NodeId>>,
    consumers: Vec<Vec<NodeId>>,
    /// `[C, H, W]` of the input and the number of classes.
    input_shape: [i64; 3],
    classes: i64,
    /// Run under inference mode (`--optimize default` and `max`), else
    /// only `no_grad`.
    inference: bool,
    /// Input and convolution weights in channels-last layout (`max`).
    channels_last: bool,
}

/// Autograd off for the calling thread, as far as the level asks.
enum GradGuard {
    NoGrad(#[allow(dead_code)] tch::NoGradGuard),
    Inference(*mut c_void),
}

impl Drop for GradGuard {
    fn drop(&mut self) {
        if let GradGuard::Inference(g) = *self {
            // SAFETY: made by sb_inference_mode_enter on this thread (the
            // guard is not Send), freed once.
            unsafe { ffi::sb_inference_mode_exit(g) }
        }
    }
}

/// `t` in channels-last memory format.
fn channels_last(t: &Tensor) -> Result<Tensor> {
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: a live tensor in; on success `out` is a new heap at::Tensor,
    // which `Tensor::from_ptr` takes ownership of.
    check("converting to channels-last", unsafe {
        ffi::sb_channels_last(t.as_ptr() as *mut c_void, &mut out)
    })?;
    Ok(unsafe { Tensor::from_ptr(out as *mut torch_sys::C_tensor) })
}

// SAFETY: after construction a plan is only read. Its tensors are handed to
// libtorch operations as `const at::Tensor&`, which may be read from several
// threads at once (reference counts are atomic).
unsafe impl Sync for Plan {}

fn int(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Plan {
    fn new(graph: &Graph, weights: &Weights, device: TchDevice, level: Optimize) -> Result<Plan> {
        let channels_last_weights = level == Optimize::Max;
        let mut params = Vec::with_capacity(graph.nodes.len());
        for node in &graph.nodes {
            let mut tensors = Vec::new();
            for (p, suffix) in node
                .op
                .params()
                .into_iter()
                .flat_map(|(p, suffixes)| suffixes.iter().map(move |s| (p, s)))
            {
                let t = weights.get(p, suffix)?;
                let shape: Vec<i64> = t.shape.iter().map(|&d| int(d)).collect();
                let t = Tensor::f_from_slice(&t.data)
                    .and_then(|t| t.f_reshape(shape))
                    .and_then(|t| t.f_to_device(device))
                    .with_context(|| format!("uploading {}.{suffix}", p.prefix))?;
                let t = if channels_last_weights && t.dim() == 4 {
                    channels_last(&t)?
                } else {
                    t
                };
                tensors.push(t);
            }
            params.push(tensors);
        }
        let x = graph.input();
        Ok(Plan {
            names: graph.nodes.iter().map(|n| n.name.clone()).collect(),
            ops: graph.nodes.iter().map(|n| n.op.clone()).collect(),
            params,
            inputs: graph.nodes.iter().map(|n| n.inputs.clone()).collect(),
            consumers: graph.consumers(),
            input_shape: [int(x.c), int(x.h), int(x.w)],
            classes: int(graph.num_classes()),
            inference: level != Optimize::None,
            channels_last: channels_last_weights,
        })
    }

    /// Autograd off for the calling thread at this plan's level.
    fn grad_guard(&self) -> GradGuard {
        if self.inference {
            // SAFETY: no arguments; the guard is freed by `GradGuard::drop`.
            GradGuard::Inference(unsafe { ffi::sb_inference_mode_enter() })
        } else {
            GradGuard::NoGrad(tch::no_grad_guard())
        }
    }

    /// The input as the graph's first value: channels-last at `max`.
    fn admit(&self, x: Tensor) -> Result<Tensor> {
        if self.channels_last {
            channels_last(&x)
        } else {
            Ok(x)
        }
    }

    fn len(&self) -> usize {
        self.ops.len()
    }

    fn output(&self) -> NodeId {
        self.len() - 1
    }

    /// How many times each node's value is read.
    fn uses(&self) -> Vec<usize> {
        self.consumers.iter().map(Vec::len).collect()
    }

    /// Runs node `id` on its input values.
    fn exec(&self, id: NodeId, x: &[&Tensor]) -> Result<Tensor> {
        self.kernel(id, x)
            .with_context(|| format!("node '{}' ({})", self.names[id], self.ops[id].kind()))
    }

    /// The libtorch call of node `id`, with PyTorch's semantics for each op.
    fn kernel(&self, id: NodeId, x: &[&Tensor]) -> Result<Tensor> {
        let op = &self.ops[id];
        let arity = match op {
            Op::Input => 0,
            Op::Add | Op::Mul => 2,
            Op::Concat => x.len().max(1),
            _ => 1,
        };
        if x.len() != arity {
            bail!("expects {arity} input(s), got {}", x.len());
        }
        let p = &self.params[id];
        Ok(match op {
            Op::Input => bail!("the input node is not executed"),
            Op::Conv {
                stride,
                pad,
                groups,
                ..
            } => x[0].f_conv2d(
                &p[0],
                p.get(1),
                [int(*stride); 2],
                [int(*pad); 2],
                [1, 1],
                int(*groups),
            )?,
            // Eval mode: running statistics, momentum unused.
            Op::BatchNorm { eps, .. } => x[0].f_batch_norm(
                Some(&p[0]),
                Some(&p[1]),
                Some(&p[2]),
                Some(&p[3]),
                false,
                0.0,
                *eps,
                true,
            )?,
            Op::Relu => x[0].f_relu()?,
            Op::Sigmoid => x[0].f_sigmoid()?,
            Op::MaxPool {
                kernel,
                stride,
                pad,
            } => x[0].f_max_pool2d(
                [int(*kernel); 2],
                [int(*stride); 2],
                [int(*pad); 2],
                [1, 1],
                false,
            )?,
            Op::GlobalAvgPool => x[0].f_adaptive_avg_pool2d([1, 1])?,
            Op::Resize { h, w, mode } => {
                let size = [int(*h), int(*w)];
                match mode {
                    ResizeMode::Nearest => x[0].f_upsample_nearest2d(size, None, None)?,
                    ResizeMode::Bilinear => x[0].f_upsample_bilinear2d(size, false, None, None)?,
                }
            }
            Op::Add => x[0].f_add(x[1])?,
            Op::Mul => x[0].f_mul(x[1])?,
            Op::Concat => Tensor::f_cat(x, 1)?,
            Op::Slice { start, end } => x[0].f_narrow(1, int(*start), int(end - start))?,
            // The IR keeps vectors as [N, C, 1, 1].
            Op::Flatten => x[0].f_flatten(1, -1)?.f_unsqueeze(-1)?.f_unsqueeze(-1)?,
            Op::Linear { out, .. } => x[0]
                .f_flatten(1, -1)?
                .f_linear(&p[0], Some(&p[1]))?
                .f_reshape([-1, int(*out), 1, 1])?,
        })
    }

    /// Runs every node in topological order on the calling thread (and, on
    /// CUDA, its current stream), freeing each value after its last use.
    fn run_sequential(&self, input: Tensor) -> Result<Tensor> {
        let mut values: Vec<Option<Tensor>> = (0..self.len()).map(|_| None).collect();
        let mut uses = self.uses();
        values[0] = Some(self.admit(input)?);
        for id in 1..self.len() {
            let y = {
                let x = gather(&values, &self.inputs[id])?;
                self.exec(id, &x)?
            };
            release(&mut values, &mut uses, &self.inputs[id]);
            values[id] = Some(y);
        }
        values[self.output()]
            .take()
            .context("the graph produced no output")
    }
}

/// The input values of a node, by reference.
fn gather<'a>(values: &'a [Option<Tensor>], inputs: &[NodeId]) -> Result<Vec<&'a Tensor>> {
    inputs
        .iter()
        .map(|&i| {
            values[i]
                .as_ref()
                .with_context(|| format!("executor bug: value of node #{i} is missing"))
        })
        .collect()
}

/// Counts one use of each input and frees the values no one reads any more.
fn release(values: &mut [Option<Tensor>], uses: &mut [usize], inputs: &[NodeId]) {
    for &i in inputs {
        uses[i] -= 1;
        if uses[i] == 0 {
            values[i] = None;
        }
    }
}

enum Schedule {
    Sequential { intra: usize },
    Pool(Pool),
    Streams(Streams),
}

struct TorchModel {
    plan: Arc<Plan>,
    device: TchDevice,
    schedule: Schedule,
    /// The input already on the GPU, for `compute_ms`.
    resident: Option<Tensor>,
    /// (intra, inter) as scheduled: workers or streams, and their threads.
    threads: (usize, usize),
}

impl Prepared for TorchModel {
    fn threads_used(&self) -> Option<(usize, usize)> {
        Some(self.threads)
    }

    fn compute_ms(&mut self, input: &Array4<f32>) -> Result<Option<f64>> {
        let TchDevice::Cuda(i) = self.device else {
            return Ok(None);
        };
        let _grad = self.plan.grad_guard();
        if self.resident.is_none() {
            let dims: Vec<i64> = input.shape().iter().map(|&d| int(d)).collect();
            let contiguous = input.as_standard_layout();
            let data = contiguous.as_slice().context("input is not contiguous")?;
            let x = Tensor::f_from_slice(data)?.f_reshape(dims.as_slice())?;
            self.resident = Some(x.f_to_device(self.device)?);
        }
        let x = self
            .resident
            .as_ref()
            .context("no device-resident input")?
            .shallow_clone();
        tch::Cuda::synchronize(int(i));
        let start = std::time::Instant::now();
        let y = match &mut self.schedule {
            Schedule::Sequential { .. } => self.plan.run_sequential(x)?,
            Schedule::Pool(pool) => pool.run(x)?,
            Schedule::Streams(streams) => streams.run(&self.plan, x, self.device)?,
        };
        tch::Cuda::synchronize(int(i));
        let ms = start.elapsed().as_secs_f64() * 1e3;
        drop(y);
        Ok(Some(ms))
    }

    fn run(&mut self, input: &Array4<f32>) -> Result<Array2<f32>> {
        let _grad = self.plan.grad_guard();
        let dims: Vec<i64> = input.shape().iter().map(|&d| int(d)).collect();
        if dims[1..] != self.plan.input_shape {
            bail!(
                "input is {:?}, the graph expects [N, {}, {}, {}]",
                input.shape(),
                self.plan.input_shape[0],
                self.plan.input_shape[1],
                self.plan.input_shape[2]
            );
        }
        let contiguous = input.as_standard_layout();
        let data = contiguous.as_slice().context("input is not contiguous")?;
        let x = Tensor::f_from_slice(data)?.f_reshape(dims.as_slice())?;
        let y = match &mut self.schedule {
            Schedule::Sequential { intra } => {
                if self.device == TchDevice::Cpu {
                    use_intra_threads(*intra);
                }
                self.plan.run_sequential(x.f_to_device(self.device)?)?
            }
            Schedule::Pool(pool) => pool.run(x)?,
            Schedule::Streams(streams) => streams.run(&self.plan, x, self.device)?,
        };
        let y = y
            .f_reshape([dims[0], self.plan.classes])?
            .f_to_device(TchDevice::Cpu)?
            .f_contiguous()?;
        if let TchDevice::Cuda(i) = self.device {
            tch::Cuda::synchronize(int(i));
        }
        let (n, classes) = (input.shape()[0], y.size()[1] as usize);
        let mut out = vec![0f32; n * classes];
        y.f_copy_data(&mut out, n * classes)?;
        Ok(Array2::from_shape_vec((n, classes), out)?)
    }
}

// ---------------------------------------------------------------------------
// CPU: a pool of worker threads running ready nodes.

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
struct Pool {
    shared: Arc<PoolShared>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(plan: Arc<Plan>, workers: usize, intra: usize) -> Result<Pool> {
        let shared = Arc::new(PoolShared {
            plan,
            state: Mutex::new(RunState::default()),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let mut pool = Pool {
            shared,
            threads: Vec::with_capacity(workers),
        };
        for i in 0..workers {
            let shared = pool.shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!("torch-worker-{i}"))
                .spawn(move || worker(&shared, intra))
                .context("cannot start a torch worker thread")?;
            pool.threads.push(handle);
        }
        Ok(pool)
    }

    fn run(&mut self, input: Tensor) -> Result<Tensor> {
        let plan = &self.shared.plan;
        let mut st = lock(&self.shared.state);
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
        if let Some(e) = st.error.take() {
            return Err(e);
        }
        out.context("the graph produced no output")
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

fn worker(shared: &PoolShared, intra: usize) {
    let _grad = shared.plan.grad_guard();
    use_intra_threads(intra);
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
        drop(st);
        let result = inputs.and_then(|x| {
            let refs: Vec<&Tensor> = x.iter().collect();
            catch_unwind(AssertUnwindSafe(|| plan.exec(id, &refs)))
                .unwrap_or_else(|_| Err(anyhow!("node '{}' panicked", plan.names[id])))
        });
        st = lock(&shared.state);
        st.running -= 1;
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

// ---------------------------------------------------------------------------
// CUDA: one stream per concurrent branch.

/// Assigns every node a stream index in `0..streams`: a node continues on
/// the stream of an input it is the first reader of (a branch goes on where
/// it forked); any other node opens a branch on the least recently used
/// stream, so concurrent branches get different streams while there are
/// enough.
fn lanes(graph: &Graph, streams: usize) -> Vec<usize> {
    let consumers = graph.consumers();
    let mut last_used = vec![0usize; streams.max(1)];
    let mut lane = vec![0usize; graph.nodes.len()];
    for (id, node) in graph.nodes.iter().enumerate() {
        let continued = node
            .inputs
            .iter()
            .find(|&&p| consumers[p].first() == Some(&id))
            .map(|&p| lane[p]);
        lane[id] = continued.unwrap_or_else(|| {
            (0..last_used.len())
                .min_by_key(|&l| last_used[l])
                .unwrap_or(0)
        });
        last_used[lane[id]] = id + 1;
    }
    lane
}

/// A CUDA event from the shim, freed on drop.
struct Event(*mut c_void);

impl Event {
    fn new() -> Result<Event> {
        let mut ev = std::ptr::null_mut();
        // SAFETY: the shim writes a new c10::Event on success.
        check("creating a CUDA event", unsafe {
            ffi::sb_event_new(&mut ev)
        })?;
        Ok(Event(ev))
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: created by sb_event_new, freed once.
        unsafe { ffi::sb_event_free(self.0) }
    }
}

/// Makes `s` the thread's current stream until dropped.
struct CurrentStream(ffi::Stream);

impl CurrentStream {
    fn set(s: ffi::Stream) -> Result<CurrentStream> {
        let mut prev = ffi::Stream::default();
        // SAFETY: plain values in and out.
        check("setting the CUDA stream", unsafe {
            ffi::sb_stream_exchange(s, &mut prev)
        })?;
        Ok(CurrentStream(prev))
    }
}

impl Drop for CurrentStream {
    fn drop(&mut self) {
        let mut ignored = ffi::Stream::default();
        // SAFETY: as in `set`; restoring a stream that was current cannot fail.
        unsafe { ffi::sb_stream_exchange(self.0, &mut ignored) };
    }
}

struct Streams {
    streams: Vec<ffi::Stream>,
    /// Stream index of every node.
    lane: Vec<usize>,
    /// For nodes read on another stream: the event recorded after them.
    events: Vec<Option<Event>>,
}

impl Streams {
    fn new(graph: &Graph, lane: Vec<usize>) -> Result<Streams> {
        let count = lane.iter().max().map_or(1, |m| m + 1);
        let streams = (0..count)
            .map(|_| {
                let mut s = ffi::Stream::default();
                // SAFETY: plain values out.
                check("taking a stream from the CUDA pool", unsafe {
                    ffi::sb_stream_from_pool(0, &mut s)
                })?;
                Ok(s)
            })
            .collect::<Result<Vec<_>>>()?;
        let events = graph
            .consumers()
            .iter()
            .enumerate()
            .map(|(id, cs)| {
                if cs.iter().any(|&c| lane[c] != lane[id]) {
                    Event::new().map(Some)
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Streams {
            streams,
            lane,
            events,
        })
    }

    fn run(&mut self, plan: &Plan, input: Tensor, device: TchDevice) -> Result<Tensor> {
        let mut values: Vec<Option<Tensor>> = (0..plan.len()).map(|_| None).collect();
        let mut uses = plan.uses();
        let first = self.streams[self.lane[0]];
        {
            let _on = CurrentStream::set(first)?;
            values[0] = Some(plan.admit(input.f_to_device(device)?)?);
            self.record(0, first)?;
        }
        for id in 1..plan.len() {
            let s = self.streams[self.lane[id]];
            let _on = CurrentStream::set(s)?;
            for &i in &plan.inputs[id] {
                if self.lane[i] != self.lane[id] {
                    self.wait(i, s, values[i].as_ref())?;
                }
            }
            let y = {
                let x = gather(&values, &plan.inputs[id])?;
                plan.exec(id, &x)?
            };
            release(&mut values, &mut uses, &plan.inputs[id]);
            values[id] = Some(y);
            self.record(id, s)?;
        }
        let out = self.streams[self.lane[plan.output()]];
        // SAFETY: plain value in.
        check("synchronising the output stream", unsafe {
            ffi::sb_stream_synchronize(out)
        })?;
        values[plan.output()]
            .take()
            .context("the graph produced no output")
    }

    /// Records node `id`'s event, if another stream reads it.
    fn record(&self, id: NodeId, s: ffi::Stream) -> Result<()> {
        match &self.events[id] {
            // SAFETY: a live event and a pool stream.
            Some(ev) => check("recording a CUDA event", unsafe {
                ffi::sb_event_record(ev.0, s)
            }),
            None => Ok(()),
        }
    }

    /// Makes stream `s` wait for node `id`, and tells the caching allocator
    /// that `s` uses its value (so the memory is not reused too early).
    fn wait(&self, id: NodeId, s: ffi::Stream, value: Option<&Tensor>) -> Result<()> {
        let ev = self.events[id]
            .as_ref()
            .with_context(|| format!("executor bug: node #{id} has no event"))?;
        // SAFETY: a live event and a pool stream.
        check("waiting on a CUDA event", unsafe {
            ffi::sb_event_block(ev.0, s)
        })?;
        let value = value.with_context(|| format!("executor bug: node #{id} has no value"))?;
        // SAFETY: tch's C_tensor is an at::Tensor*, alive for this call.
        check("record_stream", unsafe {
            ffi::sb_record_stream(value.as_ptr() as *mut c_void, s)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{ParamRef, Shape};

    fn opts(device: Device, mode: Mode, intra_threads: usize) -> PrepareOptions {
        PrepareOptions {
            device,
            mode,
            intra_threads,
            inter_threads: if mode == Mode::Parallel { 2 } else { 1 },
            optimize: crate::frameworks::Optimize::Default,
            verbose: false,
        }
    }

    /// input -> conv -> { conv+bn, maxpool+conv+upsample, slice } -> concat
    /// -> relu -> add(shortcut) -> gap * gate -> flatten -> linear
    fn diamond() -> Graph {
        let conv = |out, kernel, pad, prefix: &str| Op::Conv {
            out,
            kernel,
            stride: 1,
            pad,
            groups: 1,
            bias: true,
            params: ParamRef::whole(prefix),
        };
        let mut g = Graph::new("diamond", Shape::new(3, 12, 12));
        let stem = g.add("stem", conv(8, 3, 1, "stem"), &[0]).unwrap();
        let a = g.add("a.conv", conv(4, 3, 1, "a"), &[stem]).unwrap();
        let a = g
            .add(
                "a.bn",
                Op::BatchNorm {
                    eps: 1e-5,
                    params: ParamRef::whole("bn"),
                },
                &[a],
            )
            .unwrap();
        let pool = Op::MaxPool {
            kernel: 2,
            stride: 2,
            pad: 0,
        };
        let b = g.add("b.pool", pool, &[stem]).unwrap();
        let b = g.add("b.conv", conv(4, 1, 0, "b"), &[b]).unwrap();
        let up = Op::Resize {
            h: 12,
            w: 12,
            mode: ResizeMode::Bilinear,
        };
        let b = g.add("b.up", up, &[b]).unwrap();
        let c = g
            .add("c.slice", Op::Slice { start: 0, end: 8 }, &[stem])
            .unwrap();
        let cat = g.add("cat", Op::Concat, &[a, b, c]).unwrap();
        let r = g.add("relu", Op::Relu, &[cat]).unwrap();
        let sc = g.add("sc", conv(16, 1, 0, "sc"), &[stem]).unwrap();
        let sum = g.add("add", Op::Add, &[r, sc]).unwrap();
        let gap = g.add("gap", Op::GlobalAvgPool, &[sum]).unwrap();
        let gate = g.add("gate", Op::Sigmoid, &[gap]).unwrap();
        let m = g.add("mul", Op::Mul, &[sum, gate]).unwrap();
        let f = g.add("flat", Op::Flatten, &[m]).unwrap();
        g.add(
            "fc",
            Op::Linear {
                out: 10,
                params: ParamRef::whole("fc"),
            },
            &[f],
        )
        .unwrap();
        g
    }

    fn run(graph: &Graph, mode: Mode, intra: usize, x: &Array4<f32>) -> Array2<f32> {
        let w = Weights::seeded(graph, 1);
        let mut p = Torch
            .prepare(graph, &w, &opts(Device::Cpu, mode, intra))
            .unwrap();
        let first = p.run(x).unwrap();
        // A second run on the same prepared model gives the same answer.
        assert_eq!(first, p.run(x).unwrap());
        first
    }

    // Bit-identity holds when every operation runs with the same number of
    // intra-op threads in both schedules: one here (the parallel schedule
    // divides intra_threads among its workers). oneDNN's 1x1 convolution
    // blocks its reduction by the thread count, so 2 threads against 1 differ
    // in the last bits, in PyTorch itself as well.

    #[test]
    fn levels_set_layout_and_autograd_mode() {
        let g = diamond();
        let w = Weights::seeded(&g, 1);
        let conv_weight = |p: &Plan| p.params[1][0].shallow_clone();
        let none = Plan::new(&g, &w, TchDevice::Cpu, Optimize::None).unwrap();
        let max = Plan::new(&g, &w, TchDevice::Cpu, Optimize::Max).unwrap();
        // [4, 3, 3, 3] weights: channels-last strides only at max
        assert!(conv_weight(&none).is_contiguous());
        assert!(!conv_weight(&max).is_contiguous());
        assert_eq!(conv_weight(&max).stride()[1], 1);
        let x = Tensor::zeros([1, 3, 12, 12], (tch::Kind::Float, TchDevice::Cpu));
        assert_eq!(max.admit(x.shallow_clone()).unwrap().stride()[1], 1);
        assert!(none.admit(x).unwrap().is_contiguous());
        // inference mode at default and max, no_grad only at none
        let made_under = |p: &Plan| {
            let _g = p.grad_guard();
            Tensor::ones([2], (tch::Kind::Float, TchDevice::Cpu)).is_inference()
        };
        assert!(!made_under(&none));
        assert!(made_under(&max));
        let default = Plan::new(&g, &w, TchDevice::Cpu, Optimize::Default).unwrap();
        assert!(made_under(&default));
        // the guard is gone with its scope
        assert!(!Tensor::ones([2], (tch::Kind::Float, TchDevice::Cpu)).is_inference());
    }

    #[test]
    fn schedules_agree_bit_for_bit_on_a_diamond() {
        let g = diamond();
        let x = crate::io::seeded_input(2, 12, 3);
        let seq = run(&g, Mode::Sequential, 1, &x);
        let par = run(&g, Mode::Parallel, 1, &x);
        assert_eq!(seq.shape(), &[2, 10]);
        assert!(seq.iter().all(|v| v.is_finite()));
        assert_eq!(seq, par);
    }

    #[test]
    fn schedules_agree_bit_for_bit_on_scalenet50() {
        let loaded = crate::zoo::load(
            &crate::zoo::Catalog::built_in().unwrap(),
            "scalenet50",
            128,
            None,
            0,
        )
        .unwrap();
        let x = crate::io::seeded_input(1, 128, 0);
        let seq = run(&loaded.graph, Mode::Sequential, 1, &x);
        let par = run(&loaded.graph, Mode::Parallel, 1, &x);
        assert_eq!(seq.shape(), &[1, 1000]);
        assert_eq!(seq, par);
        // With two intra-op threads in the sequential schedule: equal up to
        // rounding.
        let seq2 = run(&loaded.graph, Mode::Sequential, 2, &x);
        let (_, rel, agree) = crate::verify::compare(&seq2, &par).unwrap();
        assert!(rel < 1e-5 && agree == 1, "{rel}");
    }

    #[test]
    fn cuda_without_a_gpu_is_one_clear_error() {
        if super::super::cuda_present() {
            return;
        }
        let g = diamond();
        let w = Weights::seeded(&g, 1);
        for mode in [Mode::Sequential, Mode::Parallel] {
            let err = Torch
                .prepare(&g, &w, &opts(Device::Cuda, mode, 1))
                .err()
                .expect("--device cuda must fail without a GPU");
            assert!(err.to_string().contains("no NVIDIA GPU"), "{err:#}");
        }
    }

    #[test]
    fn cuda_schedules_match_the_cpu() {
        if !super::super::cuda_present() {
            return;
        }
        let g = diamond();
        let w = Weights::seeded(&g, 1);
        let x = crate::io::seeded_input(2, 12, 3);
        let cpu = run(&g, Mode::Sequential, 1, &x);
        for mode in [Mode::Sequential, Mode::Parallel] {
            let mut p = Torch.prepare(&g, &w, &opts(Device::Cuda, mode, 1)).unwrap();
            let y = p.run(&x).unwrap();
            assert_eq!(y, p.run(&x).unwrap());
            let (_, rel, _) = crate::verify::compare(&y, &cpu).unwrap();
            assert!(rel < 1e-5, "{mode}: {rel}");
        }
    }

    #[test]
    fn branches_get_their_own_streams() {
        let g = diamond();
        let lane = lanes(&g, 4);
        let id = |name: &str| g.nodes.iter().position(|n| n.name == name).unwrap();
        // The first reader of the stem continues its stream; the other
        // branches out of the stem each open their own.
        assert_eq!(lane[id("a.conv")], lane[id("stem")]);
        let opened = [id("b.pool"), id("c.slice"), id("sc")].map(|n| lane[n]);
        assert!(opened.iter().all(|&l| l != lane[id("stem")]));
        assert_ne!(opened[0], opened[1]);
        assert_ne!(opened[1], opened[2]);
        assert_ne!(opened[0], opened[2]);
        assert_eq!(lane[id("b.up")], lane[id("b.pool")]);
        // One stream: everything on it.
        assert!(lanes(&g, 1).iter().all(|&l| l == 0));
    }

    #[test]
    fn reports_the_loaded_libtorch_version() {
        let v = Torch.version().unwrap();
        assert!(v.chars().next().is_some_and(|c| c.is_ascii_digit()), "{v}");
    }
}
