//! The state of the running execution and the passing of the turn: who
//! holds it, what each worker is doing (`ThreadSlot`), and granting the
//! step the explorer chose.

use crate::codeinfo::CodeCache;
use crate::error::{SessionError, SessionResult};
use crate::keys::KeyTable;
use crate::mode::Mode;
use frontrun_engine::{AccessKind, Deadlock, EngineError, Explorer, ThreadId};
use pyo3::prelude::*;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Running,
    Done,
    Aborted(String),
}

/// One step as it happened: who, where, and which accesses.
#[derive(Clone, Debug)]
pub struct StepRecord {
    pub thread: ThreadId,
    pub code: usize,
    pub offset: u32,
    pub accesses: Vec<(u64, bool)>,
    /// Cooperative synchronisation done in this step: (operation, key).
    pub sync: Vec<(&'static str, u64)>,
    /// C-level accesses seen in this step (libfrontrun_io.so).
    pub native: Vec<crate::native::NativeAccess>,
}

/// What the session knows of one worker in the running execution.
#[derive(Clone, Debug, Default)]
pub(crate) struct ThreadSlot {
    pub(crate) turn: Turn,
    /// In a request/answer exchange with a server (`io_hold`): while it
    /// holds the turn it keeps it, and its instructions join its step. Not
    /// part of `turn`: the flag outlives a cooperative wait inside the
    /// exchange and counts again once the worker holds the turn.
    pub(crate) holding: bool,
    /// Last visible instruction: (code, offset).
    pub(crate) last_seen: Option<(usize, u32)>,
    /// Its last cooperative wait was ended by a modelled timeout; read
    /// (and cleared) when the wait returns.
    pub(crate) timed_out: bool,
    /// The thread it is parked joining (`spawn.rs`).
    pub(crate) joining: Option<ThreadId>,
    /// Processes it started and has not reaped (`spawn.rs`): while there
    /// are any it keeps the turn, as in an exchange with a server, since
    /// what they do runs at its own pace and joins the step that reaps
    /// them.
    pub(crate) children: u32,
    /// Threads its native code started and has not joined (`native.rs`'s
    /// `threads`): it keeps the turn while there are any, likewise.
    pub(crate) native_threads: u32,
}

impl ThreadSlot {
    /// It keeps the turn at its scheduling points while it holds it.
    #[inline]
    pub(crate) fn keeps_turn(&self) -> bool {
        self.holding || self.children > 0 || self.native_threads > 0
    }
}

/// Where a worker stands with respect to the turn. These states exclude
/// each other: a worker given a step is neither set aside nor parked (the
/// explorer schedules neither), and a finished worker is none of them.
/// Whether it holds the turn is `State::current`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Turn {
    /// No step is pending for it: it runs the step it is in if it holds
    /// the turn, else it waits to be chosen.
    #[default]
    Free,
    /// A step was granted to it and not begun yet; `step` is its index in
    /// `State::steps`.
    Granted { step: usize },
    /// Set aside while it waits in native code (see `native_waits.rs`),
    /// and given no step since: it must wait for one.
    SetAside,
    /// Parked in a cooperative primitive (see `coop.rs`).
    Parked(Blocked),
    /// It left the execution.
    Finished,
}

/// One access of a task's step (`tasks.rs`) and where it was made: (step,
/// key, is_write, code, offset).
pub(crate) type Site = (usize, u64, bool, usize, u32);

/// A worker parked in a cooperative primitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Blocked {
    /// The wait has a timeout, so it may be ended by a modelled timeout.
    pub(crate) timed: bool,
    /// The lock waited for; a release of it wakes the thread.
    pub(crate) lock: Option<u64>,
}

impl ThreadSlot {
    #[inline]
    pub(crate) fn granted(&self) -> bool {
        matches!(self.turn, Turn::Granted { .. })
    }

    #[inline]
    pub(crate) fn finished(&self) -> bool {
        self.turn == Turn::Finished
    }

    pub(crate) fn parked(&self) -> Option<Blocked> {
        match self.turn {
            Turn::Parked(b) => Some(b),
            _ => None,
        }
    }

    /// A parked worker may run again (woken, timed out, its lock released).
    pub(crate) fn unpark(&mut self) {
        if self.parked().is_some() {
            self.turn = Turn::Free;
        }
    }
}

/// What the threads of one exploration share: the turn-taking state and
/// what they wait on, the code and key tables, the trace filter.
pub struct Shared {
    pub state: Mutex<State>,
    /// The main thread waits here for the end of the execution.
    pub cv: Condvar,
    /// Worker `t` waits on `thread_cvs[t]` for a step.
    pub thread_cvs: Vec<Condvar>,
    pub codes: CodeCache,
    pub keys: Mutex<KeyTable>,
    /// `decide(code, module_name, caller_traced) -> bool`
    pub decide: Py<PyAny>,
    /// `classify(code) -> list[(offset, kind, arg, name)]`
    pub classify: Py<PyAny>,
    /// Names of the I/O resources reported so far, by engine key, for
    /// explanations (`describe`).
    pub io_names: Mutex<HashMap<u64, String>>,
    /// Calls are scheduling points: native code they run may do I/O that
    /// must be ordered against other threads (set when a ring is attached).
    pub native_calls: std::sync::atomic::AtomicBool,
    /// The workers are the tasks of one event loop (`tasks.rs`): a step
    /// ends only where the loop switches tasks, never at an instruction.
    pub one_loop: std::sync::atomic::AtomicBool,
    /// The first exception `decide` or `classify` raised. The execution is
    /// abandoned and `Session.end` raises it: a trace filter that fails must
    /// not quietly leave code untraced.
    pub filter_error: Mutex<Option<PyErr>>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes whoever must act on `st`: the thread holding the turn while
    /// the execution runs; everyone (main thread included) otherwise. Waking
    /// only the chosen thread keeps a handoff to one context switch.
    pub(crate) fn wake(&self, st: &State) {
        match (&st.phase, st.current) {
            (Phase::Running, Some(t)) => self.thread_cvs[t].notify_one(),
            _ => {
                self.cv.notify_all();
                for cv in &self.thread_cvs {
                    cv.notify_all();
                }
            }
        }
    }
}

pub struct State {
    /// Chooses every step, in every mode (see `mode.rs`).
    pub(crate) explorer: Explorer,
    pub(crate) mode: Mode,
    pub(crate) max_executions: Option<u64>,
    /// Executions begun so far.
    pub(crate) executions: u64,
    /// Set when the explorer had nothing left to begin.
    pub(crate) exhausted: bool,
    pub generation: u64,
    pub phase: Phase,
    pub(crate) num_threads: usize,
    /// Thread holding the turn.
    pub(crate) current: Option<ThreadId>,
    /// One per worker; reset at each `begin`.
    pub(crate) threads: Vec<ThreadSlot>,
    /// The native event ring, when the preload library is loaded.
    pub native: Option<crate::native::Native>,
    /// No thread could run but some wait in native code: the next step is
    /// granted when one of them returns (see `native_waits.rs`).
    pub(crate) awaiting_native: bool,
    /// The thread holding the turn was just set aside on a server-side row
    /// lock (`native_waits.rs`): whoever drained the ring passes the turn on.
    pub(crate) row_blocked: bool,
    pub steps: Vec<StepRecord>,
    /// Bumped at every step and finish; the main thread watches it to spot
    /// a thread that holds the turn without reaching a scheduling point.
    pub(crate) progress: u64,
    pub max_steps: u64,
    /// The lock-ordering cycle that ended this execution early (the
    /// explorer reports deadlocks only once no thread can run).
    pub lock_cycle: Option<Deadlock>,
    /// This execution's workers are the tasks of one event loop (set by
    /// `tasks_enter`): a worker waiting in native code is never set aside,
    /// since the loop's one thread runs every task.
    pub(crate) one_loop: bool,
    /// The loop runs socket callbacks between two steps (`task_drain`
    /// until the next `task_next`): what they touch is in no task's step.
    pub(crate) between_steps: bool,
    /// Where each access of a task's step was made (`Shared::one_loop`
    /// only: a task's step spans many instructions).
    pub(crate) sites: Vec<Site>,
}

impl State {
    /// Begins the explorer's next execution. A forced mode gets a fresh
    /// explorer for each of its runs (`Explorer::replay` runs once).
    pub(super) fn begin_explorer(&mut self) -> SessionResult<bool> {
        if let Some(runs) = self.mode.runs() {
            if self.executions >= runs {
                return Ok(false);
            }
            if self.executions > 0 {
                self.explorer =
                    self.mode
                        .explorer(self.num_threads, self.max_steps, self.max_executions)?;
            }
        }
        self.explorer
            .begin_execution()
            .map_err(SessionError::Lifecycle)
    }

    /// Whether nothing is left to explore.
    pub(crate) fn exhausted(&self) -> bool {
        self.exhausted || self.mode.runs().is_some_and(|r| self.executions >= r)
    }

    /// Makes one explorer call. A refused call abandons the execution (the
    /// caller wakes the threads).
    #[inline]
    pub(crate) fn engine<T>(
        &mut self,
        call: impl FnOnce(&mut Explorer) -> Result<T, EngineError>,
    ) -> SessionResult<T> {
        call(&mut self.explorer).map_err(|e| {
            let err = SessionError::Engine(e);
            self.abort(err.to_string());
            err
        })
    }

    /// Where the caller's execution stands: `Err(Over)` when it belongs to
    /// an execution that has ended.
    #[inline]
    pub(crate) fn standing(&self, generation: u64) -> SessionResult<Standing<'_>> {
        if self.generation != generation {
            return Err(SessionError::Over);
        }
        Ok(match &self.phase {
            Phase::Running => Standing::Running,
            Phase::Aborted(why) => Standing::Released(why),
            Phase::Idle | Phase::Done => Standing::Ended,
        })
    }

    /// Ok while the caller's execution runs; why not otherwise.
    pub(crate) fn live(&self, generation: u64) -> SessionResult<()> {
        match self.standing(generation)? {
            Standing::Running => Ok(()),
            Standing::Released(why) => Err(SessionError::Abandoned(why.to_string())),
            Standing::Ended => Err(SessionError::Over),
        }
    }

    /// Modelled timeouts: when every unfinished thread is blocked and some
    /// of them in a timed wait, the lowest such thread times out (its wait
    /// returns as timed out). A timed wait therefore only expires when
    /// nothing else could happen first.
    fn fire_timeouts(&mut self) -> SessionResult<()> {
        let all_blocked = self
            .threads
            .iter()
            .all(|s| s.finished() || s.parked().is_some());
        if !all_blocked {
            return Ok(());
        }
        let timed = self
            .threads
            .iter()
            .position(|s| s.parked().is_some_and(|b| b.timed));
        if let Some(t) = timed {
            self.engine(|x| x.unblock(t))?;
            let slot = &mut self.threads[t];
            slot.unpark();
            slot.timed_out = true;
        }
        Ok(())
    }

    fn grant(&mut self, t: ThreadId) {
        self.steps.push(StepRecord {
            thread: t,
            code: 0,
            offset: 0,
            accesses: Vec::new(),
            sync: Vec::new(),
            native: Vec::new(),
        });
        self.threads[t].turn = Turn::Granted {
            step: self.steps.len() - 1,
        };
        self.current = Some(t);
        self.progress += 1;
        self.native_step_opened(t);
    }

    /// Worker `tid`, at (code, offset), begins the step it was granted:
    /// the grant is used up and the step placed. Returns the index of that
    /// step in `steps`, or None when no step was pending (the worker keeps
    /// the turn and goes on with the step it is in).
    #[inline]
    pub(super) fn start_step(&mut self, tid: ThreadId, code: usize, offset: u32) -> Option<usize> {
        let slot = &mut self.threads[tid];
        let pending = match slot.turn {
            Turn::Granted { step } => {
                slot.turn = Turn::Free;
                let record = &mut self.steps[step];
                record.code = code;
                record.offset = offset;
                Some(step)
            }
            _ => None,
        };
        if code != 0 {
            slot.last_seen = Some((code, offset));
        }
        self.progress += 1;
        pending
    }

    /// Gives the execution up. Its workers are *released*: from now on they
    /// run unscheduled and untraced to their end, as the program would
    /// without frontrun, so that what they hold (a lock, a transaction on a
    /// server) is let go the way their code lets go of it. None is
    /// interrupted from outside: an asynchronous exception landing in a
    /// thread blocked in C wedges 3.11's tracing for the next execution.
    /// Stragglers still running when the execution ends see a new
    /// generation at their next traced instruction and unwind there.
    pub(crate) fn abort(&mut self, why: String) {
        if matches!(self.phase, Phase::Running | Phase::Idle) {
            self.phase = Phase::Aborted(why);
        }
    }

    /// The execution was given up, and its workers run free (see `abort`).
    pub(crate) fn released(&self) -> bool {
        matches!(self.phase, Phase::Aborted(_))
    }

    /// Asks the explorer for the next step and grants it.
    pub(crate) fn schedule_next(&mut self) -> SessionResult<Option<ThreadId>> {
        if self.steps.len() as u64 >= self.max_steps {
            let why = format!(
                "the execution exceeded max_branches={} scheduling points; raise max_branches or shorten the \
                 threads (a loop that never ends, such as a spin wait, also causes this)",
                self.max_steps
            );
            self.abort(why.clone());
            return Err(SessionError::Abandoned(why));
        }
        self.drain_native();
        self.row_blocked = false;
        if let Some(c) = self.current {
            self.end_native_step(c);
        }
        if self.native_waiting() || self.native_and_coop_waiting() {
            self.current = None;
            self.awaiting_native = true;
            return Ok(None);
        }
        self.awaiting_native = false;
        self.fire_timeouts()?;
        match self.engine(Explorer::schedule)? {
            Some(t) => {
                self.grant(t);
                Ok(Some(t))
            }
            None => {
                self.current = None;
                if self.threads.iter().all(ThreadSlot::finished) {
                    self.phase = Phase::Done;
                } else if self.threads.iter().any(|s| s.parked().is_some()) {
                    // Every unfinished thread waits on a cooperative
                    // primitive: a deadlock, which the explorer's report
                    // describes. The parked threads unwind (see
                    // `wait_for_grant`).
                    self.phase = Phase::Done;
                } else {
                    let waiting: Vec<_> = (0..self.num_threads)
                        .filter(|&t| !self.threads[t].finished())
                        .collect();
                    self.abort(format!(
                        "no thread can take the next step (unfinished threads: {waiting:?})"
                    ));
                }
                Ok(None)
            }
        }
    }
}

/// Where a caller's execution stands (see [`State::standing`]).
pub(crate) enum Standing<'a> {
    Running,
    /// Abandoned: its workers run free, unscheduled.
    Released(&'a str),
    /// Ended, or not begun.
    Ended,
}

/// Makes sure the calling thread holds a granted step. Returns whether it
/// had to wait for it (other threads ran in between).
pub(crate) fn acquire_turn(
    py: Python<'_>,
    shared: &Shared,
    tid: ThreadId,
    generation: u64,
) -> SessionResult<bool> {
    acquire_turn_with(shared, tid, generation, || {
        wait_for_grant(py, shared, tid, generation)
    })
}

/// [`acquire_turn`], waiting with `wait` (the GIL released, or not held).
pub(crate) fn acquire_turn_with(
    shared: &Shared,
    tid: ThreadId,
    generation: u64,
    wait: impl FnOnce() -> SessionResult<()>,
) -> SessionResult<bool> {
    {
        let mut st = shared.lock();
        if let Standing::Released(_) = st.standing(generation)? {
            return Ok(false);
        }
        if st.current == Some(tid) && st.native.is_some() && !st.threads[tid].granted() {
            // A thread its native code started in this step makes it keep
            // the turn: that is known once the ring is drained.
            st.drain_native();
        }
        let slot = &st.threads[tid];
        if slot.granted() || (slot.keeps_turn() && st.current == Some(tid)) {
            return Ok(false);
        }
        if shared.one_loop.load(std::sync::atomic::Ordering::Relaxed) {
            // A task runs until it yields to the loop: what it does joins
            // its step (see `tasks.rs`).
            return Ok(false);
        }
        if slot.turn == Turn::SetAside {
            // Set aside during a native wait: others hold the turn now.
            drop(st);
            wait()?;
            return Ok(true);
        }
        match st.schedule_next() {
            Ok(Some(t)) if t == tid => return Ok(false),
            Ok(Some(_)) => {}
            Ok(None) => {
                let why =
                    format!("the scheduler has no step for thread {tid}, which is still running");
                st.abort(why);
                shared.wake(&st);
                return Ok(false);
            }
            Err(e) => {
                shared.wake(&st);
                if st.released() {
                    return Ok(false);
                }
                return Err(e);
            }
        }
        shared.wake(&st);
    }
    wait()?;
    Ok(true)
}

pub(crate) fn wait_for_grant(
    py: Python<'_>,
    shared: &Shared,
    tid: ThreadId,
    generation: u64,
) -> SessionResult<()> {
    py.detach(|| wait_for_grant_detached(shared, tid, generation))
}

/// [`wait_for_grant`] for a thread that does not hold the GIL.
pub(crate) fn wait_for_grant_detached(
    shared: &Shared,
    tid: ThreadId,
    generation: u64,
) -> SessionResult<()> {
    let mut st = shared.lock();
    loop {
        if let Standing::Released(_) = st.standing(generation)? {
            return Ok(());
        }
        if st.threads[tid].granted() && st.current == Some(tid) {
            return Ok(());
        }
        if st.phase == Phase::Done {
            return Err(SessionError::Deadlocked);
        }
        st = shared.thread_cvs[tid]
            .wait(st)
            .unwrap_or_else(|p| p.into_inner());
    }
}

#[inline]
pub(crate) fn kind(write: bool) -> AccessKind {
    if write {
        AccessKind::Write
    } else {
        AccessKind::Read
    }
}
