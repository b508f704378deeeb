//! The `speedbench` binary: parses the command line and runs one command.

// TensorFlow's start-up log is silenced by a hook of the executable that runs
// before the libraries load; it belongs to this binary, not to the library
// (tests and other binaries that link the library are left alone).
#[cfg(feature = "tf")]
mod quiet;

use anyhow::Context as _;
use clap::Parser;

use speedbench::cli::{Cli, Command};
use speedbench::commands;

fn main() {
    let cli = Cli::parse();
    tf_kernels_for(&cli);
    let result = run(&cli);
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::exit(2);
        }
    }
}

/// `infer` runs TensorFlow in this process, whose CPU kernels (oneDNN's or
/// Eigen's) were chosen as the library loaded, before `main`: where the
/// level wants oneDNN on (`--optimize max`, [`speedbench::frameworks::tf_cpu`])
/// and the user left `TF_ENABLE_ONEDNN_OPTS` unset, run this program again
/// with it set, as `run` and `verify` start their workers.
fn tf_kernels_for(cli: &Cli) {
    use speedbench::frameworks::tf_cpu;
    use std::os::unix::process::CommandExt;
    let Command::Infer {
        framework,
        device,
        optimize,
        ..
    } = &cli.command
    else {
        return;
    };
    let cpu = speedbench::record::Device::from(*device) == speedbench::record::Device::Cpu;
    if framework != "tf" || !cpu {
        return;
    }
    if let (Ok(exe), Ok(Some(v))) = (std::env::current_exe(), tf_cpu::env_for(*optimize)) {
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(tf_cpu::ENV, v)
            .exec();
        // not re-executed: TensorFlow's own choice stands, and prepare
        // lowers for it
        eprintln!(
            "warning: could not run again with {}={v}: {err}",
            tf_cpu::ENV
        );
    }
}

fn run(cli: &Cli) -> anyhow::Result<i32> {
    // the models: built in, plus --models-dir where given
    let catalog = || speedbench::zoo::Catalog::open(cli.models_dir.as_deref());
    let progress = speedbench::bench::progress::Progress::for_stderr(cli.quiet);
    match &cli.command {
        Command::Run(args) => commands::run(args, &catalog()?, cli.verbose, progress),
        Command::Trace(args) => commands::trace(args, &catalog()?, cli.verbose, progress),
        Command::Models { size, format } => commands::models(&catalog()?, *size, *format),
        Command::Infer {
            framework,
            model,
            weights,
            input,
            output,
            device,
            mode,
            optimize,
            precision,
        } => {
            let modes = mode.modes();
            if modes.len() != 1 {
                anyhow::bail!("--mode: infer runs one mode, sequential or parallel");
            }
            commands::infer(
                &catalog()?,
                framework,
                model,
                weights.as_deref(),
                input,
                output,
                (*device).into(),
                modes[0],
                (*optimize, *precision),
                cli.verbose,
            )
        }
        Command::Export {
            model,
            weights,
            size,
            out,
            save_weights,
            ..
        } => commands::export(
            &catalog()?,
            model,
            weights.as_deref(),
            *size,
            out,
            save_weights.as_deref(),
        ),
        Command::Verify {
            models,
            frameworks,
            size,
            batch,
            weights,
            tolerance,
            device,
            optimize,
            precision,
            format,
        } => commands::verify(
            &catalog()?,
            (models, frameworks),
            *size,
            *batch,
            weights.clone(),
            *tolerance,
            (*device).into(),
            (*optimize, *precision),
            *format,
            cli.verbose,
        ),
        Command::Report {
            files,
            format,
            out,
            published,
            wide,
            headline,
            headline_batch,
            history,
            baseline,
        } => {
            if *wide && (*history || *format != speedbench::cli::ReportFormat::Table) {
                anyhow::bail!(
                    "--wide widens --format table; the other formats are always complete"
                );
            }
            if *headline && (*history || *format != speedbench::cli::ReportFormat::Md) {
                anyhow::bail!(
                    "--headline picks the headline of --format md (a terminal's --format table shows it anyway)"
                );
            }
            if *history {
                commands::history(files, baseline.as_deref(), *format, out.as_deref())
            } else {
                commands::report(
                    files,
                    *format,
                    out.as_deref(),
                    *published,
                    (*wide, *headline, *headline_batch),
                )
            }
        }
        Command::Merge { files, out, force } => commands::merge(files, out, *force),
        Command::Compare {
            files,
            history,
            lookback,
            z,
            append,
            threshold,
            format,
            gate,
        } => match (history, files.as_slice()) {
            (None, [baseline, current]) => {
                commands::compare(baseline, current, *threshold, *format, *gate)
            }
            (Some(dir), [current]) => commands::compare_history(&commands::HistoryArgs {
                dir,
                current,
                threshold_pct: *threshold,
                z: *z,
                lookback: *lookback,
                format: *format,
                gate: *gate,
                append: *append,
            }),
            (None, _) => anyhow::bail!(
                "compare: give BASELINE.json CURRENT.json, or --history DIR CURRENT.json"
            ),
            (Some(dir), _) => anyhow::bail!(
                "compare --history {}: give one CURRENT.json (the history folder is the baseline)",
                dir.display()
            ),
        },
        Command::CudaLibs { framework } => {
            use speedbench::frameworks::cuda_stack;
            // what must resolve, from where, at which CUDA major
            let (site, major, stack): (_, _, Vec<String>) = match framework.as_str() {
                // libtorch's stack: what its environment's nvidia/ folders hold
                // (a TensorFlow GPU build maps its own CUDA 12 runtime too)
                #[cfg(feature = "torch")]
                "torch" => {
                    let site = speedbench::frameworks::torch::load_cuda_library()?;
                    let names = cuda_stack::nvidia_dirs(&site)
                        .iter()
                        .filter_map(|d| std::fs::read_dir(d).ok())
                        .flatten()
                        .filter_map(|e| {
                            e.ok().map(|e| e.file_name().to_string_lossy().into_owned())
                        })
                        .collect();
                    (site, 13, names)
                }
                fw => {
                    let (site, major, names) = cuda_stack::expected(fw)?;
                    cuda_stack::load_for(fw)?;
                    (site, major, names.iter().map(|n| n.to_string()).collect())
                }
            };
            let stack: Vec<&str> = stack.iter().map(String::as_str).collect();
            // ci/gpu-libs.sh: ORT then loads its CUDA provider on top
            #[cfg(feature = "ort")]
            if framework.starts_with("ort")
                && std::env::var_os("SPEEDBENCH_PROBE_PROVIDER").is_some()
            {
                eprintln!(
                    "ort: {}",
                    speedbench::frameworks::ort::probe_cuda_provider()?
                );
            }
            let resolved = cuda_stack::check_resolved(
                &cuda_stack::mapped_libraries()?,
                &site,
                major,
                Some(&stack),
            )
            .with_context(|| format!("{framework}'s CUDA libraries"))?;
            for r in &resolved {
                let major = r.major.map_or("-".into(), |m| m.to_string());
                println!("{}\t{}\t{major}", r.name, r.path.display());
            }
            eprintln!(
                "{framework}: {} CUDA libraries, all from {}, CUDA {major}; no library loaded twice",
                resolved.len(),
                site.display()
            );
            Ok(0)
        }
        Command::Worker => speedbench::bench::worker::main().map(|_| 0),
    }
}
