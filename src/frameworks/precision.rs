//! Which `--precision` each framework can run on each device, and why not
//! where it cannot. A precision a framework cannot run is never run in
//! fp32 under another name: the plan records it as not supported (one line
//! in the report's notes), and [`super::prepare`] refuses it.
//!
//! | precision | torch | tf | ort, ort-own |
//! |---|---|---|---|
//! | fp32 | float32, TF32 off on CUDA | float32 | float32, TF32 off on CUDA |
//! | bf16 | weights and activations in bfloat16 (oneDNN on the CPU) | CPU: oneDNN's bfloat16 auto-mixed-precision rewrite; CUDA: not supported | not supported |
//! | fp16 | weights and activations in float16 | CUDA: the fp16 auto-mixed-precision rewrite; CPU: not supported | not supported |
//! | tf32 | CUDA: cuBLAS and cuDNN TF32 on; CPU: not supported | CUDA: TensorFlow's default (TF32 on); CPU: not supported | CUDA: the provider's `use_tf32`; CPU: not supported |

use crate::record::{base_framework, Device, Precision};

/// Why `framework` cannot run `precision` on `device`; `None` where it can.
pub fn unsupported(framework: &str, device: Device, precision: Precision) -> Option<&'static str> {
    use Device::{Cpu, Cuda};
    use Precision::{Bf16, Fp16, Fp32, Tf32};
    match (base_framework(framework), device, precision) {
        (_, _, Fp32) => None,
        (_, Cpu, Tf32) => Some("TF32 is a tensor-core mode of NVIDIA GPUs; no CPU has it"),
        ("torch", _, _) => None,
        ("tf", Cpu, Bf16) | ("tf", Cuda, Fp16 | Tf32) => None,
        ("tf", Cpu, Fp16) => Some(
            "TensorFlow's CPU fp16 rewrite (auto_mixed_precision_cpu) only emulates fp16: the operations still compute in fp32",
        ),
        ("tf", Cuda, Bf16) => {
            Some("TensorFlow's CUDA mixed-precision rewrite converts to fp16 only, not bf16")
        }
        ("ort" | "ort-own", Cuda, Tf32) => None,
        ("ort" | "ort-own", Cpu, Bf16) => Some(
            "ONNX Runtime's CPU provider has no bf16 kernels for these operations (a bf16 model fails to load)",
        ),
        ("ort" | "ort-own", Cpu, Fp16) => Some(
            "ONNX Runtime's CPU provider runs an fp16 model's convolutions through inserted casts to fp32: it would time fp32",
        ),
        ("ort" | "ort-own", Cuda, Bf16 | Fp16) => Some(
            "speedbench does not yet export the reduced-precision ONNX model the CUDA provider would need",
        ),
        _ => Some("this framework has no reduced-precision mode in speedbench"),
    }
}

/// [`unsupported`] as an error naming the cell.
pub fn check(framework: &str, device: Device, precision: Precision) -> anyhow::Result<()> {
    match unsupported(framework, device, precision) {
        Some(why) => anyhow::bail!(
            "--precision {precision}: not supported by {framework} on {device}: {why}"
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Device::{Cpu, Cuda};
    use Precision::{Bf16, Fp16, Fp32, Tf32};

    /// The table of the module's documentation, cell by cell.
    #[test]
    fn every_framework_device_and_precision_has_its_answer() {
        let runs = |f, d, p| unsupported(f, d, p).is_none();
        for f in ["ort", "ort-own", "torch", "tf", "ort#2", "torch#2"] {
            assert!(runs(f, Cpu, Fp32) && runs(f, Cuda, Fp32), "{f}");
            assert!(!runs(f, Cpu, Tf32), "{f}");
            assert!(runs(f, Cuda, Tf32), "{f}");
        }
        for p in [Bf16, Fp16] {
            assert!(runs("torch", Cpu, p) && runs("torch", Cuda, p));
            assert!(runs("torch#2", Cpu, p));
            for f in ["ort", "ort-own", "ort#3"] {
                assert!(!runs(f, Cpu, p) && !runs(f, Cuda, p), "{f} {p}");
            }
        }
        assert!(runs("tf", Cpu, Bf16) && !runs("tf", Cuda, Bf16));
        assert!(runs("tf", Cuda, Fp16) && !runs("tf", Cpu, Fp16));
        assert!(unsupported("ort", Cpu, Bf16)
            .unwrap()
            .contains("no bf16 kernels"));
        assert!(unsupported("tf", Cpu, Fp16).unwrap().contains("emulates"));
        // each refusal gives its own reason, not the catch-all's
        let why = |f, d, p| unsupported(f, d, p).unwrap_or_default();
        assert!(why("tf", Cuda, Bf16).contains("fp16 only"));
        assert!(why("ort-own", Cpu, Fp16).contains("casts to fp32"));
        for p in [Bf16, Fp16] {
            assert!(why("ort", Cuda, p).contains("does not yet export"), "{p}");
        }
        assert!(why("caffe", Cuda, Fp16).contains("no reduced-precision mode"));
        assert!(!runs("caffe", Cpu, Bf16));
    }

    #[test]
    fn the_refusal_names_the_flag_the_framework_and_the_device() {
        let e = check("ort", Cpu, Bf16).unwrap_err().to_string();
        assert!(
            e.starts_with("--precision bf16: not supported by ort on cpu: "),
            "{e}"
        );
        assert!(check("torch", Cpu, Bf16).is_ok());
    }
}
