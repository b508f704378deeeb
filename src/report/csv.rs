//! One CSV row per cell, numbers unformatted.

use anyhow::Result;

use super::{setting_values, SETTING_COLUMNS};
use crate::record::CellRecord;

/// A figure, or an empty field where it is absent.
fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

pub fn render(cells: &[CellRecord]) -> Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let mut header = vec!["model", "framework", "framework_version"];
    header.extend(SETTING_COLUMNS);
    header.extend([
        "intra_threads",
        "inter_threads",
        "threads_ran",
        "params",
        "macs",
        "iters",
        "min_ms",
        "median_ms",
        "mean_ms",
        "p90_ms",
        "p99_ms",
        "stddev_ms",
        "cv",
        "median_ci_low_ms",
        "median_ci_high_ms",
        "processes",
        "between_process_cv",
        "within_process_cv",
        "busy",
        "other_cores",
        "images_per_s",
        "achieved_gmacs",
        "machine_peak_gmacs",
        "of_machine_peak",
        "gemm_gmacs",
        "speedup",
        "gain_share",
        "machine_ideal_speedup",
        "threads_or_streams_used",
        "ops_in_flight",
        "branch_overlap",
        "ran_sequentially",
        "host",
    ]);
    w.write_record(&header)?;
    for c in cells {
        let l = &c.latency;
        let spread = c.spread();
        // a parallel cell's speedup over its sequential twin, once
        let speedup = super::sequential_twin(c, cells).map(|s| s.latency.median / l.median);
        let mut row = vec![
            c.model.clone(),
            c.framework.clone(),
            c.framework_version.clone(),
        ];
        row.extend(setting_values(c));
        row.extend([
            c.intra_threads.to_string(),
            c.inter_threads.to_string(),
            c.threads_ran()
                .map_or(String::new(), |(_, most)| most.to_string()),
            c.params.to_string(),
            c.macs.to_string(),
            l.n.to_string(),
            l.min.to_string(),
            l.median.to_string(),
            l.mean.to_string(),
            l.p90.to_string(),
            l.p99.to_string(),
            l.stddev.to_string(),
            l.cv.to_string(),
            l.median_ci.0.to_string(),
            l.median_ci.1.to_string(),
            spread.processes.to_string(),
            opt(spread.between_cv),
            spread.within_cv.to_string(),
            c.busy().to_string(),
            opt(c.other_cores()),
            c.images_per_s().to_string(),
            c.achieved_gmacs().to_string(),
            opt(c.machine_peak_gmacs),
            opt(c.of_peak()),
            opt(c.gemm_gmacs),
            opt(speedup),
            opt(speedup.and_then(|x| super::grid::gain_share(x, c.ideal_speedup))),
            opt(c.machine_ideal()),
            c.concurrency()
                .map_or(String::new(), |k| k.tracks.to_string()),
            opt(c.concurrency().map(|k| k.in_flight)),
            opt(c.concurrency().map(|k| k.branch_overlap)),
            c.concurrency()
                .map_or(String::new(), |k| k.sequential().to_string()),
            c.host.clone(),
        ]);
        w.write_record(&row)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
