//! Every built-in framework, in both modes, reproduces the logits of the
//! reference PyTorch implementations (torchvision, timm, and ci/golden.py's
//! ScaleNet) from PyTorch-named safetensors weights, at 224 px (and
//! ScaleNet-50 at 128 px too).
//! TensorFlow is checked on both of its CPU paths, oneDNN off (its own
//! Eigen kernels, where grouped convolutions must stay unfused) and on,
//! whatever this machine's CPU would choose.

mod common;

use std::process::Command;

use common::{repo, speedbench_in_env, venv_python};
use ndarray::Array2;
use speedbench::verify::compare;

#[test]
fn frameworks_reproduce_reference_logits() {
    let dir = tempfile::tempdir().unwrap();
    let gold = dir.path();
    let status = Command::new(venv_python())
        .arg(repo().join("ci/golden.py"))
        .arg("--out")
        .arg(gold)
        .args(["--batch", "2", "--sizes", "224,128"])
        .status()
        .expect("python runs");
    assert!(status.success(), "ci/golden.py failed");
    // (speedbench model, reference model whose weights and logits it must
    // reproduce, sizes): the branched SE-ResNeXt is the grouped one's
    // weights as 32 explicit branches. 128 px is a size where ScaleNet's
    // nearest / bilinear choice depends on the pooled map's size, not the
    // scale; the other models hold to each other at 128 in tests/verify.rs.
    const BOTH: &[u32] = &[224, 128];
    let models = [
        ("resnet50", "resnet50", &[224][..]),
        ("se_resnet50", "se_resnet50", &[224]),
        ("resnext50", "resnext50", &[224]),
        ("se_resnext50", "se_resnext50", &[224]),
        ("se_resnext50_branched", "se_resnext50", &[224]),
        ("scalenet50", "scalenet50", BOTH),
    ];
    let mut cases = Vec::new();
    for (model, reference, sizes) in models {
        for &size in sizes {
            for (fw, env) in runs() {
                for mode in ["sequential", "parallel"] {
                    cases.push((model, reference, size, fw, env, mode));
                }
            }
        }
    }
    assert_eq!(cases.len(), 14 * runs().len());
    // two workers at a time: most of a worker's time is its start and
    // its session's load, one thread each
    two_at_a_time(&cases, |&(model, reference, size, fw, env, mode)| {
        let weights = gold.join(format!("{reference}.safetensors"));
        let input = gold.join(format!("{reference}_{size}_input.npy"));
        let want: Array2<f32> =
            ndarray_npy::read_npy(gold.join(format!("{reference}_{size}_logits.npy"))).unwrap();
        let path = env.first().map_or("", |e| e.1);
        let pred = gold.join(format!("pred-{model}-{size}-{fw}{path}-{mode}.npy"));
        let out = infer(env, [fw, model, mode, "fp32"], &weights, &input, &pred);
        let fw = format!("{fw} {env:?}");
        assert_eq!(out.code, 0, "{model} {fw} {mode}: {}", out.stderr);
        let got: Array2<f32> = ndarray_npy::read_npy(&pred).unwrap();
        let (_, rel, agree) = compare(&got, &want).unwrap();
        assert!(
            rel < 1e-4,
            "{model} @ {size} {fw} {mode}: max|diff|/max|ref| = {rel:e}"
        );
        assert_eq!(agree, 2, "{model} @ {size} {fw} {mode}: top-1");
    });
    bf16_on_the_cpu(gold);
}

/// `speedbench infer` of `[framework, model, mode, precision]` with these
/// weights and input, the logits to `pred`, with `env` added.
fn infer(
    env: &[(&str, &str)],
    [fw, model, mode, precision]: [&str; 4],
    weights: &std::path::Path,
    input: &std::path::Path,
    pred: &std::path::Path,
) -> common::Out {
    speedbench_with(
        env,
        &[
            "infer",
            "--framework",
            fw,
            "--model",
            model,
            "--mode",
            mode,
            "--precision",
            precision,
            "--weights",
            weights.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            pred.to_str().unwrap(),
        ],
    )
}

/// Calls `f` on every item, two at a time; the first panic stops both
/// and fails the test.
fn two_at_a_time<T: Sync>(items: &[T], f: impl Fn(&T) + Sync) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (next, failed) = (AtomicUsize::new(0), AtomicBool::new(false));
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !failed.load(Ordering::SeqCst) {
                    let Some(item) = items.get(next.fetch_add(1, Ordering::SeqCst)) else {
                        break;
                    };
                    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item)));
                    if let Err(p) = done {
                        failed.store(true, Ordering::SeqCst);
                        std::panic::resume_unwind(p);
                    }
                }
            });
        }
    });
}

/// `TF_ENABLE_ONEDNN_OPTS`, off and on.
const TF_PATHS: [&[(&str, &str)]; 2] = [
    &[("TF_ENABLE_ONEDNN_OPTS", "0")],
    &[("TF_ENABLE_ONEDNN_OPTS", "1")],
];

/// Every built-in framework with the environment it runs in: tf once per
/// CPU path, the others as the test runs.
fn runs() -> Vec<(&'static str, &'static [(&'static str, &'static str)])> {
    let mut v = Vec::new();
    for fw in speedbench::frameworks::installed() {
        if fw == "tf" {
            v.extend(TF_PATHS.iter().map(|e| (fw, *e)));
        } else {
            v.push((fw, &[][..]));
        }
    }
    v
}

fn speedbench_with(env: &[(&str, &str)], args: &[&str]) -> common::Out {
    speedbench_in_env(repo(), args, env)
}

/// The bf16 case: every framework that runs bf16 on the CPU (libtorch's
/// bfloat16 weights and activations, TensorFlow's oneDNN rewrite), both
/// modes, against the fp32 reference logits of ResNet-50 and ScaleNet-50 at
/// 224 px: within verify's bf16 tolerance (relative L2 2e-2) with the same
/// top-1 class, and measurably not fp32 (a precision silently run in fp32
/// would be within 1e-5).
fn bf16_on_the_cpu(gold: &std::path::Path) {
    use speedbench::frameworks::precision;
    use speedbench::record::{Device, Precision};
    let mut checked = 0;
    let mut refused = 0;
    for model in ["resnet50", "scalenet50"] {
        let weights = gold.join(format!("{model}.safetensors"));
        let input = gold.join(format!("{model}_224_input.npy"));
        let want: Array2<f32> =
            ndarray_npy::read_npy(gold.join(format!("{model}_224_logits.npy"))).unwrap();
        for (fw, env) in runs() {
            if precision::unsupported(fw, Device::Cpu, Precision::Bf16).is_some() {
                continue;
            }
            for mode in ["sequential", "parallel"] {
                let path = env.first().map_or("", |e| e.1);
                let pred = gold.join(format!("bf16-{model}-{fw}{path}-{mode}.npy"));
                let out = infer(env, [fw, model, mode, "bf16"], &weights, &input, &pred);
                // tf's bf16 is oneDNN's: refused with oneDNN off, or on a CPU
                // whose oneDNN takes no bf16
                if let Some(why) = tf_bf16_refusal(fw, env) {
                    assert_eq!(out.code, 2, "{model} {fw} {env:?} bf16 must be refused");
                    assert!(out.stderr.contains(&why), "{}", out.stderr);
                    refused += 1;
                    continue;
                }
                assert_eq!(out.code, 0, "{model} {fw} {mode} bf16: {}", out.stderr);
                let got: Array2<f32> = ndarray_npy::read_npy(&pred).unwrap();
                let l2 = speedbench::io::relative_l2(&got, &want).unwrap();
                let (_, _, agree) = compare(&got, &want).unwrap();
                assert!(l2 <= 2e-2, "{model} {fw} {mode} bf16: relative L2 {l2:e}");
                assert!(
                    l2 > 1e-5,
                    "{model} {fw} {mode} bf16: relative L2 {l2:e}, as fp32: not bf16"
                );
                assert_eq!(agree, 2, "{model} {fw} {mode} bf16: top-1");
                checked += 1;
            }
        }
    }
    // libtorch and TensorFlow (on both paths), where built
    let bf16: Vec<_> = runs()
        .into_iter()
        .filter(|(f, _)| precision::unsupported(f, Device::Cpu, Precision::Bf16).is_none())
        .collect();
    assert_eq!(checked + refused, 2 * 2 * bf16.len());
    // oneDNN off refuses tf's bf16 on every CPU
    assert!(refused >= 4 || !bf16.iter().any(|(f, _)| *f == "tf"));
}

/// What `infer` says when it refuses tf's bf16 in `env`, where it does.
fn tf_bf16_refusal(fw: &str, env: &[(&str, &str)]) -> Option<String> {
    use speedbench::frameworks::{precision, tf_cpu};
    use speedbench::record::{Optimize, Precision};
    if fw != "tf" {
        return None;
    }
    let path = tf_cpu::decide(
        Optimize::Default,
        env.first().map(|e| e.1),
        &speedbench::bench::fma::cpu_flags(),
    )
    .unwrap();
    precision::tf_cpu_unsupported(Precision::Bf16, &path, &speedbench::bench::fma::cpu_flags())
}
