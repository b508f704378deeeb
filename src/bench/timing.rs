//! A worker's timing loop, apart from everything it times: one session
//! (one cell) warmed up, then timed, one sample per iteration; on a GPU the
//! device compute time after. Each worker process holds one session, so no
//! cell is timed beside another's threads, memory or caches.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Result};
use ndarray::Array4;

use crate::frameworks::Prepared;

/// What [`time_session`] measured.
#[derive(Debug, Default, PartialEq)]
pub struct Timed {
    /// Host-to-host latency of every timed iteration, ms.
    pub samples: Vec<f64>,
    /// Device compute time of every iteration, where asked and reported, ms.
    pub compute: Vec<f64>,
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

/// Runs `p.warmup` untimed passes; `stop` ends them with an error.
/// `progress(done, total)` follows every pass (of warm-up and timing).
pub fn warm_up(
    session: &mut dyn Prepared,
    input: &Array4<f32>,
    p: Protocol,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<()> {
    for i in 0..p.warmup {
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted during warm-up");
        }
        session.run(input)?;
        progress(i + 1, p.warmup + p.iters);
    }
    Ok(())
}

/// Times `session` on `input` after its warm-up. `clock` reads a time in
/// ms (the real one in a worker, a fake one in tests); `stop` ends the loop
/// after the pass in flight, with what it has.
pub fn time_session(
    session: &mut dyn Prepared,
    input: &Array4<f32>,
    p: Protocol,
    stop: &AtomicBool,
    clock: &dyn Fn() -> f64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Timed> {
    let mut t = Timed {
        samples: Vec::with_capacity(p.iters),
        ..Timed::default()
    };
    for i in 0..p.iters {
        if stop.load(Ordering::SeqCst) {
            t.interrupted = true;
            break;
        }
        let start = clock();
        let y = session.run(input)?;
        t.samples.push(clock() - start);
        drop(y);
        progress(p.warmup + i + 1, p.warmup + p.iters);
    }
    if p.compute {
        for _ in 0..p.iters {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            if let Some(ms) = session.compute_ms(input)? {
                t.compute.push(ms);
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

    /// A session that logs its calls (1 a pass, 101 a compute timing) and
    /// takes 2 ms of a fake clock a pass.
    struct Fake {
        log: Rc<RefCell<Vec<usize>>>,
        now: Rc<Cell<f64>>,
    }

    impl Prepared for Fake {
        fn run(&mut self, _: &Array4<f32>) -> Result<Array2<f32>> {
            self.log.borrow_mut().push(1);
            self.now.set(self.now.get() + 2.0);
            Ok(Array2::zeros((1, 1)))
        }
        fn compute_ms(&mut self, _: &Array4<f32>) -> Result<Option<f64>> {
            self.log.borrow_mut().push(101);
            Ok(Some(10.0))
        }
        fn trace(&mut self, _: &Array4<f32>) -> Result<crate::record::Timeline> {
            anyhow::bail!("not traced")
        }
    }

    fn time(p: Protocol, stop: &AtomicBool) -> (Result<Timed>, Vec<usize>, Vec<(usize, usize)>) {
        let log = Rc::new(RefCell::new(vec![]));
        let now = Rc::new(Cell::new(0.0));
        let mut f = Fake {
            log: log.clone(),
            now: now.clone(),
        };
        let mut progress = vec![];
        let clock = || now.get();
        let x = Array4::zeros((1, 3, 1, 1));
        let warm = warm_up(&mut f, &x, p, stop, &mut |d, t| progress.push((d, t)));
        let timed = warm.and_then(|()| {
            time_session(&mut f, &x, p, stop, &clock, &mut |d, t| {
                progress.push((d, t))
            })
        });
        let calls = log.borrow().clone();
        (timed, calls, progress)
    }

    #[test]
    fn warm_up_then_one_sample_per_iteration() {
        let p = Protocol {
            warmup: 2,
            iters: 3,
            compute: true,
        };
        let (t, calls, progress) = time(p, &AtomicBool::new(false));
        let t = t.unwrap();
        // two warm-up passes, three timed, three compute
        assert_eq!(calls, [1, 1, 1, 1, 1, 101, 101, 101]);
        // every sample is the pass's time on the clock
        assert_eq!(t.samples, vec![2.0; 3]);
        assert_eq!(t.compute, vec![10.0; 3]);
        assert!(!t.interrupted);
        assert_eq!(progress, [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]);
    }

    #[test]
    fn no_compute_pass_unless_asked() {
        let p = Protocol {
            warmup: 0,
            iters: 2,
            compute: false,
        };
        let (t, calls, _) = time(p, &AtomicBool::new(false));
        assert_eq!(calls, [1, 1]);
        assert_eq!(t.unwrap().compute, Vec::<f64>::new());
    }

    #[test]
    fn a_stop_ends_warm_up_with_an_error_and_timing_with_what_it_has() {
        let stop = AtomicBool::new(true);
        let p = Protocol {
            warmup: 1,
            iters: 3,
            compute: false,
        };
        assert!(time(p, &stop).0.is_err());
        let p = Protocol {
            warmup: 0,
            iters: 3,
            compute: true,
        };
        let (t, calls, _) = time(p, &stop);
        let t = t.unwrap();
        assert!(t.interrupted && calls.is_empty());
        assert_eq!(t.samples, Vec::<f64>::new());
        assert_eq!(t.compute, Vec::<f64>::new());
    }
}
