//! A batch that cannot fit is refused up front with a clear error, before an
//! allocation failure or the out-of-memory killer ends the process.

use anyhow::{bail, Result};

use crate::graph::Graph;

/// `MemAvailable` from /proc/meminfo, in bytes.
pub fn available() -> Option<u64> {
    kib_field("/proc/meminfo", "MemAvailable:")
}

/// A field of /proc/self/status (VmRSS, VmHWM...), in bytes.
pub fn status_bytes(field: &str) -> Option<u64> {
    kib_field("/proc/self/status", field)
}

/// A `Field:   N kB` line of a /proc file, in bytes.
fn kib_field(path: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resident memory of this process now, in MiB.
pub fn rss_mib() -> Option<f64> {
    status_bytes("VmRSS:").map(|b| b as f64 / (1u64 << 20) as f64)
}

/// Peak resident memory of this process so far, in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    status_bytes("VmHWM:").map(|b| b as f64 / (1u64 << 20) as f64)
}

/// A rough lower bound of the memory one prepared graph needs: the weights
/// twice (ours and the framework's), the input and output, and four of the
/// largest activation alive at once, for the whole batch.
pub fn estimate(g: &Graph, batch: usize) -> u64 {
    let weights: u64 = g
        .params
        .values()
        .map(|s| s.iter().product::<usize>() as u64 * 4)
        .sum();
    let largest = g.nodes.iter().map(|n| n.shape.numel()).max().unwrap_or(0) as u64;
    let per_image = (g.input().numel() as u64 + g.num_classes() as u64 + 4 * largest) * 4;
    2 * weights + (batch as u64).saturating_mul(per_image)
}

/// Refuses `batch` (for `sessions` graphs loaded at once) when it cannot fit.
pub fn check(g: &Graph, batch: usize, sessions: usize) -> Result<()> {
    let need = estimate(g, batch).saturating_mul(sessions.max(1) as u64);
    if let Some(have) = available() {
        if need > have {
            let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
            bail!(
                "--batch {batch}: {} at {}x{} needs at least {:.1} GiB, but only {:.1} GiB of memory is available; use a smaller --batch or --size",
                g.name,
                g.input().h,
                g.input().w,
                gib(need),
                gib(have)
            );
        }
    }
    Ok(())
}
