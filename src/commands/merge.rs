//! `speedbench merge`: one results file from several (the shards of a run,
//! or runs on several machines). A cell in two files is refused; every cell
//! keeps its host, machine (CPU, GPU and driver, speedbench build) and
//! framework version, so `report` and `compare` read the merged file like
//! any other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::say;
use crate::compare::CellKey;
use crate::record::{MergedInput, RunFile, Shard, SCHEMA_VERSION};
use crate::results;

/// Loads `files`, merges them into `out` and writes the CSV, markdown and
/// SVG beside it, as `run` does for its results file.
pub fn merge(files: &[PathBuf], out: &Path, force: bool) -> Result<i32> {
    if out.extension().is_none_or(|e| e != "json") {
        bail!(
            "--out: expected a .json path (CSV, markdown and SVG go beside it), got '{}'",
            out.display()
        );
    }
    results::refuse_overwrite(out, force, "--out")?;
    let mut inputs = Vec::new();
    for f in files {
        inputs.push((f.clone(), RunFile::load(f)?));
    }
    let notes = notes(&inputs);
    let merged = merge_files(inputs)?;
    for note in notes {
        eprintln!("note: {note}");
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--out {}: cannot create the folder", out.display()))?;
    }
    merged
        .save(out)
        .with_context(|| format!("--out {}", out.display()))?;
    let written = results::write_siblings(out, &merged, None)?;
    eprintln!(
        "merged {} cell(s) and {} failure(s) from {} file(s); beside it: {}",
        merged.cells.len(),
        merged.failures.len(),
        files.len(),
        written.join(", ")
    );
    // the results file on a line of its own, for scripts (as `run`)
    say(&format!("results: {}", out.display()));
    Ok(0)
}

/// One results file of the cells and failures of `inputs`, in the order
/// given. Each cell keeps its host and framework version and gets its
/// file's environment and shard where it has none (files from before
/// them). A cell (model, framework, device, mode, level, batch, size) in
/// two inputs is an error naming both. The plan is the first input's with
/// the models, frameworks, modes and levels of all, and no shard.
pub fn merge_files(inputs: Vec<(PathBuf, RunFile)>) -> Result<RunFile> {
    let Some(first) = inputs.first().map(|(_, f)| f.clone()) else {
        bail!("merge: give at least one results JSON file");
    };
    let mut seen: BTreeMap<CellKey, &Path> = BTreeMap::new();
    for (path, file) in &inputs {
        for c in &file.cells {
            if let Some(other) = seen.insert(CellKey::of(c), path) {
                bail!(
                    "merge: cell {} is in both {} and {}",
                    CellKey::of(c),
                    other.display(),
                    path.display()
                );
            }
        }
    }
    let mut merged = RunFile {
        schema_version: SCHEMA_VERSION,
        started: first.started.clone(),
        finished: first.finished.clone(),
        env: first.env.clone(),
        machine_peak: first.machine_peak.clone(),
        precision_peaks: first.precision_peaks.clone(),
        plan: first.plan.clone(),
        cells: vec![],
        failures: vec![],
        merged_from: vec![],
    };
    merged.plan.shard = None;
    for (path, file) in inputs {
        let shard = file.plan.shard.as_ref().map(|s| s.shard);
        if instant(&file.started) < instant(&merged.started) {
            merged.started = file.started.clone();
        }
        merged.finished = match (merged.finished.take(), &file.finished) {
            (Some(a), Some(b)) if instant(b) > instant(&a) => Some(b.clone()),
            (Some(a), Some(_)) => Some(a),
            _ => None,
        };
        if merged.machine_peak != file.machine_peak {
            merged.machine_peak = None;
        }
        if merged.precision_peaks != file.precision_peaks {
            merged.precision_peaks.clear();
        }
        let plan = &mut merged.plan;
        union(&mut plan.models, &file.plan.models);
        union(&mut plan.frameworks, &file.plan.frameworks);
        union(&mut plan.modes, &file.plan.modes);
        union(&mut plan.optimize, &file.plan.optimize);
        union(&mut plan.precision, &file.plan.precision);
        union(&mut plan.batch, &file.plan.batch);
        for u in &file.plan.unsupported {
            if !plan.unsupported.contains(u) {
                plan.unsupported.push(u.clone());
            }
        }
        union(&mut plan.skipped, &file.plan.skipped);
        merged.merged_from.push(MergedInput {
            file: path.display().to_string(),
            started: file.started.clone(),
            finished: file.finished.clone(),
            host: file.env.host.clone(),
            shard,
            cells: file.cells.len(),
        });
        for mut c in file.cells {
            c.env.get_or_insert_with(|| file.env.clone());
            c.shard = c.shard.or(shard);
            merged.cells.push(c);
        }
        merged.failures.extend(file.failures);
    }
    let built = merged.plan.frameworks.clone();
    merged.plan.skipped.retain(|f| !built.contains(f));
    Ok(merged)
}

/// An RFC 3339 time as an instant, so that runs in different time zones
/// order right; unreadable ones order as their text, after the rest.
fn instant(t: &str) -> (bool, i64, &str) {
    let at = chrono::DateTime::parse_from_rfc3339(t).ok();
    (at.is_none(), at.map_or(0, |d| d.timestamp_micros()), t)
}

/// Appends the items of `more` that `into` lacks.
fn union<T: Clone + PartialEq>(into: &mut Vec<T>, more: &[T]) {
    for m in more {
        if !into.contains(m) {
            into.push(m.clone());
        }
    }
}

/// What a reader of the merged file should know: unfinished inputs,
/// missing shards, plans that differ.
fn notes(inputs: &[(PathBuf, RunFile)]) -> Vec<String> {
    let mut notes = vec![];
    for (path, f) in inputs {
        if f.finished.is_none() {
            notes.push(format!(
                "{} is unfinished (interrupted, or still running): its cells so far are merged",
                path.display()
            ));
        }
    }
    let shards: Vec<Option<Shard>> = inputs
        .iter()
        .map(|(_, f)| f.plan.shard.as_ref().map(|s| s.shard))
        .collect();
    if let Some(Some(one)) = shards.first() {
        if shards
            .iter()
            .all(|s| s.is_some_and(|s| s.count == one.count))
        {
            let missing: Vec<String> = (1..=one.count)
                .filter(|k| !shards.iter().any(|s| s.is_some_and(|s| s.index == *k)))
                .map(|k| format!("{k}/{}", one.count))
                .collect();
            if !missing.is_empty() {
                notes.push(format!("shard(s) {} missing", missing.join(", ")));
            }
        }
    }
    let protocol = |f: &RunFile| {
        let p = &f.plan;
        (p.profile.clone(), p.device, p.size, p.warmup, p.iters)
    };
    if let Some((first_path, first)) = inputs.first() {
        if let Some((path, _)) = inputs.iter().find(|(_, f)| protocol(f) != protocol(first)) {
            notes.push(format!(
                "{} and {} were run with different plans (profile, device, size or iterations): the merged file keeps the first one's plan, and each cell its own settings",
                first_path.display(),
                path.display()
            ));
        }
    }
    notes
}
