//! Cooperative primitives (`frontrun/_coop.py`): a worker inside a lock,
//! event, condition or queue method takes a scheduling point whose step is
//! the synchronisation operation, and may park until another thread wakes
//! it.

use super::turns::Shared;
use super::turns::{acquire_turn, wait_for_grant, Blocked, Phase, State, Turn};
use super::worker::current_worker;
use crate::error::{SessionError, SessionResult};
use crate::keys::SlotDesc;
use frontrun_engine::{AccessKind, ThreadId};
use pyo3::ffi;
use pyo3::prelude::*;
use std::sync::Arc;

/// What a cooperative operation reports in its step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncOp {
    Acquire,
    TryAcquire,
    TryFail,
    Release,
    Read,
    Write,
    /// Wakes the given thread.
    Unblock(ThreadId),
}

impl SyncOp {
    fn name(self) -> &'static str {
        match self {
            SyncOp::Acquire | SyncOp::TryAcquire => "acquire",
            SyncOp::TryFail => "try-acquire failed",
            SyncOp::Release => "release",
            SyncOp::Read => "read",
            SyncOp::Write => "write",
            SyncOp::Unblock(_) => "wake",
        }
    }
}

fn worker_or_err() -> SessionResult<(Arc<Shared>, ThreadId, u64)> {
    current_worker().ok_or(SessionError::NotWorker)
}

/// The calling worker's id while its execution runs.
pub(crate) fn coop_tid() -> Option<ThreadId> {
    let (shared, tid, generation) = current_worker()?;
    let st = shared.lock();
    st.live(generation).is_ok().then_some(tid)
}

/// Takes the scheduling point of a cooperative operation, made at
/// (`code`, `offset`) of user code. The step belongs to the operation until
/// the thread's next scheduling point.
pub(crate) fn coop_turn(
    py: Python<'_>,
    code: usize,
    offset: u32,
    objs: &[*mut ffi::PyObject],
) -> SessionResult<()> {
    let (shared, tid, generation) = worker_or_err()?;
    for &obj in objs {
        sync_key(py, &shared, tid, obj);
    }
    acquire_turn(py, &shared, tid, generation)?;
    let mut st = shared.lock();
    st.live(generation)?;
    st.start_step(tid, code, offset);
    Ok(())
}

/// The calling worker, holding the turn, yields in its open step (see
/// `Explorer::yield_now`). Nothing happens outside a running execution.
pub(crate) fn coop_yield() -> bool {
    let Some((shared, tid, generation)) = current_worker() else {
        return false;
    };
    let mut st = shared.lock();
    if st.live(generation).is_err() || st.current != Some(tid) {
        return false;
    }
    st.engine(|x| x.yield_now(tid)).is_ok()
}

fn sync_key(py: Python<'_>, shared: &Shared, tid: ThreadId, obj: *mut ffi::PyObject) -> u64 {
    shared.keys.lock().unwrap_or_else(|p| p.into_inner()).key(
        py,
        obj,
        Some(tid),
        crate::keys::SLOT_SYNC,
        || SlotDesc::Sync,
    )
}

impl State {
    /// Reports `op` on the primitive `key` in `tid`'s step.
    fn sync_event(&mut self, tid: ThreadId, op: SyncOp, key: u64) -> SessionResult<()> {
        match op {
            SyncOp::Acquire => self.engine(|x| x.lock_acquire(tid, key)),
            SyncOp::TryAcquire => self.engine(|x| x.lock_try_acquire(tid, key)),
            SyncOp::TryFail => self.engine(|x| x.lock_try_fail(tid, key)),
            SyncOp::Release => {
                self.engine(|x| x.lock_release(tid, key))?;
                for slot in self.threads.iter_mut() {
                    if slot.parked().is_some_and(|b| b.lock == Some(key)) {
                        slot.unpark();
                    }
                }
                Ok(())
            }
            SyncOp::Read => self.engine(|x| x.access(tid, key, AccessKind::Read)),
            SyncOp::Write => self.engine(|x| x.access(tid, key, AccessKind::Write)),
            SyncOp::Unblock(t) if t >= self.num_threads => {
                let why = format!("no thread {t} to wake");
                self.abort(why.clone());
                Err(SessionError::Protocol(why))
            }
            SyncOp::Unblock(t) => {
                self.engine(|x| x.unblock(t))?;
                self.threads[t].unpark();
                Ok(())
            }
        }
    }
}

/// Reports `op` on the primitive `obj` in the calling worker's step.
pub(crate) fn coop_event(py: Python<'_>, op: SyncOp, obj: *mut ffi::PyObject) -> SessionResult<()> {
    let (shared, tid, generation) = worker_or_err()?;
    let key = sync_key(py, &shared, tid, obj);
    let mut st = shared.lock();
    st.live(generation)?;
    if st.current != Some(tid) {
        return Err(SessionError::Protocol(format!(
            "thread {tid} reported {} without its turn",
            op.name()
        )));
    }
    if let Err(e) = st.sync_event(tid, op, key) {
        shared.wake(&st);
        return Err(e);
    }
    if let Some(step) = st.steps.last_mut() {
        step.sync.push((op.name(), key));
    }
    Ok(())
}

/// Parks the calling worker on `obj` (a lock another thread holds when
/// `lock`, else an event, condition or queue) until it is woken. Returns
/// false when a `timed` wait was ended by a modelled timeout.
pub(crate) fn coop_block(
    py: Python<'_>,
    obj: *mut ffi::PyObject,
    lock: bool,
    timed: bool,
) -> SessionResult<bool> {
    let (shared, tid, generation) = worker_or_err()?;
    let key = sync_key(py, &shared, tid, obj);
    {
        let mut st = shared.lock();
        st.live(generation)?;
        if st.current != Some(tid) {
            return Err(SessionError::Protocol(format!(
                "thread {tid} blocked without its turn"
            )));
        }
        let r = if lock {
            st.engine(|x| x.block_on_lock(tid, key))
        } else {
            st.engine(|x| x.block(tid, key))
        };
        if let Err(e) = r {
            shared.wake(&st);
            return Err(e);
        }
        let slot = &mut st.threads[tid];
        slot.turn = Turn::Parked(Blocked {
            timed,
            lock: lock.then_some(key),
        });
        slot.timed_out = false;
        if let Some(step) = st.steps.last_mut() {
            step.sync
                .push((if lock { "wait for lock" } else { "wait" }, key));
        }
        if lock {
            if let Some(cycle) = st.explorer.lock_cycle(tid) {
                // A lock-ordering cycle never resolves: end the execution
                // now rather than when the other threads are done.
                st.lock_cycle = Some(cycle);
                st.current = None;
                st.phase = Phase::Done;
                shared.wake(&st);
                return Err(SessionError::Deadlocked);
            }
        }
        // Ok(None) is a deadlock (the phase is then Done) or a wait for a
        // thread blocked in native code: `wait_for_grant` tells them apart.
        let next = st.schedule_next();
        shared.wake(&st);
        next?;
    }
    wait_for_grant(py, &shared, tid, generation)?;
    let mut st = shared.lock();
    Ok(!std::mem::take(&mut st.threads[tid].timed_out))
}
