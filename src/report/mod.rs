//! Rendering records: pure functions from records to text.

pub mod csv;
pub mod table;

use crate::bench::record::CellRecord;
use crate::frameworks::Mode;

/// The sequential/parallel speedup of a parallel cell: the ratio of the
/// medians of its sequential twin (same model, framework, device, batch,
/// size, host) and itself.
pub fn speedup(cell: &CellRecord, all: &[CellRecord]) -> Option<f64> {
    if cell.mode != Mode::Parallel {
        return None;
    }
    all.iter()
        .find(|c| {
            c.mode == Mode::Sequential
                && c.model == cell.model
                && c.framework == cell.framework
                && c.device == cell.device
                && c.batch == cell.batch
                && c.size == cell.size
                && c.host == cell.host
        })
        .map(|s| s.latency.median / cell.latency.median)
}
