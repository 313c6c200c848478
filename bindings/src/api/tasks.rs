//! The Python face of the tasks of one event loop (`frontrun/_async.py`,
//! `session/tasks.rs`): the loop frontrun runs asyncio tasks on calls these
//! at each switch between tasks.

use super::session_class::Session;
use crate::boundary::shield;
use crate::{session, tracer};
use pyo3::prelude::*;

/// Makes the calling thread the event loop of `session`'s running
/// execution, with the tracer installed; it works as task 0 until
/// `task_next` says otherwise.
#[pyfunction]
fn tasks_enter(session: &Bound<'_, Session>) -> PyResult<()> {
    shield("tasks_enter", || {
        session::tasks_enter(session.get().shared())?;
        tracer::install_for_thread();
        Ok(())
    })
}

/// Ends the current task's step; the task that takes the next one, or
/// None when none can (all finished, or a deadlock).
#[pyfunction]
fn task_next(session: &Bound<'_, Session>) -> PyResult<Option<usize>> {
    shield("task_next", || {
        Ok(session::task_next(session.get().shared())?)
    })
}

/// Between steps, before the loop waits for its sockets: drains the native
/// events into the step that made them; until the next `task_next` the
/// loop's own native events belong to no task.
#[pyfunction]
fn task_drain(session: &Bound<'_, Session>) -> PyResult<()> {
    shield("task_drain", || {
        Ok(session::task_drain(session.get().shared())?)
    })
}

/// Task `task` (the current one) has nothing ready to run: it waits on
/// `obj` until a step wakes it.
#[pyfunction]
fn task_block(
    py: Python<'_>,
    session: &Bound<'_, Session>,
    task: usize,
    obj: &Bound<'_, PyAny>,
) -> PyResult<()> {
    shield("task_block", || {
        Ok(session::task_block(
            py,
            session.get().shared(),
            task,
            obj.as_ptr(),
        )?)
    })
}

/// The current step made `task` ready to run again.
#[pyfunction]
fn task_unblock(session: &Bound<'_, Session>, task: usize) -> PyResult<()> {
    shield("task_unblock", || {
        Ok(session::task_unblock(session.get().shared(), task)?)
    })
}

/// `task` starts only when a task creates it ([`task_spawn`]): until then
/// the explorer never gives it a step, and if no task creates it, it is no
/// part of the execution. Called as the execution starts.
#[pyfunction]
fn task_expect_spawn(session: &Bound<'_, Session>, task: usize) -> PyResult<()> {
    shield("task_expect_spawn", || {
        Ok(session::task_expect_spawn(session.get().shared(), task)?)
    })
}

/// `parent` (the current task) created `child` in the step it runs: what
/// `parent` did so far happens before `child`'s first step.
#[pyfunction]
fn task_spawn(session: &Bound<'_, Session>, parent: usize, child: usize) -> PyResult<()> {
    shield("task_spawn", || {
        Ok(session::task_spawn(session.get().shared(), parent, child)?)
    })
}

/// `task` (the current one) ended in the step it just ran.
#[pyfunction]
fn task_finish(session: &Bound<'_, Session>, task: usize) -> PyResult<()> {
    shield("task_finish", || {
        Ok(session::task_finish(session.get().shared(), task)?)
    })
}

/// The key `describe` knows `obj` by, as a synchronisation object numbered
/// by `task`.
#[pyfunction]
fn task_key(
    py: Python<'_>,
    session: &Bound<'_, Session>,
    task: usize,
    obj: &Bound<'_, PyAny>,
) -> u64 {
    session::task_key(py, session.get().shared(), task, obj.as_ptr())
}

/// The event loop is done with the execution: the tracer is removed, the
/// calling thread stops being a worker, and blocked tasks count as ended.
/// Returns False when something replaced the tracer meanwhile.
#[pyfunction]
fn tasks_leave(session: &Bound<'_, Session>) -> PyResult<bool> {
    shield("tasks_leave", || {
        let kept = tracer::uninstall_for_thread();
        session::tasks_leave(session.get().shared());
        Ok(kept)
    })
}

/// `(step, key, is_write, code, offset)`: one access of a task's step.
type PySite = (usize, u64, bool, Option<Py<PyAny>>, u32);

/// Where each access of the last execution's steps was made: `(step,
/// key, is_write, code, offset)`, in order. Kept until the next `begin`.
#[pyfunction]
fn task_sites(py: Python<'_>, session: &Bound<'_, Session>) -> PyResult<Vec<PySite>> {
    shield("task_sites", || {
        let shared = session.get().shared();
        Ok(session::task_sites(shared)
            .into_iter()
            .map(|(step, key, write, code, offset)| {
                let code = shared
                    .codes
                    .get(code as *mut pyo3::ffi::PyObject)
                    .map(|info| info.code.clone_ref(py));
                (step, key, write, code, offset)
            })
            .collect())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tasks_enter, m)?)?;
    m.add_function(wrap_pyfunction!(task_next, m)?)?;
    m.add_function(wrap_pyfunction!(task_block, m)?)?;
    m.add_function(wrap_pyfunction!(task_drain, m)?)?;
    m.add_function(wrap_pyfunction!(task_unblock, m)?)?;
    m.add_function(wrap_pyfunction!(task_finish, m)?)?;
    m.add_function(wrap_pyfunction!(task_expect_spawn, m)?)?;
    m.add_function(wrap_pyfunction!(task_spawn, m)?)?;
    m.add_function(wrap_pyfunction!(task_key, m)?)?;
    m.add_function(wrap_pyfunction!(tasks_leave, m)?)?;
    m.add_function(wrap_pyfunction!(task_sites, m)?)?;
    Ok(())
}
