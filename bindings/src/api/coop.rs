//! The Python face of the cooperative primitives (`frontrun/_coop.py`).
//!
//! The Python classes keep the real state (a real lock underneath each
//! cooperative one); from a worker thread they call in here to make each
//! synchronisation operation a step of the exploration: `coop_turn` takes
//! the scheduling point, `coop_event` says what the step did, and
//! `coop_block` parks the thread (GIL released, never scheduled) until a
//! release, notify or modelled timeout wakes it. The turn-taking itself is
//! in `session/coop.rs`.

use crate::boundary::shield;
use crate::session::{self, SyncOp};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The calling thread's worker id while an execution runs, else None (the
/// primitive then behaves like the real one).
#[pyfunction]
fn coop_tid() -> PyResult<Option<usize>> {
    shield("coop_tid", || Ok(session::coop_tid()))
}

/// Takes a scheduling point for a synchronisation operation made by user
/// code at (`code`, `offset`) on the primitives `objs` (numbered by this
/// thread before it gives up the turn, like the objects of an instruction).
#[pyfunction]
#[pyo3(signature = (code=None, offset=0, *objs))]
fn coop_turn(
    py: Python<'_>,
    code: Option<&Bound<'_, PyAny>>,
    offset: u32,
    objs: &Bound<'_, pyo3::types::PyTuple>,
) -> PyResult<()> {
    shield("coop_turn", || {
        let code = code.map_or(0, |c| c.as_ptr() as usize);
        let objs: Vec<_> = objs.iter().map(|o| o.as_ptr()).collect();
        Ok(session::coop_turn(py, code, offset, &objs)?)
    })
}

/// Reports an operation on `obj` in the current step. `op` is one of
/// "acquire", "try_acquire", "try_fail", "release", "read", "write",
/// "unblock" (which wakes worker `thread`).
#[pyfunction]
#[pyo3(signature = (op, obj, thread=0))]
fn coop_event(py: Python<'_>, op: &str, obj: &Bound<'_, PyAny>, thread: usize) -> PyResult<()> {
    let op = match op {
        "acquire" => SyncOp::Acquire,
        "try_acquire" => SyncOp::TryAcquire,
        "try_fail" => SyncOp::TryFail,
        "release" => SyncOp::Release,
        "read" => SyncOp::Read,
        "write" => SyncOp::Write,
        "unblock" => SyncOp::Unblock(thread),
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown operation {other:?}"
            )))
        }
    };
    shield("coop_event", || {
        Ok(session::coop_event(py, op, obj.as_ptr())?)
    })
}

/// Parks the calling worker on `obj` until woken. `lock`: `obj` is a lock
/// another thread holds. Returns False when a `timed` wait timed out.
#[pyfunction]
#[pyo3(signature = (obj, lock=false, timed=false))]
fn coop_block(py: Python<'_>, obj: &Bound<'_, PyAny>, lock: bool, timed: bool) -> PyResult<bool> {
    shield("coop_block", || {
        Ok(session::coop_block(py, obj.as_ptr(), lock, timed)?)
    })
}

/// The calling worker yields (a `time.sleep` on the virtual clock): its
/// step ends in a yield, so the explorer's free choice goes to another
/// thread and switching costs no preemption. Returns whether it yielded
/// (False outside a running execution, or without the turn).
#[pyfunction]
fn coop_yield() -> PyResult<bool> {
    shield("coop_yield", || Ok(session::coop_yield()))
}

/// The calling worker, at the scheduling point of `Thread.join` (taken
/// with `coop_turn`), waits for the thread it started as `thread` (its
/// thread object `obj`) to end. Returns False when a `timed` join timed
/// out (modelled, as for the cooperative primitives).
#[pyfunction]
#[pyo3(signature = (thread, obj, timed=false))]
fn thread_join(
    py: Python<'_>,
    thread: usize,
    obj: &Bound<'_, PyAny>,
    timed: bool,
) -> PyResult<bool> {
    shield("thread_join", || {
        Ok(session::thread_join(py, thread, obj.as_ptr(), timed)?)
    })
}

/// The calling worker started the process `pid` (`command`, for
/// explanations): under the preload library, its file, socket and
/// database accesses, and its descendants', join the worker's steps.
#[pyfunction]
fn child_process(pid: u32, command: &str) -> PyResult<()> {
    shield("child_process", || {
        session::child_process(pid, command);
        Ok(())
    })
}

/// The calling worker reaped its child `pid`: what the child and its
/// descendants did joins the worker's step.
#[pyfunction]
fn child_reaped(pid: u32) -> PyResult<()> {
    shield("child_reaped", || {
        session::child_reaped(pid);
        Ok(())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(coop_tid, m)?)?;
    m.add_function(wrap_pyfunction!(coop_turn, m)?)?;
    m.add_function(wrap_pyfunction!(coop_event, m)?)?;
    m.add_function(wrap_pyfunction!(coop_block, m)?)?;
    m.add_function(wrap_pyfunction!(coop_yield, m)?)?;
    m.add_function(wrap_pyfunction!(thread_join, m)?)?;
    m.add_function(wrap_pyfunction!(child_process, m)?)?;
    m.add_function(wrap_pyfunction!(child_reaped, m)?)?;
    Ok(())
}
