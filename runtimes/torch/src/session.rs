//! A graph prepared for libtorch: its [`Plan`] and the schedule that runs it
//! ([`config`](super::config) chose which), host to host, or device-resident
//! for `compute_ms`.

use std::sync::Arc;

use anyhow::{Context, Result};
use ndarray::{Array2, Array4};
use tch::{Device as TchDevice, Tensor};

use super::config::{schedule_config, ScheduleConfig, ScheduleKind};
use super::ffi;
use super::graphs::CudaGraph;
use super::library::{check_cuda, intra_threads, load_cuda, use_intra_threads, use_tf32};
use super::plan::{int, Plan};
use super::staged::Staged;
use super::streams::{lanes, pool_stream, synchronize, CurrentStream, Streams};
use super::trace::timeline;
use speedbench::frameworks::{
    check_input, check_output, Device, Optimize, PrepareOptions, Prepared,
};
use speedbench::graph::analysis::analyse;
use speedbench::graph::weights::Weights;
use speedbench::graph::Graph;
use speedbench::record::{ScheduleRecord, Timeline};

/// The running form of a [`ScheduleKind`].
enum Schedule {
    Sequential {
        intra: usize,
    },
    /// The CPU cost-model schedule, calibrated on the first pass (which
    /// needs an input of the batch being timed).
    Staged {
        graph: Box<Graph>,
        intra: usize,
        lanes: usize,
        verbose: bool,
        staged: Option<Box<Staged>>,
        /// The schedule an earlier process of the cell chose, to run again.
        reuse: Option<ScheduleRecord>,
    },
    Streams(Streams),
}

pub(super) struct TorchModel {
    plan: Arc<Plan>,
    device: TchDevice,
    schedule: Schedule,
    /// The input already on the GPU, for `compute_ms`.
    resident: Option<Tensor>,
    /// The schedule's settings; its threads are the ones a cell records.
    config: ScheduleConfig,
    /// `--optimize cuda-graph`: the passes replay one captured graph.
    capture: bool,
    graphed: Option<Graphed>,
    /// The intra-op threads libtorch ran the last CPU pass with, read back
    /// from it on the calling thread (`get_num_threads`).
    ran_intra: Option<usize>,
}

/// A pass of the schedule captured as a CUDA graph, with the input it
/// reads and the output it writes (the same memory on every replay).
struct Graphed {
    graph: CudaGraph,
    stream: ffi::Stream,
    input: Tensor,
    output: Tensor,
}

impl TorchModel {
    /// Uploads the weights and starts the schedule `opts` asks for.
    pub(super) fn new(graph: &Graph, weights: &Weights, opts: &PrepareOptions) -> Result<Self> {
        let _ = load_cuda();
        let device = match opts.device {
            Device::Cpu => TchDevice::Cpu,
            Device::Cuda => {
                check_cuda()?;
                use_tf32(opts.precision == speedbench::frameworks::Precision::Tf32)?;
                TchDevice::Cuda(0)
            }
        };
        let _no_grad = tch::no_grad_guard();
        let plan = Arc::new(Plan::new(
            graph,
            weights,
            device,
            opts.optimize,
            opts.precision,
        )?);
        let config = schedule_config(opts, analyse(graph).max_parallel_branches);
        let (workers, intra) = (config.workers, config.intra_threads);
        let schedule = match config.kind {
            ScheduleKind::Sequential => Schedule::Sequential { intra },
            ScheduleKind::Staged => Schedule::Staged {
                graph: Box::new(graph.clone()),
                intra,
                lanes: workers,
                verbose: opts.verbose,
                staged: None,
                reuse: opts.schedule.clone().filter(|r| !r.ran.is_empty()),
            },
            ScheduleKind::Streams => {
                let streams = Streams::new(graph, lanes(graph, workers))?;
                // `lanes` opens every stream it may: a graph `workers` wide
                // has at least that many branches.
                debug_assert_eq!(streams.count(), workers);
                if opts.verbose {
                    eprintln!("torch parallel: {} CUDA stream(s)", streams.count());
                }
                Schedule::Streams(streams)
            }
        };
        Ok(TorchModel {
            plan,
            device,
            schedule,
            resident: None,
            config,
            capture: opts.optimize == Optimize::CudaGraph,
            graphed: None,
            ran_intra: None,
        })
    }

    /// The schedule's pass on `x` (on the device), queued on the current
    /// stream and, on CUDA, the streams it forks; nothing synchronised.
    fn enqueue(&mut self, x: Tensor) -> Result<Tensor> {
        match &mut self.schedule {
            Schedule::Sequential { .. } => self.plan.run_sequential(x, None),
            Schedule::Streams(streams) => streams.enqueue(&self.plan, x, self.device),
            Schedule::Staged { .. } => {
                anyhow::bail!(
                    "--optimize cuda-graph: the CPU cost-model schedule has no CUDA graph"
                )
            }
        }
    }

    /// The graphed pass over device tensor `x`'s shape, captured the first
    /// time (again if the batch changed): one eager pass on the capturing
    /// stream first, so that the allocator and cuDNN have settled, then
    /// the capture.
    fn graphed(&mut self, x: &Tensor) -> Result<&Graphed> {
        if self
            .graphed
            .as_ref()
            .is_some_and(|g| g.input.size() != x.size())
        {
            self.graphed = None;
        }
        if self.graphed.is_none() {
            let stream = match &self.schedule {
                Schedule::Streams(s) => s.first(),
                _ => pool_stream()?,
            };
            let mut graph = CudaGraph::new()?;
            let _on = CurrentStream::set(stream)?;
            let input = deep_copy(x)?;
            drop(self.enqueue(input.shallow_clone())?);
            synchronize(stream)?;
            let output = graph.capture(|| self.enqueue(input.shallow_clone()))?;
            self.graphed = Some(Graphed {
                graph,
                stream,
                input,
                output,
            });
        }
        self.graphed.as_ref().context("no CUDA graph")
    }

    /// One replay of the graphed pass on `x`, copied into the captured
    /// input; returns the (captured) output, complete.
    fn replay(&mut self, x: &Tensor) -> Result<Tensor> {
        let g = self.graphed(x)?;
        let _on = CurrentStream::set(g.stream)?;
        let mut input = g.input.shallow_clone();
        input.f_copy_(x)?;
        g.graph.replay()?;
        let y = deep_copy(&g.output)?;
        synchronize(g.stream)?;
        Ok(y)
    }
}

/// A tensor of its own with `t`'s values, on `t`'s device and stream.
fn deep_copy(t: &Tensor) -> Result<Tensor> {
    let mut c = t.f_empty_like()?;
    c.f_copy_(t)?;
    Ok(c)
}

/// The batch as a host tensor of its shape.
fn host_tensor(input: &Array4<f32>) -> Result<Tensor> {
    let dims: Vec<i64> = input.shape().iter().map(|&d| int(d)).collect();
    let contiguous = input.as_standard_layout();
    let data = contiguous.as_slice().context("input is not contiguous")?;
    Ok(Tensor::f_from_slice(data)?.f_reshape(dims.as_slice())?)
}

impl Schedule {
    /// The calibrated cost-model schedule, calibrating it on `x` (a host
    /// tensor) the first time.
    fn staged(&mut self, plan: &Arc<Plan>, x: &Tensor) -> Result<Option<&mut Staged>> {
        let Schedule::Staged {
            graph,
            intra,
            lanes,
            verbose,
            staged,
            reuse,
        } = self
        else {
            return Ok(None);
        };
        if staged.is_none() {
            let s = match reuse.take() {
                Some(r) => Staged::reuse(plan.clone(), graph, r, *intra)?,
                None => Staged::calibrate(plan.clone(), graph, x, *intra, *lanes)?,
            };
            if *verbose {
                eprintln!("torch parallel: {}", s.record.chosen);
            }
            *staged = Some(Box::new(s));
        }
        Ok(staged.as_deref_mut())
    }
}

impl Prepared for TorchModel {
    /// The mapping's threads; for the CPU cost-model schedule once
    /// calibrated, the most lanes any stage runs (1 where it chose
    /// sequential). On the CPU after a pass, the intra-op threads are the
    /// ones libtorch ran it with on the calling thread, read back from it.
    fn threads_used(&self) -> Option<(usize, usize)> {
        let (intra, inter) = match &self.schedule {
            Schedule::Staged {
                staged: Some(s), ..
            } => s.threads(),
            _ => self.config.threads(),
        };
        Some((self.ran_intra.unwrap_or(intra), inter))
    }

    fn schedule(&self) -> Option<speedbench::record::ScheduleRecord> {
        match &self.schedule {
            Schedule::Staged {
                staged: Some(s), ..
            } => Some(s.record.clone()),
            _ => None,
        }
    }

    fn compute_ms(&mut self, input: &Array4<f32>) -> Result<Option<f64>> {
        let TchDevice::Cuda(i) = self.device else {
            return Ok(None);
        };
        let _grad = self.plan.grad_guard();
        if self.resident.is_none() {
            self.resident = Some(host_tensor(input)?.f_to_device(self.device)?);
        }
        let x = self
            .resident
            .as_ref()
            .context("no device-resident input")?
            .shallow_clone();
        if self.capture {
            let g = self.graphed(&x)?;
            let _on = CurrentStream::set(g.stream)?;
            tch::Cuda::synchronize(int(i));
            let start = std::time::Instant::now();
            g.graph.replay()?;
            tch::Cuda::synchronize(int(i));
            return Ok(Some(start.elapsed().as_secs_f64() * 1e3));
        }
        tch::Cuda::synchronize(int(i));
        let start = std::time::Instant::now();
        let y = match &mut self.schedule {
            Schedule::Sequential { .. } | Schedule::Staged { .. } => {
                self.plan.run_sequential(x, None)?
            }
            Schedule::Streams(streams) => streams.run(&self.plan, x, self.device)?,
        };
        tch::Cuda::synchronize(int(i));
        let ms = start.elapsed().as_secs_f64() * 1e3;
        drop(y);
        Ok(Some(ms))
    }

    /// speedbench's executor records each node: per worker thread on the
    /// CPU (host clock), per stream on CUDA (timed CUDA events). A
    /// sequential pass on CUDA runs on the current stream, traced as one
    /// stream through the same events.
    fn trace(&mut self, input: &Array4<f32>) -> Result<Timeline> {
        check_input(self.plan.input, input)?;
        let _grad = self.plan.grad_guard();
        let x = host_tensor(input)?.f_to_device(self.device)?;
        let (tracks, spans) = match &mut self.schedule {
            Schedule::Sequential { intra } => {
                if self.device == TchDevice::Cpu {
                    use_intra_threads(*intra);
                    let mut spans = Vec::with_capacity(self.plan.len());
                    drop(self.plan.run_sequential(x, Some(&mut spans))?);
                    (vec!["main thread".to_string()], spans)
                } else {
                    // one stream: the lanes of a one-stream schedule
                    let mut one = Streams::new_single(self.plan.len())?;
                    let (_, spans) = one.run_traced(&self.plan, x, self.device, true)?;
                    (vec!["stream 0".to_string()], spans)
                }
            }
            Schedule::Staged { .. } => {
                let staged = self
                    .schedule
                    .staged(&self.plan, &x)?
                    .context("no cost-model schedule")?;
                let (_, spans) = staged.run(x, true)?;
                (staged.tracks(), spans)
            }
            Schedule::Streams(streams) => {
                let n = streams.count();
                let (_, spans) = streams.run_traced(&self.plan, x, self.device, true)?;
                ((0..n).map(|i| format!("stream {i}")).collect(), spans)
            }
        };
        let source = match self.device {
            TchDevice::Cpu => "speedbench executor (host clock per worker thread)",
            _ if self.capture => "speedbench executor, eager (timed CUDA events per stream); the timed passes replay this schedule as one CUDA graph",
            _ => "speedbench executor (timed CUDA events per stream)",
        };
        let device = match self.device {
            TchDevice::Cpu => "CPU",
            _ => "CUDA",
        };
        Ok(timeline(&self.plan, source, device, tracks, &spans))
    }

    fn run(&mut self, input: &Array4<f32>) -> Result<Array2<f32>> {
        check_input(self.plan.input, input)?;
        let _grad = self.plan.grad_guard();
        let x = host_tensor(input)?;
        let batch = int(input.shape()[0]);
        let y = match &mut self.schedule {
            _ if self.capture => {
                let x = x.f_to_device(self.device)?;
                self.replay(&x)?
            }
            Schedule::Sequential { intra } => {
                if self.device == TchDevice::Cpu {
                    use_intra_threads(*intra);
                }
                self.plan
                    .run_sequential(x.f_to_device(self.device)?, None)?
            }
            Schedule::Staged { .. } => {
                let staged = self
                    .schedule
                    .staged(&self.plan, &x)?
                    .context("no cost-model schedule")?;
                staged.run(x, false)?.0
            }
            Schedule::Streams(streams) => streams.run(&self.plan, x, self.device)?,
        };
        if self.device == TchDevice::Cpu {
            self.ran_intra = Some(intra_threads());
        }
        let y = y
            .f_reshape([batch, self.plan.classes])?
            .f_to_device(TchDevice::Cpu)?
            .f_to_kind(tch::Kind::Float)?
            .f_contiguous()?;
        if let TchDevice::Cuda(i) = self.device {
            tch::Cuda::synchronize(int(i));
        }
        let dims: Vec<usize> = y.size().iter().map(|&d| d as usize).collect();
        let (n, classes) = check_output("libtorch", &dims)?;
        let mut out = vec![0f32; n * classes];
        y.f_copy_data(&mut out, n * classes)?;
        Ok(Array2::from_shape_vec((n, classes), out)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::diamond;
    use speedbench::frameworks::{Mode, Optimize};

    #[test]
    fn the_cost_model_schedule_is_calibrated_on_the_first_pass() {
        let g = diamond();
        let w = Weights::seeded(&g, 1);
        let opts = PrepareOptions::new(Device::Cpu, Mode::Parallel, Optimize::Default, 4, 2, false);
        let mut m = TorchModel::new(&g, &w, &opts).unwrap();
        // before any pass: the mapping's threads, no schedule yet
        assert_eq!(m.threads_used(), Some((4, 2)));
        assert!(m.schedule().is_none());
        let x = speedbench::io::seeded_input(1, 12, 0);
        let y = m.run(&x).unwrap();
        let r = m.schedule().expect("calibrated");
        assert_eq!(
            r.scheduler,
            "speedbench cost model over libtorch operations"
        );
        let (intra, lanes) = m.threads_used().unwrap();
        assert_eq!(intra, 4);
        // the lanes a cell records are those of the schedule that runs
        let most = r
            .parallel_stages
            .iter()
            .map(|s| s.lanes.len())
            .max()
            .unwrap_or(1);
        if r.chosen.starts_with("sequential") {
            assert_eq!(lanes, 1);
        } else {
            assert_eq!(lanes, most);
        }
        // the same logits as the sequential schedule, whatever it chose
        let seq = PrepareOptions::new(
            Device::Cpu,
            Mode::Sequential,
            Optimize::Default,
            1,
            1,
            false,
        );
        let want = TorchModel::new(&g, &w, &seq).unwrap().run(&x).unwrap();
        let diff = (&y - &want).mapv(f32::abs).fold(0f32, |a, &b| a.max(b));
        assert!(diff < 1e-4, "{diff}");
    }

    #[test]
    fn sequential_runs_on_the_calling_thread_with_every_intra_op_thread() {
        let g = diamond();
        let w = Weights::seeded(&g, 1);
        let opts = PrepareOptions::new(
            Device::Cpu,
            Mode::Sequential,
            Optimize::Default,
            4,
            2,
            false,
        );
        let mut m = TorchModel::new(&g, &w, &opts).unwrap();
        assert_eq!(m.threads_used(), Some((4, 1)));
        assert!(matches!(m.schedule, Schedule::Sequential { intra: 4 }));
        // after a pass, what libtorch ran it with, read back: the threads
        // asked for, whatever the calling thread had before
        for (asked, before) in [(4, 1), (3, 4), (1, 2)] {
            let opts = PrepareOptions {
                intra_threads: asked,
                ..opts.clone()
            };
            let mut m = TorchModel::new(&g, &w, &opts).unwrap();
            use_intra_threads(before);
            m.run(&speedbench::io::seeded_input(1, 12, 0)).unwrap();
            assert_eq!(m.ran_intra, Some(intra_threads()));
            assert_eq!(m.threads_used(), Some((asked, 1)));
        }
        // a pass run with other threads than asked records those
        use_intra_threads(2);
        m.ran_intra = Some(intra_threads());
        assert_eq!(m.threads_used(), Some((2, 1)));
    }
}
