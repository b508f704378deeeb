//! ONNX Runtime through the `ort` crate, loaded at run time from the
//! onnxruntime wheel (`load-dynamic`). The graph is lowered to ONNX by
//! [`crate::graph::onnx`] and the session is built from those bytes.

use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use ndarray::{Array2, Array4};
use ort::environment::Environment;
use ort::ep::{ExecutionProvider, CUDA};
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{IoBinding, Session};
use ort::value::{DynValue, Tensor, TensorRef};

use super::{require_cuda, Device, Framework, Mode, Optimize, PrepareOptions, Prepared};
use crate::graph::{onnx, Graph};
use crate::weights::Weights;

pub struct Ort;

/// Path of `libonnxruntime.so`: `ORT_DYLIB_PATH` at run time, else the one
/// `ci/setup.sh` found at build time.
fn library() -> Result<String> {
    if let Ok(p) = std::env::var("ORT_DYLIB_PATH") {
        return Ok(p);
    }
    option_env!("SPEEDBENCH_ORT_LIB")
        .map(str::to_string)
        .ok_or_else(|| {
            anyhow!("no ONNX Runtime library: run ci/setup.sh and rebuild, or set ORT_DYLIB_PATH")
        })
}

/// The process's one ONNX Runtime environment.
fn env() -> Result<&'static Environment> {
    static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let lib = library().map_err(|e| e.to_string())?;
        if !std::path::Path::new(&lib).exists() {
            return Err(format!(
                "ONNX Runtime library {lib} does not exist; run ci/setup.sh"
            ));
        }
        let builder = ort::init_from(&lib).map_err(|e| format!("loading {lib}: {e}"))?;
        builder
            .with_name("speedbench")
            .build()
            .map_err(|e| format!("ONNX Runtime environment: {e}"))
    })
    .as_ref()
    .map_err(|e| anyhow!("{e}"))
}

impl Framework for Ort {
    fn name(&self) -> &'static str {
        "ort"
    }

    fn version(&self) -> Result<String> {
        env()?;
        // "ORT Build Info: git-branch=rel-1.31.1, ..." or the library's
        // file name, libonnxruntime.so.1.31.1.
        let from_info = ort::info()
            .split([',', ' '])
            .find_map(|w| w.strip_prefix("git-branch=rel-"))
            .map(str::to_string);
        let from_file = library()?.rsplit_once(".so.").map(|(_, v)| v.to_string());
        Ok(from_info.or(from_file).unwrap_or_else(|| "unknown".into()))
    }

    fn prepare(
        &self,
        graph: &Graph,
        weights: &Weights,
        opts: &PrepareOptions,
    ) -> Result<Box<dyn Prepared>> {
        let env = env()?;
        let bytes = onnx::to_onnx(graph, weights)?;
        let level = match opts.optimize {
            Optimize::None => GraphOptimizationLevel::Disable,
            Optimize::Default | Optimize::Max => GraphOptimizationLevel::All,
        };
        let mut b = Session::builder(env)?
            .with_optimization_level(level)
            .map_err(|e| anyhow!("{e}"))?
            .with_intra_threads(opts.intra_threads)
            .map_err(|e| anyhow!("{e}"))?
            // Both modes live in one worker and run interleaved: a session
            // whose idle threads spin would steal the cores of the other.
            .with_intra_op_spinning(false)
            .map_err(|e| anyhow!("{e}"))?
            .with_inter_op_spinning(false)
            .map_err(|e| anyhow!("{e}"))?;
        b = b
            .with_parallel_execution(opts.mode == Mode::Parallel)
            .map_err(|e| anyhow!("{e}"))?;
        if opts.mode == Mode::Parallel {
            b = b
                .with_inter_threads(opts.inter_threads)
                .map_err(|e| anyhow!("{e}"))?;
        }
        if opts.device == Device::Cuda {
            require_cuda("ort")?;
            if !CUDA::is_available().unwrap_or(false) {
                bail!("--device cuda: this ONNX Runtime has no CUDA execution provider; run ci/setup.sh --gpu (onnxruntime-gpu)");
            }
            b = b
                .with_execution_providers([CUDA::default().build().error_on_failure()])
                .map_err(|e| {
                    anyhow!("--device cuda: the CUDA execution provider failed to start: {e}")
                })?;
        }
        let session = b
            .commit_from_memory(&bytes)
            .context("ONNX Runtime could not load the graph")?;
        Ok(Box::new(OrtSession {
            session,
            device: opts.device,
            bound: None,
        }))
    }
}

struct OrtSession {
    session: Session,
    device: Device,
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
        let shape: Vec<i64> = input.shape().iter().map(|&d| d as i64).collect();
        let data = input.as_slice().context("input is not contiguous")?;
        let tensor = TensorRef::from_array_view((shape, data))?;
        let outputs = self.session.run(ort::inputs![onnx::INPUT => tensor])?;
        let (shape, logits) = outputs[onnx::OUTPUT].try_extract_tensor::<f32>()?;
        let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        if dims.len() != 2 {
            bail!("ONNX Runtime returned logits of shape {dims:?}, expected [N, classes]");
        }
        Ok(Array2::from_shape_vec((dims[0], dims[1]), logits.to_vec())?)
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
        let mut s = OrtSession {
            session,
            device: Device::Cpu,
            bound: None,
        };
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
