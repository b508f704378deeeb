//! `speedbench import`: the committed fixture graphs (ci/export_onnx.py)
//! imported into a models folder, verified in every runtime against ONNX
//! Runtime running the file itself, and bad files refused with nothing
//! written.

mod common;

use std::path::{Path, PathBuf};

use common::{fails_with, speedbench};
use prost::Message;
use speedbench::graph::onnx_proto::ModelProto;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/onnx/{name}.onnx"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The files of a folder, sorted (empty where it does not exist).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn imported_fixtures_verify_in_every_runtime_against_their_own_file() {
    let d = tempfile::tempdir().unwrap();
    let models = d.path().join("models");
    for (file, name) in [("branches", None), ("shuffle", Some("shuffle_net"))] {
        let mut args = vec!["--models-dir", s(&models), "import"];
        let path = fixture(file);
        args.push(s(&path));
        if let Some(n) = name {
            args.extend(["--name", n]);
        }
        let out = speedbench(&args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("imported '"), "{}", out.stdout);
    }
    assert_eq!(
        listing(&models),
        [
            "branches.onnx",
            "branches.toml",
            "shuffle_net.onnx",
            "shuffle_net.toml"
        ]
    );
    // models lists them at their own size, with their counts
    let out = speedbench(&["--models-dir", s(&models), "models", "--format", "csv"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let row = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not listed: {}", out.stdout))
            .to_string()
    };
    assert!(row("branches (32 px)").contains(','), "{}", out.stdout);
    assert!(row("shuffle_net (16 px)").contains(','), "{}", out.stdout);
    // every runtime, both modes, against ONNX Runtime on the original file
    let out = speedbench(&[
        "--models-dir",
        s(&models),
        "verify",
        "--model",
        "branches",
        "--model",
        "shuffle_net",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    for model in ["branches", "shuffle_net"] {
        let mine: Vec<_> = rows.iter().filter(|r| r["model"] == model).collect();
        for fw in ["ort ", "ort-own ", "torch ", "tf "] {
            for mode in ["sequential", "parallel"] {
                let want = format!("{fw}{mode}");
                let r = mine
                    .iter()
                    .find(|r| r["candidate"].as_str().unwrap().starts_with(&want))
                    .unwrap_or_else(|| panic!("{model}: no row for {want}: {}", out.stdout));
                assert_eq!(r["reference"], "ort on the ONNX file itself");
                assert_eq!(r["ok"], true, "{r}");
                assert!(r["max_rel_diff"].as_f64().unwrap() < 1e-4, "{r}");
            }
        }
    }
}

#[test]
fn infer_original_runs_the_file_and_refuses_a_built_in_model() {
    let d = tempfile::tempdir().unwrap();
    let models = d.path().join("models");
    let out = speedbench(&[
        "--models-dir",
        s(&models),
        "import",
        s(&fixture("branches")),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // a batch of 3 through a file whose batch is fixed at 1
    let x = d.path().join("x.npy");
    ndarray_npy::write_npy(&x, &ndarray::Array4::<f32>::ones((3, 3, 32, 32))).unwrap();
    let y = d.path().join("y.npy");
    let infer = |model: &str, extra: &[&str]| {
        let mut args = vec![
            "--models-dir",
            s(&models),
            "infer",
            "--framework",
            "ort",
            "--model",
            model,
            "--input",
            s(&x),
            "--output",
            s(&y),
        ];
        args.extend_from_slice(extra);
        speedbench(&args)
    };
    let out = infer("branches", &["--original"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let original: ndarray::Array2<f32> = ndarray_npy::read_npy(&y).unwrap();
    assert_eq!(original.shape(), [3, 10]);
    let out = infer("branches", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lowered: ndarray::Array2<f32> = ndarray_npy::read_npy(&y).unwrap();
    let worst = (&original - &lowered)
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()));
    assert!(worst < 1e-5, "the IR's ONNX and the file differ by {worst}");
    fails_with(
        &infer("resnet50", &["--original"]),
        &["--original", "resnet50", "not an imported"],
    );
    // the wrong input size names the input
    ndarray_npy::write_npy(&x, &ndarray::Array4::<f32>::ones((1, 3, 64, 64))).unwrap();
    fails_with(&infer("branches", &["--original"]), &["--input"]);
}

#[test]
fn bad_files_and_names_are_refused_and_nothing_is_written() {
    let d = tempfile::tempdir().unwrap();
    let models = d.path().join("models");
    let import = |file: &Path, name: Option<&str>| {
        let mut args = vec!["--models-dir", s(&models), "import", s(file)];
        if let Some(n) = name {
            args.extend(["--name", n]);
        }
        speedbench(&args)
    };
    let write = |name: &str, bytes: &[u8]| {
        let p = d.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let edited = |name: &str, edit: &dyn Fn(&mut ModelProto)| {
        let mut m =
            ModelProto::decode(std::fs::read(fixture("branches")).unwrap().as_slice()).unwrap();
        edit(&mut m);
        write(name, &m.encode_to_vec())
    };
    let bytes = std::fs::read(fixture("branches")).unwrap();
    let cases: Vec<(PathBuf, Vec<&str>)> = vec![
        (
            write("text.onnx", b"not a model at all\n"),
            vec!["text.onnx", "not"],
        ),
        (
            write("cut.onnx", &bytes[..bytes.len() / 3]),
            vec!["cut.onnx", "not a complete ONNX model"],
        ),
        (
            edited("dynamic.onnx", &|m| {
                let g = m.graph.as_mut().unwrap();
                let t = g.input[0]
                    .r#type
                    .as_mut()
                    .unwrap()
                    .tensor_type
                    .as_mut()
                    .unwrap();
                t.shape.as_mut().unwrap().dim[3].value = Some(
                    speedbench::graph::onnx_proto::DimValue::DimParam("w".into()),
                );
            }),
            vec!["dynamic.onnx", "input 'input'", "static input shape"],
        ),
        (
            edited("tanh.onnx", &|m| {
                let g = m.graph.as_mut().unwrap();
                g.node
                    .iter_mut()
                    .find(|n| n.name == "/Relu_1")
                    .unwrap()
                    .op_type = "Tanh".into();
            }),
            vec!["tanh.onnx", "node '/Relu_1' (Tanh)", "not supported"],
        ),
        (
            edited("short.onnx", &|m| {
                let g = m.graph.as_mut().unwrap();
                let t = g
                    .initializer
                    .iter_mut()
                    .find(|t| t.name == "fc.weight")
                    .unwrap();
                t.dims[1] += 1;
            }),
            vec!["short.onnx", "initializer 'fc.weight'", "declares shape"],
        ),
        (
            edited("cycle.onnx", &|m| {
                let g = m.graph.as_mut().unwrap();
                let last = g.node.last().unwrap().output[0].clone();
                g.node[1].input[0] = last;
            }),
            vec!["cycle.onnx", "cycle"],
        ),
        (
            edited("dangling.onnx", &|m| {
                let g = m.graph.as_mut().unwrap();
                g.node[1].input[0] = "ghost".into();
            }),
            vec!["dangling.onnx", "'ghost'", "defines"],
        ),
        (
            d.path().join("missing.onnx"),
            vec!["missing.onnx", "cannot read"],
        ),
    ];
    for (file, needles) in &cases {
        fails_with(&import(file, Some("fresh")), needles);
        assert!(
            listing(&models).is_empty(),
            "{}: wrote {:?}",
            file.display(),
            listing(&models)
        );
    }
    // names: a built-in model's, one imported already, and no name at all
    fails_with(
        &import(&fixture("branches"), Some("resnet50")),
        &["'resnet50' exists already", "--name"],
    );
    fails_with(
        &import(&fixture("branches"), Some("a b")),
        &["--name", "'a b'"],
    );
    assert!(listing(&models).is_empty());
    assert_eq!(import(&fixture("branches"), None).code, 0);
    fails_with(
        &import(&fixture("branches"), None),
        &["'branches' exists already", "branches.toml"],
    );
    assert_eq!(listing(&models), ["branches.onnx", "branches.toml"]);
    // an imported model at another size is refused by name, with the size
    let out = speedbench(&[
        "--models-dir",
        s(&models),
        "run",
        "--model",
        "branches",
        "--size",
        "64",
    ]);
    fails_with(&out, &["branches", "32x32", "--size 32"]);
}

#[test]
fn without_a_folder_import_uses_the_users_data_folder() {
    let d = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_speedbench"))
            .args(args)
            .env("HOME", d.path())
            .env_remove("XDG_DATA_HOME")
            .env_remove("SPEEDBENCH_MODELS_DIR")
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, _, err) = run(&["import", s(&fixture("shuffle"))]);
    assert_eq!(code, Some(0), "{err}");
    let folder = d.path().join(".local/share/speedbench/models");
    assert_eq!(listing(&folder), ["shuffle.onnx", "shuffle.toml"]);
    let (_, out, err) = run(&["models", "--format", "csv"]);
    assert!(out.contains("shuffle (16 px)"), "{out}{err}");
}

/// TensorFlow's other CPU kernels (oneDNN's where the CPU has them, else
/// Eigen's) run the imported operations too: the pools with their padding,
/// the clips, the channel shuffle.
#[test]
fn imported_fixtures_agree_on_tensorflows_other_cpu_path() {
    use speedbench::frameworks::tf_cpu;
    use speedbench::record::Optimize;
    let d = tempfile::tempdir().unwrap();
    let models = d.path().join("models");
    for f in ["branches", "shuffle"] {
        let out = speedbench(&["--models-dir", s(&models), "import", s(&fixture(f))]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let flags = speedbench::bench::fma::cpu_flags();
    let own = tf_cpu::decide(Optimize::Default, None, &flags).unwrap();
    let other = if own.onednn { "0" } else { "1" };
    for level in ["default", "max"] {
        let args = [
            "--models-dir",
            s(&models),
            "verify",
            "--framework",
            "tf",
            "--model",
            "branches",
            "--model",
            "shuffle",
            "--optimize",
            level,
        ];
        let out = common::speedbench_in_env(common::repo(), &args, &[(tf_cpu::ENV, other)]);
        assert_eq!(
            out.code, 0,
            "{other} {level}: {}\n{}",
            out.stdout, out.stderr
        );
    }
}
