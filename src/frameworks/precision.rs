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

/// Why TensorFlow cannot run `precision` on the CPU on `path` with these
/// CPU `flags`, where the kernels decide: its bf16 rewrite
/// (`auto_mixed_precision_onednn_bfloat16`) is oneDNN's, so with oneDNN off
/// it leaves the graph in fp32; and oneDNN in TensorFlow takes bf16 only on
/// CPUs with AVX-512 or AVX-NE-CONVERT (`IsBF16SupportedByOneDNNOnThisCPU`),
/// falling back to fp32 elsewhere.
pub fn tf_cpu_unsupported(
    precision: Precision,
    path: &crate::record::CpuPath,
    flags: &[String],
) -> Option<String> {
    if precision != Precision::Bf16 {
        return None;
    }
    if !path.onednn {
        return Some(format!(
            "TensorFlow's bf16 rewrite is oneDNN's, and oneDNN is off ({}): the cell would run fp32; TF_ENABLE_ONEDNN_OPTS=1 (or --optimize max, where it is unset) turns oneDNN on",
            path.why
        ));
    }
    let has = |f: &str| flags.iter().any(|g| g == f);
    (!has("avx512f") && !has("avx_ne_convert")).then(|| {
        "TensorFlow's oneDNN takes bf16 only on CPUs with AVX-512 or AVX-NE-CONVERT; on this one its rewrite leaves the graph in fp32".to_string()
    })
}

/// Why this CPU only emulates `precision` (its arithmetic done in fp32
/// after conversions, often far slower than fp32), where it does: bf16
/// without bf16 dot products (AVX-512 BF16 or AMX-BF16), fp16 without
/// AVX-512 FP16 or AMX-FP16, or with oneDNN capped below the instructions
/// by `ONEDNN_MAX_CPU_ISA` (`cap`, oneDNN's own switch). `None` on a GPU
/// and for fp32.
pub fn emulated(
    device: Device,
    precision: Precision,
    flags: &[String],
    cap: Option<&str>,
) -> Option<&'static str> {
    let has = |f: &str| flags.iter().any(|g| g == f);
    // oneDNN's ISAs in order (cpu_isa_traits.hpp), from which on each
    // precision has its instructions
    const ISAS: [&str; 15] = [
        "SSE41",
        "AVX",
        "AVX2",
        "AVX2_VNNI",
        "AVX2_VNNI_2",
        "AVX512_CORE",
        "AVX512_CORE_VNNI",
        "AVX512_CORE_BF16",
        "AVX10_1_512",
        "AVX512_CORE_FP16",
        "AVX10_1_512_AMX",
        "AVX512_CORE_AMX",
        "AVX10_1_512_AMX_FP16",
        "AVX512_CORE_AMX_FP16",
        "ALL",
    ];
    let rank = |isa: &str| ISAS.iter().position(|i| i.eq_ignore_ascii_case(isa.trim()));
    let capped = |needs: &str| cap.and_then(rank).is_some_and(|c| Some(c) < rank(needs));
    if device == Device::Cpu && precision == Precision::Bf16 && capped("AVX512_CORE_BF16") {
        return Some(
            "ONEDNN_MAX_CPU_ISA keeps oneDNN below its bf16 instructions (AVX512_CORE_BF16)",
        );
    }
    if device == Device::Cpu && precision == Precision::Fp16 && capped("AVX10_1_512") {
        return Some("ONEDNN_MAX_CPU_ISA keeps oneDNN below its fp16 instructions (AVX10_1_512)");
    }
    match (device, precision) {
        (Device::Cpu, Precision::Bf16) if !has("avx512_bf16") && !has("amx_bf16") => {
            Some("this CPU has no bf16 dot products (AVX-512 BF16 or AMX-BF16)")
        }
        (Device::Cpu, Precision::Fp16) if !has("avx512_fp16") && !has("amx_fp16") => {
            Some("this CPU has no fp16 arithmetic (AVX-512 FP16 or AMX-FP16)")
        }
        _ => None,
    }
}

/// Why `framework` cannot run `precision` on `device` at `optimize`: the
/// framework's own limits ([`unsupported`]), then TensorFlow's CPU path at
/// that level ([`tf_cpu_unsupported`]).
pub fn unsupported_at(
    framework: &str,
    device: Device,
    precision: Precision,
    optimize: crate::record::Optimize,
) -> anyhow::Result<Option<String>> {
    if let Some(why) = unsupported_level(framework, precision, optimize) {
        return Ok(Some(why.into()));
    }
    let path = || super::tf_cpu::here(optimize);
    unsupported_on(
        framework,
        device,
        precision,
        &path,
        &crate::bench::fma::cpu_flags(),
    )
}

/// [`unsupported_at`] with TensorFlow's CPU `path` (asked for only where
/// it matters) and the CPU's `flags` given.
fn unsupported_on(
    framework: &str,
    device: Device,
    precision: Precision,
    path: &dyn Fn() -> anyhow::Result<crate::record::CpuPath>,
    flags: &[String],
) -> anyhow::Result<Option<String>> {
    if let Some(why) = unsupported(framework, device, precision) {
        return Ok(Some(why.to_string()));
    }
    if (base_framework(framework), device) != ("tf", Device::Cpu) {
        return Ok(None);
    }
    Ok(tf_cpu_unsupported(precision, &path()?, flags))
}

/// Why `framework` cannot run `precision` at `optimize`, where the level
/// decides: TensorFlow's reduced precisions are grappler's
/// auto-mixed-precision rewrites, which `--optimize none` turns off.
pub fn unsupported_level(
    framework: &str,
    precision: Precision,
    optimize: crate::record::Optimize,
) -> Option<&'static str> {
    (base_framework(framework) == "tf"
        && optimize == crate::record::Optimize::None
        && matches!(precision, Precision::Bf16 | Precision::Fp16))
    .then_some("TensorFlow's reduced precisions are grappler's auto-mixed-precision rewrite, which --optimize none turns off: time it at default or max")
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

    /// TensorFlow's reduced precisions need grappler, which `none` turns
    /// off; fp32, TF32, the other levels and other runtimes have no such
    /// rule.
    #[test]
    fn tf_reduced_precision_needs_a_level_with_grappler() {
        use crate::record::Optimize::{Default, Max, None as Off};
        for (framework, precision, level, refused) in [
            ("tf", Precision::Bf16, Off, true),
            ("tf#2", Precision::Fp16, Off, true),
            ("tf", Precision::Bf16, Default, false),
            ("tf", Precision::Fp16, Max, false),
            ("tf", Precision::Fp32, Off, false),
            ("tf", Precision::Tf32, Off, false),
            ("torch", Precision::Bf16, Off, false),
            ("ort", Precision::Fp16, Off, false),
        ] {
            let why = unsupported_level(framework, precision, level);
            assert_eq!(why.is_some(), refused, "{framework} {precision} {level}");
            assert!(why.is_none_or(|w| w.contains("--optimize none")));
        }
    }
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
    fn tf_bf16_on_the_cpu_needs_onednn() {
        use crate::record::CpuPath;
        let path = |onednn| CpuPath {
            onednn,
            why: "why".into(),
        };
        let avx512 = ["avx2", "avx512f"].map(String::from);
        let zen3 = ["avx2".to_string()];
        assert_eq!(tf_cpu_unsupported(Bf16, &path(true), &avx512), None);
        assert_eq!(tf_cpu_unsupported(Fp32, &path(false), &zen3), None);
        let why = tf_cpu_unsupported(Bf16, &path(false), &avx512).unwrap();
        assert!(why.contains("oneDNN is off (why)"), "{why}");
        let why = tf_cpu_unsupported(Bf16, &path(true), &zen3).unwrap();
        assert!(why.contains("only on CPUs with AVX-512"), "{why}");
        let gnr = ["avx2", "avx_ne_convert"].map(String::from);
        assert_eq!(tf_cpu_unsupported(Bf16, &path(true), &gnr), None);
    }

    #[test]
    fn the_level_decides_tf_bf16_on_the_cpu_alone() {
        use crate::record::{CpuPath, Optimize};
        let off = || {
            Ok(CpuPath {
                onednn: false,
                why: "off".into(),
            })
        };
        let avx512 = ["avx512f".to_string()];
        let on = |f, d, p| unsupported_on(f, d, p, &off, &avx512).unwrap();
        assert!(on("tf", Cpu, Bf16).unwrap().contains("oneDNN is off (off)"));
        assert!(on("tf#2", Cpu, Bf16).is_some());
        for (f, d, p) in [("torch", Cpu, Bf16), ("tf", Cuda, Fp16), ("tf", Cpu, Fp32)] {
            assert_eq!(on(f, d, p), None, "{f} {d} {p}");
        }
        // a framework's own refusal comes first, whatever the path
        let generic = unsupported("ort", Cpu, Bf16).map(String::from);
        assert_eq!(on("ort", Cpu, Bf16), generic);
        let failing = || anyhow::bail!("bad variable");
        assert!(unsupported_on("tf", Cpu, Bf16, &failing, &avx512).is_err());
        assert!(unsupported_on("torch", Cpu, Bf16, &failing, &avx512).is_ok());
        // in this process: the framework's own refusals, then the path here
        let here = |f, p| unsupported_at(f, Cpu, p, Optimize::Default).unwrap();
        assert_eq!(here("ort", Bf16), generic);
        assert_eq!(here("torch", Bf16), None);
    }

    #[test]
    fn a_precision_without_its_unit_is_emulated() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let zen3 = f(&["avx2", "fma"]);
        let zen4 = f(&["avx2", "avx512f", "avx512_bf16"]);
        let spr = f(&["avx512f", "avx512_fp16", "amx_bf16"]);
        assert!(emulated(Cpu, Bf16, &zen3, None)
            .unwrap()
            .contains("bf16 dot products"));
        assert!(emulated(Cpu, Fp16, &zen4, None)
            .unwrap()
            .contains("fp16 arithmetic"));
        assert_eq!(emulated(Cpu, Bf16, &zen4, None), None);
        assert_eq!(emulated(Cpu, Bf16, &f(&["amx_bf16"]), None), None);
        assert_eq!(emulated(Cpu, Fp16, &spr, None), None);
        assert_eq!(emulated(Cpu, Fp16, &f(&["amx_fp16"]), None), None);
        assert_eq!(emulated(Cpu, Fp32, &zen3, None), None);
        assert_eq!(emulated(Cuda, Bf16, &zen3, None), None);
        // oneDNN's own cap
        let capped = emulated(Cpu, Bf16, &zen4, Some("avx2")).unwrap();
        assert!(capped.contains("ONEDNN_MAX_CPU_ISA"), "{capped}");
        assert!(emulated(Cpu, Bf16, &zen4, Some("AVX512_CORE")).is_some());
        assert_eq!(emulated(Cpu, Bf16, &zen4, Some("AVX512_CORE_BF16")), None);
        assert_eq!(emulated(Cpu, Bf16, &zen4, Some("ALL")), None);
        assert_eq!(emulated(Cpu, Bf16, &zen4, Some("nonsense")), None);
        assert!(emulated(Cpu, Fp16, &spr, Some("AVX512_CORE_BF16")).is_some());
        assert_eq!(emulated(Cpu, Fp16, &spr, Some("AVX512_CORE_FP16")), None);
        assert_eq!(emulated(Cuda, Bf16, &zen4, Some("AVX2")), None);
        assert_eq!(emulated(Cpu, Fp32, &zen4, Some("AVX2")), None);
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
