//! Full DPOR explores exactly one execution per Mazurkiewicz trace.

use frontrun_engine::model::{explore, programs, Exploration};
use frontrun_engine::Config;

fn run(program: &frontrun_engine::model::Program) -> Exploration {
    explore(program, Config::default()).expect("exploration runs")
}

fn assert_optimal(e: &Exploration, expected: usize) {
    assert_eq!(e.executions.len(), expected, "executions");
    assert_eq!(e.traces().len(), expected, "distinct traces");
    assert_eq!(e.stats.sleep_blocked, 0, "sleep-set blocked executions");
    assert_eq!(e.stats.executions_aborted, 0);
    assert_eq!(e.stats.executions_completed as usize, expected);
    assert_eq!(e.stats.divergences, 0);
}

#[test]
fn readers_explore_two_to_the_n_executions() {
    for n in 1..=10 {
        let e = run(&programs::readers(n));
        assert_optimal(&e, 1 << n);
    }
}

#[test]
fn lastzero_explores_n_plus_three_times_two_to_the_n_minus_two_executions() {
    for (n, expected) in [(2, 5), (3, 12), (4, 28), (5, 64), (6, 144), (8, 704)] {
        let e = run(&programs::lastzero(n));
        assert_optimal(&e, expected);
    }
}

#[test]
fn two_threads_writing_one_variable_explore_two_executions() {
    let e = run(&programs::two_writers());
    assert_optimal(&e, 2);
    let finals: Vec<i64> = e.outcomes().iter().map(|o| o.shared[0]).collect();
    assert_eq!(finals, vec![1, 2]);
}

#[test]
fn independent_threads_explore_a_single_execution() {
    for n in 1..=5 {
        assert_optimal(&run(&programs::independent(n)), 1);
    }
}

#[test]
fn lock_protected_counter_explores_k_factorial_executions() {
    let mut factorial = 1;
    for k in 1..=5 {
        factorial *= k;
        let e = run(&programs::locked_counter(k));
        assert_optimal(&e, factorial);
        for x in &e.executions {
            assert_eq!(
                x.outcome.shared[0], k as i64,
                "the lock prevents lost updates"
            );
        }
    }
}

#[test]
fn unprotected_counter_exposes_the_lost_update_in_the_second_execution() {
    let e = run(&programs::racy_counter(2));
    assert_eq!(e.executions[0].report.schedule, vec![0, 0, 1, 1]);
    assert_eq!(e.executions[0].outcome.shared[0], 2);
    assert_eq!(e.executions[1].outcome.shared[0], 1, "lost update");
    assert!(e.outcomes().iter().any(|o| o.shared[0] == 1));
}
