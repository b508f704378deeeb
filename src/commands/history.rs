//! The commands over a folder of runs: `compare --history DIR` (a verdict
//! against each cell's run-to-run spread, `--append` to keep the folder)
//! and `report --history` (the series, their step changes).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::say;
use crate::history::{self, steps, verdict};
use crate::record::{CellRecord, RunFile};
use crate::report;

type Time = chrono::DateTime<chrono::FixedOffset>;

/// A run's `started` time; a file whose time does not parse is named.
fn started(r: &RunFile, path: &Path) -> Result<Time> {
    chrono::DateTime::parse_from_rfc3339(&r.started).map_err(|e| {
        anyhow::anyhow!(
            "{}: field 'started' ({:?}) is not an RFC 3339 time: {e}",
            path.display(),
            r.started
        )
    })
}

/// A results file of a history folder: `*.json`, not the `*.trace.json`
/// that `run --trace` writes beside it.
fn is_results(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    p.is_file() && name.ends_with(".json") && !name.ends_with(".trace.json")
}

/// Every results file of `dir`, oldest first by `started` (then by name).
pub fn load_folder(dir: &Path) -> Result<Vec<(PathBuf, Time, RunFile)>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the history folder", dir.display()))?;
    let mut paths = Vec::new();
    for e in entries {
        let e = e.with_context(|| format!("{}: cannot read the history folder", dir.display()))?;
        if is_results(&e.path()) {
            paths.push(e.path());
        }
    }
    let mut runs = Vec::new();
    for p in paths {
        // one broken or foreign file (a failed save, a tool's JSON) must
        // not take the whole history down
        match RunFile::load(&p).and_then(|r| Ok((started(&r, &p)?, r))) {
            Ok((t, r)) => runs.push((p, t, r)),
            Err(e) => eprintln!("warning: {e:#}; skipped"),
        }
    }
    if runs.is_empty() {
        bail!(
            "{}: the history folder holds no results file (*.json)",
            dir.display()
        );
    }
    runs.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    Ok(runs)
}

/// Each speedup of the run `current` (its results file at `path`)
/// pooled with the earlier runs of the folder it lies in, over the last
/// `lookback` runs holding it; empty where the folder cannot be read or
/// holds too few.
pub fn across_folder(
    path: &Path,
    current: &RunFile,
    lookback: usize,
) -> Vec<history::across::Across> {
    let Some(dir) = path.parent().filter(|d| d.is_dir()) else {
        return Vec::new();
    };
    let Ok(now) = started(current, path) else {
        return Vec::new();
    };
    let Ok(folder) = load_folder(dir) else {
        return Vec::new();
    };
    let cells: Vec<&[CellRecord]> = folder
        .iter()
        // the current run's own file, and any run started with it, is no
        // earlier run
        .filter(|(_, t, _)| *t < now)
        .map(|(_, _, r)| r.cells.as_slice())
        .collect();
    let held = current.plan.schedules_from.is_some();
    history::across::across(&cells, &current.cells, lookback, held)
}

/// The table "Across runs" of the run `current` (its results file at
/// `path`) against the earlier runs of its folder, where it has one.
pub fn across_table(path: &Path, current: &RunFile) -> Option<report::grid::Grid> {
    let across = across_folder(path, current, history::across::LOOKBACK);
    report::across::grid(
        &across,
        current.plan.schedules_from.is_some(),
        current.plan.target,
    )
}

/// What `compare --history` is asked.
pub struct HistoryArgs<'a> {
    pub dir: &'a Path,
    pub current: &'a Path,
    pub threshold_pct: f64,
    pub z: f64,
    pub lookback: usize,
    pub format: crate::cli::CompareFormat,
    pub gate: crate::cli::Gate,
    pub append: bool,
}

/// Judges CURRENT against the runs of DIR that started before it; 1 on a
/// regression. `--append` then copies CURRENT into DIR.
pub fn compare(a: &HistoryArgs) -> Result<i32> {
    use crate::cli::{CompareFormat as F, Gate};
    let threshold = super::reports::threshold_fraction(a.threshold_pct)?;
    if !a.z.is_finite() || a.z <= 0.0 {
        bail!("--z: {} is not a positive number of spreads", a.z);
    }
    if a.lookback < verdict::MIN_RUNS {
        bail!(
            "--lookback: {} runs give no spread; at least {}",
            a.lookback,
            verdict::MIN_RUNS
        );
    }
    let current = RunFile::load(a.current)?;
    let now = started(&current, a.current)?;
    let folder = load_folder(a.dir)?;
    let (before, after): (Vec<_>, Vec<_>) = folder.iter().partition(|(_, t, _)| *t < now);
    if before.is_empty() {
        bail!(
            "{}: no run in the history folder started before {} ({})",
            a.dir.display(),
            a.current.display(),
            current.started
        );
    }
    let later = after.iter().filter(|(_, _, r)| *r != current).count();
    if later > 0 {
        eprintln!(
            "compare --history: {later} run(s) of {} started after {}, left out",
            a.dir.display(),
            a.current.display()
        );
    }
    let cells: Vec<&[CellRecord]> = before.iter().map(|(_, _, r)| r.cells.as_slice()).collect();
    let params = verdict::Params {
        threshold,
        z: a.z,
        lookback: a.lookback,
    };
    let mut cmp = verdict::judge_run(&cells, &current.cells, &params);
    let held = current.plan.schedules_from.is_some();
    cmp.across = history::across::across(&cells, &current.cells, a.lookback, held);
    if cmp.cells.is_empty() {
        bail!(
            "{} and the history folder {} have no cell in common (model, framework, device, mode, --optimize, batch, size)",
            a.current.display(),
            a.dir.display()
        );
    }
    let mut grids = report::history_table::grids(&cmp);
    grids.extend(report::across::grid(&cmp.across, held, current.plan.target));
    let text = match a.format {
        F::Table => report::table::fitted(&grids, super::terminal_width()),
        F::Md => report::table::markdown(&grids),
        F::Json => serde_json::to_string_pretty(&cmp)?,
    };
    say(text.trim_end());
    if a.append {
        append(a.dir, a.current, &current, &folder)?;
    }
    let failed = match a.gate {
        Gate::Times => cmp.regressions(),
        Gate::Ratios => cmp.ratio_regressions(),
    };
    Ok(if failed > 0 { 1 } else { 0 })
}

/// Copies a results file into the history folder under its own name
/// (atomically); a run the folder already holds is not copied twice.
fn append(
    dir: &Path,
    path: &Path,
    run: &RunFile,
    folder: &[(PathBuf, Time, RunFile)],
) -> Result<()> {
    if let Some((held, _, _)) = folder.iter().find(|(_, _, r)| r == run) {
        eprintln!("--append: {} holds this run already", held.display());
        return Ok(());
    }
    let name = path
        .file_name()
        .with_context(|| format!("--append: {} has no file name", path.display()))?;
    let to = dir.join(name);
    if to.exists() {
        bail!(
            "--append: {} exists and holds another run; rename {} first",
            to.display(),
            path.display()
        );
    }
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::copy(path, &tmp)
        .and_then(|_| std::fs::rename(&tmp, &to))
        .with_context(|| format!("--append: cannot write {}", to.display()))?;
    eprintln!("appended: {}", to.display());
    Ok(())
}

/// `report --history`: runs (files, or folders of them) in time order, the
/// baseline marked; the chart (svg) or the step changes (table, md, json).
pub fn report(
    files: &[PathBuf],
    baseline: Option<&Path>,
    format: crate::cli::ReportFormat,
    out: Option<&Path>,
) -> Result<i32> {
    use crate::cli::ReportFormat as F;
    if !matches!(format, F::Svg | F::Html | F::Table | F::Md | F::Json) {
        bail!("--history draws a chart (--format svg, or html: the newest run's page with it) or lists the step changes (--format table, md or json)");
    }
    let mut runs = Vec::new();
    for f in files {
        if f.is_dir() {
            runs.extend(load_folder(f)?);
        } else if Some(f.as_path()) != baseline {
            let r = RunFile::load(f)?;
            runs.push((f.clone(), started(&r, f)?, r));
        }
    }
    let mut base_started = None;
    if let Some(b) = baseline {
        let r = RunFile::load(b).context("--baseline")?;
        base_started = Some(r.started.clone());
        runs.push((b.to_path_buf(), started(&r, b)?, r));
    }
    runs.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    // a saved baseline is a copy of a run: each run once
    runs.dedup_by(|a, b| a.2.started == b.2.started);
    let runs: Vec<RunFile> = runs.into_iter().map(|(_, _, r)| r).collect();
    let base_index = base_started.and_then(|s| runs.iter().position(|r| r.started == s));
    let series = history::series(&runs, &steps::Params::default());
    let listed = history::listed(&series, &runs);
    let text = match format {
        F::Svg | F::Html => {
            for s in &listed {
                eprintln!(
                    "step: {} at run {} ({}): {:.3} -> {:.3} ms, {:+.1}%",
                    s.cell,
                    s.run,
                    s.started,
                    s.before_ms,
                    s.after_ms,
                    s.change * 100.0
                );
            }
            let svg = report::history::render(&runs, &series, base_index)?;
            match (format, runs.last()) {
                // the page: the newest run's tables and charts, the history chart
                (F::Html, Some(newest)) => {
                    let cells = &newest.cells;
                    let grids = report::grids(cells, report::paper_protocol(cells));
                    report::html::render(cells, &grids, Some(&svg))?
                }
                _ => svg,
            }
        }
        F::Json => serde_json::to_string_pretty(&listed)?,
        F::Md | F::Table => {
            let g = [report::history_table::steps(
                &listed,
                series.len(),
                runs.len(),
            )];
            if format == F::Md {
                report::table::markdown(&g)
            } else {
                report::table::terminal(&g)
            }
        }
        other => bail!("--history: --format {other:?} is not a history format"),
    };
    match out {
        Some(p) => std::fs::write(p, text)
            .with_context(|| format!("--out {}: cannot write", p.display()))?,
        None => say(text.trim_end()),
    }
    Ok(0)
}
