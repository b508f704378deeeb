//! The deterministic outputs, byte for byte: `models`, and `report` and
//! `compare` on committed results files, against the files in
//! tests/snapshots/. A change to any of them is deliberate: rerun with
//! UPDATE_SNAPSHOTS=1 and review the diff. The terminal tables are drawn
//! for a terminal of 80 columns (COLUMNS=80).

mod common;

use common::{repo, speedbench_in_env};

/// (snapshot file, command line)
const CASES: &[(&str, &[&str])] = &[
    ("models.csv", &["models", "--format", "csv"]),
    (
        "models-128.md",
        &["models", "--size", "128", "--format", "md"],
    ),
    (
        "report-baseline.csv",
        &["report", "results/baseline.json", "--format", "csv"],
    ),
    (
        "report-baseline.md",
        &["report", "results/baseline.json", "--format", "md"],
    ),
    (
        "report-levels.json",
        &[
            "report",
            "tests/fixtures/quick-cpu-2core-levels.json",
            "--format",
            "json",
        ],
    ),
    (
        "report-levels.svg",
        &[
            "report",
            "tests/fixtures/quick-cpu-2core-levels.json",
            "--format",
            "svg",
        ],
    ),
    // what a terminal shows: the headline, fitted; --wide, every table
    (
        "report-trace-80.txt",
        &["report", "tests/fixtures/quick-cpu-2core-trace.json"],
    ),
    (
        "report-trace-wide.txt",
        &[
            "report",
            "tests/fixtures/quick-cpu-2core-trace.json",
            "--wide",
        ],
    ),
    (
        "compare.md",
        &[
            "compare",
            "tests/fixtures/quick-cpu-2core.json",
            "tests/fixtures/quick-cpu-2core-levels.json",
            "--format",
            "md",
        ],
    ),
];

#[test]
fn deterministic_outputs_are_byte_identical() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut changed = vec![];
    for (name, args) in CASES {
        let out = speedbench_in_env(repo(), args, &[("COLUMNS", "80")]);
        assert!(out.code == 0 || out.code == 1, "{args:?}: {}", out.stderr);
        let path = repo().join("tests/snapshots").join(name);
        if update {
            std::fs::write(&path, &out.stdout).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_SNAPSHOTS=1 writes it)", path.display()));
        if out.stdout != want {
            changed.push(*name);
        }
    }
    assert!(
        changed.is_empty(),
        "outputs changed: {changed:?}; if deliberate, rerun with UPDATE_SNAPSHOTS=1 and review the diff"
    );
}
