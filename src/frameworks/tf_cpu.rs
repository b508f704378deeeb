//! TensorFlow's two CPU paths, and which one a cell takes.
//!
//! The `tensorflow-cpu` wheel carries two sets of CPU kernels: oneDNN's
//! (Intel's library; `_MklNative*` operations after grappler's rewrites) and
//! TensorFlow's own, on Eigen. The process chooses once, as TensorFlow
//! loads, from the environment variable `TF_ENABLE_ONEDNN_OPTS` and, where
//! it is unset, from the CPU: TensorFlow 2.21 turns oneDNN on by itself
//! only on CPUs with AVX-512 VNNI or BF16, AVX-VNNI or AMX
//! (`tensorflow/core/util/util.cc`, `IsMKLEnabled`). Much of the cloud (AMD
//! Zen 2 and 3, older Xeons) has none of them, and runs Eigen.
//!
//! speedbench's rule:
//! - `TF_ENABLE_ONEDNN_OPTS` set by the user decides at every level;
//! - `--optimize none|default` leave TensorFlow its own choice;
//! - `--optimize max` (and above) turns oneDNN on wherever the CPU can run
//!   it (any x86-64 CPU with SSE4.1; TensorFlow's performance guide:
//!   "oneDNN optimizations ... can be enabled by setting
//!   TF_ENABLE_ONEDNN_OPTS=1"), by setting the variable for the worker.
//!
//! The path is a recorded fact of every tf CPU cell ([`CpuPath`]), and
//! the lowering depends on it: Eigen's fused convolution has no grouped form
//! (see `tf/lower.rs`).

use anyhow::{bail, Result};

use crate::record::{CpuPath, Optimize};

/// The variable TensorFlow reads as it loads.
pub const ENV: &str = "TF_ENABLE_ONEDNN_OPTS";

/// The CPU flags (as `/proc/cpuinfo` names them) with any of which
/// TensorFlow 2.21 turns oneDNN on by default on Linux.
pub const DEFAULT_ON: &[&str] = &[
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
];

/// oneDNN's least x86 instruction set.
const ONEDNN_NEEDS: &str = "sse4_1";

/// `TF_ENABLE_ONEDNN_OPTS` as TensorFlow's `ReadBoolFromEnvVar` reads it:
/// `0`, `1`, `true` or `false` in any case; anything else is refused here
/// rather than left to TensorFlow's own fallback.
pub fn parse_env(value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => bail!("{ENV}='{value}': expected 0, 1, true or false"),
    }
}

/// The path a tf CPU cell at `optimize` takes, given the user's
/// `TF_ENABLE_ONEDNN_OPTS` (`env`) and the CPU's flags.
pub fn decide(optimize: Optimize, env: Option<&str>, flags: &[String]) -> Result<CpuPath> {
    let has = |f: &str| flags.iter().any(|g| g == f);
    if let Some(v) = env {
        return Ok(CpuPath {
            onednn: parse_env(v)?,
            why: format!("{ENV}={v} in the environment"),
        });
    }
    if optimize.rewrites() && has(ONEDNN_NEEDS) {
        return Ok(CpuPath {
            onednn: true,
            why: format!("--optimize {optimize} sets {ENV}=1"),
        });
    }
    Ok(match DEFAULT_ON.iter().find(|f| has(f)) {
        Some(f) => CpuPath {
            onednn: true,
            why: format!("TensorFlow's default on a CPU with {f}"),
        },
        None => CpuPath {
            onednn: false,
            why: format!(
                "TensorFlow's default on a CPU without {}",
                DEFAULT_ON.join(", ")
            ),
        },
    })
}

/// The path of this process's environment and CPU.
pub fn here(optimize: Optimize) -> Result<CpuPath> {
    let env = std::env::var(ENV).ok();
    decide(optimize, env.as_deref(), &crate::bench::fma::cpu_flags())
}

/// The kernels TensorFlow chose as it loaded into this process: its own
/// rule over the environment as it was then (which `run`, `verify` and
/// `infer` set before it loads, [`env_for`]); the level plays no part.
pub fn loaded() -> Result<CpuPath> {
    here(Optimize::Default)
}

/// What a process that runs tf at `optimize` must have set in its
/// environment before TensorFlow loads: `Some("1")` where speedbench turns
/// oneDNN on, `None` where TensorFlow (or the user's variable) decides.
pub fn env_for(optimize: Optimize) -> Result<Option<&'static str>> {
    let user = std::env::var(ENV).ok();
    let path = decide(optimize, user.as_deref(), &crate::bench::fma::cpu_flags())?;
    Ok((user.is_none() && optimize.rewrites() && path.onednn).then_some("1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(f: &[&str]) -> Vec<String> {
        f.iter().map(|s| s.to_string()).collect()
    }

    const ZEN3: &[&str] = &["sse4_1", "avx2", "fma"];
    const SAPPHIRE: &[&str] = &["sse4_1", "avx2", "avx512f", "avx512_bf16", "amx_tile"];

    #[test]
    fn default_is_tensorflows_own_choice_by_the_cpu() {
        for level in [Optimize::None, Optimize::Default] {
            let off = decide(level, None, &flags(ZEN3)).unwrap();
            assert!(!off.onednn);
            assert!(off.why.contains("without avx512_vnni"), "{}", off.why);
            let on = decide(level, None, &flags(SAPPHIRE)).unwrap();
            assert!(on.onednn);
            assert_eq!(on.why, "TensorFlow's default on a CPU with avx512_bf16");
        }
        for f in DEFAULT_ON {
            assert!(
                decide(Optimize::Default, None, &flags(&[f]))
                    .unwrap()
                    .onednn,
                "{f}"
            );
        }
        // AVX-512 alone is not enough for TensorFlow
        let skylake = flags(&["sse4_1", "avx2", "avx512f", "avx512bw"]);
        assert!(!decide(Optimize::Default, None, &skylake).unwrap().onednn);
    }

    #[test]
    fn max_turns_onednn_on_where_the_cpu_runs_it() {
        for level in [Optimize::Max, Optimize::CudaGraph] {
            let p = decide(level, None, &flags(ZEN3)).unwrap();
            assert!(p.onednn);
            assert_eq!(
                p.why,
                format!("--optimize {level} sets TF_ENABLE_ONEDNN_OPTS=1")
            );
        }
        // a CPU without SSE4.1 (or flags that could not be read) keeps
        // TensorFlow's choice
        let p = decide(Optimize::Max, None, &[]).unwrap();
        assert!(!p.onednn);
        assert!(p.why.starts_with("TensorFlow's default"), "{}", p.why);
    }

    /// What `run` and `infer` set for a worker here: `1` at `max` where the
    /// user left the variable unset (on an x86 CPU), nothing below `max`.
    #[test]
    fn the_workers_variable_follows_the_rule_in_this_process() {
        let user = std::env::var(ENV).ok();
        let sse41 = crate::bench::fma::cpu_flags()
            .iter()
            .any(|f| f == ONEDNN_NEEDS);
        let want = (user.is_none() && sse41).then_some("1");
        assert_eq!(env_for(Optimize::Max).unwrap(), want);
        assert_eq!(env_for(Optimize::CudaGraph).unwrap(), want);
        for level in [Optimize::None, Optimize::Default] {
            assert_eq!(env_for(level).unwrap(), None, "{level}");
        }
        assert_eq!(loaded().unwrap(), here(Optimize::Default).unwrap());
    }

    #[test]
    fn the_users_variable_decides_at_every_level() {
        for level in [Optimize::None, Optimize::Default, Optimize::Max] {
            for (v, on) in [("0", false), ("1", true), ("TRUE", true), ("false", false)] {
                let p = decide(level, Some(v), &flags(SAPPHIRE)).unwrap();
                assert_eq!(p.onednn, on, "{level} {v}");
                assert_eq!(
                    p.why,
                    format!("TF_ENABLE_ONEDNN_OPTS={v} in the environment")
                );
            }
        }
        let e = decide(Optimize::Max, Some("yes"), &[])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "TF_ENABLE_ONEDNN_OPTS='yes': expected 0, 1, true or false"
        );
    }
}
