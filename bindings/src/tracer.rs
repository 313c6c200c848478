//! The two tracing backends. Both end in `session::on_instruction`.
//!
//! - 3.10/3.11: a C trace function installed per worker thread with
//!   `PyEval_SetTrace`; opcode events are switched on only in frames of
//!   traced code (`f_trace_opcodes`), line events are switched off.
//! - 3.12+: a C function registered with `sys.monitoring` for INSTRUCTION
//!   events. Instructions of untraced code answer `DISABLE`, so the
//!   interpreter stops reporting them.

use crate::frame::Frame;
use crate::session::{self, Flow};
use pyo3::ffi;
use pyo3::prelude::*;

#[cfg(Py_3_12)]
mod monitoring {
    use super::*;
    use std::sync::atomic::{AtomicPtr, Ordering};

    /// `sys.monitoring.DISABLE`, set by `init`.
    pub static DISABLE: AtomicPtr<ffi::PyObject> = AtomicPtr::new(std::ptr::null_mut());

    unsafe extern "C" fn instruction(
        _slf: *mut ffi::PyObject,
        args: *mut *mut ffi::PyObject,
        nargs: ffi::Py_ssize_t,
    ) -> *mut ffi::PyObject {
        let ret_none = || {
            let none = ffi::Py_None();
            ffi::Py_INCREF(none);
            none
        };
        if nargs < 2 {
            return ret_none();
        }
        let code = *args;
        let offset = ffi::PyLong_AsSsize_t(*args.add(1));
        if offset < 0 {
            ffi::PyErr_Clear();
            return ret_none();
        }
        let py = Python::assume_attached();
        let flow = crate::boundary::catch(py, "the instruction callback", || {
            session::on_instruction(py, code, offset as usize, || Frame::current())
        });
        match flow.unwrap_or(Flow::Raise) {
            Flow::Continue => ret_none(),
            Flow::Untraced => {
                let d = DISABLE.load(Ordering::Relaxed);
                if d.is_null() {
                    return ret_none();
                }
                ffi::Py_INCREF(d);
                d
            }
            Flow::Raise => std::ptr::null_mut(),
        }
    }

    pub static mut INSTRUCTION_DEF: ffi::PyMethodDef = ffi::PyMethodDef {
        ml_name: c"frontrun_instruction".as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunctionFast: instruction,
        },
        ml_flags: ffi::METH_FASTCALL,
        ml_doc: c"sys.monitoring INSTRUCTION callback of frontrun".as_ptr(),
    };
}

/// The callable to register for `sys.monitoring` INSTRUCTION events, or
/// None on interpreters that use the trace-function backend.
pub fn instruction_callback(py: Python<'_>) -> PyResult<Py<PyAny>> {
    #[cfg(Py_3_12)]
    {
        let sysmon = py.import("sys")?.getattr("monitoring")?;
        let disable = sysmon.getattr("DISABLE")?;
        let d = disable.into_ptr();
        let old = monitoring::DISABLE.swap(d, std::sync::atomic::Ordering::Relaxed);
        if !old.is_null() {
            unsafe { ffi::Py_DECREF(old) };
        }
        let f = unsafe {
            ffi::PyCFunction_NewEx(
                std::ptr::addr_of_mut!(monitoring::INSTRUCTION_DEF),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        unsafe { Bound::from_owned_ptr_or_err(py, f) }.map(|b| b.unbind())
    }
    #[cfg(not(Py_3_12))]
    {
        Ok(py.None())
    }
}

/// The trace function a worker thread had before frontrun's (coverage's,
/// which `threading.settrace` gives every new thread): frontrun's passes
/// it every event but its own opcode events, and puts it back when the
/// worker leaves.
#[cfg(not(Py_3_12))]
mod chain {
    use pyo3::ffi;
    use std::cell::Cell;
    use std::os::raw::{c_int, c_void};

    /// The start of `PyThreadState` up to the trace function
    /// (Include/cpython/pystate.h), which has no getter in the C API.
    #[cfg(not(Py_3_11))]
    #[repr(C)]
    struct ThreadStateHead {
        prev: *mut c_void,
        next: *mut c_void,
        interp: *mut c_void,
        frame: *mut c_void,
        recursion_depth: c_int,
        recursion_headroom: c_int,
        stackcheck_counter: c_int,
        tracing: c_int,
        cframe: *mut c_void,
        c_profilefunc: Option<ffi::Py_tracefunc>,
        c_tracefunc: Option<ffi::Py_tracefunc>,
        c_profileobj: *mut ffi::PyObject,
        c_traceobj: *mut ffi::PyObject,
    }

    #[cfg(Py_3_11)]
    #[repr(C)]
    struct ThreadStateHead {
        prev: *mut c_void,
        next: *mut c_void,
        interp: *mut c_void,
        _initialized: c_int,
        _static: c_int,
        recursion_remaining: c_int,
        recursion_limit: c_int,
        recursion_headroom: c_int,
        tracing: c_int,
        tracing_what: c_int,
        cframe: *mut c_void,
        c_profilefunc: Option<ffi::Py_tracefunc>,
        c_tracefunc: Option<ffi::Py_tracefunc>,
        c_profileobj: *mut ffi::PyObject,
        c_traceobj: *mut ffi::PyObject,
    }

    pub type Tracer = (Option<ffi::Py_tracefunc>, *mut ffi::PyObject);

    thread_local! {
        /// The tracer to pass events on to, with a reference to its object.
        pub static BEHIND: Cell<Tracer> = const { Cell::new((None, std::ptr::null_mut())) };
    }

    /// The calling thread's trace function and its object (borrowed).
    ///
    /// # Safety
    /// The caller holds the GIL.
    pub unsafe fn current() -> Tracer {
        let ts = ffi::PyThreadState_Get() as *const ThreadStateHead;
        ((*ts).c_tracefunc, (*ts).c_traceobj)
    }

    /// Byte offset of the trace function in `PyThreadState`, compared with
    /// the C headers' by a test.
    pub fn tracefunc_offset() -> usize {
        std::mem::offset_of!(ThreadStateHead, c_tracefunc)
    }
}

/// Offset of `c_tracefunc` in `PyThreadState` as this build reads it
/// (None where the monitoring backend does not read it).
pub fn tracefunc_offset() -> Option<usize> {
    #[cfg(not(Py_3_12))]
    {
        Some(chain::tracefunc_offset())
    }
    #[cfg(Py_3_12)]
    {
        None
    }
}

/// frontrun's trace function, as installed and as compared.
#[cfg(not(Py_3_12))]
const OURS: ffi::Py_tracefunc = trace;

#[cfg(not(Py_3_12))]
fn is_ours(f: Option<ffi::Py_tracefunc>) -> bool {
    f.is_some_and(|f| std::ptr::fn_addr_eq(f, OURS))
}

#[cfg(not(Py_3_12))]
unsafe extern "C" fn trace(
    _obj: *mut ffi::PyObject,
    frame: *mut ffi::PyFrameObject,
    what: std::os::raw::c_int,
    arg: *mut ffi::PyObject,
) -> std::os::raw::c_int {
    let py = Python::assume_attached();
    let ours = crate::boundary::catch(py, "the trace function", || trace_event(py, frame, what))
        .unwrap_or(-1);
    if ours != 0 || what == ffi::PyTrace_OPCODE {
        return ours;
    }
    match chain::BEHIND.with(|b| b.get()) {
        (Some(behind), obj) => behind(obj, frame, what, arg),
        _ => 0,
    }
}

#[cfg(not(Py_3_12))]
unsafe fn trace_event(
    py: Python<'_>,
    frame: *mut ffi::PyFrameObject,
    what: std::os::raw::c_int,
) -> std::os::raw::c_int {
    let Some(f) = Frame::from_frame_object(frame) else {
        return 0;
    };
    match what {
        ffi::PyTrace_CALL => {
            let traced = session::frame_is_traced(py, f.code(), &f).unwrap_or(false);
            let alone = chain::BEHIND.with(|b| b.get().0.is_none());
            crate::frame::enable_opcode_events(frame, traced, alone);
            0
        }
        ffi::PyTrace_OPCODE => {
            #[cfg(Py_3_11)]
            let offset = ffi::PyFrame_GetLasti(frame);
            #[cfg(not(Py_3_11))]
            let offset = f.lasti_offset() as std::os::raw::c_int;
            if offset < 0 {
                return 0;
            }
            match session::on_instruction(py, f.code(), offset as usize, || Some(f)) {
                Flow::Raise => -1,
                _ => 0,
            }
        }
        _ => 0,
    }
}

thread_local! {
    /// Whether the calling thread runs a worker of an exploration now.
    static WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Whether a debugger's trace function is set in this worker.
    static DEBUGGING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Workers that have a debugger's trace function set, in the process.
static DEBUGGERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether a debugger is active in some worker: the executions' clocks
/// (`timeout_per_run`, `deadlock_timeout`) stand still meanwhile, so that
/// time spent at its prompt expires nothing.
pub fn debugger_active() -> bool {
    DEBUGGERS.load(std::sync::atomic::Ordering::Relaxed) > 0
}

fn set_debugging(on: bool) {
    use std::sync::atomic::Ordering::Relaxed;
    if DEBUGGING.with(|d| d.replace(on)) != on {
        if on {
            DEBUGGERS.fetch_add(1, Relaxed);
        } else {
            DEBUGGERS.fetch_sub(1, Relaxed);
        }
    }
}

/// Called after `sys.settrace` ran (frontrun puts a wrapper in `sys` during
/// explorations). In a worker on 3.10/3.11 the new trace function went in
/// frontrun's place: frontrun's goes back in front and passes the new one
/// every event but its own opcode events, and the frames already running
/// get their line events back (a debugger steps by them). `debugger` says
/// whether the new function is a debugger's.
pub fn trace_function_set(debugger: bool) {
    if !WORKER.with(|w| w.get()) {
        return;
    }
    #[cfg(not(Py_3_12))]
    unsafe {
        chain_in_front();
        let mut frame = ffi::PyEval_GetFrame();
        if !frame.is_null() {
            ffi::Py_INCREF(frame.cast());
        }
        while !frame.is_null() {
            crate::frame::enable_line_events(frame);
            let back = ffi::PyFrame_GetBack(frame);
            ffi::Py_DECREF(frame.cast());
            frame = back;
        }
    }
    set_debugging(debugger);
}

/// Starts tracing the calling thread (3.10/3.11; monitoring is
/// process-wide), in front of the trace function the thread had.
pub fn install_for_thread() {
    WORKER.with(|w| w.set(true));
    #[cfg(not(Py_3_12))]
    unsafe {
        chain_in_front();
    }
}

/// Installs frontrun's trace function with the thread's current one behind
/// it (unless the current one is frontrun's).
///
/// # Safety
/// The caller holds the GIL.
#[cfg(not(Py_3_12))]
unsafe fn chain_in_front() {
    let (func, obj) = chain::current();
    if !is_ours(func) {
        if !obj.is_null() {
            ffi::Py_INCREF(obj);
        }
        let (_, old) = chain::BEHIND.with(|b| b.replace((func, obj)));
        if !old.is_null() {
            ffi::Py_DECREF(old);
        }
    }
    ffi::PyEval_SetTrace(Some(OURS), std::ptr::null_mut());
}

/// Stops tracing the calling thread and gives it back the trace function
/// it had before (if it still has frontrun's: one a debugger installed
/// meanwhile stays). Returns false when frontrun's trace function had been
/// replaced during the execution, so part of it went unseen.
pub fn uninstall_for_thread() -> bool {
    WORKER.with(|w| w.set(false));
    set_debugging(false);
    #[cfg(not(Py_3_12))]
    unsafe {
        let still_ours = is_ours(chain::current().0);
        let (func, obj) = chain::BEHIND.with(|b| b.replace((None, std::ptr::null_mut())));
        if still_ours {
            ffi::PyEval_SetTrace(func, obj);
        }
        if !obj.is_null() {
            ffi::Py_DECREF(obj);
        }
        still_ours
    }
    #[cfg(Py_3_12)]
    {
        true
    }
}

/// Name of the backend compiled in.
pub const BACKEND: &str = if cfg!(Py_3_12) {
    "sys.monitoring"
} else {
    "settrace"
};
