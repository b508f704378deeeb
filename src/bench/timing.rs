//! A worker's timing loop, apart from everything it times: one session
//! (one cell) warmed up, then timed one pass at a time as the parent asks
//! ([`Command`]), so that the cells a ratio compares take turns pass by
//! pass ([`super::lockstep`]); on a GPU the device compute time after. Each
//! worker process holds one session, so no cell is timed beside another's
//! threads, memory or caches.

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

/// What the parent tells a worker once it is warm ([`super::lockstep`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// Time one pass and report it.
    Pass,
    /// No more passes: measure the device compute time (GPU), trace, report
    /// the cell.
    Finish,
}

/// Times `session` on `input` one pass per [`Command::Pass`] that `next`
/// returns, until [`Command::Finish`]; `sample(ms)` reports each pass as
/// it is timed. `clock` reads a time in ms (the real one in a worker, a
/// fake one in tests); `around(true)` / `around(false)` bracket each timed
/// pass (the load probe reads the machine then). On a GPU the device
/// compute time of `p.iters` passes follows the last.
pub fn time_commanded(
    session: &mut dyn Prepared,
    input: &Array4<f32>,
    p: Protocol,
    next: &mut dyn FnMut() -> Result<Command>,
    clock: &dyn Fn() -> f64,
    sample: &mut dyn FnMut(f64),
    around: &mut dyn FnMut(bool),
) -> Result<Timed> {
    let mut t = Timed {
        samples: Vec::with_capacity(p.iters),
        ..Timed::default()
    };
    while next()? == Command::Pass {
        around(true);
        let start = clock();
        let y = session.run(input)?;
        let ms = clock() - start;
        around(false);
        drop(y);
        t.samples.push(ms);
        sample(ms);
    }
    if p.compute {
        for _ in 0..t.samples.len() {
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

    /// What [`time`] saw: the timing, the session's calls, the progress
    /// reported and the samples reported.
    type Logged = (Result<Timed>, Vec<usize>, Vec<(usize, usize)>, Vec<f64>);

    /// Warm-up, then `passes` commanded passes and Finish.
    fn time(p: Protocol, passes: usize, stop: &AtomicBool) -> Logged {
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
        let mut left = passes;
        let mut next = || {
            Ok(if left == 0 {
                Command::Finish
            } else {
                left -= 1;
                Command::Pass
            })
        };
        let mut reported = vec![];
        let mut brackets = vec![];
        let timed = warm.and_then(|()| {
            time_commanded(
                &mut f,
                &x,
                p,
                &mut next,
                &clock,
                &mut |ms| reported.push(ms),
                &mut |b| brackets.push(b),
            )
        });
        let calls = log.borrow().clone();
        assert_eq!(brackets.len(), 2 * reported.len());
        assert!(
            brackets.chunks(2).all(|b| b == [true, false]),
            "{brackets:?}"
        );
        (timed, calls, progress, reported)
    }

    #[test]
    fn warm_up_then_one_sample_per_pass_asked() {
        let p = Protocol {
            warmup: 2,
            iters: 3,
            compute: true,
        };
        let (t, calls, progress, reported) = time(p, 3, &AtomicBool::new(false));
        let t = t.unwrap();
        // two warm-up passes, three timed, three compute
        assert_eq!(calls, [1, 1, 1, 1, 1, 101, 101, 101]);
        // every sample is the pass's time on the clock, reported as timed
        assert_eq!(t.samples, vec![2.0; 3]);
        assert_eq!(reported, t.samples);
        assert_eq!(t.compute, vec![10.0; 3]);
        assert_eq!(progress, [(1, 5), (2, 5)]);
        // as many passes as asked, not as the protocol planned
        let (t, calls, _, _) = time(p, 5, &AtomicBool::new(false));
        assert_eq!(t.unwrap().samples.len(), 5);
        assert_eq!(calls.iter().filter(|&&c| c == 1).count(), 7);
    }

    #[test]
    fn no_compute_pass_unless_asked() {
        let p = Protocol {
            warmup: 0,
            iters: 2,
            compute: false,
        };
        let (t, calls, _, _) = time(p, 2, &AtomicBool::new(false));
        assert_eq!(calls, [1, 1]);
        assert_eq!(t.unwrap().compute, Vec::<f64>::new());
    }

    #[test]
    fn a_stop_ends_warm_up_with_an_error() {
        let p = Protocol {
            warmup: 1,
            iters: 3,
            compute: false,
        };
        assert!(time(p, 3, &AtomicBool::new(true)).0.is_err());
        // a finish before any pass: no samples
        let (t, calls, _, _) = time(p, 0, &AtomicBool::new(false));
        assert_eq!(calls, [1]);
        assert!(t.unwrap().samples.is_empty());
    }
}
