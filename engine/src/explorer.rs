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
use crate::event::{dependent, only_blocked, Access, AccessKind, ObjectKey, Op, Space, ThreadId};
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

type KeyMap = FastMap<(Space, ObjectKey), u32>;

/// A sleeping thread and the accesses its step had when it was explored.
#[derive(Clone, Copy, Debug)]
struct SleepEntry {
    thread: ThreadId,
    start: u32,
    end: u32,
}

/// One scheduling point of the path. Nodes persist across executions up to
/// the branch point; deeper ones are rebuilt by each execution.
#[derive(Debug, Default)]
struct Node {
    /// Thread chosen here in the latest execution through this node.
    thread: ThreadId,
    /// Threads able to run here.
    enabled: ThreadSet,
    /// Preemptions in the schedule up to and including this step.
    preemptions: u32,
    /// The step taken here ended in a yield: switching away from it after
    /// this step is no preemption.
    yielded: bool,
    /// Accesses of the step taken here (what `thread` did).
    event: Vec<Access>,
    /// Threads whose exploration from here is covered elsewhere.
    sleep: Vec<SleepEntry>,
    sleep_accesses: Vec<Access>,
    /// Sequences still to explore from here (unbounded mode).
    wut: WakeupTree,
    /// Bounded mode: threads to try from here, and threads tried.
    backtrack: ThreadSet,
    done: ThreadSet,
}

impl Node {
    fn reset(&mut self) {
        self.event.clear();
        self.sleep.clear();
        self.sleep_accesses.clear();
        self.backtrack = 0;
        self.done = 0;
    }

    fn sleeping(&self) -> ThreadSet {
        self.sleep.iter().fold(0, |s, e| s | bit(e.thread))
    }
}

/// A reference to one access of one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AccRef {
    step: u32,
    thread: u32,
    /// Index of the access in `Execution::accesses`.
    acc: u32,
}

#[derive(Debug, Default)]
struct ObjectState {
    last_write: Option<AccRef>,
    /// Latest read of each thread since the last write.
    reads: Vec<AccRef>,
    holder: Option<ThreadId>,
    last_acquire: Option<AccRef>,
    last_release: Option<AccRef>,
    /// Failed try-acquires since the last acquire.
    try_fails: Vec<AccRef>,
}

impl ObjectState {
    fn reset(&mut self) {
        self.last_write = None;
        self.reads.clear();
        self.holder = None;
        self.last_acquire = None;
        self.last_release = None;
        self.try_fails.clear();
    }
}

#[derive(Clone, Copy, Debug)]
struct Step {
    thread: ThreadId,
    /// 1-based position among the steps of `thread`.
    local: u32,
    acc_start: u32,
    acc_end: u32,
}

/// A conflicting earlier step the open step happens after.
#[derive(Clone, Copy, Debug)]
struct Pred {
    step: u32,
    /// The access of the open step that conflicts with it.
    at: u32,
}

/// A possible race of the open step: earlier access `first` against the
/// step's access `second`.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    first: AccRef,
    second: u32,
    /// `second` is a blocking acquire racing with the previous acquire of
    /// its lock: only what the step did before it can make the race
    /// indirect (see `close_step`).
    acquire: bool,
}

/// The state of one execution; `clear()` resets it keeping allocations.
#[derive(Debug)]
struct Execution {
    steps: Vec<Step>,
    accesses: Vec<Access>,
    clocks: ClockTable,
    thread_clock: Vec<VersionVec>,
    thread_steps: Vec<u32>,
    finished: ThreadSet,
    wait: Vec<Option<WaitTarget>>,
    holds: Vec<Vec<ObjectKey>>,
    finish_step: Vec<Option<u32>>,
    /// Step that woke each thread with `unblock`, until its next step.
    woken_by: Vec<Option<u32>>,
    object_ids: KeyMap,
    objects: Vec<ObjectState>,
    live_objects: usize,
    /// Thread of the open step, if one is open.
    current: Option<ThreadId>,
    preds: Vec<Pred>,
    candidates: Vec<Candidate>,
    spawned: Vec<ThreadId>,
    /// Races found so far: (first access, second access).
    races: Vec<(AccRef, AccRef)>,
    /// Set once `schedule()` returned `None`.
    over: bool,
    deadlock: Option<Deadlock>,
    aborted: Option<AbortReason>,
    /// The open step's thread yielded ([`Explorer::yield_now`]).
    yielded: bool,
}

impl Execution {
    fn new(n: usize) -> Self {
        Execution {
            steps: Vec::new(),
            accesses: Vec::new(),
            clocks: ClockTable::new(n),
            thread_clock: vec![VersionVec::new(n); n],
            thread_steps: vec![0; n],
            finished: 0,
            wait: vec![None; n],
            holds: vec![Vec::new(); n],
            finish_step: vec![None; n],
            woken_by: vec![None; n],
            object_ids: KeyMap::default(),
            objects: Vec::new(),
            live_objects: 0,
            current: None,
            preds: Vec::new(),
            candidates: Vec::new(),
            spawned: Vec::new(),
            races: Vec::new(),
            yielded: false,
            over: false,
            deadlock: None,
            aborted: None,
        }
    }

    fn clear(&mut self) {
        self.steps.clear();
        self.accesses.clear();
        self.clocks.clear();
        self.thread_clock.iter_mut().for_each(VersionVec::clear);
        self.thread_steps.iter_mut().for_each(|s| *s = 0);
        self.finished = 0;
        self.wait.iter_mut().for_each(|w| *w = None);
        self.holds.iter_mut().for_each(Vec::clear);
        self.finish_step.iter_mut().for_each(|f| *f = None);
        self.woken_by.iter_mut().for_each(|f| *f = None);
        self.object_ids.clear();
        self.live_objects = 0;
        self.current = None;
        self.preds.clear();
        self.candidates.clear();
        self.spawned.clear();
        self.races.clear();
        self.over = false;
        self.deadlock = None;
        self.aborted = None;
        self.yielded = false;
    }

    fn object(&mut self, space: Space, key: ObjectKey) -> usize {
        let next = self.live_objects as u32;
        let id = *self.object_ids.entry((space, key)).or_insert(next) as usize;
        if id == self.live_objects {
            if self.objects.len() == id {
                self.objects.push(ObjectState::default());
            } else {
                self.objects[id].reset();
            }
            self.live_objects += 1;
        }
        id
    }

    fn enabled(&self, n: usize) -> ThreadSet {
        let mut set = 0;
        for t in 0..n {
            if self.finished & bit(t) == 0 && self.wait[t].is_none() {
                set |= bit(t);
            }
        }
        set
    }
}

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

    fn open_step(&mut self, t: ThreadId) {
        let ex = &mut self.exec;
        ex.thread_steps[t] += 1;
        let local = ex.thread_steps[t];
        ex.thread_clock[t].set(t, local);
        let start = ex.accesses.len() as u32;
        ex.steps.push(Step {
            thread: t,
            local,
            acc_start: start,
            acc_end: start,
        });
        ex.current = Some(t);
        if let Some(from) = ex.woken_by[t].take() {
            self.sync_from(from);
        }
    }

    /// Ends the open step: computes its clock and its races, and records its
    /// accesses in the path.
    fn close_step(&mut self) {
        let Some(q) = self.exec.current.take() else {
            return;
        };
        let ex = &mut self.exec;
        let s = ex.steps.len() - 1;
        ex.steps[s].acc_end = ex.accesses.len() as u32;
        // A candidate is a race unless another predecessor of this step
        // happens after it. For a blocking acquire, only predecessors of
        // what the step did up to the acquire count: what it touches after
        // taking the lock (a request that locks a row and writes it, in one
        // native call) is ordered after the previous holder's critical
        // section by the lock itself, and must not hide the race between
        // the two acquires, which is the one to reverse.
        let races_before = ex.races.len();
        for c in &ex.candidates {
            let first = &ex.steps[c.first.step as usize];
            let indirect = ex.preds.iter().any(|p| {
                p.step != c.first.step
                    && (!c.acquire || p.at <= c.second)
                    && ex.clocks.entry(p.step as usize, first.thread) >= first.local
            });
            if indirect {
                continue;
            }
            let second = AccRef {
                step: s as u32,
                thread: q as u32,
                acc: c.second,
            };
            if !ex.races[races_before..].contains(&(c.first, second)) {
                ex.races.push((c.first, second));
            }
        }
        ex.candidates.clear();
        for p in &ex.preds {
            let clock = ex.clocks.get(p.step as usize);
            ex.thread_clock[q].join(clock);
        }
        ex.preds.clear();
        ex.clocks.push(&ex.thread_clock[q]);
        for &child in &ex.spawned {
            let (a, b) = if child < q {
                let (lo, hi) = ex.thread_clock.split_at_mut(q);
                (&mut lo[child], &hi[0])
            } else {
                let (lo, hi) = ex.thread_clock.split_at_mut(child);
                (&mut hi[0], &lo[q])
            };
            a.join(b.as_slice());
        }
        ex.spawned.clear();
        let acc = &ex.accesses[ex.steps[s].acc_start as usize..ex.steps[s].acc_end as usize];
        let node = &mut self.path[s];
        if s < self.branch_point && node.event.as_slice() != acc {
            self.stats.divergences += 1;
        }
        node.event.clear();
        node.event.extend_from_slice(acc);
    }

    fn push_access(&mut self, space: Space, key: ObjectKey, op: Op) -> u32 {
        let idx = self.exec.accesses.len() as u32;
        self.exec.accesses.push(Access { space, key, op });
        idx
    }

    fn current_ref(&self, acc: u32) -> AccRef {
        let s = self.exec.steps.len() - 1;
        AccRef {
            step: s as u32,
            thread: self.exec.steps[s].thread as u32,
            acc,
        }
    }

    fn add_pred(&mut self, r: AccRef) {
        if r.step as usize + 1 != self.exec.steps.len() {
            let at = self.exec.accesses.len() as u32 - 1;
            self.exec.preds.push(Pred { step: r.step, at });
        }
    }

    /// Notes a possible race with `first`, unless the scheduled thread
    /// already knows of it (its clock so far, synchronisation included).
    fn add_candidate(&mut self, first: AccRef, second: u32) {
        self.push_candidate(first, second, false);
    }

    fn push_candidate(&mut self, first: AccRef, second: u32, acquire: bool) {
        let s = self.exec.steps.len() - 1;
        let q = self.exec.steps[s].thread;
        let f = &self.exec.steps[first.step as usize];
        if first.step as usize != s
            && f.thread != q
            && self.exec.thread_clock[q].get(f.thread) < f.local
        {
            self.exec.candidates.push(Candidate {
                first,
                second,
                acquire,
            });
        }
    }

    /// A synchronisation edge into the open step from the closed step
    /// `from` (release to acquire, finish to join, wake-up to the woken
    /// thread): it orders `from` before everything the step does next but
    /// is never itself a race to reverse.
    fn sync_from(&mut self, from: u32) {
        let s = self.exec.steps.len() - 1;
        if from as usize >= s {
            return;
        }
        let q = self.exec.steps[s].thread;
        let ex = &mut self.exec;
        ex.thread_clock[q].join(ex.clocks.get(from as usize));
    }

    /// Thread `t` read or wrote the shared object `key` in this step.
    pub fn access(
        &mut self,
        t: ThreadId,
        key: ObjectKey,
        kind: AccessKind,
    ) -> Result<(), EngineError> {
        self.check_current("access", t)?;
        self.data_access(Space::Memory, key, kind);
        Ok(())
    }

    /// Thread `t` read from or wrote to the I/O resource `key` (a socket's
    /// peer, a file) in this step. I/O keys are separate from object keys.
    pub fn io_access(
        &mut self,
        t: ThreadId,
        key: ObjectKey,
        kind: AccessKind,
    ) -> Result<(), EngineError> {
        self.check_current("io_access", t)?;
        self.data_access(Space::Io, key, kind);
        Ok(())
    }

    fn data_access(&mut self, space: Space, key: ObjectKey, kind: AccessKind) {
        let op = match kind {
            AccessKind::Read => Op::Read,
            AccessKind::Write => Op::Write,
        };
        let acc = self.push_access(space, key, op);
        let me = self.current_ref(acc);
        let id = self.exec.object(space, key);
        let last_write = self.exec.objects[id].last_write;
        if let Some(w) = last_write {
            self.add_pred(w);
            self.add_candidate(w, acc);
        }
        match kind {
            AccessKind::Read => {
                let reads = &mut self.exec.objects[id].reads;
                match reads.iter_mut().find(|r| r.thread == me.thread) {
                    Some(r) => *r = me,
                    None => reads.push(me),
                }
            }
            AccessKind::Write => {
                let mut reads = std::mem::take(&mut self.exec.objects[id].reads);
                for &r in &reads {
                    self.add_pred(r);
                    self.add_candidate(r, acc);
                }
                reads.clear();
                let obj = &mut self.exec.objects[id];
                obj.reads = reads;
                obj.last_write = Some(me);
            }
        }
    }

    /// Thread `t` took lock `lock` with a blocking acquire in this step.
    pub fn lock_acquire(&mut self, t: ThreadId, lock: ObjectKey) -> Result<(), EngineError> {
        self.check_current("lock_acquire", t)?;
        self.acquire(t, lock, false)
    }

    /// Thread `t` took lock `lock` with a non-blocking acquire in this step.
    /// Unlike a blocking acquire, it could also have run before the previous
    /// release (and failed there), so it races with that release.
    pub fn lock_try_acquire(&mut self, t: ThreadId, lock: ObjectKey) -> Result<(), EngineError> {
        self.check_current("lock_try_acquire", t)?;
        self.acquire(t, lock, true)
    }

    fn acquire(&mut self, t: ThreadId, lock: ObjectKey, try_: bool) -> Result<(), EngineError> {
        let id = self.exec.object(Space::Lock, lock);
        if let Some(holder) = self.exec.objects[id].holder {
            return Err(EngineError::LockHeld {
                thread: t,
                lock,
                holder,
            });
        }
        let acc = self.push_access(Space::Lock, lock, Op::Acquire);
        let me = self.current_ref(acc);
        let obj = &self.exec.objects[id];
        let (release, acquire) = (obj.last_release, obj.last_acquire);
        // The previous acquire is the race to reverse; the release between
        // them cannot be reversed with a blocking acquire, which could not
        // have run while the lock was held. A try-acquire could have (and
        // failed), so for it the release is a race of its own.
        if let Some(a) = acquire {
            self.push_candidate(a, acc, !try_);
        }
        if let Some(r) = release {
            if try_ {
                self.add_pred(r);
                self.add_candidate(r, acc);
            } else {
                self.sync_from(r.step);
            }
        }
        let obj = &mut self.exec.objects[id];
        obj.holder = Some(t);
        obj.last_acquire = Some(me);
        obj.try_fails.clear();
        self.exec.holds[t].push(lock);
        if self.exec.wait[t] == Some(WaitTarget::Lock(lock)) {
            self.exec.wait[t] = None;
        }
        Ok(())
    }

    /// Thread `t` tried to take lock `lock` without blocking and failed.
    pub fn lock_try_fail(&mut self, t: ThreadId, lock: ObjectKey) -> Result<(), EngineError> {
        self.check_current("lock_try_fail", t)?;
        let me = self.probe(t, lock, Op::TryFail)?;
        let id = self.exec.object(Space::Lock, lock);
        self.exec.objects[id].try_fails.push(me);
        Ok(())
    }

    /// Thread `t` wants lock `lock`, which another thread holds, and waits.
    /// The thread cannot be scheduled until the lock is released; it should
    /// then retry (and report `lock_acquire`).
    pub fn block_on_lock(&mut self, t: ThreadId, lock: ObjectKey) -> Result<(), EngineError> {
        self.check_current("block_on_lock", t)?;
        self.probe(t, lock, Op::BlockProbe)?;
        self.exec.wait[t] = Some(WaitTarget::Lock(lock));
        Ok(())
    }

    fn probe(&mut self, t: ThreadId, lock: ObjectKey, op: Op) -> Result<AccRef, EngineError> {
        let id = self.exec.object(Space::Lock, lock);
        if self.exec.objects[id].holder.is_none() {
            return Err(EngineError::LockFree { thread: t, lock });
        }
        let acc = self.push_access(Space::Lock, lock, op);
        let me = self.current_ref(acc);
        if let Some(a) = self.exec.objects[id].last_acquire {
            self.add_pred(a);
            self.add_candidate(a, acc);
        }
        Ok(me)
    }

    /// Thread `t` released lock `lock`; threads blocked on it may run again.
    pub fn lock_release(&mut self, t: ThreadId, lock: ObjectKey) -> Result<(), EngineError> {
        self.check_current("lock_release", t)?;
        let id = self.exec.object(Space::Lock, lock);
        if self.exec.objects[id].holder != Some(t) {
            return Err(EngineError::LockNotHeld { thread: t, lock });
        }
        let acc = self.push_access(Space::Lock, lock, Op::Release);
        let me = self.current_ref(acc);
        let fails = std::mem::take(&mut self.exec.objects[id].try_fails);
        for &f in &fails {
            self.add_pred(f);
            self.add_candidate(f, acc);
        }
        let obj = &mut self.exec.objects[id];
        obj.try_fails = fails;
        obj.try_fails.clear();
        obj.holder = None;
        obj.last_release = Some(me);
        if let Some(pos) = self.exec.holds[t].iter().rposition(|&l| l == lock) {
            self.exec.holds[t].remove(pos);
        }
        for w in self.exec.wait.iter_mut() {
            if *w == Some(WaitTarget::Lock(lock)) {
                *w = None;
            }
        }
        Ok(())
    }

    /// Thread `t` waits on `on` (an event, condition, queue or native
    /// blocking call) until some thread calls [`unblock`](Self::unblock).
    /// The accesses that make the wait and the wake-up conflict (for example
    /// a read of the event flag and the write that sets it) should be
    /// reported with [`access`](Self::access) as usual.
    pub fn block(&mut self, t: ThreadId, on: ObjectKey) -> Result<(), EngineError> {
        self.check_current("block", t)?;
        self.exec.wait[t] = Some(WaitTarget::Object(on));
        Ok(())
    }

    /// Makes a blocked thread `t` runnable again. Any thread may call it
    /// while an execution runs; unblocking a thread that is not blocked does
    /// nothing.
    pub fn unblock(&mut self, t: ThreadId) -> Result<(), EngineError> {
        self.check_thread(t)?;
        if self.phase != Phase::Running {
            return Err(EngineError::NoExecution { call: "unblock" });
        }
        if matches!(self.exec.wait[t], None | Some(WaitTarget::Spawn)) {
            return Ok(());
        }
        self.exec.wait[t] = None;
        if self.exec.current.is_some() {
            // The woken thread's next step happens after this one.
            self.exec.woken_by[t] = Some((self.exec.steps.len() - 1) as u32);
        }
        Ok(())
    }

    /// Declares that thread `child` starts only when some thread reports
    /// [`spawn`](Self::spawn) for it. Call after `begin_execution`, before
    /// the child's first step.
    pub fn expect_spawn(&mut self, child: ThreadId) -> Result<(), EngineError> {
        self.check_thread(child)?;
        if self.phase != Phase::Running {
            return Err(EngineError::NoExecution {
                call: "expect_spawn",
            });
        }
        if self.exec.thread_steps[child] != 0 {
            return Err(EngineError::AlreadyStarted { child });
        }
        self.exec.wait[child] = Some(WaitTarget::Spawn);
        Ok(())
    }

    /// Thread `parent` started thread `child` in this step: everything the
    /// parent did so far happens before the child's steps.
    pub fn spawn(&mut self, parent: ThreadId, child: ThreadId) -> Result<(), EngineError> {
        self.check_current("spawn", parent)?;
        self.check_thread(child)?;
        if self.exec.thread_steps[child] != 0 || child == parent {
            return Err(EngineError::AlreadyStarted { child });
        }
        if self.exec.wait[child] == Some(WaitTarget::Spawn) {
            self.exec.wait[child] = None;
        }
        self.exec.spawned.push(child);
        Ok(())
    }

    /// Thread `t` joins `target`. If `target` has finished, its steps now
    /// happen before `t`'s; otherwise `t` waits until it finishes and should
    /// then report `join` again.
    pub fn join(&mut self, t: ThreadId, target: ThreadId) -> Result<(), EngineError> {
        self.check_current("join", t)?;
        self.check_thread(target)?;
        if self.exec.finished & bit(target) != 0 {
            self.push_access(Space::Thread, target as u64, Op::Join);
            if let Some(step) = self.exec.finish_step[target] {
                self.sync_from(step);
            }
        } else {
            self.push_access(Space::Thread, target as u64, Op::BlockProbe);
            self.exec.wait[t] = Some(WaitTarget::Thread(target));
        }
        Ok(())
    }

    /// Thread `t` has ended. Call it during `t`'s last step, or at any time
    /// for a thread that never took a step.
    pub fn finish(&mut self, t: ThreadId) -> Result<(), EngineError> {
        self.check_thread(t)?;
        if self.phase != Phase::Running {
            return Err(EngineError::NoExecution { call: "finish" });
        }
        if self.exec.finished & bit(t) != 0 {
            return Err(EngineError::ThreadFinished {
                call: "finish",
                thread: t,
            });
        }
        if self.exec.current == Some(t) {
            self.push_access(Space::Thread, t as u64, Op::Finish);
            self.exec.finish_step[t] = Some((self.exec.steps.len() - 1) as u32);
        } else if self.exec.thread_steps[t] != 0 {
            return Err(EngineError::NotScheduled {
                call: "finish",
                thread: t,
                scheduled: self.exec.current,
            });
        }
        self.exec.finished |= bit(t);
        self.exec.wait[t] = None;
        for w in self.exec.wait.iter_mut() {
            if *w == Some(WaitTarget::Thread(t)) {
                *w = None;
            }
        }
        Ok(())
    }

    /// The wait-for cycle that thread `t` closed by waiting for a lock
    /// ([`block_on_lock`](Self::block_on_lock)), if it closed one: each
    /// thread of the cycle waits for a lock the next one holds. Such a
    /// cycle never resolves, so a driver may end the execution at once
    /// instead of letting the other threads run to their end first; the
    /// deadlock's `blocked` lists every thread waiting now. The cycle starts
    /// at its lowest thread. `None` when `t` waits for no lock or the locks
    /// it waits for lead to no cycle through `t` (one that does not pass
    /// through `t` was returned when it formed).
    pub fn lock_cycle(&self, t: ThreadId) -> Option<Deadlock> {
        let ex = &self.exec;
        let n = self.num_threads;
        if t >= n || self.phase != Phase::Running {
            return None;
        }
        let next = |u: ThreadId| -> Option<ThreadId> {
            match ex.wait[u]? {
                WaitTarget::Lock(k) => {
                    let id = *ex.object_ids.get(&(Space::Lock, k))? as usize;
                    ex.objects[id].holder
                }
                _ => None,
            }
        };
        let mut path = vec![t];
        let mut u = next(t)?;
        while u != t {
            if path.contains(&u) || path.len() > n {
                return None;
            }
            path.push(u);
            u = next(u)?;
        }
        let edge = |v: ThreadId| WaitEdge {
            thread: v,
            holds: ex.holds[v].clone(),
            waits_for: ex.wait[v].unwrap_or(WaitTarget::Spawn),
        };
        let blocked = (0..n).filter(|&v| ex.wait[v].is_some()).map(edge).collect();
        let mut cycle: Vec<WaitEdge> = path.into_iter().map(edge).collect();
        let low = (0..cycle.len())
            .min_by_key(|&i| cycle[i].thread)
            .unwrap_or(0);
        cycle.rotate_left(low);
        Some(Deadlock { cycle, blocked })
    }

    fn find_deadlock(&self) -> Deadlock {
        let ex = &self.exec;
        let edge = |t: ThreadId| -> Option<WaitEdge> {
            ex.wait[t].map(|w| WaitEdge {
                thread: t,
                holds: ex.holds[t].clone(),
                waits_for: w,
            })
        };
        let blocked: Vec<WaitEdge> = (0..self.num_threads).filter_map(edge).collect();
        // Each blocked thread waits for at most one thread: a lock's holder
        // or a joined thread. Follow those edges looking for a cycle.
        let next = |t: ThreadId| -> Option<ThreadId> {
            match ex.wait[t]? {
                WaitTarget::Lock(k) => {
                    let id = *ex.object_ids.get(&(Space::Lock, k))? as usize;
                    ex.objects[id].holder
                }
                WaitTarget::Thread(u) => Some(u),
                WaitTarget::Object(_) | WaitTarget::Spawn => None,
            }
        };
        let mut cycle = Vec::new();
        'start: for start in 0..self.num_threads {
            let mut seen = Vec::new();
            let mut t = start;
            while let Some(u) = next(t) {
                if let Some(pos) = seen.iter().position(|&s| s == t) {
                    cycle = seen[pos..].iter().filter_map(|&v| edge(v)).collect();
                    break 'start;
                }
                seen.push(t);
                t = u;
            }
        }
        Deadlock { cycle, blocked }
    }

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

    /// Algorithm 2, lines 1-6: for each race `e < e'`, insert
    /// `notdep(e, E).e'` into the wakeup tree before `e` unless a sleeping
    /// thread there is a weak initial of it.
    fn plan_optimal(&mut self) {
        let ex = &self.exec;
        let mut last_pair = None;
        for &(first, second) in &ex.races {
            let pair = (first.step, second.step);
            if last_pair == Some(pair) {
                continue;
            }
            last_pair = Some(pair);
            let e = ex.steps[first.step as usize];
            let seq = &mut self.seq;
            seq.clear();
            for j in first.step as usize + 1..ex.steps.len() {
                if j == second.step as usize || ex.clocks.entry(j, e.thread) >= e.local {
                    continue;
                }
                let s = &ex.steps[j];
                if only_blocked(&ex.accesses[s.acc_start as usize..s.acc_end as usize]) {
                    continue;
                }
                seq.push(SeqStep {
                    thread: s.thread,
                    start: s.acc_start,
                    end: s.acc_end,
                });
            }
            let s2 = &ex.steps[second.step as usize];
            seq.push(SeqStep {
                thread: s2.thread,
                start: s2.acc_start,
                end: s2.acc_end,
            });
            let node = &mut self.path[first.step as usize];
            let acc = |s: &SeqStep| &ex.accesses[s.start as usize..s.end as usize];
            let covered = node.sleep.iter().any(|z| {
                let zacc = &node.sleep_accesses[z.start as usize..z.end as usize];
                match seq.iter().position(|s| s.thread == z.thread) {
                    Some(k) => seq[..k].iter().all(|s| !dependent(acc(s), acc(&seq[k]))),
                    None => seq.iter().all(|s| !dependent(zacc, acc(s))),
                }
            });
            if !covered {
                node.wut.insert(seq, &ex.accesses);
            }
        }
    }

    /// Finds the deepest node with something left to explore; the nodes
    /// below it are finished and their threads go to sleep at their parent.
    fn backtrack_optimal(&mut self, len: usize) {
        for j in (0..len).rev() {
            let node = &mut self.path[j];
            let start = node.sleep_accesses.len() as u32;
            node.sleep_accesses.extend_from_slice(&node.event);
            node.sleep.push(SleepEntry {
                thread: node.thread,
                start,
                end: node.sleep_accesses.len() as u32,
            });
            if !node.wut.is_empty() {
                self.branch_point = j;
                return;
            }
        }
        self.exhausted = true;
    }

    /// Classic DPOR planning under a preemption bound (see module docs).
    fn plan_bounded(&mut self) {
        let ex = &self.exec;
        for &(first, second) in &ex.races {
            let i = first.step as usize;
            let q = ex.steps[second.step as usize].thread;
            let p = ex.steps[i].thread;
            let mut j = i;
            while j > 0 && self.path[j - 1].thread == p {
                j -= 1;
            }
            for at in [i, j] {
                let node = &mut self.path[at];
                if node.enabled & bit(q) != 0 {
                    node.backtrack |= bit(q);
                } else {
                    node.backtrack |= node.enabled;
                }
            }
        }
    }

    fn backtrack_bounded(&mut self, len: usize) {
        let bound = self.bounded().unwrap_or(u32::MAX);
        for j in (0..len).rev() {
            let before = if j == 0 {
                0
            } else {
                self.path[j - 1].preemptions
            };
            let prev = j.checked_sub(1).map(|p| self.path[p].thread);
            let after_yield = j > 0 && self.path[j - 1].yielded;
            let node = &mut self.path[j];
            node.done |= bit(node.thread);
            let mut todo = node.backtrack & node.enabled & !node.done;
            while todo != 0 {
                let t = todo.trailing_zeros() as ThreadId;
                todo &= todo - 1;
                let preempts =
                    !after_yield && prev.is_some_and(|p| p != t && node.enabled & bit(p) != 0);
                if before + u32::from(preempts) <= bound {
                    self.branch_point = j;
                    self.bounded_choice = Some(t);
                    return;
                }
                // Out of budget here: never try it again at this node.
                node.done |= bit(t);
            }
        }
        self.exhausted = true;
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
