//! What can go wrong in a session, as one type until the Python boundary.
//!
//! Session code returns `SessionError`; the `#[pyfunction]`s and
//! `#[pymethods]` convert it with `?` through the one `From` impl below, so
//! which Python exception a failure becomes is decided here and nowhere
//! else.

use frontrun_engine::EngineError;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::PyErr;
use std::fmt;

pyo3::create_exception!(
    _engine,
    ExecutionAborted,
    pyo3::exceptions::PyBaseException,
    "Raised inside a worker thread when its execution was abandoned (timeout, deadlock, or an engine error)."
);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// The explorer refused a call; the execution was abandoned for it.
    Engine(EngineError),
    /// The caller's execution has ended (a straggler of an earlier one, or
    /// a call between executions).
    Over,
    /// The execution was abandoned, for this reason.
    Abandoned(String),
    /// The execution ended in a deadlock; the calling worker only unwinds.
    Deadlocked,
    /// The calling thread is not a worker of a running exploration.
    NotWorker,
    /// A worker broke the turn-taking protocol (reported an operation
    /// without its turn, named a thread that does not exist).
    Protocol(String),
    /// `begin` while an execution runs.
    AlreadyRunning,
    /// The explorer refused to begin or end an execution (the session lost
    /// track of its executions).
    Lifecycle(EngineError),
    /// A setting the session cannot work with (`Session(...)` arguments).
    Invalid(String),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Engine(e) | SessionError::Lifecycle(e) => write!(f, "engine error: {e}"),
            SessionError::Over => write!(f, "this execution is over"),
            SessionError::Abandoned(why)
            | SessionError::Protocol(why)
            | SessionError::Invalid(why) => {
                write!(f, "{why}")
            }
            SessionError::Deadlocked => write!(f, "the execution ended in a deadlock"),
            SessionError::NotWorker => write!(f, "the calling thread is not a frontrun worker"),
            SessionError::AlreadyRunning => write!(f, "an execution is already running"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<SessionError> for PyErr {
    /// Failures inside a worker's execution unwind the worker
    /// (`ExecutionAborted`, a `BaseException` user code does not catch);
    /// misuse of the session object from the main thread is a
    /// `RuntimeError`, bad arguments a `ValueError`.
    fn from(e: SessionError) -> PyErr {
        match e {
            SessionError::AlreadyRunning | SessionError::Lifecycle(_) => {
                PyRuntimeError::new_err(e.to_string())
            }
            SessionError::Invalid(why) => PyValueError::new_err(why),
            _ => ExecutionAborted::new_err(e.to_string()),
        }
    }
}

pub type SessionResult<T> = Result<T, SessionError>;
