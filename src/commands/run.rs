//! `speedbench run`: plan (and pick this process's shard), check, measure,
//! write, and compare with a baseline.

use crate::bench::progress::Progress;
use anyhow::{bail, Context, Result};

use super::say;
use crate::bench::{memory, peak, runner};
use crate::cli::{CompareFormat, Gate, RunArgs};
use crate::graph::analysis::analyse;
use crate::record::{env::cores, Mode, RunFile, RunPlan};
use crate::zoo::{self, Catalog};
use crate::{config, report, results, shard};

pub fn run(args: &RunArgs, catalog: &Catalog, verbose: bool, progress: Progress) -> Result<i32> {
    let (plan, resumed) = match &args.resume {
        Some(p) => {
            let file = RunFile::load(p)?;
            eprintln!(
                "resuming {}: {} cell(s) already measured",
                p.display(),
                file.cells.len()
            );
            if let Some(s) = &file.plan.shard {
                eprintln!(
                    "shard {} (kept from the resumed file; first from {}): {} worker(s)",
                    s.shard,
                    s.source,
                    s.workers.len()
                );
            }
            (file.plan.clone(), Some((p.clone(), file)))
        }
        None => {
            let mut plan = config::plan(&args.request(), catalog)?;
            if let Some(name) = &args.schedules_from {
                hold_schedules(&mut plan, name, catalog)?;
            }
            let env = |k: &str| std::env::var(k).ok();
            let picked = shard::pick(args.shard.as_deref(), args.shard_count.as_deref(), &env)?;
            preflight(&plan, catalog)?;
            if let Some(p) = picked {
                plan.shard = Some(slice(&plan, p, catalog)?);
            }
            (plan, None)
        }
    };
    if let Some(b) = args.headline_batch.filter(|b| !plan.batch.contains(b)) {
        bail!(
            "--headline-batch {b}: the run's batches are {} (give one of them)",
            join(&plan.batch)
        );
    }
    // baselines live in the results folder; a missing one fails before
    // anything is measured
    let save_as = args
        .save_baseline
        .as_deref()
        .map(|n| results::baseline_path(&plan.out, n))
        .transpose()?;
    if let Some(dest) = &save_as {
        results::refuse_overwrite(dest, args.force, "--save-baseline")?;
    }
    let compare_with = args
        .baseline
        .as_deref()
        .map(|n| results::baseline_path(&plan.out, n))
        .transpose()?;
    if let Some(b) = &compare_with {
        RunFile::load(b).context("--baseline")?;
    }
    // the machine's peak, measured once: before a fresh results file is
    // created (it then holds everything but cells), or for a resumed file
    // from before the peak was recorded
    let fresh = resumed.is_none();
    let (path, file) = match resumed {
        Some((p, mut f)) => {
            if f.machine_peak.is_none() {
                f.machine_peak = peak::machine(&plan);
            }
            (p, f)
        }
        // a shard with nothing to run measures nothing
        None if plan.shard.as_ref().is_some_and(|s| s.workers.is_empty()) => {
            results::start(&plan, None)?
        }
        None => results::start(&plan, peak::machine(&plan))?,
    };
    let mut file = file;
    if file.precision_peaks.is_empty() && !plan.shard.as_ref().is_some_and(|s| s.workers.is_empty())
    {
        file.precision_peaks = peak::precisions(&plan);
    }
    announce(&plan);
    let outcome = runner::run(path, file, fresh, catalog, verbose, progress)?;
    let (path, file) = (outcome.path, outcome.file);
    // the headline fitted to the terminal; the wide tables with --wide
    let width = super::terminal_width();
    let view = if args.wide {
        report::View::Wide
    } else {
        report::View::Fit(width)
    };
    let published = report::paper_protocol(&file.cells);
    say(report::terminal(&file.cells, published, view, args.headline_batch).trim_end());
    for note in report::notes(&[&file.plan], &file.cells) {
        say(report::table::wrap(&note, width).trim_end());
    }
    // the speedups across the folder's earlier runs, where it holds some
    let across = super::history::across_table(&path, &file);
    if let Some(g) = &across {
        say(report::table::fitted(std::slice::from_ref(g), width).trim_end());
    }
    say("");
    let mut written = results::write_siblings(&path, &file, across)?;
    if args.trace {
        let cells: Vec<&crate::record::CellRecord> = file.cells.iter().collect();
        crate::trace::chrome::write(&path.with_extension("trace.json"), &cells)?;
        written.push("trace.json");
    }
    if !args.wide {
        let line = format!(
            "Full tables: {}; --wide prints them (speedbench report {} --wide)",
            path.with_extension("md").display(),
            path.display()
        );
        say(report::table::wrap(&line, width).trim_end());
    }
    // the results file on a line of its own, for scripts
    say(&format!("results: {}", path.display()));
    eprintln!("beside it: {}", written.join(", "));
    for c in file
        .cells
        .iter()
        .filter(|c| c.device == crate::record::Device::Cuda)
    {
        if let Some(t) = c.trace.as_ref().filter(|t| t.on_cpu() > 0) {
            eprintln!(
                "warning: {} {} {} on cuda ran {} of its operations on the CPU ({:?}): the framework placed them there, not speedbench",
                c.model, c.framework, c.mode, t.on_cpu(), t.placement
            );
        }
    }
    for f in &file.failures {
        let what = f.mode.map_or(String::new(), |m| format!(" {m}"));
        let process = f
            .process
            .map_or(String::new(), |p| format!(" (process {})", p + 1));
        eprintln!(
            "failed: {} {} {}{what}{process}: {}",
            f.model, f.framework, f.device, f.cause
        );
    }
    if let Some(line) = busy_warning(&file.cells) {
        eprintln!("{line}");
    }
    if outcome.interrupted {
        eprintln!(
            "interrupted: the cells measured so far are in {0}; finish with --resume {0}",
            path.display()
        );
        return Ok(130);
    }
    if let Some(dest) = &save_as {
        results::refuse_overwrite(dest, args.force, "--save-baseline")?;
        results::save_baseline(&file, dest)?;
        say(&format!("baseline saved: {}", dest.display()));
    }
    let mut code = if file.failures.is_empty() { 0 } else { 1 };
    if let Some(b) = &compare_with {
        say("");
        let c = super::compare(b, &path, args.threshold, CompareFormat::Table, Gate::Times)?;
        code = code.max(c);
    }
    Ok(code)
}

/// One line naming the cells timed while other processes took more than
/// [`crate::record::BUSY_CORES`], if any.
pub fn busy_warning(cells: &[crate::record::CellRecord]) -> Option<String> {
    let busy = crate::record::busy_cells(cells);
    let stolen = cells
        .iter()
        .filter(|c| c.busy())
        .filter_map(|c| c.stolen_cores())
        .fold(0.0, f64::max);
    let steal = if stolen > 0.0 {
        format!(" (the hypervisor's steal up to {stolen:.2} cores)")
    } else {
        String::new()
    };
    (!busy.is_empty()).then(|| {
        format!(
            "warning: busy machine: other processes took CPU{steal} while {} timed (marked !; compare calls them inconclusive); rerun on an idle machine",
            busy.join(", ")
        )
    })
}

/// This shard's slice of `plan`, announced on one line.
fn slice(
    plan: &RunPlan,
    picked: shard::Picked,
    catalog: &Catalog,
) -> Result<crate::record::ShardPlan> {
    let macs = |m: &str| Ok(analyse(&zoo::build(catalog.find(m)?, plan.size)?).macs);
    let (s, share) = shard::assign(plan, picked, &macs)?;
    let all = plan.models.len() * plan.frameworks.len();
    let names: Vec<String> = s.workers.iter().map(|(m, f)| format!("{m} {f}")).collect();
    eprintln!(
        "shard {} (from {}): {} of {all} (model, framework) workers, {:.0}% of the expected cost{}",
        s.shard,
        s.source,
        s.workers.len(),
        share * 100.0,
        if names.is_empty() {
            " (more shards than workers: this one has nothing to run)".to_string()
        } else {
            format!(": {}", names.join(", "))
        }
    );
    Ok(s)
}

/// Refuses what cannot be built or cannot fit before measuring anything,
/// and warns when the parallel mode oversubscribes the cores.
fn preflight(plan: &RunPlan, catalog: &Catalog) -> Result<()> {
    for m in &plan.models {
        let g = zoo::build(catalog.find(m)?, plan.size)?;
        // one session per worker process
        memory::check(&g, plan.batch.iter().copied().max().unwrap_or(1), 1)?;
    }
    let cores = cores();
    let busiest = plan.intra_threads * plan.inter_threads;
    if plan.modes.contains(&Mode::Parallel) && busiest > cores {
        eprintln!(
            "note: parallel mode may run {} intra-op x {} inter-op = {busiest} threads on {cores} core(s): \
             the cost-model schedules of torch and ort share the intra-op threads among their lanes, \
             ort-own and tf may run them all at once (set [threads] in harness.toml)",
            plan.intra_threads,
            plan.inter_threads,
        );
    }
    Ok(())
}

fn announce(plan: &RunPlan) {
    for s in &plan.skipped_models {
        eprintln!("note: model '{}' skipped: {}", s.model, s.reason);
    }
    for u in &plan.unsupported {
        eprintln!("note: {}: {}", u.what(plan.device), u.reason);
    }
    eprintln!(
        "speedbench run: profile {} ({} x {}px, {} timed iterations per cell in {} worker process(es) of {} warm-up each, order seed {}), {} on {}, {} thread(s) intra, {} inter, --optimize {}, --precision {}",
        plan.profile, join(&plan.batch), plan.size, plan.iters, plan.processes, plan.warmup, plan.order_seed,
        plan.frameworks.join("+"), plan.device, plan.intra_threads, plan.inter_threads,
        join(&plan.optimize),
        join(&plan.precision)
    );
}

/// `1,4,16`.
fn join<T: ToString>(v: &[T]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Takes the schedules of `--schedules-from NAME` (a baseline, or a
/// results file) into `plan`, and says how many parallel cells run them.
fn hold_schedules(plan: &mut RunPlan, name: &str, catalog: &Catalog) -> Result<()> {
    let from = results::baseline_path(&plan.out, name)?;
    let file = RunFile::load(&from).context("--schedules-from")?;
    plan.schedules = config::schedules::held(&file, &from, plan, catalog)?;
    eprintln!(
        "schedules from {}: {} parallel cell(s) run the schedule it chose; the others calibrate",
        from.display(),
        plan.schedules.len()
    );
    plan.schedules_from = Some(from);
    Ok(())
}
