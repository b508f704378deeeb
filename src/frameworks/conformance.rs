//! What every runtime must do alike, as checks each runtime's crate runs on
//! its own framework (`tests/conformance.rs` there): the padding of
//! stride-2 windows, the ScaleNet authors' resizing, and a traced pass of a
//! two-branch graph that maps back to the IR. The graphs are small; the
//! expected values come from the formulas here, not from another runtime.

use ndarray::Array4;

use super::{prepare, Device, Framework, Mode, Optimize, PrepareOptions};
use crate::graph::weights::Weights;
use crate::graph::{Graph, Op, ParamRef, Shape};

/// input -> stem -> (left, right) -> add: two independent branches.
pub fn diamond() -> Graph {
    diamond_of(4, 8)
}

/// The diamond with `channels`-wide 3x3 convolutions on `size`² maps.
pub fn diamond_of(channels: usize, size: usize) -> Graph {
    let conv = |p: &str| Op::Conv {
        out: channels,
        kernel: [3; 2],
        stride: [1; 2],
        pad: [1; 2],
        groups: 1,
        bias: false,
        params: ParamRef::whole(p),
    };
    let mut g = Graph::new("diamond", Shape::new(3, size, size));
    let stem = g.add("stem", conv("stem"), &[0]).unwrap();
    let l = g.add("left", conv("left"), &[stem]).unwrap();
    let r = g.add("right", conv("right"), &[stem]).unwrap();
    let add = g.add("add", Op::Add, &[l, r]).unwrap();
    let gap = g.add("gap", Op::GlobalAvgPool, &[add]).unwrap();
    let flat = g.add("flat", Op::Flatten, &[gap]).unwrap();
    let fc = Op::Linear {
        out: 5,
        params: ParamRef::whole("fc"),
    };
    g.add("fc", fc, &[flat]).unwrap();
    g
}

/// `g` run by `fw` in sequential mode at every optimisation level: (what
/// ran, its flattened output).
fn everywhere(
    fw: &dyn Framework,
    g: &Graph,
    w: &Weights,
    x: &Array4<f32>,
) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    let name = fw.name();
    for level in [Optimize::None, Optimize::Default, Optimize::Max] {
        let opts = PrepareOptions::new(Device::Cpu, Mode::Sequential, level, 1, 1, false);
        let mut p = prepare(fw, g, w, &opts).unwrap();
        let y = p.run(x).unwrap();
        out.push((format!("{name} at {level}"), y.iter().copied().collect()));
    }
    out
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() < 1e-4,
            "{what}: [{i}] {g} against {w}\n{got:?}"
        );
    }
}

/// 1, 2, 3, ... over a `[1, 1, side, side]` map.
fn ascending(side: usize) -> Array4<f32> {
    Array4::from_shape_fn((1, 1, side, side), |(_, _, i, j)| (i * side + j + 1) as f32)
}

/// A stride-2 window over an even map pads one row and column on each
/// side, as PyTorch and the authors' models do, never TensorFlow's
/// `SAME` (none before, one after): a 3x3/2 convolution of ones and
/// a 3x3/2 max-pool, both with padding 1, over 1..16 on 4x4.
pub fn pads_stride_two_windows_on_both_sides(fw: &dyn Framework) {
    let mut g = Graph::new("stride2", Shape::new(1, 4, 4));
    let conv = Op::Conv {
        out: 1,
        kernel: [3; 2],
        stride: [2; 2],
        pad: [1; 2],
        groups: 1,
        bias: false,
        params: ParamRef::whole("c"),
    };
    let c = g.add("c", conv, &[0]).unwrap();
    let pool = Op::MaxPool {
        kernel: 3,
        stride: 2,
        pad: 1,
        ceil: false,
    };
    let m = g.add("m", pool, &[0]).unwrap();
    let both = g.add("both", Op::Concat, &[c, m]).unwrap();
    g.add("flat", Op::Flatten, &[both]).unwrap();
    let mut w = Weights::seeded(&g, 0);
    w.tensors.get_mut("c.weight").unwrap().data.fill(1.0);
    // output (r, c) covers rows and columns 2r-1..=2r+1 and 2c-1..=2c+1
    // of the map: their sums, then their maxima
    let want = [14.0, 30.0, 57.0, 99.0, 6.0, 8.0, 14.0, 16.0];
    for (what, got) in everywhere(fw, &g, &w, &ascending(4)) {
        assert_close(&got, &want, &what);
    }
}

/// ScaleNet's upsampling: nearest (an integer factor: the rule picks
/// it only where the map divides the size) takes source
/// `floor(dst * in / out)`; bilinear has half-pixel centres
/// (align_corners false), sources below 0 clamped to the edge. 3x3 up
/// to 6x6 nearest and to 7x7 bilinear, against the formulas here.
pub fn resizes_as_the_scalenet_authors(fw: &dyn Framework) {
    use crate::graph::ResizeMode;
    let from = 3usize;
    let x = ascending(from);
    let at = |i: usize, j: usize| x[[0, 0, i, j]];
    let scale = |to: usize| from as f64 / to as f64;
    let linear = |d: usize, to: usize| {
        let s = ((d as f64 + 0.5) * scale(to) - 0.5).max(0.0);
        let lo = (s.floor() as usize).min(from - 1);
        (lo, (lo + 1).min(from - 1), (s - lo as f64) as f32)
    };
    let (mut nearest, mut bilinear) = (Vec::new(), Vec::new());
    for i in 0..6 {
        for j in 0..6 {
            let src = |d: usize| (d as f64 * scale(6)) as usize;
            nearest.push(at(src(i), src(j)));
        }
    }
    for i in 0..7 {
        for j in 0..7 {
            let ((i0, i1, a), (j0, j1, b)) = (linear(i, 7), linear(j, 7));
            let top = at(i0, j0) * (1.0 - b) + at(i0, j1) * b;
            let bottom = at(i1, j0) * (1.0 - b) + at(i1, j1) * b;
            bilinear.push(top * (1.0 - a) + bottom * a);
        }
    }
    assert_eq!(&nearest[..6], [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
    assert_eq!(bilinear[0], 1.0);
    for (mode, to, want) in [
        (ResizeMode::Nearest, 6, nearest),
        (ResizeMode::Bilinear, 7, bilinear),
    ] {
        let mut g = Graph::new("resize", Shape::new(1, from, from));
        let up = g
            .add("up", Op::Resize { h: to, w: to, mode }, &[0])
            .unwrap();
        g.add("flat", Op::Flatten, &[up]).unwrap();
        let w = Weights::seeded(&g, 0);
        for (what, got) in everywhere(fw, &g, &w, &x) {
            assert_close(&got, &want, &format!("{mode:?} in {what}"));
        }
    }
}

/// `fw` traces the diamond in both modes, and its events map back to the
/// IR: each convolution and the add, by name or through the framework's
/// fusion.
pub fn traces_the_diamond_and_maps_it(fw: &dyn Framework) {
    use crate::trace::finish;
    let g = diamond_of(8, 16);
    let w = Weights::seeded(&g, 1);
    let x = crate::io::seeded_input(1, 16, 0);
    let name = fw.name();
    for mode in [Mode::Sequential, Mode::Parallel] {
        for level in [Optimize::None, Optimize::Default] {
            let opts = PrepareOptions::new(Device::Cpu, mode, level, 1, 2, false);
            let mut p = prepare(fw, &g, &w, &opts).unwrap();
            p.run(&x).unwrap();
            let t = finish(p.trace(&x).unwrap(), &g, mode == Mode::Sequential);
            let what = format!("{name} {mode} {level}");
            let mapped: std::collections::BTreeSet<&str> = t
                .timeline
                .events
                .iter()
                .filter_map(|e| e.node.as_deref())
                .collect();
            // a node the framework fused into its successor has no
            // event of its own; the last one of each branch always has
            assert!(
                mapped.contains("add") || mapped.contains("left") && mapped.contains("right"),
                "{what}: {mapped:?}"
            );
            assert!(
                mapped.iter().all(|n| g.nodes.iter().any(|m| m.name == *n)),
                "{what}"
            );
            if level == Optimize::None {
                for n in ["stem", "left", "right", "add"] {
                    assert!(mapped.contains(n), "{what}: {n} unmapped in {mapped:?}");
                }
            }
            assert_eq!(
                t.concurrency.ops,
                t.timeline
                    .events
                    .iter()
                    .filter(|e| e.node.is_some())
                    .count()
            );
            assert!(
                t.timeline.events.iter().any(|e| e.critical),
                "{what}: no critical path"
            );
            // every IR operation ran on the CPU, and says so
            assert_eq!(t.on_cpu(), t.concurrency.ops, "{what}: {:?}", t.placement);
            assert!(
                t.placement.keys().all(|d| d.starts_with("CPU")),
                "{what}: {:?}",
                t.placement
            );
            assert_eq!(t.ideal.is_some(), mode == Mode::Sequential, "{what}");
            // an operation's time lies within the pass
            let wall = t.timeline.wall_us();
            assert!(
                t.timeline
                    .events
                    .iter()
                    .all(|e| e.start_us >= 0.0 && e.end_us() <= wall + 1e-6),
                "{what}"
            );
        }
    }
}

/// The smoke cell's model, as the benches time it.
pub const SMOKE_MODEL: &str = "resnet50";
/// The smoke cell's image side, px.
pub const SMOKE_SIZE: usize = 128;

/// The smoke cell every runtime's `cargo bench` times: resnet50 with seeded
/// weights, batch 1 at 128 px, sequential, `--optimize default`.
pub struct SmokeCell {
    pub loaded: crate::zoo::Loaded,
    pub input: Array4<f32>,
    pub options: PrepareOptions,
}

pub fn smoke_cell() -> anyhow::Result<SmokeCell> {
    let models = crate::zoo::Catalog::built_in()?;
    Ok(SmokeCell {
        loaded: crate::zoo::load(&models, SMOKE_MODEL, SMOKE_SIZE, None, 0)?,
        input: crate::io::seeded_input(1, SMOKE_SIZE, 0),
        options: PrepareOptions::new(
            Device::Cpu,
            Mode::Sequential,
            Optimize::Default,
            crate::record::env::cores(),
            1,
            false,
        ),
    })
}

/// The checks above as the `#[test]`s of a runtime's crate, one per check,
/// each run on every framework named: `conformance_tests!(Tf);` in its
/// `tests/conformance.rs`.
#[macro_export]
macro_rules! conformance_tests {
    ($($fw:expr),+ $(,)?) => {
        #[test]
        fn pads_stride_two_windows_on_both_sides() {
            $($crate::frameworks::conformance::pads_stride_two_windows_on_both_sides(&$fw);)+
        }

        #[test]
        fn resizes_as_the_scalenet_authors() {
            $($crate::frameworks::conformance::resizes_as_the_scalenet_authors(&$fw);)+
        }

        #[test]
        fn traces_the_diamond_and_maps_it() {
            $($crate::frameworks::conformance::traces_the_diamond_and_maps_it(&$fw);)+
        }
    };
}
