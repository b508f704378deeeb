//! What every runtime must do alike (`speedbench::frameworks::conformance`),
//! for ONNX Runtime under speedbench's schedule and under its own executor.

use speedbench_ort::Ort;

speedbench::conformance_tests!(Ort { own: false }, Ort { own: true });
