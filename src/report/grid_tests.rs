//! Tests of `grid`.

use super::{gain_share, levels_note};
use crate::record::{CellRecord, Optimize, Precision};

/// The notes name the levels and precisions the cells ran at; a
/// precision note only where one is not fp32 or several were run.
#[test]
fn the_notes_name_the_levels_and_precisions() {
    let cells = crate::report::fixture("quick-cpu-2core.json").cells;
    let with = |f: &dyn Fn(&mut CellRecord)| -> Vec<CellRecord> {
        let mut c = cells.clone();
        c.iter_mut().for_each(f);
        c
    };
    let fp32 = with(&|c| {
        c.optimize = Optimize::Default;
        c.precision = Precision::Fp32;
    });
    assert_eq!(
        levels_note(&fp32),
        ["Every cell ran at --optimize default."]
    );
    let bf16 = with(&|c| {
        c.optimize = Optimize::Default;
        c.precision = Precision::Bf16;
    });
    let notes = levels_note(&bf16);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[1].starts_with("Cells ran in --precision bf16: "),
        "{notes:?}"
    );
    let mut both = fp32.clone();
    both.extend(bf16);
    both[0].optimize = Optimize::Max;
    let notes = levels_note(&both);
    assert!(
        notes[0].starts_with("Cells ran at different --optimize levels ("),
        "{notes:?}"
    );
    assert!(
        notes[1].starts_with("Cells ran in --precision fp32, bf16: "),
        "{notes:?}"
    );
}

#[test]
fn the_gain_share_is_of_the_gain_the_graph_allows() {
    // a graph that allows 1.10x: no gain is 0%, all of it 100%
    assert_eq!(gain_share(1.0, 1.1), Some(0.0));
    assert!((gain_share(1.1, 1.1).unwrap() - 1.0).abs() < 1e-12);
    assert!((gain_share(1.05, 1.1).unwrap() - 0.5).abs() < 1e-12);
    // slower than sequential reads below zero, not as 91%
    assert!((gain_share(0.99, 1.1).unwrap() + 0.1).abs() < 1e-12);
    // no branches: no share
    assert_eq!(gain_share(1.02, 1.0), None);
}
