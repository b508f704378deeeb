//! `harness.toml`: the matrix, threads, run settings and profiles, a
//! user's file merged key by key over the built-in one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::record::{one_or_many, Optimize, Precision};

/// The harness file built into the binary: the defaults every user file
/// overrides key by key.
pub const BUILT_IN: &str = include_str!("../../harness.toml");
const BUILT_IN_NAME: &str = "harness.toml (built in)";

/// The harness configuration: the built-in defaults with a user's file laid
/// over them key by key. Every field may be left out of a user's file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Harness {
    pub matrix: Matrix,
    pub threads: Threads,
    pub run: RunSection,
    pub profiles: BTreeMap<String, Profile>,
    /// The user's file, or the built-in one; named in errors.
    #[serde(skip)]
    pub source: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Matrix {
    pub frameworks: Vec<String>,
    pub models: Vec<String>,
    /// `sequential`, `parallel` or `both`.
    pub mode: String,
    pub seed: u64,
    /// `none`, `default` or `max`, or a list of them timed side by side;
    /// see [`Optimize`].
    #[serde(deserialize_with = "one_or_many")]
    pub optimize: Vec<Optimize>,
    /// `fp32`, `bf16`, `fp16` or `tf32`, or a list of them, each its own
    /// cells; absent: fp32.
    #[serde(deserialize_with = "precisions")]
    pub precision: Vec<Precision>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Threads {
    /// 0: every core.
    pub intra: usize,
    /// 0: every core.
    pub inter: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    pub timeout_s: u64,
    pub out: PathBuf,
}

/// A profile; a user's new profile must give every field (or the flags do).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Profile {
    pub batch: Option<usize>,
    pub size: Option<usize>,
    pub warmup: Option<usize>,
    pub iters: Option<usize>,
    /// Worker processes per cell.
    pub processes: Option<usize>,
    /// The precision aimed for, as `--target` takes it ("2%").
    pub target: Option<String>,
    /// The time budget of the timed rounds, as `--max-time` takes it
    /// ("8m").
    pub max_time: Option<String>,
}

/// Lays `over` onto `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl Harness {
    /// The built-in defaults alone.
    pub fn built_in() -> Result<Harness> {
        Self::parse(BUILT_IN, Path::new(BUILT_IN_NAME))
    }

    /// The built-in defaults overridden by the file at `path`.
    pub fn load(path: &Path) -> Result<Harness> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the harness config", path.display()))?;
        Self::parse(&text, path)
    }

    /// Parses a user's harness TOML and lays it over the built-in defaults;
    /// `path` names it in errors (with the line, for a bad key or value).
    pub fn parse(text: &str, path: &Path) -> Result<Harness> {
        let err = |e: toml::de::Error| anyhow::anyhow!(crate::io::toml_error(path, text, &e));
        // alone first: unknown keys and wrong types, with the line they are on
        toml::from_str::<Harness>(text).map_err(err)?;
        let over: toml::Table = toml::from_str(text).map_err(err)?;
        let mut merged: toml::Table =
            toml::from_str(BUILT_IN).context("the built-in harness.toml")?;
        merge(&mut merged, over);
        let mut h = Harness::deserialize(toml::Value::Table(merged))
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?;
        h.source = path.to_path_buf();
        Ok(h)
    }
}

/// A precision or a list of them (`"bf16"` or `["fp32", "bf16"]`).
fn precisions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Precision>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Precision),
        Many(Vec<Precision>),
    }
    match OneOrMany::deserialize(d) {
        Ok(OneOrMany::One(p)) => Ok(vec![p]),
        Ok(OneOrMany::Many(v)) => Ok(v),
        Err(_) => Err(serde::de::Error::custom(
            "expected one of \"fp32\", \"bf16\", \"fp16\", \"tf32\", or a list of them",
        )),
    }
}
