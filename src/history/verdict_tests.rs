//! Tests of `verdict`.

use super::*;
use crate::record::Mode;

/// `n` samples around `centre` ms, log-normal with relative noise `cv`
/// (seeded): a recorded timing series.
fn samples(centre: f64, cv: f64, n: usize, seed: u64) -> Vec<f64> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, LogNormal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let d = LogNormal::new(0.0, cv).unwrap();
    (0..n).map(|_| centre * d.sample(&mut rng)).collect()
}

fn cell(model: &str, mode: Mode, samples: Vec<f64>) -> CellRecord {
    let json = serde_json::json!({
        "model": model, "framework": "ort", "framework_version": "1", "device": "cpu",
        "mode": mode, "optimize": "default", "batch": 1, "size": 128, "warmup": 1,
        "intra_threads": 2, "inter_threads": 1, "params": 0, "macs": 0,
        "ideal_speedup": 1.0, "host": "h",
        "latency": crate::record::stats::summarise(&samples), "samples_ms": samples,
    });
    serde_json::from_value(json).unwrap()
}

/// A cell of five worker processes, 30 samples each (cv 3%), each
/// process off `centre` by its own offset (sd 0.5%), as lock-step runs
/// record them.
fn processes_cell(centre: f64, seed: u64) -> CellRecord {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xabc);
    let offset = Normal::new(0.0, 0.005).unwrap();
    let mut all = Vec::new();
    let (mut process, mut round) = (Vec::new(), Vec::new());
    for k in 0..5 {
        let at = centre * (1.0 + offset.sample(&mut rng));
        all.extend(samples(at, 0.03, 30, seed * 10 + k as u64));
        process.extend([k; 30]);
        round.extend(0..30);
    }
    let mut c = cell("resnet50", Mode::Sequential, all);
    c.sample_process = process;
    c.sample_round = round;
    let records: Vec<_> = (0..5)
        .map(|k| serde_json::json!({"index": k, "slot": k}))
        .collect();
    c.processes = serde_json::from_value(serde_json::Value::Array(records)).unwrap();
    c.summarise();
    c
}

/// Verdicts over cells of several processes: identical runs never
/// regress, and a planted 5% slowdown does (at a 1% threshold: the
/// whole interval must clear it).
#[test]
fn multi_process_cells_identical_runs_hold_and_five_percent_regresses() {
    let p = Params {
        threshold: 0.01,
        ..P
    };
    for seed in 0..20u64 {
        let history: Vec<Vec<CellRecord>> = (0..8)
            .map(|i| vec![processes_cell(40.0, seed * 100 + i)])
            .collect();
        let refs: Vec<&[CellRecord]> = history.iter().map(Vec::as_slice).collect();
        let same = [processes_cell(40.0, seed * 100 + 50)];
        let j = &judge_run(&refs, &same, &p).cells[0];
        assert_ne!(j.verdict, Verdict::Regressed, "seed {seed}: {j:?}");
        assert_ne!(j.verdict, Verdict::Improved, "seed {seed}: {j:?}");
        // the interval is Student's t at 4 degrees of freedom
        assert_eq!((j.basis, j.ratio.z), (Basis::History, 2.776));
        let slower = [processes_cell(42.0, seed * 100 + 60)];
        let j = &judge_run(&refs, &slower, &p).cells[0];
        assert_eq!(j.verdict, Verdict::Regressed, "seed {seed}: {j:?}");
    }
}

const P: Params = Params {
    threshold: 0.05,
    z: 3.0,
    lookback: 10,
};

/// A history of `levels.len()` runs of one cell: run i is 50 samples
/// (cv 3%) around `levels[i]` ms.
fn history(levels: &[f64]) -> Vec<Vec<CellRecord>> {
    levels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            vec![cell(
                "resnet50",
                Mode::Sequential,
                samples(l, 0.03, 50, i as u64),
            )]
        })
        .collect()
}

fn judge_one(levels: &[f64], now: f64) -> Judged {
    let h = history(levels);
    let refs: Vec<&[CellRecord]> = h.iter().map(Vec::as_slice).collect();
    let cur = [cell(
        "resnet50",
        Mode::Sequential,
        samples(now, 0.03, 50, 99),
    )];
    let mut c = judge_run(&refs, &cur, &P);
    assert_eq!(c.cells.len(), 1);
    c.cells.remove(0)
}

/// Run-to-run drift of +-10% around 40 ms (36 to 44 ms; median 40.25,
/// spread 1.4826 x MAD 1.5 = 2.22 ms).
const DRIFT: [f64; 10] = [40.0, 42.5, 37.5, 41.0, 44.0, 39.0, 40.5, 36.0, 42.0, 39.5];

#[test]
fn a_new_run_within_the_drift_is_unchanged_though_beyond_the_threshold() {
    // 44 ms: +9% over the history's median, well beyond 5%, but within
    // the history's own drift
    let j = judge_one(&DRIFT, 44.0);
    assert!((j.spread.unwrap() - 2.22).abs() < 0.3, "{j:?}");
    assert_eq!(j.basis, Basis::History);
    assert_eq!((j.hist_n, j.since_step), (10, false));
    assert_eq!(compare::verdict(&j.ratio, 0.05), Verdict::Regressed);
    assert!(j.z.unwrap() < 3.0, "{j:?}");
    assert_eq!(j.verdict, Verdict::Unchanged, "{j:?}");
    // the single-baseline rule against the last run (39.5 ms) calls it
    let h = history(&DRIFT);
    let last = &h[9][0];
    let cur = cell("resnet50", Mode::Sequential, samples(44.0, 0.03, 50, 99));
    assert_eq!(
        compare::verdict(&compare::time_ratio(&cur, last), 0.05),
        Verdict::Regressed
    );
}

#[test]
fn a_thirty_percent_slowdown_regresses() {
    let j = judge_one(&DRIFT, 40.25 * 1.3);
    assert_eq!(j.verdict, Verdict::Regressed, "{j:?}");
    assert!(j.z.unwrap() > 3.0 && j.ratio.ci.0 > 1.05, "{j:?}");
    let j = judge_one(&DRIFT, 40.25 * 0.7);
    assert_eq!(j.verdict, Verdict::Improved, "{j:?}");
    // one run of the history on a busy machine (twice as slow) does not
    // widen the spread enough to hide it
    let mut busy = DRIFT;
    busy[4] = 80.0;
    let j = judge_one(&busy, 40.25 * 1.3);
    assert_eq!(j.verdict, Verdict::Regressed, "{j:?}");
}

/// A change beyond z spreads but inside the threshold is no regression:
/// both must hold.
#[test]
fn both_the_threshold_and_the_spread_must_be_cleared() {
    let tight = [40.0, 40.1, 39.9, 40.05, 39.95, 40.0];
    let j = judge_one(&tight, 41.2);
    assert!(j.z.unwrap() > 3.0, "{j:?}");
    assert_eq!(j.verdict, Verdict::Unchanged, "{j:?}");
    let j = judge_one(&tight, 46.0);
    assert_eq!(j.verdict, Verdict::Regressed, "{j:?}");
}

/// Runs that agreed closely give a spread near 0; a new run that a burst
/// of load made noisy is judged by its own error too.
#[test]
fn a_noisy_current_run_is_judged_by_its_own_error_too() {
    let tight = [40.0, 40.1, 39.9, 40.05, 39.95, 40.0];
    // median 47.4 ms, standard error 2.5 ms (in log space 2.5 / 47.4)
    let se: f64 = 2.5 / 47.4;
    let noisy = Ratio::new(
        47.4,
        (
            47.4 * (-1.959_964 * se).exp(),
            47.4 * (1.959_964 * se).exp(),
        ),
    );
    let never = || unreachable!("six runs are a history");
    let j = judge("x".into(), &tight, noisy, never, &P);
    assert!(j.ratio.ci.0 > 1.05, "{j:?}");
    assert!((j.current_se - 2.5).abs() < 1e-9, "{j:?}");
    // the same interval from Student's t at 2 degrees of freedom (three
    // processes) holds 4.303 / 1.96 times less error, not the same
    let t = Ratio { z: 4.303, ..noisy };
    let jt = judge("x".into(), &tight, t, never, &P);
    assert!(
        (jt.current_se - 2.5 * 1.959_964 / 4.303).abs() < 1e-9,
        "{jt:?}"
    );
    assert!(j.z.unwrap() > 2.9 && j.z.unwrap() < 3.0, "{j:?}");
    assert_eq!(j.verdict, Verdict::Unchanged);
    // the same median measured precisely regresses
    let precise = Ratio::new(47.4, (47.0, 47.8));
    let j = judge("x".into(), &tight, precise, never, &P);
    assert_eq!(j.verdict, Verdict::Regressed, "{j:?}");
}

#[test]
fn fewer_than_three_runs_fall_back_to_the_last_run() {
    let j = judge_one(&[40.0, 40.0], 44.0);
    assert_eq!(
        (j.basis, j.hist_n, j.spread, j.z),
        (Basis::LastRun, 2, None, None)
    );
    // +10% against the last run, a tight interval: the single-baseline rule
    assert_eq!(j.verdict, Verdict::Regressed, "{j:?}");
    assert!((j.reference - median(&history(&[40.0, 40.0])[1][0].samples_ms)).abs() < 1e-12);
    let j = judge_one(&[40.0], 40.0);
    assert_eq!((j.basis, j.verdict), (Basis::LastRun, Verdict::Unchanged));
}

#[test]
fn the_lookback_keeps_the_latest_runs() {
    // 20 runs: the first ten at 80 ms, the last ten drifting around 40
    let levels: Vec<f64> = [80.0; 10].iter().chain(DRIFT.iter()).copied().collect();
    let j = judge_one(&levels, 41.0);
    assert_eq!((j.hist_n, j.verdict), (10, Verdict::Unchanged), "{j:?}");
    assert!((j.reference - 40.25).abs() < 1.0, "{j:?}");
}

#[test]
fn a_step_in_the_window_starts_it_anew() {
    // six runs at 40 ms, then five at 52: the cell's level is 52 now
    let mut levels = vec![40.0, 40.4, 39.6, 40.2, 39.8, 40.0];
    levels.extend([52.0, 52.5, 51.5, 52.2, 51.8]);
    let j = judge_one(&levels, 52.3);
    assert_eq!((j.hist_n, j.since_step), (5, true), "{j:?}");
    assert_eq!(j.verdict, Verdict::Unchanged, "{j:?}");
    assert!((j.reference - 52.0).abs() < 0.5, "{j:?}");
    // a further 20% on top of the new level regresses
    let j = judge_one(&levels, 52.0 * 1.2);
    assert_eq!(j.verdict, Verdict::Regressed, "{j:?}");
    // a step only two runs old leaves the window whole
    let j = judge_one(&levels[..8], 52.0);
    assert_eq!((j.hist_n, j.since_step), (8, false), "{j:?}");
}

#[test]
fn within_run_ratios_and_unmatched_cells() {
    // parallel/sequential stays at 0.5 through drift of the whole run
    let run = |scale: f64, seed: u64| {
        vec![
            cell(
                "resnet50",
                Mode::Sequential,
                samples(40.0 * scale, 0.02, 50, seed),
            ),
            cell(
                "resnet50",
                Mode::Parallel,
                samples(20.0 * scale, 0.02, 50, seed + 50),
            ),
            cell(
                "scalenet50",
                Mode::Sequential,
                samples(30.0 * scale, 0.02, 50, seed + 100),
            ),
        ]
    };
    let h: Vec<Vec<CellRecord>> = DRIFT
        .iter()
        .enumerate()
        .map(|(i, l)| run(l / 40.0, i as u64))
        .collect();
    let refs: Vec<&[CellRecord]> = h.iter().map(Vec::as_slice).collect();
    let mut cur = run(1.1, 77);
    cur.remove(2);
    cur.push(cell(
        "se_resnet50",
        Mode::Sequential,
        samples(30.0, 0.02, 50, 3),
    ));
    let c = judge_run(&refs, &cur, &P);
    assert_eq!(c.runs, 10);
    assert_eq!(c.within_run.len(), 1);
    let r = &c.within_run[0];
    assert!(r.what.ends_with("parallel/sequential"), "{r:?}");
    assert_eq!(
        (r.basis, r.hist_n, r.verdict),
        (Basis::History, 10, Verdict::Unchanged)
    );
    assert!((r.reference - 0.5).abs() < 0.02, "{r:?}");
    assert_eq!(c.no_history, ["se_resnet50 ort cpu sequential b1 128px"]);
    assert_eq!(c.missing, ["scalenet50 ort cpu sequential b1 128px"]);
    assert_eq!(c.regressions() + c.ratio_regressions(), 0);
    // parallel twice as slow relative to sequential: the ratio regresses
    let mut slow = run(1.0, 88);
    slow[1] = cell("resnet50", Mode::Parallel, samples(40.0, 0.02, 50, 5));
    let c = judge_run(&refs, &slow, &P);
    assert_eq!(c.ratio_regressions(), 1, "{:?}", c.within_run);
}

#[test]
fn spread_and_z_are_robust_statistics() {
    let (c, s) = centre_and_spread(&[1.0, 2.0, 3.0, 4.0, 100.0]);
    // median 3, deviations 2 1 0 1 97 -> MAD 1
    assert_eq!((c, s), (3.0, 1.4826));
    assert_eq!(z_score(5.0, 3.0, 1.0), 2.0);
    assert_eq!(z_score(3.0, 3.0, 0.0), 0.0);
    assert_eq!(z_score(4.0, 3.0, 0.0), 1e9);
    assert_eq!(z_score(2.0, 3.0, 0.0), -1e9);
    let r = Ratio::new(1.2, (1.1, 1.3));
    assert_eq!(verdict(&r, 3.1, &P), Verdict::Regressed);
    assert_eq!(verdict(&r, 3.0, &P), Verdict::Unchanged);
    let r = Ratio::new(0.8, (0.7, 0.9));
    assert_eq!(verdict(&r, -3.1, &P), Verdict::Improved);
    assert_eq!(verdict(&r, 3.1, &P), Verdict::Unchanged);
}
