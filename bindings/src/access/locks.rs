//! Real (not cooperative) locks that would block the thread holding the
//! turn.

use super::tables::{type_of, Tables};
use crate::codeinfo::{Op, OpKind};
use crate::frame::Frame;
use pyo3::ffi;

/// Whether `op` is about to acquire, and block on, a real (not cooperative)
/// lock: `lock.acquire()` with no arguments or `with lock:`, on a lock some
/// other thread holds. The thread would then wait while holding the turn,
/// and nothing could run to release the lock until `timeout_per_run`.
/// Returns the lock's type name. Acquires with a timeout or
/// `blocking=False` end by themselves and are left alone.
pub fn real_lock_would_block(tb: &Tables, frame: &Frame, op: Op) -> Option<&'static str> {
    let is_real = |o: *mut ffi::PyObject| {
        !o.is_null() && tb.real_lock != 0 && {
            let t = type_of(o);
            t == tb.real_lock || t == tb.real_rlock
        }
    };
    let lock = match op.kind {
        OpKind::Enter => frame.peek(0),
        OpKind::Call | OpKind::CallPlain => {
            // Only `acquire()` with no arguments blocks without end.
            if op.arg != 0 {
                return None;
            }
            let (callable, this) = if op.kind == OpKind::CallPlain {
                (frame.peek(0), std::ptr::null_mut())
            } else {
                // 3.10-3.12: [method, self] or [NULL, callable];
                // 3.13: [callable, self_or_NULL].
                let (lower, upper) = (frame.peek(1), frame.peek(0));
                if cfg!(Py_3_13) || !lower.is_null() {
                    (lower, upper)
                } else {
                    (upper, std::ptr::null_mut())
                }
            };
            if callable.is_null() {
                return None;
            }
            let t = type_of(callable);
            let this = if t == tb.cfunction {
                // A bound C method: `lock.acquire` taken as an attribute.
                unsafe { (*(callable as *mut ffi::PyCFunctionObject)).m_self }
            } else if t == tb.method_descriptor {
                this
            } else {
                return None;
            };
            if !is_real(this) || !callable_named(callable, b"acquire") {
                return None;
            }
            this
        }
        _ => return None,
    };
    if !is_real(lock) {
        return None;
    }
    let plain = type_of(lock) == tb.real_lock;
    let held_elsewhere = if plain {
        call_truth(lock, c"locked") == Some(true)
    } else {
        // No `RLock.locked()` before 3.14: try it. The caller holds the
        // turn, so no worker can run between the try and the release.
        call_truth(lock, c"_is_owned") == Some(false) && {
            let got = call_truth_arg_false(lock, c"acquire");
            if got == Some(true) {
                call_truth(lock, c"release");
            }
            got == Some(false)
        }
    };
    held_elsewhere.then_some(if plain {
        "threading.Lock"
    } else {
        "threading.RLock"
    })
}

fn callable_named(callable: *mut ffi::PyObject, name: &[u8]) -> bool {
    unsafe {
        let n = ffi::PyObject_GetAttrString(callable, c"__name__".as_ptr());
        if n.is_null() {
            ffi::PyErr_Clear();
            return false;
        }
        let mut size: ffi::Py_ssize_t = 0;
        let p = ffi::PyUnicode_AsUTF8AndSize(n, &mut size);
        let same =
            !p.is_null() && std::slice::from_raw_parts(p as *const u8, size as usize) == name;
        if p.is_null() {
            ffi::PyErr_Clear();
        }
        ffi::Py_DECREF(n);
        same
    }
}

/// `obj.method()` as a bool; None when the call failed (error cleared).
fn call_truth(obj: *mut ffi::PyObject, method: &std::ffi::CStr) -> Option<bool> {
    unsafe {
        let r = ffi::PyObject_CallMethod(obj, method.as_ptr(), std::ptr::null());
        truth_of(r)
    }
}

/// `obj.method(False)` as a bool.
fn call_truth_arg_false(obj: *mut ffi::PyObject, method: &std::ffi::CStr) -> Option<bool> {
    unsafe {
        let name = ffi::PyUnicode_FromString(method.as_ptr());
        if name.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let r = ffi::PyObject_CallMethodOneArg(obj, name, ffi::Py_False());
        ffi::Py_DECREF(name);
        truth_of(r)
    }
}

unsafe fn truth_of(r: *mut ffi::PyObject) -> Option<bool> {
    if r.is_null() {
        ffi::PyErr_Clear();
        return None;
    }
    let v = ffi::PyObject_IsTrue(r);
    ffi::Py_DECREF(r);
    if v < 0 {
        ffi::PyErr_Clear();
        return None;
    }
    Some(v == 1)
}
