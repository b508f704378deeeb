//! `harness.toml` merged with the command line into one validated plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::frameworks;
pub use crate::frameworks::{check_cuda_graph, CUDA_GRAPH_FRAMEWORKS};
use crate::record::env::cores;
use crate::record::{
    one_or_many, Device, Mode, Optimize, Precision, RunPlan, SkippedModel, Unsupported,
};
use crate::zoo::{self, Catalog};

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
    pub out: Option<PathBuf>,
    pub weights: Option<PathBuf>,
}

/// The harness file built into the binary: the defaults every user file
/// overrides key by key.
pub const BUILT_IN: &str = include_str!("../harness.toml");
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
            "no framework to run: none of the requested ones is built into this binary (built: {})",
            built.join(", ")
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
            if (f, device) != ("tf", Device::Cpu) {
                continue;
            }
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

// (ONNX Runtime is the framework these plans ask for.)
#[cfg(all(test, feature = "ort"))]
mod tests {
    use super::*;

    fn request(config: Option<PathBuf>) -> Request {
        Request {
            config,
            profile: Some("smoke".into()),
            frameworks: vec!["ort".into()],
            ..Request::default()
        }
    }

    fn plan_with(text: &str, models: &[&str]) -> Result<RunPlan> {
        let d = tempfile::tempdir()?;
        let path = d.path().join("h.toml");
        std::fs::write(&path, text)?;
        let mut r = request(Some(path));
        r.models = models.iter().map(|m| m.to_string()).collect();
        plan(&r, &Catalog::built_in()?)
    }

    #[test]
    fn a_partial_file_overrides_key_by_key() {
        let p = plan_with("[threads]\nintra = 1\n", &[]).unwrap();
        assert_eq!(p.intra_threads, 1);
        // everything else from the built-in defaults
        assert_eq!(
            p.models,
            ["resnet50", "se_resnet50", "resnext50", "scalenet50"]
        );
        assert_eq!((p.batch.clone(), p.size, p.iters), (vec![1], 128, 10));
        assert_eq!(p.modes, [Mode::Sequential, Mode::Parallel]);
        // one key of a built-in profile, and a new profile of the user's
        let p = plan_with("[profiles.smoke]\niters = 3\n", &[]).unwrap();
        assert_eq!((p.batch.clone(), p.size, p.iters), (vec![1], 128, 3));
        let h = Harness::parse(
            "[profiles.mine]\nbatch = 2\nsize = 64\nwarmup = 0\niters = 1\n",
            Path::new("h.toml"),
        )
        .unwrap();
        assert!(h.profiles.contains_key("mine") && h.profiles.contains_key("paper"));
        // unknown keys are still refused, with the line
        let e = plan_with("[threads]\nintra = 1\nbogus = 2\n", &[]).unwrap_err();
        assert!(e.to_string().contains("h.toml:3"), "{e}");
    }

    #[test]
    fn a_framework_named_twice_is_timed_twice() {
        let mut r = request(None);
        r.frameworks = ["ort", "ort", "ort", "ort-own"].map(String::from).to_vec();
        let p = plan(&r, &Catalog::built_in().unwrap()).unwrap();
        assert_eq!(p.frameworks, ["ort", "ort#2", "ort#3", "ort-own"]);
        assert_eq!(repeats(&["a".into()], vec!["a".into()]), ["a"]);
    }

    #[test]
    fn processes_from_the_profile_or_the_flag() {
        let mut r = request(None);
        assert_eq!(
            plan(&r, &Catalog::built_in().unwrap()).unwrap().processes,
            1
        );
        r.profile = Some("quick".into());
        let p = plan(&r, &Catalog::built_in().unwrap()).unwrap();
        assert_eq!((p.processes, p.iters), (3, 60));
        // the quick profile's precision target and budget; flags override
        assert_eq!((p.target, p.max_time_s), (Some(0.02), Some(360.0)));
        r.target = Some("1%".into());
        r.max_time = Some("1m".into());
        let p = plan(&r, &Catalog::built_in().unwrap()).unwrap();
        assert_eq!((p.target, p.max_time_s), (Some(0.01), Some(60.0)));
        (r.target, r.max_time) = (None, None);
        // a random order seed unless given
        r.order_seed = Some(9);
        r.processes = Some(5);
        let p = plan(&r, &Catalog::built_in().unwrap()).unwrap();
        assert_eq!((p.processes, p.order_seed), (5, 9));
        r.processes = Some(61);
        let e = plan(&r, &Catalog::built_in().unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "harness.toml (built in): --processes 61 is more than profiles.quick.iters = 60: every worker process needs a timed iteration (give fewer processes or more iterations)"
        );
        r.processes = Some(0);
        let e = plan(&r, &Catalog::built_in().unwrap()).unwrap_err();
        assert!(
            e.to_string().starts_with("--processes must be at least 1"),
            "{e}"
        );
    }

    #[test]
    fn a_new_profile_must_be_complete() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("h.toml");
        std::fs::write(&path, "[profiles.mine]\nbatch = 2\n").unwrap();
        let mut r = request(Some(path));
        r.profile = Some("mine".into());
        let e = plan(&r, &Catalog::built_in().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("profiles.mine.size is missing"), "{e}");
        r.size = Some(128);
        r.warmup = Some(0);
        r.iters = Some(1);
        assert_eq!(plan(&r, &Catalog::built_in().unwrap()).unwrap().batch, [2]);
    }

    #[test]
    fn thread_counts_are_bounded_by_the_cores() {
        let max = max_threads(cores());
        let e = plan_with("[threads]\nintra = 100000\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("threads.intra = 100000") && e.contains(&max.to_string()),
            "{e}"
        );
        let e = plan_with("[threads]\ninter = 100000\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("threads.inter"), "{e}");
        let p = plan_with(&format!("[threads]\nintra = {max}\ninter = 1\n"), &[]).unwrap();
        assert_eq!((p.intra_threads, p.inter_threads), (max, 1));
        assert_eq!(max_threads(2), 8);
    }

    #[test]
    fn all_skips_models_undefined_at_the_size_but_a_named_one_fails() {
        // smoke is 128 px: two ScaleNets have a branch that cannot pool there
        let p = plan_with("", &["all"]).unwrap();
        let skipped: Vec<&str> = p.skipped_models.iter().map(|s| s.model.as_str()).collect();
        assert_eq!(skipped, ["scalenet101", "scalenet50_light"]);
        assert!(
            p.skipped_models[0].reason.contains("block"),
            "{:?}",
            p.skipped_models
        );
        assert!(p.models.contains(&"scalenet50".to_string()));
        assert!(!p.models.contains(&"scalenet101".to_string()));
        let e = plan_with("", &["scalenet101"]).unwrap_err();
        assert!(format!("{e:#}").contains("scalenet101"), "{e:#}");
    }

    #[test]
    fn cuda_graphs_need_cuda_and_a_framework_that_has_them() {
        let fws = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let graph = [Optimize::Max, Optimize::CudaGraph];
        // without the level, nothing is checked
        check_cuda_graph(&[Optimize::Max], Device::Cpu, &fws(&["tf"])).unwrap();
        let e = check_cuda_graph(&graph, Device::Cpu, &fws(&["torch"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--optimize cuda-graph captures CUDA graphs: it needs --device cuda (this run is on cpu)"
        );
        check_cuda_graph(&graph, Device::Cuda, &fws(&["torch", "ort", "ort-own"])).unwrap();
        let e = check_cuda_graph(&graph, Device::Cuda, &fws(&["ort", "tf"])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--optimize cuda-graph: tf has no CUDA-graph mode"),
            "{e}"
        );
        // the level reads and writes as its flag spells it, and builds on max
        assert_eq!("cuda-graph".parse::<Optimize>(), Ok(Optimize::CudaGraph));
        assert_eq!(Optimize::CudaGraph.to_string(), "cuda-graph");
        assert_eq!(
            serde_json::to_string(&Optimize::CudaGraph).unwrap(),
            "\"cuda-graph\""
        );
        assert!(Optimize::CudaGraph.rewrites() && Optimize::Max.rewrites());
        assert!(!Optimize::Default.rewrites() && !Optimize::None.rewrites());
    }

    #[test]
    fn precisions_and_batches_are_lists_each_its_own_cells() {
        let cat = Catalog::built_in().unwrap();
        let mut r = request(None);
        r.frameworks = vec!["ort".into(), "torch".into(), "tf".into()];
        r.models = vec!["resnet50".into()];
        r.precision = vec![Precision::Bf16, Precision::Fp32, Precision::Bf16];
        r.batch = vec![4, 1, 4];
        r.device = Some(Device::Cpu);
        let p = plan(&r, &cat).unwrap();
        // repeats dropped, the order kept
        assert_eq!(p.precision, [Precision::Bf16, Precision::Fp32]);
        assert_eq!(p.batch, [4, 1]);
        // ort has no bf16 on the CPU: recorded once with its reason; tf's
        // depends on its CPU path here
        let tf = frameworks::precision::unsupported_at(
            "tf",
            Device::Cpu,
            Precision::Bf16,
            Optimize::Default,
        )
        .unwrap();
        assert_eq!(
            p.unsupported.len(),
            1 + usize::from(tf.is_some()),
            "{:?}",
            p.unsupported
        );
        assert_eq!(
            (
                p.unsupported[0].framework.as_str(),
                p.unsupported[0].precision,
                p.unsupported[0].optimize,
            ),
            ("ort", Precision::Bf16, None)
        );
        assert!(p.unsupported[0].reason.contains("bf16"));
        if let Some(why) = tf {
            assert_eq!(p.unsupported[1].optimize, Some(Optimize::Default));
            assert_eq!(p.unsupported[1].reason, why);
        }
        // its cells: fp32 at both batches; torch's: both precisions
        assert_eq!(p.settings("ort").len(), 2);
        assert_eq!(p.settings("torch").len(), 4);
        assert_eq!(p.settings("ort#2"), p.settings("ort"));
        // no flag: fp32 and the profile's batch
        let d = plan(&request(None), &cat).unwrap();
        assert_eq!(
            (d.precision.clone(), d.batch.clone()),
            (vec![Precision::Fp32], vec![1])
        );
        assert!(d.unsupported.is_empty());
        // harness.toml's [matrix] precision, one or a list
        let h = plan_with("[matrix]\nprecision = \"fp16\"\n", &["resnet50"]);
        let e = h.unwrap_err().to_string();
        assert!(
            e.contains("--precision: no framework of this run can run fp16 on"),
            "{e}"
        );
        assert!(e.contains("ort fp16:"), "{e}");
        let both = plan_with(
            "[matrix]\nprecision = [\"fp32\", \"fp16\"]\n",
            &["resnet50"],
        )
        .unwrap();
        assert_eq!(both.precision, [Precision::Fp32, Precision::Fp16]);
        assert_eq!(both.settings("ort").len(), 1);
        // a zero batch anywhere in the list is refused
        r.batch = vec![1, 0];
        let e = plan(&r, &cat).unwrap_err().to_string();
        assert!(e.starts_with("--batch must be at least 1"), "{e}");
    }
}
