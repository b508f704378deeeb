//! A graph loaded into an ONNX Runtime session: host-to-host passes, and on
//! CUDA the device-resident pass of `compute_ms` through an I/O binding.

use anyhow::{Context, Result};
use ndarray::{Array2, Array4};
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, Session};
use ort::value::{DynValue, Tensor, TensorRef};

use crate::frameworks::{check_input, check_output, Device, Prepared};
use crate::graph::{onnx, Shape};
use crate::record::Timeline;

pub(super) struct OrtSession {
    session: Session,
    device: Device,
    /// Per-sample input shape the graph was built for.
    shape: Shape,
    /// (intra, inter) threads the session was built with.
    threads: (usize, usize),
    /// The I/O binding of `compute_ms`: the input already on the device and
    /// the output left there; built on first use.
    bound: Option<(IoBinding, DynValue)>,
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
        shape: Shape,
        threads: (usize, usize),
    ) -> OrtSession {
        OrtSession {
            session,
            device,
            shape,
            threads,
            bound: None,
        }
    }

    /// One pass through an I/O binding on the session's device: the input
    /// copied there once, the output left there; returns the time from the
    /// call to the device being synchronised, in ms, and the output value.
    fn run_bound(&mut self, input: &Array4<f32>) -> Result<(f64, DynValue)> {
        let device = self.device;
        if self.bound.is_none() {
            let shape: Vec<i64> = input.shape().iter().map(|&d| d as i64).collect();
            let data = input.as_slice().context("input is not contiguous")?;
            let host = Tensor::from_array((shape, data.to_vec()))?;
            let resident = host.to(allocation(device), 0)?.into_dyn();
            let mut binding = self.session.create_binding()?;
            binding.bind_input(onnx::INPUT, &resident)?;
            let out = MemoryInfo::new(
                allocation(device),
                0,
                AllocatorType::Device,
                MemoryType::Default,
            )?;
            binding.bind_output_to_device(onnx::OUTPUT, &out)?;
            self.bound = Some((binding, resident));
        }
        let (binding, _) = self.bound.as_ref().context("no I/O binding")?;
        binding.synchronize_inputs()?;
        let start = std::time::Instant::now();
        let mut outputs = self.session.run_binding(binding)?;
        binding.synchronize_outputs()?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let y = outputs
            .remove(onnx::OUTPUT)
            .context("ONNX Runtime bound no logits")?;
        Ok((ms, y))
    }
}

impl Prepared for OrtSession {
    fn run(&mut self, input: &Array4<f32>) -> Result<Array2<f32>> {
        check_input(self.shape, input)?;
        let shape: Vec<i64> = input.shape().iter().map(|&d| d as i64).collect();
        let data = input.as_slice().context("input is not contiguous")?;
        let tensor = TensorRef::from_array_view((shape, data))?;
        let outputs = self.session.run(ort::inputs![onnx::INPUT => tensor])?;
        let (shape, logits) = outputs[onnx::OUTPUT].try_extract_tensor::<f32>()?;
        let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        let logits_shape = check_output("ONNX Runtime", &dims)?;
        Ok(Array2::from_shape_vec(logits_shape, logits.to_vec())?)
    }

    fn threads_used(&self) -> Option<(usize, usize)> {
        Some(self.threads)
    }

    fn trace(&mut self, input: &Array4<f32>) -> Result<Timeline> {
        check_input(self.shape, input)?;
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

    /// The I/O-binding path that times CUDA compute, exercised on the CPU:
    /// the same logits as a plain run, the binding reused.
    #[test]
    fn bound_pass_gives_the_logits_of_a_plain_run() {
        let l = crate::zoo::load(
            &crate::zoo::Catalog::built_in().unwrap(),
            "resnet50",
            64,
            None,
            0,
        )
        .unwrap();
        let env = env().unwrap();
        let bytes = onnx::to_onnx(&l.graph, &l.weights).unwrap();
        let session = Session::builder(env)
            .unwrap()
            .with_intra_threads(1)
            .unwrap()
            .commit_from_memory(&bytes)
            .unwrap();
        let mut s = OrtSession::new(session, Device::Cpu, l.graph.input(), (1, 1));
        let x = crate::io::seeded_input(2, 64, 0);
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
}
