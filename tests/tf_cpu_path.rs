//! TensorFlow's CPU path in a run: each tf cell records which kernels ran
//! (oneDNN's or Eigen's) and why, the traced pass shows those kernels, the
//! report names the path, and ResNeXt-50's grouped convolutions run on
//! both paths; a bad `TF_ENABLE_ONEDNN_OPTS` is one line and exit 2.

mod common;

use common::{repo, speedbench_in_env};
use speedbench::frameworks::tf_cpu;
use speedbench::record::{Optimize, RunFile};

/// One smoke run of tf over ResNeXt-50 at `default` and `max`, in `env`.
fn run(env: &[(&str, &str)]) -> (RunFile, String) {
    let t = tempfile::tempdir().unwrap();
    let out = speedbench_in_env(
        repo(),
        &[
            "run",
            "--framework",
            "tf",
            "--model",
            "resnext50",
            "--profile",
            "smoke",
            "--optimize",
            "default,max",
            "--mode",
            "sequential",
            "--quiet",
            "--out",
            t.path().to_str().unwrap(),
        ],
        env,
    );
    assert_eq!(out.code, 0, "{env:?}: {}\n{}", out.stdout, out.stderr);
    let path = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("results: "))
        .expect("the results file is named");
    (
        RunFile::load(std::path::Path::new(path)).unwrap(),
        out.stdout,
    )
}

#[test]
fn every_tf_cell_records_the_kernels_it_ran() {
    let flags = speedbench::bench::fma::cpu_flags();
    for user in [None, Some("0"), Some("1")] {
        let env: Vec<(&str, &str)> = user.map(|v| (tf_cpu::ENV, v)).into_iter().collect();
        let (file, stdout) = run(&env);
        assert_eq!(file.cells.len(), 2, "{user:?}");
        for c in &file.cells {
            let path = c.cpu_path.as_ref().expect("a tf CPU cell has its path");
            assert_eq!(*path, tf_cpu::decide(c.optimize, user, &flags).unwrap());
            if user.is_none() && c.optimize == Optimize::Max {
                assert!(path.onednn, "max turns oneDNN on");
            }
            // the kernels that ran say the same: oneDNN's operations are
            // _MklNative*, Eigen's are TensorFlow's own
            let trace = c.trace.as_ref().expect("the first process traces");
            let mkl = trace
                .timeline
                .events
                .iter()
                .any(|e| e.op.starts_with("_Mkl"));
            assert_eq!(mkl, path.onednn, "{user:?} {}: {path}", c.optimize);
        }
        assert!(
            stdout.contains("TensorFlow's CPU kernels: --optimize default: oneDNN"),
            "{stdout}"
        );
    }
}

#[test]
fn a_bad_onednn_variable_is_one_line_and_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let out = speedbench_in_env(
        repo(),
        &[
            "run",
            "--framework",
            "tf",
            "--model",
            "resnet50",
            "--profile",
            "smoke",
            "--out",
            t.path().to_str().unwrap(),
        ],
        &[(tf_cpu::ENV, "yes")],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        "Error: TF_ENABLE_ONEDNN_OPTS='yes': expected 0, 1, true or false"
    );
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
}

/// With oneDNN off, tf's bf16 is not supported (its rewrite is oneDNN's):
/// the run times fp32 alone and its notes say why, at that level.
#[test]
fn tf_bf16_with_onednn_off_is_a_note_not_a_cell() {
    let t = tempfile::tempdir().unwrap();
    let out = speedbench_in_env(
        repo(),
        &[
            "run",
            "--framework",
            "tf",
            "--model",
            "resnet50",
            "--profile",
            "smoke",
            "--mode",
            "sequential",
            "--precision",
            "fp32,bf16",
            "--quiet",
            "--out",
            t.path().to_str().unwrap(),
        ],
        &[(tf_cpu::ENV, "0")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("Not supported: tf does not run"),
        "{}",
        out.stdout
    );
    let path = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("results: "))
        .unwrap();
    let file = RunFile::load(std::path::Path::new(path)).unwrap();
    assert_eq!(file.cells.len(), 1);
    assert!(file.cells[0].precision.is_fp32());
    let notes = speedbench::report::notes(&[&file.plan], &file.cells);
    assert_eq!(
        notes[0],
        "Not supported: tf does not run --precision bf16 on cpu at --optimize default: TensorFlow's bf16 rewrite is oneDNN's, and oneDNN is off (TF_ENABLE_ONEDNN_OPTS=0 in the environment): the cell would run fp32; TF_ENABLE_ONEDNN_OPTS=1 (or --optimize max, where it is unset) turns oneDNN on."
    );
}
