use super::*;
use speedbench::frameworks::Optimize;
use speedbench::graph::weights::Weights;
use speedbench::schedule::Lane;

#[test]
fn calibration_keeps_each_operation_s_fastest_time() {
    let span = |node, start_us, end_us| Span {
        node,
        track: 0,
        start_us,
        end_us,
    };
    let mut best = vec![f64::INFINITY, 4.0, f64::INFINITY];
    keep_fastest(
        &mut best,
        &[
            span(1, 10.0, 15.0),
            span(2, 20.0, 23.0),
            span(2, 30.0, 32.5),
        ],
    );
    assert_eq!(best, [f64::INFINITY, 4.0, 2.5]);
}

/// The best-overlapped of a few traced passes of a diamond whose two
/// branches run as one parallel stage of lanes with `lane_threads`
/// intra-op threads each (the calling thread has two); the track names.
fn diamond_stage(lane_threads: usize) -> (speedbench::record::Trace, Vec<String>) {
    // branches of a few ms each: far longer than a lane takes to wake
    // up, and long enough to be time-sliced when other tests hold the
    // cores
    let g = speedbench::frameworks::conformance::diamond_of(64, 128);
    let w = Weights::seeded(&g, 1);
    let plan = Arc::new(
        Plan::new(
            &g,
            &w,
            tch::Device::Cpu,
            Optimize::Default,
            speedbench::frameworks::Precision::Fp32,
        )
        .unwrap(),
    );
    let id = |n: &str| g.nodes.iter().position(|m| m.name == n).unwrap();
    let lane = |n: &str| Lane {
        nodes: vec![id(n)],
        threads: lane_threads,
    };
    let schedule = Schedule {
        stages: vec![
            Stage::Sequential(vec![id("stem")]),
            Stage::Parallel(vec![lane("left"), lane("right")]),
            Stage::Sequential((id("add")..g.nodes.len()).collect()),
        ],
        predicted_us: 0.0,
        sequential_us: 0.0,
    };
    let mut staged = Staged::with_schedule(plan.clone(), &g, schedule, 2).unwrap();
    assert_eq!(staged.threads(), (2, 2));
    let _grad = plan.grad_guard();
    let x = tch::Tensor::f_from_slice(speedbench::io::seeded_input(1, 128, 0).as_slice().unwrap())
        .unwrap()
        .reshape([1, 3, 128, 128]);
    let want = plan.run_sequential(x.shallow_clone(), None).unwrap();
    // a loaded machine may still run the lanes one after the other: the
    // property is that they can overlap, so the best of a few passes
    let mut traces: Vec<speedbench::record::Trace> = Vec::new();
    for _ in 0..10 {
        let (y, spans) = staged.run(x.shallow_clone(), true).unwrap();
        assert!(y.allclose(&want, 1e-4, 1e-4, false));
        let t = super::super::trace::timeline(&plan, "test", "CPU", staged.tracks(), &spans);
        traces.push(speedbench::trace::finish(t, &g, false));
        if traces
            .last()
            .is_some_and(|t| t.concurrency.branch_overlap > 0.5)
        {
            break;
        }
    }
    let best = traces
        .into_iter()
        .max_by(|a, b| {
            a.concurrency
                .branch_overlap
                .total_cmp(&b.concurrency.branch_overlap)
        })
        .unwrap();
    let k = best.concurrency;
    assert!(!k.sequential(), "{k:?}");
    assert!(k.branch_overlap > 0.5, "{k:?}");
    let track = |n: &str| {
        best.timeline
            .events
            .iter()
            .find(|e| e.name == n)
            .unwrap()
            .track
    };
    assert_ne!(track("left"), track("right"));
    assert_eq!((track("stem"), track("add")), (0, 0));
    (best, staged.tracks())
}

/// speedbench's own parallel executor on two threads runs the two
/// branches of a diamond at once when its schedule says so: a property
/// of the timeline (the branches overlapped), not of the wall time.
/// One-thread lanes run on libtorch's OpenMP team: the calling thread
/// and the team's other thread, no thread of speedbench's.
#[test]
fn a_stage_of_one_thread_lanes_overlaps_on_libtorchs_team() {
    assert!(team::available(), "libtorch should run on libgomp");
    let (trace, tracks) = diamond_stage(1);
    assert_eq!(
        tracks,
        ["main thread (2 intra-op)", "libtorch OpenMP thread 1"],
    );
    assert_eq!(trace.concurrency.tracks, 2, "{:?}", trace.timeline.tracks);
}

/// Lanes of more than one intra-op thread each run on lane workers.
#[test]
fn a_stage_of_wider_lanes_overlaps_on_lane_workers() {
    let (trace, tracks) = diamond_stage(2);
    assert_eq!(
        tracks,
        [
            "main thread (2 intra-op)",
            "torch-lane-1 (2 intra-op)",
            "torch-lane-2 (2 intra-op)"
        ],
    );
    // the main thread and the two workers ran operations
    assert_eq!(trace.concurrency.tracks, 3, "{:?}", trace.timeline.tracks);
}
