//! The graphs reproduce the reference parameter and MAC counts exactly.

use std::path::Path;

use speedbench::graph::analysis::analyse;
use speedbench::zoo::{self, ModelSpec};

#[test]
fn every_reference_model_matches_params_and_macs_at_224() {
    let text = std::fs::read_to_string("tests/reference_model_stats.json").unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let reference = reference.as_object().unwrap();
    let mut checked = Vec::new();
    for (name, want) in reference {
        let spec = ModelSpec::find(Path::new("models"), name).unwrap();
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
    let grouped = ModelSpec::find(Path::new("models"), "resnext50").unwrap();
    let branched = ModelSpec::find(Path::new("models"), "resnext50_branched").unwrap();
    let g = analyse(&zoo::build(&grouped, 224).unwrap());
    let b = analyse(&zoo::build(&branched, 224).unwrap());
    assert_eq!((g.params, g.macs), (b.params, b.macs));
    assert_eq!(g.max_parallel_branches, 2);
    assert_eq!(b.max_parallel_branches, 33);
    assert!(b.ideal_speedup > g.ideal_speedup);
}
