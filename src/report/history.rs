//! `report --history`: the median time of every cell over successive runs,
//! one line per cell, the baseline run marked, and each step change (a level
//! that shifted and stayed, [`crate::history::steps`]) marked with its size.

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::compare::level_suffix;
use crate::history::Series;
use crate::record::RunFile;

use super::svg::err;

/// `runs` in time order and their cells' series ([`crate::history::series`]);
/// `baseline` is the index of the baseline run, if any.
pub fn render(runs: &[RunFile], cells: &[Series], baseline: Option<usize>) -> Result<String> {
    if cells.is_empty() {
        return Err(anyhow!("no measured cell in the runs"));
    }
    let series: Vec<(String, Vec<(f64, f64)>)> = cells
        .iter()
        .map(|s| {
            let k = &s.key;
            (
                format!(
                    "{} {} {}{}",
                    k.model,
                    k.framework,
                    k.mode,
                    level_suffix(k.optimize)
                ),
                s.points.iter().map(|&(i, y)| (i as f64, y)).collect(),
            )
        })
        .collect();
    let ymax = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(0f64, f64::max)
        * 1.15;
    let n = runs.len().max(2) as f64;
    let labels: Vec<String> = runs
        .iter()
        .map(|r| r.started.get(..19).unwrap_or(&r.started).replace('T', " "))
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 650)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Median latency per cell over runs (dashed: baseline; triangles: step changes)",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..n - 0.5, 0f64..ymax.max(1e-3))
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(runs.len().max(2))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("median ms")
            .draw()
            .map_err(err)?;
        if let Some(b) = baseline {
            let x = b as f64;
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x, 0.0), (x, ymax)],
                    6,
                    4,
                    BLACK.stroke_width(2),
                ))
                .map_err(err)?;
        }
        for (i, (name, points)) in series.iter().enumerate() {
            let col = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points.clone(), col.stroke_width(2)))
                .map_err(err)?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], col.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 3, col.filled())))
                .map_err(err)?;
        }
        for (i, s) in cells.iter().enumerate() {
            let col = Palette99::pick(i).to_rgba();
            for st in &s.steps {
                let (x, y) = series[i].1[st.index];
                chart
                    .draw_series(std::iter::once(TriangleMarker::new(
                        (x, y),
                        8,
                        col.filled(),
                    )))
                    .map_err(err)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("{:+.0}%", st.change() * 100.0),
                        (x + 0.08, y + ymax * 0.03),
                        ("sans-serif", 13).into_font().color(&col),
                    )))
                    .map_err(err)?;
            }
        }
        super::svg::legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
