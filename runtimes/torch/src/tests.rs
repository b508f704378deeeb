//! End-to-end tests of the libtorch backend, and the graph the unit tests of
//! its files share.

use ndarray::{Array2, Array4};

use super::Torch;
use speedbench::frameworks::{cuda_present, Device, Framework, Mode, Optimize, PrepareOptions};
use speedbench::graph::weights::Weights;
use speedbench::graph::{Graph, Op, ParamRef, ResizeMode, Shape};

fn opts(device: Device, mode: Mode, intra_threads: usize) -> PrepareOptions {
    PrepareOptions::new(device, mode, Optimize::Default, intra_threads, 2, false)
}

/// input -> conv -> { conv+bn, maxpool+conv+upsample, slice } -> concat
/// -> relu -> add(shortcut) -> gap * gate -> flatten -> linear
pub(super) fn diamond() -> Graph {
    let conv = |out, kernel, pad, prefix: &str| Op::Conv {
        out,
        kernel: [kernel; 2],
        stride: [1; 2],
        pad: [pad; 2],
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
        ceil: false,
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
fn schedules_agree_bit_for_bit_on_a_diamond() {
    let g = diamond();
    let x = speedbench::io::seeded_input(2, 12, 3);
    let seq = run(&g, Mode::Sequential, 1, &x);
    let par = run(&g, Mode::Parallel, 1, &x);
    assert_eq!(seq.shape(), &[2, 10]);
    assert!(seq.iter().all(|v| v.is_finite()));
    assert_eq!(seq, par);
}

#[test]
fn schedules_agree_bit_for_bit_on_scalenet50() {
    let loaded = speedbench::zoo::load(
        &speedbench::zoo::Catalog::built_in().unwrap(),
        "scalenet50",
        128,
        None,
        0,
    )
    .unwrap();
    let x = speedbench::io::seeded_input(1, 128, 0);
    let seq = run(&loaded.graph, Mode::Sequential, 1, &x);
    let par = run(&loaded.graph, Mode::Parallel, 1, &x);
    assert_eq!(seq.shape(), &[1, 1000]);
    assert_eq!(seq, par);
    // With two intra-op threads in the sequential schedule: equal up to
    // rounding.
    let seq2 = run(&loaded.graph, Mode::Sequential, 2, &x);
    let (_, rel, agree) = speedbench::io::compare_logits(&seq2, &par).unwrap();
    assert!(rel < 1e-5 && agree == 1, "{rel}");
}

#[test]
fn cuda_without_a_gpu_is_one_clear_error() {
    if cuda_present() {
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
    if !cuda_present() {
        return;
    }
    let g = diamond();
    let w = Weights::seeded(&g, 1);
    let x = speedbench::io::seeded_input(2, 12, 3);
    let cpu = run(&g, Mode::Sequential, 1, &x);
    for mode in [Mode::Sequential, Mode::Parallel] {
        let mut p = Torch.prepare(&g, &w, &opts(Device::Cuda, mode, 1)).unwrap();
        let y = p.run(&x).unwrap();
        assert_eq!(y, p.run(&x).unwrap());
        let (_, rel, _) = speedbench::io::compare_logits(&y, &cpu).unwrap();
        assert!(rel < 1e-5, "{mode}: {rel}");
    }
}

#[test]
fn reports_the_loaded_libtorch_version() {
    let v = Torch.version().unwrap();
    assert!(v.chars().next().is_some_and(|c| c.is_ascii_digit()), "{v}");
}

#[test]
fn an_input_of_another_shape_is_refused() {
    let g = diamond();
    let w = Weights::seeded(&g, 1);
    let mut p = Torch
        .prepare(&g, &w, &opts(Device::Cpu, Mode::Sequential, 1))
        .unwrap();
    let err = p.run(&Array4::zeros((1, 3, 8, 8))).unwrap_err();
    assert!(
        err.to_string().contains("built for [N, 3, 12, 12]"),
        "{err}"
    );
}
