//! What every runtime must do alike (`speedbench::frameworks::conformance`),
//! for libtorch.

speedbench::conformance_tests!(speedbench_torch::Torch);
