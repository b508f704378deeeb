//! `speedbench trace`: a short run of the asked cells whose product is the
//! traced pass of each (Chrome trace-event JSON, optionally the timeline
//! SVG) and a table of what each mode ran concurrently.

use crate::bench::progress::Progress;
use anyhow::{bail, Context, Result};

use super::say;
use crate::bench::runner;
use crate::cli::TraceArgs;
use crate::record::CellRecord;
use crate::report::grid::{concurrency, Grid};
use crate::zoo::Catalog;
use crate::{config, report, results};

pub fn trace(
    args: &TraceArgs,
    catalog: &Catalog,
    verbose: bool,
    progress: Progress,
) -> Result<i32> {
    for (flag, given) in [
        ("--model", &args.matrix.models),
        ("--framework", &args.matrix.frameworks),
    ] {
        if given.is_empty() {
            bail!("trace needs {flag}: name one (repeat it for several), or all");
        }
    }
    for (flag, path) in [("--out", Some(&args.out)), ("--svg", args.svg.as_ref())] {
        let Some(path) = path else { continue };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) {
            bail!("{flag} {}: the folder does not exist", path.display());
        }
    }
    let scratch = tempfile::tempdir().context("no temporary folder for the run's results")?;
    let plan = config::plan(&args.request(scratch.path().to_path_buf()), catalog)?;
    let (path, file) = results::start(&plan, None)?;
    eprintln!(
        "speedbench trace: {} on {}, {} x {}px, {} warm-up + {} timed, then one traced pass per cell",
        plan.frameworks.join("+"),
        plan.device,
        plan.first_batch(),
        plan.size,
        plan.warmup,
        plan.iters
    );
    let outcome = runner::run(path, file, true, catalog, verbose, progress)?;
    let cells: Vec<&CellRecord> = outcome.file.cells.iter().collect();
    for f in &outcome.file.failures {
        eprintln!(
            "failed: {} {} {}: {}",
            f.model, f.framework, f.device, f.cause
        );
    }
    if cells.iter().all(|c| c.trace.is_none()) {
        bail!(
            "no cell was traced; nothing written to {}",
            args.out.display()
        );
    }
    let events = crate::trace::chrome::write(&args.out, &cells)?;
    say(&report::table::fitted(
        &[summary(&cells)],
        super::terminal_width(),
    ));
    say(&format!(
        "trace: {} ({events} operations; open in https://ui.perfetto.dev or chrome://tracing)",
        args.out.display()
    ));
    if let Some(svg) = &args.svg {
        let owned: Vec<CellRecord> = cells.iter().map(|c| (*c).clone()).collect();
        let text = report::gantt::render(&owned).context("no traced pass to draw")?;
        std::fs::write(svg, text)
            .with_context(|| format!("--svg {}: cannot write", svg.display()))?;
        say(&format!("timelines: {}", svg.display()));
    }
    Ok(if outcome.file.failures.is_empty() {
        0
    } else {
        1
    })
}

/// One row per traced cell: its median, the traced pass and what ran.
fn summary(cells: &[&CellRecord]) -> Grid {
    let rows = cells
        .iter()
        .map(|c| {
            let t = c.trace.as_ref();
            vec![
                c.model.clone(),
                c.framework.clone(),
                c.mode.to_string(),
                c.optimize.to_string(),
                format!("{:.2}", c.latency.median),
                t.map_or(String::new(), |t| {
                    format!("{:.2}", t.timeline.wall_us() / 1e3)
                }),
                t.map_or(String::new(), |t| {
                    format!(
                        "{} + {} internal",
                        t.concurrency.ops, t.concurrency.internal
                    )
                }),
                concurrency(c),
            ]
        })
        .collect();
    Grid {
        title: "Traced passes".into(),
        header: ["model", "framework", "mode", "optimize", "median ms", "traced ms", "events", "ran"]
            .map(String::from)
            .to_vec(),
        rows,
        notes: vec!["One traced pass per cell after its timed iterations. events: the IR operations it timed + the framework's internal ones. ran: threads · operations in flight (summed operation time / wall time of the pass) · share of the branch work that overlapped.".into()],
    }
}
