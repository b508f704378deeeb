//! ONNX Runtime through the `ort` crate, loaded at run time from the
//! onnxruntime wheel (`load-dynamic`). The graph is lowered to ONNX by
//! [`speedbench::graph::onnx`] and the session is built from those bytes with the
//! settings of [`config`] ([`session`] runs it).

pub mod config;
mod optimized;
mod original;
mod segments;
mod session;
mod trace;

use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use ort::environment::Environment;
use ort::ep::{ExecutionProvider, CUDA};
use ort::session::Session;

use segments::Segmented;
use session::OrtSession;
use speedbench::frameworks::{
    require_cuda, Backend, Device, Framework, Mode, PrepareOptions, Prepared,
};
use speedbench::graph::weights::Weights;
use speedbench::graph::{onnx, Graph};

/// ONNX Runtime; `own` (framework `ort-own`) keeps ORT's own parallel
/// executor (`ORT_PARALLEL`) for the parallel mode, which `ort` replaces by
/// speedbench's schedule over ORT segments ([`segments`]).
pub struct Ort {
    pub own: bool,
}

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
    fn run_onnx_file(
        &self,
        bytes: &[u8],
        input: &ndarray::Array4<f32>,
        batch: Option<usize>,
    ) -> Result<ndarray::Array2<f32>> {
        original::run(bytes, input, batch)
    }

    fn name(&self) -> &'static str {
        if self.own {
            "ort-own"
        } else {
            "ort"
        }
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
        let config = config::session_config(opts);
        if opts.device == Device::Cuda {
            require_cuda("ort")?;
            speedbench::frameworks::cuda_stack::load_for(self.name())
                .context("--device cuda: ONNX Runtime's CUDA 13 libraries")?;
            if !CUDA::is_available().unwrap_or(false) {
                bail!("--device cuda: this ONNX Runtime has no CUDA execution provider; run ci/setup.sh --gpu (onnxruntime-gpu)");
            }
        }
        // speedbench's schedule over ORT segments: the parallel mode of
        // `ort` on the CPU (`ort-own` keeps ORT's own parallel executor)
        if opts.mode == Mode::Parallel && !self.own && opts.device == Device::Cpu {
            return Ok(Box::new(Segmented::new(graph, weights, opts)));
        }
        let bytes = onnx::to_onnx(graph, weights)?;
        let session = session(&bytes, &config, opts.device)?;
        Ok(Box::new(OrtSession::new(
            session,
            opts.device,
            (graph.input(), graph.num_classes()),
            config.threads(),
            config.cuda_graph,
        )))
    }

    fn probe_cuda_provider(&self) -> Result<Option<String>> {
        probe_cuda_provider().map(Some)
    }
}

fn make(name: &str) -> Box<dyn Framework> {
    Box::new(Ort {
        own: name == "ort-own",
    })
}

/// ONNX Runtime, as `speedbench-ort` registers it: `ort` (speedbench's
/// schedule over its sessions) and `ort-own` (its own parallel executor).
pub static BACKEND: Backend = Backend {
    names: &["ort", "ort-own"],
    make,
};

/// After [`speedbench::frameworks::cuda_stack::load_for`]: asks ONNX Runtime for its CUDA
/// execution provider, which makes it load the provider library. `Ok` with
/// what CUDA itself answered (on a machine without a GPU, that there is
/// none) when the library loaded; an error when it could not be loaded (a
/// library not found, a symbol missing) or this ORT has no CUDA provider.
fn probe_cuda_provider() -> Result<String> {
    let env = env()?;
    if !CUDA::is_available().unwrap_or(false) {
        bail!(
            "this ONNX Runtime has no CUDA execution provider (onnxruntime-gpu is not installed)"
        );
    }
    let result = Session::builder(env)
        .map_err(|e| anyhow!("{e}"))?
        .with_execution_providers([CUDA::default().build().error_on_failure()]);
    match result {
        Ok(_) => Ok("the CUDA execution provider started".into()),
        Err(e) => {
            let msg = e.to_string();
            let unloadable = [
                "cannot open shared object",
                "undefined symbol",
                "Failed to load library",
            ];
            if unloadable.iter().any(|k| msg.contains(k)) {
                bail!("the CUDA provider library did not load: {msg}");
            }
            Ok(format!(
                "the CUDA provider library loaded; CUDA answered: {msg}"
            ))
        }
    }
}

/// A session of `bytes` with `config`'s settings on `device`.
/// A logits value on the host as [batch, classes], its shape checked.
fn logits(y: ort::value::DynValue) -> Result<ndarray::Array2<f32>> {
    let (shape, logits) = y.try_extract_tensor::<f32>()?;
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let logits_shape = speedbench::frameworks::check_output("ONNX Runtime", &dims)?;
    Ok(ndarray::Array2::from_shape_vec(
        logits_shape,
        logits.to_vec(),
    )?)
}

pub(crate) fn session(
    bytes: &[u8],
    config: &config::SessionConfig,
    device: Device,
) -> Result<Session> {
    let mut b = Session::builder(env()?)?
        .with_optimization_level(config.optimization)
        .map_err(|e| anyhow!("{e}"))?
        .with_intra_threads(config.intra_threads)
        .map_err(|e| anyhow!("{e}"))?
        // Idle threads do not spin: speedbench's segments run several
        // sessions on the same cores. ONNX Runtime's own default (spinning)
        // was measured for `max` on one session and left out: ResNet-50
        // default/max 1.017 at batch 1, 0.981 at batch 16 (docs/cpu-paths.md).
        .with_intra_op_spinning(false)
        .map_err(|e| anyhow!("{e}"))?
        .with_inter_op_spinning(false)
        .map_err(|e| anyhow!("{e}"))?;
    b = b
        .with_parallel_execution(config.parallel_execution)
        .map_err(|e| anyhow!("{e}"))?;
    if let Some(inter) = config.inter_threads {
        b = b.with_inter_threads(inter).map_err(|e| anyhow!("{e}"))?;
    }
    if device == Device::Cuda {
        b = b
            .with_execution_providers([CUDA::default()
                .with_cuda_graph(config.cuda_graph)
                .with_tf32(config.tf32)
                .build()
                .error_on_failure()])
            .map_err(|e| {
                anyhow!("--device cuda: the CUDA execution provider failed to start: {e}")
            })?;
    }
    b.commit_from_memory(bytes)
        .context("ONNX Runtime could not load the graph")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;
    use speedbench::frameworks::{Mode, Optimize};
    use speedbench::graph::{Op, ParamRef, Shape};

    /// conv -> global average pool -> flatten -> linear, on 3x8x8.
    fn tiny() -> (Graph, Weights) {
        let mut g = Graph::new("tiny", Shape::new(3, 8, 8));
        let conv = Op::Conv {
            out: 4,
            kernel: [3; 2],
            stride: [1; 2],
            pad: [1; 2],
            groups: 1,
            bias: true,
            params: ParamRef::whole("c"),
        };
        let c = g.add("c", conv, &[0]).unwrap();
        let gap = g.add("gap", Op::GlobalAvgPool, &[c]).unwrap();
        let flat = g.add("flat", Op::Flatten, &[gap]).unwrap();
        let fc = Op::Linear {
            out: 5,
            params: ParamRef::whole("fc"),
        };
        g.add("fc", fc, &[flat]).unwrap();
        let w = Weights::seeded(&g, 1);
        (g, w)
    }

    #[test]
    fn records_the_threads_the_session_was_built_with() {
        let (g, w) = tiny();
        for (mode, want) in [(Mode::Sequential, (2, 1)), (Mode::Parallel, (2, 3))] {
            let opts = PrepareOptions::new(Device::Cpu, mode, Optimize::Default, 2, 3, false);
            let p = Ort { own: true }.prepare(&g, &w, &opts).unwrap();
            assert_eq!(p.threads_used(), Some(want));
            assert_eq!(want, config::session_config(&opts).threads());
        }
    }

    #[test]
    fn an_input_of_another_shape_is_refused() {
        let (g, w) = tiny();
        let opts = PrepareOptions::new(
            Device::Cpu,
            Mode::Sequential,
            Optimize::Default,
            1,
            1,
            false,
        );
        let mut p = Ort { own: true }.prepare(&g, &w, &opts).unwrap();
        assert_eq!(p.run(&Array4::zeros((2, 3, 8, 8))).unwrap().shape(), [2, 5]);
        let err = p.run(&Array4::zeros((1, 3, 9, 9))).unwrap_err();
        assert!(err.to_string().contains("built for [N, 3, 8, 8]"), "{err}");
    }
}
