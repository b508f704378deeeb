//! A graph loaded into an ONNX Runtime session: host-to-host passes, and on
//! CUDA the device-resident pass of `compute_ms` through an I/O binding
//! (input and output at fixed addresses, so that the CUDA execution
//! provider's CUDA graph, `--optimize cuda-graph`, can replay it; there
//! every pass goes through the binding).

use anyhow::{Context, Result};
use ndarray::{Array2, Array4};
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, Session};
use ort::value::{DynValue, Tensor, TensorRef};

use speedbench::frameworks::{check_input, Device, Prepared};
use speedbench::graph::{onnx, Shape};
use speedbench::record::Timeline;

pub(super) struct OrtSession {
    session: Session,
    device: Device,
    /// Per-sample input shape the graph was built for.
    shape: Shape,
    /// (intra, inter) threads the session was built with.
    threads: (usize, usize),
    /// Logits per sample.
    classes: usize,
    /// The session replays a CUDA graph: passes go through the binding.
    graphed: bool,
    /// The I/O binding of `compute_ms`: the input already on the device and
    /// the output left there; built on first use.
    bound: Option<Bound>,
}

/// An I/O binding and the values it binds, at fixed addresses.
struct Bound {
    binding: IoBinding,
    input: Tensor<f32>,
    /// Held for the binding, which writes every pass's logits here.
    _output: DynValue,
}

/// Where a bound pass keeps its input and output.
fn allocation(device: Device) -> AllocationDevice<'static> {
    match device {
        Device::Cpu => AllocationDevice::CPU,
        Device::Cuda => AllocationDevice::CUDA,
    }
}

impl OrtSession {
    pub(super) fn new(
        session: Session,
        device: Device,
        (shape, classes): (Shape, usize),
        threads: (usize, usize),
        graphed: bool,
    ) -> OrtSession {
        OrtSession {
            session,
            device,
            shape,
            threads,
            classes,
            graphed,
            bound: None,
        }
    }

    /// The binding for `input`'s batch, made on first use (again if the
    /// batch changed): the input copied to the device, the output
    /// allocated there. True where this call made it (the input is then
    /// already in place). A graphed session refuses a new batch: its CUDA
    /// graph holds the first binding's addresses.
    fn bind(&mut self, input: &Array4<f32>) -> Result<bool> {
        let dims: Vec<i64> = input.shape().iter().map(|&d| d as i64).collect();
        if let Some(b) = self.bound.as_ref() {
            let bound: Vec<i64> = b.input.shape().iter().copied().collect();
            if bound == dims {
                return Ok(false);
            }
            if self.graphed {
                anyhow::bail!(
                    "--optimize cuda-graph: the session's CUDA graph was captured for input {bound:?}, not {dims:?}"
                );
            }
        }
        {
            let device = allocation(self.device);
            let data = input.as_slice().context("input is not contiguous")?;
            let host = Tensor::from_array((dims.clone(), data.to_vec()))?;
            let input = host.to(device.clone(), 0)?;
            let memory = MemoryInfo::new(device, 0, AllocatorType::Device, MemoryType::Default)?;
            let allocator = Allocator::new(&self.session, memory)?;
            let mut output =
                Tensor::<f32>::new(&allocator, [dims[0], self.classes as i64])?.into_dyn();
            let mut binding = self.session.create_binding()?;
            binding.bind_input(onnx::INPUT, &input)?;
            binding.bind_output(onnx::OUTPUT, &mut output)?;
            self.bound = Some(Bound {
                binding,
                input,
                _output: output,
            });
        }
        Ok(true)
    }

    /// One pass through an I/O binding on the session's device: the input
    /// copied there once, the output left there; returns the time from the
    /// call to the device being synchronised, in ms, and the output value.
    fn run_bound(&mut self, input: &Array4<f32>) -> Result<(f64, DynValue)> {
        self.bind(input)?;
        let Some(b) = self.bound.as_ref() else {
            anyhow::bail!("no I/O binding");
        };
        b.binding.synchronize_inputs()?;
        let start = std::time::Instant::now();
        let mut outputs = self.session.run_binding(&b.binding)?;
        b.binding.synchronize_outputs()?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let y = outputs
            .remove(onnx::OUTPUT)
            .context("ONNX Runtime bound no logits")?;
        Ok((ms, y))
    }

    /// A host-to-host pass through the binding: `input` copied into the
    /// bound input in place, the bound output copied back.
    fn run_through_binding(&mut self, input: &Array4<f32>) -> Result<Array2<f32>> {
        let fresh = self.bind(input)?;
        if let (false, Some(b)) = (fresh, self.bound.as_mut()) {
            let dims: Vec<i64> = input.shape().iter().map(|&d| d as i64).collect();
            let data = input.as_slice().context("input is not contiguous")?;
            let host = Tensor::from_array((dims, data.to_vec()))?;
            host.copy_into(&mut b.input)?;
        }
        let (_, y) = self.run_bound(input)?;
        let host = y
            .downcast::<ort::value::TensorValueType<f32>>()?
            .to(AllocationDevice::CPU, 0)?;
        super::logits(host.into_dyn())
    }
}

impl Prepared for OrtSession {
    fn run(&mut self, input: &Array4<f32>) -> Result<Array2<f32>> {
        check_input(self.shape, input)?;
        if self.graphed {
            return self.run_through_binding(input);
        }
        let shape: Vec<i64> = input.shape().iter().map(|&d| d as i64).collect();
        let data = input.as_slice().context("input is not contiguous")?;
        let tensor = TensorRef::from_array_view((shape, data))?;
        let mut outputs = self.session.run(ort::inputs![onnx::INPUT => tensor])?;
        super::logits(
            outputs
                .remove(onnx::OUTPUT)
                .context("ONNX Runtime gave no logits")?,
        )
    }

    fn threads_used(&self) -> Option<(usize, usize)> {
        Some(self.threads)
    }

    fn trace(&mut self, input: &Array4<f32>) -> Result<Timeline> {
        check_input(self.shape, input)?;
        if self.graphed {
            anyhow::bail!("a session replaying a CUDA graph has no per-operation trace (ONNX Runtime's profiler sees one launch); trace --optimize max for its eager schedule");
        }
        let shape: Vec<i64> = input.shape().iter().map(|&d| d as i64).collect();
        let data = input.as_slice().context("input is not contiguous")?;
        super::trace::traced_run(&mut self.session, shape, data)
    }

    /// On CUDA: the pass through an I/O binding, input and output resident
    /// on the GPU (the CUDA execution provider's own timing path).
    fn compute_ms(&mut self, input: &Array4<f32>) -> Result<Option<f64>> {
        if self.device != Device::Cuda {
            return Ok(None);
        }
        Ok(Some(self.run_bound(input)?.0))
    }
}

#[cfg(test)]
mod tests {
    use super::super::env;
    use super::*;

    /// ResNet-50 at 64 px in a one-thread session; `graphed`: its passes
    /// go through the binding.
    fn resnet(graphed: bool) -> OrtSession {
        let l = speedbench::zoo::load(
            &speedbench::zoo::Catalog::built_in().unwrap(),
            "resnet50",
            64,
            None,
            0,
        )
        .unwrap();
        let bytes = onnx::to_onnx(&l.graph, &l.weights).unwrap();
        let session = Session::builder(env().unwrap())
            .unwrap()
            .with_intra_threads(1)
            .unwrap()
            .commit_from_memory(&bytes)
            .unwrap();
        let shape = (l.graph.input(), l.graph.num_classes());
        OrtSession::new(session, Device::Cpu, shape, (1, 1), graphed)
    }

    /// The I/O-binding path that times CUDA compute, exercised on the CPU:
    /// the same logits as a plain run, the binding reused.
    #[test]
    fn bound_pass_gives_the_logits_of_a_plain_run() {
        let mut s = resnet(false);
        let x = speedbench::io::seeded_input(2, 64, 0);
        let want = s.run(&x).unwrap();
        for _ in 0..2 {
            let (ms, y) = s.run_bound(&x).unwrap();
            assert!(ms > 0.0);
            let (shape, got) = y.try_extract_tensor::<f32>().unwrap();
            assert_eq!(**shape, [2, 1000]);
            assert_eq!(got, want.as_slice().unwrap());
        }
        // on the CPU the framework reports no separate compute time
        assert_eq!(s.compute_ms(&x).unwrap(), None);
    }

    /// A graphed session's host passes go through the binding: each pass
    /// copies its own input in place (not the first one's again), and a
    /// new batch is refused rather than moving the captured addresses.
    #[test]
    fn graphed_passes_copy_each_input_into_the_binding() {
        let (mut plain, mut graphed) = (resnet(false), resnet(true));
        for seed in [0, 1, 2] {
            let x = speedbench::io::seeded_input(2, 64, seed);
            assert_eq!(
                graphed.run(&x).unwrap(),
                plain.run(&x).unwrap(),
                "seed {seed}"
            );
        }
        let e = graphed
            .run(&speedbench::io::seeded_input(3, 64, 0))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cuda-graph") && e.contains("[2, 3, 64, 64]"),
            "{e}"
        );
        // an eager session rebinds for a new batch
        let x = speedbench::io::seeded_input(3, 64, 0);
        assert_eq!(
            plain
                .run_bound(&x)
                .unwrap()
                .1
                .try_extract_tensor::<f32>()
                .unwrap()
                .0[0],
            3
        );
    }
}
