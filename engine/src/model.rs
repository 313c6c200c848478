//! A tiny model-program VM to drive the explorer in tests and benchmarks.
//!
//! This is a harness, not part of the engine proper: each thread runs a
//! list of [`Instr`]uctions over shared integer variables, private registers
//! and non-reentrant locks. Loads, stores and lock operations are visible
//! (each is one step and is reported to the explorer); register arithmetic
//! and jumps are local and run between steps, so loops can depend on the
//! values read (as in the `lastzero` benchmark).
//!
//! [`explore`] runs a program under an [`Explorer`]; [`enumerate`] runs it
//! under every interleaving, as an oracle. Both describe each execution by
//! its Mazurkiewicz trace ([`TraceKey`]) so results can be compared.

use std::collections::{BTreeMap, BTreeSet};

use crate::{AccessKind, Config, EngineError, ExecutionReport, Explorer, Stats, ThreadId};

/// One instruction of a model thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instr {
    /// `reg = shared[var]` (visible).
    Load { var: usize, reg: usize },
    /// `reg = shared[base + regs[index]]` (visible).
    LoadIndexed {
        base: usize,
        index: usize,
        reg: usize,
    },
    /// `shared[var] = reg` (visible).
    Store { var: usize, reg: usize },
    /// `reg = value` (local).
    Set { reg: usize, value: i64 },
    /// `reg += value` (local).
    Add { reg: usize, value: i64 },
    /// Jump to `target` (local).
    Jump { target: usize },
    /// Jump to `target` if `reg == 0` (local).
    JumpIfZero { reg: usize, target: usize },
    /// Jump to `target` if `reg != 0` (local).
    JumpIfNonZero { reg: usize, target: usize },
    /// Blocking acquire of lock `lock` (visible).
    Lock { lock: usize },
    /// Release of lock `lock` (visible).
    Unlock { lock: usize },
    /// Non-blocking acquire; `reg = 1` on success, `0` on failure (visible).
    TryLock { lock: usize, reg: usize },
    /// A step of several accesses: blocking acquire and release of `lock`,
    /// then `shared[var] = reg` if a store is given (visible), as a native
    /// call that takes and drops a mutex and then writes. The trace records
    /// it as one write of the lock (and the store).
    Pulse {
        lock: usize,
        store: Option<(usize, usize)>,
    },
    /// Waits until `shared[var] != 0` (visible): reads the variable and,
    /// if it is zero, blocks until some thread stores to it (like waiting
    /// on an event).
    WaitNonZero { var: usize },
}

/// Number of registers of each model thread.
pub const REGISTERS: usize = 4;

/// A model program: shared variables with initial values, and one
/// instruction list per thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub initial: Vec<i64>,
    pub locks: usize,
    pub threads: Vec<Vec<Instr>>,
}

/// What an event touched, for trace keys: a variable or a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Var(usize),
    Lock(usize),
}

/// A visible event: thread, its per-thread index, and the instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    pub thread: ThreadId,
    pub index: usize,
    pub pc: usize,
}

/// Per object, the order of its writes with the set of reads between each
/// two. Two executions have the same key exactly when they are the same
/// Mazurkiewicz trace (same events, same order of every conflicting pair).
pub type TraceKey = Vec<(Target, Vec<WriteGroup>)>;

/// A write (or the initial value, `None`) and the reads that saw it.
pub type WriteGroup = (Option<EventId>, Vec<EventId>);

/// The result of one execution of a model program.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Outcome {
    pub shared: Vec<i64>,
    /// Some thread never finished.
    pub deadlock: bool,
}

#[derive(Default)]
struct TraceBuilder {
    groups: BTreeMap<Target, Vec<WriteGroup>>,
}

impl TraceBuilder {
    fn record(&mut self, target: Target, id: EventId, write: bool) {
        let groups = self.groups.entry(target).or_default();
        if write {
            groups.push((Some(id), Vec::new()));
        } else {
            if groups.is_empty() {
                groups.push((None, Vec::new()));
            }
            groups.last_mut().expect("non-empty").1.push(id);
        }
    }

    fn finish(mut self) -> TraceKey {
        for groups in self.groups.values_mut() {
            for g in groups.iter_mut() {
                g.1.sort();
            }
        }
        self.groups.into_iter().collect()
    }
}

/// The machine state of one execution.
#[derive(Clone)]
struct Machine<'p> {
    program: &'p Program,
    shared: Vec<i64>,
    holder: Vec<Option<ThreadId>>,
    pc: Vec<usize>,
    regs: Vec<[i64; REGISTERS]>,
    events: Vec<usize>,
    trace: Vec<(Target, EventId, bool)>,
}

/// What a visible step did, for reporting it to the explorer.
enum Effect {
    Read(usize),
    Write(usize),
    Acquire(usize),
    TryAcquired(usize),
    Release(usize),
    Blocked(usize),
    TryFailed(usize),
    WaitBlocked(usize),
    /// A one-step critical section on the lock, with its store.
    Pulse(usize, Option<usize>),
}

impl<'p> Machine<'p> {
    fn new(program: &'p Program) -> Self {
        let n = program.threads.len();
        let mut m = Machine {
            program,
            shared: program.initial.clone(),
            holder: vec![None; program.locks],
            pc: vec![0; n],
            regs: vec![[0; REGISTERS]; n],
            events: vec![0; n],
            trace: Vec::new(),
        };
        for t in 0..n {
            m.run_local(t);
        }
        m
    }

    fn finished(&self, t: ThreadId) -> bool {
        self.pc[t] >= self.program.threads[t].len()
    }

    /// Runs local instructions of `t` up to its next visible one.
    fn run_local(&mut self, t: ThreadId) {
        let code = &self.program.threads[t];
        let mut fuel = 10_000;
        while let Some(&instr) = code.get(self.pc[t]) {
            fuel -= 1;
            assert!(fuel > 0, "model thread {t} loops without visible steps");
            let regs = &mut self.regs[t];
            self.pc[t] = match instr {
                Instr::Set { reg, value } => {
                    regs[reg] = value;
                    self.pc[t] + 1
                }
                Instr::Add { reg, value } => {
                    regs[reg] += value;
                    self.pc[t] + 1
                }
                Instr::Jump { target } => target,
                Instr::JumpIfZero { reg, target } if regs[reg] == 0 => target,
                Instr::JumpIfNonZero { reg, target } if regs[reg] != 0 => target,
                Instr::JumpIfZero { .. } | Instr::JumpIfNonZero { .. } => self.pc[t] + 1,
                _ => return,
            };
        }
    }

    /// Whether `t`'s next visible step can run (a blocking acquire of a
    /// held lock cannot). Used by the oracle, which knows the next step.
    fn can_run(&self, t: ThreadId) -> bool {
        match self.program.threads[t].get(self.pc[t]) {
            None => false,
            Some(Instr::Lock { lock }) | Some(Instr::Pulse { lock, .. }) => {
                self.holder[*lock].is_none()
            }
            Some(Instr::WaitNonZero { var }) => self.shared[*var] != 0,
            Some(_) => true,
        }
    }

    /// Runs `t`'s next visible step and the local code after it.
    fn step(&mut self, t: ThreadId) -> Effect {
        let pc = self.pc[t];
        let instr = self.program.threads[t][pc];
        let id = EventId {
            thread: t,
            index: self.events[t],
            pc,
        };
        let (effect, target, write) = match instr {
            Instr::Load { var, reg } => {
                self.regs[t][reg] = self.shared[var];
                (Effect::Read(var), Target::Var(var), false)
            }
            Instr::LoadIndexed { base, index, reg } => {
                let var = base + self.regs[t][index] as usize;
                self.regs[t][reg] = self.shared[var];
                (Effect::Read(var), Target::Var(var), false)
            }
            Instr::Store { var, reg } => {
                self.shared[var] = self.regs[t][reg];
                (Effect::Write(var), Target::Var(var), true)
            }
            Instr::Lock { lock } => {
                if self.holder[lock].is_some() {
                    return Effect::Blocked(lock);
                }
                self.holder[lock] = Some(t);
                (Effect::Acquire(lock), Target::Lock(lock), true)
            }
            Instr::TryLock { lock, reg } => {
                if self.holder[lock].is_some() {
                    self.regs[t][reg] = 0;
                    (Effect::TryFailed(lock), Target::Lock(lock), false)
                } else {
                    self.regs[t][reg] = 1;
                    self.holder[lock] = Some(t);
                    (Effect::TryAcquired(lock), Target::Lock(lock), true)
                }
            }
            Instr::WaitNonZero { var } => {
                if self.shared[var] == 0 {
                    return Effect::WaitBlocked(var);
                }
                (Effect::Read(var), Target::Var(var), false)
            }
            Instr::Pulse { lock, store } => {
                if self.holder[lock].is_some() {
                    return Effect::Blocked(lock);
                }
                self.events[t] += 1;
                self.trace.push((Target::Lock(lock), id, true));
                if let Some((var, reg)) = store {
                    self.shared[var] = self.regs[t][reg];
                    self.trace.push((Target::Var(var), id, true));
                }
                self.pc[t] = pc + 1;
                self.run_local(t);
                return Effect::Pulse(lock, store.map(|(var, _)| var));
            }
            Instr::Unlock { lock } => {
                assert_eq!(self.holder[lock], Some(t), "model unlocks a lock it lacks");
                self.holder[lock] = None;
                (Effect::Release(lock), Target::Lock(lock), true)
            }
            _ => unreachable!("run_local stops at visible instructions"),
        };
        self.events[t] += 1;
        self.trace.push((target, id, write));
        self.pc[t] = pc + 1;
        self.run_local(t);
        effect
    }

    fn outcome(&self) -> (Outcome, TraceKey) {
        let mut b = TraceBuilder::default();
        for &(target, id, write) in &self.trace {
            b.record(target, id, write);
        }
        let n = self.program.threads.len();
        let outcome = Outcome {
            shared: self.shared.clone(),
            deadlock: (0..n).any(|t| !self.finished(t)),
        };
        (outcome, b.finish())
    }
}

/// One execution explored by [`explore`].
#[derive(Clone, Debug)]
pub struct Explored {
    pub outcome: Outcome,
    pub trace: TraceKey,
    pub report: ExecutionReport,
}

/// Everything [`explore`] saw.
#[derive(Clone, Debug)]
pub struct Exploration {
    pub executions: Vec<Explored>,
    pub stats: Stats,
    /// Every trace was explored ([`Explorer::complete`]).
    pub complete: bool,
}

impl Exploration {
    /// The distinct final states.
    pub fn outcomes(&self) -> BTreeSet<Outcome> {
        self.executions.iter().map(|e| e.outcome.clone()).collect()
    }

    /// The distinct traces.
    pub fn traces(&self) -> BTreeSet<TraceKey> {
        self.executions.iter().map(|e| e.trace.clone()).collect()
    }
}

/// Object keys of the model: variables and locks are separate key spaces
/// in the engine, so plain indices will do.
fn key(index: usize) -> u64 {
    index as u64
}

/// Runs one execution of `program` under `explorer`; `None` when the
/// explorer has nothing left to explore.
pub fn run_once(
    program: &Program,
    explorer: &mut Explorer,
) -> Result<Option<Explored>, EngineError> {
    let Some((m, report)) = drive(program, explorer)? else {
        return Ok(None);
    };
    let (outcome, trace) = m.outcome();
    Ok(Some(Explored {
        outcome,
        trace,
        report,
    }))
}

/// Reports `t`'s write of variable `v` and wakes the threads waiting for it.
fn store(
    explorer: &mut Explorer,
    waiting: &mut [Option<usize>],
    t: ThreadId,
    v: usize,
) -> Result<(), EngineError> {
    explorer.access(t, key(v), AccessKind::Write)?;
    for (w, on) in waiting.iter_mut().enumerate() {
        if *on == Some(v) {
            *on = None;
            explorer.unblock(w)?;
        }
    }
    Ok(())
}

fn drive<'p>(
    program: &'p Program,
    explorer: &mut Explorer,
) -> Result<Option<(Machine<'p>, ExecutionReport)>, EngineError> {
    if !explorer.begin_execution()? {
        return Ok(None);
    }
    let mut m = Machine::new(program);
    let mut waiting = vec![None; program.threads.len()];
    for t in 0..program.threads.len() {
        if m.finished(t) {
            explorer.finish(t)?;
        }
    }
    while let Some(t) = explorer.schedule()? {
        match m.step(t) {
            Effect::Read(v) => explorer.access(t, key(v), AccessKind::Read)?,
            Effect::Write(v) => store(explorer, &mut waiting, t, v)?,
            Effect::WaitBlocked(v) => {
                explorer.access(t, key(v), AccessKind::Read)?;
                explorer.block(t, key(v))?;
                waiting[t] = Some(v);
            }
            Effect::Pulse(l, written) => {
                explorer.lock_acquire(t, key(l))?;
                explorer.lock_release(t, key(l))?;
                if let Some(v) = written {
                    store(explorer, &mut waiting, t, v)?;
                }
            }
            Effect::Acquire(l) => explorer.lock_acquire(t, key(l))?,
            Effect::TryAcquired(l) => explorer.lock_try_acquire(t, key(l))?,
            Effect::Release(l) => explorer.lock_release(t, key(l))?,
            Effect::Blocked(l) => explorer.block_on_lock(t, key(l))?,
            Effect::TryFailed(l) => explorer.lock_try_fail(t, key(l))?,
        }
        if m.finished(t) {
            explorer.finish(t)?;
        }
    }
    let report = explorer.end_execution()?;
    Ok(Some((m, report)))
}

/// Explores `program` exhaustively (within `config`'s limits).
pub fn explore(program: &Program, config: Config) -> Result<Exploration, EngineError> {
    let mut explorer = Explorer::new(program.threads.len(), config)?;
    let mut executions = Vec::new();
    while let Some(e) = run_once(program, &mut explorer)? {
        executions.push(e);
    }
    Ok(Exploration {
        executions,
        stats: explorer.stats(),
        complete: explorer.complete(),
    })
}

/// Explores `program` and returns only the number of executions and the
/// counters, without collecting per-execution results (for benchmarks).
pub fn count(program: &Program, config: Config) -> Result<Stats, EngineError> {
    let mut explorer = Explorer::new(program.threads.len(), config)?;
    while drive(program, &mut explorer)?.is_some() {}
    Ok(explorer.stats())
}

/// The oracle: every interleaving of `program`, as (final state, trace)
/// pairs, one per schedule. A thread whose next step is a blocking acquire
/// of a held lock is not runnable. With `preemption_bound`, only schedules
/// with at most that many preemptions are enumerated.
pub fn enumerate(program: &Program, preemption_bound: Option<u32>) -> Vec<(Outcome, TraceKey)> {
    fn go(
        m: &Machine<'_>,
        prev: Option<ThreadId>,
        preemptions: u32,
        bound: Option<u32>,
        out: &mut Vec<(Outcome, TraceKey)>,
    ) {
        let n = m.program.threads.len();
        let runnable: Vec<ThreadId> = (0..n).filter(|&t| m.can_run(t)).collect();
        if runnable.is_empty() {
            out.push(m.outcome());
            return;
        }
        for &t in &runnable {
            let preempts = prev.is_some_and(|p| p != t && runnable.contains(&p));
            let count = preemptions + u32::from(preempts);
            if bound.is_some_and(|b| count > b) {
                continue;
            }
            let mut next = m.clone();
            next.step(t);
            go(&next, Some(t), count, bound, out);
        }
    }
    let mut out = Vec::new();
    go(&Machine::new(program), None, 0, preemption_bound, &mut out);
    out
}

/// Classic benchmark programs.
pub mod programs {
    use super::{Instr, Program};

    /// Thread 0 writes `x = 1`; threads `1..=n` each read `x`.
    /// 2^n traces: each read comes before or after the write.
    pub fn readers(n: usize) -> Program {
        let mut threads = vec![vec![
            Instr::Set { reg: 0, value: 1 },
            Instr::Store { var: 0, reg: 0 },
        ]];
        for _ in 0..n {
            threads.push(vec![Instr::Load { var: 0, reg: 0 }]);
        }
        Program {
            initial: vec![0],
            locks: 0,
            threads,
        }
    }

    /// `a[0..=n]` starts zeroed. Thread 0 scans `i = n, n-1, ...` while
    /// `a[i] != 0`; thread `j` in `1..=n` sets `a[j] = a[j-1] + 1`.
    /// (n + 3) * 2^(n - 2) traces (Abdulla et al. 2017, section 10).
    pub fn lastzero(n: usize) -> Program {
        let scanner = vec![
            Instr::Set {
                reg: 1,
                value: n as i64,
            },
            // 1: r0 = a[r1]
            Instr::LoadIndexed {
                base: 0,
                index: 1,
                reg: 0,
            },
            Instr::JumpIfZero { reg: 0, target: 5 },
            Instr::Add { reg: 1, value: -1 },
            Instr::Jump { target: 1 },
        ];
        let mut threads = vec![scanner];
        for j in 1..=n {
            threads.push(vec![
                Instr::Load { var: j - 1, reg: 0 },
                Instr::Add { reg: 0, value: 1 },
                Instr::Store { var: j, reg: 0 },
            ]);
        }
        Program {
            initial: vec![0; n + 1],
            locks: 0,
            threads,
        }
    }

    /// Two threads write the same variable: 2 traces.
    pub fn two_writers() -> Program {
        let w = |v| {
            vec![
                Instr::Set { reg: 0, value: v },
                Instr::Store { var: 0, reg: 0 },
            ]
        };
        Program {
            initial: vec![0],
            locks: 0,
            threads: vec![w(1), w(2)],
        }
    }

    /// `n` threads each read and write their own variable: 1 trace.
    pub fn independent(n: usize) -> Program {
        Program {
            initial: vec![0; n],
            locks: 0,
            threads: (0..n)
                .map(|t| {
                    vec![
                        Instr::Load { var: t, reg: 0 },
                        Instr::Add { reg: 0, value: 1 },
                        Instr::Store { var: t, reg: 0 },
                    ]
                })
                .collect(),
        }
    }

    /// `k` threads increment a counter under one lock: k! traces.
    pub fn locked_counter(k: usize) -> Program {
        let body = vec![
            Instr::Lock { lock: 0 },
            Instr::Load { var: 0, reg: 0 },
            Instr::Add { reg: 0, value: 1 },
            Instr::Store { var: 0, reg: 0 },
            Instr::Unlock { lock: 0 },
        ];
        Program {
            initial: vec![0],
            locks: 1,
            threads: vec![body; k],
        }
    }

    /// `k` threads increment a counter without a lock (`tmp = x; x = tmp + 1`).
    pub fn racy_counter(k: usize) -> Program {
        let body = vec![
            Instr::Load { var: 0, reg: 0 },
            Instr::Add { reg: 0, value: 1 },
            Instr::Store { var: 0, reg: 0 },
        ];
        Program {
            initial: vec![0],
            locks: 0,
            threads: vec![body; k],
        }
    }

    /// Thread 0 takes locks 0 then 1, thread 1 takes 1 then 0.
    pub fn abba() -> Program {
        let order = |a, b| {
            vec![
                Instr::Lock { lock: a },
                Instr::Lock { lock: b },
                Instr::Unlock { lock: b },
                Instr::Unlock { lock: a },
            ]
        };
        Program {
            initial: vec![],
            locks: 2,
            threads: vec![order(0, 1), order(1, 0)],
        }
    }

    /// Like [`abba`] but both threads take lock 0 first.
    pub fn ordered_locks() -> Program {
        let order = vec![
            Instr::Lock { lock: 0 },
            Instr::Lock { lock: 1 },
            Instr::Unlock { lock: 1 },
            Instr::Unlock { lock: 0 },
        ];
        Program {
            initial: vec![],
            locks: 2,
            threads: vec![order.clone(), order],
        }
    }
}
