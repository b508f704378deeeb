//! What every runtime must do alike (`speedbench::frameworks::conformance`),
//! for TensorFlow.

speedbench::conformance_tests!(speedbench_tf::Tf);
