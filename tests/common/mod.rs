//! Helpers for the integration tests: run the real binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn speedbench(args: &[&str]) -> Out {
    speedbench_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

pub fn speedbench_in(dir: &Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_speedbench"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the speedbench binary runs");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The Python of the venv ci/setup.sh made (torch, timm, onnx...).
pub fn venv_python() -> PathBuf {
    let venv = std::env::var("SPEEDBENCH_VENV")
        .expect("SPEEDBENCH_VENV is unset: run ci/setup.sh, which writes .cargo/config.toml");
    Path::new(&venv).join("bin/python")
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of models/ to break on purpose.
pub fn models_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(repo().join("models")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    dir
}
