use super::*;
use speedbench::frameworks::{Framework, Optimize};

fn scalenet() -> speedbench::zoo::Loaded {
    speedbench::zoo::load(
        &speedbench::zoo::Catalog::built_in().unwrap(),
        "scalenet50",
        128,
        None,
        0,
    )
    .unwrap()
}

/// A schedule of ScaleNet-50 with every branch region on two lanes (costs
/// that do not scale with threads make overlapping pay everywhere).
fn branchy(g: &Graph) -> Schedule {
    speedbench::schedule::plan(g, &|_, _| 100.0, 2, 2, 1.0)
}

/// ScaleNet-50 split into ORT segments: every IR node in exactly one
/// segment's model, and the segments, run one after another or their
/// lanes concurrently, give the whole graph's logits.
#[test]
fn scalenet_segments_cover_every_node_once_and_match_the_whole_graph() {
    let l = scalenet();
    let g = &l.graph;
    let s = branchy(g);
    assert!(s.is_parallel());
    // each node in one segment: the segment models' node names
    let mut seen = vec![0usize; g.nodes.len()];
    for stage in &s.stages {
        let parts: Vec<&[NodeId]> = match stage {
            Stage::Sequential(n) => vec![n.as_slice()],
            Stage::Parallel(lanes) => lanes.iter().map(|l| l.nodes.as_slice()).collect(),
        };
        for nodes in parts {
            let seg = onnx::segment(g, &l.weights, nodes).unwrap();
            for &n in nodes {
                seen[n] += 1;
            }
            // a segment reads only values made before it
            assert!(seg.inputs.iter().all(|i| !nodes.contains(i)));
            assert!(!seg.outputs.is_empty());
        }
    }
    assert_eq!(seen[0], 0);
    assert!(seen[1..].iter().all(|&k| k == 1), "{seen:?}");
    let opts = PrepareOptions::new(Device::Cpu, Mode::Parallel, Optimize::Default, 2, 2, false);
    let seg = Segmented::new(g, &l.weights, &opts);
    let x = speedbench::io::seeded_input(2, 128, 0);
    let whole = super::super::Ort { own: false }
        .prepare(
            g,
            &l.weights,
            &PrepareOptions::new(
                Device::Cpu,
                Mode::Sequential,
                Optimize::Default,
                2,
                1,
                false,
            ),
        )
        .unwrap()
        .run(&x)
        .unwrap();
    // cut from the IR, and from ORT's optimised graph: there every ORT
    // node is in exactly one part
    let bytes = onnx::to_onnx(g, &l.weights).unwrap();
    let optimized = seg.split(&bytes, &s).unwrap();
    let model = crate::optimized::optimized(&bytes, 2).unwrap();
    let mut names: Vec<String> = optimized
        .iter()
        .flatten()
        .flat_map(|p| {
            let m = <speedbench::graph::onnx_proto::ModelProto as prost::Message>::decode(
                p.bytes().as_slice(),
            )
            .unwrap();
            m.graph.unwrap().node.into_iter().map(|n| n.name)
        })
        .collect();
    let mut want: Vec<String> = model
        .graph
        .unwrap()
        .node
        .into_iter()
        .map(|n| n.name)
        .collect();
    names.sort();
    want.sort();
    assert_eq!(names, want);
    // NCHWc operators in the parts, and blocked values across boundaries
    assert!(want.iter().any(|n| n.ends_with("_nchwc")));
    for cut in [Cut::Ir(None), Cut::Optimized(optimized)] {
        let mut steps = seg.build(&l.weights, &s, &cut, false).unwrap();
        let lanes = steps.iter().filter(|s| matches!(s, Step::Lanes(_))).count();
        assert!(lanes >= 16, "{lanes} parallel stages");
        for concurrent in [false, true] {
            let (y, spans) = run_steps(&mut steps, &x, concurrent, true).unwrap();
            let (shape, got) = y.try_extract_tensor::<f32>().unwrap();
            assert_eq!(**shape, [2, 1000]);
            let want = whole.as_slice().unwrap();
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            let diff = got
                .iter()
                .zip(want)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            let what = cut.describe();
            assert!(
                diff <= 1e-4 * scale,
                "{what}, concurrent {concurrent}: {diff} of {scale}"
            );
            assert_eq!(
                spans.len(),
                steps
                    .iter()
                    .map(|s| match s {
                        Step::One(_) => 1,
                        Step::Lanes(l) => l.len(),
                    })
                    .sum::<usize>()
            );
            // lanes run on their own tracks
            assert!(spans.iter().any(|s| s.0 == 2));
        }
    }
}

/// The parallel mode of `ort` calibrates on its first pass, records its
/// schedule and the boundary cost, and gives the sequential logits.
#[test]
fn the_parallel_mode_of_ort_runs_speedbench_s_schedule() {
    let l = scalenet();
    let opts = PrepareOptions::new(Device::Cpu, Mode::Parallel, Optimize::Default, 2, 2, false);
    let mut p = super::super::Ort { own: false }
        .prepare(&l.graph, &l.weights, &opts)
        .unwrap();
    assert!(p.schedule().is_none());
    let x = speedbench::io::seeded_input(1, 128, 0);
    let y = p.run(&x).unwrap();
    let r = p.schedule().expect("calibrated on the first pass");
    assert_eq!(
        r.scheduler,
        "speedbench cost model over ONNX Runtime segments"
    );
    // cut from ORT's optimised graph, not the IR
    let cut = r.segments.as_deref().unwrap_or_default();
    assert!(cut.starts_with("ORT's optimised graph"), "{cut}");
    let (whole, split) = r.boundary.expect("the boundary cost is measured");
    assert!(whole > 0.0 && split > 0.0);
    let t = p.trace(&x).unwrap();
    assert!(!t.events.is_empty());
    let seq = super::super::Ort { own: false }
        .prepare(
            &l.graph,
            &l.weights,
            &PrepareOptions::new(
                Device::Cpu,
                Mode::Sequential,
                Optimize::Default,
                2,
                1,
                false,
            ),
        )
        .unwrap()
        .run(&x)
        .unwrap();
    let scale = seq.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = (&y - &seq).mapv(f32::abs).fold(0f32, |a, &b| a.max(b));
    assert!(diff <= 1e-4 * scale, "{diff}");
    // ORT's own parallel executor stays reachable as `ort-own`
    let own = super::super::Ort { own: true }
        .prepare(&l.graph, &l.weights, &opts)
        .unwrap();
    assert!(own.schedule().is_none());
    assert_eq!(own.threads_used(), Some((2, 2)));
}
