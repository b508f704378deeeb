//! The graphs reproduce the reference parameter and MAC counts exactly.

use speedbench::graph::analysis::analyse;
use speedbench::zoo::{self, Catalog};

#[test]
fn every_reference_model_matches_params_and_macs_at_224() {
    let text = std::fs::read_to_string("tests/reference_model_stats.json").unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let reference = reference.as_object().unwrap();
    let mut checked = Vec::new();
    for (name, want) in reference {
        let spec = Catalog::built_in().unwrap().find(name).unwrap().clone();
        let a = analyse(&zoo::build(&spec, 224).unwrap());
        assert_eq!(a.params, want["params"].as_u64().unwrap(), "{name} params");
        assert_eq!(
            a.macs,
            want["conv_linear_macs_224"].as_u64().unwrap(),
            "{name} MACs"
        );
        checked.push(name.clone());
    }
    assert_eq!(checked.len(), 7);
}

#[test]
fn branched_resnext_has_the_grouped_counts_and_more_parallelism() {
    let grouped = Catalog::built_in()
        .unwrap()
        .find("resnext50")
        .unwrap()
        .clone();
    let branched = Catalog::built_in()
        .unwrap()
        .find("resnext50_branched")
        .unwrap()
        .clone();
    let g = analyse(&zoo::build(&grouped, 224).unwrap());
    let b = analyse(&zoo::build(&branched, 224).unwrap());
    assert_eq!((g.params, g.macs), (b.params, b.macs));
    assert_eq!(g.max_parallel_branches, 2);
    assert_eq!(b.max_parallel_branches, 33);
    assert!(b.ideal_speedup > g.ideal_speedup);
}

#[test]
fn se_resnext50_has_timms_counts_in_both_forms() {
    // timm seresnext50_32x4d: 27,559,896 parameters
    let grouped = Catalog::built_in()
        .unwrap()
        .find("se_resnext50")
        .unwrap()
        .clone();
    let branched = Catalog::built_in()
        .unwrap()
        .find("se_resnext50_branched")
        .unwrap()
        .clone();
    let g = analyse(&zoo::build(&grouped, 224).unwrap());
    let b = analyse(&zoo::build(&branched, 224).unwrap());
    assert_eq!(g.params, 27_559_896);
    assert_eq!((g.params, g.macs), (b.params, b.macs));
    assert!(b.max_parallel_branches > g.max_parallel_branches);
}
