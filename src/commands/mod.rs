//! One function per subcommand; each returns the process exit code. They
//! wire the layers together: config and zoo in, frameworks and bench to
//! measure, results and report out.

mod history;
mod inspect;
mod reports;
mod run;
mod trace;

pub use history::{compare as compare_history, report as history, HistoryArgs};
pub use inspect::{export, infer, models, verify};
pub use reports::{compare, report};
pub use run::run;
pub use trace::trace;

/// Text to standard output. A reader that went away (`| head`) is not an
/// error: whatever was measured is already saved.
fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}
