//! A run's files, with one owner: the results JSON (a new, unique name in
//! the results folder; saved atomically after every worker), the CSV,
//! markdown and SVG written beside it, and the named baselines kept in that
//! folder's `baselines/`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::record::env::{self, MachinePeak};
use crate::record::{RunFile, RunPlan, SCHEMA_VERSION};
use crate::report;

/// Creates `<out>/<timestamp>-<host>.json`, or with `-2`, `-3`... before
/// `.json` when that name is taken: created exclusively, so two runs started
/// in the same second never write into one file, and a run never replaces
/// a file it did not create.
pub fn create_unique(out: &Path, stem: &str) -> Result<PathBuf> {
    for n in 1u32.. {
        let name = match n {
            1 => format!("{stem}.json"),
            n => format!("{stem}-{n}.json"),
        };
        let path = out.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("--out {}: not writable", out.display()))
            }
        }
    }
    bail!("--out {}: no free results file name", out.display())
}

/// A new, empty results file for `plan` in `plan.out`, with the machine's
/// peak measured for it: `<timestamp>-<host>.json`, or
/// `<timestamp>-<host>-shard-K-of-N.json` for a shard.
pub fn start(plan: &RunPlan, machine_peak: Option<MachinePeak>) -> Result<(PathBuf, RunFile)> {
    std::fs::create_dir_all(&plan.out)
        .with_context(|| format!("--out {}: cannot create the folder", plan.out.display()))?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let shard = plan.shard.as_ref().map_or(String::new(), |s| {
        format!("-shard-{}-of-{}", s.shard.index, s.shard.count)
    });
    let path = create_unique(&plan.out, &format!("{stamp}-{}{shard}", env::host()))?;
    let file = RunFile {
        schema_version: SCHEMA_VERSION,
        started: chrono::Local::now().to_rfc3339(),
        finished: None,
        env: env::capture(),
        machine_peak,
        precision_peaks: Default::default(),
        plan: plan.clone(),
        cells: vec![],
        failures: vec![],
        merged_from: vec![],
    };
    if let Err(e) = file.save(&path) {
        // the name reserved for this run holds nothing: free it
        let _ = std::fs::remove_file(&path);
        return Err(e).with_context(|| format!("--out {}: not writable", plan.out.display()));
    }
    Ok((path, file))
}

/// Writes the CSV, markdown, HTML page and (when a cell was measured) SVG
/// beside the results file `path`, the batch curves where it holds several
/// batches; returns the extensions written. `across`: the table of the
/// speedups across the folder's runs, where there is one.
pub fn write_siblings(
    path: &Path,
    file: &RunFile,
    across: Option<report::grid::Grid>,
) -> Result<Vec<&'static str>> {
    let mut grids = report::grids(&file.cells, report::paper_protocol(&file.cells));
    if let Some(g) = grids.first_mut() {
        g.notes.extend(report::notes(&[&file.plan], &file.cells));
    }
    grids.extend(across);
    let mut written = vec![];
    let mut write = |ext: &'static str, text: String| -> Result<()> {
        let p = path.with_extension(ext);
        crate::record::write_durably(&p, text.as_bytes())?;
        written.push(ext);
        Ok(())
    };
    write("csv", report::csv::render(&file.cells)?)?;
    write("md", report::table::markdown(&grids))?;
    if !file.cells.is_empty() {
        write("svg", report::svg::render(&file.cells)?)?;
    }
    if let Some(curves) = report::batches::render(&file.cells) {
        write("batch.svg", curves?)?;
    }
    if let Some(timelines) = report::gantt::render(&file.cells) {
        write("timeline.svg", timelines)?;
    }
    write("html", report::html::render(&file.cells, &grids, None)?)?;
    Ok(written)
}

/// `<results folder>/baselines/NAME.json`, or NAME itself when it is a
/// .json path.
pub fn baseline_path(results: &Path, name: &str) -> Result<PathBuf> {
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
    Ok(results.join("baselines").join(format!("{name}.json")))
}

/// Refuses to replace an existing file at `dest` unless `force`; `flag`
/// names the option that chose it.
pub fn refuse_overwrite(dest: &Path, force: bool, flag: &str) -> Result<()> {
    if !force && dest.exists() {
        bail!(
            "{flag} {}: the file exists; give --force to replace it",
            dest.display()
        );
    }
    Ok(())
}

/// Stores `file` as the baseline at `dest` (its folder created).
pub fn save_baseline(file: &RunFile, dest: &Path) -> Result<()> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--save-baseline: cannot create {}", dir.display()))?;
    }
    file.save(dest)
        .with_context(|| format!("--save-baseline {}", dest.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_existing_files_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let taken = dir.path().join("stamp-host.json");
        std::fs::write(&taken, "someone else's").unwrap();
        let a = create_unique(dir.path(), "stamp-host").unwrap();
        let b = create_unique(dir.path(), "stamp-host").unwrap();
        assert_eq!(a, dir.path().join("stamp-host-2.json"));
        assert_eq!(b, dir.path().join("stamp-host-3.json"));
        assert_eq!(std::fs::read_to_string(&taken).unwrap(), "someone else's");
    }

    #[test]
    fn an_existing_file_is_replaced_only_when_forced() {
        let dir = tempfile::tempdir().unwrap();
        let there = dir.path().join("main.json");
        std::fs::write(&there, "kept").unwrap();
        let e = refuse_overwrite(&there, false, "--out").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "--out {}: the file exists; give --force to replace it",
                there.display()
            )
        );
        assert!(refuse_overwrite(&there, true, "--out").is_ok());
        assert!(refuse_overwrite(&dir.path().join("new.json"), false, "--out").is_ok());
    }

    #[test]
    fn baselines_live_in_the_results_folder() {
        let p = baseline_path(Path::new("out/here"), "main").unwrap();
        assert_eq!(p, Path::new("out/here/baselines/main.json"));
        assert_eq!(
            baseline_path(Path::new("x"), "a/b.json").unwrap(),
            Path::new("a/b.json")
        );
        assert!(baseline_path(Path::new("x"), "../up").is_err());
        assert!(baseline_path(Path::new("x"), "").is_err());
    }
}
