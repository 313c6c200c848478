//! The worker thread-local: which session, thread id and execution the
//! calling thread works for, and its entry into and exit from an
//! execution.

use super::turns::Shared;
use super::turns::{wait_for_grant, Phase, Turn};
use crate::access::RawAccess;
use crate::codeinfo::CodeInfo;
use crate::error::{SessionError, SessionResult};
use frontrun_engine::ThreadId;
use pyo3::prelude::*;
use std::cell::RefCell;
use std::sync::Arc;

/// What a worker thread knows about itself.
pub(super) struct Worker {
    pub(super) shared: Arc<Shared>,
    /// The execution it works for.
    pub(super) generation: u64,
    pub(super) tid: ThreadId,
    /// The code of the last instruction seen, and its info: consecutive
    /// instructions are mostly in the same code object.
    pub(super) last_code: usize,
    pub(super) last_info: Option<Arc<CodeInfo>>,
    /// Scratch space for the accesses of one instruction.
    pub(super) buf: Vec<RawAccess>,
}

thread_local! {
    pub(super) static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// The calling thread's worker registration: its session, id and the
/// execution it belongs to.
pub(crate) fn current_worker() -> Option<(Arc<Shared>, ThreadId, u64)> {
    WORKER.with(|cell| {
        let w = cell.try_borrow().ok()?;
        let w = w.as_ref()?;
        Some((w.shared.clone(), w.tid, w.generation))
    })
}

/// Registers the calling thread as worker `tid` of the running execution,
/// whose generation it returns. The caller installs the tracer, then parks
/// the thread with [`wait_first_step`].
pub fn enter(shared: &Arc<Shared>, tid: ThreadId) -> SessionResult<u64> {
    enter_generation(shared, tid, None)
}

/// [`enter`] for a thread a worker started (`spawn.rs`): only into the
/// execution of `generation`, the one that started it.
pub fn enter_spawned(shared: &Arc<Shared>, tid: ThreadId, generation: u64) -> SessionResult<u64> {
    enter_generation(shared, tid, Some(generation))
}

fn enter_generation(
    shared: &Arc<Shared>,
    tid: ThreadId,
    expected: Option<u64>,
) -> SessionResult<u64> {
    let generation = {
        let st = shared.lock();
        if tid >= st.num_threads {
            return Err(SessionError::Invalid(format!(
                "no thread {tid} in this execution"
            )));
        }
        if expected.is_some_and(|g| g != st.generation) {
            return Err(SessionError::Over);
        }
        st.generation
    };
    if let Some(native) = shared.lock().native.as_mut() {
        native.register(tid, crate::native::os_tid());
    }
    WORKER.with(|w| {
        *w.borrow_mut() = Some(Worker {
            shared: shared.clone(),
            generation,
            tid,
            last_code: 0,
            last_info: None,
            buf: Vec::with_capacity(8),
        })
    });
    Ok(generation)
}

/// Parks a worker that just entered until its first step is granted.
pub fn wait_first_step(
    py: Python<'_>,
    shared: &Shared,
    tid: ThreadId,
    generation: u64,
) -> SessionResult<()> {
    wait_for_grant(py, shared, tid, generation)
}

/// Unregisters the calling thread (its tracer already removed) and passes
/// the turn on.
pub fn leave(py: Python<'_>, shared: &Arc<Shared>, tid: ThreadId) {
    let worker = WORKER.with(|w| w.borrow_mut().take());
    let Some(generation) = worker.as_ref().map(|w| w.generation) else {
        return;
    };
    drop(worker);
    let set_aside = {
        let st = shared.lock();
        st.standing(generation).is_ok()
            && tid < st.num_threads
            && st.threads[tid].turn == Turn::SetAside
    };
    // Returned from a native wait and ended before another scheduling
    // point: its last step still needs the turn. (After a deadlock it only
    // unwinds: record its end below.)
    if set_aside
        && wait_for_grant(py, shared, tid, generation).is_err()
        && shared.lock().phase != Phase::Done
    {
        return;
    }
    let mut st = shared.lock();
    if st.standing(generation).is_err() || tid >= st.num_threads || st.threads[tid].finished() {
        return;
    }
    if st.current == Some(tid) {
        // What its child processes did and it never waited for joins its
        // last step.
        st.reap_child(tid, None);
        if std::mem::take(&mut st.row_blocked) {
            // A row it asked for looked locked, yet its call returned: it
            // was not held back after all. Its last step ends here.
            st.current = Some(tid);
            st.threads[tid].turn = Turn::Free;
            if let Some(native) = st.native.as_mut() {
                native.cancel_row_wait(tid);
            }
        }
        st.end_native_step(tid);
    }
    let slot = &mut st.threads[tid];
    slot.turn = Turn::Finished;
    slot.holding = false;
    st.wake_joiners(tid);
    // After a deadlock the explorer's execution is over; the blocked
    // threads only unwind.
    if st.phase == Phase::Running {
        let _ = st.engine(|x| x.finish(tid));
    }
    st.progress += 1;
    if st.phase == Phase::Running && st.current == Some(tid) {
        let _ = st.schedule_next();
    }
    shared.wake(&st);
}

/// What the calling thread is to the I/O wrappers, which ask before naming
/// a resource (so other threads pay one call): 0 not a worker, 1 a worker,
/// 2 a worker whose exploration reads the preload library's events (the
/// library then sees its libc-level socket and file calls itself).
pub fn worker_kind() -> u8 {
    let shared = WORKER.with(|w| {
        w.try_borrow()
            .ok()
            .and_then(|w| w.as_ref().map(|w| w.shared.clone()))
    });
    match shared {
        None => 0,
        Some(s) if s.lock().native.is_some() => 2,
        Some(_) => 1,
    }
}

/// In the child of a `fork` made by a worker: the calling thread, the only
/// one the child has, stops being a worker (the caller removes its tracer),
/// so the child runs freely. Nothing here takes a lock: the session's may have
/// been held by a thread the child does not have. The registration is
/// leaked, not dropped, for the same reason.
pub fn forget_worker_after_fork() {
    WORKER.with(|cell| {
        if let Ok(mut w) = cell.try_borrow_mut() {
            if let Some(w) = w.take() {
                std::mem::forget(w);
            }
        }
    });
}
