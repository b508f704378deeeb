//! `speedbench verify`: every built-in framework, in both modes, on the same
//! weights and input, compared with the first (ONNX Runtime where built).
//! Each framework runs in its own `speedbench infer` child process, so
//! runtimes never share a process.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use ndarray::Array2;
use serde::Serialize;

pub use crate::io::compare_logits as compare;
use crate::io::seeded_input;
use crate::record::{Device, Mode, Optimize, Precision};

/// One comparison of a framework and mode against the reference.
#[derive(Debug, Clone, Serialize, tabled::Tabled)]
pub struct Agreement {
    pub model: String,
    pub reference: String,
    pub candidate: String,
    #[tabled(display_with = "sci")]
    pub max_abs_diff: f64,
    #[tabled(display_with = "sci")]
    pub max_rel_diff: f64,
    /// ||candidate - reference|| / ||reference|| over every logit: what a
    /// reduced precision is judged by.
    #[tabled(rename = "rel L2", display_with = "sci")]
    pub rel_l2: f64,
    #[tabled(rename = "top-1 agree")]
    pub top1: String,
    pub ok: bool,
    /// Why a model was not compared (e.g. too small an input for it).
    pub note: String,
}

fn sci(v: &f64) -> String {
    format!("{v:.2e}")
}

pub struct VerifyOptions<'a> {
    pub catalog: &'a crate::zoo::Catalog,
    pub models: Vec<String>,
    pub frameworks: Vec<String>,
    pub size: usize,
    pub batch: usize,
    pub weights: Option<PathBuf>,
    pub tolerance: f64,
    /// Where the candidates run; the reference always runs on the CPU.
    pub device: Device,
    /// The candidates' level; the reference runs at `default`.
    pub optimize: Optimize,
    /// The candidates' precision; the reference runs in fp32.
    pub precision: Precision,
    pub verbose: bool,
}

/// One way of running a model: framework, schedule, device and level.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    framework: String,
    mode: Mode,
    device: Device,
    optimize: Optimize,
    precision: Precision,
    /// An imported model's own ONNX file, run as it is (`infer --original`).
    original: bool,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.original {
            return write!(f, "{} on the ONNX file itself", self.framework);
        }
        write!(f, "{} {} {}", self.framework, self.mode, self.device)?;
        if self.optimize != Optimize::Default {
            write!(f, " {}", self.optimize)?;
        }
        if !self.precision.is_fp32() {
            write!(f, " {}", self.precision)?;
        }
        Ok(())
    }
}

fn infer_child(
    o: &VerifyOptions,
    dir: &Path,
    model: &str,
    t: &Target,
    input: &Path,
) -> Result<Array2<f32>> {
    let Target {
        framework,
        mode,
        device,
        optimize,
        precision,
        original,
    } = t;
    let out = dir.join(format!(
        "{model}-{framework}-{mode}-{device}-{optimize}-{precision}-{original}.npy"
    ));
    let exe = crate::frameworks::worker_exe(framework)?;
    let mut cmd = Command::new(exe);
    if let Some(d) = &o.catalog.dir {
        cmd.arg("--models-dir").arg(d);
    }
    if o.verbose {
        cmd.arg("--verbose");
    }
    cmd.args([
        "infer",
        "--framework",
        framework.as_str(),
        "--model",
        model,
        "--mode",
    ])
    .arg(mode.to_string())
    .arg("--device")
    .arg(device.to_string())
    .arg("--optimize")
    .arg(optimize.to_string())
    .arg("--precision")
    .arg(precision.to_string())
    .arg("--input")
    .arg(input)
    .arg("--output")
    .arg(&out);
    if *original {
        cmd.arg("--original");
    }
    if let Some(w) = &o.weights {
        cmd.arg("--weights").arg(w);
    }
    let res = cmd.output().context("cannot start speedbench infer")?;
    if !res.status.success() {
        let err = String::from_utf8_lossy(&res.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        let last = last.strip_prefix("Error: ").unwrap_or(last);
        bail!("{model} {t}: {last}");
    }
    ndarray_npy::read_npy(&out).with_context(|| format!("{}: unreadable logits", out.display()))
}

/// Runs the comparisons; the caller prints them and decides the exit code.
pub fn verify(o: &VerifyOptions) -> Result<Vec<Agreement>> {
    if o.frameworks.is_empty() {
        bail!("no framework to verify: no runtime's worker binary (speedbench-ort, -torch, -tf) is installed beside speedbench; `cargo build --release` builds them all");
    }
    crate::config::check_cuda_graph(&[o.optimize], o.device, &[])?;
    let dir = tempfile::tempdir().context("cannot make a temporary folder")?;
    let mut rows = Vec::new();
    for model in &o.models {
        let spec = o.catalog.find(model)?;
        // An imported model runs at the size it was exported for, and is
        // held to ONNX Runtime running its own file; the others to the
        // first framework.
        let size = crate::zoo::size_for(spec, o.size);
        let reference = match spec.onnx_file() {
            Some(_) => Target {
                framework: "ort".into(),
                mode: Mode::Sequential,
                device: Device::Cpu,
                optimize: Optimize::Default,
                precision: Precision::Fp32,
                original: true,
            },
            None => Target {
                framework: o.frameworks[0].clone(),
                mode: Mode::Sequential,
                device: Device::Cpu,
                optimize: Optimize::Default,
                precision: Precision::Fp32,
                original: false,
            },
        };
        let input = dir.path().join(format!("input-{size}.npy"));
        if !input.exists() {
            ndarray_npy::write_npy(&input, &seeded_input(o.batch, size, 0))
                .context("cannot write the verification input")?;
        }
        if let Err(e) = crate::zoo::build(spec, size) {
            // A model that is not defined at this size (a ScaleNet branch
            // that pools more than the feature map) is reported, not failed.
            rows.push(Agreement {
                model: model.clone(),
                reference: "-".into(),
                candidate: "-".into(),
                max_abs_diff: f64::NAN,
                max_rel_diff: f64::NAN,
                rel_l2: f64::NAN,
                top1: "-".into(),
                ok: true,
                note: format!("skipped: {e:#}"),
            });
            continue;
        }
        let want = infer_child(o, dir.path(), model, &reference, &input)?;
        for fw in &o.frameworks {
            let skip = if o.optimize == Optimize::CudaGraph
                && crate::record::runtimes::runtime(fw).is_none_or(|r| !r.cuda_graph)
            {
                Some(format!("skipped: {fw} has no CUDA-graph mode"))
            } else {
                crate::frameworks::precision::unsupported_at(fw, o.device, o.precision, o.optimize)?
                    .map(|why| format!("skipped: not supported: {why}"))
            };
            if let Some(note) = skip {
                rows.push(Agreement {
                    model: model.clone(),
                    reference: reference.to_string(),
                    candidate: fw.clone(),
                    max_abs_diff: f64::NAN,
                    max_rel_diff: f64::NAN,
                    rel_l2: f64::NAN,
                    top1: "-".into(),
                    ok: true,
                    note,
                });
                continue;
            }
            for mode in [Mode::Sequential, Mode::Parallel] {
                let candidate = Target {
                    framework: fw.clone(),
                    mode,
                    device: o.device,
                    optimize: o.optimize,
                    precision: o.precision,
                    original: false,
                };
                if candidate == reference {
                    continue;
                }
                let got = infer_child(o, dir.path(), model, &candidate, &input)?;
                let (abs, rel, agree) = compare(&got, &want)?;
                let l2 = crate::io::relative_l2(&got, &want)?;
                let ok = within(o.precision, o.tolerance, (rel, l2), agree == want.nrows());
                let note = if !o.precision.is_fp32() && l2 <= Precision::FP32_ERROR {
                    format!(
                        "not {}: its error is fp32's (relative L2 {l2:.1e}, at most {:.0e}): the cell ran fp32",
                        o.precision,
                        Precision::FP32_ERROR
                    )
                } else {
                    String::new()
                };
                rows.push(Agreement {
                    model: model.clone(),
                    reference: reference.to_string(),
                    candidate: candidate.to_string(),
                    max_abs_diff: abs,
                    max_rel_diff: rel,
                    rel_l2: l2,
                    top1: format!("{agree}/{}", want.nrows()),
                    ok,
                    note,
                });
            }
        }
    }
    Ok(rows)
}

/// Whether a candidate agrees with the fp32 reference: fp32 by the largest
/// element difference over the largest reference logit (`tolerance`); a
/// reduced precision by its relative L2 error
/// ([`Precision::relative_l2_tolerance`]) and the same top-1 class on every
/// input (`top1`), and an error above fp32's ([`Precision::FP32_ERROR`]):
/// a reduced-precision candidate that matches fp32 that closely did not
/// reduce precision, whatever its label.
pub fn within(precision: Precision, tolerance: f64, (max_rel, l2): (f64, f64), top1: bool) -> bool {
    match precision.relative_l2_tolerance() {
        None => max_rel < tolerance,
        Some(t) => l2 <= t && l2 > Precision::FP32_ERROR && top1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn each_precision_is_held_to_its_own_tolerance() {
        use Precision::*;
        // fp32: the element tolerance alone
        assert!(within(Fp32, 1e-4, (5e-5, 0.5), false));
        assert!(!within(Fp32, 1e-4, (1e-4, 0.0), true));
        // bf16: relative L2 up to 2e-2, and every top-1 kept
        assert!(within(Bf16, 1e-4, (0.5, 2e-2), true));
        assert!(!within(Bf16, 1e-4, (0.0, 2.1e-2), true));
        assert!(!within(Bf16, 1e-4, (0.0, 1e-3), false));
        // fp16 and tf32: 5e-3
        assert!(within(Fp16, 1e-4, (0.5, 5e-3), true));
        assert!(!within(Fp16, 1e-4, (0.0, 6e-3), true));
        assert!(!within(Tf32, 1e-4, (0.0, 6e-3), true));
        assert!(!within(Bf16, 1e-4, (0.0, f64::INFINITY), true));
        // a reduced precision whose error is fp32's ran fp32
        for p in [Bf16, Fp16, Tf32] {
            assert!(!within(p, 1e-4, (1e-7, 3.5e-7), true), "{p}");
            assert!(!within(p, 1e-4, (1e-7, 1e-5), true), "{p}");
            assert!(within(p, 1e-4, (1e-3, 2e-5), true), "{p}");
        }
    }

    #[test]
    fn compare_reports_relative_error_and_argmax() {
        let a = array![[1.0f32, 2.0], [3.0, 0.5]];
        let b = array![[1.0f32, 2.5], [3.0, 4.0]];
        let (abs, rel, agree) = compare(&a, &b).unwrap();
        assert_eq!(abs, 3.5);
        assert_eq!(rel, 3.5 / 4.0);
        assert_eq!(agree, 1);
        let nan = array![[f32::NAN, 0.0], [0.0, 0.0]];
        assert_eq!(compare(&nan, &b).unwrap().1, f64::INFINITY);
        assert!(compare(&a, &array![[1.0f32]]).is_err());
    }
}
