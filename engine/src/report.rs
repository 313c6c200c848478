//! What the explorer hands back: per-execution reports and running counters.

use std::fmt;

use crate::{AccessKind, ObjectKey, ThreadId};

/// One side of a race: an access made during a step of an execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccessInfo {
    /// Index of the step in the execution's schedule.
    pub step: usize,
    pub thread: ThreadId,
    pub key: ObjectKey,
    pub kind: AccessKind,
    /// The access was reported with `io_access` (the key names an I/O
    /// resource, not a memory object).
    pub is_io: bool,
    /// The access is a lock operation on the lock `key` (acquire, failed
    /// acquire); `kind` is then `Write` for acquires and `Read` for failed
    /// attempts.
    pub is_lock: bool,
}

/// Two conflicting accesses of different threads whose order the execution
/// fixed only by scheduling: no other event forced `first` before `second`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Race {
    pub first: AccessInfo,
    pub second: AccessInfo,
}

/// What a blocked thread waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaitTarget {
    /// A lock another thread holds (`block_on_lock`).
    Lock(ObjectKey),
    /// Another thread's end (`join`).
    Thread(ThreadId),
    /// Anything else reported with `block` (event, condition, queue, native
    /// blocking call).
    Object(ObjectKey),
    /// The thread was declared with `expect_spawn` and nobody spawned it.
    Spawn,
}

/// A blocked thread in a deadlock report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitEdge {
    pub thread: ThreadId,
    /// Locks the thread holds, in acquisition order.
    pub holds: Vec<ObjectKey>,
    pub waits_for: WaitTarget,
}

/// No thread could run while some had not finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deadlock {
    /// A wait-for cycle: each thread waits for something the next one
    /// (cyclically) holds or is. Empty when the blocked threads wait on
    /// objects no thread owns (e.g. an event nobody sets).
    pub cycle: Vec<WaitEdge>,
    /// Every blocked thread, cycle or not.
    pub blocked: Vec<WaitEdge>,
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let describe = |f: &mut fmt::Formatter<'_>, e: &WaitEdge| -> fmt::Result {
            write!(f, "thread {}", e.thread)?;
            if !e.holds.is_empty() {
                let held: Vec<String> = e.holds.iter().map(|k| format!("{k:#x}")).collect();
                write!(f, " holds lock {}", held.join(", "))?;
                write!(f, " and")?;
            }
            match e.waits_for {
                WaitTarget::Lock(k) => write!(f, " waits for lock {k:#x}"),
                WaitTarget::Thread(t) => write!(f, " waits for thread {t} to finish"),
                WaitTarget::Object(k) => write!(f, " waits on object {k:#x}"),
                WaitTarget::Spawn => write!(f, " waits to be spawned"),
            }
        };
        if self.cycle.is_empty() {
            write!(f, "deadlock: every unfinished thread is blocked")?;
            for e in &self.blocked {
                write!(f, "; ")?;
                describe(f, e)?;
            }
        } else {
            write!(f, "deadlock (wait-for cycle)")?;
            for e in &self.cycle {
                write!(f, "; ")?;
                describe(f, e)?;
            }
        }
        Ok(())
    }
}

/// Why an execution stopped before every thread finished or blocked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AbortReason {
    /// The execution took more scheduling points than `Config::max_branches`.
    MaxBranches { limit: u64 },
    /// Every runnable thread was in the sleep set, so any continuation would
    /// repeat an explored execution. Optimal DPOR should never get here; a
    /// non-zero count points at non-determinism the scheduler does not see.
    SleepSetBlocked,
    /// `end_execution` came while threads could still run.
    EndedEarly,
}

impl fmt::Display for AbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbortReason::MaxBranches { limit } => write!(
                f,
                "execution exceeded the maximum of {limit} scheduling points \
                 (max_branches). This is usually a spin loop or busy wait that \
                 waits for another thread without blocking; use a lock, event or \
                 condition instead, or raise max_branches if the program is simply long"
            ),
            AbortReason::SleepSetBlocked => write!(
                f,
                "execution stopped because every runnable thread would repeat an \
                 explored interleaving (sleep-set blocked); the program probably \
                 behaves differently under the same schedule (non-determinism)"
            ),
            AbortReason::EndedEarly => write!(
                f,
                "end_execution was called while threads could still run; the rest \
                 of this interleaving was not explored"
            ),
        }
    }
}

/// The outcome of one execution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecutionReport {
    /// The thread that ran at each step, in order. Feeding it to
    /// [`Explorer::replay`](crate::Explorer::replay) repeats the execution.
    pub schedule: Vec<ThreadId>,
    /// Racing access pairs of this execution, in order of the second access.
    pub races: Vec<Race>,
    pub deadlock: Option<Deadlock>,
    pub aborted: Option<AbortReason>,
    /// Number of preemptions (switches away from a thread that could have
    /// continued) in `schedule`.
    pub preemptions: u32,
}

/// Counters over the whole exploration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Executions that ran until no thread could run (finished or deadlocked).
    pub executions_completed: u64,
    /// Executions cut short (see [`AbortReason`]), sleep-set blocked ones included.
    pub executions_aborted: u64,
    /// Executions that ended because every runnable thread slept.
    pub sleep_blocked: u64,
    /// `schedule()` calls that returned a thread.
    pub scheduling_points: u64,
    /// Completed executions that ended in a deadlock.
    pub deadlocks: u64,
    /// Races found over all executions.
    pub races: u64,
    /// Steps at which a thread reported different events than when the same
    /// schedule prefix ran before, or a planned thread could not run.
    pub divergences: u64,
}
