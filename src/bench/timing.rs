//! A worker's timing loop, apart from everything it times: every session
//! warmed up, then timed interleaved (A B, then B A, ...) so that drift on a
//! shared machine hits every session alike, one sample per session and
//! iteration; on a GPU the device compute time after, in the same order.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Result};
use ndarray::Array4;

use crate::frameworks::Prepared;

/// The session that runs `step` of timed iteration `i` among `k` sessions:
/// in order on even iterations, reversed on odd ones, so each runs first as
/// often as last.
pub fn slot(i: usize, step: usize, k: usize) -> usize {
    if i.is_multiple_of(2) {
        step
    } else {
        k - 1 - step
    }
}

/// What [`time_sessions`] measured, per session.
#[derive(Debug, Default, PartialEq)]
pub struct Timed {
    /// Host-to-host latency of every timed iteration, ms.
    pub samples: Vec<Vec<f64>>,
    /// Device compute time of every iteration, where asked and reported, ms.
    pub compute: Vec<Vec<f64>>,
    /// `stop` was set before every iteration was timed.
    pub interrupted: bool,
}

/// How long and how often: the loop's parameters.
#[derive(Debug, Clone, Copy)]
pub struct Protocol {
    pub warmup: usize,
    pub iters: usize,
    /// Also time the device compute time (GPU).
    pub compute: bool,
}

/// Warms up and times `sessions` on `input`. `clock` reads a time in ms
/// (the real one in a worker, a fake one in tests); `progress(done, total)`
/// follows every round; `stop` ends the loop after the round in flight (an
/// error during warm-up, a partial result during timing).
pub fn time_sessions(
    sessions: &mut [&mut dyn Prepared],
    input: &Array4<f32>,
    p: Protocol,
    stop: &AtomicBool,
    clock: &dyn Fn() -> f64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Timed> {
    let k = sessions.len();
    let total = (p.warmup + p.iters) * k;
    let mut done = 0;
    for _ in 0..p.warmup {
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted during warm-up");
        }
        for s in sessions.iter_mut() {
            s.run(input)?;
            done += 1;
        }
        progress(done, total);
    }
    let mut t = Timed {
        samples: vec![Vec::with_capacity(p.iters); k],
        compute: vec![Vec::new(); k],
        interrupted: false,
    };
    for i in 0..p.iters {
        if stop.load(Ordering::SeqCst) {
            t.interrupted = true;
            break;
        }
        for step in 0..k {
            let j = slot(i, step, k);
            let start = clock();
            let y = sessions[j].run(input)?;
            t.samples[j].push(clock() - start);
            drop(y);
            done += 1;
        }
        progress(done, total);
    }
    if p.compute {
        for i in 0..p.iters {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            for step in 0..k {
                let j = slot(i, step, k);
                if let Some(ms) = sessions[j].compute_ms(input)? {
                    t.compute[j].push(ms);
                }
            }
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    use ndarray::Array2;

    use super::*;

    /// A session that logs its calls and takes `id + 1` ms of a fake clock.
    struct Fake {
        id: usize,
        log: Log,
        now: Rc<Cell<f64>>,
    }

    impl Prepared for Fake {
        fn run(&mut self, _: &Array4<f32>) -> Result<Array2<f32>> {
            self.log.borrow_mut().push(self.id);
            self.now.set(self.now.get() + (self.id + 1) as f64);
            Ok(Array2::zeros((1, 1)))
        }
        fn compute_ms(&mut self, _: &Array4<f32>) -> Result<Option<f64>> {
            self.log.borrow_mut().push(100 + self.id);
            Ok(Some(10.0 * self.id as f64))
        }
        fn trace(&mut self, _: &Array4<f32>) -> Result<crate::record::Timeline> {
            anyhow::bail!("not traced")
        }
    }

    type Log = Rc<RefCell<Vec<usize>>>;

    fn fakes(k: usize) -> (Vec<Fake>, Log, Rc<Cell<f64>>) {
        let log = Rc::new(RefCell::new(vec![]));
        let now = Rc::new(Cell::new(0.0));
        let v = (0..k)
            .map(|id| Fake {
                id,
                log: log.clone(),
                now: now.clone(),
            })
            .collect();
        (v, log, now)
    }

    fn time(
        k: usize,
        p: Protocol,
        stop: &AtomicBool,
    ) -> (Result<Timed>, Vec<usize>, Vec<(usize, usize)>) {
        let (mut v, log, now) = fakes(k);
        let mut sessions: Vec<&mut dyn Prepared> =
            v.iter_mut().map(|f| f as &mut dyn Prepared).collect();
        let mut progress = vec![];
        let clock = || now.get();
        let x = Array4::zeros((1, 3, 1, 1));
        let t = time_sessions(&mut sessions, &x, p, stop, &clock, &mut |d, t| {
            progress.push((d, t))
        });
        let calls = log.borrow().clone();
        (t, calls, progress)
    }

    #[test]
    fn slots_alternate_a_b_then_b_a() {
        let order: Vec<usize> = (0..4)
            .flat_map(|i| (0..2).map(move |s| slot(i, s, 2)))
            .collect();
        assert_eq!(order, [0, 1, 1, 0, 0, 1, 1, 0]);
        let three: Vec<usize> = (0..2)
            .flat_map(|i| (0..3).map(move |s| slot(i, s, 3)))
            .collect();
        assert_eq!(three, [0, 1, 2, 2, 1, 0]);
    }

    #[test]
    fn warm_up_then_interleaved_samples_each_to_its_own_session() {
        let p = Protocol {
            warmup: 2,
            iters: 3,
            compute: true,
        };
        let (t, calls, progress) = time(2, p, &AtomicBool::new(false));
        let t = t.unwrap();
        // warm-up in order, timed A B / B A / A B, compute in the same order
        assert_eq!(
            calls,
            [0, 1, 0, 1, 0, 1, 1, 0, 0, 1, 100, 101, 101, 100, 100, 101]
        );
        // every sample is the time of its own session
        assert_eq!(t.samples, [vec![1.0; 3], vec![2.0; 3]]);
        assert_eq!(t.compute, [vec![0.0; 3], vec![10.0; 3]]);
        assert!(!t.interrupted);
        assert_eq!(progress, [(2, 10), (4, 10), (6, 10), (8, 10), (10, 10)]);
    }

    #[test]
    fn no_compute_pass_unless_asked() {
        let p = Protocol {
            warmup: 0,
            iters: 2,
            compute: false,
        };
        let (t, calls, _) = time(2, p, &AtomicBool::new(false));
        assert_eq!(calls, [0, 1, 1, 0]);
        assert_eq!(t.unwrap().compute, [Vec::<f64>::new(), vec![]]);
    }

    #[test]
    fn a_stop_ends_warm_up_with_an_error_and_timing_with_what_it_has() {
        let stop = AtomicBool::new(true);
        let p = Protocol {
            warmup: 1,
            iters: 3,
            compute: false,
        };
        assert!(time(2, p, &stop).0.is_err());
        let p = Protocol {
            warmup: 0,
            iters: 3,
            compute: false,
        };
        let (t, calls, _) = time(2, p, &stop);
        let t = t.unwrap();
        assert!(t.interrupted && calls.is_empty());
        assert_eq!(t.samples, [Vec::<f64>::new(), vec![]]);
    }
}
