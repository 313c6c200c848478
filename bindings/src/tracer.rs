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

#[cfg(not(Py_3_12))]
unsafe extern "C" fn trace(
    _obj: *mut ffi::PyObject,
    frame: *mut ffi::PyFrameObject,
    what: std::os::raw::c_int,
    _arg: *mut ffi::PyObject,
) -> std::os::raw::c_int {
    let py = Python::assume_attached();
    crate::boundary::catch(py, "the trace function", || trace_event(py, frame, what)).unwrap_or(-1)
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
            crate::frame::enable_opcode_events(frame, traced);
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

/// Starts tracing the calling thread (3.11; monitoring is process-wide).
pub fn install_for_thread() {
    #[cfg(not(Py_3_12))]
    unsafe {
        ffi::PyEval_SetTrace(Some(trace), std::ptr::null_mut());
    }
}

pub fn uninstall_for_thread() {
    #[cfg(not(Py_3_12))]
    unsafe {
        ffi::PyEval_SetTrace(None, std::ptr::null_mut());
    }
}

/// Name of the backend compiled in.
pub const BACKEND: &str = if cfg!(Py_3_12) {
    "sys.monitoring"
} else {
    "settrace"
};
