//! Randomised differential test: on thousands of small programs, the
//! explorer finds exactly the traces a brute-force enumeration of all
//! interleavings finds, one execution per trace.

mod common;
use common::Rng;
use std::collections::BTreeSet;

use frontrun_engine::model::{enumerate, explore, Instr, Program};
use frontrun_engine::Config;

/// Appends one random visible access (load or store) to `code`.
fn access(rng: &mut Rng, code: &mut Vec<Instr>, vars: usize, thread: usize) {
    let var = rng.below(vars);
    if rng.below(2) == 0 {
        code.push(Instr::Load {
            var,
            reg: rng.below(2),
        });
    } else {
        code.push(Instr::Add {
            reg: 0,
            value: thread as i64 + 1,
        });
        code.push(Instr::Store { var, reg: 0 });
    }
}

/// A program of 2-4 threads over 2-3 variables and up to 2 locks with at
/// most `budget` visible steps per thread: plain accesses, critical
/// sections (sometimes nested, so lock-order deadlocks occur), try-locks
/// and branches on values read.
fn random_program(rng: &mut Rng, budget: usize) -> Program {
    // Keep the brute force affordable: at most 10 visible steps in all.
    loop {
        let p = random_program_once(rng, budget);
        if p.threads.iter().map(|c| visible_steps(c)).sum::<usize>() <= 10 {
            return p;
        }
    }
}

fn visible_steps(code: &[Instr]) -> usize {
    code.iter()
        .filter(|i| {
            !matches!(
                i,
                Instr::Add { .. }
                    | Instr::Set { .. }
                    | Instr::Jump { .. }
                    | Instr::JumpIfZero { .. }
                    | Instr::JumpIfNonZero { .. }
            )
        })
        .count()
}

fn random_program_once(rng: &mut Rng, budget: usize) -> Program {
    random_program_with(rng, budget, false)
}

fn random_program_with(rng: &mut Rng, budget: usize, waits: bool) -> Program {
    let threads = 2 + rng.below(3);
    let vars = 2 + rng.below(2);
    let locks = rng.below(3);
    let mut code = Vec::new();
    for t in 0..threads {
        let mut c = Vec::new();
        let blocks = 1 + rng.below(2);
        for _ in 0..blocks {
            if waits && rng.below(3) == 0 {
                c.push(Instr::WaitNonZero {
                    var: rng.below(vars),
                });
                continue;
            }
            match rng.below(if locks > 0 { 6 } else { 3 }) {
                0 | 1 => access(rng, &mut c, vars, t),
                2 => {
                    // if (x != 0) { access }
                    let var = rng.below(vars);
                    c.push(Instr::Load { var, reg: 1 });
                    let jump = c.len();
                    c.push(Instr::JumpIfZero { reg: 1, target: 0 });
                    access(rng, &mut c, vars, t);
                    let end = c.len();
                    c[jump] = Instr::JumpIfZero {
                        reg: 1,
                        target: end,
                    };
                }
                3 | 4 => {
                    let a = rng.below(locks);
                    c.push(Instr::Lock { lock: a });
                    let nested = locks > 1 && rng.below(3) == 0;
                    let b = 1 - a.min(1);
                    if nested {
                        c.push(Instr::Lock { lock: b });
                    }
                    access(rng, &mut c, vars, t);
                    if nested {
                        c.push(Instr::Unlock { lock: b });
                    }
                    c.push(Instr::Unlock { lock: a });
                }
                _ => {
                    // if try_lock(l) { access; unlock } else { access }
                    let l = rng.below(locks);
                    c.push(Instr::TryLock { lock: l, reg: 2 });
                    let jump = c.len();
                    c.push(Instr::JumpIfZero { reg: 2, target: 0 });
                    access(rng, &mut c, vars, t);
                    c.push(Instr::Unlock { lock: l });
                    c.push(Instr::Jump { target: 0 });
                    let otherwise = c.len();
                    c[jump] = Instr::JumpIfZero {
                        reg: 2,
                        target: otherwise,
                    };
                    access(rng, &mut c, vars, t);
                    let end = c.len();
                    c[otherwise - 1] = Instr::Jump { target: end };
                }
            }
        }
        if visible_steps(&c) > budget {
            c.truncate(0);
            access(rng, &mut c, vars, t);
        }
        code.push(c);
    }
    Program {
        initial: vec![0; vars],
        locks,
        threads: code,
    }
}

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
