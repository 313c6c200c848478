//! `frontrun._engine`: the native half of the Python package.
//!
//! The per-instruction hot path lives here: the tracing backends
//! (`tracer`), reading operands off the frame (`frame`), turning an
//! instruction into accesses (`access`, `codeinfo`), keying objects
//! (`keys`) and the turn-taking between worker threads (`session`, which
//! drives the engine's explorer in the way `mode` says). `native` reads the
//! preload library's ring; `api` holds the Python faces (the `Session`
//! class and the module's functions), and `error` the one conversion of a
//! session's errors into Python exceptions. The Python package
//! (`frontrun.dpor`) sets an exploration up and formats its results; it is
//! not called per instruction.

mod access;
mod api;
mod boundary;
mod codeinfo;
mod error;
mod frame;
mod got_hooks;
mod io_names;
mod keys;
mod mode;
mod native;
mod session;
mod tracer;

use pyo3::prelude::*;

/// The native module. Its Python face is described in `_engine.pyi`.
#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    api::register(m)
}
