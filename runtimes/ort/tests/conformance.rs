//! What every runtime must do alike (`speedbench::frameworks::conformance`),
//! for ONNX Runtime under speedbench's schedule and under its own executor.

use speedbench::frameworks::conformance;
use speedbench_ort::Ort;

const BOTH: [Ort; 2] = [Ort { own: false }, Ort { own: true }];

#[test]
fn pads_stride_two_windows_on_both_sides() {
    for fw in &BOTH {
        conformance::pads_stride_two_windows_on_both_sides(fw);
    }
}

#[test]
fn resizes_as_the_scalenet_authors() {
    for fw in &BOTH {
        conformance::resizes_as_the_scalenet_authors(fw);
    }
}

#[test]
fn traces_the_diamond_and_maps_it() {
    for fw in &BOTH {
        conformance::traces_the_diamond_and_maps_it(fw);
    }
}
