//! The machine and software a run was measured on.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Environment {
    pub host: String,
    pub os: String,
    pub cpu_model: String,
    /// Logical cores available to the process.
    pub cores: usize,
    /// GPU name and driver, from nvidia-smi, where one is present.
    pub gpu: Option<String>,
    pub speedbench_version: String,
    pub git_commit: String,
}

/// Logical cores available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn gpu() -> Option<String> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,driver_version", "--format=csv,noheader"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!text.is_empty()).then(|| {
        let first = text.lines().next().unwrap_or_default();
        match first.split_once(',') {
            Some((name, driver)) => format!("{} (driver {})", name.trim(), driver.trim()),
            None => first.to_string(),
        }
    })
}

pub fn capture() -> Environment {
    Environment {
        host: host(),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        cpu_model: cpu_model(),
        cores: cores(),
        gpu: gpu(),
        speedbench_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: env!("SPEEDBENCH_GIT_COMMIT").into(),
    }
}

/// The machine's FMA peak (`bench::fma`), measured once per run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MachinePeak {
    /// What was measured: the vector unit, or the GPU formula.
    pub unit: String,
    /// One core (CPU); absent on a GPU.
    pub one_core_gmacs: Option<f64>,
    /// Every core the run uses, or the whole GPU.
    pub all_gmacs: f64,
    /// Cores (threads) of `all_gmacs`; 0 on a GPU.
    pub cores: usize,
}
