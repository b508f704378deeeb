//! The headline a terminal shows: per model and framework the sequential
//! and parallel medians, the speedup with its 95% CI and what the traced
//! parallel pass ran, one row each, fitted to the terminal's width. The wide
//! tables (paper-style, per cell) stay in the files and behind `--wide`.

use std::collections::BTreeSet;

use super::grid::{self, Grid};
use super::table;
use crate::record::{CellRecord, Mode};

pub const SEQ: &str = "seq ms";
pub const PAR: &str = "par ms";
pub const SPEEDUP: &str = "speedup";
pub const CI: &str = "95% CI";
pub const RAN: &str = "par ran";

/// The columns left out, in this order, while the headline is wider than
/// the terminal: what the traced pass ran, the speedup's interval, then the
/// two medians. Model, framework and speedup always stay.
pub const DROP_ORDER: [&str; 4] = [RAN, CI, SEQ, PAR];

/// Marks a parallel cell whose traced pass ran one operation at a time (the
/// wide tables' "(ran sequentially)", shorter).
const SERIAL_MARK: &str = "(serial)";

/// The headline table of `cells` and the facts its notes explain.
struct Headline {
    grid: Grid,
    noisy: bool,
    serial: bool,
    /// A speedup differs between the placements of the cores.
    placed: bool,
    levels: Option<String>,
}

fn build(cells: &[CellRecord]) -> Headline {
    let groups = grid::groups(cells);
    let levels: Vec<String> = crate::record::levels(cells)
        .iter()
        .map(ToString::to_string)
        .collect();
    let label = grid::labeller(&groups);
    let keys = grid::row_keys(cells);
    let shapes: BTreeSet<(usize, usize)> = keys.iter().map(|k| (k.1, k.2)).collect();
    let (mut noisy, mut serial, mut placed) = (false, false, false);
    let mut rows = Vec::new();
    for key in &keys {
        let mut first = true;
        for g in &groups {
            let seq = grid::find(cells, key, g, Mode::Sequential);
            let par = grid::find(cells, key, g, Mode::Parallel);
            if seq.is_none() && par.is_none() {
                continue;
            }
            noisy |= seq.is_some_and(grid::noisy) || par.is_some_and(grid::noisy);
            // the model named once, on its first row
            let model = match (first, shapes.len() > 1) {
                (false, _) => String::new(),
                (true, true) => format!("{} b{} {}px", key.0, key.1, key.2),
                (true, false) => key.0.clone(),
            };
            first = false;
            let ratio = seq.zip(par).map(|(s, p)| grid::speedup(s, p));
            noisy |= ratio.as_ref().is_some_and(grid::imprecise);
            // the speedup keeps its cells' marks at any width: what
            // drops first must not take the warning with it
            let ran_serial = par
                .and_then(CellRecord::concurrency)
                .is_some_and(|k| k.sequential());
            serial |= ran_serial;
            let speedup_marks = seq.zip(par).map_or(String::new(), |(s, p)| {
                let serial = if ran_serial {
                    format!(" {SERIAL_MARK}")
                } else {
                    String::new()
                };
                // its own precision, and the busy mark of either cell
                let imprecise = ratio.as_ref().is_some_and(grid::imprecise);
                let busy = grid::marks(&[s, p]).contains(grid::BUSY_MARK);
                format!(
                    "{}{}{serial}",
                    if imprecise { "~" } else { "" },
                    if busy { grid::BUSY_MARK } else { "" }
                )
            });
            // a speedup that is two (where the host had the cores near,
            // and far apart) says both where it is read
            let placements = seq
                .zip(par)
                .and_then(|(s, p)| crate::record::placement::differing(s, p))
                .map_or(String::new(), |(near, far)| {
                    format!(" (near {:.2}x, far {:.2}x)", near.value, far.value)
                });
            placed |= !placements.is_empty();
            rows.push(vec![
                model,
                label(g),
                seq.map(grid::ms).unwrap_or_default(),
                par.map(grid::ms).unwrap_or_default(),
                ratio.as_ref().map_or(String::new(), |r| {
                    format!("{:.2}x{speedup_marks}{placements}", r.value)
                }),
                ratio
                    .as_ref()
                    .map_or(String::new(), |r| format!("[{:.2}, {:.2}]", r.ci.0, r.ci.1)),
                par.map(|p| grid::concurrency_marked(p, SERIAL_MARK))
                    .unwrap_or_default(),
            ]);
        }
    }
    let header: Vec<String> = ["model", "framework", SEQ, PAR, SPEEDUP, CI, RAN]
        .map(String::from)
        .to_vec();
    // a column nothing was measured for (one mode only, no traced pass)
    let empty: Vec<String> = header
        .iter()
        .enumerate()
        .skip(2)
        .filter(|(i, _)| rows.iter().all(|r| r[*i].is_empty()))
        .map(|(_, h)| h.clone())
        .collect();
    let measured = |name: &str| !empty.iter().any(|e| e == name);
    let what = match (measured(SEQ), measured(PAR)) {
        (true, false) => "Speed: sequential",
        (false, true) => "Speed: parallel branches",
        _ => "Speed: sequential vs parallel branches",
    };
    let title = match (shapes.iter().next(), shapes.len()) {
        (Some((b, s)), 1) if levels.len() == 1 => {
            format!("{what} (batch {b}, {s} px, --optimize {})", levels[0])
        }
        (Some((b, s)), 1) => format!("{what} (batch {b}, {s} px)"),
        _ => what.into(),
    };
    let grid = table::without(
        &Grid {
            title,
            header,
            rows,
            notes: vec![],
        },
        &empty.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    Headline {
        grid,
        noisy,
        serial,
        placed,
        levels: (levels.len() > 1).then(|| {
            format!(
                "Cells ran at --optimize {}: the framework column names each one's level.",
                levels.join(", ")
            )
        }),
    }
}

/// The batches `cells` hold, in first-seen order (a results file keeps its
/// plan's order).
pub fn batches(cells: &[CellRecord]) -> Vec<usize> {
    let mut v: Vec<usize> = Vec::new();
    for c in cells {
        if !v.contains(&c.batch) {
            v.push(c.batch);
        }
    }
    v
}

/// Refuses a `--headline-batch` the cells do not hold.
pub fn check_batch(cells: &[CellRecord], asked: Option<usize>) -> anyhow::Result<()> {
    let have = batches(cells);
    match asked {
        Some(b) if !have.contains(&b) => anyhow::bail!(
            "--headline-batch {b}: no cell ran at batch {b} (batches measured: {})",
            have.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => Ok(()),
    }
}

/// The cells of the one batch a headline shows (`asked`, else the first),
/// and where several were measured the note that says so.
fn at_batch(cells: &[CellRecord], asked: Option<usize>) -> (Vec<CellRecord>, Option<String>) {
    let have = batches(cells);
    let Some(shown) = asked.filter(|b| have.contains(b)).or(have.first().copied()) else {
        return (Vec::new(), None);
    };
    if have.len() < 2 {
        return (cells.to_vec(), None);
    }
    let note = format!(
        "Batches {} were measured; this headline shows batch {shown} (--headline-batch N for another). Latency, throughput and speedup against batch: the .batch.svg chart and the HTML page; every batch: --wide.",
        have.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    );
    (
        cells.iter().filter(|c| c.batch == shown).cloned().collect(),
        Some(note),
    )
}

/// The headline of `cells` (at one batch: `batch`, else the first) as a
/// terminal table no wider than `width` columns: columns are left out in
/// [`DROP_ORDER`] (and the notes say which) until it fits, and only then
/// are cells cut short; notes are wrapped.
pub fn render(cells: &[CellRecord], width: usize, batch: Option<usize>) -> String {
    let (cells, batch_note) = at_batch(cells, batch);
    let cells = &cells[..];
    let h = build(cells);
    if h.grid.rows.is_empty() {
        return format!("{}\nNo cell was measured.\n", h.grid.title);
    }
    let mut g = h.grid.clone();
    let mut dropped = Vec::new();
    for name in DROP_ORDER {
        if table::terminal_width(&g) <= width {
            break;
        }
        if g.header.iter().any(|c| c == name) {
            g = table::without(&g, &[name]);
            dropped.push(name);
        }
    }
    annotate(&mut g, &h, cells);
    g.notes.extend(batch_note);
    if !dropped.is_empty() {
        g.notes.push(format!(
            "Left out to fit {width} columns: {}.",
            dropped.join(", ")
        ));
    }
    table::fitted(&[g], width)
}

/// The whole headline of `cells` (at one batch, as [`render`]) with its
/// notes (`report --format md --headline`).
pub fn grid(cells: &[CellRecord], batch: Option<usize>) -> Grid {
    let (cells, batch_note) = at_batch(cells, batch);
    let h = build(&cells);
    let mut g = h.grid.clone();
    annotate(&mut g, &h, &cells);
    g.notes.extend(batch_note);
    g
}

/// The notes that explain what `g` (the headline `h`, perhaps less some
/// columns) shows.
fn annotate(g: &mut Grid, h: &Headline, cells: &[CellRecord]) {
    let has = |name: &str| g.header.iter().any(|c| c == name);
    let mut medians = "Medians of host-to-host latency in ms".to_string();
    if h.noisy {
        let on_speedup = if has(SPEEDUP) { " or speedup" } else { "" };
        medians.push_str(&format!(
            " (~: imprecise, a median{on_speedup} whose 95% interval reaches more than {:.0}% from it)",
            grid::IMPRECISE * 100.0
        ));
    }
    if has(SPEEDUP) {
        medians.push_str("; speedup = seq / par (above 1: parallel is faster)");
        if has(CI) {
            medians.push_str(", 95% CI over the pairs of passes timed back to back (lock-step), else over processes and iterations");
        }
    }
    let ran = has(RAN);
    g.notes.push(format!("{medians}."));
    if ran {
        g.notes.push("par ran: the traced parallel pass's threads · operations in flight · share of the branch work that overlapped.".into());
    }
    if h.serial {
        g.notes.push(format!(
            "{SERIAL_MARK}: the traced parallel pass ran one operation at a time, so its speedup is not branch parallelism."
        ));
    }
    if h.placed && has(SPEEDUP) {
        g.notes.push("(near .., far ..): the speedup where the host had the machine's cores near (a shared cache) and where it had them far apart, when the two differ (their 95% intervals are disjoint); the run's rounds ran on both, and the interval spans the two (run --placement near or far times one).".into());
    }
    g.notes.extend(h.levels.clone());
    g.notes.extend(super::notes::busy(cells));
    g.notes.extend(super::notes::held(cells));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(name: &str) -> Vec<CellRecord> {
        crate::report::fixture(name).cells
    }

    fn widest(text: &str) -> usize {
        text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
    }

    #[test]
    fn the_headline_never_outgrows_the_terminal() {
        // three frameworks, traced; four frameworks with speedbench's
        // schedules; three frameworks at three levels
        for file in [
            "quick-cpu-2core-trace.json",
            "quick-cpu-2core-schedules.json",
            "quick-cpu-2core-levels.json",
        ] {
            let cells = recorded(file);
            for width in [80, 120] {
                let text = render(&cells, width, None);
                assert!(widest(&text) <= width, "{file} at {width}:\n{text}");
                // every model and framework is there at either width
                for c in &cells {
                    assert!(text.contains(&c.model), "{file} {width}: {}", c.model);
                    assert!(text.contains(&c.framework), "{file} {width}");
                }
                // the levels file is sequential only: no speedup to show
                let both = cells.iter().any(|c| c.mode == Mode::Parallel);
                assert_eq!(text.contains(SPEEDUP), both, "{file} {width}:\n{text}");
            }
        }
    }

    #[test]
    fn columns_are_left_out_in_the_stated_order() {
        let cells = recorded("quick-cpu-2core-trace.json");
        let header = |text: &str| -> Vec<String> {
            let line = text.lines().find(|l| l.starts_with("│ model")).unwrap();
            line.split('│')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect()
        };
        let wide = render(&cells, 120, None);
        // at 120 the whole headline fits: nothing is left out
        assert_eq!(
            header(&wide),
            ["model", "framework", SEQ, PAR, SPEEDUP, CI, RAN]
        );
        assert!(!wide.contains("Left out"), "{wide}");
        assert!(wide.contains("1 · 0.99 · 0% (serial)"), "{wide}");
        let prose = wide.replace('\n', " ");
        assert!(
            prose.contains("(serial): the traced parallel pass ran one operation"),
            "{wide}"
        );
        let narrow = render(&cells, 80, None);
        assert_eq!(header(&narrow), ["model", "framework", SEQ, PAR, SPEEDUP]);
        assert!(narrow
            .replace('\n', " ")
            .contains("Left out to fit 80 columns: par ran, 95% CI."));
        // the speedup keeps its marks when the columns that explain them go:
        // ORT's serial parallel pass, noisy and quiet cells
        let speedup_of = |text: &str, model: &str, fw: &str| -> String {
            let at = 1 + header(text).iter().position(|h| h == SPEEDUP).unwrap();
            let mut model_seen = false;
            text.lines()
                .filter(|l| {
                    model_seen |= l.starts_with(&format!("│ {model} "));
                    model_seen && l.contains(&format!(" {fw} cpu "))
                })
                .map(|l| l.split('│').nth(at).unwrap_or("").trim().to_string())
                .next()
                .unwrap()
        };
        for t in [&wide, &narrow, &render(&cells, 50, None)] {
            assert_eq!(speedup_of(t, "resnet50", "ort"), "0.68x~ (serial)", "{t}");
            assert_eq!(speedup_of(t, "resnet50", "tf"), "1.00x", "{t}");
        }
        assert!(narrow.contains("(serial): the traced parallel"), "{narrow}");
        // narrower still: the CI, then the medians go, never the speedup
        let narrower = render(&cells, 50, None);
        assert!(widest(&narrower) <= 50, "{narrower}");
        assert_eq!(header(&narrower), ["model", "framework", SPEEDUP]);
        assert!(narrower.contains("0.68x~ (serial)"), "{narrower}");
        assert!(narrower
            .replace('\n', " ")
            .contains("Left out to fit 50 columns: par ran, 95% CI, seq ms, par ms."));
        // and even where nothing fits, no line is wider than asked
        for width in [20, 30, 40, 60, 100, 200] {
            let t = render(&cells, width, None);
            assert!(widest(&t) <= width, "{width}:\n{t}");
        }
    }

    #[test]
    fn one_row_per_model_and_framework_with_the_wide_numbers() {
        let cells = recorded("quick-cpu-2core-trace.json");
        let text = render(&cells, 120, None);
        let wide = table::terminal(&super::super::grids(&cells, false));
        // the headline's speedup is the paper table's, CI and all
        let row = text
            .lines()
            .find(|l| l.contains("scalenet50"))
            .expect("a scalenet50 row");
        let fields: Vec<&str> = row.split('│').map(str::trim).collect();
        let (speedup, ci) = (fields[5], fields[6]);
        // the number without its marks
        let speedup = &speedup[..=speedup.find('x').unwrap()];
        assert!(
            wide.contains(&format!("{speedup} {ci}")) || wide.contains(&format!("{speedup}~ {ci}")),
            "{speedup} {ci}:\n{wide}"
        );
        // 5 models x 3 frameworks, each model named once
        let models: BTreeSet<&str> = cells.iter().map(|c| c.model.as_str()).collect();
        for m in &models {
            assert_eq!(
                text.lines()
                    .filter(|l| l.starts_with(&format!("│ {m} ")))
                    .count(),
                1,
                "{m}:\n{text}"
            );
        }
        let rows = text.lines().filter(|l| l.starts_with('│')).count();
        assert_eq!(rows, 1 + models.len() * 3, "{text}");
        assert!(
            text.contains("batch 1, 224 px, --optimize default"),
            "{text}"
        );
    }

    /// A speedup that differs between the placements of the cores gives
    /// both beside its value, and a note says what they are; one that
    /// does not gives neither.
    #[test]
    fn a_speedup_bound_by_the_placement_shows_both() {
        let (seq, par) = crate::record::placement::two_placements(1.10, 1.47);
        let g = grid(&[seq.clone(), par.clone()], None);
        let cell = &g.rows[0][g.header.iter().position(|h| h == SPEEDUP).unwrap()];
        assert!(cell.ends_with(" (near 1.10x, far 1.46x)"), "{cell}");
        assert!(
            g.notes.iter().any(|n| n.starts_with("(near .., far ..): ")),
            "{:?}",
            g.notes
        );
        // two such speedups: each with its own, and still the note
        let (mut s2, mut p2) = (seq.clone(), par.clone());
        s2.framework = "tf".into();
        p2.framework = "tf".into();
        let g = grid(&[seq.clone(), par.clone(), s2, p2], None);
        let col = g.header.iter().position(|h| h == SPEEDUP).unwrap();
        let both = g
            .rows
            .iter()
            .filter(|r| r[col].contains("(near 1.10x, far 1.46x)"));
        assert_eq!(both.count(), 2, "{:?}", g.rows);
        assert!(g.notes.iter().any(|n| n.starts_with("(near .., far ..): ")));
        let (seq, par) = crate::record::placement::two_placements(1.10, 1.10);
        let g = grid(&[seq, par], None);
        let cell = &g.rows[0][g.header.iter().position(|h| h == SPEEDUP).unwrap()];
        assert!(!cell.contains("near"), "{cell}");
        assert!(
            !g.notes.iter().any(|n| n.contains("(near ..")),
            "{:?}",
            g.notes
        );
    }

    /// A run held for one placement says which, and how long it waited,
    /// in the headline and in the wide table's notes; a run on any, not.
    #[test]
    fn a_run_held_for_a_placement_says_so() {
        let note = |cells: &[CellRecord]| -> Vec<Option<String>> {
            let held = |n: &String| n.starts_with("Timed only with the machine's cores");
            [grid(cells, None).notes, grid::paper(cells, false).notes]
                .map(|notes| notes.iter().find(|n| held(n)).cloned())
                .into()
        };
        let (seq, par) = crate::record::placement::two_placements(1.10, 1.10);
        let mut cells = vec![seq, par];
        assert_eq!(note(&cells), [None, None]);
        for c in &mut cells {
            for p in &mut c.processes {
                p.placement = crate::record::placement::Wanted::Far;
                p.placement_wait_s = Some(0.25);
            }
        }
        let (_, waited) = crate::record::placement::held(&cells).unwrap();
        assert!((1.0..10.0).contains(&waited), "{waited}");
        for n in note(&cells) {
            let n = n.expect("a note");
            assert_eq!(n, format!("Timed only with the machine's cores far apart (no shared cache) (--placement far): each round waited until the probe before it read them so, {waited:.1} s in all."));
        }
    }

    #[test]
    fn sequential_only_runs_show_no_empty_columns() {
        let cells: Vec<CellRecord> = recorded("quick-cpu-2core-levels.json")
            .into_iter()
            .filter(|c| c.mode == Mode::Sequential)
            .collect();
        let text = render(&cells, 120, None);
        assert!(text.contains(SEQ), "{text}");
        for gone in [PAR, SPEEDUP, CI, RAN] {
            assert!(!text.contains(gone), "{gone}:\n{text}");
        }
        // each level is named
        assert!(text.contains("ort cpu max") && text.contains("tf cpu none"));
        assert!(text.contains("Cells ran at --optimize"), "{text}");
        assert_eq!(
            render(&[], 80, None),
            format!(
                "{}\nNo cell was measured.\n",
                "Speed: sequential vs parallel branches"
            )
        );
    }

    /// Cells at batches 1 and 4 (the batch-4 copies 3x slower), one in
    /// bf16 beside fp32.
    fn swept() -> Vec<CellRecord> {
        let base: Vec<CellRecord> = recorded("quick-cpu-2core.json")
            .into_iter()
            .filter(|c| c.model == "resnet50" && c.framework == "torch")
            .collect();
        let mut cells = base.clone();
        for c in &base {
            let mut four = c.clone();
            four.batch = 4;
            four.samples_ms.iter_mut().for_each(|x| *x *= 3.0);
            four.summarise();
            cells.push(four);
            let mut half = c.clone();
            half.precision = crate::record::Precision::Bf16;
            cells.push(half);
        }
        cells
    }

    #[test]
    fn the_headline_shows_one_batch_and_says_which() {
        let cells = swept();
        let first = render(&cells, 200, None);
        assert!(
            first.contains("Batches 1, 4 were measured; this headline shows batch 1"),
            "{first}"
        );
        // fp32 and bf16 are columns of their own, labelled
        assert!(
            first.contains("torch cpu fp32") && first.contains("torch cpu bf16"),
            "{first}"
        );
        let seq = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| l.contains("torch cpu") && !l.contains("bf16"))
                .map(|l| l.split('│').nth(3).unwrap_or("").trim().to_string())
                .collect()
        };
        let one = cells
            .iter()
            .find(|c| c.batch == 1 && c.mode == Mode::Sequential && c.precision.is_fp32())
            .unwrap();
        let four = cells
            .iter()
            .find(|c| c.batch == 4 && c.mode == Mode::Sequential)
            .unwrap();
        assert_eq!(seq(&first), [grid::ms(one)], "{first}");
        let at_four = render(&cells, 200, Some(4));
        assert!(at_four.contains("shows batch 4"), "{at_four}");
        assert_eq!(seq(&at_four), [grid::ms(four)], "{at_four}");
        // a batch not measured falls back to the first; commands refuse it
        assert_eq!(seq(&render(&cells, 200, Some(9))), [grid::ms(one)]);
        let e = check_batch(&cells, Some(9)).unwrap_err().to_string();
        assert_eq!(
            e,
            "--headline-batch 9: no cell ran at batch 9 (batches measured: 1, 4)"
        );
        assert!(check_batch(&cells, Some(4)).is_ok() && check_batch(&cells, None).is_ok());
        // one batch: no note
        let single: Vec<CellRecord> = cells.iter().filter(|c| c.batch == 1).cloned().collect();
        assert!(!render(&single, 200, None).contains("Batches"));
        let g = grid(&cells, Some(4));
        assert!(g.notes.iter().any(|n| n.contains("shows batch 4")));
        assert_eq!(batches(&cells), [1, 4]);
    }
}
