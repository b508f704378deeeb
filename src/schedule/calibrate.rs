//! One calibration flow for every executor the cost model schedules
//! (libtorch operations, ONNX Runtime segments): time each operation at
//! every intra-op thread and at a lane's threads (the fastest of
//! [`CALIBRATION_PASSES`] passes each), plan, build the plan, time it
//! against the sequential pass in interleaved passes ([`check_passes`]),
//! and settle which runs ([`settle`]). An executor supplies only the
//! passes ([`Calibrated`]).

use anyhow::Result;
use std::time::Instant;

use super::{check_passes, lane_threads, plan, settle, Schedule, ScheduleRecord};
use crate::graph::{Graph, NodeId};
use crate::record::stats::median;

/// Calibration passes per thread count (the fastest time of each
/// operation counts: the first pass of a session pays its allocations).
pub const CALIBRATION_PASSES: usize = 3;

/// A candidate of the interleaved comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate {
    /// Every operation one after another with every intra-op thread: the
    /// executor's baseline.
    Sequential,
    /// The cost model's plan, as the executor built it.
    Plan,
    /// A third candidate the executor times for its record (ONNX Runtime:
    /// its parts one after another, what the boundaries alone cost).
    Extra,
}

/// What an executor does for the calibration flow.
pub trait Calibrated {
    /// One traced pass at `threads` intra-op threads (fewer than the
    /// executor's own: on a lane's threads): per IR node, its time, µs;
    /// zero or not finite where the pass did not time it.
    fn node_times(&mut self, threads: usize) -> Result<Vec<f64>>;
    /// Builds the planned `schedule` to run as [`Candidate::Plan`] (called
    /// for a sequential plan too: the executor may record it).
    fn build(&mut self, schedule: &Schedule) -> Result<()>;
    /// Whether the executor times [`Candidate::Extra`] too.
    fn extra(&self) -> bool {
        false
    }
    /// One untimed pass of `candidate` (the flow times it).
    fn pass(&mut self, candidate: Candidate) -> Result<()>;
}

/// What a calibration found: the plan, and each candidate's median, ms.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub schedule: Schedule,
    pub sequential_ms: Option<f64>,
    pub plan_ms: Option<f64>,
    pub extra_ms: Option<f64>,
}

impl Calibration {
    /// Settles the comparison in `record` ([`settle`]): true where the
    /// plan runs. A plan that is not parallel never runs as a plan.
    pub fn settle(&self, record: &mut ScheduleRecord, against: &str) -> bool {
        match (self.sequential_ms, self.plan_ms) {
            (Some(s), Some(p)) => settle(record, s, p, against),
            _ => false,
        }
    }
}

/// Per node, the fastest of `passes` node-time vectors, not-timed as 0.
pub fn fastest(passes: &[Vec<f64>], nodes: usize) -> Vec<f64> {
    (0..nodes)
        .map(|i| {
            let best = passes
                .iter()
                .filter_map(|p| p.get(i).copied())
                .filter(|c| c.is_finite() && *c > 0.0)
                .fold(f64::INFINITY, f64::min);
            if best.is_finite() {
                best
            } else {
                0.0
            }
        })
        .collect()
}

/// The calibration flow over `exec` on `graph`: `threads` intra-op
/// threads, at most `workers` lanes at once, `overhead_us` per parallel
/// stage.
pub fn calibrate(
    exec: &mut impl Calibrated,
    graph: &Graph,
    threads: usize,
    workers: usize,
    overhead_us: f64,
) -> Result<Calibration> {
    let n = graph.nodes.len();
    let mut timed = |t: usize| -> Result<Vec<f64>> {
        let passes = (0..CALIBRATION_PASSES)
            .map(|_| exec.node_times(t))
            .collect::<Result<Vec<_>>>()?;
        Ok(fastest(&passes, n))
    };
    let at_all = timed(threads)?;
    let at_lane = timed(lane_threads(threads, workers))?;
    let cost = |id: NodeId, t: usize| {
        if t >= threads {
            at_all[id]
        } else {
            at_lane[id]
        }
    };
    let schedule = plan(graph, &cost, threads, workers, overhead_us);
    exec.build(&schedule)?;
    let mut candidates = vec![Candidate::Sequential];
    if schedule.is_parallel() {
        candidates.push(Candidate::Plan);
    }
    if exec.extra() {
        candidates.push(Candidate::Extra);
    }
    let mut calibration = Calibration {
        schedule,
        sequential_ms: None,
        plan_ms: None,
        extra_ms: None,
    };
    if candidates.len() < 2 {
        return Ok(calibration);
    }
    let pass_ms = at_all.iter().sum::<f64>() / 1e3;
    let medians = compare(exec, &candidates, check_passes(pass_ms))?;
    for (c, m) in candidates.iter().zip(medians) {
        *match c {
            Candidate::Sequential => &mut calibration.sequential_ms,
            Candidate::Plan => &mut calibration.plan_ms,
            Candidate::Extra => &mut calibration.extra_ms,
        } = Some(m);
    }
    Ok(calibration)
}

/// `passes` rounds of one timed pass of each of `candidates` in turn (so a
/// shift in the machine's speed falls on all of them): each one's median,
/// ms.
pub fn compare(
    exec: &mut impl Calibrated,
    candidates: &[Candidate],
    passes: usize,
) -> Result<Vec<f64>> {
    let mut times = vec![Vec::with_capacity(passes); candidates.len()];
    for _ in 0..passes {
        for (c, t) in candidates.iter().zip(times.iter_mut()) {
            let start = Instant::now();
            exec.pass(*c)?;
            t.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(times.iter().map(|t| median(t)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::tests::{diamond, id};

    /// An executor whose node times are given (µs at one thread; at more,
    /// `scaling` of that) and which logs every call of the flow.
    struct Logged {
        graph: Graph,
        one: Vec<(&'static str, f64)>,
        scaling: f64,
        extra: bool,
        log: Vec<String>,
    }

    impl Logged {
        fn new(one: &[(&'static str, f64)], scaling: f64, extra: bool) -> Logged {
            Logged {
                graph: diamond(),
                one: one.to_vec(),
                scaling,
                extra,
                log: Vec::new(),
            }
        }
    }

    impl Calibrated for Logged {
        fn node_times(&mut self, threads: usize) -> Result<Vec<f64>> {
            self.log.push(format!("times at {threads}"));
            let first = !self.log[..self.log.len() - 1].contains(self.log.last().unwrap());
            let mut t: Vec<f64> = self
                .graph
                .nodes
                .iter()
                .map(|n| {
                    let one = self
                        .one
                        .iter()
                        .find(|(k, _)| *k == n.name)
                        .map_or(10.0, |c| c.1);
                    if threads >= 2 {
                        one * self.scaling
                    } else {
                        one
                    }
                })
                .collect();
            // the first pass at each count pays its allocations, and one
            // node goes untimed
            if first {
                t.iter_mut().for_each(|c| *c *= 10.0);
                t[id(&self.graph, "add")] = f64::NAN;
            }
            Ok(t)
        }

        fn build(&mut self, schedule: &Schedule) -> Result<()> {
            let kind = if schedule.is_parallel() {
                "parallel"
            } else {
                "sequential"
            };
            self.log.push(format!("build {kind}"));
            Ok(())
        }

        fn extra(&self) -> bool {
            self.extra
        }

        fn pass(&mut self, candidate: Candidate) -> Result<()> {
            self.log.push(format!("{candidate:?}"));
            Ok(())
        }
    }

    const BRANCHES: [(&str, f64); 3] = [("heavy1", 400.0), ("heavy2", 400.0), ("light", 300.0)];

    /// The log of a calibration before its comparison passes.
    fn before_passes() -> Vec<String> {
        let mut want = vec!["times at 2".to_string(); CALIBRATION_PASSES];
        want.extend(vec!["times at 1".to_string(); CALIBRATION_PASSES]);
        want
    }

    #[test]
    fn a_parallel_plan_is_built_and_timed_against_sequential_in_turn() {
        let mut exec = Logged::new(&BRANCHES, 1.0, false);
        let g = diamond();
        let c = calibrate(&mut exec, &g, 2, 2, 20.0).unwrap();
        assert!(c.schedule.is_parallel(), "{c:?}");
        // the fastest pass counts (not the first, ten times slower, nor
        // its untimed node): 1100 µs of branches and four 10 µs nodes
        assert_eq!(c.schedule.sequential_us, 1100.0 + 4.0 * 10.0);
        let mut want = before_passes();
        want.push("build parallel".into());
        for _ in 0..check_passes(1.14) {
            want.extend(["Sequential".to_string(), "Plan".to_string()]);
        }
        assert_eq!(exec.log, want);
        assert!(c.sequential_ms.is_some() && c.plan_ms.is_some());
        assert_eq!(c.extra_ms, None);
    }

    #[test]
    fn an_extra_candidate_is_timed_beside_even_without_a_plan() {
        // perfect scaling: sequential wins, and only the extra is compared
        let mut exec = Logged::new(&BRANCHES, 0.5, true);
        let g = diamond();
        let c = calibrate(&mut exec, &g, 2, 2, 20.0).unwrap();
        assert!(!c.schedule.is_parallel());
        assert_eq!(exec.log[2 * CALIBRATION_PASSES], "build sequential");
        let passes = &exec.log[2 * CALIBRATION_PASSES + 1..];
        assert_eq!(passes.len(), 2 * check_passes(0.57));
        assert!(
            passes.chunks(2).all(|p| p == ["Sequential", "Extra"]),
            "{passes:?}"
        );
        assert!(c.sequential_ms.is_some() && c.extra_ms.is_some());
        assert_eq!(c.plan_ms, None);
        // nothing to settle: the plan never runs
        let mut r = c.schedule.record(&g, "test");
        assert!(!c.settle(&mut r, "x"));
        assert_eq!(r.measured, None);
    }

    #[test]
    fn a_sequential_plan_alone_is_not_timed() {
        let mut exec = Logged::new(&BRANCHES, 0.5, false);
        let c = calibrate(&mut exec, &diamond(), 2, 2, 20.0).unwrap();
        let mut want = before_passes();
        want.push("build sequential".into());
        assert_eq!(exec.log, want);
        assert_eq!((c.sequential_ms, c.plan_ms, c.extra_ms), (None, None, None));
    }

    #[test]
    fn settling_records_the_medians() {
        let g = diamond();
        let c = Calibration {
            schedule: plan(&g, &|_, _| 1.0, 2, 2, 0.0),
            sequential_ms: Some(100.0),
            plan_ms: Some(50.0),
            extra_ms: None,
        };
        let mut r = c.schedule.record(&g, "test");
        assert!(c.settle(&mut r, "x"));
        assert_eq!(r.measured, Some((100.0, 50.0)));
    }

    #[test]
    fn the_fastest_pass_of_each_node_counts() {
        let passes = vec![
            vec![5.0, f64::NAN, 0.0, 7.0],
            vec![3.0, 2.0, 0.0, f64::INFINITY],
            vec![4.0],
        ];
        assert_eq!(fastest(&passes, 5), [3.0, 2.0, 0.0, 7.0, 0.0]);
    }
}
