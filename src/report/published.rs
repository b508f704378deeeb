//! The published numbers of Li et al., "Data-Driven Neuron Allocation for
//! Scale Aggregation Networks", CVPR 2019, Table 5: TensorFlow on a GTX 1060,
//! batch 16, 224x224, mean of 1000 runs. Published, not measured here.

pub struct Published {
    pub model: &'static str,
    pub top1_err: f64,
    /// Multiply-adds, 1e9.
    pub gflops: f64,
    pub gpu_ms: f64,
}

pub const SCALENET_PAPER: [Published; 4] = [
    Published {
        model: "resnet50",
        top1_err: 24.02,
        gflops: 4.1,
        gpu_ms: 95.0,
    },
    Published {
        model: "se_resnet50",
        top1_err: 23.29,
        gflops: 4.1,
        gpu_ms: 98.0,
    },
    Published {
        model: "resnext50",
        top1_err: 22.2,
        gflops: 4.2,
        gpu_ms: 147.0,
    },
    Published {
        model: "scalenet50",
        top1_err: 22.2,
        gflops: 3.8,
        gpu_ms: 93.0,
    },
];

pub fn lookup(model: &str) -> Option<&'static Published> {
    SCALENET_PAPER.iter().find(|p| p.model == model)
}
