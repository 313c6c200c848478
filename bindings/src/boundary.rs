//! No Rust panic reaches Python.
//!
//! PyO3 turns a panic that escapes a `#[pymethods]` or `#[pyfunction]` body
//! into `pyo3_runtime.PanicException`, which derives from `BaseException`:
//! `except Exception` does not catch it, pytest reports it as a crash, and
//! the default hook prints a Rust backtrace on stderr. A panic in the C
//! trace callbacks would abort the interpreter. So every entry point from
//! Python runs under [`shield`], which turns a panic into
//! `frontrun._engine.InternalError` (a `RuntimeError`) whose message says
//! what panicked and where, and the trace callbacks use [`catch`].
//!
//! Values from the user are checked before they get here (see
//! `frontrun/_args.py`); a panic is a bug in frontrun, and the message
//! says so.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use pyo3::create_exception;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

create_exception!(
    _engine,
    InternalError,
    PyRuntimeError,
    "A bug in frontrun's native module (a Rust panic, caught at the boundary)."
);

thread_local! {
    /// What the last panic of this thread said, and where, kept by the
    /// hook for the exception's message.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the panic hook of this module's copy of the Rust runtime (each
/// extension module has its own): the panic's text and location go into
/// the exception instead of onto stderr. With `RUST_BACKTRACE` set the
/// default output is kept as well, for whoever debugs it.
pub fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        let verbose = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
        panic::set_hook(Box::new(move |info| {
            let text = payload_text(info.payload());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            LAST_PANIC.with(|last| *last.borrow_mut() = Some(format!("{text}{at}")));
            if verbose {
                previous(info);
            }
        }));
    });
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// The exception for a panic caught in `what`.
fn internal_error(what: &str, payload: &(dyn std::any::Any + Send)) -> PyErr {
    let text = LAST_PANIC
        .with(|last| last.borrow_mut().take())
        .unwrap_or_else(|| payload_text(payload));
    InternalError::new_err(format!(
        "frontrun internal error in {what}: {text}. This is a bug in frontrun; please report it \
         with the call that led to it"
    ))
}

/// Runs the body of a Python entry point; a panic becomes `InternalError`.
#[inline]
pub fn shield<T>(what: &str, body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => Err(internal_error(what, &*payload)),
    }
}

/// For the C callbacks: `Err` (with `InternalError` set as the current
/// Python exception) when `body` panicked.
#[inline]
pub fn catch<T>(py: Python<'_>, what: &str, body: impl FnOnce() -> T) -> Result<T, ()> {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => Ok(v),
        Err(payload) => {
            internal_error(what, &*payload).restore(py);
            Err(())
        }
    }
}
