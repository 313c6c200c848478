//! A preemption bound should only take work away. Where every execution
//! full DPOR runs stays within the bound, the bounded search runs exactly
//! those executions; where the bound cuts in, it runs at most one and a
//! half times as many (the optimal search and the conservative bounded one
//! take turns, two executions to one, and the first to finish ends the
//! exploration); and whatever it runs, it finds every
//! final state (deadlocks included) that full DPOR finds and some schedule
//! within the bound reaches. When it ends because the optimal search was
//! done, it has covered every trace.

mod common;
use common::{random_program, random_program_with, visible_steps, Rng};
use std::collections::BTreeSet;

use frontrun_engine::model::{enumerate, explore, programs, Exploration, Program};
use frontrun_engine::Config;

fn with_bound(preemption_bound: Option<u32>) -> Config {
    Config {
        preemption_bound,
        ..Config::default()
    }
}

fn run(program: &Program, bound: Option<u32>) -> Exploration {
    explore(program, with_bound(bound)).expect("exploration runs")
}

fn executions(e: &Exploration) -> u64 {
    e.stats.executions_completed + e.stats.executions_aborted
}

/// Checks one program under bounds `0..=max_bound` against full DPOR and
/// the brute force restricted to the bound.
fn check(what: &str, program: &Program, max_bound: u32) {
    let full = run(program, None);
    let most = full.executions.iter().map(|x| x.report.preemptions).max();
    for b in 0..=max_bound {
        let bounded = run(program, Some(b));
        let context = || format!("{what}, preemption_bound={b}: {program:#?}");
        if most.is_some_and(|m| m <= b) {
            assert_eq!(
                executions(&bounded),
                executions(&full),
                "full DPOR stays within the bound; {}",
                context()
            );
            assert_eq!(bounded.traces(), full.traces(), "{}", context());
        }
        assert!(
            2 * executions(&bounded) <= 3 * executions(&full) + 1,
            "{} executions bounded, {} unbounded; {}",
            executions(&bounded),
            executions(&full),
            context()
        );
        assert_eq!(bounded.stats.executions_aborted, 0, "{}", context());
        if bounded.complete {
            assert_eq!(bounded.traces(), full.traces(), "{}", context());
        } else {
            assert!(
                bounded.executions.iter().any(|x| x.report.preemptions > b),
                "the optimal search did not go past the bound, so it must have finished; {}",
                context()
            );
        }
        // The bugs a schedule within the bound can show: final states,
        // deadlocks included.
        let within: BTreeSet<_> = enumerate(program, Some(b))
            .into_iter()
            .map(|(o, _)| o)
            .collect();
        let found = bounded.outcomes();
        for x in &full.executions {
            assert!(
                !within.contains(&x.outcome) || found.contains(&x.outcome),
                "full DPOR's execution {:?} ends in {:?}, which a schedule within the bound \
                 reaches, but the bounded exploration never does; {}",
                x.report.schedule,
                x.outcome,
                context()
            );
        }
    }
}

fn count_programs() -> Vec<(&'static str, Program)> {
    vec![
        ("readers(4)", programs::readers(4)),
        ("readers(6)", programs::readers(6)),
        ("lastzero(3)", programs::lastzero(3)),
        ("lastzero(5)", programs::lastzero(5)),
        ("two_writers", programs::two_writers()),
        ("independent(4)", programs::independent(4)),
        ("locked_counter(2)", programs::locked_counter(2)),
        ("locked_counter(4)", programs::locked_counter(4)),
        ("racy_counter(2)", programs::racy_counter(2)),
        ("racy_counter(3)", programs::racy_counter(3)),
        ("racy_counter(4)", programs::racy_counter(4)),
        ("abba", programs::abba()),
        ("ordered_locks", programs::ordered_locks()),
    ]
}

#[test]
fn count_programs_run_full_dpors_executions_where_it_stays_within_the_bound() {
    for (name, program) in &count_programs() {
        check(name, program, 3);
    }
}

#[test]
fn readers_and_locked_counters_run_no_more_executions_under_any_bound() {
    for n in 1..=6 {
        check(&format!("readers({n})"), &programs::readers(n), 3);
    }
    for k in 1..=4 {
        check(
            &format!("locked_counter({k})"),
            &programs::locked_counter(k),
            3,
        );
    }
}

#[test]
fn random_programs_under_a_bound_miss_nothing_within_it() {
    let mut rng = Rng(0x5eed_b0d5_0ff0_0d17);
    for i in 0..2000u64 {
        let program = random_program(&mut rng, 4);
        check(&format!("seed {i}"), &program, 2);
    }
}

#[test]
fn random_programs_with_waits_under_a_bound_miss_nothing_within_it() {
    let mut rng = Rng(0x0ddb_a115_eed0_0001);
    for i in 0..1000u64 {
        let program = loop {
            let p = random_program_with(&mut rng, 4, true);
            if p.threads.iter().map(|c| visible_steps(c)).sum::<usize>() <= 9 {
                break p;
            }
        };
        check(&format!("seed {i} (waits)"), &program, 2);
    }
}

/// Where the bound cuts in, the count programs cost at most 1.5 times full
/// DPOR, and those whose optimal search finishes first say so.
#[test]
fn count_programs_under_a_bound_cost_at_most_half_again_full_dpor() {
    for (name, program) in &count_programs() {
        check(name, program, 3);
    }
    let e = run(&programs::lastzero(5), Some(2));
    let full = run(&programs::lastzero(5), None);
    assert!(
        e.complete,
        "lastzero(5): the optimal search is the cheaper one"
    );
    assert!(2 * executions(&e) <= 3 * executions(&full));
}
