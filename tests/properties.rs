//! Property tests of the IR's shape inference: random valid specs always
//! give consistent shapes and counts; random invalid ones give errors, never
//! panics.

use std::path::Path;

use proptest::prelude::*;
use speedbench::graph::analysis::analyse;
use speedbench::graph::{infer, Graph, Op, ParamRef, Shape};
use speedbench::zoo::{self, ModelSpec};

/// Every node's shape is what inference gives for its inputs, inputs come
/// before their readers, and the counts add up.
fn consistent(g: &Graph) {
    for (i, n) in g.nodes.iter().enumerate().skip(1) {
        assert!(n.inputs.iter().all(|&j| j < i), "{} reads forward", n.name);
        let shapes: Vec<Shape> = n.inputs.iter().map(|&j| g.nodes[j].shape).collect();
        assert_eq!(infer(&n.op, &shapes), Ok(n.shape), "{}", n.name);
    }
    let a = analyse(g);
    assert!(a.span_macs <= a.macs && a.span_macs > 0);
    assert!(a.ideal_speedup >= 1.0);
    assert!(a.max_parallel_branches >= 1);
    let declared: u64 = g
        .params
        .values()
        .map(|s| s.iter().product::<usize>() as u64)
        .sum();
    assert!(a.params <= declared && a.params > 0);
}

fn write_spec(dir: &Path, body: &str) -> ModelSpec {
    let p = dir.join("m.toml");
    std::fs::write(&p, format!("name = \"m\"\n[model]\n{body}")).unwrap();
    ModelSpec::load(&p).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_resnets_build_consistently(
        layers in prop::collection::vec(1usize..3, 1..5),
        groups in prop::sample::select(vec![1usize, 2, 4, 32]),
        width in prop::sample::select(vec![4usize, 8, 64]),
        se in prop::option::of(prop::sample::select(vec![4usize, 16])),
        branched in any::<bool>(),
        size in 8usize..160,
    ) {
        let t = tempfile::tempdir().unwrap();
        let form = if branched && groups > 1 { "branched" } else { "grouped" };
        let se = se.map_or(String::new(), |r| format!("se_reduction = {r}\n"));
        let spec = write_spec(t.path(), &format!(
            "family = \"resnet\"\nlayers = {layers:?}\ngroups = {groups}\nwidth_per_group = {width}\ngroup_form = \"{form}\"\n{se}"
        ));
        match zoo::build(&spec, size) {
            Ok(g) => {
                consistent(&g);
                prop_assert_eq!(g.num_classes(), 1000);
            }
            // too small an input for the stride-2 stages: an error, no panic
            Err(e) => prop_assert!(format!("{e:#}").contains("smaller"), "{e:#}"),
        }
    }

    #[test]
    fn random_scalenets_build_or_fail_cleanly(
        rows in prop::collection::vec((0usize..40, 0usize..40, 0usize..40, 0usize..40, 1usize..60), 4),
        size in 16usize..200,
    ) {
        let t = tempfile::tempdir().unwrap();
        let json: Vec<Vec<usize>> = rows.iter().map(|r| vec![r.0, r.1, r.2, r.3, r.4]).collect();
        std::fs::write(t.path().join("s.json"), serde_json::to_string(&json).unwrap()).unwrap();
        let p = t.path().join("m.toml");
        std::fs::write(&p, "name = \"m\"\n[model]\nfamily = \"scalenet\"\nlayers = [1, 1, 1, 1]\nstructure = \"s.json\"\n").unwrap();
        match ModelSpec::load(&p) {
            Ok(spec) => match zoo::build(&spec, size) {
                Ok(g) => consistent(&g),
                Err(e) => prop_assert!(format!("{e:#}").contains("smaller"), "{e:#}"),
            },
            // a block whose branches all have 0 channels
            Err(e) => prop_assert!(e.to_string().contains("every branch has 0 channels"), "{e}"),
        }
    }

    #[test]
    fn damaged_onnx_files_are_refused_without_a_panic(
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..12),
        keep in 1usize..20_000,
    ) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/shuffle.onnx");
        let mut bytes = std::fs::read(path).unwrap();
        for (at, v) in flips {
            let i = at % bytes.len();
            bytes[i] = v;
        }
        bytes.truncate(keep);
        // imported or refused; a refusal says why in one line
        if let Err(e) = speedbench::graph::import::import(&bytes, "damaged") {
            let msg = format!("{e:#}");
            prop_assert!(!msg.is_empty());
        }
    }

    #[test]
    fn random_wiring_never_panics(
        ops in prop::collection::vec((0u8..16, 0usize..8, 0usize..70, 0usize..5, 0usize..4), 1..30),
    ) {
        let mut g = Graph::new("r", Shape::new(3, 17, 17));
        for (i, (kind, a, n, k, s)) in ops.into_iter().enumerate() {
            let last = g.nodes.len() - 1;
            let x = a.min(last);
            let op = match kind {
                0 => Op::Conv { out: n, kernel: [k, (k + s) % 5], stride: [s, 1 + s % 2], pad: [k / 2, s / 2], groups: 1 + s % 2, bias: s == 1, params: ParamRef::whole(format!("c{i}")) },
                1 => Op::BatchNorm { eps: 1e-5, params: ParamRef::whole(format!("b{i}")) },
                2 => Op::Relu,
                3 => Op::MaxPool { kernel: k, stride: s, pad: k / 3, ceil: s % 2 == 0 },
                12 => Op::AvgPool { kernel: k, stride: s, pad: k / 2, count_include_pad: n % 2 == 0 },
                13 => Op::ChannelShuffle { groups: s },
                14 => Op::Clip { min: -(k as f32), max: n as f32 },
                15 => Op::HardSwish,
                4 => Op::GlobalAvgPool,
                5 => Op::Resize { h: n, w: n, mode: speedbench::graph::ResizeMode::Bilinear },
                6 => Op::Add,
                7 => Op::Mul,
                8 => Op::Concat,
                9 => Op::Slice { start: s, end: n },
                10 => Op::Flatten,
                11 => Op::Linear { out: n, params: ParamRef::whole(format!("l{i}")) },
                _ => Op::HardSigmoid { alpha: 0.2, beta: 0.5 },
            };
            let inputs: Vec<usize> = match kind {
                6 | 7 => vec![x, last],
                8 => vec![x, last, x],
                _ => vec![x],
            };
            let before = g.nodes.len();
            match g.add(&format!("n{i}"), op, &inputs) {
                Ok(id) => prop_assert_eq!(id, before),
                Err(e) => prop_assert!(e.to_string().contains(&format!("n{i}")), "{e}"),
            }
        }
        if g.nodes.len() > 1 {
            let _ = analyse(&g);
        }
    }

    #[test]
    fn arbitrary_model_files_never_panic(text in "\\PC{0,200}") {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("m.toml");
        std::fs::write(&p, &text).unwrap();
        let _ = ModelSpec::load(&p);
    }
}
