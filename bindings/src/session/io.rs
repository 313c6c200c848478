//! Python-level I/O steps (`frontrun/_io.py`): an I/O call of a worker
//! becomes a step of its own, or joins the step under way.

use super::turns::Shared;
use super::turns::{acquire_turn, kind, Standing, State};
use super::worker::current_worker;
use crate::error::{SessionError, SessionResult};
use frontrun_engine::ThreadId;
use pyo3::prelude::*;

/// The calling worker is about to perform I/O on `resources` (full names
/// such as `file:/tmp/x`, with whether the operation writes). With
/// `own_step`, the operation becomes a step of its own, taken before it
/// runs so the engine can order it: wait for the turn, report the accesses
/// in the engine's I/O key space, record the step at `frame`'s innermost
/// traced caller. Without it, the accesses join the step the worker is
/// running now (receives: a reply must stay with its request, see
/// `frontrun/_io.py`). Returns false, doing nothing, when the calling
/// thread is not a worker.
pub fn io_step(
    py: Python<'_>,
    resources: &[(Vec<u8>, bool)],
    frame: Option<&Bound<'_, PyAny>>,
    own_step: bool,
) -> SessionResult<bool> {
    let found = current_worker();
    let Some((shared, tid, generation)) = found else {
        return Ok(false);
    };
    let accesses: Vec<(u64, bool)> = resources
        .iter()
        .map(|(name, write)| (frontrun_ring::resource_key(name), *write))
        .collect();
    {
        let mut names = shared.io_names.lock().unwrap_or_else(|p| p.into_inner());
        for ((name, _), (key, _)) in resources.iter().zip(&accesses) {
            names
                .entry(*key)
                .or_insert_with(|| String::from_utf8_lossy(name).into_owned());
        }
    }
    if join_current_step(&shared, tid, generation, &accesses, own_step)? {
        return Ok(true);
    }
    let (code, offset) = frame.map(|f| traced_caller(&shared, f)).unwrap_or((0, 0));
    acquire_turn(py, &shared, tid, generation)?;
    let mut st = shared.lock();
    if let Standing::Released(why) = st.standing(generation)? {
        return Err(SessionError::Abandoned(why.to_string()));
    }
    report_io(&shared, &mut st, tid, &accesses)?;
    if let Some(i) = st.start_step(tid, code, offset) {
        st.steps[i].accesses = accesses;
    }
    Ok(true)
}

/// Adds I/O accesses to the step worker `tid` is running, if it holds the
/// turn with its step already under way and either `own_step` is false or
/// it is holding the turn (`io_hold`); false when it must take a step.
fn join_current_step(
    shared: &Shared,
    tid: ThreadId,
    generation: u64,
    accesses: &[(u64, bool)],
    own_step: bool,
) -> SessionResult<bool> {
    let mut st = shared.lock();
    if let Standing::Released(why) = st.standing(generation)? {
        return Err(SessionError::Abandoned(why.to_string()));
    }
    let running = st.current == Some(tid)
        && !st.threads[tid].granted()
        && st.steps.last().is_some_and(|s| s.thread == tid);
    if !running || (own_step && !st.threads[tid].keeps_turn()) {
        return Ok(false);
    }
    report_io(shared, &mut st, tid, accesses)?;
    join_step_record(&mut st, tid, accesses);
    st.progress += 1;
    Ok(true)
}

/// Reports the I/O accesses of worker `tid`'s step to the explorer.
fn report_io(
    shared: &Shared,
    st: &mut State,
    tid: ThreadId,
    accesses: &[(u64, bool)],
) -> SessionResult<()> {
    for &(key, write) in accesses {
        if let Err(e) = st.engine(|x| x.io_access(tid, key, kind(write))) {
            shared.wake(st);
            return Err(e);
        }
    }
    Ok(())
}

/// Adds `accesses` to the record of the step `tid` is running.
pub(super) fn join_step_record(st: &mut State, tid: ThreadId, accesses: &[(u64, bool)]) {
    if let Some(step) = st.steps.last_mut().filter(|s| s.thread == tid) {
        for &a in accesses {
            if !step.accesses.contains(&a) {
                step.accesses.push(a);
            }
        }
    }
}

/// The calling worker starts (`on`) or ends a request/answer exchange with
/// a server: while it lasts, the worker keeps the turn, and its
/// instructions and I/O join the step it is in, so that no other worker's
/// request reaches the server between this request and its answer (the
/// server's order would then depend on timing). Does nothing in a thread
/// that is not a worker.
pub fn io_hold(on: bool) {
    let found = current_worker();
    let Some((shared, tid, generation)) = found else {
        return;
    };
    let mut st = shared.lock();
    if st.standing(generation).is_ok() && tid < st.num_threads {
        st.threads[tid].holding = on && st.current == Some(tid);
    }
}

/// `(code, offset)` of the innermost frame from `frame` outwards whose code
/// is traced, or `(0, 0)` when none is: where the user's program asked for
/// the I/O.
fn traced_caller(shared: &Shared, frame: &Bound<'_, PyAny>) -> (usize, u32) {
    let mut f = Some(frame.clone());
    while let Some(cur) = f.filter(|f| !f.is_none()) {
        if let Ok(code) = cur.getattr("f_code") {
            if shared.codes.get(code.as_ptr()).is_some_and(|i| i.traced) {
                let offset = cur
                    .getattr("f_lasti")
                    .and_then(|o| o.extract::<i64>())
                    .unwrap_or(0);
                return (code.as_ptr() as usize, offset.max(0) as u32);
            }
        }
        f = cur.getattr("f_back").ok();
    }
    (0, 0)
}
