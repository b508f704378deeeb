//! What every runtime must do alike (`speedbench::frameworks::conformance`),
//! for TensorFlow.

use speedbench::frameworks::conformance;
use speedbench_tf::Tf;

#[test]
fn pads_stride_two_windows_on_both_sides() {
    conformance::pads_stride_two_windows_on_both_sides(&Tf);
}

#[test]
fn resizes_as_the_scalenet_authors() {
    conformance::resizes_as_the_scalenet_authors(&Tf);
}

#[test]
fn traces_the_diamond_and_maps_it() {
    conformance::traces_the_diamond_and_maps_it(&Tf);
}
