//! Tests of `across`: the pooling against hand-computed cases, and which
//! runs a speedup is pooled over.

use super::*;
use crate::record::{ScheduleRecord, StageNodes};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn reading(log: f64, se: f64) -> Reading {
    Reading { log, se }
}

/// Pooled log, half-width, quantile and tau of hand-computed cases (the
/// DerSimonian-Laird tau and the Hartung-Knapp interval, worked through
/// by hand and in a separate script).
#[test]
fn pooling_matches_hand_computed_cases() {
    // agreeing runs: no run-to-run spread, the interval is the weights'
    // own error at t(2): 4.303 * 0.01 / sqrt(3)
    let (mu, hw, t, tau) = pool(&[reading(0.1, 0.01); 3]);
    assert!(close(mu, 0.1) && close(tau, 0.0) && close(t, 4.303));
    assert!(close(hw, 0.024_843_382), "{hw}");
    // equal errors 0.005, logs 0, 0.02, 0.04: Q = 32, tau^2 = 30 / 80000
    let (mu, hw, _, tau) = pool(&[
        reading(0.0, 0.005),
        reading(0.02, 0.005),
        reading(0.04, 0.005),
    ]);
    assert!(close(mu, 0.02) && close(tau, 0.019_364_917), "{mu} {tau}");
    assert!(close(hw, 0.049_686_764), "{hw}");
    // unequal errors, where Hartung-Knapp's spread is the wider
    let r = [
        reading(0.0, 0.002),
        reading(0.04, 0.02),
        reading(0.01, 0.01),
    ];
    let (mu, hw, _, tau) = pool(&r);
    assert!(
        close(mu, 0.008_383_473) && close(tau, 0.010_892_695),
        "{mu} {tau}"
    );
    assert!(close(hw, 0.039_838_402), "{hw}");
    // and where the weights' own error is the wider
    let r = [reading(0.0, 0.01), reading(0.01, 0.02), reading(0.05, 0.01)];
    let (mu, hw, _, tau) = pool(&r);
    assert!(
        close(mu, 0.020_888_889) && close(tau, 0.028_722_813),
        "{mu} {tau}"
    );
    assert!(close(hw, 0.078_844_857), "{hw}");
    // the next run: the pooled error, tau and a run's own error (the
    // median se), at the same t: 4.303 * sqrt(0.01^2 / 3 + 0.01^2)
    let r = [reading(0.1, 0.01); 3];
    let (_, hw, t, tau) = pool(&r);
    assert!(close(predict(&r, hw, t, tau), 0.049_686_764));
    // with tau: 4.303 * sqrt(0.0496868^2 / 4.303^2 + 0.0193649^2 + 0.005^2)
    let r = [
        reading(0.0, 0.005),
        reading(0.02, 0.005),
        reading(0.04, 0.005),
    ];
    let (_, hw, t, tau) = pool(&r);
    assert!(
        close(predict(&r, hw, t, tau), 0.099_373_528),
        "{}",
        predict(&r, hw, t, tau)
    );
    // unequal errors: the median one, 0.01
    let r = [
        reading(0.0, 0.002),
        reading(0.04, 0.02),
        reading(0.01, 0.01),
    ];
    let (_, hw, t, tau) = pool(&r);
    assert!(
        close(predict(&r, hw, t, tau), 0.075_070_599),
        "{}",
        predict(&r, hw, t, tau)
    );
    // four runs: t at 3 degrees of freedom
    assert_eq!(pool(&[reading(0.0, 0.01); 4]).2, 3.182);
}

/// `n` samples around `centre` ms (cv 2%, seeded).
fn samples(centre: f64, n: usize, seed: u64) -> Vec<f64> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, LogNormal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let d = LogNormal::new(0.0, 0.02).unwrap();
    (0..n).map(|_| centre * d.sample(&mut rng)).collect()
}

fn cell(mode: Mode, host: &str, samples: Vec<f64>) -> CellRecord {
    let json = serde_json::json!({
        "model": "scalenet50", "framework": "torch", "framework_version": "1", "device": "cpu",
        "mode": mode, "optimize": "default", "batch": 16, "size": 224, "warmup": 1,
        "intra_threads": 2, "inter_threads": 1, "params": 0, "macs": 0,
        "ideal_speedup": 1.1, "host": host,
        "latency": crate::record::stats::summarise(&samples), "samples_ms": samples,
    });
    serde_json::from_value(json).unwrap()
}

/// One run's two cells: a speedup of `speedup` on `host`, the parallel
/// cell having run the schedule named `schedule`.
fn run(speedup: f64, host: &str, schedule: &str, seed: u64) -> Vec<CellRecord> {
    let mut par = cell(Mode::Parallel, host, samples(100.0, 40, seed * 2 + 1));
    let mut s: ScheduleRecord = serde_json::from_value(serde_json::json!({
        "scheduler": "speedbench cost model", "stages": 1, "parallel_stages": [],
        "predicted_ms": 1.0, "predicted_sequential_ms": 1.0, "chosen": "cost model"
    }))
    .unwrap();
    s.ran = vec![StageNodes::Sequential(vec![schedule.to_string()])];
    par.schedule = Some(s);
    vec![
        cell(
            Mode::Sequential,
            host,
            samples(100.0 * speedup, 40, seed * 2),
        ),
        par,
    ]
}

fn pooled(earlier: &[Vec<CellRecord>], current: &[CellRecord], held: bool) -> Vec<Across> {
    let refs: Vec<&[CellRecord]> = earlier.iter().map(Vec::as_slice).collect();
    across(&refs, current, 10, held)
}

#[test]
fn a_speedup_is_pooled_over_the_runs_that_hold_it() {
    let earlier: Vec<_> = (0..3).map(|i| run(1.10, "h", "a", i)).collect();
    let now = run(1.10, "h", "a", 9);
    let a = pooled(&earlier, &now, false);
    assert_eq!(a.len(), 1);
    let a = &a[0];
    assert_eq!(a.what, "scalenet50 torch cpu b16 224px");
    assert_eq!((a.runs, a.values.len(), a.pooled.z), (4, 4, 3.182));
    assert!(close(a.values[3], a.this.value));
    assert!(a.pooled.ci.0 < 1.10 && 1.10 < a.pooled.ci.1, "{a:?}");
    // the next run's interval is about the pooled value, and wider
    assert_eq!((a.next.value, a.next.z), (a.pooled.value, a.pooled.z));
    assert!(
        a.next.ci.0 < a.pooled.ci.0 && a.pooled.ci.1 < a.next.ci.1,
        "{a:?}"
    );
    assert!((a.pooled.value / 1.10 - 1.0).abs() < 0.01, "{a:?}");
    assert!(!a.this_off(), "{a:?}");
    // fewer than two earlier runs: nothing pooled
    assert!(pooled(&earlier[..1], &now, false).is_empty());
    assert_eq!(pooled(&earlier[..2], &now, false)[0].runs, 3);
}

/// A run that lies off the others: its own interval misses the pooled
/// speedup, the run-to-run spread says by how much, and the pooled
/// interval is wider than the run's own.
#[test]
fn a_run_off_the_others_is_seen_as_run_to_run_spread() {
    let earlier: Vec<_> = (0..4).map(|i| run(1.10, "h", "a", i)).collect();
    let now = run(1.20, "h", "a", 9);
    let a = &pooled(&earlier, &now, false)[0];
    assert!(a.this_off(), "{a:?}");
    assert!(a.tau > 0.02 && a.tau < 0.06, "{a:?}");
    assert!(a.pooled.half_width() > a.this.half_width(), "{a:?}");
    assert!(a.pooled.value > 1.10 && a.pooled.value < 1.20, "{a:?}");
    let b = &pooled(&earlier, &run(1.10, "h", "a", 9), false)[0];
    assert!(b.tau < a.tau, "{b:?} {a:?}");
}

/// Runs on another host never count; runs of another schedule count
/// unless the current run held its schedule; the lookback keeps the
/// latest runs.
#[test]
fn which_runs_count() {
    let mut earlier: Vec<_> = (0..3).map(|i| run(1.10, "other", "a", i)).collect();
    let now = run(1.10, "h", "a", 9);
    assert!(pooled(&earlier, &now, false).is_empty());
    earlier.extend((3..5).map(|i| run(1.10, "h", "b", i)));
    assert_eq!(pooled(&earlier, &now, false)[0].runs, 3);
    assert!(pooled(&earlier, &now, true).is_empty());
    earlier.extend((5..7).map(|i| run(1.10, "h", "a", i)));
    assert_eq!(pooled(&earlier, &now, true)[0].runs, 3);
    assert_eq!(pooled(&earlier, &now, false)[0].runs, 5);
    // the lookback: the latest runs, the current one last
    let refs: Vec<&[CellRecord]> = earlier.iter().map(Vec::as_slice).collect();
    let a = &across(&refs, &now, 3, false)[0];
    assert_eq!(a.runs, 3);
    let last = crate::compare::within(&earlier[6][0], &earlier[6][1]).value;
    assert!(close(a.values[1], last));
    // a run in the folder twice, or the current run among the earlier,
    // counts once
    let mut twice = earlier.clone();
    twice.push(earlier[6].clone());
    twice.push(now.clone());
    assert_eq!(pooled(&twice, &now, false)[0].runs, 5);
    // a run without the sequential twin holds no speedup
    let lone = [now[1].clone()];
    assert!(pooled(&earlier, &lone, false).is_empty());
}

/// Runs under the same host name on another CPU (every VM of a class
/// may be called `vm`) never count; a run whose cells record no machine
/// counts by its host name.
#[test]
fn runs_on_another_cpu_of_the_same_host_name_never_count() {
    let on = |cpu: Option<&str>, r: Vec<CellRecord>| -> Vec<CellRecord> {
        r.into_iter()
            .map(|mut c| {
                c.env = cpu.map(|id| crate::record::env::Environment {
                    host: "h".into(),
                    os: "linux x86_64".into(),
                    cpu_model: "AMD EPYC".into(),
                    cpu_id: Some(id.into()),
                    cores: 2,
                    gpu: None,
                    speedbench_version: "0.1.0".into(),
                    git_commit: "x".into(),
                });
                c
            })
            .collect()
    };
    let (zen4, zen3) = (
        "AuthenticAMD family 25 model 17 stepping 0",
        "AuthenticAMD family 25 model 1 stepping 1",
    );
    let now = on(Some(zen4), run(1.10, "h", "a", 9));
    let other: Vec<_> = (0..3)
        .map(|i| on(Some(zen3), run(1.30, "h", "a", i)))
        .collect();
    assert!(pooled(&other, &now, false).is_empty());
    let mine: Vec<_> = (3..5)
        .map(|i| on(Some(zen4), run(1.10, "h", "a", i)))
        .collect();
    let all: Vec<_> = other.iter().chain(&mine).cloned().collect();
    let a = &pooled(&all, &now, false)[0];
    assert_eq!(a.runs, 3);
    assert!(a.pooled.value < 1.15, "{a:?}");
    // files without the machine's record: the host name decides
    let old: Vec<_> = (5..7).map(|i| on(None, run(1.10, "h", "a", i))).collect();
    assert_eq!(pooled(&old, &now, false)[0].runs, 3);
}

/// Runs held for another placement of the cores (`run --placement`)
/// never count: near and far are two speedups, not one.
#[test]
fn runs_held_for_another_placement_never_count() {
    use crate::record::placement::Wanted;
    let held = |w: Wanted, r: Vec<CellRecord>| -> Vec<CellRecord> {
        r.into_iter()
            .map(|mut c| {
                let mut p = crate::record::test_cell(&[&[1.0]], true).processes[0].clone();
                p.placement = w;
                c.processes = vec![p];
                c
            })
            .collect()
    };
    let now = held(Wanted::Near, run(1.05, "h", "a", 9));
    for other in [Wanted::Any, Wanted::Far] {
        let earlier: Vec<_> = (0..3)
            .map(|i| held(other, run(1.40, "h", "a", i)))
            .collect();
        assert!(pooled(&earlier, &now, false).is_empty(), "{other:?}");
    }
    let near: Vec<_> = (3..5)
        .map(|i| held(Wanted::Near, run(1.05, "h", "a", i)))
        .collect();
    assert_eq!(pooled(&near, &now, false)[0].runs, 3);
}

/// This run's interval holds the pooled speedup at its very ends, and
/// misses it just beyond either.
#[test]
fn this_run_is_off_only_beyond_its_interval() {
    let at = |pooled: f64| Across {
        what: String::new(),
        runs: 3,
        this: Ratio {
            value: 1.10,
            ci: (1.08, 1.12),
            z: 2.0,
        },
        values: vec![],
        tau: 0.0,
        pooled: Ratio {
            value: pooled,
            ci: (pooled, pooled),
            z: 4.303,
        },
        next: Ratio {
            value: pooled,
            ci: (pooled, pooled),
            z: 4.303,
        },
    };
    assert!(!at(1.08).this_off() && !at(1.10).this_off() && !at(1.12).this_off());
    assert!(at(1.079).this_off() && at(1.121).this_off() && at(1.20).this_off());
}
