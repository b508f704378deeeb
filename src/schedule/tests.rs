use super::*;
use crate::graph::{Op, ParamRef, Shape};

/// A 3x3 convolution to 4 channels with the weights named `p`.
fn conv(p: &str) -> Op {
    Op::Conv {
        out: 4,
        kernel: [3; 2],
        stride: [1; 2],
        pad: [1; 2],
        groups: 1,
        bias: false,
        params: ParamRef::whole(p),
    }
}

/// input -> stem -> (heavy: two convs, light: one conv) -> add -> head.
pub(super) fn diamond() -> Graph {
    let mut g = Graph::new("diamond", Shape::new(3, 8, 8));
    let stem = g.add("stem", conv("stem"), &[0]).unwrap();
    let h1 = g.add("heavy1", conv("heavy1"), &[stem]).unwrap();
    let h2 = g.add("heavy2", conv("heavy2"), &[h1]).unwrap();
    let l = g.add("light", conv("light"), &[stem]).unwrap();
    let add = g.add("add", Op::Add, &[h2, l]).unwrap();
    let gap = g.add("gap", Op::GlobalAvgPool, &[add]).unwrap();
    g.add("flat", Op::Flatten, &[gap]).unwrap();
    g
}

pub(super) fn id(g: &Graph, name: &str) -> NodeId {
    g.nodes.iter().position(|n| n.name == name).unwrap()
}

/// Costs in µs at one thread per node name; at two threads each takes
/// `scaling` of that (0.5: perfect scaling, 1.0: none).
fn costs<'a>(
    g: &'a Graph,
    one: &'a [(&'a str, f64)],
    scaling: f64,
) -> impl Fn(NodeId, usize) -> f64 + 'a {
    move |n, t| {
        let base = one
            .iter()
            .find(|(k, _)| *k == g.nodes[n].name)
            .map_or(1.0, |(_, c)| *c);
        if t >= 2 {
            base * scaling
        } else {
            base
        }
    }
}

#[test]
fn regions_split_at_the_cut_nodes_and_branches_into_components() {
    let g = diamond();
    let r = regions(&g);
    let names = |nodes: &[NodeId]| {
        nodes
            .iter()
            .map(|&n| g.nodes[n].name.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(r.len(), 5);
    assert_eq!((names(&r[0].nodes), r[0].branch), (vec!["stem"], false));
    assert_eq!(
        (names(&r[1].nodes), r[1].branch),
        (vec!["heavy1", "heavy2", "light"], true)
    );
    assert_eq!(names(&r[2].nodes), ["add"]);
    let parts = components(&g, &r[1].nodes);
    assert_eq!(
        parts.iter().map(|p| names(p)).collect::<Vec<_>>(),
        [vec!["heavy1", "heavy2"], vec!["light"]]
    );
}

#[test]
fn operations_that_scale_with_threads_run_one_after_another() {
    // perfect scaling: two threads on one operation beat one thread each
    let g = diamond();
    let one = [("heavy1", 400.0), ("heavy2", 400.0), ("light", 300.0)];
    let s = plan(&g, &costs(&g, &one, 0.5), 2, 2, 20.0);
    assert!(!s.is_parallel(), "{s:?}");
    assert_eq!(s.stages.len(), 1);
    assert_eq!(s.predicted_us, s.sequential_us);
    assert_eq!(
        s.record(&g, "test").chosen,
        "sequential: the cost model predicts no gain from overlapping"
    );
}

#[test]
fn a_costly_branch_beside_a_cheap_one_that_scale_poorly_overlap() {
    // no scaling: the light branch hides under the heavy one on two lanes
    let g = diamond();
    let one = [("heavy1", 400.0), ("heavy2", 400.0), ("light", 300.0)];
    let s = plan(&g, &costs(&g, &one, 1.0), 2, 2, 20.0);
    assert!(s.is_parallel(), "{s:?}");
    let Stage::Parallel(lanes) = &s.stages[1] else {
        panic!("{s:?}")
    };
    assert_eq!(lanes.len(), 2);
    assert_eq!(lanes[0].nodes, [id(&g, "heavy1"), id(&g, "heavy2")]);
    assert_eq!(lanes[1].nodes, [id(&g, "light")]);
    assert!(lanes.iter().all(|l| l.threads == 1));
    // predicted: the heavy lane (800) + overhead instead of 800 + 300
    let rest = s.sequential_us - 1100.0;
    assert!((s.predicted_us - (rest + 820.0)).abs() < 1e-9, "{s:?}");
    let r = s.record(&g, "test");
    assert_eq!(r.parallel_stages.len(), 1);
    assert_eq!(r.parallel_stages[0].first, "heavy1");
    assert_eq!(r.parallel_stages[0].lanes, [(2, 1), (1, 1)]);
    assert_eq!(r.stages, 3);
}

#[test]
fn a_cheap_branch_not_worth_a_stage_stays_sequential() {
    // poor scaling, but the light branch is shorter than the overhead saved
    let g = diamond();
    let one = [("heavy1", 400.0), ("heavy2", 400.0), ("light", 10.0)];
    let s = plan(&g, &costs(&g, &one, 0.9), 2, 2, 20.0);
    // sequential 0.9 * 810 = 729 beats 800 + 20
    assert!(!s.is_parallel(), "{s:?}");
    // one worker: never parallel
    let s = plan(
        &g,
        &costs(
            &g,
            &[("heavy1", 400.0), ("heavy2", 400.0), ("light", 300.0)],
            1.0,
        ),
        2,
        1,
        0.0,
    );
    assert!(!s.is_parallel());
}

#[test]
fn packing_balances_the_lanes() {
    let lanes = pack(&[5.0, 4.0, 3.0, 3.0, 1.0], 2);
    // LPT: 5 | 4, then 3 -> 4+3, 3 -> 5+3, 1 -> 7+1
    assert_eq!(lanes, vec![(vec![0, 3], 8.0), (vec![1, 2, 4], 8.0)]);
    assert_eq!(pack(&[1.0], 3).len(), 1);
}

/// On ScaleNet-50 every node runs exactly once, and every node runs after
/// its inputs: in an earlier stage, or earlier in its own lane.
#[test]
fn scalenet_schedules_cover_every_node_once_in_dependency_order() {
    let l = crate::zoo::load(
        &crate::zoo::Catalog::built_in().unwrap(),
        "scalenet50",
        224,
        None,
        0,
    )
    .unwrap();
    let g = &l.graph;
    for scaling in [0.5, 0.8, 1.0] {
        let s = plan(
            g,
            &|n, t| {
                (1 + crate::graph::analysis::node_macs(g, n) / 1000) as f64
                    * if t > 1 { scaling } else { 1.0 }
            },
            2,
            2,
            20.0,
        );
        let mut nodes = s.nodes();
        assert_eq!(nodes.len(), g.nodes.len() - 1);
        nodes.sort_unstable();
        nodes.dedup();
        assert_eq!(nodes.len(), g.nodes.len() - 1);
        let mut done = vec![false; g.nodes.len()];
        done[0] = true;
        for stage in &s.stages {
            let lanes: Vec<&[NodeId]> = match stage {
                Stage::Sequential(n) => vec![n.as_slice()],
                Stage::Parallel(l) => l.iter().map(|l| l.nodes.as_slice()).collect(),
            };
            let before = done.clone();
            for lane in &lanes {
                let mut mine = before.clone();
                for &n in *lane {
                    assert!(
                        g.nodes[n].inputs.iter().all(|&i| mine[i]),
                        "{} before its inputs",
                        g.nodes[n].name
                    );
                    mine[n] = true;
                }
            }
            for lane in lanes {
                for &n in lane {
                    done[n] = true;
                }
            }
        }
        assert!(s.predicted_us <= s.sequential_us);
        if scaling == 1.0 {
            assert!(s.is_parallel());
        }
    }
}

/// `SPEEDBENCH_SCHEDULE=plan` keeps the plan; anything else, or nothing,
/// lets the measurement decide. (Other tests that read it only keep a plan
/// they would otherwise have dropped, which none of them asserts on.)
#[test]
fn the_environment_can_keep_the_plan() {
    std::env::set_var("SPEEDBENCH_SCHEDULE", "plan");
    assert!(keep_plan());
    std::env::set_var("SPEEDBENCH_SCHEDULE", "auto");
    assert!(!keep_plan());
    std::env::remove_var("SPEEDBENCH_SCHEDULE");
    assert!(!keep_plan());
}

/// input -> stem -> three single-conv branches a, b, c -> concat.
fn trident() -> Graph {
    let mut g = Graph::new("trident", Shape::new(3, 8, 8));
    let stem = g.add("stem", conv("stem"), &[0]).unwrap();
    let a = g.add("a", conv("a"), &[stem]).unwrap();
    let b = g.add("b", conv("b"), &[stem]).unwrap();
    let c = g.add("c", conv("c"), &[stem]).unwrap();
    g.add("cat", Op::Concat, &[a, b, c]).unwrap();
    g
}

#[test]
fn the_lanes_share_the_threads_and_the_best_lane_count_wins() {
    let g = trident();
    let branch = |n: NodeId| ["a", "b", "c"].contains(&g.nodes[n].name.as_str());
    // three equal branches that do not scale: three lanes beat two
    let flat = |n: NodeId, _t: usize| if branch(n) { 300.0 } else { 10.0 };
    let s = plan(&g, &flat, 6, 3, 10.0);
    let Stage::Parallel(lanes) = &s.stages[1] else {
        panic!("{s:?}")
    };
    assert_eq!(lanes.len(), 3);
    // 6 threads over 3 lanes: 2 each
    assert!(lanes.iter().all(|l| l.threads == 2), "{lanes:?}");
    assert_eq!(s.predicted_us, 10.0 + 310.0 + 10.0);
    // with four threads and two lanes allowed, each lane gets two
    let s = plan(&g, &flat, 4, 2, 10.0);
    let Stage::Parallel(lanes) = &s.stages[1] else {
        panic!("{s:?}")
    };
    assert_eq!(lanes.len(), 2);
    assert!(lanes.iter().all(|l| l.threads == 2), "{lanes:?}");
    // the cost at each lane's width is what is summed: lanes of 2 threads
    // here cost 100 a branch, 1 thread 300
    let scaled = |n: NodeId, t: usize| {
        if branch(n) {
            if t >= 2 {
                100.0
            } else {
                300.0
            }
        } else {
            10.0
        }
    };
    let s = plan(&g, &scaled, 4, 3, 0.0);
    // sequential at 4 threads: 300; two lanes of 2 threads: 200; three lanes
    // of 1 thread: 300
    let Stage::Parallel(lanes) = &s.stages[1] else {
        panic!("{s:?}")
    };
    assert_eq!(lanes.len(), 2, "{s:?}");
    assert_eq!(s.predicted_us, 10.0 + 200.0 + 10.0);
    // a tie between two and three lanes keeps the fewer
    let uneven = |n: NodeId, _t: usize| match g.nodes[n].name.as_str() {
        "a" => 200.0,
        "b" | "c" => 100.0,
        _ => 10.0,
    };
    let s = plan(&g, &uneven, 6, 3, 0.0);
    let Stage::Parallel(lanes) = &s.stages[1] else {
        panic!("{s:?}")
    };
    assert_eq!(lanes.len(), 2, "{s:?}");
}

#[test]
fn a_tie_with_sequential_stays_sequential() {
    let g = trident();
    let branch = |n: NodeId| ["a", "b", "c"].contains(&g.nodes[n].name.as_str());
    // two lanes: max(a+b, c) = 200 + overhead 100 = 300 = a+b+c sequential
    let cost = |n: NodeId, _t: usize| if branch(n) { 100.0 } else { 0.0 };
    let s = plan(&g, &cost, 2, 2, 100.0);
    assert!(!s.is_parallel(), "{s:?}");
    // a hair cheaper, and it overlaps
    let s = plan(&g, &cost, 2, 2, 99.0);
    assert!(s.is_parallel());
}

#[test]
fn the_record_is_in_milliseconds() {
    let g = trident();
    let cost = |n: NodeId, _t: usize| {
        if g.nodes[n].name == "stem" {
            1000.0
        } else {
            2500.0
        }
    };
    let s = plan(&g, &cost, 2, 2, 0.0);
    let r = s.record(&g, "test");
    assert!((r.predicted_ms - s.predicted_us / 1000.0).abs() < 1e-12);
    assert!((r.predicted_sequential_ms - 11.0).abs() < 1e-12, "{r:?}");
    assert_eq!(r.predicted_ms, 1.0 + 5.0 + 2.5);
    assert_eq!(r.scheduler, "test");
    assert_eq!(r.measured, None);
}

#[test]
fn calibration_passes_fit_a_time_budget_within_bounds() {
    assert_eq!(check_passes(50.0), 30);
    assert_eq!(check_passes(100.0), 15);
    assert_eq!(check_passes(1000.0), 5);
    assert_eq!(check_passes(1e9), 5);
    assert_eq!(check_passes(0.0), 30);
    assert_eq!(check_passes(f64::NAN), 5);
}

#[test]
fn a_plan_runs_only_if_it_measured_clearly_faster() {
    assert!(plan_wins(100.0, 98.9));
    assert!(!plan_wins(100.0, 99.5));
    assert!(!plan_wins(100.0, 100.0 * (1.0 - PLAN_MARGIN)));
    assert!(!plan_wins(100.0, 100.0));
    assert!(!plan_wins(100.0, 120.0));
    assert_eq!(
        plan_lost(100.0, 99.5, "sequential"),
        "sequential: the cost model's schedule measured 99.50 ms against 100.00 ms sequential (not 1% faster)"
    );
}

/// A plan that lost runs only when forced, and its record says forced.
#[test]
fn a_forced_plan_says_so_in_the_record() {
    assert_eq!(judge(100.0, 90.0, false, "x"), (true, None));
    assert_eq!(judge(100.0, 90.0, true, "x"), (true, None));
    let (runs, chosen) = judge(100.0, 120.0, false, "sequential");
    assert!(!runs);
    assert!(chosen.unwrap().starts_with("sequential: "));
    let (runs, chosen) = judge(100.0, 120.0, true, "sequential");
    assert!(runs);
    assert_eq!(
        chosen.unwrap(),
        "forced by SPEEDBENCH_SCHEDULE=plan: the cost model's schedule measured 120.00 ms against 100.00 ms sequential (not 1% faster)"
    );
    // settle records the medians and what ran
    let g = diamond();
    let mut r = plan(&g, &costs(&g, &[], 1.0), 2, 2, 0.0).record(&g, "test");
    let before = r.chosen.clone();
    assert!(settle(&mut r, 100.0, 50.0, "x"));
    assert_eq!((r.measured, &r.chosen), (Some((100.0, 50.0)), &before));
}

/// The record of a plan names its parallel stages by their first node,
/// with each lane's node count and threads, in ms.
#[test]
fn a_plan_s_record_lists_its_parallel_stages() {
    let g = diamond();
    let id = |n: &str| g.nodes.iter().position(|m| m.name == n).unwrap();
    let s = Schedule {
        stages: vec![
            Stage::Sequential(vec![id("stem")]),
            Stage::Parallel(vec![
                Lane {
                    nodes: vec![id("light")],
                    threads: 1,
                },
                Lane {
                    nodes: vec![id("heavy1"), id("heavy2")],
                    threads: 1,
                },
            ]),
        ],
        predicted_us: 1500.0,
        sequential_us: 2000.0,
    };
    let r = s.record(&g, "test scheduler");
    assert_eq!(r.scheduler, "test scheduler");
    assert_eq!(r.stages, 2);
    assert_eq!(r.parallel_stages.len(), 1);
    assert_eq!(r.parallel_stages[0].first, "heavy1");
    assert_eq!(r.parallel_stages[0].lanes, [(1, 1), (2, 1)]);
    assert_eq!((r.predicted_ms, r.predicted_sequential_ms), (1.5, 2.0));
    assert_eq!(r.chosen, "cost model");
    assert!(r.measured.is_none() && r.boundary.is_none() && r.segments.is_none());
    let seq = Schedule {
        stages: vec![Stage::Sequential((1..g.nodes.len()).collect())],
        predicted_us: 2000.0,
        sequential_us: 2000.0,
    };
    assert!(seq.record(&g, "x").chosen.starts_with("sequential"));
}

/// The first block of a ResNeXt stage in small: the main path `a1 -> (b1 |
/// b2 | b3) -> a2` and a downsample `d` beside the whole of it.
fn nested_block() -> Graph {
    let mut g = Graph::new("nested", Shape::new(3, 8, 8));
    let stem = g.add("stem", conv("stem"), &[0]).unwrap();
    let a1 = g.add("a1", conv("a1"), &[stem]).unwrap();
    let b: Vec<NodeId> = ["b1", "b2", "b3"]
        .iter()
        .map(|n| g.add(n, conv(n), &[a1]).unwrap())
        .collect();
    let cat = g.add("cat", Op::Concat, &b).unwrap();
    let a2 = g.add("a2", conv("a2"), &[cat]).unwrap();
    let d = g.add("d", conv("d"), &[stem]).unwrap();
    g.add("add", Op::Add, &[a2, d]).unwrap();
    g
}

/// Where one component of a region holds branches of its own, its
/// costliest run of them runs as a parallel stage together with the other
/// components; the rest of that component runs before and after it.
#[test]
fn branches_inside_a_component_run_beside_the_other_components() {
    let g = nested_block();
    let names = |nodes: &[NodeId]| {
        nodes
            .iter()
            .map(|&n| g.nodes[n].name.as_str())
            .collect::<Vec<_>>()
    };
    // one region of two components: the main path and the downsample
    let r = regions(&g);
    let region = r.iter().find(|r| r.branch).unwrap();
    assert_eq!(components(&g, &region.nodes).len(), 2);
    // no scaling: the three group branches and the downsample on two lanes
    let one = [
        ("a1", 100.0),
        ("b1", 300.0),
        ("b2", 300.0),
        ("b3", 300.0),
        ("cat", 10.0),
        ("a2", 100.0),
        ("d", 200.0),
    ];
    let s = plan(&g, &costs(&g, &one, 1.0), 2, 2, 20.0);
    let stages: Vec<Vec<Vec<&str>>> = s
        .stages
        .iter()
        .map(|st| match st {
            Stage::Sequential(n) => vec![names(n)],
            Stage::Parallel(lanes) => lanes.iter().map(|l| names(&l.nodes)).collect(),
        })
        .collect();
    assert_eq!(
        stages,
        [
            vec![vec!["stem", "a1"]],
            vec![vec!["b1", "b3"], vec!["b2", "d"]],
            vec![vec!["cat", "a2", "add"]],
        ]
    );
    // predicted: stem (1) + a1 + the slower lane (600) + overhead + the rest
    let want = 1.0 + 100.0 + 600.0 + 20.0 + 10.0 + 100.0 + 1.0;
    assert!((s.predicted_us - want).abs() < 1e-9, "{s:?}");
    // flat, the main path (1010) against the downsample would save 180 of
    // the sequential 1312
    assert!(s.predicted_us < s.sequential_us - 400.0, "{s:?}");
    // perfect scaling: sequential, nested or not
    assert!(!plan(&g, &costs(&g, &one, 0.5), 2, 2, 20.0).is_parallel());
    // every node once, in an order its inputs allow
    let order = s.nodes();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..g.nodes.len()).collect::<Vec<_>>());
}

#[test]
fn lanes_share_the_threads() {
    assert_eq!(lane_threads(2, 2), 1);
    assert_eq!(lane_threads(8, 2), 4);
    assert_eq!(lane_threads(3, 2), 1);
    assert_eq!(lane_threads(2, 4), 1);
    assert_eq!(lane_threads(6, 0), 6);
}

/// A schedule stored by name runs again as the same stages, on the same
/// graph; a name the graph lacks, a node left out or run twice is refused.
#[test]
fn a_stored_schedule_comes_back_as_it_ran() {
    let g = diamond();
    let s = Schedule {
        stages: vec![
            Stage::Sequential(vec![id(&g, "stem")]),
            Stage::Parallel(vec![
                Lane {
                    nodes: vec![id(&g, "heavy1"), id(&g, "heavy2")],
                    threads: 2,
                },
                Lane {
                    nodes: vec![id(&g, "light")],
                    threads: 1,
                },
            ]),
            Stage::Sequential(vec![id(&g, "add"), id(&g, "gap"), id(&g, "flat")]),
        ],
        predicted_us: 1.0,
        sequential_us: 2.0,
    };
    let stored = s.stored(&g);
    assert_eq!(
        stored[1],
        StageNodes::Parallel(vec![
            LaneNodes {
                nodes: vec!["heavy1".into(), "heavy2".into()],
                threads: 2
            },
            LaneNodes {
                nodes: vec!["light".into()],
                threads: 1
            },
        ])
    );
    assert_eq!(s.record(&g, "x").ran, stored);
    let back = Schedule::from_stored(&g, &stored).unwrap();
    assert_eq!(back.stages, s.stages);
    let mut bad = stored.clone();
    bad[0] = StageNodes::Sequential(vec!["stem2".into()]);
    let e = Schedule::from_stored(&g, &bad).unwrap_err().to_string();
    assert_eq!(
        e,
        "the stored schedule names node 'stem2', which this graph does not have"
    );
    for stages in [
        &stored[1..],
        &[stored.clone(), vec![stored[0].clone()]].concat()[..],
    ] {
        let e = Schedule::from_stored(&g, stages).unwrap_err().to_string();
        assert_eq!(
            e,
            "the stored schedule does not run each of this graph's 7 nodes exactly once"
        );
    }
}

/// The machine ideal of the diamond with known per-operation times: the
/// other nodes cost 1 µs each (4 of them); heavy 400 + 400 and light 300
/// do not scale, so on two lanes the light branch hides under the heavy
/// one: sequential 1104, best 824 (+ 20 overhead) = 1.3398x. With perfect
/// scaling no schedule beats sequential: an ideal of 1.
#[test]
fn the_machine_ideal_of_a_diamond() {
    let g = diamond();
    let one = [("heavy1", 400.0), ("heavy2", 400.0), ("light", 300.0)];
    let r = plan(&g, &costs(&g, &one, 1.0), 2, 2, 20.0).record(&g, "test");
    assert!((r.predicted_sequential_ms - 1.104).abs() < 1e-12, "{r:?}");
    let m = r.machine_ideal().unwrap();
    assert!((m - 1104.0 / 824.0).abs() < 1e-12, "{m}");
    let r = plan(&g, &costs(&g, &one, 0.5), 2, 2, 20.0).record(&g, "test");
    assert_eq!(r.machine_ideal(), Some(1.0));
    // a record without the cost model's prediction has none
    let own = ScheduleRecord {
        predicted_ms: 0.0,
        ..r.clone()
    };
    assert_eq!(own.machine_ideal(), None);
    let own = ScheduleRecord {
        predicted_sequential_ms: 0.0,
        ..r
    };
    assert_eq!(own.machine_ideal(), None);
}
