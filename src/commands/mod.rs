//! One function per subcommand; each returns the process exit code. They
//! wire the layers together: config and zoo in, frameworks and bench to
//! measure, results and report out.

mod inspect;
mod merge;
mod reports;
mod run;
mod trace;

pub use inspect::{export, infer, models, verify};
pub use merge::{merge, merge_files};
pub use reports::{compare, history, report};
pub use run::run;
pub use trace::trace;

/// Text to standard output. A reader that went away (`| head`) is not an
/// error: whatever was measured is already saved.
fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}
