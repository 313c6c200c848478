//! Errors returned for calls the engine cannot honour.
//!
//! The binding reports events from real threads, so a wrong call usually
//! means the binding lost track of whose turn it is. Every variant says what
//! was expected instead; none of them leaves the explorer in a state where a
//! later call could panic.

use std::fmt;

use crate::{ObjectKey, ThreadId};

/// What went wrong with a call into the [`Explorer`](crate::Explorer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineError {
    /// `num_threads` was zero or above [`MAX_THREADS`](crate::MAX_THREADS).
    ThreadCount { requested: usize, max: usize },
    /// A thread id outside `0..num_threads`.
    UnknownThread {
        thread: ThreadId,
        num_threads: usize,
    },
    /// A call that needs a running execution came before `begin_execution`
    /// or after `end_execution`.
    NoExecution { call: &'static str },
    /// `begin_execution` while an execution is still open.
    ExecutionInProgress,
    /// An event reported by a thread other than the one `schedule()` chose.
    NotScheduled {
        call: &'static str,
        thread: ThreadId,
        scheduled: Option<ThreadId>,
    },
    /// A thread that has finished reported another event.
    ThreadFinished {
        call: &'static str,
        thread: ThreadId,
    },
    /// `lock_acquire` on a lock that some thread holds.
    LockHeld {
        thread: ThreadId,
        lock: ObjectKey,
        holder: ThreadId,
    },
    /// `lock_release` on a lock the thread does not hold.
    LockNotHeld { thread: ThreadId, lock: ObjectKey },
    /// `block_on_lock` or `lock_try_fail` on a lock nobody holds.
    LockFree { thread: ThreadId, lock: ObjectKey },
    /// `spawn` of a thread that has already taken a step.
    AlreadyStarted { child: ThreadId },
    /// A replay schedule names a thread that cannot run at that step.
    ReplayDiverged {
        step: usize,
        expected: ThreadId,
        runnable: Vec<ThreadId>,
    },
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::ThreadCount { requested, max } => write!(
                f,
                "an exploration needs between 1 and {max} threads, got {requested}; \
                 split the test into smaller groups of threads"
            ),
            EngineError::UnknownThread {
                thread,
                num_threads,
            } => write!(
                f,
                "thread id {thread} is out of range: this explorer was created for \
                 {num_threads} threads (ids 0..{num_threads})"
            ),
            EngineError::NoExecution { call } => write!(
                f,
                "`{call}` needs a running execution: call `begin_execution` first \
                 (and do not call it after `end_execution`)"
            ),
            EngineError::ExecutionInProgress => write!(
                f,
                "an execution is still running: call `end_execution` before \
                 `begin_execution`"
            ),
            EngineError::NotScheduled {
                call,
                thread,
                scheduled: Some(s),
            } => write!(
                f,
                "`{call}` reported by thread {thread}, but the scheduler chose thread \
                 {s} for this step; only the scheduled thread may report events"
            ),
            EngineError::NotScheduled {
                call,
                thread,
                scheduled: None,
            } => write!(
                f,
                "`{call}` reported by thread {thread} while no thread is scheduled; \
                 call `schedule` and let the thread it returns run first"
            ),
            EngineError::ThreadFinished { call, thread } => write!(
                f,
                "`{call}` reported by thread {thread}, which has already finished"
            ),
            EngineError::LockHeld {
                thread,
                lock,
                holder,
            } => write!(
                f,
                "thread {thread} acquired lock {lock:#x}, which thread {holder} holds; \
                 report `block_on_lock` (blocking acquire) or `lock_try_fail` \
                 (non-blocking acquire) instead"
            ),
            EngineError::LockNotHeld { thread, lock } => write!(
                f,
                "thread {thread} released lock {lock:#x}, which it does not hold; \
                 report every successful acquire with `lock_acquire`"
            ),
            EngineError::LockFree { thread, lock } => write!(
                f,
                "thread {thread} found lock {lock:#x} taken, but no thread holds it; \
                 report the acquire with `lock_acquire`"
            ),
            EngineError::AlreadyStarted { child } => write!(
                f,
                "`spawn` of thread {child}, which has already run; report the spawn \
                 before the child's first step (see `expect_spawn`)"
            ),
            EngineError::ReplayDiverged {
                step,
                expected,
                runnable,
            } => write!(
                f,
                "the replayed schedule asks for thread {expected} at step {step}, but \
                 only threads {runnable:?} can run there; the program does not behave \
                 as it did when the schedule was recorded (non-determinism outside \
                 the scheduler's control?)"
            ),
        }
    }
}

impl std::error::Error for EngineError {}
