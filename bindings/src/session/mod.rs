//! Turn-taking between the worker threads of one exploration.
//!
//! Exactly one worker runs traced code at a time: the one holding the turn.
//! At each visible instruction the holder asks the explorer who performs the
//! next step. If it is itself, it reports the instruction's accesses and
//! runs it, keeping the turn; otherwise it grants the step to the chosen
//! thread and parks (GIL released) until a step is granted back. A thread
//! woken with a grant reports the accesses of the instruction it was parked
//! at (or, fresh from the start, of its first visible instruction), so the
//! engine sees accesses in the order they really happen.
//!
//! One file per concern: `turns` (the state of the running execution, one
//! `ThreadSlot` per worker, granting steps), `worker` (the worker
//! thread-local, entering and leaving), `instruction` (the per-instruction
//! path the tracer calls), `io` (Python-level I/O steps), `coop` (the
//! cooperative primitives), `native_waits` (events from the preload
//! library's ring and workers waiting in native code), `native_gate`
//! (native mutex calls scheduled before they run), `spawn` (threads the
//! workers start), `execution` (the
//! lifecycle of an execution, driven by the main thread), `tasks` (the
//! tasks of one event loop as workers). See
//! docs/internals.md.

mod coop;
mod execution;
mod instruction;
mod io;
mod native_gate;
mod native_waits;
mod spawn;
mod tasks;
mod turns;
mod worker;

pub(crate) use coop::{coop_block, coop_event, coop_tid, coop_turn, coop_yield, SyncOp};
#[cfg(not(Py_3_12))]
pub(crate) use instruction::frame_is_traced;
pub(crate) use instruction::{on_instruction, Flow, DEPTH_MISMATCHES};
pub(crate) use io::{io_hold, io_step};
pub(crate) use native_gate::mutex_gate;
pub(crate) use spawn::{child_process, child_reaped, expect_spawns, thread_join, thread_spawn};
pub(crate) use tasks::{
    task_block, task_drain, task_expect_spawn, task_finish, task_key, task_next, task_sites,
    task_spawn, task_unblock, tasks_enter, tasks_leave,
};
pub(crate) use turns::{Phase, Shared};
pub(crate) use worker::{
    enter, enter_spawned, forget_worker_after_fork, leave, wait_first_step, worker_kind,
};
