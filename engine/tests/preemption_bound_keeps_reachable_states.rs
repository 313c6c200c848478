//! With a preemption bound, every final state reachable within the bound
//! is still found.

mod common;
use common::Rng;
use std::collections::BTreeSet;

use frontrun_engine::model::{enumerate, explore, programs, Instr, Program};
use frontrun_engine::Config;

fn bounded(b: u32) -> Config {
    Config {
        preemption_bound: Some(b),
        ..Config::default()
    }
}

#[test]
fn bound_zero_runs_the_serial_orders() {
    let e = explore(&programs::racy_counter(2), bounded(0)).unwrap();
    assert!(e.executions.iter().any(|x| x.report.preemptions == 0));
    assert!(e.outcomes().iter().any(|o| o.shared[0] == 2));
}

#[test]
fn bound_one_finds_the_lost_update() {
    let e = explore(&programs::racy_counter(2), bounded(1)).unwrap();
    assert!(e.outcomes().iter().any(|o| o.shared[0] == 1));
}

/// The optimal search is never cut by the bound: where it is cheap it
/// finishes first, and the exploration then covers every trace.
#[test]
fn a_small_program_under_bound_zero_is_explored_completely() {
    let full = explore(&programs::racy_counter(2), Config::default()).unwrap();
    let e = explore(&programs::racy_counter(2), bounded(0)).unwrap();
    assert!(e.complete);
    assert_eq!(e.traces(), full.traces());
    // Lost update included: the optimal search found it beyond the bound.
    assert!(e.outcomes().iter().any(|o| o.shared[0] == 1));
}

#[test]
fn bound_one_finds_the_abba_deadlock() {
    let e = explore(&programs::abba(), bounded(1)).unwrap();
    assert!(e.executions.iter().any(|x| x.report.deadlock.is_some()));
}

/// Threads of plain loads and stores over two variables (locks are left
/// out: the oracle cannot run a thread into a held lock, the binding can).
fn random_program(rng: &mut Rng) -> Program {
    let threads = 2 + rng.below(2);
    let code = (0..threads)
        .map(|t| {
            let mut c = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let var = rng.below(2);
                if rng.below(2) == 0 {
                    c.push(Instr::Load { var, reg: 0 });
                } else {
                    c.push(Instr::Add {
                        reg: 0,
                        value: t as i64 + 1,
                    });
                    c.push(Instr::Store { var, reg: 0 });
                }
            }
            c
        })
        .collect();
    Program {
        initial: vec![0, 0],
        locks: 0,
        threads: code,
    }
}

#[test]
fn bounded_exploration_reaches_every_state_reachable_within_the_bound() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for i in 0..1500 {
        let program = random_program(&mut rng);
        for b in 0..=2 {
            let oracle: BTreeSet<_> = enumerate(&program, Some(b))
                .into_iter()
                .map(|(o, _)| o)
                .collect();
            let e = explore(&program, bounded(b)).unwrap();
            let found = e.outcomes();
            assert!(
                oracle.is_subset(&found),
                "program {i}, bound {b}: missing {:?}\n{program:#?}",
                oracle.difference(&found).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn a_bound_above_the_program_length_finds_every_trace() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for i in 0..500 {
        let program = random_program(&mut rng);
        let oracle: BTreeSet<_> = enumerate(&program, None)
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        let e = explore(&program, bounded(64)).unwrap();
        assert_eq!(e.traces(), oracle, "program {i}: {program:#?}");
    }
}
