//! `speedbench verify` at 128 px: every built-in framework, both modes, every
//! model, against the reference framework, within 1e-4.

mod common;

use common::speedbench;

#[test]
fn all_frameworks_agree_on_every_model() {
    let out = speedbench(&["verify", "--size", "128", "--format", "json"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let catalog = speedbench::zoo::Catalog::built_in().unwrap();
    let models = catalog.names();
    let frameworks = speedbench::frameworks::installed().len();
    // Some ScaleNets (scalenet101, scalenet50_light) have a scale-7 branch in
    // stage 4, which is 4x4 at 128 px: exactly the models that cannot be
    // built at 128 are reported as skipped, the others compared.
    let unbuildable: Vec<String> = models
        .iter()
        .filter(|m| speedbench::zoo::build(catalog.find(m).unwrap(), 128).is_err())
        .cloned()
        .collect();
    let (skipped, compared): (Vec<_>, Vec<_>) = rows
        .iter()
        .partition(|r| r["note"].as_str().unwrap().starts_with("skipped"));
    let skipped: Vec<&str> = skipped
        .iter()
        .map(|r| r["model"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, unbuildable);
    assert_eq!(unbuildable, ["scalenet101", "scalenet50_light"]);
    // every (framework, mode) but the reference itself, per model
    assert_eq!(
        compared.len(),
        (models.len() - skipped.len()) * (2 * frameworks - 1)
    );
    for r in &compared {
        assert_eq!(r["ok"], true, "{r}");
        assert!(r["max_rel_diff"].as_f64().unwrap() < 1e-4, "{r}");
    }
}

#[test]
fn verify_of_a_named_model_undefined_at_the_size_is_an_error() {
    let out = speedbench(&["verify", "--model", "scalenet50", "--size", "64"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("block layer3.1, branch 3"),
        "{}",
        out.stderr
    );
}

#[test]
fn verify_rejects_a_bad_tolerance() {
    let out = speedbench(&["verify", "--model", "resnet50", "--tolerance=-1"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--tolerance"), "{}", out.stderr);
}

/// Different runtimes differ in the last bits, so an impossible tolerance
/// must fail verify with exit code 1 (needs two frameworks built in).
#[test]
fn verify_exits_1_beyond_tolerance() {
    if speedbench::frameworks::installed().len() < 2 {
        eprintln!("only one framework built in; nothing to disagree");
        return;
    }
    let out = speedbench(&[
        "verify",
        "--model",
        "scalenet50",
        "--size",
        "128",
        "--tolerance",
        "1e-12",
    ]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("false"), "{}", out.stdout);
}

/// `verify` of TensorFlow on the CPU path this machine does not take by
/// itself (oneDNN off where the CPU would turn it on, and on where it
/// would not) against ONNX Runtime, on one model of each kind of block
/// (plain, squeeze-excitation with grouped convolutions, explicit
/// branches, ScaleNet's scales: every op the zoo uses; the deeper models
/// repeat the same blocks); and with oneDNN off at
/// `--optimize max`, where batch norms are folded and a grouped
/// convolution's bias must stay out of Eigen's fused convolution.
#[test]
fn tf_agrees_on_its_other_cpu_path() {
    use speedbench::frameworks::tf_cpu;
    use speedbench::record::Optimize;
    let flags = speedbench::bench::fma::cpu_flags();
    let own = tf_cpu::decide(Optimize::Default, None, &flags).unwrap();
    let other = if own.onednn { "0" } else { "1" };
    let env = [(tf_cpu::ENV, other)];
    let args = [
        "verify",
        "--framework",
        "ort",
        "--framework",
        "tf",
        "--size",
        "128",
    ];
    let kinds = [
        "--model",
        "resnet50",
        "--model",
        "se_resnext50",
        "--model",
        "se_resnext50_branched",
        "--model",
        "scalenet50",
    ];
    let out = common::speedbench_in_env(common::repo(), &[&args[..], &kinds[..]].concat(), &env);
    assert_eq!(out.code, 0, "{other}: {}\n{}", out.stdout, out.stderr);
    let grouped = [
        "--model",
        "resnext50",
        "--model",
        "se_resnext50",
        "--optimize",
        "max",
    ];
    let args = [&args[..], &grouped[..]].concat();
    let out = common::speedbench_in_env(common::repo(), &args, &[(tf_cpu::ENV, "0")]);
    assert_eq!(
        out.code, 0,
        "max, oneDNN off: {}\n{}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.contains("resnext50"), "{}", out.stdout);
}

/// The AVX2 fallbacks of libtorch's and oneDNN's CPU dispatch, the kernels
/// a CPU without AVX-512 runs, forced on any x86 CPU through their own
/// switches (`ATEN_CPU_CAPABILITY=avx2`, `ONEDNN_MAX_CPU_ISA=AVX2`, with
/// TensorFlow's oneDNN on): libtorch and TensorFlow agree with ONNX
/// Runtime on an ungrouped and a grouped model at every level. ONNX
/// Runtime's MLAS has no such switch.
#[test]
fn avx2_kernels_of_libtorch_and_onednn_agree() {
    let has = |f: &str| speedbench::bench::fma::cpu_flags().iter().any(|g| g == f);
    if !has("avx2") {
        return;
    }
    let env = [
        ("ATEN_CPU_CAPABILITY", "avx2"),
        ("ONEDNN_MAX_CPU_ISA", "AVX2"),
        ("TF_ENABLE_ONEDNN_OPTS", "1"),
    ];
    for level in ["default", "max"] {
        let out = common::speedbench_in_env(
            common::repo(),
            &[
                "verify",
                "--framework",
                "ort",
                "--framework",
                "torch",
                "--framework",
                "tf",
                "--model",
                "resnet50",
                "--model",
                "resnext50",
                "--size",
                "128",
                "--optimize",
                level,
            ],
            &env,
        );
        assert_eq!(out.code, 0, "{level}: {}\n{}", out.stdout, out.stderr);
    }
}
