//! A results file: what a run writes and reports read. JSON is the source
//! of truth; every sample is kept.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::env::{Environment, MachinePeak};
use super::{CellRecord, Failure, RunPlan, Shard};

/// Version of the results file layout; readers refuse newer ones.
pub const SCHEMA_VERSION: u32 = 1;

/// A results file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunFile {
    pub schema_version: u32,
    pub started: String,
    pub finished: Option<String>,
    /// The machine and software of the run; in a merged file, the first
    /// input's (each cell carries its own in `CellRecord::env`).
    pub env: Environment,
    /// The machine's FMA peak, measured once at the start of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_peak: Option<MachinePeak>,
    /// The peak of each reduced precision the run times where the machine
    /// has one (bf16 and fp16 vector units of the CPU), measured as the FMA
    /// peak is: the limit a cell of that precision's "% of peak" is against.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub precision_peaks: std::collections::BTreeMap<super::Precision, MachinePeak>,
    pub plan: RunPlan,
    pub cells: Vec<CellRecord>,
    pub failures: Vec<Failure>,
    /// The files `speedbench merge` made this one of, in the order given;
    /// empty for a run's own file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedInput>,
}

/// Writes `bytes` to `path` as SQLite commits: a temporary file beside it
/// (`NAME.tmp`), fsynced, renamed over `path`, then the folder fsynced so
/// that the rename survives a crash. On any failure the temporary file is
/// removed and `path` keeps what it held.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{}: cannot write", path.display()));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // a folder that cannot be opened or synced (some network file systems)
    // still has the renamed file
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// One input of a merged results file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MergedInput {
    /// The path as given to `merge`.
    pub file: String,
    pub started: String,
    pub finished: Option<String>,
    pub host: String,
    /// The input's shard, where it was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Cells it brought.
    pub cells: usize,
}

impl RunFile {
    /// Writes atomically and durably ([`write_durably`]): the file at
    /// `path` is the old one or the new one, never a part of either.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        write_durably(path, text.as_bytes())
    }

    pub fn load(path: &Path) -> Result<RunFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read results", path.display()))?;
        Self::parse(&text, path)
    }

    /// Parses the text of a results file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<RunFile> {
        let probe: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}: not a results JSON file: {e}", path.display()))?;
        let version = probe.get("schema_version").and_then(|v| v.as_u64());
        match version {
            None => bail!("{}: field 'schema_version' is missing; not a speedbench results file", path.display()),
            Some(v) if v > u64::from(SCHEMA_VERSION) => bail!(
                "{}: schema_version {v} is newer than this speedbench understands ({SCHEMA_VERSION}); upgrade speedbench",
                path.display()
            ),
            Some(_) => {}
        }
        serde_json::from_value(probe)
            .map_err(|e| anyhow::anyhow!("{}: malformed results: {e}", path.display()))
    }
}
