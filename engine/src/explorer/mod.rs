//! The explorer: one systematic exploration of a concurrent program.
//!
//! # Algorithm
//!
//! Without a preemption bound the explorer implements *Optimal-DPOR* of
//! Abdulla, Aronis, Jonsson and Sagonas, "Source Sets: A Foundation for
//! Optimal Dynamic Partial Order Reduction" (JACM 64(4), 2017), Algorithm 2:
//! every node of the current path keeps a sleep set and a wakeup tree; when
//! an execution ends, each race `e < e'` of it is reversed by inserting
//! `notdep(e, E).e'` into the wakeup tree of the node before `e`, unless a
//! sleeping thread there is a weak initial of that sequence. Race detection
//! uses vector clocks, as in Flanagan and Godefroid, "Dynamic Partial-Order
//! Reduction for Model Checking Software" (POPL 2005).
//!
//! Departures from the paper, and why:
//!
//! * The engine never knows a thread's next step before it runs: the binding
//!   drives real threads. Sleep-set entries and wakeup-tree nodes therefore
//!   carry the accesses their step had when it ran in an earlier execution
//!   (programs are assumed deterministic given the schedule prefix), and a
//!   new node's sleep set is computed when the step leading to it ends.
//! * Locks. A release and the next acquire of the same lock are ordered by
//!   happens-before but cannot be reversed, so an acquire races with the
//!   previous *acquire* of the lock instead (releases are transparent for the
//!   directness test, as in FG05's treatment of locks). A blocking acquire
//!   that finds the lock held is reported as a probe step: it races with the
//!   holder's acquire (this is how a deadlocking order is found) but never
//!   with the release, because a retry after the release is the same trace.
//!   A failed try-acquire is visible to the program, so it also races with
//!   the release. Probes happen after the holder's acquire but nothing
//!   happens after a probe except the prober's own later steps.
//! * Synchronisation that only one order allows (release to the next
//!   blocking acquire, a thread's finish to a join of it, `unblock` to the
//!   woken thread's next step) is a happens-before edge joined into the
//!   thread's clock at once; it is never a race, and races it explains away
//!   are not reported.
//! * A wait that blocks on something other than a lock (`block`) is an
//!   ordinary step: the reads reported with it stay events, so the same
//!   trace may be explored once with the failed check and once without.
//!   That costs redundant executions, never missed ones. Treating such
//!   steps as no-ops, like lock probes, removes the redundancy but lets
//!   executions end sleep-set blocked: the engine learns that a thread will
//!   block only by letting it try, and when every other runnable thread
//!   sleeps, what follows the failed try is already covered.
//! * If a planned thread cannot run (non-determinism), the plan below that
//!   node is dropped and counted in [`Stats::divergences`] instead of failing.
//!
//! # Preemption bounding
//!
//! With `preemption_bound = Some(b)` the explorer first runs Optimal-DPOR
//! unchanged, checking each choice against the bound. While no choice
//! exceeds it, the bounded search *is* the unbounded one: the same
//! executions, one per trace, all within the bound, so the bound never costs
//! more than full DPOR where full DPOR stays within it.
//!
//! Optimal-DPOR cannot simply be cut to the bound. A sleeping thread stands
//! for traces explored in its branch, but there possibly only in orders with
//! more preemptions than the order that would reach them now; and a race
//! whose reversal exceeds the bound before `e` may be reversible within it
//! elsewhere. Pruning the optimal search loses states the bound allows
//! (found with the differential tests when this was tried). The classic
//! bounded search that does cover them, DPOR with backtrack sets and the
//! conservative extra backtrack points of Coons, Musuvathi and McKinley,
//! "Bounded Partial-Order Reduction" (OOPSLA 2013) (a race `e < e'`
//! schedules thread(e') both just before `e` and at the start of the run of
//! consecutive steps of thread(e) containing `e`, where switching costs no
//! extra preemption, with no sleep sets: a thread asleep at a node may cover
//! traces only in orders beyond the bound, and using sleep sets just where
//! the bound cut nothing from the sleeper's branch still lost states in the
//! differential tests), often costs far more than the optimal search on the
//! programs tests explore (lastzero(6): over a hundred thousand executions
//! against 144).
//!
//! So the optimal search is never cut: the first time one of its executions
//! goes beyond the bound, the conservative search (choices beyond `b`
//! preemptions never taken) starts beside it, and the two take turns, two
//! executions of the optimal search to one of the conservative one, until
//! either is done. Ended by the optimal search, the exploration covered
//! every trace ([`Explorer::complete`]); ended by the conservative one,
//! every schedule within the bound. It costs at most 1.5 times the optimal
//! search, and at most 3 times the conservative one plus the optimal
//! search's executions before the bound first cut in; exactly the optimal
//! search where that stays within the bound. Executions beyond the bound are real
//! schedules: a failure found there is a failure, with its schedule.

use crate::clock::{ClockTable, VersionVec};
use crate::event::{
    dependent, only_blocked, unknown, Access, AccessKind, ObjectKey, Op, Space, ThreadId,
};
use crate::hash::FastMap;
use crate::report::{
    AbortReason, AccessInfo, Deadlock, ExecutionReport, Race, Stats, WaitEdge, WaitTarget,
};
use crate::wakeup::{SeqStep, WakeupTree};
use crate::{Config, EngineError};

/// Largest number of threads one explorer handles (thread sets are bit sets).
pub const MAX_THREADS: usize = 64;

type ThreadSet = u64;

#[inline]
fn bit(t: ThreadId) -> ThreadSet {
    1u64 << t
}

mod events;
mod execution;
mod plan;

use execution::{AccRef, Candidate, Execution, Pred, Step};
use plan::{Node, SleepEntry};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Running,
}

/// The state of one search over the executions (see the module docs on
/// preemption bounding): its path of scheduling points and what it plans
/// next. The explorer holds the running one in its own fields.
#[derive(Debug, Default)]
struct Search {
    path: Vec<Node>,
    branch_point: usize,
    bounded_choice: Option<ThreadId>,
    conservative: bool,
    exhausted: bool,
}

/// One exploration of a program with a fixed number of threads.
///
/// Drive it as: `begin_execution`; then repeatedly `schedule` and let the
/// returned thread run one step, reporting its events; when `schedule`
/// returns `None`, `end_execution`. Repeat while `begin_execution` returns
/// `true`.
///
/// Only the thread `schedule` returned may report events, and only until
/// the next `schedule` call: events collected elsewhere (such as native I/O
/// drained from the event ring) must be reported before that call. A
/// rejected call returns an error, records nothing, and leaves the
/// explorer usable.
#[derive(Debug)]
pub struct Explorer {
    num_threads: usize,
    config: Config,
    path: Vec<Node>,
    /// Steps of the next execution that repeat the stored path; the step at
    /// this index takes the branch planned there.
    branch_point: usize,
    /// Bounded mode: the thread to run at `branch_point`.
    bounded_choice: Option<ThreadId>,
    /// Bounded mode: the search has switched from optimal DPOR to the
    /// conservative bounded search (see the module docs).
    conservative: bool,
    /// Bounded mode, optimal search: this execution took a choice beyond
    /// the bound.
    beyond_bound: bool,
    /// Bounded mode, once some execution of the optimal search went beyond
    /// the bound: the search not running now (the two take turns, one
    /// execution each; see the module docs).
    other: Option<Box<Search>>,
    /// The search ended because the optimal search was exhausted: every
    /// trace was explored, whatever the bound.
    complete: bool,
    /// Bounded mode: executions of the optimal search since the
    /// conservative one joined it.
    optimal_turns: u32,
    /// Replay mode: the schedule to follow, and whether it was used.
    forced: Option<Vec<ThreadId>>,
    exhausted: bool,
    phase: Phase,
    exec: Execution,
    stats: Stats,
    /// Scratch sequence for wakeup-tree insertion.
    seq: Vec<SeqStep>,
}

impl Explorer {
    /// An explorer for `num_threads` threads (ids `0..num_threads`).
    pub fn new(num_threads: usize, config: Config) -> Result<Self, EngineError> {
        if num_threads == 0 || num_threads > MAX_THREADS {
            return Err(EngineError::ThreadCount {
                requested: num_threads,
                max: MAX_THREADS,
            });
        }
        Ok(Explorer {
            num_threads,
            config,
            path: Vec::new(),
            branch_point: 0,
            bounded_choice: None,
            conservative: false,
            beyond_bound: false,
            other: None,
            complete: false,
            optimal_turns: 0,
            forced: None,
            exhausted: false,
            phase: Phase::Idle,
            exec: Execution::new(num_threads),
            stats: Stats::default(),
            seq: Vec::new(),
        })
    }

    /// An explorer that runs exactly one execution: it follows `schedule`
    /// step by step, then makes the default choices.
    pub fn replay(
        num_threads: usize,
        schedule: Vec<ThreadId>,
        config: Config,
    ) -> Result<Self, EngineError> {
        let mut explorer = Explorer::new(num_threads, config)?;
        if let Some(&t) = schedule.iter().find(|&&t| t >= num_threads) {
            return Err(EngineError::UnknownThread {
                thread: t,
                num_threads,
            });
        }
        explorer.forced = Some(schedule);
        Ok(explorer)
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The number of threads this explorer was made for.
    pub fn num_threads(&self) -> usize {
        self.num_threads
    }

    fn bounded(&self) -> Option<u32> {
        self.config.preemption_bound
    }

    /// Whether the search runs optimal DPOR: always without a bound, and
    /// under one until some execution needs a step beyond it.
    fn optimal(&self) -> bool {
        self.bounded().is_none() || !self.conservative
    }

    /// Starts the next execution. `Ok(false)` when every interleaving has
    /// been explored or `max_executions` is reached.
    pub fn begin_execution(&mut self) -> Result<bool, EngineError> {
        if self.phase == Phase::Running {
            return Err(EngineError::ExecutionInProgress);
        }
        let total = self.stats.executions_completed + self.stats.executions_aborted;
        if self.exhausted || self.config.max_executions.is_some_and(|m| total >= m) {
            return Ok(false);
        }
        self.exec.clear();
        self.beyond_bound = false;
        self.phase = Phase::Running;
        Ok(true)
    }

    fn check_thread(&self, t: ThreadId) -> Result<(), EngineError> {
        if t >= self.num_threads {
            return Err(EngineError::UnknownThread {
                thread: t,
                num_threads: self.num_threads,
            });
        }
        Ok(())
    }

    /// Checks that `t` may report an event now: it is the scheduled thread
    /// of the open step and has not finished.
    fn check_current(&self, call: &'static str, t: ThreadId) -> Result<(), EngineError> {
        self.check_thread(t)?;
        if self.phase != Phase::Running {
            return Err(EngineError::NoExecution { call });
        }
        if self.exec.current != Some(t) {
            return Err(EngineError::NotScheduled {
                call,
                thread: t,
                scheduled: self.exec.current,
            });
        }
        if self.exec.finished & bit(t) != 0 {
            return Err(EngineError::ThreadFinished { call, thread: t });
        }
        Ok(())
    }

    /// Picks the thread that runs the next step, ending the current step.
    /// `None` when the execution is over: every thread finished, the
    /// remaining ones are deadlocked, or the execution was aborted (see the
    /// report of `end_execution`).
    pub fn schedule(&mut self) -> Result<Option<ThreadId>, EngineError> {
        if self.phase != Phase::Running {
            return Err(EngineError::NoExecution { call: "schedule" });
        }
        self.close_step();
        if self.exec.over {
            return Ok(None);
        }
        let k = self.exec.steps.len();
        let n = self.num_threads;
        let enabled = self.exec.enabled(n);
        if enabled == 0 {
            self.exec.over = true;
            // A thread still waiting for its spawn was never part of this
            // execution (its parent did not start it this time).
            for t in 0..n {
                if self.exec.wait[t] == Some(WaitTarget::Spawn) && self.exec.thread_steps[t] == 0 {
                    self.exec.wait[t] = None;
                    self.exec.finished |= bit(t);
                }
            }
            if self.exec.finished.count_ones() as usize != n {
                self.exec.deadlock = Some(self.find_deadlock());
            }
            return Ok(None);
        }
        if k as u64 >= self.config.max_branches {
            self.exec.over = true;
            self.exec.aborted = Some(AbortReason::MaxBranches {
                limit: self.config.max_branches,
            });
            return Ok(None);
        }
        let prev = k.checked_sub(1).map(|p| self.exec.steps[p].thread);
        if k > 0 {
            self.path[k - 1].yielded = std::mem::take(&mut self.exec.yielded);
        }
        let choice = match self.choose(k, enabled, prev)? {
            Some(t) => t,
            None => {
                self.exec.over = true;
                self.exec.aborted = Some(AbortReason::SleepSetBlocked);
                self.stats.sleep_blocked += 1;
                return Ok(None);
            }
        };
        let preempted = self.preempts(k, prev, choice, enabled);
        let before = if k == 0 {
            0
        } else {
            self.path[k - 1].preemptions
        };
        let node = &mut self.path[k];
        node.thread = choice;
        node.enabled = enabled;
        node.preemptions = before + u32::from(preempted);
        self.open_step(choice);
        self.stats.scheduling_points += 1;
        Ok(Some(choice))
    }

    /// The choice at step `k`; `None` if every enabled thread sleeps.
    fn choose(
        &mut self,
        k: usize,
        enabled: ThreadSet,
        prev: Option<ThreadId>,
    ) -> Result<Option<ThreadId>, EngineError> {
        if self.path.len() <= k + 1 {
            self.path.resize_with(k + 2, Node::default);
        }
        if let Some(forced) = &self.forced {
            if let Some(&t) = forced.get(k) {
                if enabled & bit(t) == 0 {
                    return Err(EngineError::ReplayDiverged {
                        step: k,
                        expected: t,
                        runnable: (0..self.num_threads)
                            .filter(|&u| enabled & bit(u) != 0)
                            .collect(),
                    });
                }
                self.path[k + 1].wut.clear();
                self.path[k + 1].reset();
                return Ok(Some(t));
            }
            self.path[k].reset();
            self.path[k].wut.clear();
            self.path[k + 1].wut.clear();
            return Ok(Some(default_choice(enabled, prev, self.after_yield(k))));
        }
        if k < self.branch_point {
            let t = self.path[k].thread;
            if enabled & bit(t) != 0 {
                return Ok(Some(t));
            }
            // The program did not repeat itself; give up the plan below here.
            self.stats.divergences += 1;
            self.branch_point = k;
            self.bounded_choice = None;
            self.path[k].wut.clear();
        }
        if k > self.branch_point {
            // A fresh node: its sleep set follows from its parent's.
            let optimal = self.optimal();
            let (parents, rest) = self.path.split_at_mut(k);
            let parent = &parents[k - 1];
            let node = &mut rest[0];
            node.reset();
            if optimal {
                let no_op = only_blocked(&parent.event);
                for e in &parent.sleep {
                    let acc = &parent.sleep_accesses[e.start as usize..e.end as usize];
                    if no_op || !dependent(acc, &parent.event) {
                        let start = node.sleep_accesses.len() as u32;
                        node.sleep_accesses.extend_from_slice(acc);
                        node.sleep.push(SleepEntry {
                            thread: e.thread,
                            start,
                            end: node.sleep_accesses.len() as u32,
                        });
                    }
                }
            }
        }
        if let Some(bound_choice) = self.bounded_choice.filter(|_| k == self.branch_point) {
            self.bounded_choice = None;
            self.path[k + 1].wut.clear();
            if enabled & bit(bound_choice) != 0 {
                return Ok(Some(bound_choice));
            }
            self.stats.divergences += 1;
        }
        if self.optimal() {
            let before = k.checked_sub(1).map_or(0, |p| self.path[p].preemptions);
            let bound = self.bounded();
            let after_yield = self.after_yield(k);
            let fits = |t: ThreadId| {
                let preempts =
                    !after_yield && prev.is_some_and(|p| p != t && enabled & bit(p) != 0);
                bound.is_none_or(|b| before + u32::from(preempts) <= b)
            };
            let (here, below) = self.path.split_at_mut(k + 1);
            let node = &mut here[k];
            let mut choice = None;
            while let Some(t) = node.wut.first_thread() {
                if enabled & bit(t) != 0 {
                    node.wut.take_first(&mut below[0].wut);
                    choice = Some(t);
                    break;
                }
                self.stats.divergences += 1;
                node.wut.unlink_first();
            }
            if choice.is_none() {
                below[0].wut.clear();
                let candidates = enabled & !node.sleeping();
                if candidates == 0 {
                    return Ok(None);
                }
                choice = Some(default_choice(candidates, prev, after_yield));
            }
            let t = choice.expect("chosen above");
            if !fits(t) {
                // The optimal search goes on past the bound; the
                // conservative bounded search joins it after this
                // execution.
                self.beyond_bound = true;
            }
            return Ok(Some(t));
        }
        self.path[k + 1].wut.clear();
        Ok(Some(default_choice(enabled, prev, self.after_yield(k))))
    }

    /// Whether the step before step `k` ended in a yield.
    fn after_yield(&self, k: usize) -> bool {
        k > 0 && self.path[k - 1].yielded
    }

    /// Whether running `t` at step `k` after `prev` is a preemption:
    /// `prev` could have gone on and did not yield.
    fn preempts(&self, k: usize, prev: Option<ThreadId>, t: ThreadId, enabled: ThreadSet) -> bool {
        !self.after_yield(k) && prev.is_some_and(|p| p != t && enabled & bit(p) != 0)
    }

    /// The open step of thread `t` yields (`time.sleep` in a worker): the
    /// next step preferably goes to another thread, and switching to one
    /// counts as no preemption.
    pub fn yield_now(&mut self, t: ThreadId) -> Result<(), EngineError> {
        self.check_current("yield_now", t)?;
        self.exec.yielded = true;
        Ok(())
    }
}

impl Explorer {
    /// Ends the execution: reverses its races for later executions and
    /// returns what happened.
    pub fn end_execution(&mut self) -> Result<ExecutionReport, EngineError> {
        if self.phase != Phase::Running {
            return Err(EngineError::NoExecution {
                call: "end_execution",
            });
        }
        self.close_step();
        if !self.exec.over {
            self.exec.aborted = Some(AbortReason::EndedEarly);
        }
        let len = self.exec.steps.len();
        if self.forced.is_some() {
            self.exhausted = true;
        } else if !self.optimal() {
            self.plan_bounded();
        } else {
            self.plan_optimal();
        }
        let report = self.report();
        if report.aborted.is_some() {
            self.stats.executions_aborted += 1;
        } else {
            self.stats.executions_completed += 1;
        }
        if report.deadlock.is_some() {
            self.stats.deadlocks += 1;
        }
        self.stats.races += report.races.len() as u64;
        if self.forced.is_none() {
            if !self.optimal() {
                self.backtrack_bounded(len);
            } else {
                self.backtrack_optimal(len);
                if self.exhausted {
                    self.complete = true;
                }
            }
            if self.beyond_bound && self.other.is_none() && !self.exhausted {
                // Optimal DPOR cannot be cut to a bound (pruning it misses
                // states the bound allows), and the conservative bounded
                // search can cost far more than it: run both, taking
                // turns, until either is done.
                self.other = Some(Box::new(Search {
                    conservative: true,
                    ..Search::default()
                }));
            }
            if !self.exhausted {
                self.take_turns();
            }
        }
        self.phase = Phase::Idle;
        Ok(report)
    }

    /// Bounded mode: after two executions of the optimal search, one of
    /// the conservative search (the optimal one is usually the cheaper on
    /// the small programs tests explore; the share keeps the exploration
    /// within 1.5 times its cost, and 3 times the conservative search's).
    fn take_turns(&mut self) {
        let Some(other) = self.other.as_deref_mut() else {
            return;
        };
        if !self.conservative {
            self.optimal_turns += 1;
            if self.optimal_turns % 2 == 1 {
                return;
            }
        }
        std::mem::swap(&mut self.path, &mut other.path);
        std::mem::swap(&mut self.branch_point, &mut other.branch_point);
        std::mem::swap(&mut self.bounded_choice, &mut other.bounded_choice);
        std::mem::swap(&mut self.conservative, &mut other.conservative);
        std::mem::swap(&mut self.exhausted, &mut other.exhausted);
    }

    /// Whether the exploration is over because every trace was explored:
    /// always so for an exhausted search without a bound; under a bound,
    /// when the optimal search (which the bound never cuts) finished first.
    pub fn complete(&self) -> bool {
        self.complete
    }

    fn report(&self) -> ExecutionReport {
        let ex = &self.exec;
        let info = |r: &AccRef| {
            let a = ex.accesses[r.acc as usize];
            AccessInfo {
                step: r.step as usize,
                thread: r.thread as usize,
                key: a.key,
                kind: match a.op {
                    Op::Read | Op::BlockProbe | Op::TryFail => AccessKind::Read,
                    _ => AccessKind::Write,
                },
                is_io: a.space == Space::Io,
                is_lock: a.space == Space::Lock,
            }
        };
        ExecutionReport {
            schedule: ex.steps.iter().map(|s| s.thread).collect(),
            races: ex
                .races
                .iter()
                .map(|(a, b)| Race {
                    first: info(a),
                    second: info(b),
                })
                .collect(),
            deadlock: ex.deadlock.clone(),
            aborted: ex.aborted.clone(),
            preemptions: ex
                .steps
                .len()
                .checked_sub(1)
                .map_or(0, |last| self.path[last].preemptions),
        }
    }
}

/// Fewest preemptions: keep the previous thread if it may run, else the
/// lowest-numbered candidate. After a yield, the next candidate after the
/// previous thread, in thread order round to the start.
fn default_choice(candidates: ThreadSet, prev: Option<ThreadId>, after_yield: bool) -> ThreadId {
    match prev {
        Some(p) if after_yield => {
            let later = candidates & !(bit(p) | (bit(p) - 1));
            if later != 0 {
                later.trailing_zeros() as ThreadId
            } else {
                candidates.trailing_zeros() as ThreadId
            }
        }
        Some(p) if candidates & bit(p) != 0 => p,
        _ => candidates.trailing_zeros() as ThreadId,
    }
}
