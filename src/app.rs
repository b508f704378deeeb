//! The program every binary runs: `speedbench` with no runtime in it, and
//! each runtime's worker (`speedbench-ort`, `-torch`, `-tf`) with its own.
//! The command line is the same in all of them; a command that runs a
//! framework in-process (`infer`, `cuda-libs`) is handed to the worker of
//! that framework's runtime, with the same arguments.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

use crate::cli::{Cli, Command};
use crate::frameworks::{self, tf_cpu, Backend};
use crate::record::Device;

/// Registers `backend` (a worker binary's runtime), parses the command line
/// and runs it; exits with the command's code, 2 on an error.
pub fn main(backend: Option<&'static Backend>) -> ! {
    let code = match backend.map_or(Ok(()), frameworks::register).and_then(|()| {
        let cli = Cli::parse();
        quiet_tensorflow(cli.verbose);
        hand_over(&cli)?;
        crate::commands::dispatch(&cli)
    }) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            2
        }
    };
    std::process::exit(code)
}

/// TensorFlow reads its log level once, as its library loads: the worker
/// binary `speedbench-tf` sets it and runs itself again where it is unset
/// (its `quiet` module). Set here, before any thread or child starts, every
/// worker inherits it, as the user's `--verbose` asks (errors only, or
/// everything), and starts once. A level the user set is left alone.
fn quiet_tensorflow(verbose: bool) {
    const LEVEL: &str = "TF_CPP_MIN_LOG_LEVEL";
    if std::env::var_os(LEVEL).is_none() {
        std::env::set_var(LEVEL, if verbose { "0" } else { "2" });
    }
}

/// Where `cli` runs a framework in this process and it is not this
/// process's runtime, runs the worker that has it instead, with the same
/// arguments (and returns only if it could not). `infer` of TensorFlow on
/// the CPU also chooses its kernels: oneDNN's or Eigen's are fixed as the
/// library loads, before `main`, so where the level wants oneDNN on
/// (`--optimize max`, [`tf_cpu`]) and the user left `TF_ENABLE_ONEDNN_OPTS`
/// unset, the worker starts with it set, as `run` and `verify` start theirs.
fn hand_over(cli: &Cli) -> Result<()> {
    let (framework, env) = match &cli.command {
        Command::Infer {
            framework,
            device,
            optimize,
            ..
        } => {
            let tf_on_cpu = crate::record::base_framework(framework) == "tf"
                && Device::from(*device) == Device::Cpu;
            let env = match tf_on_cpu {
                true => tf_cpu::env_for(*optimize)?.map(|v| (tf_cpu::ENV, v)),
                false => None,
            };
            (framework, env)
        }
        Command::CudaLibs { framework } => (framework, None),
        _ => return Ok(()),
    };
    let here = frameworks::runs_here(framework);
    if here && env.is_none() {
        return Ok(());
    }
    let exe: PathBuf = frameworks::worker_exe(framework)?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut command = std::process::Command::new(&exe);
    command.args(&args);
    if let Some((key, value)) = &env {
        command.env(key, value);
    }
    let err = command.exec();
    if here {
        // not re-executed: TensorFlow's own choice stands, and prepare
        // lowers for it
        if let Some((key, value)) = env {
            eprintln!("warning: could not run again with {key}={value}: {err}");
        }
        return Ok(());
    }
    Err(err).with_context(|| format!("cannot start {}", exe.display()))
}
