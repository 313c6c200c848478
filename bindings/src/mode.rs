//! How a session picks its steps. Every mode drives the engine's
//! `Explorer`: the search modes let it choose, the others force its choices
//! (`Explorer::replay`), so locks, waits, deadlocks and reports are kept by
//! one piece of code whatever the mode.
//!
//! Two behaviours follow from that and are decided here:
//!
//! * Past the end of a forced schedule (a replayed prefix cut short, or a
//!   serial run, whose schedule is empty) the explorer makes its default
//!   choice: the thread that ran last continues while it can, else the
//!   lowest-numbered thread that can run. A serial run therefore runs each
//!   thread to its end or until it blocks, and a thread that wakes another
//!   keeps running.
//! * Whether a worker that waits in native code (a `recv` on a server) for
//!   longer than the grace is set aside so that others may run: see
//!   [`Mode::native_wait`].

use crate::error::{SessionError, SessionResult};
use frontrun_engine::{Config, Explorer, ThreadId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Optimal DPOR: every Mazurkiewicz trace once.
    Optimal,
    /// DPOR with at most this many preemptions per execution.
    Bounded { preemptions: u32 },
    /// One execution that follows `schedule`, then default choices.
    Replay { schedule: Vec<ThreadId> },
    /// `runs` executions, each running the threads one after the other (no
    /// search: a diagnostic run that shows what the tracer sees).
    Serial { runs: u64 },
}

/// What happens when the worker holding the turn waits in native code for
/// longer than the grace (`native::BLOCK_GRACE`) while another could run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeWait {
    /// It is set aside and the explorer sees it blocked until its call
    /// returns: the search orders the other threads' steps around the wait.
    SetAsideBlocked,
    /// It is set aside so that the threads the schedule names next can
    /// run, but stays runnable for the explorer: a replay takes the step
    /// the schedule gives it, and the thread takes it when its call returns
    /// (the recorded exploration may not have waited at the same point, the
    /// grace being a matter of time).
    SetAside,
    /// It keeps the turn until its call returns.
    KeepTurn,
}

/// Whether a session reads the preload library's ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingUse {
    /// A search must see native events, so a ring it cannot use is an error.
    Required,
    /// A replay needs the same scheduling points as the exploration it
    /// repeats, so it reads the ring when it can.
    IfLoaded,
    /// Serial runs read none.
    Never,
}

impl Mode {
    pub fn ring(&self) -> RingUse {
        match self {
            Mode::Optimal | Mode::Bounded { .. } => RingUse::Required,
            Mode::Replay { .. } => RingUse::IfLoaded,
            Mode::Serial { .. } => RingUse::Never,
        }
    }

    /// Serial runs keep the turn in native waits: they read no ring, so no
    /// native wait is ever seen; and a serial run means one thread after the
    /// other.
    pub fn native_wait(&self) -> NativeWait {
        match self {
            Mode::Optimal | Mode::Bounded { .. } => NativeWait::SetAsideBlocked,
            Mode::Replay { .. } => NativeWait::SetAside,
            Mode::Serial { .. } => NativeWait::KeepTurn,
        }
    }

    /// A fresh explorer for this mode. A serial session makes one per run
    /// (`Explorer::replay` explores once).
    pub fn explorer(
        &self,
        num_threads: usize,
        max_branches: u64,
        max_executions: Option<u64>,
    ) -> SessionResult<Explorer> {
        let config = |preemption_bound, max_executions| Config {
            preemption_bound,
            max_branches,
            max_executions,
        };
        let made = match self {
            Mode::Optimal => Explorer::new(num_threads, config(None, max_executions)),
            Mode::Bounded { preemptions } => {
                Explorer::new(num_threads, config(Some(*preemptions), max_executions))
            }
            Mode::Replay { schedule } => {
                Explorer::replay(num_threads, schedule.clone(), config(None, None))
            }
            Mode::Serial { .. } => Explorer::replay(num_threads, Vec::new(), config(None, None)),
        };
        made.map_err(|e| SessionError::Invalid(e.to_string()))
    }

    /// The number of executions of a forced mode, which gets a fresh
    /// explorer for each (`Explorer::replay` runs once); `None` for the
    /// search modes, whose explorer decides.
    pub fn runs(&self) -> Option<u64> {
        match self {
            Mode::Optimal | Mode::Bounded { .. } => None,
            Mode::Replay { .. } => Some(1),
            Mode::Serial { runs } => Some(*runs),
        }
    }
}
