//! Randomised differential test: on thousands of small programs, the
//! explorer finds exactly the traces a brute-force enumeration of all
//! interleavings finds, one execution per trace.

mod common;
use common::{random_program, random_program_with, visible_steps, Rng};
use std::collections::BTreeSet;

use frontrun_engine::model::{enumerate, explore, Program};
use frontrun_engine::Config;

fn check(seed: u64, program: &Program) {
    let oracle = enumerate(program, None);
    let traces: BTreeSet<_> = oracle.iter().map(|(_, t)| t.clone()).collect();
    let outcomes: BTreeSet<_> = oracle.iter().map(|(o, _)| o.clone()).collect();
    let e = explore(program, Config::default()).expect("exploration runs");
    let context = || format!("seed {seed}: {program:#?}");
    assert_eq!(e.stats.sleep_blocked, 0, "sleep-blocked; {}", context());
    assert_eq!(e.stats.executions_aborted, 0, "{}", context());
    assert_eq!(e.traces(), traces, "trace sets differ; {}", context());
    assert_eq!(e.outcomes(), outcomes, "final states differ; {}", context());
    assert_eq!(
        e.executions.len(),
        traces.len(),
        "redundant executions; {}",
        context()
    );
}

#[test]
fn random_programs_explore_exactly_the_brute_force_traces() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..3000u64 {
        let program = random_program(&mut rng, 4);
        check(i, &program);
    }
}

/// Longer threads; slow in debug builds, so run on demand:
/// `cargo test --release -p frontrun-engine -- --ignored`.
#[test]
#[ignore = "slow in debug builds; scripts/test runs it in release mode"]
fn larger_random_programs_explore_exactly_the_brute_force_traces() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for i in 0..2000u64 {
        let program = random_program(&mut rng, 6);
        check(i, &program);
    }
}

/// Threads that wait for a variable to become non-zero block (as on an
/// event) and are woken by stores. A wait that blocked is a read the
/// brute force never sees (the engine cannot know a wait will block before
/// the thread runs), so executions may outnumber traces; the states and
/// traces must still match and no execution may end sleep-set blocked.
#[test]
fn random_programs_with_waits_reach_exactly_the_brute_force_traces() {
    let mut rng = Rng(0x005e_ed0f_7a17_5eed);
    let mut executions = 0;
    let mut traces_total = 0;
    for i in 0..1500u64 {
        let program = loop {
            let p = random_program_with(&mut rng, 4, true);
            if p.threads.iter().map(|c| visible_steps(c)).sum::<usize>() <= 9 {
                break p;
            }
        };
        let oracle = enumerate(&program, None);
        let traces: BTreeSet<_> = oracle.iter().map(|(_, t)| t.clone()).collect();
        let outcomes: BTreeSet<_> = oracle.iter().map(|(o, _)| o.clone()).collect();
        let e = explore(&program, Config::default()).expect("exploration runs");
        assert_eq!(e.stats.sleep_blocked, 0, "seed {i}: {program:#?}");
        assert_eq!(e.traces(), traces, "seed {i}: {program:#?}");
        assert_eq!(e.outcomes(), outcomes, "seed {i}: {program:#?}");
        executions += e.executions.len();
        traces_total += traces.len();
    }
    assert!(executions >= traces_total);
}

/// Under a preemption bound, every final state some schedule within the
/// bound reaches is found, and nothing the program cannot reach.
#[test]
fn bounded_exploration_of_random_programs_with_locks_reaches_the_bounded_states() {
    let mut rng = Rng(0x0bad_cafe_dead_beef);
    for i in 0..1500u64 {
        let program = random_program(&mut rng, 4);
        let all: BTreeSet<_> = enumerate(&program, None)
            .into_iter()
            .map(|(o, _)| o)
            .collect();
        for b in 0..=2 {
            let within: BTreeSet<_> = enumerate(&program, Some(b))
                .into_iter()
                .map(|(o, _)| o)
                .collect();
            let config = Config {
                preemption_bound: Some(b),
                ..Config::default()
            };
            let e = explore(&program, config).expect("exploration runs");
            let found = e.outcomes();
            assert!(found.is_subset(&all), "seed {i}, bound {b}");
            assert!(
                within.is_subset(&found),
                "seed {i}, bound {b}: missing {:?}\n{program:#?}",
                within.difference(&found).collect::<Vec<_>>()
            );
        }
    }
}
