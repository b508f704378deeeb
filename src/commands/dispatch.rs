//! One command line, one function: what each subcommand of [`Cli`] calls.

use crate::cli::{Cli, Command};
use crate::commands;

/// Runs the command `cli` names; its exit code.
pub fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    // the models: built in, plus --models-dir where given
    let catalog = || crate::zoo::Catalog::open(cli.models_dir.as_deref());
    let progress = crate::bench::progress::Progress::for_stderr(cli.quiet);
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
            original,
        } => {
            let modes = mode.modes();
            if modes.len() != 1 {
                anyhow::bail!("--mode: infer runs one mode, sequential or parallel");
            }
            if *original {
                return commands::infer_original(&catalog()?, framework, model, input, output);
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
        Command::Verify(args) => commands::verify(&catalog()?, args, cli.verbose),
        Command::Import { file, name } => {
            commands::import(file, name.as_deref(), cli.models_dir.as_deref())
        }
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
            if *wide && (*history || *format != crate::cli::ReportFormat::Table) {
                anyhow::bail!(
                    "--wide widens --format table; the other formats are always complete"
                );
            }
            if *headline && (*history || *format != crate::cli::ReportFormat::Md) {
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
        Command::CudaLibs { framework } => commands::cuda_libs(framework),
        Command::Worker => crate::bench::worker::main().map(|_| 0),
    }
}
