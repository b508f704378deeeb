//! Two reference rates a cell's achieved GMAC/s is read against:
//!
//! - [`machine`]: the machine's physical FMA peak ([`super::fma`]), once per
//!   run: the "% of peak" of every cell;
//! - [`gemm`]: the best GEMM through a framework on a device, once per run
//!   per framework: large single-precision matrix products written as an IR
//!   graph ([`CHAIN`] fully connected layers in a row over a batch of `n`
//!   vectors of `n`: exactly CHAIN x n^3 MACs), so every framework lowers
//!   them to its own GEMM. The median of several runs: host to host on a
//!   CPU, where the chain makes the copies in and out (16 MiB each way at
//!   n = 2048) a quarter of one product's share; device compute time where
//!   the framework separates it (a GPU).

use std::time::Instant;

use anyhow::Result;
use ndarray::Array4;

use crate::frameworks::{self, Framework, PrepareOptions};
use crate::graph::weights::Weights;
use crate::graph::{Graph, Op, ParamRef, Shape};
use crate::record::{Device, Mode, Optimize};

/// Matrix size: big enough to reach a CPU's or GPU's GEMM peak, small
/// enough that the host-device copies matter little on a GPU.
fn size(device: Device) -> usize {
    match device {
        Device::Cpu => 2048,
        Device::Cuda => 8192,
    }
}

/// Matrix products per timed pass: the host copies of the input and the
/// output are paid once for all of them.
pub const CHAIN: usize = 4;

/// The GEMMs as a graph: `[n, n, 1, 1]` in, [`CHAIN`] products of `[n, n]`
/// in a row, `[n, n]` out.
pub fn gemm_graph(n: usize) -> Result<Graph> {
    let mut g = Graph::new("peak-gemm", Shape::new(n, 1, 1));
    let mut x = g.add("flatten", Op::Flatten, &[0])?;
    for i in 0..CHAIN {
        let name = format!("fc{i}");
        x = g.add(
            &name,
            Op::Linear {
                out: n,
                params: ParamRef::whole(&name),
            },
            &[x],
        )?;
    }
    Ok(g)
}

/// The machine's FMA peak for `plan`: on the CPU one core and the cores
/// the run uses (its intra-op threads, at most every core); on a GPU from
/// the device's figures. `None`, with a note, where it cannot be had.
pub fn machine(plan: &crate::record::RunPlan) -> Option<crate::record::env::MachinePeak> {
    let peak = match plan.device {
        Device::Cpu => Ok(super::fma::cpu(
            plan.intra_threads.min(crate::record::env::cores()),
        )),
        Device::Cuda => super::fma::gpu(),
    };
    match peak {
        Ok(p) => {
            eprintln!(
                "machine peak: {:.0} GMAC/s ({}{})",
                p.all_gmacs,
                p.unit,
                match p.one_core_gmacs {
                    Some(one) => format!(", {} core(s); {one:.0} on one", p.cores),
                    None => String::new(),
                }
            );
            Some(p)
        }
        Err(e) => {
            eprintln!("note: no machine peak: {e:#}");
            None
        }
    }
}

/// The peak of each reduced precision of `plan` (bf16, fp16) on the CPU
/// cores the run uses, where the CPU has a unit for it ([`super::fma::Unit::for_precision`]);
/// a note names each precision without one. None on a GPU (no measured or
/// nominal tensor-core figure): such cells show no "% of peak".
pub fn precisions(
    plan: &crate::record::RunPlan,
) -> std::collections::BTreeMap<crate::record::Precision, crate::record::env::MachinePeak> {
    use super::fma::{on_unit, Unit};
    let mut out = std::collections::BTreeMap::new();
    for &p in plan.precision.iter().filter(|p| !p.is_fp32()) {
        if plan.device != Device::Cpu {
            eprintln!("note: no {p} peak on a GPU: its cells show no % of peak");
            continue;
        }
        match Unit::for_precision(p) {
            Ok(unit) => {
                let peak = on_unit(unit, plan.intra_threads.min(crate::record::env::cores()));
                eprintln!(
                    "{p} peak: {:.0} GMAC/s ({}, {} core(s); {:.0} on one)",
                    peak.all_gmacs,
                    peak.unit,
                    peak.cores,
                    peak.one_core_gmacs.unwrap_or(0.0)
                );
                out.insert(p, peak);
            }
            Err(why) => eprintln!("note: no {p} peak: {why}; its cells show no % of peak"),
        }
    }
    out
}

/// GEMM GMAC/s of `fw` on `device` with `intra_threads`: the median of
/// several timed products.
pub fn gemm(fw: &dyn Framework, device: Device, intra_threads: usize) -> Result<f64> {
    let n = size(device);
    let g = gemm_graph(n)?;
    let w = Weights::seeded(&g, 0);
    let opts = PrepareOptions::new(
        device,
        Mode::Sequential,
        Optimize::Default,
        intra_threads,
        1,
        false,
    );
    let mut p = frameworks::prepare(fw, &g, &w, &opts)?;
    let x = Array4::<f32>::from_elem((n, n, 1, 1), 0.5);
    for _ in 0..2 {
        p.run(&x)?;
    }
    let mut times = Vec::new();
    for _ in 0..5 {
        // on a GPU the device compute time: host copies of 2 x 256 MiB would
        // otherwise dominate
        let t = Instant::now();
        let seconds = match p.compute_ms(&x)? {
            Some(ms) => ms / 1e3,
            None => {
                p.run(&x)?;
                t.elapsed().as_secs_f64()
            }
        };
        times.push(seconds);
    }
    Ok(CHAIN as f64 * (n as f64).powi(3) / crate::record::stats::median(&times) / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::analysis::analyse;

    #[test]
    fn the_gemm_graph_has_n_cubed_macs_at_batch_n() {
        let g = gemm_graph(64).unwrap();
        // per sample n*n MACs a product; the batch of n makes it n^3
        assert_eq!(analyse(&g).macs, CHAIN as u64 * 64 * 64);
        assert_eq!(g.num_classes(), 64);
    }
}
