//! The published numbers of Li et al., "Data-Driven Neuron Allocation for
//! Scale Aggregation Networks", CVPR 2019, Table 5: TensorFlow on a GTX 1060,
//! batch 16, 224x224, mean of 1000 runs. Published, not measured here.
//! Each row stands beside the zoo model the paper actually timed.

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
    // The paper's "ResNeXt-50" row: its TensorFlow speed test timed an
    // SE-ResNeXt-50 built from tf.split into 32 convolutions, which is this
    // zoo's se_resnext50_branched, not the grouped ResNeXt-50.
    Published {
        model: "se_resnext50_branched",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_resnext_row_stands_beside_the_branched_se_resnext() {
        assert_eq!(
            lookup("se_resnext50_branched").map(|p| p.gpu_ms),
            Some(147.0)
        );
        assert!(lookup("resnext50").is_none());
        assert_eq!(lookup("scalenet50").map(|p| p.gpu_ms), Some(93.0));
    }
}
