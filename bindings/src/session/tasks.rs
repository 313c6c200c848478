//! The tasks of one event loop as the workers of an exploration
//! (`frontrun/_async.py`).
//!
//! One OS thread runs every task, one step at a time, so the turn never
//! passes between threads: the loop asks the explorer which task takes the
//! next step ([`task_next`]), the thread's worker registration becomes that
//! task, and the loop runs it until it yields. Everything in between joins
//! that one step (`Shared::one_loop`): the event loop cannot preempt a task
//! between two awaits, so neither does the exploration. Blocking is the
//! loop's to say: a task with nothing ready to run is blocked
//! ([`task_block`], while it is the current task), and the step that makes
//! it ready again wakes it ([`task_unblock`]), which orders the two steps.
//!
//! Native events (the preload library's ring) are routed by the OS thread
//! that made them, and the loop's one thread makes them for every task: at
//! each switch the ring is drained first, so that what the outgoing task
//! did joins its step, and the thread is then routed to the incoming task.
//! While the loop waits for sockets between steps ([`task_drain`]), its
//! thread is routed to no task.

use super::turns::{Blocked, Phase, Shared, State, Turn};
use super::worker::{enter, WORKER};
use crate::error::{SessionError, SessionResult};
use crate::keys::SlotDesc;
use crate::native::os_tid;
use frontrun_engine::ThreadId;
use pyo3::ffi;
use pyo3::prelude::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Makes the calling thread the event loop of the running execution: it
/// works as task 0 until [`task_next`] says otherwise.
pub(crate) fn tasks_enter(shared: &Arc<Shared>) -> SessionResult<()> {
    shared.one_loop.store(true, Ordering::Relaxed);
    enter(shared, 0)?;
    let mut st = shared.lock();
    st.one_loop = true;
    if let Some(native) = st.native.as_mut() {
        native.no_row_lock_model();
        native.route(Some(0), os_tid());
    }
    Ok(())
}

/// The generation the calling thread works for, if it is this session's
/// event loop.
fn loop_generation(shared: &Arc<Shared>) -> SessionResult<u64> {
    WORKER.with(|cell| {
        let w = cell.try_borrow().map_err(|_| SessionError::NotWorker)?;
        match w.as_ref() {
            Some(w) if Arc::ptr_eq(&w.shared, shared) => Ok(w.generation),
            _ => Err(SessionError::NotWorker),
        }
    })
}

/// Ends the current task's step and asks the explorer which task takes the
/// next one; the calling thread then works as that task. None when no task
/// can: every task finished, or the unfinished ones are all blocked (a
/// deadlock, in the explorer's report).
pub(crate) fn task_next(shared: &Arc<Shared>) -> SessionResult<Option<ThreadId>> {
    let generation = loop_generation(shared)?;
    let next = {
        let mut st = shared.lock();
        st.live(generation)?;
        st.between_steps = false;
        // `schedule_next` drains the ring while the loop's thread is still
        // routed to the outgoing task.
        let next = st.schedule_next();
        if let (Ok(t), Some(native)) = (&next, st.native.as_mut()) {
            native.route(*t, os_tid());
        }
        shared.wake(&st);
        next?
    };
    if let Some(t) = next {
        WORKER.with(|cell| {
            if let Ok(mut w) = cell.try_borrow_mut() {
                if let Some(w) = w.as_mut() {
                    w.tid = t;
                }
            }
        });
    }
    Ok(next)
}

/// Between two steps, before the loop waits for its sockets: the ring is
/// drained (the events so far join the step that made them) and the loop's
/// thread is routed to no task until the next [`task_next`] (what the loop
/// reads for the tasks' transports while no task runs is no task's step).
pub(crate) fn task_drain(shared: &Arc<Shared>) -> SessionResult<()> {
    let generation = loop_generation(shared)?;
    let mut st = shared.lock();
    st.live(generation)?;
    st.drain_native();
    if let Some(native) = st.native.as_mut() {
        native.route(None, os_tid());
    }
    st.between_steps = true;
    Ok(())
}

/// The key of `obj` as a synchronisation object, numbered by task `tid`.
pub(crate) fn task_key(
    py: Python<'_>,
    shared: &Shared,
    tid: ThreadId,
    obj: *mut ffi::PyObject,
) -> u64 {
    shared.keys.lock().unwrap_or_else(|p| p.into_inner()).key(
        py,
        obj,
        Some(tid),
        crate::keys::SLOT_SYNC,
        || SlotDesc::Sync,
    )
}

/// Task `t`, which has just run its step, has nothing ready to run: it
/// waits on `obj` (the future it awaits) until a step wakes it.
pub(crate) fn task_block(
    py: Python<'_>,
    shared: &Arc<Shared>,
    t: ThreadId,
    obj: *mut ffi::PyObject,
) -> SessionResult<()> {
    let generation = loop_generation(shared)?;
    let key = task_key(py, shared, t, obj);
    let mut st = shared.lock();
    st.live(generation)?;
    if t >= st.num_threads || st.current != Some(t) {
        return Err(SessionError::Protocol(format!(
            "task {t} blocked outside its own step"
        )));
    }
    st.engine(|x| x.block(t, key))?;
    st.threads[t].turn = Turn::Parked(Blocked {
        timed: false,
        lock: None,
    });
    if let Some(step) = st.steps.last_mut() {
        step.sync.push(("wait", key));
    }
    Ok(())
}

/// The current step made task `t` ready to run again.
pub(crate) fn task_unblock(shared: &Arc<Shared>, t: ThreadId) -> SessionResult<()> {
    let generation = loop_generation(shared)?;
    let mut st = shared.lock();
    st.live(generation)?;
    if t >= st.num_threads {
        return Err(SessionError::Protocol(format!("no task {t} to wake")));
    }
    if st.threads[t].parked().is_some() {
        st.engine(|x| x.unblock(t))?;
        st.threads[t].unpark();
    }
    Ok(())
}

/// Task `t` waits to be created by a task (see `Explorer::expect_spawn`);
/// to the session it is out of the execution until then.
pub(crate) fn task_expect_spawn(shared: &Arc<Shared>, t: ThreadId) -> SessionResult<()> {
    let generation = loop_generation(shared)?;
    let mut st = shared.lock();
    st.live(generation)?;
    if t >= st.num_threads {
        return Err(SessionError::Protocol(format!("no task {t} to expect")));
    }
    st.engine(|x| x.expect_spawn(t))?;
    st.threads[t].turn = Turn::Finished;
    Ok(())
}

/// The current task `parent` created task `child` in its step.
pub(crate) fn task_spawn(
    shared: &Arc<Shared>,
    parent: ThreadId,
    child: ThreadId,
) -> SessionResult<()> {
    let generation = loop_generation(shared)?;
    let mut st = shared.lock();
    st.live(generation)?;
    if child >= st.num_threads || st.current != Some(parent) {
        return Err(SessionError::Protocol(format!(
            "task {parent} created task {child} outside its own step"
        )));
    }
    st.engine(|x| x.spawn(parent, child))?;
    st.threads[child].turn = Turn::Free;
    st.progress += 1;
    Ok(())
}

/// Task `t` ended in the step it just ran.
pub(crate) fn task_finish(shared: &Arc<Shared>, t: ThreadId) -> SessionResult<()> {
    let generation = loop_generation(shared)?;
    let mut st = shared.lock();
    st.live(generation)?;
    if t >= st.num_threads || st.threads[t].finished() {
        return Err(SessionError::Protocol(format!("task {t} finished twice")));
    }
    // What its last step did in native code (a send just before it ended)
    // joins that step, as for a thread that ends.
    if st.current == Some(t) {
        st.drain_native();
        st.end_native_step(t);
    }
    st.engine(|x| x.finish(t))?;
    st.threads[t].turn = Turn::Finished;
    // Until the next switch the loop runs no task: what runs meanwhile (a
    // finalizer of something the task let go) is no task's step, as
    // between steps (`task_drain`).
    st.between_steps = true;
    st.progress += 1;
    Ok(())
}

/// The event loop is done with the execution (every task ended, a
/// deadlock, or the execution was given up): the calling thread stops
/// being a worker, and tasks left blocked count as ended, so that the
/// execution can be closed.
pub(crate) fn tasks_leave(shared: &Arc<Shared>) {
    let worker = WORKER.with(|w| w.borrow_mut().take());
    drop(worker);
    let mut st = shared.lock();
    if st.phase != Phase::Running {
        for slot in st.threads.iter_mut() {
            slot.turn = Turn::Finished;
        }
    }
    st.current = None;
    st.progress += 1;
    shared.wake(&st);
}

pub(crate) use super::turns::Site;

/// Notes where the accesses `resolved`, about to join the current step,
/// are made (the step's own record keeps only where it began).
pub(crate) fn record_sites(st: &mut State, code: usize, offset: u32, resolved: &[(u64, bool)]) {
    let step = st.steps.len().saturating_sub(1);
    st.sites.extend(
        resolved
            .iter()
            .map(|&(key, write)| (step, key, write, code, offset)),
    );
}

/// The sites of the current (or last ended) execution.
pub(crate) fn task_sites(shared: &Shared) -> Vec<Site> {
    shared.lock().sites.clone()
}
