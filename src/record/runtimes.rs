//! What speedbench knows of each runtime without loading it: its name on
//! the command line, the library it drives, its colour in the charts and
//! whether it has a CUDA-graph mode. The order is the report's. Which
//! precisions a runtime runs, per device and level, is the table of
//! `frameworks::precision`; how it runs a graph is its crate under
//! `runtimes/`, whose worker binary registers it. A new runtime is one more
//! entry here, its precisions' arms there, and its crate.

/// One runtime's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runtime {
    /// As the command line, the records and the reports name it.
    pub name: &'static str,
    /// The library and how speedbench drives it.
    pub library: &'static str,
    /// Its bars' and lines' colour (RGB).
    pub colour: (u8, u8, u8),
    /// `--optimize cuda-graph` replays a captured CUDA graph.
    pub cuda_graph: bool,
    /// The worker binary that links this runtime (its crate under
    /// `runtimes/`), installed beside `speedbench`.
    pub worker: &'static str,
}

/// Every runtime speedbench knows, built in or not, in report order.
pub const RUNTIMES: [Runtime; 4] = [
    Runtime {
        name: "ort",
        library: "ONNX Runtime, speedbench's schedule over its sessions",
        colour: (31, 119, 180),
        cuda_graph: true,
        worker: "speedbench-ort",
    },
    Runtime {
        name: "ort-own",
        library: "ONNX Runtime, its own parallel executor",
        colour: (120, 120, 120),
        cuda_graph: true,
        worker: "speedbench-ort",
    },
    Runtime {
        name: "torch",
        library: "libtorch (tch)",
        colour: (230, 110, 20),
        cuda_graph: true,
        worker: "speedbench-torch",
    },
    Runtime {
        name: "tf",
        library: "TensorFlow (tensorflow crate)",
        colour: (44, 160, 44),
        cuda_graph: false,
        worker: "speedbench-tf",
    },
];

/// The runtime a framework name stands for (`ort#2` is `ort`).
pub fn runtime(name: &str) -> Option<&'static Runtime> {
    let base = super::base_framework(name);
    RUNTIMES.iter().find(|r| r.name == base)
}

/// The runtimes with a CUDA-graph mode, in report order.
pub fn cuda_graph_runtimes() -> Vec<&'static str> {
    RUNTIMES
        .iter()
        .filter(|r| r.cuda_graph)
        .map(|r| r.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_runtime_is_found_by_its_name_and_its_repeats() {
        for r in &RUNTIMES {
            assert_eq!(runtime(r.name), Some(r));
            assert_eq!(runtime(&format!("{}#2", r.name)), Some(r));
        }
        assert_eq!(runtime("caffe"), None);
        assert_eq!(
            super::super::FRAMEWORKS.map(|f| runtime(f).map(|r| r.name)),
            RUNTIMES.map(|r| Some(r.name))
        );
        assert_eq!(cuda_graph_runtimes(), ["ort", "ort-own", "torch"]);
    }
}
