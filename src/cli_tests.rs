//! Tests of `cli`.

use clap::CommandFactory;

/// Every flag and argument of every command says what it is.
#[test]
fn every_flag_has_help() {
    fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            let builtin = matches!(a.get_id().as_str(), "help" | "version");
            if !builtin && a.get_help().is_none() && a.get_long_help().is_none() {
                out.push(format!("{path} --{}", a.get_id()));
            }
        }
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            undocumented(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }
    let mut missing = Vec::new();
    undocumented(&super::Cli::command(), "speedbench", &mut missing);
    assert!(missing.is_empty(), "no help text: {missing:?}");
}

/// `--resume` refuses every option of `run` that the resumed plan
/// decides, and each option is either refused or read: a new option
/// must be put in one list or the other.
#[test]
fn resume_refuses_every_option_it_would_ignore() {
    use super::{Cli, RESUME_KEEPS, RESUME_REFUSES};
    let cmd = Cli::command();
    let run = cmd.find_subcommand("run").unwrap();
    let global = ["verbose", "quiet", "models_dir", "help"];
    for a in run.get_arguments() {
        let id = a.get_id().as_str();
        if global.contains(&id) {
            continue;
        }
        let refused = RESUME_REFUSES.contains(&id);
        assert!(
            refused != RESUME_KEEPS.contains(&id),
            "--{id}: in exactly one of RESUME_REFUSES and RESUME_KEEPS"
        );
        let long = a.get_long().unwrap();
        let mut argv = vec!["speedbench", "run", "--resume", "r.json", "--"];
        let flag = format!("--{long}");
        argv[4] = &flag;
        // a value of the right kind for the options that take one
        // (the last of a closed set: not a default)
        let choices = a.get_possible_values();
        let value = match (id, choices.last()) {
            (_, Some(v)) => v.get_name(),
            ("optimize", None) => "default",
            ("precision", None) => "fp32",
            _ => "1",
        };
        if a.get_action().takes_values() {
            argv.push(value);
        }
        let parsed = <Cli as clap::Parser>::try_parse_from(&argv);
        if refused {
            let e = parsed.expect_err(&flag);
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{flag}: {e}"
            );
        } else if id != "resume" {
            assert!(
                parsed.is_ok(),
                "{flag} is kept with --resume: {:?}",
                parsed.err()
            );
        }
    }
}

/// `run` and `trace` read the cells from one flattened group, so a
/// flag of one is a flag of the other.
#[test]
fn run_and_trace_take_the_same_matrix() {
    let cmd = super::Cli::command();
    let ids = |name: &str| -> std::collections::BTreeSet<String> {
        cmd.find_subcommand(name)
            .unwrap()
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect()
    };
    let (run, trace) = (ids("run"), ids("trace"));
    let matrix = <super::MatrixArgs as clap::Args>::augment_args(clap::Command::new("m"));
    for a in matrix.get_arguments() {
        let id = a.get_id().as_str();
        assert!(run.contains(id) && trace.contains(id), "{id}");
        // the matrix is the plan's: a resumed run never reads it
        assert!(super::RESUME_REFUSES.contains(&id), "{id}");
    }
    // trace times one process per cell, in no chosen order
    for dead in ["processes", "order_seed", "target", "max_time"] {
        assert!(!trace.contains(dead), "trace --{dead}");
    }
}
