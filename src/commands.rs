//! One function per subcommand; each returns the process exit code.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::bench::runner;
use crate::cli::{Format, RunArgs};
use crate::frameworks::{self, Device, Mode, Optimize, PrepareOptions};
use crate::graph::analysis::{analyse, Analysis};
use crate::graph::onnx;
use crate::report;
use crate::zoo::{self, spec};

/// Text to standard output. A reader that went away (`| head`) is not an
/// error: whatever was measured is already saved.
fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// `results/baselines/NAME.json`, or NAME itself when it is a .json path.
pub fn baseline_path(name: &str) -> Result<std::path::PathBuf> {
    if name.ends_with(".json") {
        return Ok(name.into());
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        bail!("baseline name '{name}': use letters, digits, '-', '_' and '.' only");
    }
    Ok(Path::new("results/baselines").join(format!("{name}.json")))
}

pub fn run(args: &RunArgs, models_dir: &Path, verbose: bool) -> Result<i32> {
    let save_as = args
        .save_baseline
        .as_deref()
        .map(baseline_path)
        .transpose()?;
    let compare_with = args.baseline.as_deref().map(baseline_path).transpose()?;
    if let Some(b) = &compare_with {
        // fail before measuring anything
        crate::bench::record::RunFile::load(b).context("--baseline")?;
    }
    let (path, file) = match &args.resume {
        Some(p) => {
            let file = crate::bench::record::RunFile::load(p)?;
            eprintln!(
                "resuming {}: {} cell(s) already measured",
                p.display(),
                file.cells.len()
            );
            (p.clone(), file)
        }
        None => {
            let plan = crate::config::plan(args, models_dir)?;
            // refuse what cannot be built or cannot fit before measuring anything
            for m in &plan.models {
                let spec = spec::ModelSpec::find(models_dir, m)?;
                let g = zoo::build(&spec, plan.size)?;
                crate::bench::memory::check(&g, plan.batch, plan.sessions())?;
            }
            let cores = crate::config::cores();
            let busiest = plan.intra_threads * plan.inter_threads;
            if plan.modes.contains(&Mode::Parallel) && busiest > cores {
                eprintln!(
                    "note: parallel mode may run {} intra-op x {} inter-op = {busiest} threads on {cores} core(s); \
                     ort and tf oversubscribe, torch divides the intra-op threads (set [threads] in {})",
                    plan.intra_threads,
                    plan.inter_threads,
                    args.config.display()
                );
            }
            runner::start(&plan)?
        }
    };
    let plan = file.plan.clone();
    eprintln!(
        "speedbench run: profile {} ({} x {}px, {} warm-up + {} timed), {} on {}, {} thread(s) intra, {} inter, --optimize {}",
        plan.profile, plan.batch, plan.size, plan.warmup, plan.iters,
        plan.frameworks.join("+"), plan.device, plan.intra_threads, plan.inter_threads,
        plan.optimize.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
    );
    let outcome = runner::run(path, file, models_dir, verbose)?;
    let (path, file) = (outcome.path, outcome.file);
    let grids = report::grids(&file.cells, paper_protocol(&file.cells));
    say(&report::table::terminal(&grids));
    let mut written = vec![];
    let csv_path = path.with_extension("csv");
    std::fs::write(&csv_path, report::csv::render(&file.cells)?)
        .with_context(|| format!("{}: cannot write", csv_path.display()))?;
    written.push("csv");
    let md_path = path.with_extension("md");
    std::fs::write(&md_path, report::table::markdown(&grids))
        .with_context(|| format!("{}: cannot write", md_path.display()))?;
    written.push("md");
    if !file.cells.is_empty() {
        let svg_path = path.with_extension("svg");
        std::fs::write(&svg_path, report::svg::render(&file.cells)?)
            .with_context(|| format!("{}: cannot write", svg_path.display()))?;
        written.push("svg");
    }
    say(&format!(
        "results: {} (+ {})",
        path.display(),
        written.join(", ")
    ));
    for f in &file.failures {
        eprintln!(
            "failed: {} {} {}: {}",
            f.model, f.framework, f.device, f.cause
        );
    }
    if outcome.interrupted {
        eprintln!(
            "interrupted: the cells measured so far are in {0}; finish with --resume {0}",
            path.display()
        );
        return Ok(130);
    }
    if let Some(dest) = &save_as {
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("--save-baseline: cannot create {}", dir.display()))?;
        }
        file.save(dest)
            .with_context(|| format!("--save-baseline {}", dest.display()))?;
        say(&format!("baseline saved: {}", dest.display()));
    }
    let mut code = if file.failures.is_empty() { 0 } else { 1 };
    if let Some(b) = &compare_with {
        say("");
        let c = compare(
            b,
            &path,
            args.threshold,
            crate::cli::CompareFormat::Table,
            crate::cli::Gate::Times,
        )?;
        code = code.max(c);
    }
    Ok(code)
}

/// Rows of a small table in any text format.
fn render_rows<T: Serialize + tabled::Tabled>(rows: &[T], format: Format) -> Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(rows)?,
        Format::Table => tabled::Table::new(rows)
            .with(tabled::settings::Style::rounded())
            .to_string(),
        Format::Md => tabled::Table::new(rows)
            .with(tabled::settings::Style::markdown())
            .to_string(),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for r in rows {
                w.serialize(r)?;
            }
            String::from_utf8(w.into_inner()?)?
        }
    })
}

/// Whether cells follow the paper's protocol (batch 16, 224 px), so the
/// published numbers belong beside them.
fn paper_protocol(cells: &[crate::bench::record::CellRecord]) -> bool {
    cells.iter().any(|c| c.batch == 16 && c.size == 224)
}

pub fn report(
    files: &[std::path::PathBuf],
    format: crate::cli::ReportFormat,
    out: Option<&Path>,
    published: bool,
) -> Result<i32> {
    use crate::cli::ReportFormat as F;
    if files.is_empty() {
        bail!("report: give at least one results JSON file");
    }
    let mut cells = Vec::new();
    for f in files {
        cells.extend(crate::bench::record::RunFile::load(f)?.cells);
    }
    if cells.is_empty() {
        bail!("report: the results files hold no measured cell");
    }
    let grids = report::grids(&cells, published || paper_protocol(&cells));
    let text = match format {
        F::Table => report::table::terminal(&grids),
        F::Md => report::table::markdown(&grids),
        F::Csv => report::csv::render(&cells)?,
        F::Json => report::json(&cells)?,
        F::Svg => report::svg::render(&cells)?,
    };
    match out {
        Some(p) => {
            std::fs::write(p, text)
                .with_context(|| format!("--out {}: cannot write", p.display()))?;
            eprintln!("report: {} cells -> {}", cells.len(), p.display());
        }
        None => say(text.trim_end()),
    }
    Ok(0)
}

#[derive(Serialize, tabled::Tabled)]
struct ModelRow {
    name: String,
    #[tabled(rename = "params")]
    params: u64,
    #[tabled(rename = "MACs")]
    macs: u64,
    #[tabled(rename = "span MACs")]
    span_macs: u64,
    #[tabled(rename = "ideal par. speedup", display_with = "two")]
    ideal_speedup: f64,
    #[tabled(rename = "max parallel branches")]
    max_parallel_branches: usize,
}

fn two(v: &f64) -> String {
    format!("{v:.2}")
}

pub fn models(models_dir: &Path, size: usize, format: Format) -> Result<i32> {
    let mut all: Vec<Analysis> = Vec::new();
    for name in spec::list(models_dir)? {
        let s = spec::ModelSpec::find(models_dir, &name)?;
        all.push(analyse(&zoo::build(&s, size)?));
    }
    let rows: Vec<ModelRow> = all
        .iter()
        .map(|a| ModelRow {
            name: a.name.clone(),
            params: a.params,
            macs: a.macs,
            span_macs: a.span_macs,
            ideal_speedup: a.ideal_speedup,
            max_parallel_branches: a.max_parallel_branches,
        })
        .collect();
    let out = match format {
        Format::Json => serde_json::to_string_pretty(&all)?,
        f => render_rows(&rows, f)?,
    };
    say(out.trim_end());
    Ok(0)
}

#[allow(clippy::too_many_arguments)]
pub fn infer(
    models_dir: &Path,
    framework: &str,
    model: &str,
    weights: Option<&Path>,
    input: &Path,
    output: &Path,
    device: Device,
    mode: Mode,
    optimize: Optimize,
    verbose: bool,
) -> Result<i32> {
    let fw = frameworks::by_name(framework)?;
    let x = crate::io::read_input(input, None)?;
    let size = x.shape()[2];
    if x.shape()[3] != size {
        bail!(
            "{}: input is {}x{}; speedbench builds square graphs",
            input.display(),
            size,
            x.shape()[3]
        );
    }
    let loaded = zoo::load(models_dir, model, size, weights, 0)?;
    let cores = crate::config::cores();
    let opts = PrepareOptions {
        device,
        mode,
        intra_threads: cores,
        inter_threads: if mode == Mode::Parallel { cores } else { 1 },
        optimize,
        verbose,
    };
    let mut prepared = frameworks::prepare(fw.as_ref(), &loaded.graph, &loaded.weights, &opts)?;
    let y = prepared.run(&x)?;
    crate::io::write_logits(output, &y)?;
    eprintln!(
        "{model} on {framework} {device} ({mode}, --optimize {optimize}): logits {:?} -> {}",
        y.shape(),
        output.display()
    );
    Ok(0)
}

pub fn export(
    models_dir: &Path,
    model: &str,
    weights: Option<&Path>,
    size: usize,
    out: &Path,
    save_weights: Option<&Path>,
) -> Result<i32> {
    let loaded = zoo::load(models_dir, model, size, weights, 0)?;
    let bytes = onnx::to_onnx(&loaded.graph, &loaded.weights)?;
    std::fs::write(out, &bytes)
        .with_context(|| format!("--out {}: cannot write", out.display()))?;
    if let Some(p) = save_weights {
        loaded.weights.save(p)?;
    }
    eprintln!(
        "{model} ({size}x{size}, dynamic batch) -> {} ({} bytes)",
        out.display(),
        bytes.len()
    );
    Ok(0)
}

#[allow(clippy::too_many_arguments)]
pub fn verify(
    models_dir: &Path,
    models: &[String],
    size: usize,
    batch: usize,
    weights: Option<std::path::PathBuf>,
    tolerance: f64,
    device: Device,
    optimize: Optimize,
    format: Format,
    verbose: bool,
) -> Result<i32> {
    if batch == 0 || size == 0 {
        bail!("--batch and --size must be at least 1");
    }
    if tolerance.is_nan() || tolerance <= 0.0 {
        bail!("--tolerance must be a positive number, got {tolerance}");
    }
    let known = spec::list(models_dir)?;
    let models: Vec<String> = if models.is_empty() || models.iter().any(|m| m == "all") {
        known.clone()
    } else {
        for m in models {
            if !known.contains(m) {
                bail!(
                    "--model: unknown model '{m}' (expected one of: {}, all)",
                    known.join(", ")
                );
            }
            // a model asked for by name must be defined at this size
            zoo::build(&spec::ModelSpec::find(models_dir, m)?, size)?;
        }
        models.to_vec()
    };
    if weights.is_some() && models.len() != 1 {
        bail!("--weights needs exactly one --model");
    }
    let frameworks: Vec<String> = frameworks::built_in()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let opts = crate::verify::VerifyOptions {
        models_dir,
        models,
        frameworks,
        size,
        batch,
        weights,
        tolerance,
        device,
        optimize,
        verbose,
    };
    let rows = crate::verify::verify(&opts)?;
    let out = render_rows(&rows, format)?;
    say(out.trim_end());
    let bad = rows.iter().filter(|r| !r.ok).count();
    if bad > 0 {
        eprintln!("verify: {bad} comparison(s) beyond tolerance {tolerance:e}");
        return Ok(1);
    }
    eprintln!("verify: {} comparison(s) within {tolerance:e}", rows.len());
    Ok(0)
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
    if !threshold_pct.is_finite() || !(0.0..100.0).contains(&threshold_pct) {
        bail!("--threshold: {threshold_pct} is not a percentage in [0, 100)");
    }
    let b = crate::bench::record::RunFile::load(baseline)?;
    let c = crate::bench::record::RunFile::load(current)?;
    let cmp = crate::compare::compare(&b.cells, &c.cells, threshold_pct / 100.0);
    if cmp.cells.is_empty() {
        let levels = |r: &crate::bench::record::RunFile| {
            let v: Vec<String> = crate::bench::record::levels(&r.cells)
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
        F::Table => report::table::terminal(&grids),
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

/// `report --history`: runs in time order, the baseline marked.
pub fn history(
    files: &[std::path::PathBuf],
    baseline: Option<&Path>,
    format: crate::cli::ReportFormat,
    out: Option<&Path>,
) -> Result<i32> {
    if format != crate::cli::ReportFormat::Svg {
        bail!("--history draws a chart: use it with --format svg");
    }
    let mut runs = Vec::new();
    for f in files {
        if Some(f.as_path()) != baseline {
            runs.push(crate::bench::record::RunFile::load(f)?);
        }
    }
    if let Some(b) = baseline {
        runs.push(crate::bench::record::RunFile::load(b).context("--baseline")?);
    }
    let base_started = baseline.map(|_| runs[runs.len() - 1].started.clone());
    runs.sort_by(|a, b| a.started.cmp(&b.started));
    // a saved baseline is a copy of a run: draw each run once
    runs.dedup_by(|a, b| a.started == b.started);
    let base_index = base_started.and_then(|s| runs.iter().position(|r| r.started == s));
    let svg = report::history::render(&runs, base_index)?;
    match out {
        Some(p) => std::fs::write(p, svg)
            .with_context(|| format!("--out {}: cannot write", p.display()))?,
        None => say(&svg),
    }
    Ok(0)
}
