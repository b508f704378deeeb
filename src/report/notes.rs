//! The notes that several tables share: a busy machine, a placement the
//! rounds were held for.

use crate::record::CellRecord;

/// Marks a cell timed while other processes took more than
/// [`crate::record::BUSY_CORES`].
pub const BUSY_MARK: &str = "!";

/// The note that explains [`BUSY_MARK`], naming the busy cells.
pub fn busy(cells: &[CellRecord]) -> Option<String> {
    let busy = crate::record::busy_cells(cells);
    (!busy.is_empty()).then(|| {
        format!(
            "{BUSY_MARK} busy machine: other processes took more than {} of a core while these cells timed, so their times and ratios are not to be trusted and compare calls them inconclusive: {}.",
            crate::record::BUSY_CORES,
            busy.join(", ")
        )
    })
}

/// What `--placement` held the cells' rounds for, where it held them.
pub fn held(cells: &[CellRecord]) -> Option<String> {
    let (want, waited) = crate::record::placement::held(cells)?;
    let cores = match want {
        crate::record::placement::Wanted::Near => "near (a shared cache)",
        _ => "far apart (no shared cache)",
    };
    // tenths where the wait was short
    let tenths = usize::from(waited < 10.0);
    Some(format!(
        "Timed only with the machine's cores {cores} (--placement {}): each round waited until the probe before it read them so, {waited:.tenths$} s in all.",
        want.name(),
    ))
}
