//! Where each runtime runs: in its own worker binary (`speedbench-ort`,
//! `speedbench-torch`, `speedbench-tf`, one crate each under `runtimes/`),
//! which registers its [`Backend`] as it starts. The `speedbench` command
//! links none of them: it finds the worker of each cell's runtime beside
//! its own executable and starts it.

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{bail, Result};

use super::Framework;
use crate::record::{runtimes, FRAMEWORKS};

/// A runtime's crate, as its worker binary registers it.
pub struct Backend {
    /// The framework names it runs (`ort` and `ort-own`), as
    /// [`runtimes::RUNTIMES`] names them.
    pub names: &'static [&'static str],
    /// The framework of one of those names.
    pub make: fn(&str) -> Box<dyn Framework>,
}

static REGISTERED: OnceLock<&'static Backend> = OnceLock::new();

/// Registers the runtime this process runs in-process (a worker binary's
/// first step); a second registration is refused.
pub fn register(backend: &'static Backend) -> Result<()> {
    REGISTERED
        .set(backend)
        .map_err(|_| anyhow::anyhow!("a runtime is already registered in this process"))
}

/// Whether framework `name` runs in this process (its worker binary).
pub fn runs_here(name: &str) -> bool {
    let base = crate::record::base_framework(name);
    REGISTERED.get().is_some_and(|b| b.names.contains(&base))
}

/// The framework called `name`, in this process: only the worker binary of
/// its runtime has it.
pub fn by_name(name: &str) -> Result<Box<dyn Framework>> {
    let base = crate::record::base_framework(name);
    if let Some(b) = REGISTERED.get().filter(|_| runs_here(name)) {
        return Ok((b.make)(base));
    }
    match runtimes::runtime(name) {
        Some(r) => bail!(
            "framework '{base}' runs in its worker {}, not in this process ({}); run {} or let speedbench start it",
            r.worker,
            this_exe_name(),
            r.worker
        ),
        None => Err(unknown(name)),
    }
}

fn unknown(name: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "unknown framework '{}' (expected one of: {})",
        crate::record::base_framework(name),
        FRAMEWORKS.join(", ")
    )
}

fn this_exe_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "speedbench".into())
}

/// The folders a worker binary may lie in: this executable's own, and the
/// one above where this is a test binary in cargo's `deps/`.
fn worker_dirs() -> Vec<PathBuf> {
    let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(PathBuf::from))
    else {
        return vec![];
    };
    let mut dirs = vec![dir.clone()];
    if dir.file_name().is_some_and(|n| n == "deps") {
        dirs.extend(dir.parent().map(PathBuf::from));
    }
    dirs
}

/// The executable that runs framework `name`: this one where its runtime
/// is registered here, else its worker binary beside this executable.
pub fn worker_exe(name: &str) -> Result<PathBuf> {
    let Some(r) = runtimes::runtime(name) else {
        return Err(unknown(name));
    };
    if runs_here(name) {
        return Ok(std::env::current_exe()?);
    }
    let dirs = worker_dirs();
    if let Some(exe) = dirs.iter().map(|d| d.join(r.worker)).find(|p| p.is_file()) {
        return Ok(exe);
    }
    bail!(
        "framework '{}': its worker {} is not installed beside {} (looked in {}); build it with `cargo build --release` (all runtimes) or `cargo build --release -p {}`",
        crate::record::base_framework(name),
        r.worker,
        this_exe_name(),
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        r.worker
    )
}

/// The frameworks this installation can run: those whose worker binary is
/// here (or registered in this process), in report order.
pub fn installed() -> Vec<&'static str> {
    FRAMEWORKS
        .into_iter()
        .filter(|f| worker_exe(f).is_ok())
        .collect()
}
