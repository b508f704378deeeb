//! What a run shows while it measures: a bar per worker process on a
//! terminal; elsewhere (CI, `| tee`, `nohup`) one plain line per finished
//! process, with the time left estimated; nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// indicatif's bar, redrawn in place.
    Bar,
    /// One line per finished process.
    Lines,
    Quiet,
}

impl Progress {
    /// Bars where stderr is a terminal, else lines; `quiet` silences both.
    pub fn for_stderr(quiet: bool) -> Progress {
        if quiet {
            Progress::Quiet
        } else if std::io::stderr().is_terminal() {
            Progress::Bar
        } else {
            Progress::Lines
        }
    }

    /// A bar of `len` steps named `prefix`: drawn only in [`Progress::Bar`].
    pub fn bar(self, len: u64, prefix: String) -> ProgressBar {
        if self != Progress::Bar {
            return ProgressBar::hidden();
        }
        let style = ProgressStyle::with_template("{prefix:<44} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = ProgressBar::new(len).with_style(style);
        bar.set_prefix(prefix);
        bar
    }

    /// Prints a note on stderr unless quiet (above the bars on a
    /// terminal).
    pub fn note(self, text: &str) {
        if self != Progress::Quiet {
            eprintln!("{text}");
        }
    }

    /// Prints `line` in [`Progress::Lines`].
    pub fn line(self, line: impl FnOnce() -> String) {
        if self == Progress::Lines {
            eprintln!("{}", line());
        }
    }
}

/// `1h02m03s`, `4m05s` or `7s`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// The time left when `done` of `total` processes took `elapsed`: their
/// mean time for each of the rest; `None` before the first.
pub fn left(done: usize, total: usize, elapsed: Duration) -> Option<Duration> {
    (done > 0).then(|| elapsed.mul_f64(total.saturating_sub(done) as f64 / done as f64))
}

/// The line of a finished process: `[done/total] what: median (its time);
/// elapsed, about left`.
pub fn finished(
    done: usize,
    total: usize,
    what: &str,
    median_ms: f64,
    took: Duration,
    elapsed: Duration,
) -> String {
    let rest = match left(done, total, elapsed) {
        Some(l) if done < total => format!(", about {} left", clock(l)),
        _ => String::new(),
    };
    format!(
        "[{done}/{total}] {what}: median {median_ms:.2} ms ({}); elapsed {}{rest}",
        clock(took),
        clock(elapsed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_read_as_hours_minutes_seconds() {
        assert_eq!(clock(Duration::from_millis(7900)), "7s");
        assert_eq!(clock(Duration::from_secs(245)), "4m05s");
        assert_eq!(clock(Duration::from_secs(3723)), "1h02m03s");
    }

    #[test]
    fn the_time_left_is_the_mean_so_far_for_each_process_left() {
        assert_eq!(left(0, 10, Duration::from_secs(5)), None);
        assert_eq!(
            left(2, 10, Duration::from_secs(6)),
            Some(Duration::from_secs(24))
        );
        assert_eq!(left(10, 10, Duration::from_secs(6)), Some(Duration::ZERO));
        assert_eq!(left(12, 10, Duration::from_secs(6)), Some(Duration::ZERO));
    }

    #[test]
    fn a_finished_process_is_one_line() {
        let s = Duration::from_secs;
        assert_eq!(
            finished(3, 12, "resnet50 ort sequential 1/3", 14.768, s(4), s(65)),
            "[3/12] resnet50 ort sequential 1/3: median 14.77 ms (4s); elapsed 1m05s, about 3m15s left"
        );
        assert_eq!(
            finished(12, 12, "scalenet50 tf parallel 3/3", 80.0, s(9), s(300)),
            "[12/12] scalenet50 tf parallel 3/3: median 80.00 ms (9s); elapsed 5m00s"
        );
    }

    #[test]
    fn only_a_terminal_gets_a_bar_and_quiet_gets_nothing() {
        assert_eq!(Progress::for_stderr(true), Progress::Quiet);
        assert!(Progress::Lines.bar(10, "x".into()).is_hidden());
        assert!(Progress::Quiet.bar(10, "x".into()).is_hidden());
    }
}
