//! Bad input gets one clear line naming the file, field or flag, and a
//! non-zero exit; never a panic.

mod common;

use std::path::Path;

use common::{fails_with, models_copy, speedbench, Out};
use safetensors::tensor::{Dtype, TensorView};

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// A float32 input of zeros, `[1, 3, 64, 64]`, as `dir/x.npy`.
fn zero_input(dir: &Path) -> std::path::PathBuf {
    let input = dir.join("x.npy");
    ndarray_npy::write_npy(&input, &ndarray::Array4::<f32>::zeros((1, 3, 64, 64))).unwrap();
    input
}

/// `speedbench infer` of resnet50 on `input`, logits into `dir`, with `extra`
/// flags (framework, weights, device).
fn infer_resnet50(dir: &Path, input: &Path, extra: &[&str]) -> Out {
    let output = dir.join("y.npy");
    let mut args = vec![
        "infer",
        "--model",
        "resnet50",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    speedbench(&args)
}

const GOOD_HARNESS: &str = "[matrix]\nframeworks = [\"ort\"]\nmodels = [\"resnet50\"]\n\
    [profiles.quick]\nbatch = 1\nsize = 64\nwarmup = 0\niters = 1\n";

#[test]
fn harness_config_errors() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("none.toml");
    fails_with(
        &speedbench(&["run", "--config", missing.to_str().unwrap()]),
        &["none.toml", "cannot read"],
    );
    // (file, its text, what the one error line must say)
    let cases: [(&str, String, &[&str]); 10] = [
        ("bad.toml", "[matrix\n".into(), &["bad.toml:1"]),
        (
            "unk.toml",
            GOOD_HARNESS.replace("[matrix]", "[matrix]\nbogus = 1"),
            &["unk.toml:2", "unknown field `bogus`", "expected one of"],
        ),
        (
            "typed.toml",
            GOOD_HARNESS.replace("batch = 1", "batch = \"x\""),
            &["typed.toml:5", "batch = \"x\"", "expected usize"],
        ),
        (
            "model.toml",
            GOOD_HARNESS.replace("\"resnet50\"", "\"resnet5\""),
            &["unknown model in [matrix] models 'resnet5'", "resnet50"],
        ),
        (
            "mode.toml",
            GOOD_HARNESS.replace("[matrix]", "[matrix]\nmode = \"fast\""),
            &["matrix.mode", "'fast'"],
        ),
        (
            "level.toml",
            GOOD_HARNESS.replace("[matrix]", "[matrix]\noptimize = \"turbo\""),
            &["level.toml:2", "turbo", "none", "default", "max"],
        ),
        (
            "nolevel.toml",
            GOOD_HARNESS.replace("[matrix]", "[matrix]\noptimize = []"),
            &["nolevel.toml", "matrix.optimize is empty"],
        ),
        (
            "target.toml",
            format!("{GOOD_HARNESS}processes = 1\ntarget = \"lots\"\n"),
            &[
                "target.toml: profiles.quick.target = 'lots'",
                "expected a percentage",
            ],
        ),
        (
            "budget.toml",
            format!("{GOOD_HARNESS}processes = 1\nmax_time = \"8 days\"\n"),
            &[
                "budget.toml: profiles.quick.max_time = '8 days'",
                "expected a duration",
            ],
        ),
        // the built-in quick profile's 3 processes over the file's 1 iteration
        (
            "few.toml",
            GOOD_HARNESS.to_string(),
            &[
                "few.toml: profiles.quick.processes = 3 is more than profiles.quick.iters = 1",
                "every worker process needs a timed iteration",
            ],
        ),
    ];
    for (name, text, needles) in cases {
        let path = write(t.path(), name, &text);
        fails_with(&speedbench(&["run", "--config", &path]), needles);
    }
}

#[test]
fn optimize_flag_errors() {
    let out = speedbench(&["run", "--optimize", "fast", "--profile", "smoke"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    for n in ["--optimize", "'fast' is not one of: none, default, max"] {
        assert!(out.stderr.contains(n), "'{n}' not in: {}", out.stderr);
    }
}

#[test]
fn run_flag_errors() {
    fails_with(
        &speedbench(&["run", "--model", "nope"]),
        &["--model", "'nope'", "scalenet50"],
    );
    fails_with(
        &speedbench(&["run", "--framework", "nope"]),
        &["--framework", "'nope'", "ort"],
    );
    fails_with(
        &speedbench(&["run", "--profile", "nope"]),
        &["--profile", "'nope'", "smoke"],
    );
    fails_with(
        &speedbench(&["run", "--batch", "0"]),
        &["--batch", "at least 1"],
    );
    fails_with(
        &speedbench(&["run", "--target", "150%"]),
        &["--target", "'150%'", "below 100%"],
    );
    fails_with(
        &speedbench(&["run", "--max-time", "soon"]),
        &["--max-time", "'soon'", "expected a duration such as 90s"],
    );
    fails_with(
        &speedbench(&["run", "--iters", "0"]),
        &["--iters", "at least 1"],
    );
    fails_with(
        &speedbench(&["run", "--size", "0"]),
        &["--size", "at least 1"],
    );
    fails_with(
        &speedbench(&[
            "run",
            "--model",
            "resnet50",
            "--model",
            "scalenet50",
            "--weights",
            "w.safetensors",
        ]),
        &["--weights", "one --model"],
    );
}

#[test]
fn unwritable_out_is_reported_before_any_work() {
    fails_with(
        &speedbench(&[
            "run",
            "--profile",
            "smoke",
            "--model",
            "resnet50",
            "--out",
            "/proc/speedbench",
        ]),
        &["--out", "/proc/speedbench"],
    );
}

#[test]
fn an_existing_baseline_is_not_replaced_unless_forced() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("baselines/main.json");
    std::fs::create_dir_all(base.parent().unwrap()).unwrap();
    std::fs::write(&base, "the team's baseline").unwrap();
    let out = t.path().to_str().unwrap();
    let args = [
        "run",
        "--profile",
        "smoke",
        "--model",
        "resnet50",
        "--out",
        out,
        "--save-baseline",
        "main",
    ];
    // refused before anything is measured: no results file is made
    fails_with(
        &speedbench(&args),
        &["--save-baseline", "main.json", "exists", "--force"],
    );
    assert_eq!(
        std::fs::read_to_string(&base).unwrap(),
        "the team's baseline"
    );
    let made: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(made, ["baselines"]);
}

#[test]
fn model_spec_errors() {
    let m = models_copy();
    let dir = m.path().to_str().unwrap();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("x.onnx");
    let out = out.to_str().unwrap();
    let spec = |body: &str| {
        std::fs::write(
            m.path().join("x.toml"),
            format!("name = \"x\"\n[model]\n{body}"),
        )
        .unwrap();
        speedbench(&["--models-dir", dir, "export", "--model", "x", "--out", out])
    };
    fails_with(
        &spec("family = \"resnet\"\nlayers = [3, 0]"),
        &["x.toml", "model.layers", "entry 1 is 0"],
    );
    fails_with(
        &spec("family = \"resnet\"\nlayers = [3, -1]"),
        &["x.toml", "-1"],
    );
    fails_with(
        &spec("family = \"resnet\"\nlayers = []"),
        &["x.toml", "model.layers", "empty"],
    );
    fails_with(
        &spec("family = \"vgg\"\nlayers = [1]"),
        &["x.toml:3", "unknown variant `vgg`"],
    );
    fails_with(
        &spec("family = \"resnet\"\nlayers = [1]\ngroup_form = \"branched\""),
        &["model.group_form", "groups of 2"],
    );
    fails_with(
        &spec("family = \"scalenet\"\nlayers = [3, 4, 6, 3]\nstructure = \"scalenet101.json\""),
        &["scalenet101.json", "33 blocks", "need 16"],
    );
    fails_with(
        &spec("family = \"scalenet\"\nlayers = [3, 4, 6, 3]\nstructure = \"missing.json\""),
        &["missing.json", "cannot read"],
    );
    std::fs::write(m.path().join("neg.json"), "[[1, -2, 3, 4, 56]]").unwrap();
    fails_with(
        &spec("family = \"scalenet\"\nlayers = [1]\nstructure = \"neg.json\""),
        &["neg.json", "block 0", "negative value -2"],
    );
    std::fs::write(m.path().join("short.json"), "[[1, 2, 56]]").unwrap();
    fails_with(
        &spec("family = \"scalenet\"\nlayers = [1]\nstructure = \"short.json\""),
        &["short.json", "block 0", "expected 5 numbers"],
    );
    std::fs::write(m.path().join("junk.json"), "{\"a\": 1}").unwrap();
    fails_with(
        &spec("family = \"scalenet\"\nlayers = [1]\nstructure = \"junk.json\""),
        &["junk.json", "expected a JSON list"],
    );
    // a broken file fails every command that reads the folder, naming it
    fails_with(
        &speedbench(&["--models-dir", dir, "models"]),
        &["junk.json", "expected a JSON list"],
    );
    std::fs::remove_file(m.path().join("x.toml")).unwrap();
    fails_with(
        &speedbench(&[
            "--models-dir",
            dir,
            "export",
            "--model",
            "nothere",
            "--out",
            out,
        ]),
        &["unknown model 'nothere'", "resnet50"],
    );
}

#[test]
fn input_too_small_for_a_scalenet_branch_names_block_and_branch() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("x.onnx");
    fails_with(
        &speedbench(&[
            "export",
            "--model",
            "scalenet50",
            "--size",
            "32",
            "--out",
            out.to_str().unwrap(),
        ]),
        &[
            "scalenet50",
            "block layer2.0, branch 3 (scale 7)",
            "4x4",
            "--size",
        ],
    );
}

fn save_tensors(path: &Path, tensors: &[(&str, Dtype, Vec<usize>)]) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, d, s)| vec![0u8; s.iter().product::<usize>() * d.size()])
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, d, s), b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, &None, path).unwrap();
}

#[test]
fn weight_file_errors() {
    let t = tempfile::tempdir().unwrap();
    let input = zero_input(t.path());
    let infer = |w: &Path| {
        infer_resnet50(
            t.path(),
            &input,
            &["--framework", "ort", "--weights", w.to_str().unwrap()],
        )
    };
    let w = t.path().join("w.safetensors");
    save_tensors(
        &w,
        &[
            ("conv1.weight", Dtype::F32, vec![64, 3, 3, 3]),
            ("extra", Dtype::F32, vec![2]),
        ],
    );
    fails_with(
        &infer(&w),
        &[
            "w.safetensors",
            "resnet50",
            "missing",
            "unexpected extra",
            "wrong shape: conv1.weight is [64, 3, 3, 3], expected [64, 3, 7, 7]",
        ],
    );
    save_tensors(&w, &[("conv1.weight", Dtype::I32, vec![64, 3, 7, 7])]);
    fails_with(&infer(&w), &["wrong dtype", "conv1.weight is I32"]);
    std::fs::write(&w, b"not a safetensors file").unwrap();
    fails_with(
        &infer(&w),
        &["w.safetensors", "not a valid safetensors file"],
    );
    fails_with(
        &infer(&t.path().join("none.safetensors")),
        &["none.safetensors", "cannot read"],
    );
}

#[test]
fn npy_input_errors() {
    let t = tempfile::tempdir().unwrap();
    let infer = |x: &Path| infer_resnet50(t.path(), x, &["--framework", "ort"]);
    let x = t.path().join("x.npy");
    ndarray_npy::write_npy(&x, &ndarray::Array3::<f32>::zeros((3, 64, 64))).unwrap();
    fails_with(
        &infer(&x),
        &["x.npy", "shape [3, 64, 64]", "expected [N, 3, H, W]"],
    );
    ndarray_npy::write_npy(&x, &ndarray::Array4::<f64>::zeros((1, 3, 64, 64))).unwrap();
    fails_with(&infer(&x), &["x.npy", "float32"]);
    ndarray_npy::write_npy(&x, &ndarray::Array4::<f32>::zeros((1, 3, 64, 32))).unwrap();
    fails_with(&infer(&x), &["x.npy", "64x32", "square"]);
    std::fs::write(&x, b"\x93NUMPY garbage").unwrap();
    fails_with(&infer(&x), &["x.npy", "expected a float32 .npy"]);
}

#[test]
fn unknown_framework_for_infer() {
    fails_with(
        &speedbench(&[
            "infer",
            "--framework",
            "mxnet",
            "--model",
            "resnet50",
            "--input",
            "x.npy",
            "--output",
            "y.npy",
        ]),
        &["unknown framework 'mxnet'"],
    );
}

#[test]
fn safetensors_truncated_or_with_a_huge_header() {
    let t = tempfile::tempdir().unwrap();
    let input = zero_input(t.path());
    let w = t.path().join("w.safetensors");
    let infer = || {
        infer_resnet50(
            t.path(),
            &input,
            &["--framework", "ort", "--weights", w.to_str().unwrap()],
        )
    };
    save_tensors(&w, &[("conv1.weight", Dtype::F32, vec![64, 3, 7, 7])]);
    let full = std::fs::read(&w).unwrap();
    std::fs::write(&w, &full[..full.len() - 100]).unwrap();
    fails_with(&infer(), &["w.safetensors", "not a valid safetensors file"]);
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    std::fs::write(&w, &huge).unwrap();
    fails_with(&infer(), &["w.safetensors", "not a valid safetensors file"]);
}

/// `--optimize cuda-graph` is checked before anything is measured: off
/// CUDA it names --device cuda; TensorFlow, which has no CUDA-graph mode,
/// is named; on a machine with no GPU the graphed path of every framework
/// that has one fails with the GPU error, not a crash.
#[test]
fn cuda_graph_arguments_are_checked_without_a_gpu() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--profile",
            "smoke",
            "--model",
            "resnet50",
            "--out",
            dir,
        ];
        args.extend_from_slice(extra);
        speedbench(&args)
    };
    fails_with(
        &run(&["--optimize", "max,cuda-graph", "--device", "cpu"]),
        &["--optimize cuda-graph", "needs --device cuda", "on cpu"],
    );
    fails_with(
        &run(&[
            "--optimize",
            "cuda-graph",
            "--device",
            "cuda",
            "--framework",
            "torch",
            "--framework",
            "tf",
        ]),
        &[
            "--optimize cuda-graph",
            "tf has no CUDA-graph mode",
            "ort, ort-own, torch",
        ],
    );
    fails_with(
        &speedbench(&["verify", "--model", "resnet50", "--framework", "caffe"]),
        &["--framework: unknown framework 'caffe' (expected one of: "],
    );
    for cmd in [
        vec!["verify", "--model", "resnet50", "--optimize", "cuda-graph"],
        vec![
            "trace",
            "--model",
            "resnet50",
            "--framework",
            "torch",
            "--optimize",
            "cuda-graph",
            "--out",
            "x.json",
        ],
    ] {
        fails_with(
            &speedbench(&cmd),
            &["--optimize cuda-graph", "needs --device cuda"],
        );
    }
    let input = zero_input(t.path());
    for fw in speedbench::frameworks::installed() {
        let out = infer_resnet50(
            t.path(),
            &input,
            &["--framework", fw, "--optimize", "cuda-graph"],
        );
        fails_with(&out, &["--optimize cuda-graph", "needs --device cuda"]);
        if fw == "tf" || speedbench::frameworks::cuda_present() {
            continue;
        }
        let out = infer_resnet50(
            t.path(),
            &input,
            &[
                "--framework",
                fw,
                "--optimize",
                "cuda-graph",
                "--device",
                "cuda",
            ],
        );
        fails_with(&out, &["--device cuda", "no NVIDIA GPU"]);
    }
}

#[test]
fn cuda_without_a_gpu_is_one_clear_error() {
    if speedbench::frameworks::cuda_present() {
        return; // a GPU machine: the CUDA path is exercised by ci/gpu-check.sh
    }
    let t = tempfile::tempdir().unwrap();
    let input = zero_input(t.path());
    for fw in speedbench::frameworks::installed() {
        let out = infer_resnet50(t.path(), &input, &["--framework", fw, "--device", "cuda"]);
        fails_with(&out, &["--device cuda", "no NVIDIA GPU"]);
    }
    // run records the failure per cell and exits 1, losing nothing else
    let out = speedbench(&[
        "run",
        "--profile",
        "smoke",
        "--model",
        "resnet50",
        "--device",
        "cuda",
        "--out",
        t.path().to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("no NVIDIA GPU"), "{}", out.stderr);
}

#[test]
fn a_batch_that_cannot_fit_is_refused_before_running() {
    fails_with(
        &speedbench(&["run", "--model", "resnet50", "--batch", "1000000"]),
        &["--batch 1000000", "GiB", "available"],
    );
    fails_with(
        &speedbench(&["run", "--model", "scalenet50", "--size", "64"]),
        &["block layer3.1, branch 3"],
    );
}

#[test]
fn report_refuses_truncated_and_future_results() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("r.json");
    std::fs::write(&p, "{\"schema_version\": 1, \"cells\": [{\"model\"").unwrap();
    fails_with(
        &speedbench(&["report", p.to_str().unwrap()]),
        &["r.json", "not a results JSON file"],
    );
    std::fs::write(&p, "{\"schema_version\": 7, \"cells\": []}").unwrap();
    fails_with(
        &speedbench(&["report", p.to_str().unwrap()]),
        &["r.json", "schema_version 7 is newer"],
    );
    std::fs::write(&p, "{\"cells\": []}").unwrap();
    fails_with(
        &speedbench(&["report", p.to_str().unwrap()]),
        &["r.json", "'schema_version' is missing"],
    );
    std::fs::write(&p, "{\"schema_version\": 1, \"cells\": 3}").unwrap();
    fails_with(
        &speedbench(&["report", p.to_str().unwrap()]),
        &["r.json", "malformed results"],
    );
    fails_with(
        &speedbench(&[
            "report",
            "--history",
            p.to_str().unwrap(),
            "--format",
            "csv",
        ]),
        &["--history", "--format svg", "table, md or json"],
    );
    // --wide widens the terminal table; md, csv and json are always whole
    fails_with(
        &speedbench(&[
            "report",
            "tests/fixtures/quick-cpu-2core.json",
            "--format",
            "md",
            "--wide",
        ]),
        &["--wide", "--format table"],
    );
}

#[test]
fn a_reader_that_goes_away_is_not_a_panic() {
    // `speedbench models | head -1`: the reader closes before the table is
    // written; the write fails with EPIPE, which must not panic.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_speedbench"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("models")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn trace_refuses_bad_arguments_before_measuring() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("no/such/folder/t.json");
    fails_with(
        &speedbench(&[
            "trace",
            "--model",
            "resnet50",
            "--framework",
            "torch",
            "--out",
            missing.to_str().unwrap(),
        ]),
        &["--out", "does not exist"],
    );
    let out = t.path().join("t.json");
    let out = out.to_str().unwrap();
    fails_with(
        &speedbench(&[
            "trace",
            "--model",
            "nosuchnet",
            "--framework",
            "torch",
            "--out",
            out,
        ]),
        &["nosuchnet"],
    );
    fails_with(
        &speedbench(&[
            "trace",
            "--model",
            "resnet50",
            "--framework",
            "nosuchfw",
            "--out",
            out,
        ]),
        &["nosuchfw"],
    );
    let svg = t.path().join("missing/t.svg");
    fails_with(
        &speedbench(&[
            "trace",
            "--model",
            "resnet50",
            "--framework",
            "torch",
            "--out",
            out,
            "--svg",
            svg.to_str().unwrap(),
        ]),
        &["--svg", "does not exist"],
    );
    assert!(!Path::new(out).exists());
}

/// `speedbench trace` writes a trace-event file that validates, one process
/// per cell, and prints what each mode ran.
#[test]
fn trace_writes_a_valid_trace_event_file() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("t.json");
    let svg = t.path().join("t.svg");
    let run = speedbench(&[
        "trace",
        "--model",
        "resnet50",
        "--framework",
        "torch",
        "--profile",
        "smoke",
        "--warmup",
        "1",
        "--iters",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .replace('\n', " ")
            .contains("ran: threads · operations in flight"),
        "{}",
        run.stdout
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    speedbench::trace::chrome::validate(&doc).unwrap();
    let processes: Vec<&str> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    // sequential, its ideal schedule, parallel
    assert_eq!(processes.len(), 3, "{processes:?}");
    assert!(
        processes[2].starts_with("resnet50 · torch · parallel"),
        "{processes:?}"
    );
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    // the results of the short run stay out of the working folder
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 2);
}

/// `speedbench cuda-libs` loads a framework's CUDA stack as its worker
/// does on --device cuda and checks what resolved: on the CPU build, ORT's
/// and libtorch's CUDA 13 stacks from the CPU venv; an unknown framework is
/// one clear error.
#[test]
fn cuda_libs_checks_each_framework_s_stack() {
    fails_with(
        &speedbench(&["cuda-libs", "--framework", "nosuchfw"]),
        &["unknown framework 'nosuchfw'"],
    );
    for (fw, at_least) in [("ort", 15), ("torch", 5)] {
        let out = speedbench(&["cuda-libs", "--framework", fw]);
        assert_eq!(out.code, 0, "{fw}: {}", out.stderr);
        let libs: Vec<Vec<&str>> = out
            .stdout
            .lines()
            .map(|l| l.split('\t').collect())
            .collect();
        assert!(libs.len() >= at_least, "{fw}: {libs:?}");
        // library, path, major; every path under an nvidia/ folder, once
        assert!(libs
            .iter()
            .all(|l| l.len() == 3 && l[1].contains("/nvidia/") && l[1].ends_with(l[0])));
        assert!(
            libs.iter()
                .any(|l| l[0] == "libcudart.so.13" && l[2] == "13"),
            "{fw}: {libs:?}"
        );
        assert!(
            out.stderr.contains("no library loaded twice"),
            "{}",
            out.stderr
        );
    }
}

/// The precision and batch axes: a bad value names the flag and what it
/// takes; a run whose every framework cannot run the precision says so
/// before anything is measured; a headline batch not in the list is
/// refused before measuring.
#[test]
fn precision_and_batch_errors() {
    let t = tempfile::tempdir().unwrap();
    let o = t.path().to_str().unwrap();
    let base = [
        "run",
        "--framework",
        "ort",
        "--model",
        "resnet50",
        "--profile",
        "smoke",
        "--out",
        o,
    ];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        speedbench(&a)
    };
    // a value clap refuses: exit 2, the flag and the values it takes
    for (flag, value, says) in [
        (
            "--precision",
            "fp64",
            "'fp64' is not one of: fp32, bf16, fp16, tf32",
        ),
        ("--batch", "1,x", "invalid digit"),
    ] {
        let bad = with(&[flag, value]);
        assert_eq!(bad.code, 2, "{}", bad.stderr);
        assert!(!bad.stderr.contains("panicked"), "{}", bad.stderr);
        assert!(
            bad.stderr.contains(flag) && bad.stderr.contains(says),
            "{}",
            bad.stderr
        );
    }
    fails_with(
        &with(&["--precision", "bf16"]),
        &[
            "--precision: no framework of this run can run bf16 on cpu",
            "ort bf16: ONNX Runtime's CPU provider has no bf16 kernels",
        ],
    );
    fails_with(
        &with(&["--precision", "tf32"]),
        &["TF32 is a tensor-core mode of NVIDIA GPUs"],
    );
    fails_with(&with(&["--batch", "2,0"]), &["--batch must be at least 1"]);
    fails_with(
        &with(&["--batch", "1,2", "--headline-batch", "4"]),
        &["--headline-batch 4: the run's batches are 1,2 (give one of them)"],
    );
    // nothing was measured, no results file left behind
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    let input = zero_input(t.path());
    fails_with(
        &infer_resnet50(
            t.path(),
            &input,
            &["--framework", "ort", "--precision", "fp16"],
        ),
        &["--precision fp16: not supported by ort on cpu"],
    );
}

/// `speedbench` with none of its runtimes' workers beside it (copied alone
/// into a folder) names the worker each command needs and how to build it,
/// in one line, exit 2: a named framework, the matrix's default, `infer`
/// (handed to its worker) and `verify`.
#[test]
fn a_missing_worker_is_named_with_how_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("speedbench");
    std::fs::copy(env!("CARGO_BIN_EXE_speedbench"), &exe).unwrap();
    let run = |args: &[&str]| {
        // the fresh copy can be busy for a moment: another test's child,
        // forked while the copy was open for writing, holds it until it
        // execs (ETXTBSY); try again then
        let mut tries = 0;
        let o = loop {
            match std::process::Command::new(&exe)
                .current_dir(dir.path())
                .args(args)
                .output()
            {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 200 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                r => break r.unwrap(),
            }
        };
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        }
    };
    let smoke = ["run", "--profile", "smoke", "--model", "resnet50"];
    fails_with(
        &run(&[&smoke[..], &["--framework", "torch"]].concat()),
        &[
            "framework 'torch': its worker speedbench-torch is not installed beside speedbench",
            "cargo build --release -p speedbench-torch",
        ],
    );
    fails_with(
        &run(&smoke),
        &["none of the requested ones has its worker binary installed beside speedbench (installed: none)"],
    );
    fails_with(
        &run(&[
            "infer",
            "--framework",
            "tf",
            "--model",
            "resnet50",
            "--input",
            "x.npy",
            "--output",
            "y.npy",
        ]),
        &["its worker speedbench-tf is not installed"],
    );
    fails_with(
        &run(&["verify", "--model", "resnet50"]),
        &["no runtime's worker binary (speedbench-ort, -torch, -tf) is installed beside speedbench"],
    );
}
