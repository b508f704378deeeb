//! Tests of the plan: harness.toml and the command line merged.

use super::*;
use std::path::Path;

use crate::frameworks::{Backend, Framework, PrepareOptions, Prepared};
use crate::graph::{weights::Weights, Graph};

/// The plan asks of a framework only whether its worker is installed. These
/// tests plan without the workers built (the core's mutation tests build
/// none): each runtime's name is registered in this test process to a
/// framework that refuses to run, which a plan never asks it to.
struct NeverRun;

impl Framework for NeverRun {
    fn name(&self) -> &'static str {
        "never-run"
    }
    fn version(&self) -> Result<String> {
        anyhow::bail!("a plan's test runs no framework")
    }
    fn prepare(&self, _: &Graph, _: &Weights, _: &PrepareOptions) -> Result<Box<dyn Prepared>> {
        anyhow::bail!("a plan's test runs no framework")
    }
}

fn never_run(_: &str) -> Box<dyn Framework> {
    Box::new(NeverRun)
}

static EVERY_RUNTIME: Backend = Backend {
    names: &["ort", "ort-own", "torch", "tf"],
    make: never_run,
};

fn request(config: Option<PathBuf>) -> Request {
    let _ = crate::frameworks::register(&EVERY_RUNTIME);
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

/// TensorFlow's reduced precisions are grappler's rewrites, which
/// `--optimize none` turns off: the plan records that cell as not run,
/// with the reason, instead of starting a worker that fails.
#[test]
fn tf_reduced_precision_at_level_none_is_not_planned() {
    let cat = Catalog::built_in().unwrap();
    let mut r = request(None);
    r.frameworks = vec!["tf".into(), "torch".into()];
    r.models = vec!["resnet50".into()];
    r.precision = vec![Precision::Fp32, Precision::Bf16];
    r.optimize = vec![Optimize::None, Optimize::Default];
    r.device = Some(Device::Cpu);
    let p = plan(&r, &cat).unwrap();
    let why = frameworks::precision::unsupported_level("tf", Precision::Bf16, Optimize::None);
    assert!(why.is_some_and(|w| w.contains("--optimize none")));
    assert!(
        p.unsupported.iter().any(|u| u.framework == "tf"
            && u.precision == Precision::Bf16
            && u.optimize == Some(Optimize::None)
            && Some(u.reason.as_str()) == why),
        "{:?}",
        p.unsupported
    );
    let tf = p.settings("tf");
    assert!(!tf
        .iter()
        .any(|s| s.optimize == Optimize::None && s.precision == Precision::Bf16));
    assert!(tf
        .iter()
        .any(|s| s.optimize == Optimize::None && s.precision == Precision::Fp32));
    // libtorch's bf16 is its own, at every level
    assert_eq!(p.settings("torch").len(), 4);
    // fp32, and other runtimes, have no level rule
    for (f, prec) in [
        ("tf", Precision::Fp32),
        ("torch", Precision::Bf16),
        ("tf", Precision::Tf32),
    ] {
        assert_eq!(
            frameworks::precision::unsupported_level(f, prec, Optimize::None),
            None
        );
    }
    assert!(
        frameworks::precision::unsupported_level("tf#2", Precision::Fp16, Optimize::None).is_some()
    );
    assert_eq!(
        frameworks::precision::unsupported_level("tf", Precision::Fp16, Optimize::Max),
        None
    );
}

/// A plan of the lock-step fixture's machine (quick, 224 px, batch 1, two
/// intra-op threads) over `models` in ort, torch (twice) and tf.
fn fixture_plan(models: &[&str]) -> RunPlan {
    let mut r = request(None);
    r.profile = Some("quick".into());
    r.frameworks = ["ort", "torch", "torch", "tf"].map(String::from).to_vec();
    r.models = models.iter().map(|m| m.to_string()).collect();
    let mut p = plan(&r, &Catalog::built_in().unwrap()).unwrap();
    (p.size, p.batch, p.intra_threads) = (224, vec![1], 2);
    p
}

#[test]
fn a_run_holds_the_schedules_an_earlier_run_chose() {
    use crate::record::Setting;
    let mut file = crate::report::fixture("quick-cpu-2core-lockstep.json");
    let catalog = Catalog::built_in().unwrap();
    let mut p = fixture_plan(&["resnext50_branched", "resnet50"]);
    let par = |file: &crate::record::RunFile, model: &str, fw: &str| {
        let c = file
            .cells
            .iter()
            .find(|c| c.model == model && c.framework == fw && c.mode == Mode::Parallel);
        c.unwrap().clone()
    };
    // a repeat of torch in the file, with a schedule of its own: the
    // original's is held, once
    let mut repeat = par(&file, "resnext50_branched", "torch");
    repeat.framework = "torch#2".into();
    repeat.schedule.as_mut().unwrap().ran.swap(0, 1);
    file.cells.push(repeat);
    let from = Path::new("earlier.json");
    let held = schedules::held(&file, from, &p, &catalog).unwrap();
    // the cost model's schedules of the run's two models in ort and torch;
    // none of ort-own or tf (their own executors), none of other models
    let names: Vec<(&str, &str)> = held
        .iter()
        .map(|h| (h.model.as_str(), h.framework.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("resnet50", "ort"),
            ("resnet50", "torch"),
            ("resnext50_branched", "ort"),
            ("resnext50_branched", "torch")
        ]
    );
    p.schedules = held;
    let s = Setting {
        optimize: Optimize::Default,
        precision: Precision::Fp32,
        batch: 1,
    };
    let torch = par(&file, "resnext50_branched", "torch");
    assert_eq!(torch.schedule.as_ref().unwrap().ran.len(), 29);
    for fw in ["torch", "torch#2"] {
        let got = p.held_schedule("resnext50_branched", fw, Mode::Parallel, s);
        assert_eq!(got, torch.schedule.as_ref(), "{fw}");
    }
    // nothing for a sequential cell, another framework, setting or model
    let none = [
        ("resnext50_branched", "torch", Mode::Sequential, s),
        ("resnext50_branched", "tf", Mode::Parallel, s),
        (
            "resnext50_branched",
            "torch",
            Mode::Parallel,
            Setting { batch: 2, ..s },
        ),
        ("scalenet50", "torch", Mode::Parallel, s),
    ];
    for (m, fw, mode, setting) in none {
        assert_eq!(
            p.held_schedule(m, fw, mode, setting),
            None,
            "{m} {fw} {mode}"
        );
    }
}

#[test]
fn a_held_schedule_must_fit_the_run() {
    let file = crate::report::fixture("quick-cpu-2core-lockstep.json");
    let catalog = Catalog::built_in().unwrap();
    let from = Path::new("earlier.json");
    let err = |p: &RunPlan, f: &crate::record::RunFile| {
        format!("{:#}", schedules::held(f, from, p, &catalog).unwrap_err())
    };
    // chosen for two intra-op threads
    let mut p = fixture_plan(&["resnet50"]);
    p.intra_threads = 1;
    let e = err(&p, &file);
    assert!(
        e.starts_with("--schedules-from earlier.json: resnet50 ort parallel: its schedule was chosen for 2 intra-op thread(s), this run has 1"),
        "{e}"
    );
    // the cell named with its batch where the run has several
    p.batch = vec![1, 4];
    let e = err(&p, &file);
    assert!(
        e.starts_with(
            "--schedules-from earlier.json: resnet50 ort parallel --batch 1: its schedule"
        ),
        "{e}"
    );
    // another size, batch, level or device: none of the file's cells
    for change in [
        |p: &mut RunPlan| p.size = 160,
        |p: &mut RunPlan| p.batch = vec![4],
        |p: &mut RunPlan| p.optimize = vec![Optimize::Max],
        |p: &mut RunPlan| p.device = Device::Cuda,
        |p: &mut RunPlan| p.frameworks = vec!["tf".into(), "ort-own".into()],
        |p: &mut RunPlan| p.models = vec!["inception_v3".into()],
    ] {
        let mut p = fixture_plan(&["resnet50"]);
        change(&mut p);
        let e = err(&p, &file);
        assert!(
            e.starts_with(
                "--schedules-from earlier.json: holds no schedule for this run's parallel cells"
            ),
            "{e}"
        );
    }
    // a schedule that names a node the graph lacks, or leaves one out
    let p = fixture_plan(&["resnext50_branched"]);
    let torch = |f: &mut crate::record::RunFile| {
        let c = f.cells.iter_mut().find(|c| {
            c.model == "resnext50_branched" && c.framework == "torch" && c.mode == Mode::Parallel
        });
        c.unwrap().schedule.as_mut().unwrap().ran.clone()
    };
    let mut f = file.clone();
    let mut ran = torch(&mut f);
    if let crate::record::StageNodes::Sequential(n) = &mut ran[0] {
        n[0] = "nope".into();
    }
    set_ran(&mut f, ran);
    let e = err(&p, &f);
    assert!(
        e.starts_with("--schedules-from earlier.json: resnext50_branched torch parallel: the stored schedule names node 'nope'"),
        "{e}"
    );
    let mut f = file.clone();
    let mut ran = torch(&mut f);
    ran.pop();
    set_ran(&mut f, ran);
    let e = err(&p, &f);
    assert!(e.contains("does not run each of this graph's"), "{e}");
}

/// Sets the stored schedule of the fixture's libtorch ResNeXt-50-branched
/// parallel cell.
fn set_ran(f: &mut crate::record::RunFile, ran: Vec<crate::record::StageNodes>) {
    for c in &mut f.cells {
        if c.model == "resnext50_branched" && c.framework == "torch" && c.mode == Mode::Parallel {
            c.schedule.as_mut().unwrap().ran = ran.clone();
        }
    }
}
