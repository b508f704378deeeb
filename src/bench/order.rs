//! The order of a model's worker processes: every cell (framework, level,
//! mode) of the model is measured in R processes, one round after another.
//! Cells come in groups whose cells are compared with each other (a
//! framework's modes at one level, and its A/A repeats): a round runs each
//! group's cells one after another, so the processes that a speedup pairs
//! run side by side in time. Rounds come in pairs: a seeded shuffle of the
//! groups and of the cells in each, then that round reversed (A B, B A:
//! each cell runs first as often as last), so drift over the run hits every
//! cell alike and no two cells share a process. The seed is recorded in the
//! run's plan; `--resume` computes the same order from it.

use rand::seq::SliceRandom;
use rand::SeedableRng;

/// One worker process: process `process` (0-based) of cell `cell`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    pub cell: usize,
    pub process: usize,
}

/// The processes of cells in groups of `groups[g]` cells (numbered group by
/// group from 0), `processes` each, in run order.
pub fn order(groups: &[usize], processes: usize, seed: u64) -> Vec<Unit> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let starts: Vec<usize> = groups
        .iter()
        .scan(0, |at, &n| {
            let s = *at;
            *at += n;
            Some(s)
        })
        .collect();
    let mut out = Vec::new();
    let mut round: Vec<usize> = Vec::new();
    for r in 0..processes {
        if r % 2 == 0 {
            let mut gs: Vec<usize> = (0..groups.len()).collect();
            gs.shuffle(&mut rng);
            round.clear();
            for g in gs {
                let mut cells: Vec<usize> = (starts[g]..starts[g] + groups[g]).collect();
                cells.shuffle(&mut rng);
                round.extend(cells);
            }
        } else {
            round.reverse();
        }
        out.extend(round.iter().map(|&cell| Unit { cell, process: r }));
    }
    out
}

/// The seed of model `index`'s order in a run whose order seed is `seed`.
pub fn model_seed(seed: u64, index: usize) -> u64 {
    seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(o: &[Unit], cells: usize) -> Vec<Vec<usize>> {
        let mut p = vec![Vec::new(); cells];
        for (i, u) in o.iter().enumerate() {
            p[u.cell].push(i);
        }
        p
    }

    #[test]
    fn every_cell_runs_each_process_once_round_by_round() {
        let o = order(&[4], 3, 11);
        assert_eq!(o.len(), 12);
        for (i, u) in o.iter().enumerate() {
            assert_eq!(u.process, i / 4, "{o:?}");
        }
        for r in 0..3 {
            let mut cells: Vec<usize> = o[r * 4..r * 4 + 4].iter().map(|u| u.cell).collect();
            cells.sort();
            assert_eq!(cells, [0, 1, 2, 3]);
        }
        assert!(order(&[3], 0, 1).is_empty() && order(&[], 3, 1).is_empty());
        assert!(order(&[0, 0], 2, 1).is_empty());
    }

    /// A B B A: a pair of rounds gives every cell the same summed position.
    #[test]
    fn pairs_of_rounds_are_balanced() {
        for seed in 0..20 {
            let o = order(&[2, 1, 2], 4, seed);
            for p in positions(&o, 5) {
                let within: Vec<usize> = p.iter().enumerate().map(|(r, &i)| i - r * 5).collect();
                assert_eq!(within[0] + within[1], 4, "{o:?}");
                assert_eq!(within[2] + within[3], 4, "{o:?}");
            }
        }
        let two: Vec<usize> = order(&[2], 2, 5).iter().map(|u| u.cell).collect();
        assert!(two == [0, 1, 1, 0] || two == [1, 0, 0, 1], "{two:?}");
    }

    /// A group's cells run one after another in every round, wherever the
    /// group falls in it.
    #[test]
    fn a_group_s_cells_run_side_by_side() {
        for seed in 0..20 {
            let o = order(&[2, 3, 1, 2], 3, seed);
            for r in 0..3 {
                let round: Vec<usize> = o[r * 8..r * 8 + 8].iter().map(|u| u.cell).collect();
                for group in [0..2, 2..5, 5..6, 6..8] {
                    let at: Vec<usize> = round
                        .iter()
                        .enumerate()
                        .filter(|(_, &c)| group.contains(&c))
                        .map(|(i, _)| i)
                        .collect();
                    assert_eq!(at.last().unwrap() - at[0], at.len() - 1, "{round:?}");
                }
            }
        }
    }

    #[test]
    fn seeded_shuffle_reproducible_and_varied() {
        assert_eq!(order(&[3, 3], 5, 42), order(&[3, 3], 5, 42));
        let firsts: std::collections::BTreeSet<Vec<usize>> = (0..30)
            .map(|s| order(&[3, 3], 1, s).iter().map(|u| u.cell).collect())
            .collect();
        // 2 group orders x 3! x 3! = 72 rounds to draw from
        assert!(firsts.len() > 20, "{}", firsts.len());
        // a later pair of rounds is a fresh shuffle, not a repeat of the first
        let differs = (0..30).any(|s| {
            let o = order(&[6], 3, s);
            o[0..6]
                .iter()
                .map(|u| u.cell)
                .ne(o[12..18].iter().map(|u| u.cell))
        });
        assert!(differs);
    }

    /// The seeds are fixed values: a results file resumed by a later
    /// speedbench must get the order it was started with.
    #[test]
    fn model_seeds_differ() {
        assert_eq!(model_seed(5, 1), 0x9e37_79b9_7f4a_7c10);
        assert_eq!(model_seed(7, 0), 7);
        assert_ne!(model_seed(7, 1), model_seed(7, 2));
        assert_ne!(model_seed(7, 1), 7);
    }
}
