//! The cells of a model that `run` times together: a framework's modes at
//! one setting with its A/A repeats form a lock-step group
//! ([`super::lockstep`]); the ratios inside a group; and which group gets
//! one more process when the precision target is not reached.

use crate::record::{base_framework, CellRecord, Mode, RunFile, RunPlan, Setting};

/// One cell of a model: (framework, setting, mode).
pub type Cell = (String, Setting, Mode);

/// One lock-step group of the run order: (group, process, its cells as
/// (slot, cell)).
pub type Chunk = (usize, usize, Vec<(usize, usize)>);

/// With a target and a time budget, a group whose ratios are still wider
/// than the target after its planned processes gets more, up to this many
/// times as many, widest first, while its model's share of the budget
/// lasts.
pub const MAX_PROCESSES_OVER_PLANNED: usize = 3;

/// A model's cells in the groups that are timed together: per framework
/// (with its A/A repeats, `ort#2`) and setting, each mode; and the size of
/// each group.
pub fn model_cells(plan: &RunPlan, model: &str) -> (Vec<Cell>, Vec<usize>) {
    let mut cells: Vec<Cell> = Vec::new();
    let mut groups: Vec<usize> = Vec::new();
    let ran: Vec<&String> = plan
        .frameworks
        .iter()
        .filter(|f| plan.runs(model, f))
        .collect();
    let mut bases: Vec<&str> = ran.iter().map(|f| base_framework(f)).collect();
    let mut seen = std::collections::BTreeSet::new();
    bases.retain(|b| seen.insert(*b));
    for base in bases {
        for setting in plan.settings(base) {
            let before = cells.len();
            for f in ran.iter().filter(|f| base_framework(f) == base) {
                cells.extend(plan.modes.iter().map(|&m| ((*f).clone(), setting, m)));
            }
            groups.push(cells.len() - before);
        }
    }
    (cells, groups)
}

/// One model's cells in their lock-step groups, and what a results file
/// holds of them.
pub struct ModelCells<'a> {
    model: &'a str,
    cells: &'a [Cell],
    /// Each group's size, in order.
    groups: &'a [usize],
    /// Each group's first cell.
    starts: Vec<usize>,
}

impl<'a> ModelCells<'a> {
    pub fn new(model: &'a str, cells: &'a [Cell], groups: &'a [usize]) -> Self {
        let starts = groups
            .iter()
            .scan(0, |at, &n| {
                let s = *at;
                *at += n;
                Some(s)
            })
            .collect();
        ModelCells {
            model,
            cells,
            groups,
            starts,
        }
    }

    pub fn group_of(&self, cell: usize) -> usize {
        self.starts.iter().rposition(|&s| s <= cell).unwrap_or(0)
    }

    /// Whether `c` is the record of `cell`.
    pub fn is(&self, cell: usize, c: &CellRecord) -> bool {
        let (framework, setting, mode) = &self.cells[cell];
        c.model == self.model
            && &c.framework == framework
            && c.mode == *mode
            && c.setting() == *setting
    }

    /// The original of an A/A repeat `cell` (`torch` of `torch#2`, same
    /// setting and mode); `None` for a cell that is no repeat.
    pub fn original_of(&self, cell: usize) -> Option<usize> {
        let (framework, setting, mode) = &self.cells[cell];
        let base = base_framework(framework);
        if base == framework.as_str() {
            return None;
        }
        self.cells
            .iter()
            .position(|(f, s, m)| f.as_str() == base && s == setting && m == mode)
    }

    /// The file's record of `cell`.
    pub fn held<'f>(&self, file: &'f RunFile, cell: usize) -> Option<&'f CellRecord> {
        file.cells.iter().find(|r| self.is(cell, r))
    }

    /// The ratios of `cells` (of one group), as index pairs into them.
    pub fn pairs(&self, cells: &[usize]) -> Vec<(usize, usize)> {
        ratio_pairs(&cells.iter().map(|&c| &self.cells[c]).collect::<Vec<_>>())
    }

    /// The group whose ratios are widest above `target`, for one more
    /// process: (group, the process index it gets, its cells that have
    /// not failed). `None` where every group reached the target, has
    /// [`MAX_PROCESSES_OVER_PLANNED`] times `processes`, or lacks a record.
    pub fn widest(
        &self,
        file: &RunFile,
        failed: &[bool],
        processes: usize,
        target: f64,
    ) -> Option<(usize, usize, Vec<usize>)> {
        let mut widest: Option<(f64, usize, usize, Vec<usize>)> = None;
        for (g, (&start, &size)) in self.starts.iter().zip(self.groups).enumerate() {
            let alive: Vec<usize> = (start..start + size).filter(|&c| !failed[c]).collect();
            let Some(records) = alive
                .iter()
                .map(|&c| self.held(file, c))
                .collect::<Option<Vec<&CellRecord>>>()
            else {
                continue;
            };
            let have = records.iter().map(|r| r.processes.len()).min();
            if have.is_none_or(|h| h >= processes * MAX_PROCESSES_OVER_PLANNED) {
                continue;
            }
            // a ratio that differs between the host's placements of the
            // cores is not narrowed by another process: it lands on one
            let w = self
                .pairs(&alive)
                .into_iter()
                .filter(|&(a, b)| !crate::record::placement::bound(records[a], records[b]))
                .filter_map(|(a, b)| crate::record::paired(records[a], records[b]))
                .map(|r| r.half_width())
                .reduce(f64::max);
            let next = records
                .iter()
                .flat_map(|r| r.processes.iter().map(|p| p.index))
                .max()
                .map(|i| i + 1);
            if let (Some(w), Some(next)) = (w, next) {
                if w > target && widest.as_ref().is_none_or(|x| w > x.0) {
                    widest = Some((w, g, next, alive));
                }
            }
        }
        widest.map(|(_, g, next, alive)| (g, next, alive))
    }

    /// Over the ratios `pairs` of `cells`, the largest of `of` the file's
    /// records of both cells of a ratio.
    pub fn over_ratios(
        &self,
        file: &RunFile,
        cells: &[usize],
        pairs: &[(usize, usize)],
        of: impl Fn(&CellRecord, &CellRecord) -> Option<f64>,
    ) -> Option<f64> {
        let held: Vec<Option<&CellRecord>> = cells.iter().map(|&c| self.held(file, c)).collect();
        pairs
            .iter()
            .filter_map(|&(a, b)| of(held[a]?, held[b]?))
            .reduce(f64::max)
    }
}

/// The ratios a group's cells are compared by, as index pairs into
/// `cells` (numerator, denominator): each framework's sequential over its
/// parallel mode (the speedup), and each A/A repeat over its original in
/// the same mode.
pub fn ratio_pairs(cells: &[&Cell]) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for (i, (fi, _, mi)) in cells.iter().enumerate() {
        for (j, (fj, _, mj)) in cells.iter().enumerate() {
            let speedup = fi == fj && *mi == Mode::Sequential && *mj == Mode::Parallel;
            let repeat = mi == mj
                && fi != fj
                && fi.as_str() != base_framework(fi)
                && fj.as_str() == base_framework(fj);
            if speedup || repeat {
                pairs.push((i, j));
            }
        }
    }
    pairs
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Optimize, Precision};

    fn cell(framework: &str, mode: Mode) -> Cell {
        let setting = Setting {
            optimize: Optimize::Default,
            precision: Precision::Fp32,
            batch: 1,
        };
        (framework.into(), setting, mode)
    }

    /// A group's ratios: each framework's sequential over its parallel
    /// mode, and each repeat over its original in the same mode; never a
    /// repeat over a repeat, a mode over itself or across modes.
    #[test]
    fn the_ratios_of_a_group() {
        use Mode::{Parallel as P, Sequential as S};
        let cells = [
            cell("ort", S),
            cell("ort", P),
            cell("ort#2", S),
            cell("ort#2", P),
        ];
        let refs: Vec<&Cell> = cells.iter().collect();
        assert_eq!(ratio_pairs(&refs), [(0, 1), (2, 0), (2, 3), (3, 1)]);
        let one = [cell("tf", P), cell("tf", S)];
        assert_eq!(ratio_pairs(&one.iter().collect::<Vec<_>>()), [(1, 0)]);
        let alone = [cell("tf", S)];
        assert!(ratio_pairs(&alone.iter().collect::<Vec<_>>()).is_empty());
        let three = [cell("ort#2", S), cell("ort#3", S), cell("ort", S)];
        assert_eq!(
            ratio_pairs(&three.iter().collect::<Vec<_>>()),
            [(0, 2), (1, 2)]
        );
    }

    /// A repeat's original is its base framework's cell of the same mode
    /// and setting; an original, or a repeat whose base is not in the
    /// model's cells, has none.
    #[test]
    fn a_repeat_runs_the_schedule_of_its_original() {
        use Mode::{Parallel as P, Sequential as S};
        let mut other = cell("torch", P);
        other.1.batch = 16;
        let cells = [
            cell("torch", S),
            cell("torch", P),
            other,
            cell("torch#2", S),
            cell("torch#2", P),
            cell("tf#2", P),
        ];
        let groups = [6];
        let mc = ModelCells::new("m", &cells, &groups);
        let found: Vec<Option<usize>> = (0..cells.len()).map(|c| mc.original_of(c)).collect();
        assert_eq!(found, [None, None, None, Some(0), Some(1), None]);
    }

    /// A record of `cell` over processes of samples, rounds numbered.
    fn record(c: &Cell, processes: &[&[f64]]) -> CellRecord {
        let mut r = crate::record::test_cell(processes, true);
        r.model = "m".into();
        r.framework = c.0.clone();
        r.mode = c.2;
        r
    }

    /// After the planned processes, the group whose speedup is widest
    /// above the target gets the next process index, with its cells that
    /// have not failed; a group at the cap, one short of a record, or
    /// every group within the target gets none.
    #[test]
    fn the_widest_group_gets_one_more_process() {
        use Mode::{Parallel as P, Sequential as S};
        let cells = [cell("ort", S), cell("ort", P), cell("tf", S), cell("tf", P)];
        let groups = [2, 2];
        let mc = ModelCells::new("m", &cells, &groups);
        assert_eq!((mc.group_of(1), mc.group_of(2)), (0, 1));
        // ort's pairs vary by 1%, tf's by 10%: both ratios about 1
        let calm: &[f64] = &[10.0, 10.1, 9.9, 10.0, 10.1, 9.9];
        let wild: &[f64] = &[10.0, 11.0, 9.0, 10.0, 12.0, 8.0];
        let flat: &[f64] = &[10.0; 6];
        let mut file: RunFile = crate::report::fixture("quick-cpu-2core.json");
        file.cells = vec![
            record(&cells[0], &[calm, calm]),
            record(&cells[1], &[flat, flat]),
            record(&cells[2], &[wild, wild]),
            record(&cells[3], &[flat, flat]),
        ];
        let none = [false; 4];
        assert_eq!(mc.widest(&file, &none, 2, 0.02), Some((1, 2, vec![2, 3])));
        // a failed cell is left out of the group's next process
        let failed = [false, false, false, true];
        assert_eq!(mc.widest(&file, &failed, 2, 0.02), None);
        // a target both reach: none
        assert_eq!(mc.widest(&file, &none, 2, 0.5), None);
        // a target both miss: the wider, tf's
        let ort = mc.widest(&file, &none, 2, 0.005);
        assert_eq!(ort.map(|w| w.0), Some(1));
        // every group at the cap of its planned processes' multiple
        assert_eq!(mc.widest(&file, &none, 0, 0.02), None);
        // tf's speedup differs between the placements of the cores: a
        // process more would not narrow it, so ort's gets it
        let (mut seq, mut par) = crate::record::placement::two_placements(1.10, 1.47);
        for (c, from) in [(&mut seq, &file.cells[2]), (&mut par, &file.cells[3])] {
            (c.model, c.framework) = (from.model.clone(), from.framework.clone());
        }
        let mut bound = file.clone();
        (bound.cells[2], bound.cells[3]) = (seq, par);
        assert_eq!(mc.widest(&bound, &none, 2, 0.005).map(|w| w.0), Some(0));
        // a cell with no record: its group is skipped
        file.cells.remove(3);
        assert_eq!(mc.widest(&file, &none, 2, 0.02), None);
        // the largest value over a group's ratios
        let sd = mc.over_ratios(&file, &[0, 1], &[(0, 1)], |a, b| {
            Some(crate::record::limits::limits(a, b)?.pair_sd)
        });
        assert!(sd.is_some_and(|s| s > 0.005 && s < 0.02), "{sd:?}");
        assert_eq!(
            mc.over_ratios(&file, &[2, 3], &[(0, 1)], |_, _| Some(1.0)),
            None
        );
    }
}
