//! The table of what limits each paired ratio's precision: per speedup
//! (and A/A repeat), how much of the noise in time its pairs cancelled,
//! how much the pairs kept, how much lies between worker processes, and
//! the hypervisor's steal while they timed; so a reader knows whether more
//! rounds or more processes (or a quieter machine) would narrow it.

use super::grid::{self, Grid};
use crate::record::limits::{limits, Limits};
use crate::record::placement;
use crate::record::CellRecord;

/// Above this share of a ratio's variance between processes, more
/// processes narrow its interval and more rounds do not.
const PROCESS_BOUND: f64 = 0.5;

fn share(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

/// What would narrow the ratio of `a` over `b`, whose variance is `l`.
fn bound_by(a: &CellRecord, b: &CellRecord, l: &Limits) -> &'static str {
    if placement::bound(a, b) {
        "neither (placements differ)"
    } else if l.process_share > PROCESS_BOUND {
        "processes"
    } else {
        "rounds"
    }
}

/// The most steal time of either cell's processes, in cores.
fn steal(a: &CellRecord, b: &CellRecord) -> String {
    match a
        .stolen_cores()
        .into_iter()
        .chain(b.stolen_cores())
        .reduce(f64::max)
    {
        Some(s) => format!("{s:.2}"),
        None => "-".into(),
    }
}

/// The nearest and farthest the cores were while either cell's processes
/// timed, ns.
fn apart(a: &CellRecord, b: &CellRecord) -> String {
    let ranges = [placement::range(a), placement::range(b)];
    let lo = ranges.iter().flatten().map(|r| r.0).reduce(f64::min);
    let hi = ranges.iter().flatten().map(|r| r.1).reduce(f64::max);
    match (lo, hi) {
        (Some(lo), Some(hi)) if hi >= lo + 0.5 => format!("{lo:.0}-{hi:.0}"),
        (Some(lo), _) => format!("{lo:.0}"),
        _ => "-".into(),
    }
}

/// A cell's time moves by more than this share between the host's two
/// placements of the cores: worth a note.
const PLACEMENT_MATTERS: f64 = 0.10;

/// Where the cell's rounds ran on two placements of the cores at
/// times more than [`PLACEMENT_MATTERS`] apart, a note that says so; for
/// a speedup (`par` its parallel twin, whose processes shared each round
/// with the sequential cell's) with the speedup on each placement.
fn placement_note(c: &CellRecord, par: Option<&CellRecord>) -> Option<String> {
    let s = placement::split(c)?;
    if (s.slowdown().ln()).abs() < (1.0 + PLACEMENT_MATTERS).ln() {
        return None;
    }
    let side = |p: &placement::Placement| {
        let speedup = par
            .map(|par| {
                let r = grid::speedup(
                    &placement::only(c, &p.rounds),
                    &placement::only(par, &p.rounds),
                );
                format!(
                    ", speedup {:.2}x ±{}",
                    r.value,
                    crate::record::target::percent(r.half_width())
                )
            })
            .unwrap_or_default();
        format!(
            "{} round(s) of {} process(es) with the cores {:.0} ns apart ran at {:.1} ms{speedup}",
            p.rounds.len(),
            p.processes.len(),
            p.core_to_core_ns,
            p.median_ms
        )
    };
    Some(format!(
        "{} {}{} {}: {}; {} ({:.2}x the time): the host moved this machine's cores between them, and the cell's intervals span both placements.",
        c.model,
        c.framework,
        crate::record::setting_suffix(c.optimize, c.precision),
        c.mode,
        side(&s.near),
        side(&s.far),
        s.slowdown()
    ))
}

/// What a row's two cells are to each other.
#[derive(Clone, Copy)]
enum Paired {
    /// A cell's sequential and parallel modes.
    Speedup,
    /// An A/A repeat and its original.
    Repeat,
}

/// The cells' paired ratios: each speedup (sequential over parallel) and
/// each A/A repeat over its original, with what limits it; `None` where
/// no ratio was timed in lock-step.
pub fn grid(cells: &[CellRecord]) -> Option<Grid> {
    let speedups = cells
        .iter()
        .filter_map(|par| Some((super::sequential_twin(par, cells)?, par, Paired::Speedup)));
    let repeats = cells
        .iter()
        .filter_map(|c| Some((c, super::repeats::original(c, cells)?, Paired::Repeat)));
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut noted = Vec::new();
    for (a, b, what) in speedups.chain(repeats) {
        let Some(l) = limits(a, b) else {
            continue;
        };
        let (r, ratio) = match what {
            Paired::Speedup => (grid::speedup(a, b), "seq / par".to_string()),
            Paired::Repeat => (
                crate::compare::within(a, b),
                format!("repeat / original {}", a.mode),
            ),
        };
        rows.push(vec![
            a.model.clone(),
            format!(
                "{}{}",
                b.framework,
                crate::record::setting_suffix(b.optimize, b.precision)
            ),
            ratio,
            format!(
                "{:.3}x ±{}",
                r.value,
                crate::record::target::percent(r.half_width())
            ),
            format!("{} · {}", l.pairs, l.processes),
            share(l.pair_sd),
            l.drift_cancelled.map_or("-".into(), share),
            share(l.process_share),
            steal(a, b),
            apart(a, b),
            bound_by(a, b, &l).into(),
        ]);
        // one note per cell: the first row it is in (its speedup's, where
        // it has one: the speedups come first)
        let twin = matches!(what, Paired::Speedup).then_some(b);
        for (c, par) in [(a, twin), (b, None)] {
            let key = (&c.model, &c.framework, c.setting(), c.mode);
            if noted.contains(&key) {
                continue;
            }
            if let Some(n) = placement_note(c, par) {
                noted.push(key);
                notes.push(n);
            }
        }
    }
    if rows.is_empty() {
        return None;
    }
    Some(Grid {
        title: "What limits each ratio's precision".into(),
        header: [
            "model",
            "framework",
            "ratio",
            "value ±95%",
            "pairs · processes",
            "pair sd",
            "drift cancelled",
            "between processes",
            "steal (cores)",
            "cores apart (ns)",
            "narrowed by more",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        notes: vec![
            "pair sd: how much one pair's log ratio varies within a process (round to round). drift cancelled: the share of the two cells' variance in time that they shared round by round, which the pairs cancel (negative: pairing added noise). between processes: the share of the ratio's variance of the mean that lies between worker processes (each process's own offset); above half, more processes narrow the interval and more rounds do not. steal: the most a hypervisor gave other guests while these processes timed. cores apart: the one-way latency between the machine's first two cores, probed before every round (the nearest and the farthest): a VM's host may move its cores between a shared cache and none. narrowed by more: rounds, processes, or neither where the ratio differs between the two placements of the cores (their 95% intervals disjoint): its interval spans two ratios, and a process adds whichever placement the host gives it.".into(),
        ],
    })
    .map(|mut g| {
        g.notes.extend(notes);
        g.notes.extend(super::notes::busy(cells));
        g
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_speedup_of_the_quick_run_says_what_limits_it() {
        let file = super::super::fixture("quick-cpu-2core-lockstep.json");
        let g = grid(&file.cells).unwrap();
        let speedups = file
            .cells
            .iter()
            .filter(|p| super::super::sequential_twin(p, &file.cells).is_some())
            .count();
        assert_eq!(g.rows.len(), speedups);
        for row in &g.rows {
            assert_eq!(row.len(), g.header.len());
            assert!(row[10] == "rounds" || row[10] == "processes", "{row:?}");
        }
    }

    /// A speedup that differs between the placements: more of neither
    /// narrows it, and the target note gives it on each placement.
    #[test]
    fn a_speedup_bound_by_the_placement_is_narrowed_by_neither() {
        let (seq, par) = crate::record::placement::two_placements(1.10, 1.47);
        let cells = [seq, par];
        let g = grid(&cells).unwrap();
        let col = g.header.len() - 1;
        assert_eq!(g.rows[0][col], "neither (placements differ)");
        let mut plan = super::super::fixture("quick-cpu-2core-lockstep.json").plan;
        plan.target = Some(0.02);
        let note = super::super::target_note(&[&plan], &cells).unwrap();
        assert!(
            note.contains("not reached within the time budget: m ort ±")
                && note.contains("% (placements differ: 1.10x ±")
                && note.contains("% with the cores near, 1.46x ±")
                && note.ends_with("% far). The table 'What limits each ratio's precision' says for each whether more rounds or more processes would narrow it, or neither."),
            "{note}"
        );
        // the same speedup on both placements: processes narrow it
        let (seq, par) = crate::record::placement::two_placements(1.10, 1.10);
        let cells = [seq, par];
        assert_ne!(
            grid(&cells).unwrap().rows[0][col],
            "neither (placements differ)"
        );
        let note = super::super::target_note(&[&plan], &cells).unwrap();
        assert!(!note.contains("placements differ"), "{note}");
    }

    /// Two processes on the near placement and two on the far one, the
    /// sequential cell twice as slow on the far one: the column gives the
    /// range, one note (not one per row) names the processes and times;
    /// the parallel cell, 5% apart, gets none.
    #[test]
    fn two_placements_of_the_cores_are_named() {
        use crate::record::{test_cell, Mode};
        let ns = [35.0, 165.0, 160.0, 37.0];
        let probed = |samples: &[&[f64]], mode| {
            let mut c = test_cell(samples, true);
            c.mode = mode;
            for (p, &n) in c.processes.iter_mut().zip(&ns) {
                p.core_to_core_ns = Some(n);
            }
            c
        };
        let seq = probed(
            &[
                &[75.0, 76.0],
                &[146.0, 145.0],
                &[150.0, 149.0],
                &[80.0, 79.0],
            ],
            Mode::Sequential,
        );
        let par = probed(
            &[&[60.0, 61.0], &[63.0, 63.0], &[63.0, 62.0], &[60.0, 60.0]],
            Mode::Parallel,
        );
        let cells = [seq, par];
        let g = grid(&cells).unwrap();
        assert_eq!(g.rows.len(), 1);
        let col = g
            .header
            .iter()
            .position(|h| h == "cores apart (ns)")
            .unwrap();
        assert_eq!(g.rows[0][col], "35-165");
        let named: Vec<&String> = g.notes.iter().filter(|n| n.contains("moved")).collect();
        assert_eq!(named.len(), 1, "{:?}", g.notes);
        // pairs near: 75/60, 76/61, 80/60, 79/60 (geometric mean 1.286);
        // far: 146/63, 145/63, 150/63, 149/62 (2.350)
        assert!(
            named[0].starts_with("m ort sequential: 4 round(s) of 2 process(es) with the cores 36 ns apart ran at 77.5 ms, speedup 1.29x"),
            "{}",
            named[0]
        );
        assert!(
            named[0].contains(
                "; 4 round(s) of 2 process(es) with the cores 162 ns apart ran at 147.5 ms, speedup 2.35x"
            ),
            "{}",
            named[0]
        );
        assert!(named[0].contains("(1.90x the time)"), "{}", named[0]);
        // with an A/A repeat of both modes: a note for each sequential
        // cell, once, with its speedup, though each is in two rows
        let mut with_repeat = cells.to_vec();
        for c in &cells {
            let mut r = c.clone();
            r.framework = "ort#2".into();
            with_repeat.push(r);
        }
        let g = grid(&with_repeat).unwrap();
        assert_eq!(g.rows.len(), 4);
        let named: Vec<&String> = g.notes.iter().filter(|n| n.contains("moved")).collect();
        assert_eq!(named.len(), 2, "{:?}", g.notes);
        assert!(named.iter().all(|n| n.contains("speedup")), "{named:?}");
        // without probes: a dash and no note
        let bare: Vec<CellRecord> = cells
            .iter()
            .cloned()
            .map(|mut c| {
                c.processes
                    .iter_mut()
                    .for_each(|p| p.core_to_core_ns = None);
                c
            })
            .collect();
        let g = grid(&bare).unwrap();
        assert_eq!(g.rows[0][col], "-");
        assert!(!g.notes.iter().any(|n| n.contains("moved")));
        // one placement: one figure
        assert_eq!(apart(&cells[0], &cells[0]).as_str(), "35-165");
        let mut near = cells[0].clone();
        near.processes
            .iter_mut()
            .for_each(|p| p.core_to_core_ns = Some(35.2));
        assert_eq!(apart(&near, &near), "35");
    }

    #[test]
    fn shares_are_whole_percentages() {
        assert_eq!(share(0.163), "16%");
        assert_eq!(share(-0.08), "-8%");
    }

    #[test]
    fn the_bound_follows_the_process_share() {
        let l = |process_share| Limits {
            pairs: 10,
            processes: 2,
            pair_sd: 0.05,
            drift_cancelled: Some(0.5),
            process_share,
        };
        // one placement of the cores
        let (a, b) = crate::record::placement::two_placements(1.1, 1.1);
        assert_eq!(bound_by(&a, &b, &l(0.6)), "processes");
        assert_eq!(bound_by(&a, &b, &l(0.5)), "rounds");
        assert_eq!(bound_by(&a, &b, &l(0.1)), "rounds");
        // two, with different speedups: neither, whatever the share
        let (a, b) = crate::record::placement::two_placements(1.1, 1.5);
        assert_eq!(bound_by(&a, &b, &l(0.6)), "neither (placements differ)");
        assert_eq!(bound_by(&a, &b, &l(0.1)), "neither (placements differ)");
    }
}
