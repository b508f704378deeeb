//! The commands that read results files: report, compare (`report
//! --history` and `compare --history` are in history.rs).

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::say;
use crate::record::RunFile;
use crate::report;

pub fn report(
    files: &[std::path::PathBuf],
    format: crate::cli::ReportFormat,
    out: Option<&Path>,
    published: bool,
    (wide, headline, headline_batch): (bool, bool, Option<usize>),
) -> Result<i32> {
    use crate::cli::ReportFormat as F;
    if files.is_empty() {
        bail!("report: give at least one results JSON file");
    }
    let mut cells = Vec::new();
    let mut plans = Vec::new();
    // one run's report says what its folder's earlier runs said, as `run`
    // wrote it
    let mut across = None;
    for f in files {
        let file = RunFile::load(f)?;
        if files.len() == 1 {
            across = super::history::across_table(f, &file);
        }
        cells.extend(file.cells);
        plans.push(file.plan);
    }
    let unsupported = report::notes(&plans.iter().collect::<Vec<_>>(), &cells);
    if cells.is_empty() {
        bail!("report: the results files hold no measured cell");
    }
    report::headline::check_batch(&cells, headline_batch)?;
    let with_published = published || report::paper_protocol(&cells);
    let mut grids = report::grids(&cells, with_published);
    if let Some(g) = grids.first_mut() {
        g.notes.extend(unsupported.iter().cloned());
    }
    grids.extend(across.clone());
    // a file gets the wide tables; a terminal the headline, unless --wide
    let view = if wide || out.is_some() {
        report::View::Wide
    } else {
        report::View::Fit(super::terminal_width())
    };
    let text = match format {
        F::Table if view == report::View::Wide => report::table::terminal(&grids),
        F::Table => {
            let width = super::terminal_width();
            let mut text = report::terminal(&cells, with_published, view, headline_batch);
            for n in &unsupported {
                text.push_str(&report::table::wrap(n, width));
            }
            if let Some(g) = &across {
                text.push('\n');
                text.push_str(&report::table::fitted(std::slice::from_ref(g), width));
            }
            text
        }
        F::Md if headline => {
            let mut g = report::headline::grid(&cells, headline_batch);
            g.notes.extend(unsupported.iter().cloned());
            report::table::markdown(&[g])
        }
        F::Md => report::table::markdown(&grids),
        F::Csv => report::csv::render(&cells)?,
        F::Json => report::json(&cells)?,
        F::Svg => report::svg::render(&cells)?,
        F::Html => report::html::render(&cells, &grids, None)?,
        F::Batches => report::batches::render(&cells).context(
            "report --format batches: the files hold one batch only (run --batch 1,4,16 measures several)",
        )??,
        F::Timeline => report::gantt::render(&cells)
            .context("report --format timeline: no cell has a traced pass (results from before traces, or every trace failed)")?,
        F::Trace => {
            let refs: Vec<&crate::record::CellRecord> = cells.iter().collect();
            let doc = crate::trace::chrome::document(&refs);
            crate::trace::chrome::validate(&doc)?;
            serde_json::to_string(&doc)?
        }
    };
    match out {
        Some(p) => {
            std::fs::write(p, text)
                .with_context(|| format!("--out {}: cannot write", p.display()))?;
            eprintln!("report: {} cells -> {}", cells.len(), p.display());
        }
        None => {
            say(text.trim_end());
            if format == F::Table && view != report::View::Wide {
                say(report::table::wrap(
                    "Full tables (paper-style, per cell): add --wide, or --format md for markdown.",
                    super::terminal_width(),
                )
                .trim_end());
            }
        }
    }
    Ok(0)
}

/// `--threshold PCT` as a fraction, refused outside [0, 100).
pub(super) fn threshold_fraction(pct: f64) -> Result<f64> {
    if !pct.is_finite() || !(0.0..100.0).contains(&pct) {
        bail!("--threshold: {pct} is not a percentage in [0, 100)");
    }
    Ok(pct / 100.0)
}

/// Loads two results files and prints their comparison; 1 on a regression.
pub fn compare(
    baseline: &Path,
    current: &Path,
    threshold_pct: f64,
    format: crate::cli::CompareFormat,
    gate: crate::cli::Gate,
) -> Result<i32> {
    use crate::cli::{CompareFormat as F, Gate};
    let threshold = threshold_fraction(threshold_pct)?;
    let b = RunFile::load(baseline)?;
    let c = RunFile::load(current)?;
    let cmp = crate::compare::compare(&b.cells, &c.cells, threshold);
    if cmp.cells.is_empty() {
        let levels = |r: &RunFile| {
            let v: Vec<String> = crate::record::levels(&r.cells)
                .iter()
                .map(ToString::to_string)
                .collect();
            v.join(", ")
        };
        let (lb, lc) = (levels(&b), levels(&c));
        if !b.cells.is_empty() && !c.cells.is_empty() && lb != lc {
            bail!(
                "{} was measured at --optimize {lb} and {} at --optimize {lc}: tuned and untuned cells are not compared; rerun with the baseline's --optimize",
                baseline.display(),
                current.display()
            );
        }
        bail!(
            "{} and {} have no cell in common (model, framework, device, mode, batch, size)",
            baseline.display(),
            current.display()
        );
    }
    let grids = report::comparison::grids(&cmp);
    let text = match format {
        F::Table => report::table::fitted(&grids, super::terminal_width()),
        F::Md => report::table::markdown(&grids),
        F::Json => serde_json::to_string_pretty(&cmp)?,
    };
    say(text.trim_end());
    let failed = match gate {
        Gate::Times => cmp.regressions(),
        Gate::Ratios => cmp
            .within_run
            .iter()
            .filter(|x| x.verdict == crate::compare::Verdict::Regressed)
            .count(),
    };
    Ok(if failed > 0 { 1 } else { 0 })
}
