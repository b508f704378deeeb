//! Rendering records: pure functions from records to text or SVG.

pub mod across;
pub mod against;
pub mod batches;
pub mod comparison;
pub mod csv;
pub mod gantt;
pub mod grid;
pub mod headline;
pub mod history;
pub mod history_table;
pub mod html;
pub mod limits;
pub mod notes;
pub mod published;
pub mod repeats;
pub mod rows;
pub mod svg;
pub mod table;

use crate::record::CellRecord;

/// The columns that place a cell after its model and framework, in every
/// per-cell table and export.
pub const SETTING_COLUMNS: [&str; 6] = ["device", "mode", "optimize", "precision", "batch", "size"];

/// A cell's values of [`SETTING_COLUMNS`].
pub fn setting_values(c: &CellRecord) -> [String; 6] {
    [
        c.device.to_string(),
        c.mode.to_string(),
        c.optimize.to_string(),
        c.precision.to_string(),
        c.batch.to_string(),
        c.size.to_string(),
    ]
}

/// The wide tables (paper-style, per cell, and the A/A repeats where a
/// framework was named twice) the files hold and `--wide` prints.
pub fn grids(cells: &[CellRecord], with_published: bool) -> Vec<grid::Grid> {
    let mut g = vec![grid::paper(cells, with_published), grid::detail(cells)];
    g.extend(repeats::grid(cells));
    g.extend(limits::grid(cells));
    g
}

/// The notes every report carries under its tables: the precisions not
/// run ([`unsupported_notes`]), then TensorFlow's CPU paths
/// ([`cpu_path_notes`]).
pub fn notes(plans: &[&crate::record::RunPlan], cells: &[CellRecord]) -> Vec<String> {
    let mut v = unsupported_notes(plans);
    v.extend(schedule_notes(plans));
    v.extend(cpu_path_notes(cells));
    v.extend(target_note(plans, cells));
    v
}

/// How precise the speedups came out against the run's `--target`: how
/// many reached it, the median and widest 95% half-width, and the ones
/// that did not reach it, each with its width. `None` where no plan set a
/// target or nothing has a speedup.
pub fn target_note(plans: &[&crate::record::RunPlan], cells: &[CellRecord]) -> Option<String> {
    use crate::record::target::percent;
    let target = plans.iter().filter_map(|p| p.target).reduce(f64::min)?;
    let mut widths: Vec<(String, f64, String)> = cells
        .iter()
        .filter_map(|par| {
            let seq = sequential_twin(par, cells)?;
            let w = grid::speedup(seq, par).half_width();
            let what = format!(
                "{} {}{}",
                par.model,
                par.framework,
                crate::record::setting_suffix(par.optimize, par.precision)
            );
            // a speedup bound by the placement of the cores: each one's
            let placements = crate::record::placement::differing(seq, par)
                .map(|(near, far)| {
                    format!(
                        " (placements differ: {:.2}x ±{} with the cores near, {:.2}x ±{} far)",
                        near.value,
                        percent(near.half_width()),
                        far.value,
                        percent(far.half_width())
                    )
                })
                .unwrap_or_default();
            Some((what, w, placements))
        })
        .collect();
    if widths.is_empty() {
        return None;
    }
    widths.sort_by(|a, b| a.1.total_cmp(&b.1));
    let all: Vec<f64> = widths.iter().map(|w| w.1).collect();
    let missed: Vec<String> = widths
        .iter()
        .filter(|(_, w, _)| *w > target)
        .map(|(what, w, placements)| format!("{what} ±{}{placements}", percent(*w)))
        .collect();
    let reached = widths.len() - missed.len();
    let mut note = format!(
        "Precision target ±{}: {reached} of {} speedups reached it (95% half-width: median ±{}, widest ±{})",
        percent(target),
        widths.len(),
        percent(crate::record::stats::median(&all)),
        percent(all[all.len() - 1]),
    );
    if missed.is_empty() {
        note.push('.');
    } else {
        note.push_str(&format!(
            "; not reached within the time budget: {}. The table 'What limits each ratio's precision' says for each whether more rounds or more processes would narrow it, or neither.",
            missed.join(", ")
        ));
        if let Some((floor, what)) = noise_floor(cells).filter(|f| f.0 > target) {
            note = format!(
                "Noise floor above the target: the quietest ratio here ({what}) is known to ±{} at best from one process of its rounds. {note}",
                percent(floor)
            );
        }
    }
    Some(note)
}

/// The machine's noise floor: over the speedups timed in lock-step, the
/// narrowest 95% half-width one process of a ratio's rounds can give (its
/// pairs' sd over the root of its pairs per process), with the ratio it
/// is of; `None` where none was timed in lock-step.
pub fn noise_floor(cells: &[CellRecord]) -> Option<(f64, String)> {
    cells
        .iter()
        .filter_map(|par| {
            let seq = sequential_twin(par, cells)?;
            let l = crate::record::limits::limits(seq, par)?;
            let per_process = l.pairs / l.processes.max(1);
            let hw = crate::record::intervals::mean_half_width(l.pair_sd, per_process)?;
            Some((hw.exp_m1(), format!("{} {}", par.model, par.framework)))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

/// One note per machine naming the CPU kernels TensorFlow ran at each
/// level, and why ("TensorFlow's CPU kernels on host: --optimize default:
/// oneDNN off (TensorFlow's default on a CPU without ...)"): tf figures of
/// two paths differ by up to a third, and a reader comparing machines must
/// know which ran.
pub fn cpu_path_notes(cells: &[CellRecord]) -> Vec<String> {
    let mut paths: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for c in cells {
        let Some(p) = &c.cpu_path else { continue };
        let line = format!("--optimize {}: {p}", c.optimize);
        let v = paths.entry(c.host.as_str()).or_default();
        if !v.contains(&line) {
            v.push(line);
        }
    }
    let hosts = paths.len();
    paths
        .into_iter()
        .map(|(host, lines)| {
            let on = if hosts > 1 {
                format!(" on {host}")
            } else {
                String::new()
            };
            format!("TensorFlow's CPU kernels{on}: {}.", lines.join("; "))
        })
        .collect()
}

/// One note per precision a framework could not run, with its reason
/// ("tf does not run --precision fp16 on cpu: ..."), from the plans of
/// the results files, each once.
pub fn unsupported_notes(plans: &[&crate::record::RunPlan]) -> Vec<String> {
    let mut notes: Vec<String> = Vec::new();
    for p in plans {
        for u in &p.unsupported {
            let note = format!("Not supported: {}: {}.", u.what(p.device), u.reason);
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    notes
}

/// One note per `--schedules-from` file of the plans: which run's
/// schedules the parallel cells ran, so that a reader knows their speedups
/// are of that choice, not of one calibrated here.
pub fn schedule_notes(plans: &[&crate::record::RunPlan]) -> Vec<String> {
    let mut notes: Vec<String> = Vec::new();
    for p in plans {
        let Some(from) = &p.schedules_from else {
            continue;
        };
        let note = format!(
            "Schedules held: {} parallel cell(s) ran the schedule chosen in {} rather than calibrate their own.",
            p.schedules.len(),
            from.display()
        );
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    notes
}

/// How a terminal shows records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The headline, no line wider than this many columns.
    Fit(usize),
    /// Every table, as wide as the files hold them (`--wide`).
    Wide,
}

/// What `run` and `report` print: the headline (of `batch`, else the first)
/// fitted to the terminal, or
/// with [`View::Wide`] the tables of [`grids`] in full.
pub fn terminal(
    cells: &[CellRecord],
    with_published: bool,
    view: View,
    batch: Option<usize>,
) -> String {
    match view {
        View::Fit(width) => {
            let mut out = headline::render(cells, width, batch);
            if let Some(g) = repeats::grid(cells) {
                out.push('\n');
                out.push_str(&table::fitted(&[g], width));
            }
            out
        }
        View::Wide => table::terminal(&grids(cells, with_published)),
    }
}

/// Derived numbers per cell for the JSON report: the cell plus its speedup.
#[derive(serde::Serialize)]
pub struct JsonCell<'a> {
    #[serde(flatten)]
    pub cell: &'a CellRecord,
    pub images_per_s: f64,
    pub noisy: bool,
    /// Timed while other processes took more than a quarter of a core.
    pub busy: bool,
    /// For a parallel cell: sequential / parallel median, 95% CI over
    /// processes and iterations.
    pub speedup: Option<crate::record::stats::Ratio>,
    /// For a parallel cell timed in lock-step: what limits its speedup's
    /// precision ([`crate::record::limits`]).
    pub speedup_limits: Option<crate::record::limits::Limits>,
}

pub fn json(cells: &[CellRecord]) -> anyhow::Result<String> {
    let out: Vec<JsonCell> = cells
        .iter()
        .map(|c| JsonCell {
            cell: c,
            images_per_s: c.images_per_s(),
            noisy: grid::noisy(c),
            busy: c.busy(),
            speedup: sequential_twin(c, cells).map(|s| grid::speedup(s, c)),
            speedup_limits: sequential_twin(c, cells)
                .and_then(|s| crate::record::limits::limits(s, c)),
        })
        .collect();
    Ok(serde_json::to_string_pretty(&out)?)
}

/// The sequential cell measured beside a parallel one (same model,
/// framework, device, setting (level, precision, batch), size and host).
pub fn sequential_twin<'a>(cell: &CellRecord, all: &'a [CellRecord]) -> Option<&'a CellRecord> {
    use crate::record::Mode;
    if cell.mode != Mode::Parallel {
        return None;
    }
    all.iter().find(|c| {
        c.mode == Mode::Sequential
            && c.model == cell.model
            && c.framework == cell.framework
            && c.setting() == cell.setting()
            && c.device == cell.device
            && c.size == cell.size
            && c.host == cell.host
    })
}

/// Whether cells follow the paper's protocol (batch 16, 224 px), so the
/// published numbers belong beside them.
pub fn paper_protocol(cells: &[CellRecord]) -> bool {
    cells.iter().any(|c| c.batch == 16 && c.size == 224)
}

/// A results file of `tests/fixtures`, for the report's tests.
#[cfg(test)]
pub(crate) fn fixture(name: &str) -> crate::record::RunFile {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    crate::record::RunFile::load(&p).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line per framework and precision a plan could not run, with
    /// the plan's device and the reason, each once over several files.
    #[test]
    fn a_precision_not_run_is_one_note_with_its_reason() {
        use crate::record::{Device, Precision, Unsupported};
        let mut a = fixture("quick-cpu-2core-trace.json").plan;
        assert!(unsupported_notes(&[&a]).is_empty());
        let no = |framework: &str, precision, reason: &str| Unsupported {
            framework: framework.into(),
            precision,
            optimize: None,
            reason: reason.into(),
        };
        a.device = Device::Cpu;
        a.unsupported = vec![
            no("ort", Precision::Bf16, "no bf16 kernels"),
            no("tf", Precision::Fp16, "emulated"),
        ];
        let mut b = a.clone();
        b.device = Device::Cuda;
        b.unsupported = vec![no("ort", Precision::Bf16, "no bf16 kernels")];
        assert_eq!(
            unsupported_notes(&[&a, &a.clone(), &b]),
            [
                "Not supported: ort does not run --precision bf16 on cpu: no bf16 kernels.",
                "Not supported: tf does not run --precision fp16 on cpu: emulated.",
                "Not supported: ort does not run --precision bf16 on cuda: no bf16 kernels.",
            ]
        );
    }

    /// One note per file the plans held schedules from, with how many
    /// cells ran them; none where every cell calibrated.
    #[test]
    fn held_schedules_are_named_once_per_file() {
        let mut a = fixture("quick-cpu-2core.json").plan;
        assert!(schedule_notes(&[&a]).is_empty());
        let held = fixture("quick-cpu-2core-lockstep.json");
        let torch = held
            .cells
            .iter()
            .find(|c| c.framework == "torch" && c.schedule.is_some())
            .unwrap();
        a.schedules_from = Some("results/baselines/main.json".into());
        a.schedules = vec![crate::record::HeldSchedule {
            model: torch.model.clone(),
            framework: "torch".into(),
            setting: torch.setting(),
            schedule: torch.schedule.clone().unwrap(),
        }];
        let mut b = a.clone();
        b.schedules_from = Some("other.json".into());
        let note = "Schedules held: 1 parallel cell(s) ran the schedule chosen in results/baselines/main.json rather than calibrate their own.";
        assert_eq!(schedule_notes(&[&a, &a.clone()]), [note]);
        assert_eq!(schedule_notes(&[&a, &b]).len(), 2);
        assert!(notes(&[&a], &[]).iter().any(|n| n == note));
    }

    #[test]
    fn each_level_names_tensorflows_cpu_path_once_per_machine() {
        use crate::record::CpuPath;
        let file = fixture("quick-cpu-2core-trace.json");
        let mut cells = file.cells.clone();
        assert!(cpu_path_notes(&cells).is_empty());
        let path = |onednn, why: &str| {
            Some(CpuPath {
                onednn,
                why: why.into(),
            })
        };
        for c in cells.iter_mut().filter(|c| c.framework == "tf") {
            c.cpu_path = path(false, "the CPU");
        }
        let mut max = cells.iter().find(|c| c.framework == "tf").unwrap().clone();
        max.optimize = crate::record::Optimize::Max;
        max.cpu_path = path(true, "the level");
        cells.push(max.clone());
        assert_eq!(
            cpu_path_notes(&cells),
            ["TensorFlow's CPU kernels: --optimize default: oneDNN off (the CPU); --optimize max: oneDNN on (the level)."]
        );
        max.host = "other".into();
        cells.push(max);
        let notes = notes(&[&file.plan], &cells);
        assert_eq!(
            notes,
            [
                "TensorFlow's CPU kernels on other: --optimize max: oneDNN on (the level).",
                "TensorFlow's CPU kernels on vm: --optimize default: oneDNN off (the CPU); --optimize max: oneDNN on (the level).",
            ]
        );
    }

    #[test]
    fn wide_shows_the_wide_tables_and_the_headline_does_not() {
        let cells = fixture("quick-cpu-2core-trace.json").cells;
        let wide = terminal(&cells, false, View::Wide, None);
        assert_eq!(wide, table::terminal(&grids(&cells, false)));
        for needle in [
            "Per cell",
            "seq/par speedup [95% CI]",
            "GMAC/s (% of its precision's peak)",
        ] {
            assert!(wide.contains(needle), "{needle}");
        }
        let fit = terminal(&cells, false, View::Fit(120), None);
        assert!(
            !fit.contains("Per cell") && !fit.contains("GMAC/s"),
            "{fit}"
        );
    }

    /// The target note counts the speedups whose half-width reached the
    /// target and names the others with their widths; no target, no note.
    /// The floor is the quietest speedup's one-process half-width, named
    /// first in the target note where it is above the target.
    #[test]
    fn the_noise_floor_is_named_where_it_is_above_the_target() {
        let file = fixture("quick-cpu-2core-lockstep.json");
        let (floor, what) = noise_floor(&file.cells).unwrap();
        // the quick run's quietest pairs vary by about 4% (see the limits
        // table): one process of 20 rounds knows a ratio to about ±2%
        assert!(floor > 0.005 && floor < 0.05, "{floor} {what}");
        // one process's pairs know the ratio less well than all the run's
        // pairs of that cell together, and better than two pairs would
        let par = file
            .cells
            .iter()
            .find(|c| {
                c.mode == crate::record::Mode::Parallel
                    && format!("{} {}", c.model, c.framework) == what
            })
            .unwrap();
        let seq = sequential_twin(par, &file.cells).unwrap();
        let l = crate::record::limits::limits(seq, par).unwrap();
        let all_pairs = 1.96 * l.pair_sd / (l.pairs as f64).sqrt();
        let two_pairs = 12.71 * l.pair_sd / 2f64.sqrt();
        assert!(l.processes > 1, "{l:?}");
        assert!(
            floor.ln_1p() > all_pairs && floor.ln_1p() < two_pairs,
            "{floor} against {all_pairs} and {two_pairs}"
        );
        let mut plan = file.plan.clone();
        plan.target = Some(floor / 2.0);
        let note = target_note(&[&plan], &file.cells).unwrap();
        assert!(note.starts_with("Noise floor above the target"), "{note}");
        assert!(note.contains(&what), "{note}");
        plan.target = Some(floor * 1.01);
        let note = target_note(&[&plan], &file.cells).unwrap();
        assert!(note.starts_with("Precision target"), "{note}");
        assert_eq!(noise_floor(&fixture("quick-cpu-2core.json").cells), None);
    }

    #[test]
    fn the_target_note_names_the_speedups_that_missed_it() {
        let file = fixture("quick-cpu-2core-trace.json");
        let mut plan = file.plan.clone();
        assert_eq!(target_note(&[&plan], &file.cells), None);
        let speedups: Vec<(String, f64)> = file
            .cells
            .iter()
            .filter_map(|p| {
                let s = sequential_twin(p, &file.cells)?;
                Some((
                    format!("{} {}", p.model, p.framework),
                    grid::speedup(s, p).half_width(),
                ))
            })
            .collect();
        let mut widths: Vec<f64> = speedups.iter().map(|s| s.1).collect();
        widths.sort_by(f64::total_cmp);
        // a target between the narrowest and the next: one reached it
        plan.target = Some((widths[0] + widths[1]) / 2.0);
        let note = target_note(&[&plan], &file.cells).unwrap();
        let head = format!("1 of {} speedups reached it", widths.len());
        assert!(note.contains(&head), "{note}");
        let narrowest = speedups.iter().find(|s| s.1 == widths[0]).unwrap();
        let widest = speedups
            .iter()
            .find(|s| s.1 == widths[widths.len() - 1])
            .unwrap();
        let named = |what: &str| {
            note.contains(&format!(": {what} ±")) || note.contains(&format!(", {what} ±"))
        };
        assert!(!named(&narrowest.0), "{note}");
        assert!(named(&widest.0), "{note}");
        // a target exactly the narrowest width: that one reached it
        plan.target = Some(widths[0]);
        let at = target_note(&[&plan], &file.cells).unwrap();
        assert!(at.contains(&head), "{at}");
        // a target above the widest: all reached, nothing named
        plan.target = Some(widths[widths.len() - 1] * 1.01);
        let note = target_note(&[&plan], &file.cells).unwrap();
        assert!(
            note.ends_with(&format!(
                "{n} of {n} speedups reached it (95% half-width: median ±{}, widest ±{}).",
                crate::record::target::percent(crate::record::stats::median(&widths)),
                crate::record::target::percent(widths[widths.len() - 1]),
                n = widths.len()
            )),
            "{note}"
        );
        assert!(notes(&[&plan], &file.cells).contains(&note));
    }
}
