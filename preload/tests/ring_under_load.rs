//! The ring under many producers, across fork, and when nobody drains it.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::{c_program, run, Attach, Outcome};
use frontrun_ring::{env, EventKind};

/// A producer: (pid, tid).
type Producer = (u32, u32);

/// The threads and the child, from mutex_stress's output.
fn producers(outcome: &Outcome) -> (Vec<Producer>, Option<Producer>) {
    let mut threads = Vec::new();
    let mut child = None;
    for line in outcome.stdout.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let id = (f[1].parse().unwrap(), f[2].parse().unwrap());
        match f[0] {
            "THREAD" => threads.push(id),
            "CHILD" => child = Some(id),
            _ => {}
        }
    }
    (threads, child)
}

#[test]
fn four_threads_and_a_forked_child_push_a_million_events_without_gap_or_duplicate() {
    const THREADS: u64 = 4;
    const PAIRS: u64 = 100_000;
    const CHILD_PAIRS: u64 = 100_000;
    let prog = c_program("mutex_stress", false, &[]);
    let mut cmd = Command::new(prog);
    cmd.args([
        THREADS.to_string(),
        PAIRS.to_string(),
        CHILD_PAIRS.to_string(),
    ]);
    // A ring much smaller than the event count, drained while the program
    // runs: producers wrap around it many times.
    cmd.env(env::ENV_RING_WAIT_US, "10000000");
    let outcome = run(
        cmd,
        Attach::Consumed { mutex_events: true },
        1 << 14,
        Duration::from_secs(300),
    );
    assert!(outcome.status.success(), "stderr: {}", outcome.stderr);
    assert_eq!(outcome.lost, 0);
    let (threads, child) = producers(&outcome);
    let child = child.expect("the child reported itself");
    assert_eq!(threads.len(), THREADS as usize);
    assert_ne!(child.0, threads[0].0, "the child has its own pid");

    // Besides the mutex pairs, the program's own start and its child's
    // fork are announced (EventKind::Process), and so are its threads:
    // their start, first event, end and join each.
    let count = |kind: EventKind| {
        outcome
            .events
            .iter()
            .filter(|e| e.kind() == Some(kind))
            .count() as u64
    };
    assert_eq!(count(EventKind::Process), 2);
    for kind in [
        EventKind::ThreadStart,
        EventKind::ThreadBegin,
        EventKind::ThreadEnd,
        EventKind::ThreadJoin,
    ] {
        assert_eq!(count(kind), THREADS, "{kind:?} events");
    }
    // Each thread's four events share its number: started by the main
    // thread before it begins, ended by the thread itself (whose events
    // carry the id it began with), joined after that.
    for begin in outcome
        .events
        .iter()
        .filter(|e| e.kind() == Some(EventKind::ThreadBegin))
    {
        let of = |kind: EventKind| {
            outcome
                .events
                .iter()
                .find(|e| e.kind() == Some(kind) && e.addr == begin.addr)
                .unwrap_or_else(|| panic!("no {kind:?} for thread number {}", begin.addr))
        };
        let (start, end, join) = (
            of(EventKind::ThreadStart),
            of(EventKind::ThreadEnd),
            of(EventKind::ThreadJoin),
        );
        assert!(start.seq < begin.seq && begin.seq < end.seq && end.seq < join.seq);
        assert_eq!(start.tid, start.pid, "started by the main thread");
        assert_eq!(join.tid, start.tid, "joined by the thread that started it");
        assert_eq!(end.tid, begin.tid);
        assert_ne!(begin.tid, start.tid);
        assert!(outcome.events.iter().any(|e| e.tid == begin.tid
            && e.kind() == Some(EventKind::MutexLock)
            && begin.seq < e.seq
            && e.seq < end.seq));
    }
    let announced = 2 + 4 * THREADS;
    let total = 2 * (THREADS * PAIRS + CHILD_PAIRS) + announced;
    assert_eq!(outcome.events.len() as u64, total);
    // Sequence numbers: exactly 0..total, each once, in the order drained.
    for (i, e) in outcome.events.iter().enumerate() {
        assert_eq!(e.seq, i as u64, "gap or duplicate at position {i}");
    }
    // Per producer: the right count, alternating lock/unlock on one mutex.
    let mut per: HashMap<Producer, (u64, Option<EventKind>, u64)> = HashMap::new();
    for e in outcome
        .events
        .iter()
        .filter(|e| !e.kind().is_some_and(EventKind::is_lineage))
    {
        let entry = per.entry((e.pid, e.tid)).or_insert((0, None, e.addr));
        let kind = e.kind();
        let want = match entry.1 {
            Some(EventKind::MutexLock) => EventKind::MutexUnlock,
            _ => EventKind::MutexLock,
        };
        assert_eq!(kind, Some(want), "{e:?}");
        assert_eq!(e.addr, entry.2, "one mutex per producer");
        entry.0 += 1;
        entry.1 = kind;
    }
    for t in &threads {
        assert_eq!(per[t].0, 2 * PAIRS, "thread {t:?}");
    }
    assert_eq!(per[&child].0, 2 * CHILD_PAIRS, "child {child:?}");
    assert_eq!(per.len(), THREADS as usize + 1);
}

#[test]
fn a_full_ring_nobody_drains_neither_hangs_nor_loses_events_silently() {
    const THREADS: u64 = 2;
    const PAIRS: u64 = 5_000;
    const CHILD_PAIRS: u64 = 5_000;
    const SLOTS: u64 = 64;
    let prog = c_program("mutex_stress", false, &[]);
    let mut cmd = Command::new(prog);
    cmd.args([
        THREADS.to_string(),
        PAIRS.to_string(),
        CHILD_PAIRS.to_string(),
    ]);
    cmd.env(env::ENV_RING_WAIT_US, "20000");
    // The consumer is attached (producers write) but takes nothing until
    // the program has exited; `run` fails the test if it does not finish.
    let outcome = run(
        cmd,
        Attach::ConsumedLater { mutex_events: true },
        SLOTS,
        Duration::from_secs(60),
    );
    assert!(outcome.status.success(), "stderr: {}", outcome.stderr);
    // The mutex pairs, the announcements of the program's start and of
    // its child's fork (EventKind::Process), and four events per thread
    // it starts (EventKind::ThreadStart and the three after it).
    let total = 2 * (THREADS * PAIRS + CHILD_PAIRS) + 2 + 4 * THREADS;
    assert_eq!(outcome.events.len() as u64, SLOTS);
    assert_eq!(
        outcome.lost,
        total - SLOTS,
        "every dropped event is counted"
    );
    for (i, e) in outcome.events.iter().enumerate() {
        assert_eq!(e.seq, i as u64);
    }
}

#[test]
fn without_a_consumer_nothing_is_written_and_nothing_waits() {
    let prog = c_program("mutex_stress", false, &[]);
    let mut cmd = Command::new(prog);
    cmd.args(["2", "20000", "20000"]);
    cmd.env(env::ENV_MUTEX, "1");
    // The library makes its own ring; with no consumer it passes through.
    let outcome = run(cmd, Attach::PreloadOnly, 64, Duration::from_secs(60));
    assert!(outcome.status.success(), "stderr: {}", outcome.stderr);
    assert_eq!(outcome.stderr, "");
}
