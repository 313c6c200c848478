//! The Python faces of the native module: the `#[pyclass]` `Session`
//! (`session_class.rs`), the records it returns (`results.rs`), the
//! cooperative primitives' calls (`coop.rs`) and the module's functions
//! (here). Each converts its arguments, calls into the
//! crate under `shield`, and turns a `SessionError` into a Python
//! exception through the one conversion in `error.rs`.

mod coop;
mod results;
mod session_class;
mod tasks;

use crate::boundary::{self, shield};
use crate::{access, error, got_hooks, io_names, native, session, tracer};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Captures the type objects and builtins the access classifier recognises
/// by identity. `spec` maps names to objects; see `frontrun/_tables.py`.
#[pyfunction]
fn init_tables(spec: &Bound<'_, PyDict>) -> PyResult<()> {
    shield("init_tables", || {
        let get = |name: &str| -> PyResult<usize> {
            spec.get_item(name)?
                .map(|o| o.as_ptr() as usize)
                .ok_or_else(|| PyValueError::new_err(format!("init_tables: missing {name}")))
        };
        let list_of = |name: &str| -> PyResult<Vec<usize>> {
            let v = spec
                .get_item(name)?
                .ok_or_else(|| PyValueError::new_err(format!("init_tables: missing {name}")))?;
            Ok(v.cast_into::<PyList>()?
                .iter()
                .map(|o| o.as_ptr() as usize)
                .collect())
        };
        let mut builtins = Vec::new();
        if let Some(b) = spec.get_item("builtins")? {
            for item in b.cast_into::<PyList>()?.iter() {
                let (obj, kind): (Bound<'_, PyAny>, String) = item.extract()?;
                let b = access::Builtin::from_name(&kind).ok_or_else(|| {
                    PyValueError::new_err(format!("init_tables: unknown builtin kind {kind}"))
                })?;
                builtins.push((obj.as_ptr() as usize, b));
            }
        }
        let object_hash = unsafe {
            (*std::ptr::addr_of_mut!(pyo3::ffi::PyBaseObject_Type))
                .tp_hash
                .map(|f| f as usize)
                .unwrap_or(0)
        };
        let tables = access::Tables {
            list: get("list")?,
            dict: get("dict")?,
            set: get("set")?,
            bytearray: get("bytearray")?,
            deque: get("deque")?,
            defaultdict: get("defaultdict")?,
            real_lock: get("real_lock")?,
            real_rlock: get("real_rlock")?,
            immutable: list_of("immutable")?,
            module: get("module")?,
            type_type: get("type")?,
            function: get("function")?,
            method: get("method")?,
            cfunction: get("builtin_function_or_method")?,
            method_descriptor: get("method_descriptor")?,
            wrapper_descriptor: get("wrapper_descriptor")?,
            method_wrapper: get("method_wrapper")?,
            cell: get("cell")?,
            list_iter: get("list_iterator")?,
            list_reviter: get("list_reverseiterator")?,
            enumerate: get("enumerate")?,
            dict_keys: get("dict_keys")?,
            dict_values: get("dict_values")?,
            dict_items: get("dict_items")?,
            dict_iters: list_of("dict_iterators")?,
            set_iter: get("set_iterator")?,
            object_hash,
            builtins,
        };
        // The objects named here are builtins that live as long as the
        // interpreter; a second call (same objects) is harmless.
        let _ = access::TABLES.set(tables);
        Ok(())
    })
}

/// A schedule as one line of text (`v1:0,0,1`), for printing and pasting.
#[pyfunction]
fn format_schedule(schedule: Vec<usize>) -> PyResult<String> {
    shield("format_schedule", || {
        Ok(frontrun_engine::format_schedule(&schedule))
    })
}

/// Reads a schedule printed by `format_schedule`.
#[pyfunction]
fn parse_schedule(text: &str) -> PyResult<Vec<usize>> {
    shield("parse_schedule", || {
        frontrun_engine::parse_schedule(text).map_err(|e| PyValueError::new_err(e.to_string()))
    })
}

/// The callable frontrun registers for `sys.monitoring` INSTRUCTION events
/// (3.12+), or None where the settrace backend is used.
#[pyfunction]
fn instruction_callback(py: Python<'_>) -> PyResult<Py<PyAny>> {
    shield("instruction_callback", || tracer::instruction_callback(py))
}

/// Called by frontrun's `sys.settrace` wrapper after the real one ran:
/// in a worker, frontrun's trace function goes back in front of the new
/// one, and `debugger` (a `bdb.Bdb` method was set, or None when unset)
/// stops the executions' clocks while it is active.
#[pyfunction]
fn trace_function_set(debugger: bool) -> PyResult<()> {
    shield("trace_function_set", || {
        tracer::trace_function_set(debugger);
        Ok(())
    })
}

/// Whether a debugger is active in some worker (the clocks stand still).
#[pyfunction]
fn debugger_active() -> bool {
    tracer::debugger_active()
}

/// How often the static stack depth disagreed with the interpreter's own
/// (3.11 only; always 0 on 3.12+, where the interpreter publishes none).
#[pyfunction]
fn depth_mismatches() -> PyResult<u64> {
    shield("depth_mismatches", || {
        Ok(session::DEPTH_MISMATCHES.load(std::sync::atomic::Ordering::Relaxed))
    })
}

/// Byte offset of `c_tracefunc` in `PyThreadState` as this build reads it
/// to put a worker's earlier trace function (coverage's) behind frontrun's
/// (3.10/3.11; None on 3.12+). Checked against the C headers by a test.
#[pyfunction]
fn tracefunc_offset() -> Option<usize> {
    tracer::tracefunc_offset()
}

/// 0 when the calling thread is not a worker of a running exploration, 1
/// when it is, 2 when it is and the exploration reads the preload
/// library's events.
#[pyfunction]
fn io_worker() -> PyResult<u8> {
    shield("io_worker", || Ok(session::worker_kind()))
}

/// The calling worker is about to perform I/O on `resources`, a list of
/// `(name, is_write)` with names such as `b"file:/tmp/x"`: takes a step
/// for it, or with `own_step=False` adds the accesses to the step under
/// way (see `session::io_step`). `frame` is where the I/O wrapper was
/// called; a new step is recorded at its innermost traced caller. Returns
/// False, doing nothing, in a thread that is not a worker.
#[pyfunction]
#[pyo3(signature = (resources, frame=None, own_step=true))]
fn io_step(
    py: Python<'_>,
    resources: Vec<(Vec<u8>, bool)>,
    frame: Option<Bound<'_, PyAny>>,
    own_step: bool,
) -> PyResult<bool> {
    shield("io_step", || {
        Ok(session::io_step(py, &resources, frame.as_ref(), own_step)?)
    })
}

/// Starts (`on=True`) or ends a request/answer exchange of the calling
/// worker with a server: meanwhile it keeps the turn (see
/// `session::io_hold`). Does nothing in a thread that is not a worker.
#[pyfunction]
fn io_hold(on: bool) -> PyResult<()> {
    shield("io_hold", || {
        session::io_hold(on);
        Ok(())
    })
}

/// The engine key of a resource name (as the preload library computes it).
#[pyfunction]
fn resource_key(name: Vec<u8>) -> PyResult<u64> {
    shield("resource_key", || Ok(frontrun_ring::resource_key(&name)))
}

/// `socket:<ip>:<port>` / `socket:[<ipv6>]:<port>` for a numeric host, as
/// the preload library names a socket's peer; None for a non-numeric host.
#[pyfunction]
fn inet_socket_name(host: &str, port: u16) -> PyResult<Option<String>> {
    shield("inet_socket_name", || {
        Ok(io_names::inet_socket_name(host, port))
    })
}

/// Called in the child of a `fork` (an `os.register_at_fork` handler): the
/// calling thread leaves the scheduler and the child forgets the parent's
/// ring consumer, so the child runs freely (see `session` and `native`).
#[pyfunction]
fn detach_after_fork() -> PyResult<()> {
    shield("detach_after_fork", || {
        session::forget_worker_after_fork();
        tracer::uninstall_for_thread();
        native::forget_after_fork();
        Ok(())
    })
}

/// Panics with `message`, under the same shield as every other entry
/// point: the test of that shield (a panic must arrive as `InternalError`).
#[pyfunction]
fn _selftest_panic(message: &str) -> PyResult<()> {
    shield("_selftest_panic", || panic!("{message}"))
}

/// Load `library` (libfrontrun_io.so) and redirect the loaded objects'
/// imports of its hooked functions to it (see `got_hooks`). Returns
/// the objects and slots patched so far; raises OSError when it cannot.
#[pyfunction]
fn install_runtime_hooks(library: &str) -> PyResult<results::RuntimeHooks> {
    got_hooks::install(library)
        .map(|done| results::RuntimeHooks {
            objects: done.objects,
            slots: done.slots,
        })
        .map_err(pyo3::exceptions::PyOSError::new_err)
}

/// GOT slots redirected by `install_runtime_hooks` so far (0: never installed).
#[pyfunction]
fn runtime_hook_slots() -> usize {
    got_hooks::slots_patched()
}

/// Adds the module's classes, functions and constants.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("BACKEND", tracer::BACKEND)?;
    let opkinds = pyo3::types::PyDict::new(m.py());
    for (name, kind) in crate::codeinfo::OpKind::NAMED {
        opkinds.set_item(name, kind as u8)?;
    }
    m.add("OPKINDS", opkinds)?;
    m.add(
        "ExecutionAborted",
        m.py().get_type::<error::ExecutionAborted>(),
    )?;
    m.add(
        "InternalError",
        m.py().get_type::<boundary::InternalError>(),
    )?;
    boundary::install_hook();
    m.add_class::<session_class::Session>()?;
    tasks::register(m)?;
    results::register(m)?;
    m.add_function(wrap_pyfunction!(init_tables, m)?)?;
    m.add_function(wrap_pyfunction!(install_runtime_hooks, m)?)?;
    m.add_function(wrap_pyfunction!(runtime_hook_slots, m)?)?;
    m.add_function(wrap_pyfunction!(instruction_callback, m)?)?;
    m.add_function(wrap_pyfunction!(depth_mismatches, m)?)?;
    m.add_function(wrap_pyfunction!(trace_function_set, m)?)?;
    m.add_function(wrap_pyfunction!(debugger_active, m)?)?;
    m.add_function(wrap_pyfunction!(tracefunc_offset, m)?)?;
    m.add_function(wrap_pyfunction!(format_schedule, m)?)?;
    m.add_function(wrap_pyfunction!(parse_schedule, m)?)?;
    m.add_function(wrap_pyfunction!(io_worker, m)?)?;
    m.add_function(wrap_pyfunction!(io_step, m)?)?;
    m.add_function(wrap_pyfunction!(io_hold, m)?)?;
    m.add_function(wrap_pyfunction!(resource_key, m)?)?;
    m.add_function(wrap_pyfunction!(inet_socket_name, m)?)?;
    m.add_function(wrap_pyfunction!(_selftest_panic, m)?)?;
    m.add_function(wrap_pyfunction!(detach_after_fork, m)?)?;
    coop::register(m)?;
    Ok(())
}
