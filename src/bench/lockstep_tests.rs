//! Tests of `lockstep`.

use super::*;
use crate::record::placement::Wanted;

/// A job for the scripted workers below.
fn job() -> Job {
    let file: crate::record::RunFile = crate::report::fixture("quick-cpu-2core.json");
    Job {
        model: "resnet50".into(),
        framework: "ort".into(),
        mode: crate::record::Mode::Sequential,
        setting: file.plan.settings("ort")[0],
        process: 1,
        slot: 0,
        plan: file.plan,
        models_dir: None,
        verbose: false,
        gemm_gmacs: None,
        schedule: None,
        trace: false,
    }
}

/// A worker that is a shell script: it reads the job, then answers
/// each command line as `body` says (`$n` counts the commands).
fn scripted(body: &str, timeout: Duration) -> Result<Live, Box<Failure>> {
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!("read job; n=0; {body}"));
    Live::spawn(&job(), c, timeout)
}

fn cell_line() -> String {
    let c = crate::record::test_cell(&[&[1.0]], true);
    serde_json::to_string(&Message::Cell(Box::new(c))).unwrap()
}

/// The protocol of a live worker: warm-up progress, ready, one sample
/// per pass (lines that are not messages skipped), the cell on finish.
#[test]
fn a_live_worker_answers_pass_by_pass() {
    let script = format!(
        r#"echo '{{"Progress":{{"done":1,"total":2}}}}'; echo '"Ready"'
        while read cmd; do n=$((n+1))
          case "$cmd" in
            '"Pass"') echo 'not a message'; sleep 0.05; echo "{{\"Sample\":$n.5}}" ;;
            '"Finish"') echo '{cell}'; exit 0 ;;
          esac
        done"#,
        cell = cell_line()
    );
    let mut w = scripted(&script, Duration::from_secs(20)).unwrap();
    let bar = ProgressBar::hidden();
    w.ready(&bar).unwrap();
    assert_eq!(bar.length(), Some(2));
    assert_eq!(bar.position(), 1);
    assert_eq!(w.pass().unwrap(), 1.5);
    assert_eq!(w.pass().unwrap(), 2.5);
    let cell = w.finish().unwrap();
    assert_eq!(cell.samples_ms, [1.0]);
}

/// Every way a worker can fail names its cause, with its stderr's
/// last lines, and the worker is gone after.
#[test]
fn a_failing_worker_is_named_with_its_cause() {
    let s = Duration::from_secs(20);
    let bar = ProgressBar::hidden();
    // dies before it is ready, after some stderr
    let mut w = scripted("for k in $(seq 1 30); do echo line $k >&2; done; exit 3", s).unwrap();
    let f = w.ready(&bar).unwrap_err();
    assert_eq!(f.cause, "worker exited with code 3 without a result");
    assert_eq!(f.stderr_tail.len(), STDERR_TAIL);
    assert_eq!(f.stderr_tail.last().map(String::as_str), Some("line 30"));
    assert_eq!(f.process, Some(1));
    // its own error message
    let mut w = scripted(r#"echo '{"Error":"no such model"}'; exec sleep 5"#, s).unwrap();
    assert_eq!(w.ready(&bar).unwrap_err().cause, "no such model");
    // a pass answered out of turn
    let mut w = scripted(
        r#"echo '"Ready"'; read cmd; echo '"Ready"'; exec sleep 5"#,
        s,
    )
    .unwrap();
    w.ready(&bar).unwrap();
    let f = w.pass().unwrap_err();
    assert_eq!(f.cause, "the worker answered a pass with something else");
    // finish answered with a sample
    let mut w = scripted(r#"echo '"Ready"'; read cmd; echo '{"Sample":1.0}'"#, s).unwrap();
    w.ready(&bar).unwrap();
    let f = w.finish().unwrap_err();
    assert_eq!(f.cause, "the worker answered finish with something else");
    // ready answered with a sample
    let mut w = scripted(r#"echo '{"Sample":1.0}'; exec sleep 5"#, s).unwrap();
    let f = w.ready(&bar).unwrap_err();
    assert!(f.cause.contains("out of turn"), "{}", f.cause);
    // the cell, then a failing exit
    let script = format!(
        r#"echo '"Ready"'; read cmd; echo '{}'; exit 4"#,
        cell_line()
    );
    let mut w = scripted(&script, s).unwrap();
    w.ready(&bar).unwrap();
    let f = w.finish().unwrap_err();
    assert_eq!(f.cause, "worker exited with code 4 without a result");
    // silent past the timeout
    let mut w = scripted("exec sleep 30", Duration::from_millis(300)).unwrap();
    let took = Instant::now();
    let f = w.ready(&bar).unwrap_err();
    assert_eq!(f.cause, "timed out after 0 s");
    assert!(took.elapsed() >= Duration::from_millis(300));
}

fn rounds(min: usize, max: usize, target: Option<f64>, budget_s: Option<u64>) -> Rounds {
    Rounds {
        min,
        max,
        target,
        budget: budget_s.map(Duration::from_secs),
        between: None,
    }
}

fn at(half_width: f64) -> Option<Precision> {
    Some(Precision {
        half_width,
        mean_variance: 1e-4,
    })
}

#[test]
fn the_stopping_rule() {
    let s = Duration::from_secs;
    // the minimum first, whatever the width
    let r = rounds(10, 100, Some(0.02), Some(60));
    assert!(!r.enough(9, s(0), at(0.001)));
    // then until the target is reached ...
    assert!(!r.enough(10, s(1), at(0.021)));
    assert!(r.enough(10, s(1), at(0.02)));
    // ... or the budget is spent, or the cap reached
    assert!(r.enough(11, s(60), at(0.5)));
    assert!(r.enough(100, s(1), at(0.5)));
    assert!(!r.enough(99, s(59), at(0.5)));
    // no target, or no ratio to reach it on: the minimum is all
    assert!(rounds(10, 100, None, None).enough(10, s(0), at(0.5)));
    assert!(r.enough(10, s(0), None));
    assert!(!rounds(10, 100, None, None).enough(9, s(0), None));
    // ... or once the process's mean is known better than the
    // processes differ: more rounds would not narrow the interval
    let r = Rounds {
        between: Some(2e-4),
        ..r
    };
    assert!(r.enough(10, s(1), at(0.5)));
    let r = Rounds {
        between: Some(0.5e-4),
        ..r
    };
    assert!(!r.enough(10, s(1), at(0.5)));
    assert!(!r.enough(9, s(1), at(0.5)));
}

#[test]
fn a_workers_stderr_tail_keeps_its_last_lines() {
    let mut tail = VecDeque::new();
    for k in 0..5 {
        keep_last(&mut tail, k.to_string(), 3);
    }
    assert_eq!(tail, ["2", "3", "4"]);
}

#[test]
fn widest_half_width_over_pairs() {
    // a: 10 ms every round; b: 10 ms, c: alternately 9 and 11 ms
    let a = vec![10.0; 4];
    let b = vec![10.0; 4];
    let c = vec![9.0, 11.0, 9.0, 11.0];
    let samples = vec![a, b, c];
    assert_eq!(widest(&samples, &[(0, 1)]).unwrap().half_width, 0.0);
    let p = widest(&samples, &[(0, 1), (0, 2)]).unwrap();
    let w = p.half_width;
    // logs of 10/9 and 10/11: mean m, sd s over 4, t(3) = 3.182
    let logs = [(10f64 / 9.0).ln(), (10f64 / 11.0).ln()];
    let m = (logs[0] + logs[1]) / 2.0;
    let sd = (2.0 * ((logs[0] - m).powi(2) + (logs[1] - m).powi(2)) / 3.0).sqrt();
    let half = 3.182 * sd / 2.0;
    let want = ((m + half).exp() - m.exp()).max(m.exp() - (m - half).exp()) / m.exp();
    assert!((w - want).abs() < 1e-12, "{w} vs {want}");
    assert!((p.mean_variance - sd * sd / 4.0).abs() < 1e-12, "{p:?}");
    // fewer than two rounds: nothing to say
    assert_eq!(widest(&[vec![1.0], vec![2.0]], &[(0, 1)]), None);
    assert_eq!(widest(&samples, &[]), None);
}

/// Originals start before the repeats that run their schedule, whatever
/// the order the members come in; the rest keep theirs.
#[test]
fn originals_start_before_their_repeats() {
    let member = |schedule_of| Member {
        job: job(),
        env: vec![],
        bar: ProgressBar::hidden(),
        schedule_of,
    };
    let members = [member(Some(2)), member(None), member(None), member(Some(1))];
    assert_eq!(start_order(&members), [1, 2, 0, 3]);
    assert_eq!(start_order(&members[1..3]), [0, 1]);
}

/// A schedule the cost model chose, as a worker reports it.
fn chosen(stages: usize) -> ScheduleRecord {
    ScheduleRecord {
        scheduler: "speedbench cost model over libtorch operations".into(),
        stages,
        parallel_stages: vec![],
        predicted_ms: 70.0,
        predicted_sequential_ms: 72.0,
        measured: Some((80.0, 78.0)),
        boundary: None,
        segments: None,
        chosen: "cost model".into(),
        ran: vec![],
    }
}

/// A worker that calibrated says which schedule it chose before it is
/// ready; the parent hands it to the repeat of that cell, which has none
/// of its own, and never over a schedule the repeat already has.
#[test]
fn a_calibrated_schedule_goes_to_the_repeat() {
    let line = serde_json::to_string(&Message::Schedule(Box::new(chosen(19)))).unwrap();
    let script = format!(r#"echo '{line}'; echo '"Ready"'; exec sleep 5"#);
    let s = Duration::from_secs(20);
    let mut original = scripted(&script, s).unwrap();
    assert_eq!(original.calibrated, None);
    original.ready(&ProgressBar::hidden()).unwrap();
    assert_eq!(original.calibrated, Some(chosen(19)));
    // a worker that did not calibrate has nothing to hand over
    let mut plain = scripted(r#"echo '"Ready"'; exec sleep 5"#, s).unwrap();
    plain.ready(&ProgressBar::hidden()).unwrap();
    assert_eq!(plain.calibrated, None);
    let live = vec![Some(original), Some(plain), None];
    let member = |schedule_of, own: Option<ScheduleRecord>| {
        let mut job = job();
        job.schedule = own;
        Member {
            job,
            env: vec![],
            bar: ProgressBar::hidden(),
            schedule_of,
        }
    };
    assert_eq!(
        handed_over(&member(Some(0), None), &live).schedule,
        Some(chosen(19))
    );
    assert_eq!(
        handed_over(&member(Some(0), Some(chosen(7))), &live).schedule,
        Some(chosen(7))
    );
    for nothing in [
        member(None, None),
        member(Some(1), None),
        member(Some(2), None),
        member(Some(9), None),
    ] {
        assert_eq!(handed_over(&nothing, &live).schedule, None);
    }
}

/// A group of an original and its repeat: the original starts first and
/// calibrates, the repeat starts with its schedule, both time the rounds
/// asked for and report their cells; with the stop flag set before, no
/// worker starts and each member says so.
#[test]
fn a_group_starts_originals_first_and_times_its_rounds() {
    let schedule = serde_json::to_string(&Message::Schedule(Box::new(chosen(19)))).unwrap();
    let member = |framework: &str, schedule_of| {
        let mut job = job();
        job.framework = framework.into();
        Member {
            job,
            env: vec![],
            bar: ProgressBar::hidden(),
            schedule_of,
        }
    };
    let members = [member("torch#2", Some(1)), member("torch", None)];
    let mut started: Vec<(String, Option<ScheduleRecord>)> = Vec::new();
    let mut start = |job: &Job, _: &[(&str, &str)]| {
        started.push((job.framework.clone(), job.schedule.clone()));
        let calibrates = if job.schedule.is_none() {
            format!("echo '{schedule}'; ")
        } else {
            String::new()
        };
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!("read job; n=0; {calibrates}{}", answering()));
        Live::spawn(job, c, Duration::from_secs(20))
    };
    let rounds = Rounds {
        min: 3,
        max: 3,
        target: None,
        budget: None,
        between: None,
    };
    let stop = AtomicBool::new(false);
    let mut gate = Gate::new(Wanted::Any);
    let results = run_group(&members, &[(0, 1)], rounds, 7, &stop, &mut gate, &mut start);
    assert_eq!(
        started,
        [
            ("torch".to_string(), None),
            ("torch#2".to_string(), Some(chosen(19)))
        ]
    );
    assert_eq!(results.len(), 2);
    for (r, m) in results.iter().zip(&members) {
        let cell = r.as_ref().unwrap();
        assert_eq!(cell.sample_round, [0]);
        // the probe before its one timed round, where the probes gave a
        // figure (two cores, a partner thread that answered)
        let p = &cell.processes[0];
        // two CPUs: three probes, one at least answered (a sanity bound
        // like the probe's own test, not a timing claim)
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(p.core_to_core_ns.is_some(), cpus >= 2, "{p:?}");
        let probed = usize::from(p.core_to_core_ns.is_some());
        assert_eq!(p.round_core_to_core_ns.len(), probed, "{p:?}");
        assert!(!cell.interrupted);
        assert_eq!(m.bar.position(), 3);
    }
    // stopped before the first start: nothing starts, each member fails
    started.clear();
    let stop = AtomicBool::new(true);
    let mut never = |job: &Job, _: &[(&str, &str)]| -> Result<Live, Box<Failure>> {
        panic!("started {}", job.framework)
    };
    let results = run_group(&members, &[(0, 1)], rounds, 7, &stop, &mut gate, &mut never);
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(
            r.as_ref().unwrap_err().cause,
            "interrupted before it started"
        );
    }
}

/// Two members, each a worker that answers every pass, started by
/// `start` below.
fn pair() -> [Member; 2] {
    [0, 1].map(|_| Member {
        job: job(),
        env: vec![],
        bar: ProgressBar::hidden(),
        schedule_of: None,
    })
}

/// A worker's script once it has its job: ready, then sample `1N.0` for
/// the Nth pass, and the cell of [`cell_line`] on finish.
fn answering() -> String {
    format!(
        r#"echo '"Ready"'
        while read cmd; do n=$((n+1))
          case "$cmd" in
            '"Pass"') echo "{{\"Sample\":1$n.0}}" ;;
            '"Finish"') echo '{cell}'; exit 0 ;;
          esac
        done"#,
        cell = cell_line()
    )
}

fn start(_: &Job, _: &[(&str, &str)]) -> Result<Live, Box<Failure>> {
    scripted(&answering(), Duration::from_secs(20))
}

const THREE: Rounds = Rounds {
    min: 3,
    max: 3,
    target: None,
    budget: None,
    between: None,
};

/// A run that wants the cores near times its rounds only after a probe
/// that read them near: the far probes before are waited out, none of
/// them is a round's, and each process says what it was held for and
/// how long it waited.
#[test]
fn a_gate_holds_each_round_until_the_cores_are_where_wanted() {
    let mut probes = [170.0, 35.0, 165.0, 168.0, 34.0, 172.0, 36.0].into_iter();
    let mut gate = Gate::with(
        Wanted::Near,
        Duration::from_secs(5),
        Duration::from_millis(2),
        move || probes.next(),
    );
    let stop = AtomicBool::new(false);
    let results = run_group(&pair(), &[(0, 1)], THREE, 7, &stop, &mut gate, &mut start);
    for r in &results {
        let cell = r.as_ref().unwrap();
        let p = &cell.processes[0];
        assert_eq!(p.placement, Wanted::Near);
        // the median of the three rounds' probes: 34, 35, 36
        assert_eq!(p.core_to_core_ns, Some(35.0), "{p:?}");
        assert_eq!(p.round_core_to_core_ns, [Some(35.0)]);
        // three far probes waited out, 2 ms apart
        let waited = p.placement_wait_s.unwrap();
        assert!(waited >= 0.006, "{waited}");
        assert!(!cell.interrupted);
    }
    // any: no wait recorded, every probe a round's
    let mut probes = [170.0, 35.0, 165.0].into_iter();
    let mut gate = Gate::with(Wanted::Any, Duration::ZERO, Duration::ZERO, move || {
        probes.next()
    });
    let results = run_group(&pair(), &[(0, 1)], THREE, 7, &stop, &mut gate, &mut start);
    let p = &results[0].as_ref().unwrap().processes[0];
    assert_eq!(
        (p.placement, p.placement_wait_s, p.core_to_core_ns),
        (Wanted::Any, None, Some(165.0))
    );
}

/// Where the cores never come near, the group gives up after the gate's
/// patience: its cells, short of their minimum, fail with the reason, and
/// no worker is left behind.
#[test]
fn a_gate_that_waits_in_vain_fails_the_group_with_its_reason() {
    let mut gate = Gate::with(
        Wanted::Near,
        Duration::from_millis(30),
        Duration::from_millis(5),
        || Some(170.0),
    );
    let stop = AtomicBool::new(false);
    let results = run_group(&pair(), &[(0, 1)], THREE, 7, &stop, &mut gate, &mut start);
    assert_eq!(results.len(), 2);
    for r in &results {
        let cause = &r.as_ref().unwrap_err().cause;
        assert!(
            cause.starts_with("--placement near: the cores were not near in ")
                && cause.contains("(the probes read 170-170 ns apart; near is 0-110 ns)"),
            "{cause}"
        );
    }
    // told to stop while it waits: interrupted, not failed
    let stop = AtomicBool::new(false);
    let flag = &stop;
    let mut gate = Gate::with(
        Wanted::Near,
        Duration::from_secs(60),
        Duration::from_millis(1),
        || {
            flag.store(true, Ordering::SeqCst);
            Some(170.0)
        },
    );
    let results = run_group(&pair(), &[(0, 1)], THREE, 7, &stop, &mut gate, &mut start);
    for r in &results {
        assert!(r.as_ref().unwrap().interrupted);
    }
}

/// A gate that gives up, or a stop while it waits, after a group's
/// minimum keeps the cells: they are whole, not failed or interrupted.
#[test]
fn past_the_minimum_a_gate_that_gives_up_keeps_the_cells() {
    let more = Rounds {
        min: 1,
        max: 10,
        target: Some(1e-9),
        budget: None,
        between: None,
    };
    let probes = std::cell::Cell::new(0);
    let mut gate = Gate::with(
        Wanted::Near,
        Duration::from_millis(20),
        Duration::from_millis(5),
        || {
            probes.set(probes.get() + 1);
            Some(if probes.get() == 1 { 35.0 } else { 170.0 })
        },
    );
    let stop = AtomicBool::new(false);
    let results = run_group(&pair(), &[(0, 1)], more, 7, &stop, &mut gate, &mut start);
    for r in &results {
        let cell = r.as_ref().expect("a whole cell");
        assert!(!cell.interrupted);
    }
    let flag = &stop;
    let probes = std::cell::Cell::new(0);
    let mut gate = Gate::with(
        Wanted::Near,
        Duration::from_secs(60),
        Duration::ZERO,
        || {
            probes.set(probes.get() + 1);
            if probes.get() > 1 {
                flag.store(true, Ordering::SeqCst);
            }
            Some(if probes.get() == 1 { 35.0 } else { 170.0 })
        },
    );
    let results = run_group(&pair(), &[(0, 1)], more, 7, &stop, &mut gate, &mut start);
    for r in &results {
        assert!(!r.as_ref().unwrap().interrupted);
    }
}
