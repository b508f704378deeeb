//! `harness.toml` merged with the command line into one validated plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::frameworks;
use crate::record::env::cores;
use crate::record::{default_levels, one_or_many, Device, Mode, Optimize, RunPlan};
use crate::zoo::spec;

/// What the command line asks of a run: an empty list or `None` takes
/// harness.toml's value. `cli` fills it; nothing here knows about clap.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The harness file.
    pub config: PathBuf,
    pub profile: Option<String>,
    pub frameworks: Vec<String>,
    pub models: Vec<String>,
    pub device: Option<Device>,
    pub modes: Option<Vec<Mode>>,
    pub optimize: Vec<Optimize>,
    pub batch: Option<usize>,
    pub size: Option<usize>,
    pub warmup: Option<usize>,
    pub iters: Option<usize>,
    pub out: Option<PathBuf>,
    pub weights: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Harness {
    pub matrix: Matrix,
    #[serde(default)]
    pub threads: Threads,
    #[serde(default)]
    pub run: RunSection,
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    pub frameworks: Vec<String>,
    pub models: Vec<String>,
    #[serde(default = "both")]
    pub mode: String,
    #[serde(default)]
    pub seed: u64,
    /// `none`, `default` or `max`, or a list of them timed side by side;
    /// see [`Optimize`].
    #[serde(default = "default_levels", deserialize_with = "one_or_many")]
    pub optimize: Vec<Optimize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threads {
    #[serde(default)]
    pub intra: usize,
    #[serde(default)]
    pub inter: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    #[serde(default = "default_out")]
    pub out: PathBuf,
}

impl Default for RunSection {
    fn default() -> Self {
        RunSection {
            timeout_s: default_timeout(),
            out: default_out(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub batch: usize,
    pub size: usize,
    pub warmup: usize,
    pub iters: usize,
}

fn both() -> String {
    "both".into()
}
fn default_timeout() -> u64 {
    1800
}
fn default_out() -> PathBuf {
    "results".into()
}

impl Harness {
    pub fn load(path: &Path) -> Result<Harness> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the harness config", path.display()))?;
        Self::parse(&text, path)
    }

    /// Parses harness TOML; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Harness> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!(crate::io::toml_error(path, text, &e)))
    }
}

fn modes_named(s: &str, field: &str) -> Result<Vec<Mode>> {
    Mode::set_named(s)
        .with_context(|| format!("{field}: '{s}' is not one of sequential, parallel, both"))
}

/// Expands `all` and checks every name against `known`.
fn expand(names: &[String], known: &[String], what: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if n == "all" {
            out.extend(known.iter().cloned());
        } else if known.contains(n) {
            out.push(n.clone());
        } else {
            bail!(
                "unknown {what} '{n}' (expected one of: {}, all)",
                known.join(", ")
            );
        }
    }
    out.dedup();
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|n| seen.insert(n.clone()));
    Ok(out)
}

pub fn plan(args: &Request, models_dir: &Path) -> Result<RunPlan> {
    let h = Harness::load(&args.config)?;
    let cuda = frameworks::cuda_present();
    let profile = args
        .profile
        .clone()
        .unwrap_or_else(|| if cuda { "paper" } else { "quick" }.into());
    let Some(p) = h.profiles.get(&profile) else {
        bail!(
            "--profile: unknown profile '{profile}' (in {}: {})",
            args.config.display(),
            h.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    };
    let known_models = spec::list(models_dir)?;
    let models = if args.models.is_empty() {
        expand(&h.matrix.models, &known_models, "model in [matrix] models")?
    } else {
        expand(&args.models, &known_models, "model (--model)")?
    };
    let known_fw: Vec<String> = frameworks::FRAMEWORKS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let built = frameworks::built_in();
    let mut skipped = Vec::new();
    let frameworks = if args.frameworks.is_empty() {
        let all = expand(
            &h.matrix.frameworks,
            &known_fw,
            "framework in [matrix] frameworks",
        )?;
        let (b, s): (Vec<_>, Vec<_>) = all.into_iter().partition(|f| built.contains(&f.as_str()));
        skipped = s;
        b
    } else if args.frameworks.iter().any(|f| f == "all") {
        let b: Vec<String> = built.iter().map(|s| s.to_string()).collect();
        expand(&args.frameworks, &known_fw, "framework (--framework)")?
            .into_iter()
            .filter(|f| b.contains(f))
            .collect()
    } else {
        let v = expand(&args.frameworks, &known_fw, "framework (--framework)")?;
        for f in &v {
            frameworks::by_name(f)?;
        }
        v
    };
    let modes = match &args.modes {
        Some(m) => m.clone(),
        None => modes_named(
            &h.matrix.mode,
            &format!("{}: matrix.mode", args.config.display()),
        )?,
    };
    let plan = RunPlan {
        profile,
        frameworks,
        models,
        device: args
            .device
            .unwrap_or(if cuda { Device::Cuda } else { Device::Cpu }),
        modes,
        optimize: {
            let mut v = if args.optimize.is_empty() {
                h.matrix.optimize
            } else {
                args.optimize.clone()
            };
            let mut seen = std::collections::BTreeSet::new();
            v.retain(|o| seen.insert(*o));
            v
        },
        batch: args.batch.unwrap_or(p.batch),
        size: args.size.unwrap_or(p.size),
        warmup: args.warmup.unwrap_or(p.warmup),
        iters: args.iters.unwrap_or(p.iters),
        intra_threads: if h.threads.intra == 0 {
            cores()
        } else {
            h.threads.intra
        },
        inter_threads: if h.threads.inter == 0 {
            cores()
        } else {
            h.threads.inter
        },
        seed: h.matrix.seed,
        timeout_s: h.run.timeout_s,
        out: args.out.clone().unwrap_or(h.run.out),
        weights: args.weights.clone(),
        skipped,
    };
    for (flag, v) in [
        ("--batch", plan.batch),
        ("--size", plan.size),
        ("--iters", plan.iters),
    ] {
        if v == 0 {
            bail!(
                "{flag} must be at least 1 (profile '{}' or the flag gave 0)",
                plan.profile
            );
        }
    }
    if plan.frameworks.is_empty() {
        bail!(
            "no framework to run: none of the requested ones is built into this binary (built: {})",
            built.join(", ")
        );
    }
    if plan.optimize.is_empty() {
        bail!(
            "{}: matrix.optimize is empty (expected one or more of none, default, max)",
            args.config.display()
        );
    }
    if plan.models.is_empty() {
        bail!("no model to run: --model or [matrix] models is empty");
    }
    if plan.weights.is_some() && plan.models.len() != 1 {
        bail!(
            "--weights needs exactly one --model (got {})",
            plan.models.len()
        );
    }
    if plan.timeout_s == 0 {
        bail!(
            "{}: run.timeout_s must be at least 1",
            args.config.display()
        );
    }
    Ok(plan)
}
