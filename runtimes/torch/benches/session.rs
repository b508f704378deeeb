//! The smoke cell's session creation and forward pass in this runtime
//! (`cargo bench -p speedbench-torch`).

fn frameworks() -> Vec<Box<dyn speedbench::frameworks::Framework>> {
    vec![Box::new(speedbench_torch::Torch)]
}

include!("../../session_bench.rs");
