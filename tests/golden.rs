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
}
