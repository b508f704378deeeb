//! What every runtime must do alike (`speedbench::frameworks::conformance`),
//! for libtorch.

use speedbench::frameworks::conformance;
use speedbench_torch::Torch;

#[test]
fn pads_stride_two_windows_on_both_sides() {
    conformance::pads_stride_two_windows_on_both_sides(&Torch);
}

#[test]
fn resizes_as_the_scalenet_authors() {
    conformance::resizes_as_the_scalenet_authors(&Torch);
}

#[test]
fn traces_the_diamond_and_maps_it() {
    conformance::traces_the_diamond_and_maps_it(&Torch);
}
