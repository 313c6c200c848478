//! Blocked threads are never scheduled; limits abort with a useful message.

use frontrun_engine::model::{explore, Instr, Program};
use frontrun_engine::{AbortReason, AccessKind, Config, Explorer, WaitTarget};

#[test]
fn a_spin_loop_exceeds_max_branches_and_the_message_names_spin_loops() {
    // Thread 0 spins until thread 1 sets the flag.
    let program = Program {
        initial: vec![0],
        locks: 0,
        threads: vec![
            vec![
                Instr::Load { var: 0, reg: 0 },
                Instr::JumpIfZero { reg: 0, target: 0 },
            ],
            vec![
                Instr::Set { reg: 0, value: 1 },
                Instr::Store { var: 0, reg: 0 },
            ],
        ],
    };
    let config = Config {
        max_branches: 50,
        max_executions: Some(5),
        ..Config::default()
    };
    let e = explore(&program, config).unwrap();
    let first = &e.executions[0].report;
    assert_eq!(first.aborted, Some(AbortReason::MaxBranches { limit: 50 }));
    assert_eq!(first.schedule.len(), 50);
    assert!(first
        .aborted
        .as_ref()
        .unwrap()
        .to_string()
        .contains("spin loop"));
    assert!(e.stats.executions_aborted >= 1);
}

#[test]
fn max_executions_stops_the_exploration() {
    let config = Config {
        max_executions: Some(3),
        ..Config::default()
    };
    let program = frontrun_engine::model::programs::racy_counter(3);
    let e = explore(&program, config).unwrap();
    assert_eq!(e.executions.len(), 3);
    assert_eq!(e.stats.executions_completed, 3);
}

#[test]
fn a_blocked_thread_is_not_scheduled_until_unblocked() {
    let mut x = Explorer::new(2, Config::default()).unwrap();
    let mut executions = 0;
    while x.begin_execution().unwrap() {
        executions += 1;
        let mut waiting = false;
        let mut flag_set = false;
        while let Some(t) = x.schedule().unwrap() {
            assert!(!(t == 0 && waiting), "thread 0 is blocked");
            match t {
                0 if flag_set => {
                    x.access(0, 1, AccessKind::Read).unwrap();
                    x.finish(0).unwrap();
                }
                0 => {
                    x.access(0, 1, AccessKind::Read).unwrap();
                    x.block(0, 99).unwrap();
                    waiting = true;
                }
                _ => {
                    x.access(1, 1, AccessKind::Write).unwrap();
                    flag_set = true;
                    x.unblock(0).unwrap();
                    waiting = false;
                    x.finish(1).unwrap();
                }
            }
        }
        let report = x.end_execution().unwrap();
        assert!(report.deadlock.is_none());
        assert!(report.aborted.is_none());
    }
    // The wait happens before or after the set: two traces.
    assert_eq!(executions, 2);
    assert_eq!(x.stats().sleep_blocked, 0);
}

#[test]
fn waiting_for_an_event_nobody_sets_is_reported_as_a_deadlock_without_cycle() {
    let mut x = Explorer::new(2, Config::default()).unwrap();
    x.begin_execution().unwrap();
    assert_eq!(x.schedule().unwrap(), Some(0));
    x.block(0, 42).unwrap();
    assert_eq!(x.schedule().unwrap(), Some(1));
    x.finish(1).unwrap();
    assert_eq!(x.schedule().unwrap(), None);
    let d = x.end_execution().unwrap().deadlock.expect("deadlock");
    assert!(d.cycle.is_empty());
    assert_eq!(d.blocked.len(), 1);
    assert_eq!(d.blocked[0].waits_for, WaitTarget::Object(42));
    assert!(d.to_string().contains("waits on object 0x2a"));
}

#[test]
fn join_orders_the_joined_thread_before_the_joiner() {
    let mut x = Explorer::new(2, Config::default()).unwrap();
    let mut executions = 0;
    while x.begin_execution().unwrap() {
        executions += 1;
        let mut joined = false;
        while let Some(t) = x.schedule().unwrap() {
            if t == 0 {
                x.join(0, 1).unwrap();
                if joined {
                    x.access(0, 7, AccessKind::Read).unwrap();
                    x.finish(0).unwrap();
                }
                joined = true;
            } else {
                x.access(1, 7, AccessKind::Write).unwrap();
                x.finish(1).unwrap();
            }
        }
        let r = x.end_execution().unwrap();
        assert!(r.races.is_empty(), "join orders the write before the read");
        assert!(r.deadlock.is_none());
    }
    assert_eq!(executions, 1);
}

#[test]
fn a_spawned_thread_waits_for_its_spawn_and_sees_what_came_before() {
    let mut x = Explorer::new(2, Config::default()).unwrap();
    let mut executions = 0;
    while x.begin_execution().unwrap() {
        executions += 1;
        x.expect_spawn(1).unwrap();
        let mut parent_steps = 0;
        while let Some(t) = x.schedule().unwrap() {
            if t == 0 {
                parent_steps += 1;
                match parent_steps {
                    1 => x.access(0, 3, AccessKind::Write).unwrap(),
                    2 => x.spawn(0, 1).unwrap(),
                    _ => {
                        x.access(0, 4, AccessKind::Write).unwrap();
                        x.finish(0).unwrap();
                    }
                }
            } else {
                assert!(parent_steps >= 2, "the child ran before its spawn");
                x.access(1, 3, AccessKind::Read).unwrap();
                x.access(1, 4, AccessKind::Read).unwrap();
                x.finish(1).unwrap();
            }
        }
        x.end_execution().unwrap();
    }
    // Only the read of object 4 races with the parent's last write.
    assert_eq!(executions, 2);
}

#[test]
fn a_thread_never_spawned_is_no_deadlock() {
    // Thread 1 is started only on thread 0's first read of 3 being 1,
    // which it never is: the execution ends with thread 1 unspawned.
    let mut x = Explorer::new(2, Config::default()).unwrap();
    assert!(x.begin_execution().unwrap());
    x.expect_spawn(1).unwrap();
    while let Some(t) = x.schedule().unwrap() {
        assert_eq!(t, 0, "an unspawned thread was scheduled");
        x.access(0, 3, AccessKind::Read).unwrap();
        x.finish(0).unwrap();
    }
    let r = x.end_execution().unwrap();
    assert!(r.deadlock.is_none(), "{:?}", r.deadlock);
    assert!(r.aborted.is_none());
}

#[test]
fn io_accesses_race_on_their_own_keys() {
    let mut x = Explorer::new(2, Config::default()).unwrap();
    x.begin_execution().unwrap();
    while let Some(t) = x.schedule().unwrap() {
        // Same number as an I/O key and a memory key: different objects.
        if t == 0 {
            x.io_access(0, 5, AccessKind::Write).unwrap();
        } else {
            x.access(1, 5, AccessKind::Write).unwrap();
            x.io_access(1, 5, AccessKind::Read).unwrap();
        }
        x.finish(t).unwrap();
    }
    let r = x.end_execution().unwrap();
    assert_eq!(r.races.len(), 1);
    assert!(r.races[0].first.is_io && r.races[0].second.is_io);
    assert_eq!(r.races[0].second.kind, AccessKind::Read);
    assert!(
        x.begin_execution().unwrap(),
        "the reversed order is still to explore"
    );
}
