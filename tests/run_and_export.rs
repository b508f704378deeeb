//! The main paths end to end with the real ONNX Runtime: `run` writes every
//! sample to JSON (+ CSV, markdown), `export` writes a model onnx.checker
//! accepts, `models --format json` carries the reference counts.

mod common;

use std::process::Command;

use common::{speedbench, venv_python};
use speedbench::frameworks::Optimize;
use speedbench::record::RunFile;

#[test]
fn smoke_run_keeps_every_sample_and_writes_all_formats() {
    let t = tempfile::tempdir().unwrap();
    let out = speedbench(&[
        "run",
        "--framework",
        "ort",
        "--model",
        "resnet50",
        "--profile",
        "smoke",
        "--warmup",
        "1",
        "--iters",
        "3",
        "--mode",
        "both",
        "--out",
        t.path().to_str().unwrap(),
        "--trace",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // the terminal shows the headline, 120 columns at most (COLUMNS=120),
    // and says where the wide tables are
    for needle in ["seq ms", "par ms", "speedup", "95% CI", "par ran"] {
        assert!(out.stdout.contains(needle), "{needle}: {}", out.stdout);
    }
    assert!(!out.stdout.contains("Per cell"), "{}", out.stdout);
    let table: Vec<&str> = out
        .stdout
        .lines()
        .take_while(|l| !l.starts_with("Full tables: "))
        .collect();
    assert!(
        table.iter().all(|l| l.chars().count() <= 120),
        "{}",
        out.stdout
    );
    let json: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| !p.to_string_lossy().ends_with(".trace.json"))
        .collect();
    assert_eq!(json.len(), 1);
    // the results file on a line of its own, for scripts
    let printed: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("results: "))
        .collect();
    assert_eq!(printed, [json[0].to_str().unwrap()], "{}", out.stdout);
    let md = json[0].with_extension("md");
    assert!(
        out.stdout
            .contains(&format!("Full tables: {};", md.display())),
        "{}",
        out.stdout
    );
    assert!(std::fs::read_to_string(&md).unwrap().contains("Per cell"));
    let file = RunFile::load(&json[0]).unwrap();
    assert_eq!(file.cells.len(), 2);
    assert!(file.failures.is_empty());
    assert!(file.finished.is_some());
    for c in &file.cells {
        assert_eq!(c.samples_ms.len(), 3);
        assert!(c.samples_ms.iter().all(|&s| s > 0.0));
        assert_eq!((c.batch, c.size), (1, 128));
        assert_eq!(c.params, 25_557_032);
        assert!(c.latency.min <= c.latency.median && c.latency.median <= c.latency.p99);
        assert!(
            c.framework_version.starts_with("1."),
            "{}",
            c.framework_version
        );
    }
    assert!(json[0].with_extension("csv").exists());
    assert!(json[0].with_extension("md").exists());
    // one traced pass per cell, mapped to the IR: the sequential one from
    // ORT's own profiler; the parallel one ran speedbench's schedule over
    // ORT segments where it measured faster, else the whole graph (which
    // the profiler traces)
    for c in &file.cells {
        let t = c.trace.as_ref().expect("every cell is traced");
        if c.mode == speedbench::record::Mode::Parallel {
            let s = c
                .schedule
                .as_ref()
                .expect("the parallel cell records its schedule");
            let segments = t.timeline.source.starts_with("speedbench ORT segments");
            assert_eq!(
                segments,
                !s.chosen.starts_with("sequential"),
                "{}: {}",
                t.timeline.source,
                s.chosen
            );
            if segments {
                continue;
            }
        }
        assert_eq!(t.timeline.source, "ONNX Runtime profiler");
        assert!(t.concurrency.ops > 40, "{:?}", t.concurrency);
        // ORT fuses conv1 + bn1 + relu into one Conv named after the last
        // (`relu_nchwc`): it maps to the IR node `relu`
        let stem = t
            .timeline
            .events
            .iter()
            .find(|e| e.node.as_deref() == Some("relu"));
        assert_eq!(
            stem.map(|e| e.op.as_str()),
            Some("Conv"),
            "{:?}",
            &t.timeline.events[..3]
        );
        assert!(t
            .timeline
            .events
            .iter()
            .any(|e| e.node.as_deref() == Some("maxpool")));
        assert_eq!(
            t.ideal.is_some(),
            c.mode == speedbench::record::Mode::Sequential
        );
    }
    assert!(json[0].with_extension("timeline.svg").exists());
    let trace = std::fs::read_to_string(json[0].with_extension("trace.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&trace).unwrap();
    speedbench::trace::chrome::validate(&doc).unwrap();
    // the same document from `report --format trace`, and the timelines
    let path = json[0].to_str().unwrap();
    let again = speedbench(&["report", path, "--format", "trace"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let doc2: serde_json::Value = serde_json::from_str(again.stdout.trim()).unwrap();
    assert_eq!(doc2, doc);
    let svg = speedbench(&["report", path, "--format", "timeline"]);
    assert_eq!(svg.code, 0, "{}", svg.stderr);
    assert!(
        svg.stdout.contains("ort cpu default · ideal"),
        "{}",
        &svg.stdout[..500]
    );
    assert!(svg.stdout.contains("ort cpu default · parallel"));
}

#[test]
fn exported_onnx_passes_the_checker_with_a_dynamic_batch() {
    let t = tempfile::tempdir().unwrap();
    for model in ["resnext50_branched", "scalenet50"] {
        let path = t.path().join(format!("{model}.onnx"));
        let out = speedbench(&[
            "export",
            "--model",
            model,
            "--size",
            "128",
            "--out",
            path.to_str().unwrap(),
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let check = "import onnx, sys\n\
            m = onnx.load(sys.argv[1])\n\
            onnx.checker.check_model(m, full_check=True)\n\
            i = m.graph.input[0].type.tensor_type.shape.dim\n\
            o = m.graph.output[0]\n\
            assert m.graph.input[0].name == 'input' and i[0].dim_param == 'batch', i\n\
            assert [d.dim_value for d in i[1:]] == [3, 128, 128], i\n\
            assert o.name == 'logits', o\n";
        let status = Command::new(venv_python())
            .args(["-c", check])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "onnx.checker rejected {model}");
    }
}

#[test]
fn models_json_has_the_reference_counts_for_all_eight() {
    let out = speedbench(&["models", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let all: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let text =
        std::fs::read_to_string(common::repo().join("tests/reference_model_stats.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for m in &all {
        let name = m["name"].as_str().unwrap();
        let key = if name == "resnext50_branched" {
            "resnext50"
        } else {
            name
        };
        for field in ["params", "macs", "span_macs", "max_parallel_branches"] {
            assert!(m.get(field).is_some(), "{name} lacks {field}");
        }
        assert!(m["span_macs"].as_u64().unwrap() <= m["macs"].as_u64().unwrap());
        if let Some(r) = reference.get(key) {
            assert_eq!(m["params"], r["params"], "{name}");
            assert_eq!(m["macs"], r["conv_linear_macs_224"], "{name}");
            checked += 1;
        }
    }
    assert_eq!(checked, 8);
}

#[test]
fn optimize_levels_are_timed_side_by_side_and_kept_apart() {
    let t = tempfile::tempdir().unwrap();
    let out = speedbench(&[
        "run",
        "--framework",
        "all",
        "--model",
        "resnet50",
        "--profile",
        "smoke",
        "--warmup",
        "0",
        "--iters",
        "2",
        "--mode",
        "sequential",
        "--optimize",
        "default,max",
        "--out",
        t.path().to_str().unwrap(),
        "--wide",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("--optimize default,max"),
        "{}",
        out.stderr
    );
    let json = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let file = RunFile::load(&json).unwrap();
    assert_eq!(file.plan.optimize, vec![Optimize::Default, Optimize::Max]);
    let frameworks = speedbench::frameworks::installed();
    assert_eq!(file.cells.len(), 2 * frameworks.len());
    for f in &frameworks {
        for level in [Optimize::Default, Optimize::Max] {
            let n = file
                .cells
                .iter()
                .filter(|c| c.framework == *f && c.optimize == level)
                .count();
            assert_eq!(n, 1, "{f} {level}");
        }
    }
    // --wide prints the wide tables, where every column carries its level
    for needle in [
        "ort cpu default seq ms",
        "ort cpu max seq ms",
        "different --optimize levels (default, max)",
        "Per cell",
    ] {
        assert!(out.stdout.contains(needle), "'{needle}': {}", out.stdout);
    }
    assert!(!out.stdout.contains("Full tables: "), "{}", out.stdout);
    let csv = speedbench(&["report", json.to_str().unwrap(), "--format", "csv"]);
    assert!(csv.stdout.lines().next().unwrap().contains(",optimize,"));
    assert!(csv.stdout.contains(",sequential,max,"), "{}", csv.stdout);
    assert!(
        csv.stdout.contains(",sequential,default,"),
        "{}",
        csv.stdout
    );
}

/// The binary carries its models and harness: from a folder with neither,
/// `models` and `export` work, and a --models-dir adds a model.
#[test]
fn the_binary_works_from_any_folder() {
    let t = tempfile::tempdir().unwrap();
    let out = common::speedbench_in(t.path(), &["models", "--size", "128", "--format", "csv"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for m in ["scalenet50", "se_resnext50_branched", "resnet50"] {
        assert!(out.stdout.contains(m), "{m} not in {}", out.stdout);
    }
    // not defined at 128 px: left out, with the reason
    assert!(!out.stdout.contains("scalenet101"), "{}", out.stdout);
    assert!(
        out.stderr.contains("scalenet101 skipped") && out.stderr.contains("layer4.2"),
        "{}",
        out.stderr
    );
    let onnx = t.path().join("x.onnx");
    let out = common::speedbench_in(
        t.path(),
        &[
            "export",
            "--model",
            "scalenet50",
            "--size",
            "128",
            "--out",
            "x.onnx",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(std::fs::metadata(&onnx).unwrap().len() > 1_000_000);
    let mine = t.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(
        mine.join("tiny.toml"),
        "name = \"tiny\"\n[model]\nfamily = \"resnet\"\nlayers = [1, 1, 1, 1]\n",
    )
    .unwrap();
    let out = common::speedbench_in(t.path(), &["--models-dir", "mine", "models"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("tiny") && out.stdout.contains("scalenet50"));
}

/// `--precision` and `--batch` lists: each (precision, batch) is its own
/// cells; a precision a framework cannot run is one note with its reason,
/// not a failure; the headline shows the batch asked for; the batch curves
/// are written beside the results; a bf16 cell's % of peak is against the
/// bf16 peak.
#[test]
fn precisions_and_batches_are_cells_of_their_own() {
    use speedbench::record::Precision;
    let t = tempfile::tempdir().unwrap();
    let out = speedbench(&[
        "run",
        "--framework",
        "ort",
        "--framework",
        "torch",
        "--model",
        "resnet50",
        "--profile",
        "smoke",
        "--size",
        "64",
        "--warmup",
        "0",
        "--iters",
        "2",
        "--mode",
        "both",
        "--precision",
        "fp32,bf16",
        "--batch",
        "1,2",
        "--headline-batch",
        "2",
        "--out",
        t.path().to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("this headline shows batch 2"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Not supported: ort does not run --precision bf16 on cpu"),
        "{}",
        out.stdout
    );
    let json = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("results: "))
        .unwrap()
        .to_string();
    let file = RunFile::load(std::path::Path::new(&json)).unwrap();
    assert!(file.failures.is_empty(), "{:?}", file.failures);
    assert_eq!(file.plan.batch, [1, 2]);
    assert_eq!(file.plan.precision, [Precision::Fp32, Precision::Bf16]);
    assert_eq!(file.plan.unsupported.len(), 1);
    // ort: 2 batches x 2 modes in fp32; torch: 2 batches x 2 precisions x 2 modes
    let count = |fw: &str, p: Precision| {
        file.cells
            .iter()
            .filter(|c| c.framework == fw && c.precision == p)
            .count()
    };
    assert_eq!(count("ort", Precision::Fp32), 4);
    assert_eq!(count("ort", Precision::Bf16), 0);
    assert_eq!(count("torch", Precision::Fp32), 4);
    assert_eq!(count("torch", Precision::Bf16), 4);
    for c in &file.cells {
        assert_eq!(
            c.samples_ms.len(),
            2,
            "{} {} b{}",
            c.framework,
            c.precision,
            c.batch
        );
        let peak = if c.precision.is_fp32() {
            file.machine_peak.as_ref()
        } else {
            file.precision_peaks.get(&c.precision)
        };
        assert_eq!(c.machine_peak_gmacs, peak.map(|p| p.all_gmacs));
    }
    let batches: std::collections::BTreeSet<usize> = file.cells.iter().map(|c| c.batch).collect();
    assert_eq!(batches.into_iter().collect::<Vec<_>>(), [1, 2]);
    let p = std::path::Path::new(&json);
    let curves = std::fs::read_to_string(p.with_extension("batch.svg")).unwrap();
    assert!(curves.contains("resnet50: speedup seq/par (95% CI)"));
    assert!(std::fs::read_to_string(p.with_extension("html"))
        .unwrap()
        .contains("id=\"batches\""));
    let csv = std::fs::read_to_string(p.with_extension("csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains(",precision,"));
    assert!(csv.contains(",bf16,"));
    // the report picks another batch, and refuses one not measured
    let two = speedbench(&["report", &json, "--headline-batch", "1"]);
    assert!(
        two.stdout.contains("this headline shows batch 1"),
        "{}",
        two.stdout
    );
    let bad = speedbench(&["report", &json, "--headline-batch", "3"]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr
            .contains("--headline-batch 3: no cell ran at batch 3 (batches measured: 1, 2)"),
        "{}",
        bad.stderr
    );
}
