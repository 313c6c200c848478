//! Who decides the next step. The turn-taking machinery (`session.rs`) asks
//! a `Strategy`; the DPOR engine is one, and a plain recorder that runs the
//! threads one after the other (used to test access detection on its own)
//! is another.

use crate::sync_model::{DeadlockDetail, SyncModel};

pub type ThreadId = usize;

const NO_SYNC: &str = "this strategy does not model cooperative locks, events or queues";

/// A native mutex operation, as the preload library reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeLockOp {
    Acquire,
    TryFail,
    Release,
}

#[derive(Clone, Debug)]
pub struct RaceInfo {
    pub first_step: usize,
    pub second_step: usize,
    pub key: u64,
    pub first_write: bool,
    pub second_write: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub schedule: Vec<ThreadId>,
    pub races: Vec<RaceInfo>,
    /// Threads in the wait-for cycle (or all blocked threads).
    pub deadlock: Option<Vec<ThreadId>>,
    /// Why the strategy cut the execution short, if it did.
    pub aborted: Option<String>,
    /// The deadlock with what each blocked thread holds and waits for.
    pub deadlock_detail: Option<DeadlockDetail>,
}

pub trait Strategy: Send {
    /// Starts an execution; false when there is nothing left to explore.
    fn begin_execution(&mut self) -> Result<bool, String>;
    /// The thread that performs the next step; None when no thread can.
    fn schedule(&mut self) -> Result<Option<ThreadId>, String>;
    fn access(&mut self, thread: ThreadId, key: u64, write: bool) -> Result<(), String>;
    /// An access to an I/O resource (socket peer, file, database key). I/O
    /// keys live in their own space: they never alias object keys.
    fn io_access(&mut self, _thread: ThreadId, _key: u64, _write: bool) -> Result<(), String> {
        Ok(())
    }
    /// A `pthread_mutex_*` operation seen in native code (libfrontrun_io.so).
    fn native_lock(
        &mut self,
        _thread: ThreadId,
        _op: NativeLockOp,
        _key: u64,
    ) -> Result<(), String> {
        Ok(())
    }
    /// The thread holding the turn waits in native code (on `key`) for
    /// something another thread must do first. Ok(false) when the strategy
    /// cannot set it aside, and the thread keeps the turn.
    fn native_block(&mut self, _thread: ThreadId, _key: u64) -> Result<bool, String> {
        Ok(false)
    }
    /// The native wait of a set-aside thread returned.
    fn native_unblock(&mut self, _thread: ThreadId) -> Result<(), String> {
        Ok(())
    }
    fn finish(&mut self, thread: ThreadId) -> Result<(), String>;
    // Cooperative synchronisation (see `coop.rs`). Lock keys and object
    // keys live in separate spaces. A strategy that does not model it
    // refuses, which abandons the execution with that message.
    /// `thread` took `lock`; `try_` for a non-blocking acquire.
    fn lock_acquire(&mut self, _thread: ThreadId, _lock: u64, _try: bool) -> Result<(), String> {
        Err(NO_SYNC.into())
    }
    /// A non-blocking acquire of `lock` failed.
    fn lock_try_fail(&mut self, _thread: ThreadId, _lock: u64) -> Result<(), String> {
        Err(NO_SYNC.into())
    }
    /// `thread` waits for `lock`, held by another thread.
    fn block_on_lock(&mut self, _thread: ThreadId, _lock: u64) -> Result<(), String> {
        Err(NO_SYNC.into())
    }
    fn lock_release(&mut self, _thread: ThreadId, _lock: u64) -> Result<(), String> {
        Err(NO_SYNC.into())
    }
    /// `thread` waits on `on` until some thread calls `unblock` for it.
    fn block(&mut self, _thread: ThreadId, _on: u64) -> Result<(), String> {
        Err(NO_SYNC.into())
    }
    fn unblock(&mut self, _thread: ThreadId) -> Result<(), String> {
        Err(NO_SYNC.into())
    }
    fn end_execution(&mut self) -> Result<Report, String>;
    /// Executions begun so far.
    fn executions(&self) -> u64;
    fn exhausted(&self) -> bool;
}

/// Threads of a deadlock report: the cycle, or every blocked thread.
pub fn deadlock_threads(d: &DeadlockDetail) -> Vec<ThreadId> {
    let edges = if d.cycle.is_empty() {
        &d.blocked
    } else {
        &d.cycle
    };
    edges.iter().map(|e| e.thread).collect()
}

/// The synchronisation methods of a strategy that keeps a `SyncModel` in
/// `self.sync`.
macro_rules! sync_methods {
    () => {
        fn lock_acquire(&mut self, thread: ThreadId, lock: u64, _try: bool) -> Result<(), String> {
            self.sync.acquire(thread, lock)
        }
        fn lock_try_fail(&mut self, _thread: ThreadId, _lock: u64) -> Result<(), String> {
            Ok(())
        }
        fn block_on_lock(&mut self, thread: ThreadId, lock: u64) -> Result<(), String> {
            self.sync.block_on_lock(thread, lock)
        }
        fn lock_release(&mut self, thread: ThreadId, lock: u64) -> Result<(), String> {
            self.sync.release(thread, lock)
        }
        fn block(&mut self, thread: ThreadId, on: u64) -> Result<(), String> {
            self.sync.block(thread, on)
        }
        fn unblock(&mut self, thread: ThreadId) -> Result<(), String> {
            self.sync.unblock(thread)
        }
    };
}

/// The strategies that do not search. Threads run in the order of a
/// recorded schedule (replay), and past its end (or with no schedule at
/// all: `serial`) the lowest unfinished thread that can run continues, each
/// to completion or until it blocks on a cooperative primitive. A schedule
/// cut short thus still runs every thread to completion.
pub struct Planned {
    planned: Vec<ThreadId>,
    finished: Vec<bool>,
    sync: SyncModel,
    schedule: Vec<ThreadId>,
    executions: u64,
    max_executions: u64,
    /// Whether a thread waiting in native code gives up the turn: in a
    /// replay the schedule says who runs next, and the waiting thread takes
    /// its turn when its call returns.
    sets_aside_native: bool,
}

impl Planned {
    /// Runs the threads one after the other, `max_executions` times.
    pub fn serial(num_threads: usize, max_executions: u64) -> Planned {
        Planned::new(num_threads, Vec::new(), max_executions, false)
    }

    /// Follows `planned` step by step, once.
    pub fn replay(num_threads: usize, planned: Vec<ThreadId>) -> Planned {
        Planned::new(num_threads, planned, 1, true)
    }

    fn new(
        num_threads: usize,
        planned: Vec<ThreadId>,
        max_executions: u64,
        sets_aside_native: bool,
    ) -> Planned {
        Planned {
            planned,
            finished: vec![false; num_threads],
            sync: SyncModel::new(num_threads),
            schedule: Vec::new(),
            executions: 0,
            max_executions,
            sets_aside_native,
        }
    }
}

impl Strategy for Planned {
    fn begin_execution(&mut self) -> Result<bool, String> {
        if self.executions >= self.max_executions {
            return Ok(false);
        }
        self.executions += 1;
        self.finished.iter_mut().for_each(|f| *f = false);
        self.sync.reset();
        self.schedule.clear();
        Ok(true)
    }

    fn schedule(&mut self) -> Result<Option<ThreadId>, String> {
        let step = self.schedule.len();
        let next = match self.planned.get(step) {
            Some(&t) if t < self.finished.len() && !self.finished[t] && self.sync.runnable(t) => Some(t),
            Some(&t) if t < self.finished.len() && !self.finished[t] => {
                return Err(format!(
                    "the replayed program diverged from the schedule: step {step} belongs to thread {t}, which is \
                     blocked (is setup() or a thread nondeterministic?)"
                ))
            }
            Some(&t) => {
                return Err(format!(
                    "the replayed program diverged from the schedule: step {step} belongs to thread {t}, which has \
                     already finished (is setup() or a thread nondeterministic?)"
                ))
            }
            None => (0..self.finished.len()).find(|&t| !self.finished[t] && self.sync.runnable(t)),
        };
        if let Some(t) = next {
            self.schedule.push(t);
        }
        Ok(next)
    }

    fn access(&mut self, _thread: ThreadId, _key: u64, _write: bool) -> Result<(), String> {
        Ok(())
    }

    fn native_block(&mut self, _thread: ThreadId, _key: u64) -> Result<bool, String> {
        Ok(self.sets_aside_native)
    }

    fn finish(&mut self, thread: ThreadId) -> Result<(), String> {
        self.finished[thread] = true;
        Ok(())
    }

    sync_methods!();

    fn end_execution(&mut self) -> Result<Report, String> {
        let detail = self.sync.deadlock(&self.finished);
        Ok(Report {
            schedule: std::mem::take(&mut self.schedule),
            deadlock: detail.as_ref().map(deadlock_threads),
            deadlock_detail: detail,
            ..Report::default()
        })
    }

    fn executions(&self) -> u64 {
        self.executions
    }

    fn exhausted(&self) -> bool {
        self.executions >= self.max_executions
    }
}
