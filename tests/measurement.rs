//! The measurement core's arithmetic and files, on fixtures with known
//! answers: every export's columns by header name, the achieved rate and
//! percent of peak, and the atomic save of a results file.

mod common;

use common::{cell, run_file};
use speedbench::record::Mode::{Parallel, Sequential};
use speedbench::report;

/// 1..=1000 ms: median 500.5, p90 900.1, p99 990.01, mean 500.5.
fn known() -> Vec<f64> {
    (1..=1000).map(f64::from).collect()
}

/// A sequential cell of [`known`] samples at batch 2, 1e9 MACs per image,
/// an 8 GMAC/s machine peak and a 6 GMAC/s GEMM.
fn known_cell() -> speedbench::record::CellRecord {
    let mut c = cell("resnet50", "ort", Sequential, 2, known());
    c.macs = 1_000_000_000;
    c.machine_peak_gmacs = Some(8.0);
    c.gemm_gmacs = Some(6.0);
    c
}

fn close(got: &str, want: f64) {
    let v: f64 = got
        .parse()
        .unwrap_or_else(|_| panic!("'{got}' is not a number"));
    assert!(
        (v - want).abs() <= 1e-9 * want.abs().max(1.0),
        "{got} != {want}"
    );
}

#[test]
fn csv_columns_by_header_name() {
    let seq = known_cell();
    // the parallel twin is twice as fast
    let par = cell(
        "resnet50",
        "ort",
        Parallel,
        2,
        known().iter().map(|x| x / 2.0).collect(),
    );
    let text = report::csv::render(&[seq, par]).unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    let col = |row: usize, name: &str| -> String {
        let i = header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"));
        rows[row][i].to_string()
    };
    assert_eq!(col(0, "mode"), "sequential");
    assert_eq!(col(0, "iters"), "1000");
    close(&col(0, "min_ms"), 1.0);
    close(&col(0, "median_ms"), 500.5);
    close(&col(0, "mean_ms"), 500.5);
    close(&col(0, "p90_ms"), 900.1);
    close(&col(0, "p99_ms"), 990.01);
    close(&col(0, "median_ci_low_ms"), 470.0);
    close(&col(0, "median_ci_high_ms"), 532.0);
    // batch 2 in 500.5 ms; 1e9 MACs per image
    close(&col(0, "images_per_s"), 2000.0 / 500.5);
    close(&col(0, "achieved_gmacs"), 2000.0 / 500.5);
    close(&col(0, "machine_peak_gmacs"), 8.0);
    close(&col(0, "of_machine_peak"), 2000.0 / 500.5 / 8.0);
    close(&col(0, "gemm_gmacs"), 6.0);
    assert_eq!(col(0, "speedup"), "");
    close(&col(1, "speedup"), 2.0);
    close(&col(1, "p90_ms"), 450.05);
}

#[test]
fn table_and_json_columns_by_header_name() {
    let cells = [known_cell()];
    let g = report::grid::detail(&cells);
    let at = |name: &str| {
        let i = g
            .header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"));
        g.rows[0][i].clone()
    };
    // a CV of 58%: marked noisy
    assert_eq!(at("median ms"), "500.50~");
    assert_eq!(at("p90 ms"), "900.10");
    assert_eq!(at("p99 ms"), "990.01");
    assert_eq!(at("median 95% CI"), "[470.00, 532.00]");
    assert_eq!(at("images/s"), "4.0");
    assert_eq!(at("GMAC/s (% of its precision's peak)"), "4.0 (50% of 8)");
    assert_eq!(at("best GEMM GMAC/s"), "6");
    let json: serde_json::Value = serde_json::from_str(&report::json(&cells).unwrap()).unwrap();
    let j = &json[0];
    close(&j["latency"]["p90"].to_string(), 900.1);
    close(&j["latency"]["p99"].to_string(), 990.01);
    close(&j["images_per_s"].to_string(), 2000.0 / 500.5);
}

#[test]
fn achieved_rate_and_percent_of_peak() {
    let mut c = cell("resnet50", "ort", Sequential, 4, vec![10.0, 10.0, 10.0]);
    c.macs = 2_000_000_000;
    // 4 images in 10 ms = 400 images/s; x 2 GMAC = 800 GMAC/s
    assert_eq!(c.images_per_s(), 400.0);
    assert_eq!(c.achieved_gmacs(), 800.0);
    c.machine_peak_gmacs = Some(1600.0);
    assert_eq!(c.of_peak(), Some(0.5));
    c.machine_peak_gmacs = None;
    assert_eq!(c.of_peak(), None);
    c.machine_peak_gmacs = Some(0.0);
    assert_eq!(c.of_peak(), None);
}

#[test]
fn a_results_file_is_replaced_atomically() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("run.json");
    let first = run_file(vec![cell("resnet50", "ort", Sequential, 1, vec![1.0, 2.0])]);
    first.save(&path).unwrap();
    let old = std::fs::read(&path).unwrap();
    // a reader holding the old file (a hard link to it) keeps its bytes:
    // the save writes a new file and renames it over the old name
    let held = t.path().join("held.json");
    std::fs::hard_link(&path, &held).unwrap();
    let second = run_file(vec![
        cell("resnet50", "ort", Sequential, 1, vec![1.0, 2.0]),
        cell("resnet50", "ort", Parallel, 1, vec![3.0, 4.0]),
    ]);
    second.save(&path).unwrap();
    assert_eq!(std::fs::read(&held).unwrap(), old);
    assert_ne!(std::fs::read(&path).unwrap(), old);
    assert_eq!(speedbench::record::RunFile::load(&path).unwrap(), second);
    // no temporary file left beside it
    let mut names: Vec<String> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["held.json", "run.json"]);
}

#[test]
fn paper_table_columns_by_header_name() {
    let flat = |ms: f64| vec![ms; 30];
    let mut seq = cell("se_resnext50_branched", "ort", Sequential, 16, flat(40.0));
    seq.macs = 4_000_000_000;
    let mut par = cell("se_resnext50_branched", "ort", Parallel, 16, flat(20.0));
    par.macs = 4_000_000_000;
    let torch = cell("se_resnext50_branched", "torch", Sequential, 16, known());
    let cells = [seq, par, torch];
    let g = report::grid::paper(&cells, true);
    let at = |name: &str| {
        let i = g
            .header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", g.header));
        g.rows[0][i].clone()
    };
    assert_eq!(g.rows.len(), 1);
    assert_eq!(at("model"), "se_resnext50_branched");
    assert_eq!(at("batch"), "16");
    assert_eq!(at("params (M)"), "25.56");
    assert_eq!(at("GMACs"), "4.00");
    assert_eq!(at("published GFLOPs"), "4.2");
    assert_eq!(at("published TF GTX 1060 ms"), "147");
    assert_eq!(at("ort cpu seq ms"), "40.00");
    assert_eq!(at("ort cpu par ms"), "20.00");
    assert_eq!(at("ort cpu seq/par speedup [95% CI]"), "2.00x [2.00, 2.00]");
    // a gain of 1.00 where the graph allows 0.10: ten times its share
    assert_eq!(at("ort cpu gain share"), "1000%");
    assert_eq!(
        at("ort cpu machine ideal"),
        "",
        "no cost model scheduled it"
    );
    // the cost model's sequential over its best schedule
    let mut scheduled = cells.clone();
    scheduled[1].schedule = Some(speedbench::record::ScheduleRecord {
        scheduler: "test".into(),
        stages: 3,
        parallel_stages: vec![],
        predicted_ms: 10.0,
        predicted_sequential_ms: 12.0,
        measured: None,
        boundary: None,
        segments: None,
        chosen: "plan".into(),
        ran: vec![],
    });
    let g2 = report::grid::paper(&scheduled, false);
    let i = g2
        .header
        .iter()
        .position(|h| h == "ort cpu machine ideal")
        .unwrap();
    assert_eq!(g2.rows[0][i], "1.20x");
    assert_eq!(at("ideal speedup (work/span)"), "1.10x");
    // torch has no parallel cell: no speedup; its median is imprecise
    assert_eq!(at("torch cpu seq ms"), "500.50~");
    assert_eq!(at("torch cpu par ms"), "");
    assert_eq!(at("torch cpu seq/par speedup [95% CI]"), "");
    assert!(
        g.notes
            .iter()
            .any(|n| n.contains("~ marks an imprecise reading")),
        "{:?}",
        g.notes
    );
    assert!(g
        .notes
        .iter()
        .any(|n| n.contains("Every cell ran at --optimize default")));
    // without the published columns, none of them
    let g = report::grid::paper(&cells, false);
    assert!(!g.header.iter().any(|h| h.starts_with("published")));
}

/// The sequential twin of a parallel cell agrees on everything but the
/// mode; a cell differing in any one field is not its twin.
#[test]
fn a_sequential_twin_matches_on_every_field() {
    let par = cell("resnet50", "ort", Parallel, 1, vec![1.0, 1.0]);
    let twin = cell("resnet50", "ort", Sequential, 1, vec![2.0, 2.0]);
    let differing: Vec<speedbench::record::CellRecord> = vec![
        speedbench::record::CellRecord {
            model: "x".into(),
            ..twin.clone()
        },
        speedbench::record::CellRecord {
            framework: "tf".into(),
            ..twin.clone()
        },
        speedbench::record::CellRecord {
            optimize: speedbench::record::Optimize::Max,
            ..twin.clone()
        },
        speedbench::record::CellRecord {
            device: speedbench::record::Device::Cuda,
            ..twin.clone()
        },
        speedbench::record::CellRecord {
            batch: 2,
            ..twin.clone()
        },
        speedbench::record::CellRecord {
            size: 64,
            ..twin.clone()
        },
        speedbench::record::CellRecord {
            host: "other".into(),
            ..twin.clone()
        },
    ];
    for d in &differing {
        let all = [par.clone(), d.clone()];
        assert!(report::sequential_twin(&par, &all).is_none(), "{d:?}");
    }
    let mut all = differing.clone();
    all.extend([par.clone(), twin.clone()]);
    assert_eq!(report::sequential_twin(&par, &all), Some(&twin));
    // a sequential cell has no twin
    assert!(report::sequential_twin(&twin, &all).is_none());
    // every text report shows the paper table and the per-cell table
    let grids = report::grids(&all, false);
    assert_eq!(grids.len(), 2);
    assert_eq!(grids[0].title, report::grid::paper(&all, false).title);
    assert_eq!(grids[1].title, "Per cell");
}

/// The published numbers belong beside batch 16 at 224 px only.
#[test]
fn the_paper_protocol_is_batch_16_at_224() {
    let at = |batch: usize, size: usize| {
        let mut c = cell("resnet50", "ort", Sequential, batch, vec![1.0]);
        c.size = size;
        report::paper_protocol(&[c])
    };
    assert!(at(16, 224));
    assert!(!at(16, 128));
    assert!(!at(1, 224));
    assert!(!report::paper_protocol(&[]));
}

/// A run's files: the CSV, markdown and SVG beside the results file (no
/// SVG without a cell), and a baseline in its folder.
#[test]
fn results_siblings_and_baselines() {
    use speedbench::results;
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("run.json");
    let file = run_file(vec![
        cell("resnet50", "ort", Sequential, 1, vec![2.0, 2.1]),
        cell("resnet50", "ort", Parallel, 1, vec![1.0, 1.1]),
    ]);
    assert_eq!(
        results::write_siblings(&path, &file, None).unwrap(),
        ["csv", "md", "svg", "html"]
    );
    // the page holds both tables and the chart, inline
    let html = std::fs::read_to_string(path.with_extension("html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    for part in [
        "<section id=\"paper\">",
        "<section id=\"cells\">",
        "<section id=\"charts\">",
        "<td>resnet50</td>",
    ] {
        assert!(html.contains(part), "{part} not in the page");
    }
    assert!(
        !html.contains("<section id=\"timelines\">"),
        "untraced cells have no timelines"
    );
    let csv = std::fs::read_to_string(path.with_extension("csv")).unwrap();
    assert_eq!(csv, report::csv::render(&file.cells).unwrap());
    let md = std::fs::read_to_string(path.with_extension("md")).unwrap();
    assert!(md.contains("resnet50") && md.contains("Per cell"), "{md}");
    assert!(std::fs::read_to_string(path.with_extension("svg"))
        .unwrap()
        .starts_with("<svg"));
    let empty = t.path().join("empty.json");
    assert_eq!(
        results::write_siblings(&empty, &run_file(vec![]), None).unwrap(),
        ["csv", "md", "html"]
    );
    assert!(!empty.with_extension("svg").exists());
    let dest = results::baseline_path(&t.path().join("out"), "main").unwrap();
    results::save_baseline(&file, &dest).unwrap();
    assert_eq!(speedbench::record::RunFile::load(&dest).unwrap(), file);
    // a folder that cannot hold a results file is an error, not a loop
    let e = results::create_unique(&t.path().join("missing/folder"), "x").unwrap_err();
    assert!(format!("{e:#}").contains("not writable"), "{e:#}");
}

/// Column groups follow the report order of the frameworks (ort, torch,
/// tf), not the alphabet; mixed levels are said so and labelled.
#[test]
fn column_groups_in_framework_order_and_levels_labelled() {
    let tf = cell("resnet50", "tf", Sequential, 1, vec![1.0; 3]);
    let torch = cell("resnet50", "torch", Sequential, 1, vec![1.0; 3]);
    let g = report::grid::paper(&[tf.clone(), torch.clone()], false);
    let seq: Vec<&String> = g.header.iter().filter(|h| h.ends_with("seq ms")).collect();
    assert_eq!(seq, ["torch cpu seq ms", "tf cpu seq ms"]);
    let max = speedbench::record::CellRecord {
        optimize: speedbench::record::Optimize::Max,
        ..torch.clone()
    };
    let g = report::grid::paper(&[torch, max], false);
    let seq: Vec<&String> = g.header.iter().filter(|h| h.ends_with("seq ms")).collect();
    assert_eq!(seq, ["torch cpu default seq ms", "torch cpu max seq ms"]);
    assert!(
        g.notes
            .iter()
            .any(|n| n.starts_with("Cells ran at different --optimize levels (default, max)")),
        "{:?}",
        g.notes
    );
}

/// The terminal and markdown renderings of a grid: title, header, rows and
/// notes, in their styles.
#[test]
fn grids_render_as_terminal_and_markdown_tables() {
    let g = report::grid::Grid {
        title: "T".into(),
        header: vec!["a".into(), "b".into()],
        rows: vec![vec!["1".into(), "2".into()]],
        notes: vec!["n.".into()],
    };
    let t = report::table::terminal(std::slice::from_ref(&g));
    assert!(t.starts_with("T\n╭"), "{t}");
    assert!(
        t.contains("│ a │ b │") && t.contains("│ 1 │ 2 │") && t.ends_with("n.\n\n"),
        "{t}"
    );
    let m = report::table::markdown(&[g]);
    assert!(
        m.starts_with("### T\n\n| a | b |\n|---|---|\n| 1 | 2 |"),
        "{m}"
    );
    assert!(m.ends_with("n.\n\n"), "{m}");
}

/// A reading is marked imprecise when its median's 95% interval reaches
/// more than 2% from it (however much single iterations vary), not at 2%;
/// percentiles are of its own samples; two hosts name the host in every
/// column group.
#[test]
fn noise_percentiles_and_hosts() {
    let mut c = known_cell();
    assert_eq!(report::grid::percentile(&c, 0.9), 900.1);
    assert_eq!(report::grid::percentile(&c, 0.0), 1.0);
    let m = c.latency.median;
    let edge = report::grid::IMPRECISE;
    c.latency.cv = 0.5;
    c.latency.median_ci = (m * (1.0 - edge / 2.0), m * (1.0 + edge));
    assert!(!report::grid::noisy(&c));
    c.latency.median_ci = (m * (1.0 - edge * 1.001), m);
    assert!(report::grid::noisy(&c));
    c.latency.cv = 0.0;
    c.latency.median_ci = (m, m * (1.0 + edge * 1.001));
    assert!(report::grid::noisy(&c));
    let a = cell("resnet50", "ort", Sequential, 1, vec![1.0; 3]);
    let b = speedbench::record::CellRecord {
        host: "other".into(),
        ..a.clone()
    };
    let g = report::grid::paper(&[a.clone(), b], false);
    let seq: Vec<&String> = g.header.iter().filter(|h| h.ends_with("seq ms")).collect();
    assert_eq!(seq, ["fixture cpu ort seq ms", "other cpu ort seq ms"]);
    let g = report::grid::paper(&[a], false);
    assert!(g.header.contains(&"ort cpu seq ms".to_string()));
}

/// A traced pass on `tracks` threads: `stem` then `a` and `b` (overlapping
/// when on two tracks) then `out`.
fn traced(mut c: speedbench::record::CellRecord, tracks: usize) -> speedbench::record::CellRecord {
    use speedbench::record::{OpEvent, Timeline, Trace};
    let ev = |name: &str, track: usize, start: f64, dur: f64| OpEvent {
        name: name.into(),
        op: "Conv".into(),
        node: Some(name.into()),
        track,
        start_us: start,
        dur_us: dur,
        critical: false,
        device: String::new(),
    };
    let second = tracks - 1;
    let (b_start, out_start) = if tracks > 1 {
        (10.0, 30.0)
    } else {
        (30.0, 50.0)
    };
    let timeline = Timeline {
        source: "fixture".into(),
        tracks: (0..tracks).map(|t| format!("thread {t}")).collect(),
        events: vec![
            ev("stem", 0, 0.0, 10.0),
            ev("a", 0, 10.0, 20.0),
            ev("b", second, b_start, 20.0),
            ev("out", 0, out_start, 10.0),
        ],
    };
    let concurrency = timeline.concurrency(&|n| n == "a" || n == "b");
    c.trace = Some(Trace {
        timeline,
        ideal: None,
        concurrency,
        placement: Default::default(),
    });
    c
}

#[test]
fn a_parallel_mode_that_overlapped_nothing_is_marked() {
    let s = traced(cell("scalenet50", "ort", Sequential, 1, known()), 1);
    let p = traced(cell("scalenet50", "ort", Parallel, 1, known()), 1);
    let ts = traced(cell("scalenet50", "torch", Sequential, 1, known()), 1);
    let tp = traced(cell("scalenet50", "torch", Parallel, 1, known()), 2);
    let cells = vec![s, p, ts, tp];
    let g = report::grid::paper(&cells, false);
    let col = |name: &str| {
        g.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}: {:?}", g.header))
    };
    let ort = &g.rows[0][col("ort cpu par ran")];
    let torch = &g.rows[0][col("torch cpu par ran")];
    assert_eq!(ort, "1 · 1.00 · 0% (ran sequentially)");
    // torch: a and b overlap for 20 µs of their 40; 60 µs of work in 40
    assert_eq!(torch, "2 · 1.50 · 100%");
    let note = g
        .notes
        .iter()
        .find(|n| n.contains("ran sequentially for"))
        .expect("a note in words");
    assert!(
        note.contains("scalenet50 (ort)") && !note.contains("torch"),
        "{note}"
    );
    // the per-cell table and the CSV carry the same figures
    let d = report::grid::detail(&cells);
    let dcol = d.header.iter().position(|h| h == "ran").unwrap();
    assert!(d
        .rows
        .iter()
        .any(|r| r[dcol] == "1 · 1.00 · 0% (ran sequentially)"));
    let csv = report::csv::render(&cells).unwrap();
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let h = r.headers().unwrap().clone();
    let at = |k: &str| h.iter().position(|x| x == k).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(&rows[1][at("ran_sequentially")], "true");
    assert_eq!(&rows[3][at("ran_sequentially")], "false");
    assert_eq!(&rows[3][at("threads_or_streams_used")], "2");
    close(&rows[3][at("ops_in_flight")], 1.5);
    close(&rows[3][at("branch_overlap")], 1.0);
    // the sequential mode is never marked: one at a time is what it asks for
    assert!(
        g.rows[0]
            .iter()
            .filter(|c| c.contains("ran sequentially"))
            .count()
            == 1
    );
    // the timelines: a band per cell, the sequential parallel one named
    let svg = report::gantt::render(&cells).unwrap();
    assert!(svg.contains("ort cpu default · parallel"));
    assert_eq!(svg.matches("RAN SEQUENTIALLY").count(), 1);
    assert!(report::gantt::render(&[cell("m", "ort", Parallel, 1, known())]).is_none());
}

/// Results from before traces have no 'ran' columns at all.
#[test]
fn untraced_cells_get_no_concurrency_columns() {
    let cells = vec![
        cell("resnet50", "ort", Sequential, 1, known()),
        cell("resnet50", "ort", Parallel, 1, known()),
    ];
    let g = report::grid::paper(&cells, false);
    assert!(
        !g.header.iter().any(|h| h.contains("ran")),
        "{:?}",
        g.header
    );
    assert!(!g.notes.iter().any(|n| n.contains("par ran")));
    let d = report::grid::detail(&cells);
    assert!(!d.header.iter().any(|h| h == "ran"));
    assert_eq!(d.header.len(), d.rows[0].len());
    assert_eq!(d.header[19], "CV");
}

/// The per-cell table says which schedule each parallel cell ran.
#[test]
fn the_report_names_the_schedule_that_ran() {
    use speedbench::record::{ParallelStage, ScheduleRecord};
    let record = |scheduler: &str, chosen: &str, measured: bool| ScheduleRecord {
        scheduler: scheduler.into(),
        stages: 3,
        parallel_stages: vec![ParallelStage {
            first: "b".into(),
            lanes: vec![(2, 1), (1, 1)],
        }],
        predicted_ms: 1.0,
        predicted_sequential_ms: 1.2,
        measured: measured.then_some((1.2, 1.0)),
        boundary: None,
        segments: None,
        chosen: chosen.into(),
        ran: vec![],
    };
    let mut torch = cell("scalenet50", "torch", Parallel, 1, known());
    torch.schedule = Some(record(
        "speedbench cost model over libtorch operations",
        "cost model",
        true,
    ));
    let mut ort = cell("scalenet50", "ort", Parallel, 1, known());
    ort.schedule = Some(record(
        "speedbench cost model over ONNX Runtime segments",
        "sequential: measured slower",
        true,
    ));
    let mut ort3 = ort.clone();
    if let Some(s) = ort3.schedule.as_mut() {
        s.boundary = Some((40.0, 41.0));
        s.chosen = "cost model".into();
    }
    let mut ort2 = cell("resnet50", "ort", Parallel, 1, known());
    ort2.schedule = Some(record(
        "speedbench cost model over ONNX Runtime segments",
        "sequential: no gain",
        false,
    ));
    let own = cell("scalenet50", "ort-own", Parallel, 1, known());
    let tf = cell("scalenet50", "tf", Parallel, 1, known());
    let seq = cell("scalenet50", "tf", Sequential, 1, known());
    let label = report::grid::schedule;
    assert_eq!(
        label(&torch),
        "cost model over libtorch ops: 1 parallel stage(s)"
    );
    assert_eq!(
        label(&ort),
        "sequential (cost model over ORT segments: measured no gain)"
    );
    // ORT's segments say what their boundaries cost
    assert_eq!(
        label(&ort3),
        "cost model over ORT segments: 1 parallel stage(s); boundaries +2.5%"
    );
    let mut ort4 = ort.clone();
    if let Some(s) = ort4.schedule.as_mut() {
        s.boundary = Some((40.0, 39.0));
    }
    assert_eq!(
        label(&ort4),
        "sequential (cost model over ORT segments: measured no gain; boundaries -2.5%)"
    );
    // no boundary without a parallel stage (one part: the whole graph), nor
    // from a whole-graph time of 0
    for (stages, whole) in [(0, 40.0), (1, 0.0)] {
        let mut o = ort4.clone();
        if let Some(s) = o.schedule.as_mut() {
            s.parallel_stages.truncate(stages);
            s.boundary = Some((whole, 39.0));
        }
        assert_eq!(
            label(&o),
            "sequential (cost model over ORT segments: measured no gain)"
        );
    }
    assert_eq!(
        label(&ort2),
        "sequential (cost model over ORT segments: no gain predicted)"
    );
    assert_eq!(label(&own), "ORT's own (ORT_PARALLEL)");
    assert_eq!(label(&tf), "TensorFlow's inter-op pool");
    assert_eq!(label(&seq), "sequential");
    let traced = traced(torch.clone(), 2);
    let d = report::grid::detail(&[traced, ort.clone()]);
    let col = d.header.iter().position(|h| h == "schedule").unwrap();
    assert!(d
        .rows
        .iter()
        .any(|r| r[col] == "cost model over libtorch ops: 1 parallel stage(s)"));
    // the JSON keeps the whole record
    let json = report::json(&[torch]).unwrap();
    assert!(json.contains("\"parallel_stages\""), "{json}");
}

/// A --device cuda cell whose traced pass ran operations on the CPU is
/// named in the report's notes; CPU cells never are.
#[test]
fn operations_a_cuda_cell_ran_on_the_cpu_are_reported() {
    let mut gpu = traced(cell("scalenet50", "ort", Parallel, 1, known()), 2);
    gpu.device = speedbench::record::Device::Cuda;
    let t = gpu.trace.as_mut().unwrap();
    t.placement.insert("CUDA".into(), 3);
    t.placement.insert("CPU".into(), 1);
    assert_eq!(t.on_cpu(), 1);
    let cpu = traced(cell("scalenet50", "ort", Sequential, 1, known()), 1);
    let mut cpu_placed = cpu.clone();
    cpu_placed
        .trace
        .as_mut()
        .unwrap()
        .placement
        .insert("CPU".into(), 4);
    let g = report::grid::paper(&[gpu, cpu_placed], false);
    let note = g
        .notes
        .iter()
        .find(|n| n.contains("ran on the CPU"))
        .expect("a note");
    assert!(
        note.contains("scalenet50 ort parallel (1 of 4 operations)"),
        "{note}"
    );
    let g = report::grid::paper(&[cpu], false);
    assert!(!g.notes.iter().any(|n| n.contains("ran on the CPU")));
}

/// A cell's processes: absorbed one by one in any order of arrival, each
/// sample keeping its process, the summary over all of them; a process
/// dropped (to be timed again) takes its samples with it.
#[test]
fn processes_absorb_and_drop() {
    use speedbench::record::ProcessRecord;
    let part = |i: usize, xs: Vec<f64>| {
        let mut c = cell("resnet50", "ort", Sequential, 1, xs.clone());
        c.sample_process = vec![i; xs.len()];
        c.processes = vec![ProcessRecord {
            index: i,
            slot: 10 + i,
            compute_samples: 1,
            interrupted: false,
            calibrated: i == 0,
            load: None,
            threads_ran: Some(2),
            core_to_core_ns: None,
            round_core_to_core_ns: vec![],
            placement: Default::default(),
            placement_wait_s: None,
        }];
        c.compute_samples_ms = vec![i as f64];
        c.worker_peak_rss_mib = Some(100.0 * (i + 1) as f64);
        c.session_mib = Some(7.0 + i as f64);
        c
    };
    let mut c = part(0, vec![10.0, 12.0]);
    c.summarise();
    assert!(c.has_process(0) && !c.has_process(1));
    c.absorb(part(1, vec![20.0, 22.0, 24.0]));
    c.absorb(part(2, vec![30.0]));
    assert_eq!(c.sample_process, [0, 0, 1, 1, 1, 2]);
    assert_eq!(
        c.process_samples(),
        [vec![10.0, 12.0], vec![20.0, 22.0, 24.0], vec![30.0]]
    );
    assert_eq!(c.compute_samples_ms, [0.0, 1.0, 2.0]);
    assert_eq!(
        (c.latency.n, c.latency.median, c.latency.processes),
        (6, 21.0, 3)
    );
    assert_eq!(c.compute.as_ref().unwrap().n, 3);
    // the peak of all, the session of the first
    assert_eq!(
        (c.worker_peak_rss_mib, c.session_mib),
        (Some(300.0), Some(7.0))
    );
    assert!(c.has_process(2));
    c.drop_process(1);
    assert_eq!(c.samples_ms, [10.0, 12.0, 30.0]);
    assert_eq!(c.sample_process, [0, 0, 2]);
    assert_eq!(c.compute_samples_ms, [0.0, 2.0]);
    assert_eq!(c.latency.n, 3);
    assert!(!c.has_process(1) && c.has_process(0) && c.has_process(2));
    let idx: Vec<usize> = c.processes.iter().map(|p| p.index).collect();
    assert_eq!(idx, [0, 2]);
    // an interrupted process is not done, and redone
    let mut p = part(1, vec![5.0]);
    p.processes[0].interrupted = true;
    p.interrupted = true;
    c.absorb(p);
    assert!(c.interrupted && !c.has_process(1));
    c.drop_process(1);
    assert!(!c.interrupted);
    // a cell from before process repetition: one process, all or nothing
    let mut old = cell("resnet50", "ort", Sequential, 1, vec![1.0, 2.0]);
    assert!(old.has_process(0) && old.has_process(3));
    assert_eq!(old.process_samples(), [vec![1.0, 2.0]]);
    old.interrupted = true;
    assert!(!old.has_process(0));
    old.drop_process(0);
    assert!(old.samples_ms.is_empty() && !old.interrupted);
}

/// A failure names its cell (level, precision, batch) and process; one from
/// before one process per cell stands for every mode and level of its
/// (model, framework), one from before the precision and batch axes for
/// every precision and batch.
#[test]
fn failures_belong_to_their_cell() {
    use speedbench::record::{Device, Failure, Optimize, Precision, Setting};
    let at = |optimize, precision, batch| Setting {
        optimize,
        precision,
        batch,
    };
    let max = at(Optimize::Max, Precision::Bf16, 4);
    let mut f = Failure {
        model: "m".into(),
        framework: "ort".into(),
        device: Device::Cpu,
        mode: Some(Parallel),
        optimize: Some(Optimize::Max),
        precision: Some(Precision::Bf16),
        batch: Some(4),
        process: Some(1),
        cause: "x".into(),
        stderr_tail: vec![],
    };
    assert!(f.is_of("m", "ort", Parallel, max));
    assert!(!f.is_of("m", "ort", Sequential, max));
    assert!(!f.is_of(
        "m",
        "ort",
        Parallel,
        at(Optimize::Default, Precision::Bf16, 4)
    ));
    assert!(!f.is_of("m", "ort", Parallel, at(Optimize::Max, Precision::Fp32, 4)));
    assert!(!f.is_of("m", "ort", Parallel, at(Optimize::Max, Precision::Bf16, 1)));
    assert!(!f.is_of("m", "torch", Parallel, max));
    assert!(!f.is_of("n", "ort", Parallel, max));
    (f.precision, f.batch) = (None, None);
    assert!(f.is_of("m", "ort", Parallel, at(Optimize::Max, Precision::Fp16, 16)));
    (f.mode, f.optimize) = (None, None);
    assert!(f.is_of(
        "m",
        "ort",
        Sequential,
        at(Optimize::Default, Precision::Fp32, 1)
    ));
}

/// The A/A table: each repeat over its original with the paired interval,
/// and how many hold 1.00; the busy mark and its note where a cell was
/// timed beside a load.
#[test]
fn repeats_table_and_busy_marks() {
    let p = |c: f64, s: u64| {
        vec![
            common::samples(c, 0.01, 30, s),
            common::samples(c, 0.01, 30, s + 1),
        ]
    };
    let a = common::cell_in_processes("resnet50", "ort", Sequential, p(10.0, 1), &[0.0, 0.0]);
    let b = common::cell_in_processes("resnet50", "ort#2", Sequential, p(10.0, 5), &[0.0, 0.0]);
    let far = common::cell_in_processes("resnet50", "ort#3", Sequential, p(13.0, 9), &[0.0, 0.9]);
    let cells = vec![a.clone(), b, far];
    let g = report::repeats::grid(&cells).expect("a repeats table");
    assert_eq!(g.rows.len(), 2);
    assert_eq!(g.rows[0][1], "ort#2 / ort");
    assert_eq!(g.rows[0][6], "yes");
    assert_eq!(g.rows[1][6], "NO");
    assert!(g.rows[1][4].ends_with('!'), "{:?}", g.rows[1]);
    assert!(!g.rows[0][4].ends_with('!'));
    assert!(
        g.notes[0].contains("1 of 2 95% intervals hold 1.00"),
        "{:?}",
        g.notes
    );
    assert!(
        g.notes[1].contains("resnet50 ort#3 sequential (0.90 cores)"),
        "{:?}",
        g.notes
    );
    assert!(report::repeats::grid(std::slice::from_ref(&a)).is_none());
    // the wide tables carry it, and the headline under the terminal's table
    assert!(report::grids(&cells, false)
        .iter()
        .any(|g| g.title.starts_with("Repeats")));
    let fit = report::terminal(&cells, false, report::View::Fit(200), None);
    assert!(
        fit.contains("Repeats (A/A)") && fit.contains("busy machine"),
        "{fit}"
    );
    assert!(!report::terminal(&[a], false, report::View::Fit(200), None).contains("busy"));
}

/// The busy cells are named once for every table and warning, with their
/// level and the most CPU others took; the steal is the most any process
/// saw.
#[test]
fn busy_cells_name_level_and_load() {
    use speedbench::record::{busy_cells, Optimize};
    let two = |c: f64| {
        vec![
            common::samples(c, 0.01, 10, 1),
            common::samples(c, 0.01, 10, 2),
        ]
    };
    let mut busy = common::cell_in_processes("resnet50", "ort", Sequential, two(10.0), &[0.1, 0.6]);
    busy.optimize = Optimize::Max;
    for (p, s) in busy.processes.iter_mut().zip([0.05, 0.4]) {
        p.load.as_mut().unwrap().stolen_cores = s;
    }
    let idle = common::cell_in_processes("resnet50", "tf", Sequential, two(10.0), &[0.0, 0.2]);
    let unread = common::cell_in_processes("resnet50", "torch", Sequential, two(10.0), &[]);
    assert_eq!(
        busy_cells(&[busy.clone(), idle.clone(), unread.clone()]),
        ["resnet50 ort sequential --optimize max (0.60 cores)"]
    );
    assert_eq!(busy.stolen_cores(), Some(0.4));
    assert_eq!(idle.stolen_cores(), Some(0.0));
    assert_eq!((unread.stolen_cores(), unread.other_cores()), (None, None));
    assert_eq!(idle.other_cores(), Some(0.2));
}

/// Absorbing a process keeps the larger of two peaks, or the one known.
#[test]
fn absorb_keeps_the_larger_peak() {
    let one = |s: u64, rss: Option<f64>, gpu: Option<f64>| {
        let mut c = common::cell_in_processes(
            "resnet50",
            "ort",
            Sequential,
            vec![common::samples(10.0, 0.01, 5, s)],
            &[],
        );
        (c.worker_peak_rss_mib, c.gpu_peak_mib) = (rss, gpu);
        c
    };
    let mut a = one(1, Some(100.0), None);
    let mut b = one(2, Some(150.0), Some(7.0));
    b.processes[0].index = 1;
    a.absorb(b);
    assert_eq!(
        (a.worker_peak_rss_mib, a.gpu_peak_mib),
        (Some(150.0), Some(7.0))
    );
    let mut c = one(3, None, Some(3.0));
    c.processes[0].index = 2;
    a.absorb(c);
    assert_eq!(
        (a.worker_peak_rss_mib, a.gpu_peak_mib),
        (Some(150.0), Some(7.0))
    );
    assert_eq!(a.processes.len(), 3);
}

/// The threads that ran in a cell's processes: the fewest and the most,
/// shown after the threads asked for, and the most in the CSV.
#[test]
fn the_threads_that_ran_are_shown_beside_those_asked_for() {
    let procs = || vec![vec![10.0, 11.0], vec![12.0, 13.0], vec![11.0]];
    let with = |ran: [Option<usize>; 3]| {
        let mut c = common::cell_in_processes("resnet50", "ort", Sequential, procs(), &[]);
        (c.intra_threads, c.inter_threads) = (2, 1);
        for (p, r) in c.processes.iter_mut().zip(ran) {
            p.threads_ran = r;
        }
        c
    };
    let column = "threads intra x inter (requested) · ran";
    let shown = |c: &speedbench::record::CellRecord| {
        let g = report::grid::detail(std::slice::from_ref(c));
        let i = g.header.iter().position(|h| h == column).unwrap();
        g.rows[0][i].clone()
    };
    let csv = |c: &speedbench::record::CellRecord| {
        let text = report::csv::render(std::slice::from_ref(c)).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let i = r
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == "threads_ran")
            .unwrap();
        r.records().next().unwrap().unwrap()[i].to_string()
    };
    let differ = with([Some(3), Some(2), None]);
    assert_eq!(differ.threads_ran(), Some((2, 3)));
    assert_eq!(shown(&differ), "2 x 1 · 2-3 ran");
    assert_eq!(csv(&differ), "3");
    let same = with([Some(2), Some(2), Some(2)]);
    assert_eq!(same.threads_ran(), Some((2, 2)));
    assert_eq!(shown(&same), "2 x 1 · 2 ran");
    let none = with([None, None, None]);
    assert_eq!(none.threads_ran(), None);
    assert_eq!(shown(&none), "2 x 1");
    assert_eq!(csv(&none), "");
}
