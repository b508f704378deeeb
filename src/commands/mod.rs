//! One function per subcommand; each returns the process exit code. They
//! wire the layers together: config and zoo in, frameworks and bench to
//! measure, results and report out.

mod dispatch;
pub mod history;
mod import;
mod inspect;
mod merge;
mod reports;
mod run;
mod trace;

pub use dispatch::dispatch;
pub use history::{compare as compare_history, report as history, HistoryArgs};
pub use import::import;
pub use inspect::{cuda_libs, export, infer, infer_original, models, verify};
pub use merge::{merge, merge_files};
pub use reports::{compare, report};
pub use run::run;
pub use trace::trace;

/// The width a terminal table may take when it cannot be asked.
const DEFAULT_WIDTH: usize = 120;

/// The columns the terminal shows: COLUMNS where set, else the terminal's
/// own width (standard output, error or input, the first that is one), else
/// 120.
fn terminal_width() -> usize {
    width_from(
        std::env::var("COLUMNS").ok().as_deref(),
        terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)),
    )
}

fn width_from(columns: Option<&str>, asked: Option<usize>) -> usize {
    columns
        .and_then(|c| c.trim().parse().ok())
        .filter(|&w: &usize| w > 0)
        .or(asked)
        .unwrap_or(DEFAULT_WIDTH)
}

/// Text to standard output. A reader that went away (`| head`) is not an
/// error: whatever was measured is already saved.
fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_first_then_the_terminal_then_120() {
        assert_eq!(width_from(Some("80"), Some(200)), 80);
        assert_eq!(width_from(Some(" 100 "), None), 100);
        // unusable COLUMNS: the terminal's, else 120
        assert_eq!(width_from(Some("wide"), Some(200)), 200);
        assert_eq!(width_from(Some("0"), None), 120);
        assert_eq!(width_from(None, None), 120);
    }
}
