//! A step that takes a lock and then touches data under it (a database
//! request that locks a row and writes it, in one native call) still races
//! with the previous acquire of that lock: the data it touches after the
//! acquire is ordered by the lock, and does not hide the acquire's race.

use frontrun_engine::{AccessKind, Config, Explorer};
use std::collections::BTreeSet;

#[derive(Clone, Copy)]
enum Op {
    Acquire(u64),
    Release(u64),
    Write(u64),
}

/// Runs every execution of `threads` (each a list of steps, each step a
/// list of operations; a step whose lock is held waits) and returns the
/// orders in which the threads took lock 1, one per execution.
fn lock_orders(threads: &[Vec<Vec<Op>>]) -> (Vec<Vec<usize>>, u64) {
    let n = threads.len();
    let mut x = Explorer::new(n, Config::default()).unwrap();
    let mut orders = Vec::new();
    while x.begin_execution().unwrap() {
        let mut pc = vec![0; n];
        let mut holder: Option<usize> = None;
        let mut order = Vec::new();
        while let Some(t) = x.schedule().unwrap() {
            let step = &threads[t][pc[t]];
            if let Some(Op::Acquire(l)) = step.first() {
                if holder.is_some() {
                    x.block_on_lock(t, *l).unwrap();
                    continue;
                }
            }
            for op in step {
                match *op {
                    Op::Acquire(l) => {
                        x.lock_acquire(t, l).unwrap();
                        holder = Some(t);
                        order.push(t);
                    }
                    Op::Release(l) => {
                        x.lock_release(t, l).unwrap();
                        holder = None;
                    }
                    Op::Write(k) => x.access(t, k, AccessKind::Write).unwrap(),
                }
            }
            pc[t] += 1;
            if pc[t] == threads[t].len() {
                x.finish(t).unwrap();
            }
        }
        let report = x.end_execution().unwrap();
        assert!(report.aborted.is_none() && report.deadlock.is_none());
        orders.push(order);
    }
    (orders, x.stats().sleep_blocked)
}

fn transaction() -> Vec<Vec<Op>> {
    // SELECT ... FOR UPDATE (lock the row, write it), UPDATE, COMMIT.
    vec![
        vec![Op::Acquire(1), Op::Write(7)],
        vec![Op::Write(7)],
        vec![Op::Write(7), Op::Release(1)],
    ]
}

#[test]
fn two_transactions_on_one_locked_row_explore_both_orders() {
    let (orders, blocked) = lock_orders(&[transaction(), transaction()]);
    let distinct: BTreeSet<_> = orders.iter().cloned().collect();
    assert_eq!(distinct, BTreeSet::from([vec![0, 1], vec![1, 0]]));
    assert_eq!(orders.len(), 2, "one execution per order: {orders:?}");
    assert_eq!(blocked, 0);
}

#[test]
fn k_transactions_explore_k_factorial_orders() {
    for (k, expected) in [(3, 6), (4, 24)] {
        let (orders, blocked) = lock_orders(&vec![transaction(); k]);
        let distinct: BTreeSet<_> = orders.iter().cloned().collect();
        assert_eq!(distinct.len(), expected);
        assert_eq!(orders.len(), expected, "k={k}");
        assert_eq!(blocked, 0);
    }
}
