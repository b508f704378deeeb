//! The regression verdict on recorded sample sets, through the real CLI:
//! each case asserts the verdict and the exit code.

mod common;

use common::{cell, run_file, samples, speedbench};
use speedbench::record::CellRecord;
use speedbench::record::Mode::{Parallel, Sequential};
use speedbench::record::Optimize;

fn compare(base: Vec<f64>, cur: Vec<f64>, extra: &[&str]) -> (i32, serde_json::Value) {
    compare_cells_with(
        cell("resnet50", "ort", Sequential, 1, base),
        cell("resnet50", "ort", Sequential, 1, cur),
        extra,
    )
}

/// `compare --format json` of two one-cell files, with `extra` flags.
fn compare_cells_with(
    base: CellRecord,
    cur: CellRecord,
    extra: &[&str],
) -> (i32, serde_json::Value) {
    let t = tempfile::tempdir().unwrap();
    let (b, c) = (t.path().join("base.json"), t.path().join("cur.json"));
    run_file(vec![base]).save(&b).unwrap();
    run_file(vec![cur]).save(&c).unwrap();
    let mut args = vec![
        "compare",
        b.to_str().unwrap(),
        c.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = speedbench(&args);
    assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
    (out.code, serde_json::from_str(&out.stdout).unwrap())
}

fn verdict(v: &serde_json::Value) -> &str {
    v["cells"][0]["verdict"].as_str().unwrap()
}

#[test]
fn identical_distributions_are_unchanged() {
    let s = samples(40.0, 0.05, 100, 1);
    let (code, v) = compare(s.clone(), s, &[]);
    assert_eq!((code, verdict(&v)), (0, "unchanged"));
}

#[test]
fn two_independent_draws_of_the_same_noise_are_unchanged() {
    let (code, v) = compare(
        samples(40.0, 0.08, 100, 1),
        samples(40.0, 0.08, 100, 2),
        &[],
    );
    assert_eq!((code, verdict(&v)), (0, "unchanged"));
}

#[test]
fn a_two_percent_shift_inside_the_noise_is_unchanged() {
    let (code, v) = compare(
        samples(40.0, 0.05, 100, 3),
        samples(40.8, 0.05, 100, 4),
        &[],
    );
    assert_eq!((code, verdict(&v)), (0, "unchanged"));
}

#[test]
fn a_clear_ten_percent_slowdown_regresses_with_exit_1() {
    let (code, v) = compare(
        samples(40.0, 0.02, 100, 5),
        samples(44.0, 0.02, 100, 6),
        &[],
    );
    assert_eq!((code, verdict(&v)), (1, "regressed"));
    let ci = &v["cells"][0]["ratio"]["ci"];
    assert!(ci[0].as_f64().unwrap() > 1.05, "{ci}");
}

#[test]
fn a_ten_percent_speedup_is_improved_with_exit_0() {
    let (code, v) = compare(
        samples(40.0, 0.02, 100, 7),
        samples(36.0, 0.02, 100, 8),
        &[],
    );
    assert_eq!((code, verdict(&v)), (0, "improved"));
}

#[test]
fn heavy_outliers_do_not_fake_a_regression() {
    let mut cur = samples(40.0, 0.03, 100, 10);
    for i in (0..100).step_by(9) {
        cur[i] *= 10.0; // 12 samples ten times slower: a busy neighbour
    }
    let (code, v) = compare(samples(40.0, 0.03, 100, 9), cur, &[]);
    assert_eq!((code, verdict(&v)), (0, "unchanged"));
}

#[test]
fn a_slowdown_smaller_than_the_threshold_is_not_a_regression() {
    // 4% slower and very precise: significant, but under the 5% threshold.
    let (code, v) = compare(
        samples(40.0, 0.005, 200, 11),
        samples(41.6, 0.005, 200, 12),
        &[],
    );
    assert_eq!((code, verdict(&v)), (0, "unchanged"));
    // the same change with a 2% threshold counts
    let (code, v) = compare(
        samples(40.0, 0.005, 200, 11),
        samples(41.6, 0.005, 200, 12),
        &["--threshold", "2"],
    );
    assert_eq!((code, verdict(&v)), (1, "regressed"));
}

#[test]
fn cells_on_one_side_only_are_listed_not_errors() {
    let t = tempfile::tempdir().unwrap();
    let b = t.path().join("base.json");
    let c = t.path().join("cur.json");
    let s = || samples(40.0, 0.03, 50, 13);
    run_file(vec![
        cell("resnet50", "ort", Sequential, 1, s()),
        cell("scalenet50", "ort", Sequential, 1, s()),
    ])
    .save(&b)
    .unwrap();
    run_file(vec![
        cell("resnet50", "ort", Sequential, 1, s()),
        cell("resnet50", "torch", Sequential, 1, s()),
    ])
    .save(&c)
    .unwrap();
    let out = speedbench(&[
        "compare",
        b.to_str().unwrap(),
        c.to_str().unwrap(),
        "--format",
        "md",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("Only in the baseline: scalenet50 ort cpu sequential b1 128px."),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Only in the current run: resnet50 torch cpu sequential b1 128px."),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("| resnet50 ort cpu sequential b1 128px |"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_tuned_run_is_never_compared_with_an_untuned_baseline() {
    let t = tempfile::tempdir().unwrap();
    let b = t.path().join("base.json");
    let c = t.path().join("cur.json");
    let s = || samples(40.0, 0.03, 50, 13);
    run_file(vec![cell("resnet50", "ort", Sequential, 1, s())])
        .save(&b)
        .unwrap();
    let tuned = |model: &str| CellRecord {
        optimize: Optimize::Max,
        ..cell(model, "ort", Sequential, 1, samples(20.0, 0.03, 50, 14))
    };
    run_file(vec![tuned("resnet50")]).save(&c).unwrap();
    let (bs, cs) = (b.to_str().unwrap(), c.to_str().unwrap());
    // nothing in common: exit 2, saying why
    let out = speedbench(&["compare", bs, cs]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("at --optimize default and")
            && out.stderr.contains("at --optimize max"),
        "{}",
        out.stderr
    );
    // a current run holding both levels: only the default cell is compared,
    // the tuned one is listed with its level, not set against the baseline
    run_file(vec![
        cell("resnet50", "ort", Sequential, 1, s()),
        tuned("resnet50"),
    ])
    .save(&c)
    .unwrap();
    let out = speedbench(&["compare", bs, cs, "--format", "md"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(
            "Only in the current run: resnet50 ort cpu sequential b1 128px --optimize max."
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("0 regressed, 0 improved, 1 unchanged"));
}

#[test]
fn within_run_ratios_are_compared_too() {
    let t = tempfile::tempdir().unwrap();
    let b = t.path().join("base.json");
    let c = t.path().join("cur.json");
    // the whole current run is 30% slower (a slower runner), but parallel
    // keeps its share: times regress, the parallel/sequential ratio does not
    run_file(vec![
        cell(
            "resnet50",
            "ort",
            Sequential,
            1,
            samples(40.0, 0.02, 100, 14),
        ),
        cell("resnet50", "ort", Parallel, 1, samples(50.0, 0.02, 100, 15)),
    ])
    .save(&b)
    .unwrap();
    run_file(vec![
        cell(
            "resnet50",
            "ort",
            Sequential,
            1,
            samples(52.0, 0.02, 100, 16),
        ),
        cell("resnet50", "ort", Parallel, 1, samples(65.0, 0.02, 100, 17)),
    ])
    .save(&c)
    .unwrap();
    let args = |gate: &'static str| {
        vec![
            "compare".to_string(),
            b.to_str().unwrap().into(),
            c.to_str().unwrap().into(),
            "--format".into(),
            "json".into(),
            "--gate".into(),
            gate.into(),
        ]
    };
    let run = |gate| {
        let a = args(gate);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        speedbench(&a)
    };
    let times = run("times");
    assert_eq!(times.code, 1);
    let v: serde_json::Value = serde_json::from_str(&times.stdout).unwrap();
    assert_eq!(v["within_run"][0]["verdict"], "unchanged", "{v}");
    assert_eq!(run("ratios").code, 0);
}

#[test]
fn unusable_input_exits_2() {
    let t = tempfile::tempdir().unwrap();
    let good = t.path().join("good.json");
    run_file(vec![cell(
        "resnet50",
        "ort",
        Sequential,
        1,
        samples(40.0, 0.02, 10, 1),
    )])
    .save(&good)
    .unwrap();
    let g = good.to_str().unwrap();
    let bad = t.path().join("bad.json");
    std::fs::write(&bad, "{\"schema_version\": 1, \"cells\": [").unwrap();
    let b = bad.to_str().unwrap();
    for (args, needle) in [
        (vec!["compare", g, b], "not a results JSON file"),
        (
            vec!["compare", g, "/nonexistent.json"],
            "cannot read results",
        ),
        (vec!["compare", g, g, "--threshold", "200"], "--threshold"),
    ] {
        let out = speedbench(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
    let future = t.path().join("future.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();
    v["schema_version"] = 2.into();
    std::fs::write(&future, v.to_string()).unwrap();
    let out = speedbench(&["compare", g, future.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("newer than this speedbench understands"),
        "{}",
        out.stderr
    );
    let empty = t.path().join("other.json");
    run_file(vec![cell(
        "scalenet50",
        "ort",
        Sequential,
        1,
        samples(40.0, 0.02, 10, 1),
    )])
    .save(&empty)
    .unwrap();
    let out = speedbench(&["compare", g, empty.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no cell in common"), "{}", out.stderr);
}

/// A within-run ratio: (current parallel / sequential) over the
/// baseline's, each a ratio of medians; and a framework over the first.
#[test]
fn within_run_ratios_are_ratios_of_ratios_of_medians() {
    let flat = |ms: f64| vec![ms; 20];
    let base = [
        cell("resnet50", "ort", Sequential, 1, flat(40.0)),
        cell("resnet50", "ort", Parallel, 1, flat(20.0)),
        cell("resnet50", "torch", Sequential, 1, flat(80.0)),
    ];
    let cur = [
        cell("resnet50", "ort", Sequential, 1, flat(40.0)),
        cell("resnet50", "ort", Parallel, 1, flat(10.0)),
        cell("resnet50", "torch", Sequential, 1, flat(60.0)),
    ];
    let c = speedbench::compare::compare(&base, &cur, 0.05);
    let find = |what: &str| {
        c.within_run
            .iter()
            .find(|x| x.what.ends_with(what))
            .unwrap_or_else(|| panic!("no {what} in {:?}", c.within_run))
    };
    let par = find("parallel/sequential");
    assert_eq!(
        (par.baseline, par.current, par.ratio.value),
        (0.5, 0.25, 0.5)
    );
    assert_eq!(par.verdict, speedbench::compare::Verdict::Improved);
    let fw = find("torch/ort");
    assert_eq!((fw.baseline, fw.current, fw.ratio.value), (2.0, 1.5, 0.75));
    assert_eq!(c.within_run.len(), 2);
    // the cells themselves: ort parallel twice as fast, the others
    assert_eq!(c.regressions(), 0);
    assert!(c.only_in_baseline.is_empty() && c.only_in_current.is_empty());
}

/// Framework ratios are over the first framework the run has (in report
/// order), not over one it lacks.
#[test]
fn framework_ratios_are_over_the_first_framework_present() {
    let flat = |ms: f64| vec![ms; 20];
    let run = [
        cell("resnet50", "torch", Sequential, 1, flat(40.0)),
        cell("resnet50", "tf", Sequential, 1, flat(80.0)),
    ];
    let c = speedbench::compare::compare(&run, &run, 0.05);
    let whats: Vec<&str> = c.within_run.iter().map(|x| x.what.as_str()).collect();
    assert_eq!(whats, ["resnet50 sequential cpu b1 128px: tf/torch"]);
    assert_eq!(c.within_run[0].current, 2.0);
}

/// The comparison as grids: the times and the within-run ratios, each with
/// its header and one row per change.
#[test]
fn comparison_grids_have_their_columns() {
    let flat = |ms: f64| vec![ms; 20];
    let base = [
        cell("resnet50", "ort", Sequential, 1, flat(40.0)),
        cell("resnet50", "ort", Parallel, 1, flat(20.0)),
    ];
    let cur = [
        cell("resnet50", "ort", Sequential, 1, flat(40.0)),
        cell("resnet50", "ort", Parallel, 1, flat(30.0)),
    ];
    let c = speedbench::compare::compare(&base, &cur, 0.05);
    let g = speedbench::report::comparison::grids(&c);
    assert_eq!(g.len(), 2);
    let cols = ["baseline", "current", "change", "95% CI", "verdict"];
    assert_eq!(g[0].header[0], "cell");
    assert_eq!(g[0].header[1..], cols);
    assert_eq!(g[1].header[0], "ratio");
    assert_eq!(g[1].header[1..], cols);
    // the parallel cell: 20 -> 30 ms, +50%, regressed
    let row = g[0]
        .rows
        .iter()
        .find(|r| r[0].contains("parallel"))
        .unwrap();
    assert_eq!(
        row[1..],
        [
            "20.000 ms",
            "30.000 ms",
            "+50.0%",
            "[+50.0%, +50.0%]",
            "REGRESSED"
        ]
    );
    assert!(g[0].notes[0].starts_with("1 regressed, 0 improved, 1 unchanged at a 5% threshold"));
    assert_eq!(g[1].notes, ["1 of 1 ratios moved beyond the threshold."]);
}

/// A parallel cell that ran another of speedbench's schedules than the
/// baseline's is named in a note; one that ran the same, or a framework's
/// own executor (no stored schedule), is not.
#[test]
fn a_cell_on_another_schedule_than_the_baselines_is_named() {
    use speedbench::record::{ScheduleRecord, StageNodes};
    let ran = |nodes: &[&str]| -> Option<ScheduleRecord> {
        let mut s: ScheduleRecord = serde_json::from_value(serde_json::json!({
            "scheduler": "speedbench cost model", "stages": 1, "parallel_stages": [],
            "predicted_ms": 1.0, "predicted_sequential_ms": 1.0, "chosen": "cost model"
        }))
        .unwrap();
        s.ran = vec![StageNodes::Sequential(
            nodes.iter().map(|n| n.to_string()).collect(),
        )];
        s.ran
            .retain(|st| !matches!(st, StageNodes::Sequential(n) if n.is_empty()));
        Some(s)
    };
    let run = |torch: &[&str], ort: &[&str], own: &[&str]| {
        let mut cells = [
            cell("resnet50", "torch", Parallel, 1, vec![20.0; 20]),
            cell("resnet50", "ort", Parallel, 1, vec![20.0; 20]),
            cell("resnet50", "ort-own", Parallel, 1, vec![20.0; 20]),
        ];
        for (c, nodes) in cells.iter_mut().zip([torch, ort, own]) {
            c.schedule = ran(nodes);
        }
        cells
    };
    let base = run(&["a", "b"], &["a", "b"], &[]);
    let cur = run(&["b", "a"], &["a", "b"], &[]);
    let c = speedbench::compare::compare(&base, &cur, 0.05);
    assert_eq!(c.other_schedule, ["resnet50 torch cpu parallel b1 128px"]);
    let g = speedbench::report::comparison::grids(&c);
    let note = g[0]
        .notes
        .iter()
        .find(|n| n.starts_with("Another schedule"))
        .unwrap();
    assert_eq!(
        note,
        "Another schedule than the baseline's: resnet50 torch cpu parallel b1 128px (each run calibrated its own; `run --schedules-from` the baseline holds its schedules, so a change is the runtime's)."
    );
    // the same schedules, or none stored on one side: no note
    let c = speedbench::compare::compare(&base, &base, 0.05);
    assert!(c.other_schedule.is_empty());
    let none = run(&[], &[], &[]);
    assert!(speedbench::compare::compare(&base, &none, 0.05)
        .other_schedule
        .is_empty());
    assert!(speedbench::compare::compare(&none, &cur, 0.05)
        .other_schedule
        .is_empty());
    let g =
        speedbench::report::comparison::grids(&speedbench::compare::compare(&base, &base, 0.05));
    assert!(!g[0].notes.iter().any(|n| n.starts_with("Another schedule")));
}

/// A history folder of runs of one cell, run i started at minute i and
/// measured around `levels[i]` ms (50 samples, 3% noise).
fn history_folder(levels: &[f64]) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for (i, &l) in levels.iter().enumerate() {
        let mut r = run_file(vec![cell(
            "resnet50",
            "ort",
            Sequential,
            1,
            samples(l, 0.03, 50, 100 + i as u64),
        )]);
        r.started = format!("2026-11-26T10:{i:02}:00+00:00");
        r.save(&t.path().join(format!("run-{i:02}.json"))).unwrap();
    }
    t
}

/// A current run around `level` ms, started after the folder's runs.
fn current_run(dir: &std::path::Path, level: f64, minute: usize) -> std::path::PathBuf {
    let mut r = run_file(vec![cell(
        "resnet50",
        "ort",
        Sequential,
        1,
        samples(level, 0.03, 50, 7),
    )]);
    r.started = format!("2026-11-26T10:{minute:02}:30+00:00");
    let p = dir.join(format!("current-{minute}.json"));
    r.save(&p).unwrap();
    p
}

/// Markdown with its column padding squeezed out.
fn squash(md: &str) -> String {
    md.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// +-10% drift around 40 ms.
const DRIFT: [f64; 8] = [40.0, 42.5, 37.5, 41.0, 44.0, 39.0, 36.0, 39.5];

#[test]
fn compare_history_knows_the_drift_and_catches_a_real_slowdown() {
    let h = history_folder(&DRIFT);
    let d = h.path().to_str().unwrap();
    // a run of --trace beside the results is not a results file
    std::fs::write(h.path().join("run-07.trace.json"), "{\"traceEvents\": []}").unwrap();
    let out = tempfile::tempdir().unwrap();
    // 44 ms: +10% over the history, within its drift
    let cur = current_run(out.path(), 44.0, 59);
    let c = cur.to_str().unwrap();
    let r = speedbench(&["compare", "--history", d, c, "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let cell = &v["cells"][0];
    assert_eq!(cell["verdict"], "unchanged", "{v}");
    assert_eq!(
        (cell["basis"].as_str(), cell["hist_n"].as_u64()),
        (Some("history"), Some(8))
    );
    assert!(cell["z"].as_f64().unwrap() < 3.0, "{v}");
    assert_eq!(v["runs"], 8);
    // the single-baseline rule against the last run calls it a regression
    let last = h.path().join("run-07.json");
    assert_eq!(speedbench(&["compare", last.to_str().unwrap(), c]).code, 1);
    // 30% slower: regressed, exit 1; the table has the history's columns
    let slow = current_run(out.path(), 52.0, 58);
    let r = speedbench(&[
        "compare",
        "--history",
        d,
        slow.to_str().unwrap(),
        "--format",
        "md",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let md = squash(&r.stdout);
    assert!(
        md.contains("| hist n | hist spread | z | verdict |"),
        "{md}"
    );
    assert!(md.contains("| REGRESSED |"), "{md}");
    assert!(
        r.stdout.contains("1 regressed, 0 improved, 0 unchanged"),
        "{}",
        r.stdout
    );
    // a run started before some of the folder's: only the earlier ones count
    let early = current_run(out.path(), 44.0, 3);
    let r = speedbench(&[
        "compare",
        "--history",
        d,
        early.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(r.stderr.contains("4 run(s) of"), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["runs"], 4, "{v}");
}

#[test]
fn compare_history_with_fewer_than_three_runs_falls_back_and_says_so() {
    let h = history_folder(&[40.0, 40.0]);
    let out = tempfile::tempdir().unwrap();
    let cur = current_run(out.path(), 44.0, 59);
    let args = [
        "compare",
        "--history",
        h.path().to_str().unwrap(),
        cur.to_str().unwrap(),
    ];
    let r = speedbench(&[&args[..], &["--format", "md"]].concat());
    // +10% with a tight interval: the single-baseline rule regresses it
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        squash(&r.stdout).contains("| 2 (last run) | - | - | REGRESSED |"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "Fewer than 3 runs in the history for every one: judged against the last run alone"
        ),
        "{}",
        r.stdout
    );
    let r = speedbench(&[&args[..], &["--format", "json"]].concat());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["cells"][0]["basis"], "last_run");
    assert!(v["cells"][0]["z"].is_null());
}

#[test]
fn compare_history_append_keeps_the_folder() {
    let h = history_folder(&DRIFT[..3]);
    let d = h.path().to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cur = current_run(out.path(), 40.0, 59);
    let c = cur.to_str().unwrap();
    let r = speedbench(&["compare", "--history", d, c, "--append"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let copied = h.path().join("current-59.json");
    assert!(r.stderr.contains("appended: "), "{}", r.stderr);
    assert_eq!(
        std::fs::read(&copied).unwrap(),
        std::fs::read(&cur).unwrap()
    );
    // the run is in the folder now: not judged against itself, not copied twice
    let r = speedbench(&[
        "compare",
        "--history",
        d,
        copied.to_str().unwrap(),
        "--append",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("holds this run already"), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["runs"], 3);
    assert_eq!(std::fs::read_dir(h.path()).unwrap().count(), 4);
    // --append and --lookback need --history
    let r = speedbench(&["compare", c, c, "--append"]);
    assert_eq!(r.code, 2);
}

#[test]
fn compare_history_refuses_unusable_input_with_exit_2() {
    let out = tempfile::tempdir().unwrap();
    let cur = current_run(out.path(), 40.0, 59);
    let c = cur.to_str().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let e = empty.path().to_str().unwrap();
    let h = history_folder(&DRIFT[..4]);
    let d = h.path().to_str().unwrap();
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("run-02.json"), "{\"schema_version\": 1,").unwrap();
    let other = tempfile::tempdir().unwrap();
    run_file(vec![cell(
        "scalenet50",
        "ort",
        Sequential,
        1,
        samples(40.0, 0.02, 10, 1),
    )])
    .save(&other.path().join("a.json"))
    .unwrap();
    for (args, needles) in [
        (
            vec!["compare", "--history", e, c],
            vec![e, "holds no results file"],
        ),
        (
            vec!["compare", "--history", broken.path().to_str().unwrap(), c],
            vec!["holds no results file"],
        ),
        (
            vec!["compare", "--history", "/nonexistent-dir", c],
            vec!["/nonexistent-dir", "cannot read the history folder"],
        ),
        (
            vec!["compare", "--history", other.path().to_str().unwrap(), c],
            vec!["no cell in common"],
        ),
        (
            vec!["compare", "--history", d, c, c],
            vec!["give one CURRENT.json"],
        ),
        (vec!["compare", c], vec!["give BASELINE.json CURRENT.json"]),
        (
            vec!["compare", "--history", d, c, "--lookback", "2"],
            vec!["--lookback"],
        ),
        (vec!["compare", "--history", d, c, "--z", "0"], vec!["--z"]),
        (
            vec!["compare", "--history", d, c, "--threshold", "150"],
            vec!["--threshold"],
        ),
    ] {
        let r = speedbench(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        let errors = r.stderr.lines().filter(|l| !l.starts_with("warning: "));
        assert_eq!(errors.count(), 1, "{args:?}: {}", r.stderr);
        for n in needles {
            assert!(r.stderr.contains(n), "{args:?}: {}", r.stderr);
        }
    }
}

/// One failed save (an empty or cut file) or another tool's JSON in the
/// folder is skipped with a warning naming it; the other runs still judge.
#[test]
fn history_skips_a_file_that_is_not_a_results_file() {
    let h = history_folder(&DRIFT[..4]);
    let d = h.path().to_str().unwrap();
    std::fs::write(h.path().join("20261126-cut.json"), "").unwrap();
    std::fs::write(h.path().join("run-02.json"), "{\"schema_version\": 1,").unwrap();
    std::fs::write(h.path().join("package.json"), "{\"name\": \"x\"}").unwrap();
    let out = tempfile::tempdir().unwrap();
    let cur = current_run(out.path(), 40.0, 59);
    let r = speedbench(&[
        "compare",
        "--history",
        d,
        cur.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["runs"], 3, "run-02 is skipped");
    for name in ["20261126-cut.json", "run-02.json", "package.json"] {
        let line = r
            .stderr
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no warning names {name}: {}", r.stderr));
        assert!(
            line.starts_with("warning: ") && line.ends_with("; skipped"),
            "{line}"
        );
    }
    let r = speedbench(&["report", "--history", d, "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr.matches("; skipped").count(), 3, "{}", r.stderr);
}

#[test]
fn report_history_marks_a_step_not_an_outlier() {
    // eight runs at 40 ms, then six at 52 (a step at run 9); run 4 an outlier
    let mut levels = vec![40.0, 40.8, 39.4, 56.0, 40.3, 39.7, 40.1, 40.5];
    levels.extend([52.0, 52.6, 51.4, 52.2, 51.8, 52.3]);
    let h = history_folder(&levels);
    let d = h.path().to_str().unwrap();
    let r = speedbench(&["report", "--history", d, "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let steps = v.as_array().unwrap();
    assert_eq!(steps.len(), 1, "{v}");
    assert_eq!(steps[0]["run"], 9);
    assert_eq!(steps[0]["started"], "2026-11-26T10:08:00+00:00");
    assert!(
        (steps[0]["change"].as_f64().unwrap() - 0.3).abs() < 0.03,
        "{v}"
    );
    let r = speedbench(&["report", "--history", d, "--format", "md"]);
    assert!(
        squash(&r.stdout).contains("| resnet50 ort cpu sequential b1 128px | 9 |"),
        "{}",
        r.stdout
    );
    let r = speedbench(&["report", "--history", d, "--format", "svg"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let label = format!("+{:.0}%", steps[0]["change"].as_f64().unwrap() * 100.0);
    assert!(r.stdout.contains(&label), "the step's label {label}");
    assert!(
        r.stderr
            .contains("step: resnet50 ort cpu sequential b1 128px at run 9"),
        "{}",
        r.stderr
    );
}

fn compare_cells(base: CellRecord, cur: CellRecord) -> (i32, serde_json::Value) {
    compare_cells_with(base, cur, &[])
}

/// Processes that each sit at their own level (what a process's memory
/// layout and thread placement do) with tight iterations inside: pooled
/// as if they were one process, a second run 8% off looks REGRESSED; over
/// the processes, the difference is within their 6% spread.
#[test]
fn between_process_spread_keeps_a_shift_inside_it_unchanged() {
    let procs = |levels: &[f64], seed: u64| -> Vec<Vec<f64>> {
        levels
            .iter()
            .enumerate()
            .map(|(i, &l)| samples(l, 0.002, 40, seed + i as u64))
            .collect()
    };
    let base = procs(&[100.0, 106.0, 112.0], 1);
    let cur = procs(&[108.0, 114.48, 120.96], 7);
    let pooled = |p: &Vec<Vec<f64>>| cell("resnet50", "ort", Sequential, 1, p.concat());
    let (code, v) = compare_cells(pooled(&base), pooled(&cur));
    assert_eq!((code, verdict(&v)), (1, "regressed"), "{v}");
    let (code, v) = compare_cells(
        common::cell_in_processes("resnet50", "ort", Sequential, base, &[]),
        common::cell_in_processes("resnet50", "ort", Sequential, cur, &[]),
    );
    assert_eq!((code, verdict(&v)), (0, "unchanged"), "{v}");
}

/// A cell timed beside another process's load is neither regressed nor
/// improved, however far it moved; exit 0.
#[test]
fn a_busy_cell_is_inconclusive_never_regressed() {
    let base = vec![samples(100.0, 0.01, 50, 1), samples(100.0, 0.01, 50, 2)];
    let slow = vec![samples(150.0, 0.01, 50, 3), samples(150.0, 0.01, 50, 4)];
    let idle = common::cell_in_processes("resnet50", "ort", Sequential, base.clone(), &[0.0, 0.0]);
    let busy = common::cell_in_processes("resnet50", "ort", Sequential, slow.clone(), &[0.0, 1.0]);
    let (code, v) = compare_cells(idle.clone(), busy);
    assert_eq!((code, verdict(&v)), (0, "inconclusive"), "{v}");
    // the same slowdown on an idle machine regresses
    let calm = common::cell_in_processes("resnet50", "ort", Sequential, slow, &[0.1, 0.2]);
    let (code, v) = compare_cells(idle, calm);
    assert_eq!((code, verdict(&v)), (1, "regressed"), "{v}");
    // a busy baseline makes it inconclusive too
    let b = common::cell_in_processes("resnet50", "ort", Sequential, base.clone(), &[0.9]);
    let i = common::cell_in_processes("resnet50", "ort", Sequential, base, &[]);
    let (_, v) = compare_cells(b, i);
    assert_eq!(verdict(&v), "inconclusive", "{v}");
}

/// A folder of runs of one speedup (ScaleNet-50 in libtorch, the
/// sequential cell `speedup` times the parallel one), run i started at
/// minute i; the current run last, at minute 59.
fn speedup_folder(speedups: &[f64]) -> (tempfile::TempDir, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let mut last = None;
    for (i, &s) in speedups.iter().enumerate() {
        let seed = 200 + 2 * i as u64;
        let mut r = run_file(vec![
            cell(
                "scalenet50",
                "torch",
                Sequential,
                1,
                samples(50.0 * s, 0.02, 40, seed),
            ),
            cell(
                "scalenet50",
                "torch",
                Parallel,
                1,
                samples(50.0, 0.02, 40, seed + 1),
            ),
        ]);
        let minute = if i + 1 == speedups.len() { 59 } else { i };
        r.started = format!("2026-11-26T10:{minute:02}:00+00:00");
        let p = t.path().join(format!("run-{i:02}.json"));
        r.save(&p).unwrap();
        last = Some(p);
    }
    (t, last.unwrap())
}

/// `compare --history` pools each speedup with the folder's earlier runs:
/// a run whose speedup lies off the others' is seen (its interval misses
/// the pooled one, a run-to-run sd above the others'), and the table
/// says so; `run` pools over the results folder it writes into alike.
#[test]
fn compare_history_pools_each_speedup_over_the_runs() {
    let (h, cur) = speedup_folder(&[1.10, 1.10, 1.10, 1.18]);
    let args = [
        "compare",
        "--history",
        h.path().to_str().unwrap(),
        cur.to_str().unwrap(),
        "--gate",
        "ratios",
    ];
    let r = speedbench(&[&args[..], &["--format", "json"]].concat());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let a = &v["across"][0];
    assert_eq!(a["what"], "scalenet50 torch cpu b1 128px", "{v}");
    assert_eq!(a["runs"], 4);
    let pooled = a["pooled"]["value"].as_f64().unwrap();
    assert!(pooled > 1.10 && pooled < 1.18, "{a}");
    assert!(a["tau"].as_f64().unwrap() > 0.02, "{a}");
    let r = speedbench(&[&args[..], &["--format", "md"]].concat());
    let md = squash(&r.stdout);
    assert!(md.contains("### Across runs"), "{md}");
    assert!(
        md.contains("| scalenet50 torch cpu b1 128px | 4 | 1.1"),
        "{md}"
    );
    assert!(md.contains("| NO |"), "{md}");
    assert!(
        md.contains("| run sd | next run [95%] | holds it |"),
        "{md}"
    );
    // the next run's interval is wider than the pooled one, about it
    let next = &a["next"]["ci"];
    let ci = &a["pooled"]["ci"];
    assert!(
        next[0].as_f64() < ci[0].as_f64() && next[1].as_f64() > ci[1].as_f64(),
        "{a}"
    );
    assert!(
        md.contains("this run's interval holds the pooled speedup; 1 of 1 miss it."),
        "{md}"
    );
    // what `run` writes beside its results: the same pooling over the
    // folder of the results file, the current run left out of the earlier
    let file = speedbench::record::RunFile::load(&cur).unwrap();
    let a = speedbench::commands::history::across_folder(&cur, &file, 10);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].runs, 4);
    assert!((a[0].pooled.value - pooled).abs() < 1e-12);
    // a run started in the same second as the current one is no earlier
    // run
    let (h2, cur2) = speedup_folder(&[1.10, 1.10, 1.18]);
    let mut twin = speedbench::record::RunFile::load(&cur2).unwrap();
    for c in &mut twin.cells {
        for x in &mut c.samples_ms {
            *x *= 1.01;
        }
    }
    twin.save(&h2.path().join("run-twin.json")).unwrap();
    let file = speedbench::record::RunFile::load(&cur2).unwrap();
    let a = speedbench::commands::history::across_folder(&cur2, &file, 10);
    assert_eq!(a[0].runs, 3, "{a:?}");
    // agreeing runs: this run's interval holds the pooled speedup
    let (h, cur) = speedup_folder(&[1.10, 1.10, 1.10, 1.10]);
    let file = speedbench::record::RunFile::load(&cur).unwrap();
    let a = speedbench::commands::history::across_folder(&cur, &file, 10);
    assert!(!a[0].this_off(), "{a:?}");
    // two runs in all: too few to pool
    let (_h, cur) = speedup_folder(&[1.10, 1.10]);
    let file = speedbench::record::RunFile::load(&cur).unwrap();
    assert!(speedbench::commands::history::across_folder(&cur, &file, 10).is_empty());
    drop(h);
}

/// `report` of one run says what `run` wrote beside it: the table
/// "Across runs" of its folder in the terminal, the markdown and the HTML
/// page (linked from the page's nav); of several files, or of a run whose
/// folder holds too few earlier runs, it has none.
#[test]
fn report_of_one_run_has_its_folders_across_table() {
    let (h, cur) = speedup_folder(&[1.10, 1.10, 1.10, 1.18]);
    let cur = cur.to_str().unwrap();
    let r = speedbench(&["report", cur, "--format", "md"]);
    let md = squash(&r.stdout);
    assert!(md.contains("### Across runs"), "{md}");
    assert!(
        md.contains("| scalenet50 torch cpu b1 128px | 4 | 1.1"),
        "{md}"
    );
    let r = speedbench(&["report", cur]);
    assert!(
        r.stdout.contains("Across runs: each speedup"),
        "{}",
        r.stdout
    );
    let r = speedbench(&["report", cur, "--format", "html"]);
    assert!(
        r.stdout.contains("<a href=\"#across\">Across runs</a>"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("<section id=\"across\"><h2>Across runs"));
    assert_eq!(r.stdout.matches("<section id=\"cells\">").count(), 1);
    // two files: no folder of one run to read
    let other = h.path().join("run-00.json");
    let r = speedbench(&["report", cur, other.to_str().unwrap(), "--format", "md"]);
    assert!(!r.stdout.contains("Across runs"), "{}", r.stdout);
    // too few earlier runs
    let (_h2, few) = speedup_folder(&[1.10, 1.18]);
    let r = speedbench(&["report", few.to_str().unwrap(), "--format", "html"]);
    assert!(!r.stdout.contains("Across runs"), "{}", r.stdout);
    assert!(!r.stdout.contains("href=\"#across\""));
}

/// A cell whose processes timed with the cores `ns` apart (each
/// process's probe), at `ms`.
fn placed(ms: f64, ns: f64, seed: u64) -> CellRecord {
    let procs = vec![samples(ms, 0.01, 30, seed), samples(ms, 0.01, 30, seed + 1)];
    let mut c = common::cell_in_processes("resnext50_branched", "torch", Sequential, procs, &[]);
    for p in &mut c.processes {
        p.core_to_core_ns = Some(ns);
    }
    c
}

/// A slowdown that came with the host moving the cores (the baseline's
/// probes near, the current's far) is "inconclusive (cores moved)" with
/// exit 0, in `compare` and in `compare --history`; the same slowdown on
/// the baseline's placement, or without probes, regresses; a cell on the
/// other placement that did not change stays unchanged.
#[test]
fn a_slowdown_that_came_with_the_cores_moving_is_inconclusive() {
    let (code, v) = compare_cells(placed(80.0, 35.0, 1), placed(140.0, 165.0, 3));
    assert_eq!((code, verdict(&v)), (0, "moved"), "{v}");
    let (code, v) = compare_cells(placed(80.0, 35.0, 1), placed(140.0, 36.0, 3));
    assert_eq!((code, verdict(&v)), (1, "regressed"), "{v}");
    let (code, v) = compare_cells(placed(80.0, 35.0, 1), placed(80.0, 165.0, 3));
    assert_eq!((code, verdict(&v)), (0, "unchanged"), "{v}");
    let blind = |c: CellRecord| {
        let mut c = c;
        for p in &mut c.processes {
            p.core_to_core_ns = None;
        }
        c
    };
    let (code, v) = compare_cells(blind(placed(80.0, 35.0, 1)), blind(placed(140.0, 165.0, 3)));
    assert_eq!((code, verdict(&v)), (1, "regressed"), "{v}");
    // the table says why
    let t = tempfile::tempdir().unwrap();
    let (b, c) = (t.path().join("base.json"), t.path().join("cur.json"));
    run_file(vec![placed(80.0, 35.0, 1)]).save(&b).unwrap();
    run_file(vec![placed(140.0, 165.0, 3)]).save(&c).unwrap();
    let r = speedbench(&[
        "compare",
        b.to_str().unwrap(),
        c.to_str().unwrap(),
        "--format",
        "md",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("inconclusive (cores moved)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("1 inconclusive (cores moved): the change came with the host moving"),
        "{}",
        r.stdout
    );
    // against a history of four runs near, oldest first
    let h = tempfile::tempdir().unwrap();
    for i in 0..4u64 {
        let mut r = run_file(vec![placed(
            80.0 + i as f64 * 0.5,
            35.0 + i as f64,
            10 + 2 * i,
        )]);
        r.started = format!("2026-11-26T10:0{i}:00+00:00");
        r.save(&h.path().join(format!("run-{i}.json"))).unwrap();
    }
    let judge = |cur: CellRecord| {
        let mut r = run_file(vec![cur]);
        r.started = "2026-11-26T10:59:00+00:00".into();
        let p = h.path().join("current.json");
        r.save(&p).unwrap();
        let out = speedbench(&[
            "compare",
            "--history",
            h.path().to_str().unwrap(),
            p.to_str().unwrap(),
            "--format",
            "json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        (
            out.code,
            v["cells"][0]["verdict"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(judge(placed(140.0, 165.0, 30)), (0, "moved".into()));
    assert_eq!(judge(placed(140.0, 36.0, 30)), (1, "regressed".into()));
    assert_eq!(judge(placed(80.5, 165.0, 30)), (0, "unchanged".into()));
}
