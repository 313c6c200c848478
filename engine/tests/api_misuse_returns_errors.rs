//! Calls out of order return errors; no sequence of calls panics.

mod common;
use common::Rng;
use frontrun_engine::{AccessKind, Config, EngineError, Explorer};

#[test]
fn schedule_before_begin_execution_is_an_error() {
    let mut x = Explorer::new(2, Config::default()).unwrap();
    assert!(matches!(
        x.schedule(),
        Err(EngineError::NoExecution { call: "schedule" })
    ));
    assert!(x.end_execution().is_err());
}

#[test]
fn events_from_a_thread_that_was_not_scheduled_are_rejected() {
    let mut x = Explorer::new(2, Config::default()).unwrap();
    assert!(x.begin_execution().unwrap());
    let t = x.schedule().unwrap().unwrap();
    let other = 1 - t;
    let err = x.access(other, 1, AccessKind::Write).unwrap_err();
    assert!(matches!(err, EngineError::NotScheduled { .. }));
    assert!(err.to_string().contains("only the scheduled thread"));
    assert!(matches!(
        x.access(7, 1, AccessKind::Read),
        Err(EngineError::UnknownThread { thread: 7, .. })
    ));
    assert!(matches!(
        x.begin_execution(),
        Err(EngineError::ExecutionInProgress)
    ));
}

#[test]
fn lock_misuse_is_reported_with_what_to_do() {
    let mut x = Explorer::new(1, Config::default()).unwrap();
    x.begin_execution().unwrap();
    let t = x.schedule().unwrap().unwrap();
    assert!(matches!(
        x.lock_release(t, 5),
        Err(EngineError::LockNotHeld { .. })
    ));
    assert!(matches!(
        x.block_on_lock(t, 5),
        Err(EngineError::LockFree { .. })
    ));
    x.lock_acquire(t, 5).unwrap();
    let err = x.lock_acquire(t, 5).unwrap_err();
    assert!(err.to_string().contains("block_on_lock"), "{err}");
}

#[test]
fn zero_threads_or_too_many_threads_are_rejected() {
    assert!(Explorer::new(0, Config::default()).is_err());
    assert!(Explorer::new(frontrun_engine::MAX_THREADS + 1, Config::default()).is_err());
    assert!(Explorer::replay(2, vec![0, 5], Config::default()).is_err());
}

/// Random call sequences, biased towards the scheduled thread so that deep
/// states (held locks, blocked threads, backtracking) are reached too.
#[test]
fn random_call_sequences_never_panic() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut ok_calls = 0u64;
    let mut err_calls = 0u64;
    for round in 0..300 {
        let n = 1 + rng.below_u64(4) as usize;
        let config = Config {
            preemption_bound: if round % 3 == 0 {
                Some(rng.below_u64(3) as u32)
            } else {
                None
            },
            max_branches: 1 + rng.below_u64(40),
            max_executions: Some(1 + rng.below_u64(20)),
        };
        let mut x = if round % 5 == 0 {
            let schedule = (0..rng.below_u64(6))
                .map(|_| rng.below_u64(n as u64) as usize)
                .collect();
            Explorer::replay(n, schedule, config).unwrap()
        } else {
            Explorer::new(n, config).unwrap()
        };
        let mut current = None;
        let mut running = false;
        for _ in 0..400 {
            let t = if rng.below_u64(4) != 0 {
                current.unwrap_or(0)
            } else {
                rng.below_u64(n as u64 + 1) as usize
            };
            let key = rng.below_u64(3);
            let kind = if rng.below_u64(2) == 0 {
                AccessKind::Read
            } else {
                AccessKind::Write
            };
            let pick = if !running && rng.below_u64(2) == 0 {
                0
            } else {
                rng.below_u64(16)
            };
            let result = match pick {
                0 => x.begin_execution().map(|began| running |= began),
                1..=3 => x.schedule().map(|s| current = s),
                4 | 5 => x.access(t, key, kind),
                6 => x.io_access(t, key, kind),
                7 => x.lock_acquire(t, key),
                8 => x.lock_try_fail(t, key),
                9 => x.lock_release(t, key),
                10 => x.block_on_lock(t, key),
                11 => x.block(t, key),
                12 => x.unblock(rng.below_u64(n as u64 + 1) as usize),
                13 => x.join(t, rng.below_u64(n as u64 + 1) as usize),
                14 => x.finish(t),
                _ => x.end_execution().map(|r| {
                    running = false;
                    // A report's schedule is always a valid replay input.
                    assert!(r.schedule.iter().all(|&s| s < n));
                }),
            };
            match result {
                Ok(()) => ok_calls += 1,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    err_calls += 1;
                }
            }
        }
        let s = x.stats();
        assert!(s.executions_completed + s.executions_aborted <= 20);
    }
    assert!(ok_calls > 20_000, "the sequences should mostly be accepted");
    assert!(err_calls > 10_000, "and sometimes rejected");
}
