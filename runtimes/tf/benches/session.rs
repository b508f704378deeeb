//! The smoke cell's session creation and forward pass in this runtime
//! (`cargo bench -p speedbench-tf`).

fn frameworks() -> Vec<Box<dyn speedbench::frameworks::Framework>> {
    vec![Box::new(speedbench_tf::Tf)]
}

include!("../../session_bench.rs");
