//! The parent side of `speedbench run`: one worker process per cell and
//! process, the cells a ratio compares timed together in lock-step
//! ([`super::lockstep`]), groups in each model's balanced, shuffled order
//! ([`super::order`]), progress bars, and a results file rewritten
//! atomically after every group so that nothing measured is lost.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::groups::{model_cells, Cell, Chunk, ModelCells};
use super::lockstep::{run_group, Live, Member, Rounds};
use super::progress::{finished, Progress};

use super::order::{model_seed, order};
use super::worker::Job;
use crate::record::{base_framework, CellRecord, RunFile, RunPlan};
use crate::zoo::Catalog;

/// Whether the job is TensorFlow on the CPU, whose kernels (oneDNN's or
/// Eigen's) are chosen as the process loads.
fn is_tf_cpu(job: &Job) -> bool {
    base_framework(&job.framework) == "tf" && job.plan.device == crate::record::Device::Cpu
}

/// `TF_ENABLE_ONEDNN_OPTS` for the worker of a tf CPU job where speedbench
/// sets it (`--optimize max`; [`crate::frameworks::tf_cpu`]).
fn tf_env(job: &Job) -> Option<&'static str> {
    if !is_tf_cpu(job) {
        return None;
    }
    crate::frameworks::tf_cpu::env_for(job.setting.optimize)
        .ok()
        .flatten()
}

/// The CPU path a tf CPU job's worker took.
fn tf_path(job: &Job) -> Option<crate::record::CpuPath> {
    if !is_tf_cpu(job) {
        return None;
    }
    crate::frameworks::tf_cpu::here(job.setting.optimize).ok()
}

/// What the first group's pairs say the target will take: how much a
/// pair's ratio varies and the rounds a ratio needs for the target at that
/// noise (more where processes differ).
pub fn noise_note(sd: f64, target: f64, first: &str) -> String {
    use crate::record::target::{percent, rounds_for};
    format!(
        "noise: a pair's ratio varies by {} here ({first}); ±{} needs about {} rounds per ratio, more where the processes differ",
        percent(sd),
        percent(target),
        rounds_for(target, sd)
    )
}

/// Set by Ctrl-C in the parent: stop after the group in flight.
static STOP: AtomicBool = AtomicBool::new(false);

/// How a run ended.
pub struct Outcome {
    pub path: PathBuf,
    pub file: RunFile,
    /// Ctrl-C stopped the run; what was measured is saved.
    pub interrupted: bool,
}

/// Where a cell stands in the plan: model, framework, level, precision,
/// batch, mode (the order a results file keeps its cells in; the run's
/// order is shuffled).
fn plan_order(plan: &crate::record::RunPlan, c: &CellRecord) -> [usize; 6] {
    fn at<T: PartialEq>(v: &[T], x: &T) -> usize {
        v.iter().position(|y| y == x).unwrap_or(usize::MAX)
    }
    [
        at(&plan.models, &c.model),
        at(&plan.frameworks, &c.framework),
        at(&plan.optimize, &c.optimize),
        at(&plan.precision, &c.precision),
        at(&plan.batch, &c.batch),
        at(&plan.modes, &c.mode),
    ]
}

/// With a target and no time budget, a group stops at this many times its
/// minimum rounds.
const MAX_ROUNDS_OVER_MIN: usize = 10;

/// Saves `file` at `path`. Where it cannot, a file this run created
/// (`fresh`) that still holds no measurement is removed, so a failed run
/// leaves no empty results file behind; one that holds measurements keeps
/// them (the save before this one), and the error says so.
fn save(file: &RunFile, path: &std::path::Path, fresh: bool) -> Result<()> {
    use anyhow::Context;
    let Err(e) = file.save(path) else {
        return Ok(());
    };
    let held = RunFile::load(path).map_or(0, |f| f.cells.len() + f.failures.len());
    if fresh && held == 0 {
        let _ = std::fs::remove_file(path);
        Err(e).context(
            "cannot save the results; nothing had been saved, and the run's file is removed",
        )
    } else {
        Err(e).with_context(|| {
            format!(
                "cannot save the results; {} holds what was saved before (finish with --resume)",
                path.display()
            )
        })
    }
}

/// ` b4` where the run has several batches, else nothing.
fn batch_suffix(plan: &RunPlan, batch: usize) -> String {
    if plan.batch.len() > 1 {
        format!(" b{batch}")
    } else {
        String::new()
    }
}

/// Every worker process of `plan`: each model's cells (the frameworks that
/// run it, at each setting they can run and mode) times the processes of a
/// cell.
pub fn plan_processes(plan: &RunPlan) -> usize {
    let cells: usize = plan
        .models
        .iter()
        .flat_map(|m| plan.frameworks.iter().filter(move |f| plan.runs(m, f)))
        .map(|f| plan.settings(f).len())
        .sum();
    cells * plan.modes.len() * plan.processes.max(1)
}

/// Runs every cell of the file's plan (of its shard, for a shard) in its
/// processes, each model's in their recorded order, skipping the processes
/// the file holds already and saving the file after each. `--resume`
/// passes a file loaded from disk; a fresh run (`fresh`) one from
/// [`crate::results::start`].
pub fn run(
    path: PathBuf,
    mut file: RunFile,
    fresh: bool,
    catalog: &Catalog,
    verbose: bool,
    progress: Progress,
) -> Result<Outcome> {
    if let Err(e) = ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst)) {
        eprintln!(
            "warning: cannot install the Ctrl-C handler ({e}): Ctrl-C will end the run at once, and the process in flight is lost"
        );
    }
    let plan = file.plan.clone();
    super::placement::can_hold(plan.placement)?;
    // one gate for the run: it tells near from far by all its probes
    let mut gate = super::placement::Gate::new(plan.placement);
    for f in &plan.skipped {
        eprintln!(
            "note: framework '{f}' has no worker binary installed beside speedbench; skipped"
        );
    }
    // each cell's peak is its precision's: fp32's FMA peak, a reduced
    // precision's own unit, none where the machine has no figure for it
    let peak_of = |p: crate::record::Precision| {
        if p.is_fp32() {
            file.machine_peak.as_ref().map(|m| m.all_gmacs)
        } else {
            file.precision_peaks.get(&p).map(|m| m.all_gmacs)
        }
    };
    let peaks: std::collections::BTreeMap<_, _> =
        plan.precision.iter().map(|&p| (p, peak_of(p))).collect();
    // the best GEMM through each framework, measured by its first worker
    let mut gemm: std::collections::BTreeMap<String, f64> = file
        .cells
        .iter()
        .filter_map(|c| Some((c.framework.clone(), c.gemm_gmacs?)))
        .collect();
    let mut interrupted = false;
    // the noise of the run's first group with a ratio, said once
    let mut told = plan.target.is_none();
    let shard = plan.shard.as_ref().map(|s| s.shard);
    let processes = plan.processes.max(1);
    // every process of the run, less those the file holds (for --resume)
    let started = Instant::now();
    let mut done = 0;
    let held: usize = file.cells.iter().map(|c| c.processes.len()).sum();
    let mut total = plan_processes(&plan).saturating_sub(held);
    // each model's cells, in groups compared with each other side by side
    // and timed in lock-step: a framework's modes at one setting, with its
    // A/A repeats
    let matrix: Vec<(Vec<Cell>, Vec<usize>)> =
        plan.models.iter().map(|m| model_cells(&plan, m)).collect();
    let mut units_left: usize = matrix.iter().map(|(_, g)| g.len() * processes).sum();
    let mut budget_left = plan.max_time_s.map(Duration::from_secs_f64);
    let timeout = Duration::from_secs(plan.timeout_s);
    'matrix: for (mi, model) in plan.models.iter().enumerate() {
        let (cells, groups) = &matrix[mi];
        let mc = ModelCells::new(model, cells, groups);
        // a cell whose process failed runs no more processes in this run
        let mut failed = vec![false; cells.len()];
        let seed = model_seed(plan.order_seed, mi);
        let units = order(groups, processes, seed);
        // the order's units, one lock-step group per (group, process)
        let mut chunks: Vec<Chunk> = Vec::new();
        for (slot, unit) in units.into_iter().enumerate() {
            let g = mc.group_of(unit.cell);
            match chunks.last_mut() {
                Some((lg, lp, v)) if *lg == g && *lp == unit.process => v.push((slot, unit.cell)),
                _ => chunks.push((g, unit.process, vec![(slot, unit.cell)])),
            }
        }
        let models_left = plan.models.len() - mi;
        // the model's share of what the budget has left, for the processes
        // its groups add beyond the planned ones
        let mut extra_left = budget_left.map(|b| b / 2 / models_left as u32);
        let mut queue: std::collections::VecDeque<Chunk> = chunks.into();
        let mut next_slot = queue.iter().map(|c| c.2.len()).sum::<usize>();
        while let Some((g, process, members)) = queue.pop_front().or_else(|| {
            // the planned processes are done: one more for the widest
            // group while the model's share of the budget lasts
            let target = plan.target?;
            if extra_left?.is_zero() || STOP.load(Ordering::SeqCst) {
                return None;
            }
            let (g, next, alive) = mc.widest(&file, &failed, processes, target)?;
            let members: Vec<(usize, usize)> = alive
                .into_iter()
                .map(|c| {
                    next_slot += 1;
                    (next_slot, c)
                })
                .collect();
            total += members.len();
            Some((g, next, members))
        }) {
            units_left = units_left.saturating_sub(1);
            let mut todo: Vec<(usize, usize)> = Vec::new();
            for (slot, cell) in members {
                if file
                    .cells
                    .iter()
                    .any(|c| mc.is(cell, c) && c.has_process(process))
                {
                    continue;
                }
                if failed[cell] {
                    total = total.saturating_sub(1);
                    continue;
                }
                todo.push((slot, cell));
            }
            if todo.is_empty() {
                continue;
            }
            if STOP.load(Ordering::SeqCst) {
                interrupted = true;
                break 'matrix;
            }
            let what = |cell: usize| {
                let (framework, setting, mode) = &cells[cell];
                format!(
                    "{model} {framework} {mode}{}{} {}/{processes}",
                    batch_suffix(&plan, setting.batch),
                    crate::record::setting_suffix(setting.optimize, setting.precision),
                    process + 1
                )
            };
            let team: Vec<Member> = todo
                .iter()
                .map(|&(slot, cell)| {
                    let (framework, setting, mode) = &cells[cell];
                    // A failure of the cell is tried again (and replaced by
                    // this try's outcome).
                    let earlier = mc.held(&file, cell);
                    let job = Job {
                        model: model.clone(),
                        framework: framework.clone(),
                        mode: *mode,
                        setting: *setting,
                        process,
                        slot,
                        plan: plan.clone(),
                        models_dir: catalog.dir.clone(),
                        verbose,
                        gemm_gmacs: gemm.get(framework).copied(),
                        // a repeat runs what its original chose
                        schedule: earlier
                            .or_else(|| mc.held(&file, mc.original_of(cell)?))
                            .and_then(|c| c.schedule.clone())
                            .or_else(|| {
                                plan.held_schedule(model, framework, *mode, *setting)
                                    .cloned()
                            }),
                        trace: earlier.is_none_or(|c| c.trace.is_none()),
                    };
                    let env = tf_env(&job)
                        .map(|v| vec![(crate::frameworks::tf_cpu::ENV, v)])
                        .unwrap_or_default();
                    let bar = progress.bar(plan.warmup as u64, what(cell));
                    let schedule_of = mc
                        .original_of(cell)
                        .and_then(|o| todo.iter().position(|&(_, c)| c == o));
                    Member {
                        job,
                        env,
                        bar,
                        schedule_of,
                    }
                })
                .collect();
            for &(_, cell) in &todo {
                let (framework, setting, mode) = &cells[cell];
                file.failures
                    .retain(|f| !f.is_of(model, framework, *mode, *setting));
            }
            let team_cells: Vec<usize> = todo.iter().map(|&(_, c)| c).collect();
            let pairs = mc.pairs(&team_cells);
            // what the file holds of these cells: how much their processes
            // differ beyond their pairs' noise
            let between = mc.over_ratios(&file, &team_cells, &pairs, |a, b| {
                crate::record::limits::between_variance(&crate::record::paired_by_process(a, b)?)
            });
            let min = plan.iters_of(process.min(processes - 1));
            // a planned process gets its share of half of what is left; the
            // other half is for the processes a group adds
            let budget = if process >= processes {
                extra_left
            } else {
                budget_left.map(|b| b / (2 * units_left as u32 + 1))
            };
            let rounds = Rounds {
                min,
                max: match (plan.target, budget) {
                    (None, _) => min,
                    (Some(_), Some(_)) => usize::MAX,
                    (Some(_), None) => min.saturating_mul(MAX_ROUNDS_OVER_MIN),
                },
                target: plan.target,
                budget,
                between,
            };
            let took = Instant::now();
            let results = run_group(
                &team,
                &pairs,
                rounds,
                seed ^ (g as u64) << 32 ^ process as u64,
                &STOP,
                &mut gate,
                &mut |job, env| Live::start(job, env, timeout),
            );
            if let Some(b) = budget_left.as_mut() {
                *b = b.saturating_sub(took.elapsed());
            }
            if process >= processes {
                if let Some(b) = extra_left.as_mut() {
                    *b = b.saturating_sub(took.elapsed());
                }
            }
            for ((member, &(_, cell)), outcome) in team.iter().zip(&todo).zip(results) {
                done += 1;
                let (framework, _, mode) = &cells[cell];
                let bar = &member.bar;
                match outcome {
                    // stopped before its first pass: nothing to keep
                    Ok(part) if part.samples_ms.is_empty() => {
                        bar.abandon_with_message("interrupted");
                    }
                    Ok(mut part) => {
                        bar.finish();
                        progress.line(|| {
                            let median = crate::record::stats::median(&part.samples_ms);
                            finished(
                                done,
                                total,
                                &what(cell),
                                median,
                                took.elapsed(),
                                started.elapsed(),
                            )
                        });
                        part.machine_peak_gmacs = peaks.get(&part.precision).copied().flatten();
                        part.shard = shard;
                        part.env = Some(file.env.clone());
                        part.cpu_path = tf_path(&member.job);
                        part.emulated = crate::frameworks::precision::emulated(
                            plan.device,
                            part.precision,
                            &crate::bench::fma::cpu_flags(),
                            std::env::var("ONEDNN_MAX_CPU_ISA").ok().as_deref(),
                        )
                        .map(String::from);
                        if let Some(g) = part.gemm_gmacs {
                            gemm.entry(framework.clone()).or_insert(g);
                        }
                        // a process that is redone replaces its partial
                        // record only now: a redo that fails keeps it
                        for c in file.cells.iter_mut().filter(|c| mc.is(cell, c)) {
                            c.drop_process(process);
                        }
                        file.cells
                            .retain(|c| !c.samples_ms.is_empty() || !mc.is(cell, c));
                        match file.cells.iter_mut().find(|c| mc.is(cell, c)) {
                            Some(c) => c.absorb(part),
                            None => {
                                part.summarise();
                                file.cells.push(part);
                                // cells in the plan's order, whatever the run's
                                file.cells.sort_by_key(|c| plan_order(&plan, c));
                            }
                        }
                    }
                    Err(f) if STOP.load(Ordering::SeqCst) => {
                        bar.abandon_with_message("interrupted");
                        eprintln!("interrupted: {model} {framework} {mode}: {}", f.cause);
                    }
                    Err(f) => {
                        bar.abandon_with_message("failed");
                        eprintln!(
                            "error: {model} {framework} {mode} process {}/{processes}: {}",
                            process + 1,
                            f.cause
                        );
                        failed[cell] = true;
                        file.failures.push(*f);
                    }
                }
            }
            if !told {
                let noise = mc.over_ratios(&file, &team_cells, &pairs, |a, b| {
                    let l = crate::record::limits::limits(a, b)?;
                    (l.pairs > 2).then_some(l.pair_sd)
                });
                if let (Some(sd), Some(target)) = (noise, plan.target) {
                    told = true;
                    progress.note(&noise_note(sd, target, &what(todo[0].1)));
                }
            }
            save(&file, &path, fresh)?;
            if STOP.load(Ordering::SeqCst) {
                interrupted = true;
                break 'matrix;
            }
        }
    }
    if !interrupted {
        file.finished = Some(chrono::Local::now().to_rfc3339());
    }
    save(&file, &path, fresh)?;
    Ok(Outcome {
        path,
        file,
        interrupted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_noise_note_sizes_the_target() {
        assert_eq!(
            noise_note(0.05, 0.02, "resnet50 ort sequential 1/3"),
            "noise: a pair's ratio varies by 5% here (resnet50 ort sequential 1/3); ±2% needs about 25 rounds per ratio, more where the processes differ"
        );
    }
}
