//! Every built-in framework, in both modes, reproduces the logits of the
//! reference PyTorch implementations (torchvision, timm, and ci/golden.py's
//! ScaleNet) from PyTorch-named safetensors weights, at 224 and 128 px.

mod common;

use std::process::Command;

use common::{repo, speedbench, venv_python};
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
    let mut checked = 0;
    // (speedbench model, reference model whose weights and logits it must
    // reproduce): the branched SE-ResNeXt is the grouped one's weights as
    // 32 explicit branches. 128 px is a size where ScaleNet's nearest /
    // bilinear choice depends on the pooled map's size, not the scale.
    let models = [
        ("resnet50", "resnet50"),
        ("se_resnet50", "se_resnet50"),
        ("resnext50", "resnext50"),
        ("se_resnext50", "se_resnext50"),
        ("se_resnext50_branched", "se_resnext50"),
        ("scalenet50", "scalenet50"),
    ];
    for (model, reference) in models {
        let weights = gold.join(format!("{reference}.safetensors"));
        for size in [224, 128] {
            let input = gold.join(format!("{reference}_{size}_input.npy"));
            let want: Array2<f32> =
                ndarray_npy::read_npy(gold.join(format!("{reference}_{size}_logits.npy"))).unwrap();
            for fw in speedbench::frameworks::built_in() {
                for mode in ["sequential", "parallel"] {
                    let pred = gold.join(format!("pred-{model}-{size}-{fw}-{mode}.npy"));
                    let out = speedbench(&[
                        "infer",
                        "--framework",
                        fw,
                        "--model",
                        model,
                        "--mode",
                        mode,
                        "--weights",
                        weights.to_str().unwrap(),
                        "--input",
                        input.to_str().unwrap(),
                        "--output",
                        pred.to_str().unwrap(),
                    ]);
                    assert_eq!(out.code, 0, "{model} {fw} {mode}: {}", out.stderr);
                    let got: Array2<f32> = ndarray_npy::read_npy(&pred).unwrap();
                    let (_, rel, agree) = compare(&got, &want).unwrap();
                    assert!(
                        rel < 1e-4,
                        "{model} @ {size} {fw} {mode}: max|diff|/max|ref| = {rel:e}"
                    );
                    assert_eq!(agree, 2, "{model} @ {size} {fw} {mode}: top-1");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 24 * speedbench::frameworks::built_in().len());
    bf16_on_the_cpu(gold);
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
    for model in ["resnet50", "scalenet50"] {
        let weights = gold.join(format!("{model}.safetensors"));
        let input = gold.join(format!("{model}_224_input.npy"));
        let want: Array2<f32> =
            ndarray_npy::read_npy(gold.join(format!("{model}_224_logits.npy"))).unwrap();
        for fw in speedbench::frameworks::built_in() {
            if precision::unsupported(fw, Device::Cpu, Precision::Bf16).is_some() {
                continue;
            }
            for mode in ["sequential", "parallel"] {
                let pred = gold.join(format!("bf16-{model}-{fw}-{mode}.npy"));
                let out = speedbench(&[
                    "infer",
                    "--framework",
                    fw,
                    "--model",
                    model,
                    "--mode",
                    mode,
                    "--precision",
                    "bf16",
                    "--weights",
                    weights.to_str().unwrap(),
                    "--input",
                    input.to_str().unwrap(),
                    "--output",
                    pred.to_str().unwrap(),
                ]);
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
    // libtorch and TensorFlow, where built
    let bf16: Vec<_> = speedbench::frameworks::built_in()
        .into_iter()
        .filter(|f| precision::unsupported(f, Device::Cpu, Precision::Bf16).is_none())
        .collect();
    assert_eq!(checked, 2 * 2 * bf16.len());
}
