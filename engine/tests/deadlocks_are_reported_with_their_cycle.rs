//! Deadlocks are reported with their wait-for cycle.

use frontrun_engine::model::{enumerate, explore, programs};
use frontrun_engine::{Config, WaitTarget};

#[test]
fn abba_lock_order_deadlock_is_found_with_its_cycle() {
    let e = explore(&programs::abba(), Config::default()).unwrap();
    let deadlocked: Vec<_> = e
        .executions
        .iter()
        .filter_map(|x| x.report.deadlock.as_ref())
        .collect();
    assert!(!deadlocked.is_empty(), "the ABBA order must deadlock");
    let d = deadlocked[0];
    assert_eq!(d.cycle.len(), 2);
    let mut cycle = d.cycle.clone();
    cycle.sort_by_key(|w| w.thread);
    assert_eq!(cycle[0].holds, vec![0]);
    assert_eq!(cycle[0].waits_for, WaitTarget::Lock(1));
    assert_eq!(cycle[1].holds, vec![1]);
    assert_eq!(cycle[1].waits_for, WaitTarget::Lock(0));
    let message = d.to_string();
    assert!(
        message.contains("thread 0 holds lock 0x0 and waits for lock 0x1"),
        "{message}"
    );
    assert_eq!(e.stats.deadlocks as usize, deadlocked.len());
    // Same traces as the oracle: T0 first, T1 first, and the deadlock.
    let oracle: std::collections::BTreeSet<_> = enumerate(&programs::abba(), None)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(e.traces(), oracle);
    assert_eq!(e.executions.len(), oracle.len());
}

#[test]
fn consistent_lock_order_never_deadlocks() {
    let e = explore(&programs::ordered_locks(), Config::default()).unwrap();
    assert_eq!(e.executions.len(), 2);
    assert!(e.executions.iter().all(|x| x.report.deadlock.is_none()));
    assert_eq!(e.stats.deadlocks, 0);
}

#[test]
fn a_lock_cycle_is_seen_the_moment_it_closes() {
    use frontrun_engine::Explorer;
    // T0 takes lock 1, T1 takes lock 2, T2 runs on; T0 waits for 2, then
    // T1 waits for 1: that wait closes the cycle while T2 can still run.
    let mut x = Explorer::replay(3, vec![0, 1, 0, 1], Config::default()).unwrap();
    assert!(x.begin_execution().unwrap());
    assert_eq!(x.schedule().unwrap(), Some(0));
    x.lock_acquire(0, 1).unwrap();
    assert_eq!(x.schedule().unwrap(), Some(1));
    x.lock_acquire(1, 2).unwrap();
    assert_eq!(x.schedule().unwrap(), Some(0));
    x.block_on_lock(0, 2).unwrap();
    assert!(x.lock_cycle(0).is_none(), "T1 waits for nothing yet");
    assert_eq!(x.schedule().unwrap(), Some(1));
    x.block_on_lock(1, 1).unwrap();
    let d = x.lock_cycle(1).expect("T1's wait closes the cycle");
    let threads: Vec<_> = d.cycle.iter().map(|e| e.thread).collect();
    assert_eq!(threads, vec![0, 1]);
    assert_eq!(d.cycle[0].holds, vec![1]);
    assert_eq!(d.cycle[0].waits_for, WaitTarget::Lock(2));
    assert_eq!(d.cycle[1].holds, vec![2]);
    assert_eq!(d.cycle[1].waits_for, WaitTarget::Lock(1));
    assert_eq!(d.blocked.len(), 2);
    assert!(x.lock_cycle(2).is_none(), "T2 waits for nothing");
}
