//! Threads that the workers start (`frontrun/_spawn.py`): each takes a
//! spare thread id of the session, is spawned in the explorer by the step
//! of the worker that started it, runs as a worker of its own, and is
//! joined through the explorer.
//!
//! The spare ids wait for their spawn ([`expect_spawns`]): until a worker
//! starts a thread on one, the explorer never gives it a step, and an id
//! no worker used is no part of the execution. Ids are handed out in the
//! order the threads are started, so two steps that start threads are
//! ordered against each other (they write [`NUMBERING`]): in an execution
//! that reversed them, the ids would belong to the other threads.

use super::io::join_step_record;
use super::turns::{wait_for_grant, Blocked, Phase, Shared, Turn};
use super::worker::current_worker;
use crate::error::{SessionError, SessionResult};
use crate::keys::SlotDesc;
use frontrun_engine::{AccessKind, ThreadId};
use pyo3::ffi;
use pyo3::prelude::*;
use std::sync::Arc;

/// The resource every thread start writes (see the module docs).
pub(crate) const NUMBERING: &[u8] = b"frontrun:the numbering of the threads the workers start";

/// The ids from `first` on start only when a worker starts a thread on
/// them. Called by the main thread after `begin`, before the first step.
pub(crate) fn expect_spawns(shared: &Shared, first: ThreadId) -> SessionResult<()> {
    let mut st = shared.lock();
    if st.phase != Phase::Running || st.current.is_some() || !st.steps.is_empty() {
        return Err(SessionError::Protocol(
            "expect_spawns is called between begin and the first step".into(),
        ));
    }
    for t in first..st.num_threads {
        st.engine(|x| x.expect_spawn(t))?;
        st.threads[t].turn = Turn::Finished;
    }
    Ok(())
}

/// The calling worker starts a thread that will work as `child`, in the
/// step it is running. Returns the execution's generation, for the new
/// thread's [`enter_spawned`]; None when the execution was given up (its
/// workers run free, and so does the new thread).
pub(crate) fn thread_spawn(shared: &Arc<Shared>, child: ThreadId) -> SessionResult<Option<u64>> {
    let (mine, parent, generation) = current_worker().ok_or(SessionError::NotWorker)?;
    if !Arc::ptr_eq(&mine, shared) {
        return Err(SessionError::NotWorker);
    }
    let key = frontrun_ring::resource_key(NUMBERING);
    shared
        .io_names
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_insert_with(|| String::from_utf8_lossy(NUMBERING).into_owned());
    let mut st = shared.lock();
    if st.released() && st.generation == generation {
        return Ok(None);
    }
    st.live(generation)?;
    if child >= st.num_threads || st.current != Some(parent) || !st.threads[child].finished() {
        return Err(SessionError::Protocol(format!(
            "thread {parent} started thread {child} outside its own step"
        )));
    }
    st.engine(|x| x.io_access(parent, key, AccessKind::Write))?;
    st.engine(|x| x.spawn(parent, child))?;
    join_step_record(&mut st, parent, &[(key, true)]);
    st.threads[child].turn = Turn::Free;
    st.progress += 1;
    Ok(Some(generation))
}

/// The calling worker, holding the turn at the scheduling point of a
/// `join`, waits for `child` (its thread object `obj`, named in the step
/// record) to end. Returns false when a `timed` join was ended by a
/// modelled timeout with `child` still running; true when it ended, or
/// when the execution was given up meanwhile (the caller then joins the
/// thread for real: it runs free to its end).
pub(crate) fn thread_join(
    py: Python<'_>,
    child: ThreadId,
    obj: *mut ffi::PyObject,
    timed: bool,
) -> SessionResult<bool> {
    let (shared, tid, generation) = current_worker().ok_or(SessionError::NotWorker)?;
    let key = shared.keys.lock().unwrap_or_else(|p| p.into_inner()).key(
        py,
        obj,
        Some(tid),
        crate::keys::SLOT_SYNC,
        || SlotDesc::Sync,
    );
    loop {
        {
            let mut st = shared.lock();
            st.live(generation)?;
            if child >= st.num_threads || child == tid || st.current != Some(tid) {
                return Err(SessionError::Protocol(format!(
                    "thread {tid} joined thread {child} without its turn"
                )));
            }
            if let Err(e) = st.engine(|x| x.join(tid, child)) {
                shared.wake(&st);
                return Err(e);
            }
            if st.threads[child].finished() {
                if let Some(step) = st.steps.last_mut() {
                    step.sync.push(("join", key));
                }
                return Ok(true);
            }
            let slot = &mut st.threads[tid];
            slot.turn = Turn::Parked(Blocked { timed, lock: None });
            slot.joining = Some(child);
            slot.timed_out = false;
            if let Some(step) = st.steps.last_mut() {
                step.sync.push(("wait for thread", key));
            }
            let next = st.schedule_next();
            shared.wake(&st);
            next?;
        }
        wait_for_grant(py, &shared, tid, generation)?;
        let mut st = shared.lock();
        if st.released() && st.generation == generation {
            // Given up: everything runs free, and a real join ends.
            return Ok(true);
        }
        st.threads[tid].joining = None;
        if std::mem::take(&mut st.threads[tid].timed_out) {
            return Ok(false);
        }
        // Woken by the child's end: the join is reported again in the step
        // just granted, where it finds the child finished.
        let (code, offset) = st.threads[tid].last_seen.unwrap_or((0, 0));
        st.start_step(tid, code, offset);
    }
}

impl super::turns::State {
    /// Thread `t` ended: threads parked joining it may run again.
    pub(super) fn wake_joiners(&mut self, t: ThreadId) {
        for slot in self.threads.iter_mut() {
            if slot.joining == Some(t) && slot.parked().is_some() {
                slot.unpark();
            }
        }
    }
}

/// The calling worker started the process `pid` (`command`, for
/// explanations): what it and its descendants do under the preload
/// library joins the worker's steps. Nothing happens outside a running
/// execution or without the library.
pub(crate) fn child_process(pid: u32, command: &str) {
    let Some((shared, tid, generation)) = current_worker() else {
        return;
    };
    let mut st = shared.lock();
    if st.live(generation).is_err() || st.current != Some(tid) {
        return;
    }
    if let Some(native) = st.native.as_mut() {
        native.register_child(tid, pid, command);
        st.threads[tid].children += 1;
    }
}

/// The calling worker reaped its child `pid` (`waitpid`): what the child
/// and its descendants did joins the worker's open step.
pub(crate) fn child_reaped(pid: u32) {
    let Some((shared, tid, generation)) = current_worker() else {
        return;
    };
    let mut st = shared.lock();
    if st.live(generation).is_ok() && st.current == Some(tid) {
        let mine = st
            .native
            .as_ref()
            .is_some_and(|n| n.started_child(tid, pid));
        st.reap_child(tid, Some(pid));
        if mine {
            let slot = &mut st.threads[tid];
            slot.children = slot.children.saturating_sub(1);
        }
    }
}
