//! A thread that yields (a `time.sleep` in a worker) lets another thread
//! take the next step when the explorer chooses freely, and switching away
//! from it is no preemption: a wait loop that polls a flag and yields ends
//! in every execution, under any preemption bound. (Each number of polls
//! before the write is a trace of its own, so the search still runs one
//! execution per poll count up to `max_branches`.)

use frontrun_engine::{AccessKind, Config, Explorer};

/// Thread 0 polls `flag` and yields until it is set; thread 1 sets it.
/// Returns the executions and whether each ended normally.
fn poll_and_set(config: Config) -> Vec<(Vec<usize>, bool)> {
    const FLAG: u64 = 1;
    let mut x = Explorer::new(2, config).unwrap();
    let mut runs = Vec::new();
    while x.begin_execution().unwrap() {
        let mut flag = false;
        let mut done = [false; 2];
        while let Some(t) = x.schedule().unwrap() {
            if t == 0 {
                x.access(0, FLAG, AccessKind::Read).unwrap();
                if flag {
                    x.finish(0).unwrap();
                    done[0] = true;
                } else {
                    x.yield_now(0).unwrap();
                }
            } else {
                x.access(1, FLAG, AccessKind::Write).unwrap();
                flag = true;
                x.finish(1).unwrap();
                done[1] = true;
            }
        }
        let report = x.end_execution().unwrap();
        runs.push((
            report.schedule,
            report.aborted.is_none() && done == [true, true],
        ));
    }
    runs
}

#[test]
fn a_polling_loop_that_yields_ends_under_full_dpor() {
    let runs = poll_and_set(Config {
        max_branches: 50,
        ..Config::default()
    });
    // Every execution ends, but the one that polls until max_branches.
    assert!(runs.iter().all(|(s, ok)| *ok || s.len() >= 50), "{runs:?}");
    // The first poll yields and the free choice goes to the writer.
    assert_eq!(runs[0].0, vec![0, 1, 0]);
    assert!(runs.iter().any(|(s, _)| s == &vec![1, 0]), "{runs:?}");
}

#[test]
fn switching_away_from_a_yield_costs_no_preemption() {
    for bound in [0, 1, 2] {
        let runs = poll_and_set(Config {
            max_branches: 50,
            preemption_bound: Some(bound),
            ..Config::default()
        });
        assert!(
            runs.iter().all(|(s, ok)| *ok || s.len() >= 50),
            "bound {bound}: {runs:?}"
        );
        assert_eq!(runs[0].0, vec![0, 1, 0], "bound {bound}");
        // Even with no preemption allowed, the writer runs between polls.
        assert!(
            runs.iter().any(|(s, _)| s == &vec![0, 0, 1, 0]),
            "bound {bound}"
        );
    }
}

#[test]
fn yield_is_refused_from_a_thread_without_the_turn() {
    let mut x = Explorer::new(2, Config::default()).unwrap();
    assert!(x.begin_execution().unwrap());
    let t = x.schedule().unwrap().unwrap();
    assert!(x.yield_now(1 - t).is_err());
    assert!(x.yield_now(t).is_ok());
}
