//! Helpers for the integration tests: run the real binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Asserts a clean failure: non-zero exit, one `Error:` line that contains
/// every `needle`, and no panic.
pub fn fails_with(out: &Out, needles: &[&str]) {
    assert_ne!(out.code, 0, "should fail: {}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "panic: {}", out.stderr);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("Error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line expected: {}", out.stderr);
    for n in needles {
        assert!(errors[0].contains(n), "'{n}' not in: {}", errors[0]);
    }
}

pub fn speedbench(args: &[&str]) -> Out {
    speedbench_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

pub fn speedbench_in(dir: &Path, args: &[&str]) -> Out {
    speedbench_in_env(dir, args, &[])
}

/// `speedbench` with `env` set (after the defaults below).
pub fn speedbench_in_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_speedbench"))
        .current_dir(dir)
        .args(args)
        // a test run inside a Slurm array or an Indexed Job is no shard
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        // the terminal tables' width, whatever terminal runs the tests
        .env("COLUMNS", "120")
        // no models a user imported into their own data folder
        .env("XDG_DATA_HOME", "/nonexistent/speedbench-tests")
        .envs(env.iter().copied())
        .output()
        .expect("the speedbench binary runs");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The Python of the venv ci/setup.sh made (torch, timm, onnx...).
pub fn venv_python() -> PathBuf {
    let venv = std::env::var("SPEEDBENCH_VENV")
        .expect("SPEEDBENCH_VENV is unset: run ci/setup.sh, which writes .cargo/config.toml");
    Path::new(&venv).join("bin/python")
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of models/ to break on purpose.
pub fn models_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(repo().join("models")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    dir
}

use speedbench::record::env::Environment;
use speedbench::record::stats::summarise;
use speedbench::record::RunPlan;
use speedbench::record::{CellRecord, RunFile, SCHEMA_VERSION};
use speedbench::record::{Device, Mode, Optimize};

/// A recorded cell with the given samples (for report and compare tests).
pub fn cell(
    model: &str,
    framework: &str,
    mode: Mode,
    batch: usize,
    samples: Vec<f64>,
) -> CellRecord {
    CellRecord {
        model: model.into(),
        framework: framework.into(),
        framework_version: "1.0".into(),
        device: Device::Cpu,
        mode,
        optimize: Optimize::Default,
        precision: Default::default(),
        batch,
        size: 128,
        warmup: 1,
        intra_threads: 2,
        inter_threads: if mode == Mode::Parallel { 2 } else { 1 },
        params: 25_557_032,
        macs: 1_335_000_000,
        ideal_speedup: 1.1,
        host: "fixture".into(),
        latency: summarise(&samples),
        iters: samples.len(),
        samples_ms: samples,
        sample_process: vec![],
        sample_round: vec![],
        processes: vec![],
        interrupted: false,
        gemm_gmacs: Some(50.0),
        machine_peak_gmacs: Some(100.0),
        session_mib: Some(100.0),
        worker_peak_rss_mib: Some(500.0),
        gpu_session_mib: None,
        gpu_peak_mib: None,
        compute_samples_ms: vec![],
        compute: None,
        trace: None,
        schedule: None,
        shard: None,
        env: None,
        cpu_path: None,
        emulated: None,
    }
}

/// `cell` measured in processes: each group of samples one process, in
/// slots 0, 1, ...; `busy` gives the other processes' cores of each.
pub fn cell_in_processes(
    model: &str,
    framework: &str,
    mode: Mode,
    processes: Vec<Vec<f64>>,
    busy: &[f64],
) -> CellRecord {
    use speedbench::record::{MachineLoad, ProcessRecord};
    let mut c = cell(model, framework, mode, 1, processes.concat());
    c.sample_process = processes
        .iter()
        .enumerate()
        .flat_map(|(i, p)| std::iter::repeat_n(i, p.len()))
        .collect();
    c.processes = processes
        .iter()
        .enumerate()
        .map(|(i, _)| ProcessRecord {
            index: i,
            slot: i,
            compute_samples: 0,
            interrupted: false,
            calibrated: false,
            load: busy.get(i).map(|&b| MachineLoad {
                other_cores: b,
                stolen_cores: 0.0,
                own_cores: 2.0,
                involuntary_switches: 0,
                load_avg: 2.0,
                cores: 2,
            }),
            threads_ran: None,
            core_to_core_ns: None,
            round_core_to_core_ns: vec![],
            placement: Default::default(),
            placement_wait_s: None,
        })
        .collect();
    c.summarise();
    c
}

/// A results file holding `cells`.
pub fn run_file(cells: Vec<CellRecord>) -> RunFile {
    RunFile {
        schema_version: SCHEMA_VERSION,
        started: "2026-11-26T00:00:00+00:00".into(),
        finished: Some("2026-11-26T00:01:00+00:00".into()),
        env: Environment {
            host: "fixture".into(),
            os: "linux x86_64".into(),
            cpu_model: "test".into(),
            cpu_id: None,
            cores: 2,
            gpu: None,
            speedbench_version: "0".into(),
            git_commit: "0".into(),
        },
        plan: RunPlan {
            profile: "smoke".into(),
            frameworks: vec!["ort".into()],
            models: vec!["resnet50".into()],
            device: Device::Cpu,
            modes: vec![Mode::Sequential, Mode::Parallel],
            optimize: vec![Optimize::Default],
            precision: vec![Default::default()],
            batch: vec![1],
            size: 128,
            warmup: 1,
            iters: 100,
            processes: 1,
            order_seed: 0,
            target: None,
            max_time_s: None,
            placement: Default::default(),
            intra_threads: 2,
            inter_threads: 2,
            seed: 0,
            timeout_s: 60,
            out: "results".into(),
            weights: None,
            skipped: vec![],
            skipped_models: vec![],
            shard: None,
            unsupported: vec![],
            schedules_from: None,
            schedules: vec![],
        },
        machine_peak: None,
        precision_peaks: Default::default(),
        cells,
        failures: vec![],
        merged_from: vec![],
    }
}

/// `n` samples around `center` ms with relative noise `cv`, deterministic
/// for a seed: the shape of a recorded timing series (skewed to the right).
pub fn samples(center: f64, cv: f64, n: usize, seed: u64) -> Vec<f64> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, LogNormal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let d = LogNormal::new(0.0, cv).unwrap();
    (0..n).map(|_| center * d.sample(&mut rng)).collect()
}
