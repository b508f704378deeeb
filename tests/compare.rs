//! The regression verdict on recorded sample sets, through the real CLI:
//! each case asserts the verdict and the exit code.

mod common;

use common::{cell, run_file, samples, speedbench};
use speedbench::record::CellRecord;
use speedbench::record::Mode::{Parallel, Sequential};
use speedbench::record::Optimize;

fn compare(base: Vec<f64>, cur: Vec<f64>, extra: &[&str]) -> (i32, serde_json::Value) {
    let t = tempfile::tempdir().unwrap();
    let b = t.path().join("base.json");
    let c = t.path().join("cur.json");
    run_file(vec![cell("resnet50", "ort", Sequential, 1, base)])
        .save(&b)
        .unwrap();
    run_file(vec![cell("resnet50", "ort", Sequential, 1, cur)])
        .save(&c)
        .unwrap();
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
