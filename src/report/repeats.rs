//! The A/A table: a framework named twice in one run (`ort` and `ort#2`)
//! times the same cells twice, so every ratio between the two should be
//! 1.00 and its 95% interval should hold 1.00 about 95 times in 100. It is
//! the test of the method's intervals, run by a user in one command.

use super::grid::{self, Grid};
use crate::record::{base_framework, CellRecord};

/// The original of an A/A repeat (`ort` of `ort#2`): the same cell
/// otherwise; `None` for a cell that is no repeat or has no original.
pub fn original<'a>(c: &CellRecord, cells: &'a [CellRecord]) -> Option<&'a CellRecord> {
    if !c.framework.contains('#') {
        return None;
    }
    cells.iter().find(|a| {
        a.framework == base_framework(&c.framework)
            && (&a.model, a.device, a.mode, a.setting(), a.size, &a.host)
                == (&c.model, c.device, c.mode, c.setting(), c.size, &c.host)
    })
}

/// Each repeat's median over its original's, with the interval over both
/// cells' processes (paired: their processes ran in the same rounds) and
/// iterations; `None` when no framework was named twice.
pub fn grid(cells: &[CellRecord]) -> Option<Grid> {
    let mut rows = Vec::new();
    let mut held = 0;
    for c in cells {
        let Some(a) = original(c, cells) else {
            continue;
        };
        let r = crate::compare::within(c, a);
        let holds = r.ci.0 <= 1.0 && 1.0 <= r.ci.1;
        held += usize::from(holds);
        rows.push(vec![
            c.model.clone(),
            format!("{} / {}", c.framework, a.framework),
            format!("{}{}", c.mode, crate::compare::level_suffix(c.optimize)),
            grid::ms(a),
            grid::ms(c),
            format!("{:.3}x [{:.3}, {:.3}]", r.value, r.ci.0, r.ci.1),
            if holds { "yes" } else { "NO" }.to_string(),
        ]);
    }
    if rows.is_empty() {
        return None;
    }
    let n = rows.len();
    let mut notes = vec![format!(
        "A/A: the same cells timed twice in one run; {held} of {n} 95% intervals hold 1.00 (about 95% should, over many)."
    )];
    notes.extend(super::notes::busy(cells));
    Some(Grid {
        title: "Repeats (A/A): a framework named twice".into(),
        header: [
            "model",
            "repeat / original",
            "mode",
            "original ms",
            "repeat ms",
            "ratio [95% CI]",
            "holds 1.00",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        notes,
    })
}
