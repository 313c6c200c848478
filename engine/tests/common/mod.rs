//! Helpers shared by the engine's integration tests.

use frontrun_engine::model::{Instr, Program};

/// xorshift64*: deterministic pseudo-random numbers without a dependency,
/// so every randomised test replays from its seed.
pub struct Rng(pub u64);

#[allow(dead_code)] // each test binary uses its own subset
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below_u64(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

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
#[allow(dead_code)]
pub fn random_program(rng: &mut Rng, budget: usize) -> Program {
    // Keep the brute force affordable: at most 10 visible steps in all.
    loop {
        let p = random_program_once(rng, budget);
        if p.threads.iter().map(|c| visible_steps(c)).sum::<usize>() <= 10 {
            return p;
        }
    }
}

#[allow(dead_code)]
pub fn visible_steps(code: &[Instr]) -> usize {
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

#[allow(dead_code)]
pub fn random_program_with(rng: &mut Rng, budget: usize, waits: bool) -> Program {
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

/// Like [`random_program_with`] (waits in half of them), with one or two
/// steps that take and drop a lock and may then store ([`Instr::Pulse`])
/// at the start or the end of each thread, on the locks its critical
/// sections also take.
#[allow(dead_code)]
pub fn random_program_with_pulses(rng: &mut Rng, budget: usize) -> Program {
    loop {
        let waits = rng.below(2) == 0;
        let mut p = random_program_with(rng, budget, waits);
        p.locks = p.locks.max(1);
        let vars = p.initial.len();
        for (t, c) in p.threads.iter_mut().enumerate() {
            for _ in 0..1 + rng.below(2) {
                let store = (rng.below(2) == 0).then(|| (rng.below(vars), 0));
                let pulse = Instr::Pulse {
                    lock: rng.below(p.locks),
                    store,
                };
                // At the start or the end: jump targets stay valid.
                if rng.below(2) == 0 {
                    c.push(Instr::Add {
                        reg: 0,
                        value: t as i64 + 1,
                    });
                    c.push(pulse);
                } else {
                    for i in c.iter_mut() {
                        shift_target(i);
                    }
                    c.insert(0, pulse);
                }
            }
        }
        if p.threads.iter().map(|c| visible_steps(c)).sum::<usize>() <= 10 {
            return p;
        }
    }
}

fn shift_target(i: &mut Instr) {
    match i {
        Instr::Jump { target }
        | Instr::JumpIfZero { target, .. }
        | Instr::JumpIfNonZero { target, .. } => *target += 1,
        _ => {}
    }
}
