//! The timelines of the traced passes as one SVG: per model, per framework,
//! the ideal schedule (work/span of the sequential pass's durations), the
//! sequential pass and the parallel pass one above the other on one time
//! axis, one row per thread or stream, the critical path outlined.

use std::fmt::Write;

use super::grid::{framework_rank, row_keys};
use crate::record::{CellRecord, Mode, Timeline};

const WIDTH: f64 = 1400.0;
const LEFT: f64 = 300.0;
const RIGHT: f64 = 30.0;
const ROW: f64 = 11.0;
const GAP: f64 = 2.0;
const CRITICAL: &str = "#d62728";
/// Bands with more rows than this are drawn in the height of this many.
const MAX_FULL_ROWS: usize = 8;

/// Fill colour of an operation by its kind (IR kinds and the frameworks'
/// names for them); grey for framework-internal work.
fn colour(op: &str, internal: bool) -> &'static str {
    if internal {
        return "#bab0ac";
    }
    let op = op.to_ascii_lowercase();
    let has = |k: &[&str]| k.iter().any(|k| op.contains(k));
    if has(&["conv"]) {
        "#4e79a7"
    } else if has(&["norm", "bn"]) {
        "#f28e2b"
    } else if has(&["relu", "sigmoid"]) {
        "#59a14f"
    } else if has(&["pool", "resize", "upsample", "mean"]) {
        "#76b7b2"
    } else if has(&["linear", "gemm", "matmul"]) {
        "#b07aa1"
    } else {
        "#edc948"
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One labelled band of rows: a timeline on the shared axis.
struct Band<'a> {
    label: String,
    detail: String,
    timeline: &'a Timeline,
}

fn bands_of<'a>(cells: &[&'a CellRecord]) -> Vec<Band<'a>> {
    let mut out = Vec::new();
    let mut sorted: Vec<&&CellRecord> = cells.iter().collect();
    sorted.sort_by_key(|c| {
        (
            framework_rank(&c.framework),
            c.optimize,
            c.precision,
            c.mode,
        )
    });
    for c in sorted {
        let Some(t) = &c.trace else { continue };
        let precision = if c.precision.is_fp32() {
            String::new()
        } else {
            format!(" {}", c.precision)
        };
        let name = format!("{} {} {}{precision}", c.framework, c.device, c.optimize);
        if let (Mode::Sequential, Some(ideal)) = (c.mode, &t.ideal) {
            out.push(Band {
                label: format!("{name} · ideal"),
                detail: format!(
                    "work/span of the sequential durations: {:.2} ms, {} lane(s)",
                    ideal.wall_us() / 1e3,
                    ideal.tracks.len()
                ),
                timeline: ideal,
            });
        }
        let k = &t.concurrency;
        let ran = if c.mode == Mode::Parallel && k.sequential() {
            " · RAN SEQUENTIALLY"
        } else {
            ""
        };
        out.push(Band {
            label: format!("{name} · {}", c.mode),
            detail: format!(
                "traced {:.2} ms (median {:.2}) · {} thread(s)/stream(s) · {:.2} in flight · {:.0}% branch work overlapped{ran}",
                t.timeline.wall_us() / 1e3,
                c.latency.median,
                k.tracks,
                k.in_flight,
                k.branch_overlap * 100.0
            ),
            timeline: &t.timeline,
        });
    }
    out
}

/// A round step for about `ticks` axis ticks over `span_us`.
fn tick_step(span_us: f64, ticks: f64) -> f64 {
    let raw = (span_us / ticks).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// The SVG of every traced cell in `cells`; `None` when none has a trace.
pub fn render(cells: &[CellRecord]) -> Option<String> {
    if cells.iter().all(|c| c.trace.is_none()) {
        return None;
    }
    let mut body = String::new();
    let mut y = 60.0;
    let plot = WIDTH - LEFT - RIGHT;
    for key in row_keys(cells) {
        let of_model: Vec<&CellRecord> = cells
            .iter()
            .filter(|c| (c.model.as_str(), c.batch, c.size) == (key.0.as_str(), key.1, key.2))
            .collect();
        let bands = bands_of(&of_model);
        if bands.is_empty() {
            continue;
        }
        let span = bands
            .iter()
            .map(|b| b.timeline.wall_us())
            .fold(1.0, f64::max);
        let x = |us: f64| LEFT + plot * us / span;
        let _ = writeln!(
            body,
            r#"<text x="10" y="{y}" font-size="15" font-weight="bold">{} · batch {} · {} px</text>"#,
            escape(&key.0),
            key.1,
            key.2
        );
        y += 10.0;
        let top = y;
        for b in &bands {
            y += 16.0;
            let _ = writeln!(
                body,
                r#"<text x="10" y="{y}" font-size="12" font-weight="bold">{}</text>"#,
                escape(&b.label)
            );
            let _ = writeln!(
                body,
                r##"<text x="{LEFT}" y="{y}" font-size="11" fill="#444">{}</text>"##,
                escape(&b.detail)
            );
            y += 4.0;
            // many lanes (a wide ideal schedule) get thinner rows
            let tracks = b.timeline.tracks.len();
            let row = if tracks <= MAX_FULL_ROWS {
                ROW
            } else {
                (MAX_FULL_ROWS as f64 * ROW / tracks as f64).max(3.0)
            };
            let pitch = row + if tracks <= MAX_FULL_ROWS { GAP } else { 0.5 };
            for (i, track) in b.timeline.tracks.iter().enumerate() {
                let ry = y + i as f64 * pitch;
                if tracks <= MAX_FULL_ROWS || i == 0 || i + 1 == tracks {
                    let _ = writeln!(
                        body,
                        r##"<text x="20" y="{:.1}" font-size="9" fill="#666">{}</text>"##,
                        ry + row.min(ROW) - 1.0,
                        escape(track)
                    );
                }
                let _ = writeln!(
                    body,
                    r##"<rect x="{LEFT}" y="{ry:.1}" width="{plot}" height="{row:.1}" fill="#f4f4f4"/>"##
                );
            }
            for e in &b.timeline.events {
                let ry = y + e.track as f64 * pitch;
                let w = (plot * e.dur_us / span).max(0.5);
                let _ = writeln!(
                    body,
                    r#"<rect x="{:.2}" y="{ry:.1}" width="{w:.2}" height="{row:.1}" fill="{}"><title>{} ({}) {}: {:.0} µs at {:.0} µs{}</title></rect>"#,
                    x(e.start_us),
                    colour(&e.op, e.node.is_none()),
                    escape(&e.name),
                    escape(&e.op),
                    e.node
                        .as_deref()
                        .map_or("framework-internal".to_string(), |n| format!(
                            "IR node {}",
                            escape(n)
                        )),
                    e.dur_us,
                    e.start_us,
                    if e.critical { ", critical path" } else { "" }
                );
                if e.critical {
                    // the critical path: a red bar along the top of its operations
                    let _ = writeln!(
                        body,
                        r#"<rect x="{:.2}" y="{:.1}" width="{w:.2}" height="2" fill="{CRITICAL}"/>"#,
                        x(e.start_us),
                        ry - 1.0
                    );
                }
            }
            y += tracks as f64 * pitch + 4.0;
        }
        // the time axis under the model's bands
        let step = tick_step(span, 10.0);
        let _ = writeln!(
            body,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#333"/>"##,
            LEFT + plot
        );
        let mut t = 0.0;
        while t <= span + 1e-9 {
            let _ = writeln!(
                body,
                r##"<line x1="{0:.1}" y1="{top:.1}" x2="{0:.1}" y2="{y:.1}" stroke="#ddd" stroke-width="0.5"/>"##,
                x(t)
            );
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
                x(t),
                y + 12.0,
                fmt_ms(t)
            );
            t += step;
        }
        y += 40.0;
    }
    let height = y + 10.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="sans-serif">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="10" y="22" font-size="17" font-weight="bold">Timelines of one traced pass: ideal, sequential and parallel</text>"#
    );
    let legend = [
        ("conv", colour("conv", false)),
        ("batch norm", colour("bn", false)),
        ("relu / sigmoid", colour("relu", false)),
        ("pool / resize", colour("pool", false)),
        ("fc", colour("linear", false)),
        ("add / mul / concat / slice", colour("add", false)),
        ("framework-internal", colour("", true)),
    ];
    let mut lx = 10.0;
    for (name, c) in legend {
        let _ = writeln!(
            svg,
            r#"<rect x="{lx}" y="34" width="12" height="10" fill="{c}"/><text x="{}" y="43" font-size="11">{name}</text>"#,
            lx + 16.0
        );
        lx += 30.0 + 6.5 * name.len() as f64;
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{lx}" y="37" width="12" height="3" fill="{CRITICAL}"/><text x="{}" y="43" font-size="11">critical path</text>"#,
        lx + 16.0
    );
    svg.push_str(&body);
    svg.push_str("</svg>\n");
    Some(svg)
}

fn fmt_ms(us: f64) -> String {
    if us == 0.0 {
        "0".into()
    } else if us < 1000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.1} ms", us / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(10_000.0, 10.0), 1000.0);
        assert_eq!(tick_step(25_000.0, 10.0), 5000.0);
        assert_eq!(tick_step(12_000.0, 10.0), 2000.0);
        assert_eq!(tick_step(1.0, 10.0), 0.1);
    }

    #[test]
    fn colours_follow_the_kind() {
        assert_eq!(colour("_FusedConv2D", false), colour("conv", false));
        assert_eq!(colour("BatchNormalization", false), colour("bn", false));
        assert_ne!(colour("Relu", false), colour("conv", false));
        assert_eq!(colour("Conv", true), "#bab0ac");
    }
}
