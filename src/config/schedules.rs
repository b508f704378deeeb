//! `--schedules-from`: the schedules an earlier run's parallel cells chose,
//! taken into this run's plan, so that its processes run them again rather
//! than calibrate their own. Each run calibrates on a noisy machine and may
//! pick another schedule; with one held, runs of the same plan differ by
//! the runtime and the machine, not by the schedule a calibration chose.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::record::{
    base_framework, setting_suffix, HeldSchedule, Mode, RunFile, RunPlan, Setting,
};
use crate::schedule::Schedule;
use crate::zoo::{self, Catalog};

/// The schedules `file` (read from `from`) holds for `plan`'s parallel
/// cells: one per (model, framework, setting) that `plan` runs at the same
/// device and size, where the cell ran a stored schedule (speedbench's cost
/// model; a framework's own executor has none to hold). Each is checked
/// against its model's graph here, before anything is timed. An error
/// names the file and the cell: a schedule chosen for another number of
/// intra-op threads, one that does not fit the graph, or a file that holds
/// none of the run's cells.
pub fn held(
    file: &RunFile,
    from: &Path,
    plan: &RunPlan,
    catalog: &Catalog,
) -> Result<Vec<HeldSchedule>> {
    let mut held: Vec<HeldSchedule> = Vec::new();
    for c in &file.cells {
        let framework = base_framework(&c.framework);
        let Some(schedule) = c.schedule.as_ref().filter(|s| !s.ran.is_empty()) else {
            continue;
        };
        let setting = c.setting();
        let runs = c.mode == Mode::Parallel
            && c.device == plan.device
            && c.size == zoo_size(catalog, &c.model, plan.size)
            && plan.models.contains(&c.model)
            && plan.frameworks.iter().any(|f| f == framework)
            && plan.settings(framework).contains(&setting);
        let known = held
            .iter()
            .any(|h| h.model == c.model && h.framework == framework && h.setting == setting);
        if !runs || known {
            continue;
        }
        let what = format!(
            "--schedules-from {}: {} {framework} parallel{}",
            from.display(),
            c.model,
            describe(setting, plan),
        );
        if c.intra_threads != plan.intra_threads {
            bail!(
                "{what}: its schedule was chosen for {} intra-op thread(s), this run has {}",
                c.intra_threads,
                plan.intra_threads
            );
        }
        let spec = catalog.find(&c.model)?;
        let graph =
            zoo::build(spec, zoo::size_for(spec, plan.size)).with_context(|| what.clone())?;
        Schedule::from_stored(&graph, &schedule.ran).with_context(|| what.clone())?;
        held.push(HeldSchedule {
            model: c.model.clone(),
            framework: framework.to_string(),
            setting,
            schedule: schedule.clone(),
        });
    }
    if held.is_empty() {
        bail!(
            "--schedules-from {}: holds no schedule for this run's parallel cells (a parallel cell \
             of one of its models and frameworks, at its device, size, level, precision and batch, \
             that ran speedbench's cost-model schedule)",
            from.display()
        );
    }
    Ok(held)
}

/// The size `model` runs at in a run of `size` (an imported model's own);
/// `size` where the model is unknown (the cell is then not the run's).
fn zoo_size(catalog: &Catalog, model: &str, size: usize) -> usize {
    catalog
        .find(model)
        .map_or(size, |spec| zoo::size_for(spec, size))
}

/// The setting as the run's flags would name it: level and precision where
/// not the defaults, the batch where the run has several.
fn describe(setting: Setting, plan: &RunPlan) -> String {
    let batch = if plan.batch.len() > 1 {
        format!(" --batch {}", setting.batch)
    } else {
        String::new()
    };
    format!(
        "{}{batch}",
        setting_suffix(setting.optimize, setting.precision)
    )
}
