//! The results table, as a terminal table or markdown.

use tabled::settings::Style;
use tabled::{Table, Tabled};

use super::speedup;
use crate::bench::record::CellRecord;

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "model")]
    model: String,
    #[tabled(rename = "params (M)")]
    params: String,
    #[tabled(rename = "GMACs")]
    gmacs: String,
    #[tabled(rename = "framework")]
    framework: String,
    #[tabled(rename = "device")]
    device: String,
    #[tabled(rename = "mode")]
    mode: String,
    #[tabled(rename = "batch")]
    batch: usize,
    #[tabled(rename = "size")]
    size: usize,
    #[tabled(rename = "median ms")]
    median: String,
    #[tabled(rename = "p90 ms")]
    p90: String,
    #[tabled(rename = "images/s")]
    ips: String,
    #[tabled(rename = "par/seq speedup")]
    speedup: String,
}

fn rows(cells: &[CellRecord]) -> Vec<Row> {
    cells
        .iter()
        .map(|c| Row {
            model: c.model.clone(),
            params: format!("{:.2}", c.params as f64 / 1e6),
            gmacs: format!("{:.2}", c.macs as f64 / 1e9),
            framework: c.framework.clone(),
            device: c.device.to_string(),
            mode: c.mode.to_string(),
            batch: c.batch,
            size: c.size,
            median: format!("{:.2}", c.latency.median),
            p90: format!("{:.2}", c.latency.p90),
            ips: format!("{:.1}", c.images_per_s()),
            speedup: speedup(c, cells).map_or(String::new(), |s| format!("{s:.2}x")),
        })
        .collect()
}

pub fn terminal(cells: &[CellRecord]) -> String {
    Table::new(rows(cells)).with(Style::rounded()).to_string()
}

pub fn markdown(cells: &[CellRecord]) -> String {
    Table::new(rows(cells)).with(Style::markdown()).to_string()
}
