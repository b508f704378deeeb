//! The smoke cell's session creation and forward pass in this runtime
//! (`cargo bench -p speedbench-ort`).

fn frameworks() -> Vec<Box<dyn speedbench::frameworks::Framework>> {
    vec![
        Box::new(speedbench_ort::Ort { own: false }),
        Box::new(speedbench_ort::Ort { own: true }),
    ]
}

include!("../../session_bench.rs");
