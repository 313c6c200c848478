//! Direct reads of CPython's interpreter frames.
//!
//! The operands of the instruction about to run sit on the frame's value
//! stack. Reading them straight from there spares us a shadow stack and any
//! `f_locals` materialisation. The stack pointer itself is not always
//! published to tracers (3.12+ INSTRUCTION events leave it unset), so the
//! depth of each instruction is computed statically from the bytecode
//! (`frontrun/_opcodes.py`); where the interpreter does publish it (3.11
//! trace events), the two are compared and a mismatch counted.
//!
//! The layouts below mirror `Include/internal/pycore_frame.h` (3.11-3.13)
//! and `Include/cpython/frameobject.h` (3.10), checked against 3.10.13,
//! 3.11.7, 3.12.1 and 3.13.0. They are internal to CPython, so every build
//! is for one interpreter version.

use pyo3::ffi;
use std::os::raw::{c_char, c_int};

/// `struct _frame` (`PyFrameObject`), 3.10: there the frame object *is*
/// the interpreter frame. Only its head is needed.
#[cfg(not(Py_3_11))]
#[repr(C)]
struct InterpreterFrame {
    ob_base: ffi::PyVarObject,
    f_back: *mut InterpreterFrame,
    f_code: *mut ffi::PyObject,
    f_builtins: *mut ffi::PyObject,
    f_globals: *mut ffi::PyObject,
    f_locals: *mut ffi::PyObject,
    f_valuestack: *mut *mut ffi::PyObject,
    f_trace: *mut ffi::PyObject,
    /// `f_stackdepth`: the depth of the value stack when published.
    stacktop: c_int,
    f_trace_lines: c_char,
    f_trace_opcodes: c_char,
    f_gen: *mut ffi::PyObject,
    f_lasti: c_int,
}

/// `_PyInterpreterFrame`, 3.11.
#[cfg(all(Py_3_11, not(Py_3_12)))]
#[repr(C)]
struct InterpreterFrame {
    f_func: *mut ffi::PyObject,
    f_globals: *mut ffi::PyObject,
    f_builtins: *mut ffi::PyObject,
    f_locals: *mut ffi::PyObject,
    f_code: *mut ffi::PyObject,
    frame_obj: *mut ffi::PyObject,
    previous: *mut InterpreterFrame,
    prev_instr: *mut u16,
    stacktop: c_int,
    is_entry: bool,
    owner: c_char,
    localsplus: [*mut ffi::PyObject; 1],
}

/// `_PyInterpreterFrame`, 3.12 and 3.13 (3.13 renamed `f_code` to
/// `f_executable` and `prev_instr` to `instr_ptr`; the layout is the same).
#[cfg(Py_3_12)]
#[repr(C)]
struct InterpreterFrame {
    f_code: *mut ffi::PyObject,
    previous: *mut InterpreterFrame,
    f_funcobj: *mut ffi::PyObject,
    f_globals: *mut ffi::PyObject,
    f_builtins: *mut ffi::PyObject,
    f_locals: *mut ffi::PyObject,
    frame_obj: *mut ffi::PyObject,
    prev_instr: *mut u16,
    stacktop: c_int,
    return_offset: u16,
    owner: c_char,
    localsplus: [*mut ffi::PyObject; 1],
}

/// The head of `struct _frame` (`PyFrameObject`), identical in 3.11-3.13 up
/// to `f_trace_opcodes`.
#[cfg(Py_3_11)]
#[repr(C)]
struct FrameObject {
    ob_base: ffi::PyObject,
    f_back: *mut ffi::PyObject,
    f_frame: *mut InterpreterFrame,
    f_trace: *mut ffi::PyObject,
    f_lineno: c_int,
    f_trace_lines: c_char,
    f_trace_opcodes: c_char,
}

/// A suspended frame, seen just before one of its instructions runs.
#[derive(Clone, Copy)]
pub struct Frame {
    raw: *mut InterpreterFrame,
    /// Start of the fast locals (`localsplus`); null until `with_top` (3.10).
    base: *mut *mut ffi::PyObject,
    /// Stack top used by `peek`, as an index from `base`.
    top: c_int,
}

impl Frame {
    /// The interpreter frame behind a frame object.
    ///
    /// # Safety
    /// `frame` must be a live `PyFrameObject` whose frame is executing.
    pub unsafe fn from_frame_object(frame: *mut ffi::PyFrameObject) -> Option<Frame> {
        if frame.is_null() {
            return None;
        }
        #[cfg(Py_3_11)]
        let raw = (*(frame as *mut FrameObject)).f_frame;
        #[cfg(not(Py_3_11))]
        let raw = frame as *mut InterpreterFrame;
        (!raw.is_null()).then(|| Frame {
            raw,
            base: Self::localsplus(raw),
            top: (*raw).stacktop,
        })
    }

    /// The innermost frame of the calling thread (a borrowed view).
    ///
    /// # Safety
    /// The GIL must be held.
    #[cfg_attr(not(Py_3_12), allow(dead_code))]
    pub unsafe fn current() -> Option<Frame> {
        Self::from_frame_object(ffi::PyEval_GetFrame())
    }

    /// The code object (3.13: the executable) of this frame.
    pub fn code(&self) -> *mut ffi::PyObject {
        unsafe { (*self.raw).f_code }
    }

    pub fn globals(&self) -> *mut ffi::PyObject {
        unsafe { (*self.raw).f_globals }
    }

    pub fn builtins(&self) -> *mut ffi::PyObject {
        unsafe { (*self.raw).f_builtins }
    }

    /// The calling Python frame. 3.12+ puts a shim frame owned by the C
    /// stack (`FRAME_OWNED_BY_CSTACK`) where the interpreter was entered
    /// from C (a slot such as `__getitem__` called by `BINARY_SUBSCR`); it
    /// is skipped, so the caller is the Python frame that made the call.
    pub fn previous(&self) -> Option<Frame> {
        #[cfg(Py_3_11)]
        #[cfg_attr(not(Py_3_12), allow(unused_mut))]
        let mut prev = unsafe { (*self.raw).previous };
        #[cfg(Py_3_12)]
        unsafe {
            const FRAME_OWNED_BY_CSTACK: c_char = 3;
            while !prev.is_null() && (*prev).owner == FRAME_OWNED_BY_CSTACK {
                prev = (*prev).previous;
            }
        }
        #[cfg(not(Py_3_11))]
        let prev = unsafe { (*self.raw).f_back };
        (!prev.is_null()).then(|| Frame {
            raw: prev,
            base: Self::localsplus(prev),
            top: -1,
        })
    }

    /// The stack pointer the interpreter published (an index into
    /// `localsplus`), or -1. 3.11 publishes it for trace events; 3.12 does
    /// not for INSTRUCTION events, hence `with_top`.
    #[cfg_attr(Py_3_12, allow(dead_code))]
    pub fn published_top(&self) -> c_int {
        unsafe { (*self.raw).stacktop }
    }

    #[cfg(Py_3_11)]
    fn localsplus(raw: *mut InterpreterFrame) -> *mut *mut ffi::PyObject {
        unsafe { std::ptr::addr_of_mut!((*raw).localsplus) as *mut *mut ffi::PyObject }
    }

    /// 3.10 only locates the fast locals once their count is known.
    #[cfg(not(Py_3_11))]
    fn localsplus(_raw: *mut InterpreterFrame) -> *mut *mut ffi::PyObject {
        std::ptr::null_mut()
    }

    /// This frame with its stack top set from the statically known depth of
    /// the instruction about to run: `nlocalsplus` fast-local slots, then
    /// `depth` values.
    pub fn with_top(self, nlocalsplus: usize, depth: usize) -> Frame {
        #[cfg(Py_3_11)]
        let base = self.base;
        #[cfg(not(Py_3_11))]
        let base = unsafe {
            let vs = (*self.raw).f_valuestack;
            if vs.is_null() {
                std::ptr::null_mut()
            } else {
                vs.sub(nlocalsplus)
            }
        };
        Frame {
            raw: self.raw,
            base,
            top: (nlocalsplus + depth) as c_int,
        }
    }

    /// Offset of the instruction about to run (3.10 trace events).
    #[cfg(not(Py_3_11))]
    pub fn lasti_offset(&self) -> usize {
        unsafe { (*self.raw).f_lasti.max(0) as usize * 2 }
    }

    fn stacktop(&self) -> c_int {
        self.top
    }

    /// The `n`-th value from the top of the value stack (0 = top), or null
    /// when the stack pointer is not published or the slot does not exist.
    pub fn peek(&self, n: usize) -> *mut ffi::PyObject {
        let top = self.stacktop();
        if top <= n as c_int || self.base.is_null() {
            return std::ptr::null_mut();
        }
        unsafe { *self.base.add((top as usize) - 1 - n) }
    }

    /// Slot `index` of the fast locals (locals, then cells, then free vars).
    pub fn fast_local(&self, index: usize) -> *mut ffi::PyObject {
        let top = self.stacktop();
        if top <= index as c_int || self.base.is_null() {
            return std::ptr::null_mut();
        }
        unsafe { *self.base.add(index) }
    }
}

/// Switches line events back on in `frame` (a debugger, set behind
/// frontrun's trace function while the frame runs, steps by them).
///
/// # Safety
/// `frame` must be a live `PyFrameObject`.
#[cfg(not(Py_3_12))]
pub unsafe fn enable_line_events(frame: *mut ffi::PyFrameObject) {
    #[cfg(Py_3_11)]
    let f = frame as *mut FrameObject;
    #[cfg(not(Py_3_11))]
    let f = frame as *mut InterpreterFrame;
    (*f).f_trace_lines = 1;
}

/// Asks the interpreter for opcode events in `frame` (3.11 trace backend)
/// and, with `silence_lines`, stops its line events (kept when another
/// tracer, coverage's, runs behind frontrun's and needs them).
///
/// # Safety
/// `frame` must be a live `PyFrameObject`.
#[cfg(not(Py_3_12))]
pub unsafe fn enable_opcode_events(frame: *mut ffi::PyFrameObject, on: bool, silence_lines: bool) {
    #[cfg(Py_3_11)]
    let f = frame as *mut FrameObject;
    #[cfg(not(Py_3_11))]
    let f = frame as *mut InterpreterFrame;
    (*f).f_trace_opcodes = on as c_char;
    if silence_lines {
        (*f).f_trace_lines = 0;
    }
}
