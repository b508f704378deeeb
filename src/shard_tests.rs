use std::collections::BTreeMap;

use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

fn shard(index: usize, count: usize) -> Shard {
    Shard { index, count }
}

#[test]
fn k_of_n_parses_and_bad_values_name_the_flag() {
    assert_eq!(parse("1/1").unwrap(), shard(1, 1));
    assert_eq!(parse("2/3").unwrap(), shard(2, 3));
    assert_eq!(parse(" 3 / 3 ").unwrap(), shard(3, 3));
    for bad in [
        "3/2", "0/3", "1/0", "0/0", "2", "a/3", "2/b", "-1/3", "1/2/3", "", "/",
    ] {
        let e = parse(bad).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("--shard: expected K/N with 1 <= K <= N, got '{bad}'"),
            "{bad}"
        );
    }
}

#[test]
fn the_flag_wins_over_the_environment() {
    let env = env_of(&[
        ("SLURM_ARRAY_TASK_ID", "0"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
        ("JOB_COMPLETION_INDEX", "1"),
    ]);
    let p = pick(Some("3/5"), None, &env).unwrap().unwrap();
    assert_eq!((p.shard, p.source.as_str()), (shard(3, 5), "--shard"));
    assert!(pick(Some("6/5"), None, &env).is_err());
    assert!(pick(Some("1/2"), Some("2"), &env).is_err());
    // nothing given, nothing set: the whole run
    assert_eq!(pick(None, None, &env_of(&[])).unwrap(), None);
    // a count alone in the environment changes nothing, even a bad one
    let env = env_of(&[("SPEEDBENCH_SHARD_COUNT", "3")]);
    assert_eq!(pick(None, None, &env).unwrap(), None);
    let env = env_of(&[("SPEEDBENCH_SHARD_COUNT", "x")]);
    assert_eq!(pick(None, None, &env).unwrap(), None);
    // but the flag alone is a mistake
    let e = pick(None, Some("3"), &env_of(&[])).unwrap_err().to_string();
    assert!(e.starts_with("--shard-count:"), "{e}");
}

#[test]
fn slurm_task_ids_count_from_their_minimum() {
    let at = |pairs: &[(&str, &str)]| pick(None, None, &env_of(pairs));
    // --array=0-3
    let p = at(&[
        ("SLURM_ARRAY_TASK_ID", "0"),
        ("SLURM_ARRAY_TASK_MIN", "0"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(p.shard, shard(1, 4));
    assert!(p.source.contains("SLURM_ARRAY_TASK_ID=0"), "{}", p.source);
    // --array=1-4: task 4 is the last
    let p = at(&[
        ("SLURM_ARRAY_TASK_ID", "4"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ]);
    assert_eq!(p.unwrap().unwrap().shard, shard(4, 4));
    // --array=10-13
    let p = at(&[
        ("SLURM_ARRAY_TASK_ID", "11"),
        ("SLURM_ARRAY_TASK_MIN", "10"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ]);
    assert_eq!(p.unwrap().unwrap().shard, shard(2, 4));
    // --array=0-6:2 (tasks 0, 2, 4, 6)
    let p = at(&[
        ("SLURM_ARRAY_TASK_ID", "4"),
        ("SLURM_ARRAY_TASK_MIN", "0"),
        ("SLURM_ARRAY_TASK_STEP", "2"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ]);
    let p = p.unwrap().unwrap();
    assert_eq!(p.shard, shard(3, 4));
    // the line that says where the shard came from names a step, and
    // only a step above 1
    assert!(p.source.contains("SLURM_ARRAY_TASK_STEP=2"), "{}", p.source);
    for step in ["0", "1"] {
        let p = at(&[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_STEP", step),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        let source = p.unwrap().unwrap().source;
        assert!(!source.contains("STEP"), "{source}");
    }
    // a count of 0 is no count, wherever it comes from
    for zero in [
        &[
            ("JOB_COMPLETION_INDEX", "0"),
            ("SPEEDBENCH_SHARD_COUNT", "0"),
        ][..],
        &[
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "0"),
        ][..],
    ] {
        let e = at(zero).unwrap_err().to_string();
        assert!(e.contains("at least 1, got '0'"), "{e}");
    }
    // no minimum: ids from 0
    let p = at(&[
        ("SLURM_ARRAY_TASK_ID", "2"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
    ]);
    assert_eq!(p.unwrap().unwrap().shard, shard(3, 3));
    // the count from SPEEDBENCH_SHARD_COUNT when Slurm does not give it
    let p = at(&[
        ("SLURM_ARRAY_TASK_ID", "1"),
        ("SPEEDBENCH_SHARD_COUNT", "2"),
    ]);
    assert_eq!(p.unwrap().unwrap().shard, shard(2, 2));
    // ids outside the array, or no count at all
    for bad in [
        &[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ][..],
        &[
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ],
        &[
            ("SLURM_ARRAY_TASK_ID", "x"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ],
        &[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "0"),
        ],
        &[("SLURM_ARRAY_TASK_ID", "1")],
    ] {
        let e = at(bad).unwrap_err().to_string();
        assert!(e.contains("SLURM_ARRAY_TASK"), "{bad:?}: {e}");
    }
}

#[test]
fn an_indexed_job_counts_from_zero_with_the_count_given() {
    let env = env_of(&[
        ("JOB_COMPLETION_INDEX", "0"),
        ("SPEEDBENCH_SHARD_COUNT", "3"),
    ]);
    let p = pick(None, None, &env).unwrap().unwrap();
    assert_eq!(p.shard, shard(1, 3));
    assert!(p.source.contains("JOB_COMPLETION_INDEX=0"), "{}", p.source);
    // the flag wins over the variable
    let p = pick(None, Some("5"), &env).unwrap().unwrap();
    assert_eq!(p.shard, shard(1, 5));
    assert!(p.source.contains("--shard-count 5"), "{}", p.source);
    let env = env_of(&[("JOB_COMPLETION_INDEX", "2")]);
    assert_eq!(
        pick(None, Some("3"), &env).unwrap().unwrap().shard,
        shard(3, 3)
    );
    // no count, an index beyond it, a bad count
    let e = pick(None, None, &env).unwrap_err().to_string();
    assert!(e.contains("--shard-count"), "{e}");
    let e = pick(None, Some("2"), &env).unwrap_err().to_string();
    assert!(e.contains("JOB_COMPLETION_INDEX=2"), "{e}");
    let e = pick(None, Some("zero"), &env).unwrap_err().to_string();
    assert!(e.starts_with("--shard-count:"), "{e}");
}

/// The largest shard of the best assignment, by trying all of them.
fn optimum(costs: &[u128], count: usize) -> u128 {
    let mut best = u128::MAX;
    let mut load = vec![0u128; count];
    fn go(i: usize, costs: &[u128], load: &mut [u128], best: &mut u128) {
        if i == costs.len() {
            *best = (*best).min(*load.iter().max().unwrap_or(&0));
            return;
        }
        for s in 0..load.len() {
            load[s] += costs[i];
            if load[s] < *best {
                go(i + 1, costs, load, best);
            }
            load[s] -= costs[i];
        }
    }
    go(0, costs, &mut load, &mut best);
    best
}

/// Deterministic pseudo-random costs.
fn costs_of(seed: u64, n: usize) -> Vec<u128> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            u128::from(x % 1000 + 1)
        })
        .collect()
}

fn loads(items: &[(usize, u128)], count: usize) -> Vec<u128> {
    let mut load = vec![0u128; count];
    for (i, s) in partition(items, count).into_iter().enumerate() {
        load[s] += items[i].1;
    }
    load
}

#[test]
fn lpt_is_within_its_bound_of_the_best_partition() {
    for seed in 0..40 {
        for count in 2..=3 {
            let costs = costs_of(seed, 4 + (seed as usize % 6));
            let items: Vec<(usize, u128)> = costs.iter().copied().enumerate().collect();
            let max = *loads(&items, count).iter().max().unwrap();
            let opt = optimum(&costs, count);
            // Graham: LPT <= (4/3 - 1/(3m)) OPT, in integers
            let m = count as u128;
            assert!(
                max * 3 * m <= (4 * m - 1) * opt,
                "seed {seed}, {count} shards: {max} vs optimum {opt} ({costs:?})"
            );
        }
    }
    // larger: never beyond the mean plus the largest item
    for seed in 0..20 {
        let costs = costs_of(seed, 60);
        let items: Vec<(usize, u128)> = costs.iter().copied().enumerate().collect();
        for count in [2, 5, 7] {
            let l = loads(&items, count);
            let total: u128 = costs.iter().sum();
            let largest = *costs.iter().max().unwrap();
            assert_eq!(l.iter().sum::<u128>(), total);
            assert!(*l.iter().max().unwrap() <= total / count as u128 + largest);
        }
    }
}

#[test]
fn the_partition_is_deterministic_whatever_the_order() {
    // equal costs: ties go by key, so every process agrees
    let items = vec![("b", 5), ("a", 5), ("d", 9), ("c", 1), ("e", 5)];
    let got = partition(&items, 3);
    let mut reversed = items.clone();
    reversed.reverse();
    let mut back = partition(&reversed, 3);
    back.reverse();
    assert_eq!(got, back);
    // d (9) to shard 0, then a, b, e (5 each) to 1, 2, then 1; c to 2
    assert_eq!(got, vec![2, 1, 0, 2, 1]);
    // more shards than items: the rest are empty
    assert_eq!(partition(&items[..2], 4), vec![1, 0]);
}

/// A worker's expected cost: MACs per image x batch x (warm-up x
/// processes + timed iterations) x cells (modes x levels), per framework.
/// A plan of models a and b in ort and torch, both modes, three levels,
/// batch 3, 2 warm-up + 5 timed iterations.
fn plan_ab() -> RunPlan {
    use crate::record::{Device, Mode, Optimize};
    RunPlan {
        profile: "quick".into(),
        frameworks: vec!["ort".into(), "torch".into()],
        models: vec!["a".into(), "b".into()],
        device: Device::Cpu,
        modes: vec![Mode::Sequential, Mode::Parallel],
        optimize: vec![Optimize::Default, Optimize::Max, Optimize::None],
        precision: vec![crate::record::Precision::Fp32],
        batch: vec![3],
        size: 64,
        warmup: 2,
        iters: 5,
        processes: 1,
        order_seed: 0,
        target: None,
        max_time_s: None,
        placement: Default::default(),
        intra_threads: 1,
        inter_threads: 1,
        seed: 0,
        timeout_s: 1,
        out: "results".into(),
        weights: None,
        skipped: vec![],
        skipped_models: vec![],
        shard: None,
        unsupported: vec![],
        schedules_from: None,
        schedules: vec![],
    }
}

fn macs_ab(m: &str) -> Result<u64> {
    match m {
        "a" => Ok(1000),
        "b" => Ok(7),
        _ => bail!("no model {m}"),
    }
}

#[test]
fn a_worker_costs_its_macs_times_the_passes_it_makes() {
    let (plan, macs) = (plan_ab(), macs_ab);
    let key = |m: &str, f: &str| (m.to_string(), f.to_string());
    // 3 x (2 + 5) x (2 modes x 3 levels) = 126 passes of each image
    assert_eq!(
        costs(&plan, &macs).unwrap(),
        [
            (key("a", "ort"), 126_000),
            (key("a", "torch"), 126_000),
            (key("b", "ort"), 882),
            (key("b", "torch"), 882),
        ]
    );
    // each process warms up: 3 x (2 x 2 + 5) x 6 = 162
    let mut two = plan.clone();
    two.processes = 2;
    assert_eq!(costs(&two, &macs).unwrap()[0].1, 162_000);
    // each precision and each batch is cells of its own: fp32 and bf16 at
    // batches 1 and 3 is 2 x (1 + 3) x 7 x 6 = 336 passes of an image
    let mut axes = plan.clone();
    axes.precision.push(crate::record::Precision::Bf16);
    axes.batch = vec![1, 3];
    assert_eq!(costs(&axes, &macs).unwrap()[0].1, 336_000);
    let mut unknown = plan.clone();
    unknown.models.push("c".into());
    assert!(costs(&unknown, &macs).is_err());
}

/// Each shard gets the workers the partition gives it, in run order,
/// and its share of the expected cost; the shards together hold every
/// worker once and the whole cost.
#[test]
fn each_shard_takes_its_workers_and_its_share() {
    let plan = plan_ab();
    let at = |k: usize, n: usize| {
        let picked = Picked {
            shard: Shard { index: k, count: n },
            source: "test".into(),
        };
        assign(&plan, picked, &macs_ab).unwrap()
    };
    let key = |m: &str, f: &str| (m.to_string(), f.to_string());
    // two heavy workers (a) and two light ones (b) on two shards: one
    // heavy and one light each, the heavy first
    let (one, share1) = at(1, 2);
    let (two, share2) = at(2, 2);
    assert_eq!(one.workers, [key("a", "ort"), key("b", "ort")]);
    assert_eq!(two.workers, [key("a", "torch"), key("b", "torch")]);
    assert_eq!(
        (one.shard, one.source.as_str()),
        (Shard { index: 1, count: 2 }, "test")
    );
    assert!((share1 - 0.5).abs() < 1e-12 && (share2 - 0.5).abs() < 1e-12);
    // three shards: the heavy ones alone, the light ones together
    let shares: Vec<(Vec<(String, String)>, f64)> = (1..=3)
        .map(|k| {
            let (s, share) = at(k, 3);
            (s.workers, share)
        })
        .collect();
    assert_eq!(shares[0].0, [key("a", "ort")]);
    assert_eq!(shares[1].0, [key("a", "torch")]);
    assert_eq!(shares[2].0, [key("b", "ort"), key("b", "torch")]);
    let total: f64 = shares.iter().map(|s| s.1).sum();
    assert!((total - 1.0).abs() < 1e-12, "{total}");
    assert!((shares[2].1 - 2.0 * 882.0 / (2.0 * 126_000.0 + 2.0 * 882.0)).abs() < 1e-12);
    // a plan with no cost has no share to give
    let zero = |_: &str| -> Result<u64> { Ok(0) };
    let picked = Picked {
        shard: Shard { index: 1, count: 2 },
        source: "test".into(),
    };
    assert_eq!(assign(&plan, picked, &zero).unwrap().1, 0.0);
}
