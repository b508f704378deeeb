//! `harness.toml` merged with the command line into one validated plan.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::frameworks;
pub use crate::frameworks::check_cuda_graph;
use crate::record::env::cores;
use crate::record::{Device, Mode, Optimize, Precision, RunPlan, SkippedModel, Unsupported};
use crate::zoo::{self, Catalog};

mod harness;
pub mod schedules;

/// What the command line asks of a run: an empty list or `None` takes
/// harness.toml's value. `cli` fills it; nothing here knows about clap.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// A harness file laid over the built-in defaults; `None`: the built-in
    /// defaults alone.
    pub config: Option<PathBuf>,
    pub profile: Option<String>,
    pub frameworks: Vec<String>,
    pub models: Vec<String>,
    pub device: Option<Device>,
    pub modes: Option<Vec<Mode>>,
    pub optimize: Vec<Optimize>,
    /// `--precision`s; empty: harness.toml's (fp32 unless it says).
    pub precision: Vec<Precision>,
    /// `--batch` sizes; empty: the profile's one.
    pub batch: Vec<usize>,
    pub size: Option<usize>,
    pub warmup: Option<usize>,
    pub iters: Option<usize>,
    pub processes: Option<usize>,
    pub order_seed: Option<u64>,
    /// `--target` and `--max-time` as given ("2%", "8m").
    pub target: Option<String>,
    pub max_time: Option<String>,
    /// `--placement`; `None`: any.
    pub placement: Option<crate::record::placement::Wanted>,
    pub out: Option<PathBuf>,
    pub weights: Option<PathBuf>,
}

pub use harness::{Harness, Matrix, Profile, RunSection, Threads, BUILT_IN};

/// The most threads a key of `[threads]` may ask for: beyond a few per core
/// a worker only thrashes (and enough of them exhaust the process table).
pub fn max_threads(cores: usize) -> usize {
    4 * cores.max(1)
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

/// A framework named more than once is timed once per naming, as an A/A
/// check of the method: `ort`, `ort#2`, `ort#3`... (`frameworks`, expanded
/// and deduplicated, in the order `asked` first names them).
fn repeats(asked: &[String], frameworks: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for f in frameworks {
        let times = asked.iter().filter(|a| **a == f).count().max(1);
        out.push(f.clone());
        out.extend((2..=times).map(|k| format!("{f}#{k}")));
    }
    out
}

pub fn plan(args: &Request, catalog: &Catalog) -> Result<RunPlan> {
    let h = match &args.config {
        Some(path) => Harness::load(path)?,
        None => Harness::built_in()?,
    };
    let src = h.source.display().to_string();
    let cuda = frameworks::cuda_present();
    let profile = args
        .profile
        .clone()
        .unwrap_or_else(|| if cuda { "paper" } else { "quick" }.into());
    let Some(p) = h.profiles.get(&profile) else {
        bail!(
            "--profile: unknown profile '{profile}' (in {src}: {})",
            h.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    };
    let field = |flag: Option<usize>, value: Option<usize>, key: &str| {
        flag.or(value).with_context(|| {
            format!(
                "{src}: profiles.{profile}.{key} is missing (expected a number, or give --{key})"
            )
        })
    };
    let batch = if args.batch.is_empty() {
        vec![field(None, p.batch, "batch")?]
    } else {
        dedup(args.batch.clone())
    };
    let size = field(args.size, p.size, "size")?;
    let warmup = field(args.warmup, p.warmup, "warmup")?;
    let iters = field(args.iters, p.iters, "iters")?;
    let processes = args.processes.or(p.processes).unwrap_or(1);
    // the flag where given, else the profile's; each error names its source
    let flag_or_profile = |flag: &Option<String>,
                           name: &str,
                           written: &Option<String>,
                           key: &str,
                           parse: fn(&str) -> Result<f64, String>|
     -> Result<Option<f64>> {
        match (flag, written) {
            (Some(v), _) => parse(v)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("{name} {e}")),
            (None, Some(v)) => parse(v)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("{src}: profiles.{profile}.{key} = {e}")),
            (None, None) => Ok(None),
        }
    };
    use crate::record::target::{parse_duration, parse_share};
    let target = flag_or_profile(&args.target, "--target", &p.target, "target", parse_share)?;
    let max_time_s = flag_or_profile(
        &args.max_time,
        "--max-time",
        &p.max_time,
        "max_time",
        parse_duration,
    )?;
    let (models, skipped_models) = models(args, &h, catalog, size)?;
    let known_fw: Vec<String> = frameworks::FRAMEWORKS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let built = frameworks::installed();
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
            frameworks::worker_exe(f)?;
        }
        repeats(&args.frameworks, v)
    };
    let modes = match &args.modes {
        Some(m) => m.clone(),
        None => modes_named(&h.matrix.mode, &format!("{src}: matrix.mode"))?,
    };
    let plan = RunPlan {
        profile,
        frameworks,
        models,
        device: args
            .device
            .unwrap_or(if cuda { Device::Cuda } else { Device::Cpu }),
        modes,
        optimize: dedup(if args.optimize.is_empty() {
            h.matrix.optimize
        } else {
            args.optimize.clone()
        }),
        precision: dedup(match (&args.precision[..], &h.matrix.precision[..]) {
            ([], []) => vec![Precision::Fp32],
            ([], m) => m.to_vec(),
            (a, _) => a.to_vec(),
        }),
        batch,
        size,
        warmup,
        iters,
        processes,
        order_seed: args.order_seed.unwrap_or_else(rand::random),
        target,
        max_time_s,
        placement: args.placement.unwrap_or_default(),
        intra_threads: threads(h.threads.intra, "threads.intra", &src)?,
        inter_threads: threads(h.threads.inter, "threads.inter", &src)?,
        seed: h.matrix.seed,
        timeout_s: h.run.timeout_s,
        out: args.out.clone().unwrap_or(h.run.out),
        weights: args.weights.clone(),
        skipped,
        skipped_models,
        shard: None,
        unsupported: Vec::new(),
        schedules_from: None,
        schedules: Vec::new(),
    };
    let mut plan = plan;
    plan.unsupported = unsupported(
        &plan.frameworks,
        plan.device,
        &plan.precision,
        &plan.optimize,
    )?;
    for (flag, v) in [
        ("--batch", plan.batch.iter().copied().min().unwrap_or(0)),
        ("--size", plan.size),
        ("--iters", plan.iters),
        ("--processes", plan.processes),
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
            "no framework to run: none of the requested ones has its worker binary installed beside speedbench (installed: {}); `cargo build --release` builds them all",
            if built.is_empty() { "none".to_string() } else { built.join(", ") }
        );
    }
    if plan.optimize.is_empty() {
        bail!("{src}: matrix.optimize is empty (expected one or more of none, default, max, cuda-graph)");
    }
    if plan.frameworks.iter().all(|f| plan.settings(f).is_empty()) {
        let why: Vec<String> = plan
            .unsupported
            .iter()
            .map(|u| format!("{} {}: {}", u.framework, u.precision, u.reason))
            .collect();
        bail!(
            "--precision: no framework of this run can run {} on {} ({})",
            plan.precision
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            plan.device,
            why.join("; ")
        );
    }
    check_cuda_graph(&plan.optimize, plan.device, &plan.frameworks)?;
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
        bail!("{src}: run.timeout_s must be at least 1");
    }
    if plan.processes > plan.iters {
        let named = |flag: Option<usize>, key: &str, v: usize| match flag {
            Some(_) => format!("--{key} {v}"),
            None => format!("profiles.{}.{key} = {v}", plan.profile),
        };
        bail!(
            "{src}: {} is more than {}: every worker process needs a timed iteration (give fewer processes or more iterations)",
            named(args.processes, "processes", plan.processes),
            named(args.iters, "iters", plan.iters)
        );
    }
    Ok(plan)
}

/// `v` without its repeats, in first-seen order.
fn dedup<T: Ord + Clone>(mut v: Vec<T>) -> Vec<T> {
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}

/// The (framework, precision) pairs of a run that cannot run on `device`,
/// each with its reason ([`frameworks::precision`]); an A/A repeat
/// (`ort#2`) is its base framework's. TensorFlow's bf16 on the CPU is a
/// oneDNN rewrite: refused at each level where oneDNN is off
/// ([`frameworks::tf_cpu`]), whose variable is checked here, before
/// anything runs.
fn unsupported(
    frameworks: &[String],
    device: Device,
    precisions: &[Precision],
    levels: &[Optimize],
) -> Result<Vec<Unsupported>> {
    let mut bases: Vec<&str> = frameworks
        .iter()
        .map(|f| crate::record::base_framework(f))
        .collect();
    bases.dedup();
    let mut v = Vec::new();
    for f in dedup(bases) {
        for &p in precisions {
            if let Some(reason) = frameworks::precision::unsupported(f, device, p) {
                v.push(Unsupported {
                    framework: f.to_string(),
                    precision: p,
                    optimize: None,
                    reason: reason.to_string(),
                });
                continue;
            }
            // what the level or TensorFlow's CPU path decides
            for &level in levels {
                if let Some(reason) = frameworks::precision::unsupported_at(f, device, p, level)? {
                    v.push(Unsupported {
                        framework: f.to_string(),
                        precision: p,
                        optimize: Some(level),
                        reason,
                    });
                }
            }
        }
    }
    Ok(v)
}

/// A `[threads]` key: 0 means every core; more than [`max_threads`] is
/// refused.
fn threads(asked: usize, key: &str, src: &str) -> Result<usize> {
    let cores = cores();
    if asked == 0 {
        return Ok(cores);
    }
    let max = max_threads(cores);
    if asked > max {
        bail!(
            "{src}: {key} = {asked} is more than {max} (4 threads per core on this machine's {cores} core(s)); \
             use 0 for every core, or a number up to {max}"
        );
    }
    Ok(asked)
}

/// The models to run: `all` (from the flag or the matrix) stands for every
/// model defined at `size`, the others listed with the reason they are left
/// out; a model named explicitly must be defined at `size`.
fn models(
    args: &Request,
    h: &Harness,
    catalog: &Catalog,
    size: usize,
) -> Result<(Vec<String>, Vec<SkippedModel>)> {
    let known = catalog.names();
    let (asked, what) = if args.models.is_empty() {
        (&h.matrix.models, "model in [matrix] models")
    } else {
        (&args.models, "model (--model)")
    };
    let mut models = Vec::new();
    let mut skipped = Vec::new();
    for name in expand(asked, &known, what)? {
        let built = zoo::build(catalog.find(&name)?, size);
        match built {
            Ok(_) => models.push(name),
            Err(e) if !asked.contains(&name) => skipped.push(SkippedModel {
                model: name,
                reason: format!("{e:#}"),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok((models, skipped))
}

#[cfg(test)]
mod tests;
