//! Tests of `cell`.

use super::*;

/// A cell of `samples[k]` in process `k`, its samples numbered as
/// rounds where `rounds`.
pub(crate) fn cell(samples: &[&[f64]], rounds: bool) -> CellRecord {
    let flat: Vec<f64> = samples.iter().flat_map(|s| s.iter().copied()).collect();
    let process: Vec<usize> = samples
        .iter()
        .enumerate()
        .flat_map(|(k, s)| std::iter::repeat_n(k, s.len()))
        .collect();
    let round: Vec<usize> = samples.iter().flat_map(|s| 0..s.len()).collect();
    let json = serde_json::json!({
        "model": "m", "framework": "ort", "framework_version": "1", "device": "cpu",
        "mode": "sequential", "batch": 1, "size": 8, "warmup": 1,
        "intra_threads": 1, "inter_threads": 1, "params": 0, "macs": 0,
        "ideal_speedup": 1.0, "host": "h",
        "latency": super::super::stats::summarise(&flat), "samples_ms": flat,
        "sample_process": process,
        "sample_round": if rounds { round } else { vec![] },
        "processes": (0..samples.len())
            .map(|k| serde_json::json!({"index": k, "slot": k}))
            .collect::<Vec<_>>(),
    });
    serde_json::from_value(json).unwrap()
}

/// Pairs are the samples of one process and round: a drift that moves
/// both cells of a round alike cancels, whatever it does to the medians.
#[test]
fn lock_step_pairs_cancel_the_drift() {
    // the machine slows down round by round; b is always 10% faster
    let a: Vec<f64> = (0..8).map(|r| 10.0 * (1.0 + 0.2 * r as f64)).collect();
    let b: Vec<f64> = a.iter().map(|x| x / 1.1).collect();
    let (ca, cb) = (cell(&[&a], true), cell(&[&b], true));
    let r = paired(&ca, &cb).unwrap();
    assert!((r.value - 1.1).abs() < 1e-12, "{r:?}");
    assert!(r.half_width() < 1e-9, "{r:?}");
    // the same ratio through `contrast` (a speedup, an A/A ratio)
    assert_eq!(contrast(&[(&ca, 0, 1.0), (&cb, 0, -1.0)], 1), r);
    // without rounds (a file from before lock-step): the medians' ratio
    // with an interval the drift widens
    let (ua, ub) = (cell(&[&a], false), cell(&[&b], false));
    assert!(paired(&ua, &ub).is_none());
    let u = contrast(&[(&ua, 0, 1.0), (&ub, 0, -1.0)], 1);
    assert!(u.half_width() > 0.05, "{u:?}");
    // cells of different runs are never paired by round
    let across = contrast(&[(&ca, 0, 1.0), (&cb, 1, -1.0)], 1);
    assert!(across.half_width() > 0.05, "{across:?}");
}

/// A round missing from one cell (a pass not timed) drops out of the
/// pairs; the others keep their partners.
#[test]
fn pairs_match_process_and_round_not_position() {
    let a = cell(&[&[10.0, 20.0, 30.0], &[40.0, 50.0]], true);
    let mut b = cell(&[&[5.0, 10.0, 15.0], &[20.0, 25.0]], true);
    // b lost process 0's round 1
    b.samples_ms.remove(1);
    b.sample_process.remove(1);
    b.sample_round.remove(1);
    let logs = paired_logs(&a, &b).unwrap();
    assert_eq!(logs.len(), 4);
    assert!(logs.iter().all(|(_, d)| (d - 2f64.ln()).abs() < 1e-12));
    assert_eq!(
        logs.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        [0, 0, 1, 1]
    );
}

/// With several processes the interval holds each process's own offset:
/// two processes whose pairs agree closely inside each but differ from
/// each other by 4% give an interval at least as wide as that, and a
/// value between them.
#[test]
fn a_process_offset_widens_the_paired_interval() {
    let base = [10.0, 10.5, 9.8, 10.2, 10.1, 9.9];
    let p0: Vec<f64> = base.iter().map(|x| x * 1.02).collect();
    let p1: Vec<f64> = base.iter().map(|x| x * 0.98).collect();
    let a = cell(&[&p0, &p1], true);
    let b = cell(&[&base, &base], true);
    let r = paired(&a, &b).unwrap();
    assert!((r.value - (1.02f64 * 0.98).sqrt()).abs() < 1e-12, "{r:?}");
    // t(1) = 12.706 over the two process means
    assert_eq!(r.z, 12.706);
    assert!(r.ci.0 < 0.98 && r.ci.1 > 1.02, "{r:?}");
    // one process: the pairs alone
    let one = paired(&cell(&[&p0], true), &cell(&[&base], true)).unwrap();
    assert!((one.value - 1.02).abs() < 1e-12 && one.half_width() < 1e-9);
}

/// Cells of one run are paired by process index: a process lost to a
/// failure in one cell leaves the others' pairs as they were, instead of
/// shifting every later process onto the wrong partner.
#[test]
fn processes_pair_by_index_after_a_failed_process() {
    // process k of a is 10 * 2^k ms; of b 5 * 2^k ms: every pair 2x
    let a = cell(&[&[10.0, 10.0], &[20.0, 20.0], &[40.0, 40.0]], false);
    let mut b = cell(&[&[5.0, 5.0], &[10.0, 10.0], &[20.0, 20.0]], false);
    // b's process 1 failed: its samples are gone
    b.drop_process(1);
    let r = contrast(&[(&a, 0, 1.0), (&b, 0, -1.0)], 1);
    assert!((r.value - 2.0).abs() < 1e-12, "{r:?}");
    assert!(
        (r.ci.0 - 2.0).abs() < 1e-9 && (r.ci.1 - 2.0).abs() < 1e-9,
        "{r:?}"
    );
}

#[test]
fn rounds_follow_the_samples_through_drop_and_absorb() {
    let mut a = cell(&[&[1.0, 2.0], &[3.0, 4.0, 5.0]], true);
    a.drop_process(0);
    assert_eq!(a.samples_ms, [3.0, 4.0, 5.0]);
    assert_eq!(a.sample_round, [0, 1, 2]);
    let mut b = cell(&[&[7.0]], true);
    b.sample_process = vec![2];
    b.processes[0].index = 2;
    a.absorb(b);
    assert_eq!(a.rounds(), Some(&[0, 1, 2, 0][..]));
    // a part without rounds: nothing can be paired by round any more
    let mut c = cell(&[&[9.0]], false);
    c.sample_process = vec![3];
    c.processes[0].index = 3;
    a.absorb(c);
    assert_eq!(a.rounds(), None);
}
