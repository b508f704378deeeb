//! TensorFlow through the `tensorflow` crate (0.21, tensorflow-sys 0.24),
//! linked through pkg-config against the C API inside the `tensorflow-cpu`
//! wheel (or the `tensorflow[and-cuda]` wheel for GPUs); see ci/setup.sh.
//!
//! The IR is built once per prepared cell into a frozen inference graph with
//! the crate's operation builder ([`lower`]: weights as constants, NHWC on the
//! CPU, NCHW on the GPU) and run in a session whose `ConfigProto`
//! ([`config`], our own prost message) sets the scheduling: inter-op threads
//! 1 (sequential) or N (parallel), intra-op threads from the options
//! ([`session`] runs it).
//! TensorFlow's start-up log is kept quiet unless `--verbose` by a hook of
//! the `speedbench` binary (`src/quiet.rs`).

pub mod config;
mod lower;
mod session;
mod trace;

use anyhow::{anyhow, bail, Context, Result};
use prost::Message;
use tensorflow::{Session, SessionOptions};

use lower::{Kernels, Layout};
use session::TfSession;
use speedbench::frameworks::{require_cuda, Backend, Device, Framework, PrepareOptions, Prepared};
use speedbench::graph::weights::Weights;
use speedbench::graph::Graph;

pub struct Tf;

impl Framework for Tf {
    fn name(&self) -> &'static str {
        "tf"
    }

    fn version(&self) -> Result<String> {
        tensorflow::version().context("TensorFlow reported a version that is not UTF-8")
    }

    fn prepare(
        &self,
        graph: &Graph,
        weights: &Weights,
        opts: &PrepareOptions,
    ) -> Result<Box<dyn Prepared>> {
        // `opts.verbose` needs nothing here: TensorFlow fixes its log level
        // as it loads, before `main`; see the binary's `quiet` module.
        let (layout, device) = match opts.device {
            Device::Cpu => (Layout::Nhwc, "/device:CPU:0"),
            Device::Cuda => {
                require_cuda("tf")?;
                speedbench::frameworks::cuda_stack::load_for("tf")
                    .context("--device cuda: TensorFlow's CUDA 12 libraries")?;
                (Layout::Nchw, "/device:GPU:0")
            }
        };
        if let Some(why) = speedbench::frameworks::precision::unsupported_level(
            "tf",
            opts.precision,
            opts.optimize,
        ) {
            bail!("--precision {}: {why}", opts.precision);
        }
        // Eigen's fused convolution has no grouped form: the lowering keeps
        // grouped ones out of its fusions on that path
        let kernels = cpu_kernels(opts)?;
        session_of(graph, weights, opts, (layout, device), kernels)
    }
}

fn make(_: &str) -> Box<dyn Framework> {
    Box::new(Tf)
}

/// TensorFlow, as `speedbench-tf` registers it.
pub static BACKEND: Backend = Backend {
    names: &["tf"],
    make,
};

/// The CPU kernels TensorFlow loaded with in this process, where they shape
/// the lowering; refuses a precision they cannot run.
fn cpu_kernels(opts: &PrepareOptions) -> Result<Kernels> {
    let mut kernels = Kernels::Fusing;
    if opts.device == Device::Cpu {
        let path = speedbench::frameworks::tf_cpu::loaded()?;
        let flags = speedbench::bench::fma::cpu_flags();
        if let Some(why) =
            speedbench::frameworks::precision::tf_cpu_unsupported(opts.precision, &path, &flags)
        {
            bail!(
                "--precision {}: not supported by tf on cpu at --optimize {}: {why}",
                opts.precision,
                opts.optimize
            );
        }
        if !path.onednn {
            kernels = Kernels::Eigen;
        }
    }
    Ok(kernels)
}

/// A session of `graph` lowered for `kernels`.
fn session_of(
    graph: &Graph,
    weights: &Weights,
    opts: &PrepareOptions,
    (layout, device): (Layout, &str),
    kernels: Kernels,
) -> Result<Box<dyn Prepared>> {
    let config = config::session_config(opts);
    let mut options = SessionOptions::new();
    options
        .set_config(&config.encode_to_vec())
        .map_err(|e| anyhow!("TensorFlow rejected the session configuration: {e}"))?;
    let lowered = lower::lower(graph, weights, layout, device, kernels)?;
    let session = Session::new(&options, &lowered.graph)
        .map_err(|e| anyhow!("TensorFlow could not create a session: {e}"))?;
    if opts.device == Device::Cuda {
        let devices = session
            .device_list()
            .map_err(|e| anyhow!("TensorFlow could not list its devices: {e}"))?;
        if !devices.iter().any(|d| d.device_type == "GPU") {
            bail!(
                "--device cuda: this TensorFlow library ({}) has no GPU device \
                     (a CPU-only build such as the tensorflow-cpu wheel, or CUDA failed to load); \
                     run ci/setup.sh --gpu and rebuild",
                tensorflow::version().unwrap_or_default()
            );
        }
    }
    Ok(Box::new(TfSession::new(
        session,
        lowered,
        graph.input(),
        config.threads(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;
    use speedbench::frameworks::{cuda_present, Mode, Optimize};
    use speedbench::graph::{Op, ParamRef, ResizeMode, Shape};

    fn opts(device: Device, mode: Mode) -> PrepareOptions {
        PrepareOptions::new(device, mode, Optimize::Default, 2, 4, false)
    }

    /// Every IR operation once: grouped convolution, max pooling with and
    /// without padding, both resizes, the channel gate, slice, concat, and a
    /// flatten over a 4x4 map (channel-major order matters there).
    fn every_op() -> (Graph, Weights) {
        let mut g = Graph::new("every_op", Shape::new(3, 9, 9));
        let conv = |out, kernel, stride, pad, groups, bias, name: &str| Op::Conv {
            out,
            kernel: [kernel; 2],
            stride: [stride; 2],
            pad: [pad; 2],
            groups,
            bias,
            params: ParamRef::whole(name),
        };
        let pool = |kernel, stride, pad| Op::MaxPool {
            kernel,
            stride,
            pad,
            ceil: false,
        };
        let resize = |h, mode| Op::Resize { h, w: h, mode };
        let mut add = |name: &str, op: Op, inputs: &[usize]| g.add(name, op, inputs).unwrap();
        let c1 = add("c1", conv(8, 3, 1, 1, 1, true, "c1"), &[0]);
        let bn = Op::BatchNorm {
            eps: 1e-5,
            params: ParamRef::whole("bn"),
        };
        let b1 = add("bn", bn, &[c1]);
        let r1 = add("relu", Op::Relu, &[b1]);
        let grouped = add("grouped", conv(8, 3, 1, 1, 4, false, "grouped"), &[r1]);
        let p1 = add("pool", pool(3, 2, 1), &[grouped]); // 8x5x5
        let up_n = add("up_nearest", resize(10, ResizeMode::Nearest), &[p1]);
        let p2 = add("pool2", pool(2, 2, 0), &[up_n]); // 8x5x5
        let small = add("cat_small", Op::Concat, &[p1, p2]); // 16x5x5
        let up_b = add("up_bilinear", resize(9, ResizeMode::Bilinear), &[small]);
        let up_b8 = add("slice_up", Op::Slice { start: 4, end: 12 }, &[up_b]);
        let sum = add("sum", Op::Add, &[up_b8, r1]);
        let gap = add("gap", Op::GlobalAvgPool, &[sum]);
        let gate = add("gate", Op::Sigmoid, &[gap]);
        let gated = add("gated", Op::Mul, &[sum, gate]);
        let part = add("part", Op::Slice { start: 2, end: 6 }, &[gated]);
        let cat = add("cat", Op::Concat, &[part, sum, up_b]); // 28x9x9
        let c2 = add("c2", conv(4, 3, 2, 0, 1, false, "c2"), &[cat]); // 4x4x4
        let flat = add("flatten", Op::Flatten, &[c2]);
        let fc = Op::Linear {
            out: 5,
            params: ParamRef::whole("fc"),
        };
        add("fc", fc, &[flat]);
        let w = Weights::seeded(&g, 7);
        (g, w)
    }

    fn input(n: usize) -> Array4<f32> {
        speedbench::io::seeded_input(n, 9, 3)
    }

    #[test]
    fn runs_every_op_on_the_cpu() {
        let (g, w) = every_op();
        let mut p = Tf
            .prepare(&g, &w, &opts(Device::Cpu, Mode::Sequential))
            .unwrap();
        let y = p.run(&input(2)).unwrap();
        assert_eq!(y.shape(), [2, 5]);
        assert!(y.iter().all(|v| v.is_finite()));
        let err = p.run(&Array4::zeros((1, 3, 8, 8))).unwrap_err();
        assert!(err.to_string().contains("built for [N, 3, 9, 9]"), "{err}");
    }

    #[test]
    fn every_op_matches_onnx_runtime() {
        let (g, w) = every_op();
        let x = input(3);
        let want = speedbench_ort::Ort { own: false }
            .prepare(&g, &w, &opts(Device::Cpu, Mode::Sequential))
            .unwrap()
            .run(&x)
            .unwrap();
        for mode in [Mode::Sequential, Mode::Parallel] {
            let got = Tf
                .prepare(&g, &w, &opts(Device::Cpu, mode))
                .unwrap()
                .run(&x)
                .unwrap();
            let (_, rel, agree) = speedbench::io::compare_logits(&got, &want).unwrap();
            assert!(rel < 1e-5, "{mode}: max|diff|/max|ref| = {rel}");
            assert_eq!(agree, 3);
        }
    }

    /// A grouped convolution with a bias, then a batch norm: lowered for
    /// Eigen (bias and batch norm as AddV2 and Mul, out of grappler's
    /// fusions) it computes what the fusing lowering does, on whichever
    /// kernels this process loaded.
    #[test]
    fn the_eigen_lowering_of_a_grouped_convolution_is_the_same_function() {
        let mut g = Graph::new("grouped", Shape::new(3, 6, 6));
        let widen = Op::Conv {
            out: 8,
            kernel: [1; 2],
            stride: [1; 2],
            pad: [0; 2],
            groups: 1,
            bias: false,
            params: ParamRef::whole("w"),
        };
        let wide = g.add("w", widen, &[0]).unwrap();
        let conv = Op::Conv {
            out: 8,
            kernel: [3; 2],
            stride: [1; 2],
            pad: [1; 2],
            groups: 4,
            bias: true,
            params: ParamRef::whole("g"),
        };
        let c = g.add("g", conv, &[wide]).unwrap();
        let bn = Op::BatchNorm {
            eps: 1e-5,
            params: ParamRef::whole("bn"),
        };
        let b = g.add("bn", bn, &[c]).unwrap();
        g.add("relu", Op::Relu, &[b]).unwrap();
        let w = Weights::seeded(&g, 3);
        let x = speedbench::io::seeded_input(2, 6, 8);
        assert_eq!(x.shape(), [2, 3, 6, 6]);
        let o = opts(Device::Cpu, Mode::Sequential);
        let cpu = (Layout::Nhwc, "/device:CPU:0");
        let run = |k| session_of(&g, &w, &o, cpu, k).unwrap().run(&x).unwrap();
        let (fused, eigen) = (run(Kernels::Fusing), run(Kernels::Eigen));
        assert_eq!(fused.shape(), [2, 8 * 6 * 6]);
        let (_, rel, _) = speedbench::io::compare_logits(&eigen, &fused).unwrap();
        assert!(rel < 1e-6, "max|diff|/max|ref| = {rel}");
        // the batch norm did something: not the identity
        assert!(fused.iter().any(|v| *v == 0.0) && fused.iter().any(|v| *v > 0.0));
    }

    #[test]
    fn records_the_threads_of_its_configuration() {
        let (g, w) = every_op();
        for (mode, want) in [(Mode::Sequential, (2, 1)), (Mode::Parallel, (2, 4))] {
            let o = opts(Device::Cpu, mode);
            let p = Tf.prepare(&g, &w, &o).unwrap();
            assert_eq!(p.threads_used(), Some(want));
            assert_eq!(want, config::session_config(&o).threads());
        }
    }

    #[test]
    fn cuda_without_a_gpu_is_an_error() {
        if cuda_present() {
            return;
        }
        let (g, w) = every_op();
        let err = Tf
            .prepare(&g, &w, &opts(Device::Cuda, Mode::Sequential))
            .err()
            .expect("--device cuda must fail without a GPU");
        assert!(err.to_string().contains("no NVIDIA GPU"), "{err}");
    }
}
