#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use speedbench::graph::{Graph, Op, ParamRef, Shape};

/// A small graph with a convolution, a batch norm and a linear layer.
fn graph() -> &'static Graph {
    static G: OnceLock<Graph> = OnceLock::new();
    G.get_or_init(|| {
        let mut g = Graph::new("fuzz", Shape::new(3, 8, 8));
        let conv = Op::Conv { out: 4, kernel: [3; 2], stride: [1; 2], pad: [1; 2], groups: 1, bias: false, params: ParamRef::whole("conv1") };
        let x = g.add("conv1", conv, &[0]).expect("valid");
        let bn = Op::BatchNorm { eps: 1e-5, params: ParamRef::whole("bn1") };
        let x = g.add("bn1", bn, &[x]).expect("valid");
        let x = g.add("pool", Op::GlobalAvgPool, &[x]).expect("valid");
        let x = g.add("flatten", Op::Flatten, &[x]).expect("valid");
        g.add("fc", Op::Linear { out: 2, params: ParamRef::whole("fc") }, &[x]).expect("valid");
        g
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = speedbench::graph::weights::Weights::from_bytes(data, graph(), std::path::Path::new("w.safetensors"));
});
