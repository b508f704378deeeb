//! The batch sweep (`run --batch 1,4,16`) as curves: per model, the median
//! latency and the throughput (images/s) against batch, sequential and
//! parallel, and the parallel/sequential speedup against batch with its 95%
//! interval, so that the batch where branch parallelism stops paying reads
//! off the chart. `RESULTS.batch.svg` beside a run of several batches, and
//! a section of the HTML page.

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::grid::{framework_rank, speedup};
use super::svg::{err, legend};
use crate::record::{CellRecord, Mode, Optimize, Precision};

const WIDTH: u32 = 1200;
/// Height of one model's row of three charts.
const ROW: u32 = 300;
/// Which of a row's charts (latency, throughput, speedup) is the speedup.
const SPEEDUP_CHART: [bool; 3] = [false, false, true];

/// One curve's cells: a framework at one level and precision.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Curve {
    rank: usize,
    framework: String,
    optimize: Optimize,
    precision: Precision,
}

impl Curve {
    fn of(c: &CellRecord) -> Curve {
        Curve {
            rank: framework_rank(&c.framework),
            framework: c.framework.clone(),
            optimize: c.optimize,
            precision: c.precision,
        }
    }

    fn holds(&self, c: &CellRecord) -> bool {
        c.framework == self.framework
            && c.optimize == self.optimize
            && c.precision == self.precision
    }
}

/// The batches of `cells`, smallest first.
pub fn batches(cells: &[CellRecord]) -> Vec<usize> {
    let mut b: Vec<usize> = cells.iter().map(|c| c.batch).collect();
    b.sort_unstable();
    b.dedup();
    b
}

/// One point of a curve: (batch index, value, interval).
type Point = (f64, f64, Option<(f64, f64)>);

/// What each chart of a model's row draws for a curve and mode.
fn points(cells: &[&CellRecord], curve: &Curve, mode: Mode, sizes: &[usize]) -> [Vec<Point>; 2] {
    let mut latency = Vec::new();
    let mut throughput = Vec::new();
    for (i, &b) in sizes.iter().enumerate() {
        if let Some(c) = cells
            .iter()
            .rev()
            .find(|c| curve.holds(c) && c.mode == mode && c.batch == b)
        {
            let ci = c.latency.median_ci;
            latency.push((i as f64, c.latency.median, Some(ci)));
            let per_s = |ms: f64| b as f64 * 1000.0 / ms;
            throughput.push((i as f64, c.images_per_s(), Some((per_s(ci.1), per_s(ci.0)))));
        }
    }
    [latency, throughput]
}

/// The speedup curve: (batch index, seq / par, its 95% interval).
fn speedups(cells: &[&CellRecord], curve: &Curve, sizes: &[usize]) -> Vec<Point> {
    let find = |mode: Mode, b: usize| {
        cells
            .iter()
            .rev()
            .find(|c| curve.holds(c) && c.mode == mode && c.batch == b)
    };
    sizes
        .iter()
        .enumerate()
        .filter_map(|(i, &b)| {
            let r = speedup(find(Mode::Sequential, b)?, find(Mode::Parallel, b)?);
            Some((i as f64, r.value, Some(r.ci)))
        })
        .collect()
}

/// The batch at tick `x` of the x axis (the batches sit at 0, 1, ...);
/// nothing between them.
fn batch_label(x: f64, sizes: &[usize]) -> String {
    let i = x.round();
    if (x - i).abs() < 1e-6 && i >= 0.0 {
        sizes
            .get(i as usize)
            .map_or(String::new(), ToString::to_string)
    } else {
        String::new()
    }
}

/// A chart's y range from the medians it draws. The scale follows the
/// medians, not their intervals: an interval of two processes can be wide
/// enough to flatten every curve, so whiskers are cut at the edges. Latency
/// and throughput start at 0; the speedup chart always holds the line at 1.
fn y_range(medians: impl Iterator<Item = f64> + Clone, speedup: bool) -> (f64, f64) {
    if speedup {
        let hi = medians.clone().fold(1.0, f64::max) * 1.3;
        // hi is at least 1.3 and lo at most 0.7: never an empty range
        let lo = medians.fold(1.0, f64::min) * 0.7;
        (lo, hi)
    } else {
        let hi = medians.fold(0.0, f64::max) * 1.5;
        (0.0, hi.max(1e-3))
    }
}

fn colour(index: usize) -> RGBColor {
    let palette = [
        RGBColor(31, 119, 180),
        RGBColor(230, 110, 20),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(214, 39, 40),
        RGBColor(140, 86, 75),
    ];
    palette[index % palette.len()]
}

/// The curves' names: the framework, with the level and precision where
/// the cells hold several.
fn namer(curves: &[Curve]) -> impl Fn(&Curve) -> String {
    let levels = curves
        .iter()
        .map(|c| c.optimize)
        .collect::<std::collections::BTreeSet<_>>();
    let precisions = curves
        .iter()
        .map(|c| c.precision)
        .collect::<std::collections::BTreeSet<_>>();
    move |c: &Curve| {
        let mut s = c.framework.clone();
        if levels.len() > 1 {
            s.push_str(&format!(" {}", c.optimize));
        }
        if precisions.len() > 1 {
            s.push_str(&format!(" {}", c.precision));
        }
        s
    }
}

/// The curves of `cells` as one SVG document; `None` where the cells hold
/// fewer than two batches (nothing to draw against).
pub fn render(cells: &[CellRecord]) -> Option<Result<String>> {
    let sizes = batches(cells);
    if sizes.len() < 2 {
        return None;
    }
    Some(draw(cells, &sizes))
}

fn draw(cells: &[CellRecord], sizes: &[usize]) -> Result<String> {
    let mut models: Vec<&str> = Vec::new();
    for c in cells {
        if !models.contains(&c.model.as_str()) {
            models.push(&c.model);
        }
    }
    let mut curves: Vec<Curve> = cells.iter().map(Curve::of).collect();
    curves.sort();
    curves.dedup();
    let name = namer(&curves);
    let height = ROW * models.len().max(1) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let rows = root.split_evenly((models.len(), 3));
        let label = |x: &f64| batch_label(*x, sizes);
        let x_range = -0.3f64..(sizes.len() as f64 - 0.7);
        for (m, model) in models.iter().enumerate() {
            let mine: Vec<&CellRecord> = cells.iter().filter(|c| c.model == *model).collect();
            let size = mine.first().map_or(0, |c| c.size);
            let device = mine.first().map_or(String::new(), |c| c.device.to_string());
            let mut charts: [Vec<(String, Mode, Vec<Point>)>; 2] = [Vec::new(), Vec::new()];
            let mut gains: Vec<(String, Vec<Point>)> = Vec::new();
            for curve in &curves {
                for mode in [Mode::Sequential, Mode::Parallel] {
                    let [l, t] = points(&mine, curve, mode, sizes);
                    if !l.is_empty() {
                        charts[0].push((name(curve), mode, l));
                        charts[1].push((name(curve), mode, t));
                    }
                }
                let s = speedups(&mine, curve, sizes);
                if !s.is_empty() {
                    gains.push((name(curve), s));
                }
            }
            let titles = [
                format!("{model} ({size} px, {device}): median latency, ms (solid seq, light par)"),
                format!("{model}: throughput, images/s (solid seq, light par)"),
                format!("{model}: speedup seq/par (95% CI)"),
            ];
            for (k, area) in rows[m * 3..m * 3 + 3].iter().enumerate() {
                let series: Vec<(String, Option<Mode>, &Vec<Point>)> = if !SPEEDUP_CHART[k] {
                    charts[k]
                        .iter()
                        .map(|(n, md, p)| (n.clone(), Some(*md), p))
                        .collect()
                } else {
                    gains.iter().map(|(n, p)| (n.clone(), None, p)).collect()
                };
                let (lo, hi) = y_range(
                    series.iter().flat_map(|(_, _, p)| p.iter().map(|q| q.1)),
                    SPEEDUP_CHART[k],
                );
                let mut chart = ChartBuilder::on(area)
                    .caption(&titles[k], ("sans-serif", 14))
                    .margin(8)
                    .x_label_area_size(30)
                    .y_label_area_size(50)
                    .build_cartesian_2d(x_range.clone(), lo..hi)
                    .map_err(err)?;
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .max_light_lines(1)
                    .x_labels(sizes.len() * 2 + 1)
                    .x_label_formatter(&label)
                    .x_desc("batch")
                    .draw()
                    .map_err(err)?;
                if SPEEDUP_CHART[k] {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(x_range.start, 1.0), (x_range.end, 1.0)],
                            BLACK.mix(0.5).stroke_width(1),
                        )))
                        .map_err(err)?;
                }
                for (j, (n, mode, pts)) in series.iter().enumerate() {
                    let index = curves.iter().position(|c| name(c) == *n).unwrap_or(j);
                    let col = colour(index);
                    // parallel dashed-light, sequential solid
                    let style = match mode {
                        Some(Mode::Parallel) => col.mix(0.55).stroke_width(2),
                        _ => col.stroke_width(2),
                    };
                    let line: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1)).collect();
                    let what = match mode {
                        Some(m) => format!("{n} {m}"),
                        None => n.clone(),
                    };
                    chart
                        .draw_series(LineSeries::new(line.clone(), style))
                        .map_err(err)?
                        .label(what)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], style));
                    chart
                        .draw_series(
                            line.iter()
                                .map(|&(x, y)| Circle::new((x, y), 3, style.filled())),
                        )
                        .map_err(err)?;
                    chart
                        .draw_series(pts.iter().filter_map(|p| {
                            p.2.map(|(a, b)| {
                                PathElement::new(
                                    vec![(p.0, a.clamp(lo, hi)), (p.0, b.clamp(lo, hi))],
                                    style,
                                )
                            })
                        }))
                        .map_err(err)?;
                }
                // one legend per row, on the speedup chart: a curve's
                // colour is the same in all three
                if SPEEDUP_CHART[k] {
                    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
                }
            }
        }
        root.present().map_err(err)?;
    }
    if svg.is_empty() {
        return Err(anyhow!("drawing the batch curves: nothing drawn"));
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded() -> Vec<CellRecord> {
        crate::report::fixture("quick-cpu-2core.json").cells
    }

    /// The fixture's first sequential cell and the parallel cell of its
    /// model, curve and batch.
    fn pair() -> (CellRecord, CellRecord) {
        let cells = recorded();
        let seq = cells
            .iter()
            .find(|c| c.mode == Mode::Sequential)
            .unwrap()
            .clone();
        let par = cells
            .iter()
            .find(|c| {
                c.mode == Mode::Parallel
                    && c.model == seq.model
                    && Curve::of(c) == Curve::of(&seq)
                    && c.batch == seq.batch
            })
            .unwrap()
            .clone();
        (seq, par)
    }

    /// `c` as if measured for `model` at `batch`.
    fn moved(c: &CellRecord, model: &str, batch: usize) -> CellRecord {
        let mut c = c.clone();
        c.model = model.into();
        c.batch = batch;
        c
    }

    #[test]
    fn one_batch_draws_nothing_several_draw_a_row_per_model() {
        let cells = recorded();
        assert!(render(&cells).is_none());
        let mut swept = cells.clone();
        for c in &cells {
            let mut b = c.clone();
            b.batch = 16;
            b.samples_ms.iter_mut().for_each(|x| *x *= 8.0);
            b.summarise();
            swept.push(b);
        }
        let svg = render(&swept).unwrap().unwrap();
        let models: std::collections::BTreeSet<&str> =
            cells.iter().map(|c| c.model.as_str()).collect();
        // three charts per model, each titled with it
        for m in &models {
            assert!(svg.contains(&format!("{m}: throughput, images/s")), "{m}");
            assert!(
                svg.contains(&format!("{m}: speedup seq/par (95% CI)")),
                "{m}"
            );
        }
        let height = format!("height=\"{}\"", ROW as usize * models.len());
        assert!(svg.contains(&height), "{height}");
        assert_eq!(batches(&swept), [1, 16]);
    }

    #[test]
    fn points_are_the_cells_medians_and_throughputs_at_each_batch() {
        let (c, _) = pair();
        let b4 = moved(&c, &c.model, 4);
        let all = [c.clone(), b4.clone()];
        let refs: Vec<&CellRecord> = all.iter().collect();
        let curve = Curve::of(&c);
        let [lat, thr] = points(&refs, &curve, Mode::Sequential, &[1, 4]);
        assert_eq!(lat.len(), 2);
        assert_eq!((lat[0].0, lat[0].1), (0.0, c.latency.median));
        assert_eq!((lat[1].0, lat[1].1), (1.0, b4.latency.median));
        // 4 images in the same time: 4x the throughput
        assert!((thr[1].1 - 4.0 * thr[0].1).abs() < 1e-9);
        let (lo, hi) = thr[0].2.unwrap();
        assert!(lo <= thr[0].1 && thr[0].1 <= hi);
        // another precision is another curve
        let mut other = c.clone();
        other.precision = Precision::Bf16;
        assert!(!curve.holds(&other));
        assert!(points(&refs, &curve, Mode::Parallel, &[1, 4])[0].is_empty());
        let names = namer(&[curve.clone(), Curve::of(&other)]);
        assert_eq!(names(&curve), format!("{} fp32", c.framework));
        // a level is named where the curves hold several, alone otherwise
        let mut max = c.clone();
        max.optimize = Optimize::Max;
        let mut none = c.clone();
        none.optimize = Optimize::None;
        let names = namer(&[Curve::of(&max), Curve::of(&none)]);
        assert_eq!(names(&Curve::of(&max)), format!("{} max", c.framework));
        assert_eq!(namer(std::slice::from_ref(&curve))(&curve), c.framework);
    }

    /// The speedup at a batch is the sequential cell over the parallel
    /// one of the same curve and batch, where both were measured.
    #[test]
    fn speedups_pair_the_modes_of_a_batch() {
        let (seq, par) = pair();
        let at = |b: usize, c: &CellRecord| moved(c, &c.model, b);
        // batch 4: the parallel cell twice as slow; batch 8: no parallel
        let mut slow = at(4, &par);
        slow.samples_ms.iter_mut().for_each(|x| *x *= 2.0);
        slow.summarise();
        let mut other = at(4, &par);
        other.precision = Precision::Bf16;
        let all = [
            seq.clone(),
            par.clone(),
            at(4, &seq),
            slow.clone(),
            at(8, &seq),
            other,
        ];
        let refs: Vec<&CellRecord> = all.iter().collect();
        let curve = Curve::of(&seq);
        let s = speedups(&refs, &curve, &[1, 4, 8]);
        let want = |p: &CellRecord| speedup(&all[0], p);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!((s[0].0, s[0].1), (0.0, want(&par).value));
        assert_eq!((s[1].0, s[1].1), (1.0, want(&slow).value));
        assert_eq!(s[1].2, Some(speedup(&at(4, &seq), &slow).ci));
        assert!(s[1].1 < s[0].1);
    }

    /// Each model's row draws its own cells: a point per batch, mode and
    /// chart, and a speedup only where both modes were measured.
    #[test]
    fn each_row_draws_the_points_of_its_model() {
        let (seq, par) = pair();
        // a: both modes at batches 1 and 4; b: sequential only
        let all = [
            moved(&seq, "a", 1),
            moved(&par, "a", 1),
            moved(&seq, "a", 4),
            moved(&par, "a", 4),
            moved(&seq, "b", 1),
            moved(&seq, "b", 4),
        ];
        let svg = render(&all).unwrap().unwrap();
        // the points are the circles; their row is their height
        let rows: Vec<usize> = svg
            .split("<circle")
            .skip(1)
            .filter_map(|t| {
                let cy = t.split("cy=\"").nth(1)?.split('"').next()?;
                Some(cy.parse::<f64>().ok()? as usize / ROW as usize)
            })
            .collect();
        let in_row = |r: usize| rows.iter().filter(|&&x| x == r).count();
        // a: 2 batches x 2 modes x (latency + throughput) + 2 speedups
        assert_eq!(in_row(0), 10, "{rows:?}");
        // b: 2 batches x 1 mode x 2 charts, no speedup
        assert_eq!(in_row(1), 4, "{rows:?}");
        assert_eq!(rows.len(), 14);
    }

    #[test]
    fn the_axes_hold_the_medians_and_the_line_at_one() {
        let sizes = [1, 4, 16];
        let labels: Vec<String> = [0.0, 0.5, 1.0, 2.0, 3.0, -1.0]
            .iter()
            .map(|&x| batch_label(x, &sizes))
            .collect();
        assert_eq!(labels, ["1", "", "4", "16", "", ""]);
        let v = [10.0, 40.0, 20.0];
        assert_eq!(y_range(v.iter().copied(), false), (0.0, 60.0));
        // every speedup below 1: the range still holds 1
        let (lo, hi) = y_range([0.5, 0.8].iter().copied(), true);
        assert!((lo - 0.35).abs() < 1e-12 && (hi - 1.3).abs() < 1e-12);
        let (lo, hi) = y_range([1.2, 2.0].iter().copied(), true);
        assert!((lo - 0.7).abs() < 1e-12 && (hi - 2.6).abs() < 1e-12);
        // six distinct curve colours, then round again
        let c: Vec<RGBColor> = (0..7).map(colour).collect();
        assert_eq!(c[6], c[0]);
        assert!((1..6).all(|i| c[..i].iter().all(|x| *x != c[i])), "{c:?}");
        // nothing to draw: a range still
        let (lo, hi) = y_range(std::iter::empty(), false);
        assert!(lo == 0.0 && hi > 0.0);
    }
}
