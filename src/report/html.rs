//! `report --format html` and `RESULTS.html` beside every run: one
//! self-contained page (no script, no network: styles inline, charts as
//! inline SVG) with what a run's reader looks at first, then the rest:
//! the paper-style table, the charts, the timelines of the traced passes,
//! the history chart when given one, and the per-cell table.

use std::collections::BTreeSet;
use std::fmt::Write;

use anyhow::Result;

use super::grid::Grid;
use crate::record::CellRecord;

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d232a;background:#fafbfc}
header{background:#1d3557;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;color:#d8e2ef}
nav{padding:8px 28px;background:#e9eef5;border-bottom:1px solid #cfd8e3}
nav a{margin-right:18px;color:#1d3557;text-decoration:none;font-weight:600}
main{padding:8px 28px 40px}
section{margin:22px 0}
h2{font-size:17px;border-bottom:2px solid #1d3557;padding-bottom:3px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:12.5px;background:#fff}
th,td{border:1px solid #d5dde6;padding:3px 7px;white-space:nowrap}
th{background:#eef2f7;position:sticky;top:0;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.flag{background:#fff3cd}
tr:nth-child(even) td{background:#f7f9fb}
tr:nth-child(even) td.flag{background:#fff3cd}
ul.notes{color:#4a5561;font-size:12.5px;margin:6px 0 0;padding-left:20px}
.chart svg{max-width:100%;height:auto;background:#fff;border:1px solid #d5dde6}
footer{color:#6b7785;font-size:12px;padding:0 28px 20px}
";

/// Text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value that reads as a number (right-aligned): `12.3`, `1.05x`,
/// `-4.1%`, `~12.3`, `1.02x [0.99, 1.05]`.
fn numeric(cell: &str) -> bool {
    let t = cell.trim_start_matches(['~', '+', '-']);
    t.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// A value a reader should not miss: a parallel pass that overlapped
/// nothing, a regression, a failure.
fn flagged(cell: &str) -> bool {
    ["ran sequentially", "REGRESSED", "FAILED", "failed"]
        .iter()
        .any(|w| cell.contains(w))
}

/// The anchor of the table "Across runs".
const ACROSS: &str = "across";

/// The anchor of the `i`-th table after the paper-style one: the first is
/// the per-cell table the nav's "Every cell" leads to, "Across runs" has
/// its own, the others are numbered so that no two share one.
fn anchor(i: usize, g: &Grid) -> String {
    if i == 0 {
        "cells".into()
    } else if g.title == super::across::TITLE {
        ACROSS.into()
    } else {
        format!("table-{}", i + 1)
    }
}

/// One grid as a titled table with its notes.
fn table(out: &mut String, id: &str, g: &Grid) {
    let _ = write!(
        out,
        "<section id=\"{id}\"><h2>{}</h2><div class=\"scroll\"><table><thead><tr>",
        escape(&g.title)
    );
    for h in &g.header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in &g.rows {
        out.push_str("<tr>");
        for cell in row {
            let class = match (flagged(cell), numeric(cell)) {
                (true, _) => " class=\"flag\"",
                (false, true) => " class=\"num\"",
                _ => "",
            };
            let _ = write!(out, "<td{class}>{}</td>", escape(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    if !g.notes.is_empty() {
        out.push_str("<ul class=\"notes\">");
        for n in &g.notes {
            let _ = write!(out, "<li>{}</li>", escape(n));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
}

/// An SVG document as an element of the page (its XML prologue, if any,
/// dropped).
fn chart(out: &mut String, id: &str, title: &str, svg: &str) {
    let body = svg.find("<svg").map_or(svg, |i| &svg[i..]);
    let _ = write!(
        out,
        "<section id=\"{id}\"><h2>{}</h2><div class=\"chart scroll\">{body}</div></section>",
        escape(title)
    );
}

/// Distinct values of `f` over the cells, joined.
fn distinct(cells: &[CellRecord], f: impl Fn(&CellRecord) -> String) -> String {
    cells
        .iter()
        .map(f)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
        .join(", ")
}

/// The page: `grids` as [`super::grids`] makes them (paper-style first,
/// per-cell second), the charts and timelines of `cells`, and `history`
/// (an SVG) where given.
pub fn render(cells: &[CellRecord], grids: &[Grid], history: Option<&str>) -> Result<String> {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    out.push_str("<title>speedbench report</title><style>");
    out.push_str(STYLE);
    out.push_str("</style></head><body><header><h1>speedbench report</h1>");
    let shapes = distinct(cells, |c| {
        format!("batch {} · {} px · {} timed", c.batch, c.size, c.iters)
    });
    let frameworks = distinct(cells, |c| {
        format!("{} {}", c.framework, c.framework_version)
    });
    let _ = write!(
        out,
        "<p>{} cells · {} models · hosts: {} · devices: {}</p><p>{}</p><p>{}</p></header>",
        cells.len(),
        cells
            .iter()
            .map(|c| &c.model)
            .collect::<BTreeSet<_>>()
            .len(),
        escape(&distinct(cells, |c| c.host.clone())),
        escape(&distinct(cells, |c| c.device.to_string())),
        escape(&frameworks),
        escape(&shapes),
    );
    let timelines = super::gantt::render(cells);
    let charts = if cells.is_empty() {
        None
    } else {
        Some(super::svg::render(cells)?)
    };
    let curves = super::batches::render(cells).transpose()?;
    let mut sections = vec![("paper", "Sequential and parallel")];
    if charts.is_some() {
        sections.push(("charts", "Charts"));
    }
    if curves.is_some() {
        sections.push(("batches", "Batch sweep"));
    }
    if timelines.is_some() {
        sections.push(("timelines", "Timelines"));
    }
    if history.is_some() {
        sections.push(("history", "History"));
    }
    sections.push(("cells", "Every cell"));
    // the later tables, each under its own anchor
    let later: Vec<(String, &Grid)> = grids
        .iter()
        .skip(1)
        .enumerate()
        .map(|(i, g)| (anchor(i, g), g))
        .collect();
    if later.iter().any(|(id, _)| id == ACROSS) {
        sections.push((ACROSS, "Across runs"));
    }
    out.push_str("<nav>");
    for (id, name) in &sections {
        let _ = write!(out, "<a href=\"#{id}\">{name}</a>");
    }
    out.push_str("</nav><main>");
    if let Some(g) = grids.first() {
        table(&mut out, "paper", g);
    }
    if let Some(svg) = &charts {
        chart(&mut out, "charts", "Median time and speedup per cell", svg);
    }
    if let Some(svg) = &curves {
        chart(
            &mut out,
            "batches",
            "Latency, throughput and speedup against batch (sequential solid, parallel light)",
            svg,
        );
    }
    if let Some(svg) = &timelines {
        chart(
            &mut out,
            "timelines",
            "Timelines of the traced passes (ideal, sequential, parallel; critical path in red)",
            svg,
        );
    }
    if let Some(svg) = history {
        chart(
            &mut out,
            "history",
            "Median time per cell over the runs",
            svg,
        );
    }
    for (id, g) in &later {
        table(&mut out, id, g);
    }
    let _ = write!(
        out,
        "</main><footer>speedbench {} ({}) · open with any browser, no network needed</footer></body></html>",
        env!("CARGO_PKG_VERSION"),
        option_env!("SPEEDBENCH_GIT_COMMIT").unwrap_or("unknown")
    );
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_values_are_classed() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;"
        );
        for n in ["12.3", "~12.3", "1.02x [0.99, 1.05]", "-4.1%", "+9.7%"] {
            assert!(numeric(n), "{n}");
        }
        for t in ["resnet50", "", "ort", "x1"] {
            assert!(!numeric(t), "{t}");
        }
        assert!(flagged("1 · 0.99 · 0% (ran sequentially)"));
        assert!(flagged("REGRESSED"));
        assert!(!flagged("2 · 1.10 · 60%"));
    }

    #[test]
    fn every_later_table_has_its_own_anchor_and_across_runs_its_link() {
        let g = |title: &str| Grid {
            title: title.into(),
            header: vec!["a".into()],
            rows: vec![],
            notes: vec![],
        };
        let grids = [
            g("paper"),
            g("Every cell"),
            g("Limits"),
            g(super::super::across::TITLE),
            g("Repeats"),
        ];
        let page = render(&[], &grids, None).unwrap();
        for id in ["paper", "cells", "table-2", "across", "table-4"] {
            let s = format!("<section id=\"{id}\">");
            assert_eq!(page.matches(&s).count(), 1, "{id}: {page}");
        }
        assert!(
            page.contains("<a href=\"#across\">Across runs</a>"),
            "{page}"
        );
        let page = render(&[], &grids[..3], None).unwrap();
        assert!(!page.contains("#across"), "{page}");
    }

    #[test]
    fn a_grid_becomes_a_table_with_its_notes() {
        let g = Grid {
            title: "T <1>".into(),
            header: vec!["model".into(), "ms".into()],
            rows: vec![vec!["a&b".into(), "1.5".into()]],
            notes: vec!["note <x>".into()],
        };
        let mut out = String::new();
        table(&mut out, "paper", &g);
        assert!(
            out.starts_with("<section id=\"paper\"><h2>T &lt;1&gt;</h2>"),
            "{out}"
        );
        assert!(out.contains("<th>model</th><th>ms</th>"), "{out}");
        assert!(
            out.contains("<td>a&amp;b</td><td class=\"num\">1.5</td>"),
            "{out}"
        );
        assert!(out.contains("<li>note &lt;x&gt;</li>"), "{out}");
        let mut out = String::new();
        chart(
            &mut out,
            "c",
            "C",
            "<?xml version=\"1.0\"?>\n<svg width=\"1\"></svg>",
        );
        assert!(
            out.contains("<div class=\"chart scroll\"><svg width=\"1\"></svg></div>"),
            "{out}"
        );
        assert!(!out.contains("<?xml"), "{out}");
    }
}
