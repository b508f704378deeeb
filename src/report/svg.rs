//! The SVG report (plotters): grouped bars of the median time per model,
//! framework and mode with p10-p90 whiskers, and the parallel/sequential
//! speedup per model and framework with its 95% CI and the graph's ideal.

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::grid::{percentile, speedup};
use crate::record::CellRecord;
use crate::record::{Mode, Optimize, Precision};

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 900;

/// A framework's bars; `level` and `precision` are set when the cells hold
/// several `--optimize` levels or precisions, so that each is its own
/// series and no bar mixes tuned and untuned, or fp32 and bf16, cells.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    framework: String,
    level: Option<Optimize>,
    precision: Option<Precision>,
}

/// Whether the cells hold several levels, and several precisions.
type Mixed = (bool, bool);

impl Series {
    fn of(c: &CellRecord, (levels, precisions): Mixed) -> Series {
        Series {
            framework: c.framework.clone(),
            level: levels.then_some(c.optimize),
            precision: precisions.then_some(c.precision),
        }
    }

    fn holds(&self, c: &CellRecord) -> bool {
        c.framework == self.framework
            && self.level.is_none_or(|l| l == c.optimize)
            && self.precision.is_none_or(|p| p == c.precision)
    }
}

impl std::fmt::Display for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.framework)?;
        if let Some(l) = self.level {
            write!(f, " {l}")?;
        }
        if let Some(p) = self.precision {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

fn colour(series: &Series, mode: Mode) -> RGBColor {
    let (r, g, b) =
        crate::record::runtimes::runtime(&series.framework).map_or((120, 120, 120), |r| r.colour);
    let base = RGBColor(r, g, b);
    // levels: max darker, cuda-graph darker still, none greyed, default as is
    let base = match series.level {
        Some(Optimize::Max) => RGBColor(base.0 / 2, base.1 / 2, base.2 / 2),
        Some(Optimize::CudaGraph) => RGBColor(base.0 / 3, base.1 / 3, base.2 / 3),
        Some(Optimize::None) => RGBColor(base.0 / 3 + 110, base.1 / 3 + 110, base.2 / 3 + 110),
        _ => base,
    };
    // reduced precisions: the hue shifted toward purple (bf16), teal (fp16)
    // or grey-blue (tf32), so fp32 and bf16 bars of one framework differ
    let mix = |c: RGBColor, t: (u8, u8, u8)| {
        RGBColor(
            ((u16::from(c.0) + u16::from(t.0)) / 2) as u8,
            ((u16::from(c.1) + u16::from(t.1)) / 2) as u8,
            ((u16::from(c.2) + u16::from(t.2)) / 2) as u8,
        )
    };
    let base = match series.precision {
        Some(Precision::Bf16) => mix(base, (110, 40, 160)),
        Some(Precision::Fp16) => mix(base, (0, 140, 140)),
        Some(Precision::Tf32) => mix(base, (70, 90, 130)),
        _ => base,
    };
    match mode {
        Mode::Sequential => base,
        // parallel: the same hue, lighter
        Mode::Parallel => RGBColor(base.0 / 2 + 127, base.1 / 2 + 127, base.2 / 2 + 127),
    }
}

/// Model names in first-seen order, and the (series, mode) bars.
fn axes(cells: &[CellRecord], mixed: Mixed) -> (Vec<String>, Vec<(Series, Mode)>) {
    let mut models: Vec<String> = Vec::new();
    let mut series: Vec<(Series, Mode)> = Vec::new();
    for c in cells {
        if !models.contains(&c.model) {
            models.push(c.model.clone());
        }
        let s = (Series::of(c, mixed), c.mode);
        if !series.contains(&s) {
            series.push(s);
        }
    }
    series.sort_by_key(|(s, m)| {
        (
            crate::record::FRAMEWORKS
                .iter()
                .position(|k| *k == s.framework)
                .unwrap_or(99),
            s.framework.clone(),
            s.level,
            s.precision,
            *m,
        )
    });
    (models, series)
}

fn model_label(models: &[String], x: f64) -> String {
    let i = x - 0.5;
    if (i - i.round()).abs() < 1e-6 && i >= 0.0 {
        models.get(i.round() as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

pub(crate) fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the SVG: {e}")
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A chart with one slot per model on the x axis.
fn model_chart<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    models: &[String],
    y: std::ops::Range<f64>,
    y_desc: &str,
) -> Result<Chart<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..models.len() as f64, y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(2 * models.len() + 1)
        .x_label_formatter(&|x| model_label(models, *x))
        .y_desc(y_desc)
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// The series legend, boxed, at `pos`.
pub(crate) fn legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    pos: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(pos)
        .draw()
        .map_err(err)
}

/// Renders the report as one SVG document, at one batch (the first; the
/// batch sweep has its own chart, [`super::batches`]).
pub fn render(cells: &[CellRecord]) -> Result<String> {
    let Some(first) = cells.first() else {
        return Err(anyhow!("no cells to plot"));
    };
    let cells: Vec<CellRecord> = cells
        .iter()
        .filter(|c| c.batch == first.batch)
        .cloned()
        .collect();
    let cells = &cells[..];
    let precisions: std::collections::BTreeSet<Precision> =
        cells.iter().map(|c| c.precision).collect();
    let mixed = (crate::record::levels(cells).len() > 1, precisions.len() > 1);
    let (models, series) = axes(cells, mixed);
    let find = |m: &str, s: &Series, mode: Mode| {
        cells
            .iter()
            .rev()
            .find(|c| c.model == m && s.holds(c) && c.mode == mode)
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (top, bottom) = root.split_vertically(HEIGHT * 11 / 20);
        let first = &cells[0];
        let ymax = cells
            .iter()
            .map(|c| percentile(c, 0.9))
            .fold(0f64, f64::max)
            * 1.15;
        // models imported at their own sizes share the chart: name each size
        let sizes: std::collections::BTreeSet<usize> = cells.iter().map(|c| c.size).collect();
        let sizes: Vec<String> = sizes.iter().map(usize::to_string).collect();
        let mut chart = model_chart(
            &top,
            &format!(
                "Median latency per forward pass (batch {}, {} px, {}); whiskers p10-p90",
                first.batch,
                sizes.join(" and "),
                first.device
            ),
            &models,
            0f64..ymax.max(1e-3),
            "ms",
        )?;
        let width = 0.8 / series.len().max(1) as f64;
        for (j, (fw, mode)) in series.iter().enumerate() {
            let col = colour(fw, *mode);
            let bars: Vec<(f64, &CellRecord)> = models
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    find(m, fw, *mode).map(|c| (i as f64 + 0.1 + j as f64 * width, c))
                })
                .collect();
            chart
                .draw_series(bars.iter().map(|(x, c)| {
                    Rectangle::new(
                        [(*x, 0.0), (*x + width * 0.9, c.latency.median)],
                        col.filled(),
                    )
                }))
                .map_err(err)?
                .label(format!("{fw} {mode}"))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], col.filled()));
            chart
                .draw_series(bars.iter().map(|(x, c)| {
                    let mid = *x + width * 0.45;
                    PathElement::new(
                        vec![(mid, percentile(c, 0.1)), (mid, percentile(c, 0.9))],
                        BLACK.stroke_width(1),
                    )
                }))
                .map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;

        // Speedup chart: one bar per model and framework.
        let frameworks: Vec<Series> = {
            let mut f: Vec<Series> = Vec::new();
            for (s, _) in &series {
                if !f.contains(s) {
                    f.push(s.clone());
                }
            }
            f
        };
        let mut points = Vec::new();
        for (i, m) in models.iter().enumerate() {
            for (j, fw) in frameworks.iter().enumerate() {
                if let (Some(s), Some(p)) =
                    (find(m, fw, Mode::Sequential), find(m, fw, Mode::Parallel))
                {
                    points.push((i, j, fw.clone(), speedup(s, p), s.ideal_speedup));
                }
            }
        }
        let smax = points
            .iter()
            .map(|p| p.3.ci.1.max(p.4))
            .fold(1.0f64, f64::max)
            * 1.3; // headroom for the legend
        let smin = points.iter().map(|p| p.3.ci.0).fold(1.0f64, f64::min) * 0.9;
        let mut chart = model_chart(
            &bottom,
            "Parallel over sequential speedup (95% CI); black tick: ideal (work/span); above 1: parallel faster",
            &models,
            smin.min(0.9)..smax,
            "speedup (x)",
        )?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, 1.0), (models.len() as f64, 1.0)],
                BLACK.mix(0.5).stroke_width(1),
            )))
            .map_err(err)?;
        let width = 0.8 / frameworks.len().max(1) as f64;
        let base = smin.min(0.9);
        for (j, fw) in frameworks.iter().enumerate() {
            let col = colour(fw, Mode::Sequential);
            let mine: Vec<_> = points.iter().filter(|p| p.1 == j).collect();
            let x0 = |i: usize| i as f64 + 0.1 + j as f64 * width;
            chart
                .draw_series(mine.iter().map(|p| {
                    Rectangle::new(
                        [(x0(p.0), base), (x0(p.0) + width * 0.9, p.3.value)],
                        col.filled(),
                    )
                }))
                .map_err(err)?
                .label(fw.to_string())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], col.filled()));
            chart
                .draw_series(mine.iter().map(|p| {
                    let mid = x0(p.0) + width * 0.45;
                    PathElement::new(
                        vec![(mid, p.3.ci.0), (mid, p.3.ci.1)],
                        BLACK.stroke_width(1),
                    )
                }))
                .map_err(err)?;
            chart
                .draw_series(mine.iter().map(|p| {
                    PathElement::new(
                        vec![(x0(p.0), p.4), (x0(p.0) + width * 0.9, p.4)],
                        BLACK.stroke_width(3),
                    )
                }))
                .map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use crate::record::test_cell as cell;

    #[test]
    fn the_title_names_every_size_the_models_ran_at() {
        let a = cell(&[&[10.0, 11.0]], false);
        let mut b = cell(&[&[20.0, 21.0]], false);
        b.model = "n".into();
        assert!(super::render(&[a.clone(), a.clone()])
            .unwrap()
            .contains("(batch 1, 8 px, cpu)"));
        b.size = 299;
        let svg = super::render(&[a, b]).unwrap();
        assert!(svg.contains("(batch 1, 8 and 299 px, cpu)"), "{svg}");
    }
}
