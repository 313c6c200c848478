//! The per-instruction path: the tracer's callback for one instruction of
//! a worker, from the code's classification to the accesses reported in the
//! worker's step. This is the hot path: an instruction that touches nothing
//! shared returns before any lock is taken.

use super::io::join_step_record;
use super::turns::Shared;
use super::turns::{acquire_turn, kind, Standing};
use super::worker::WORKER;
use crate::access::{self, type_of, RawAccess, Seed, Slot, Tables, TABLES};
use crate::codeinfo::{CodeInfo, Op};
use crate::error::ExecutionAborted;
use crate::frame::Frame;
use crate::keys::{KeyTable, SlotDesc};
use frontrun_engine::ThreadId;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::ffi::CStr;
use std::sync::Arc;

/// Instructions where the statically computed stack depth disagreed with
/// the one the interpreter published (3.11 only; a test checks it stays 0).
pub static DEPTH_MISMATCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Outcome of the tracer's look at one instruction.
pub enum Flow {
    /// Not a worker thread, or untraced code: nothing to do, ever, here.
    Untraced,
    Continue,
    /// The execution was abandoned; an exception is set.
    Raise,
}

fn set_aborted(py: Python<'_>, why: &str) -> Flow {
    ExecutionAborted::new_err(why.to_string()).restore(py);
    Flow::Raise
}

/// Builds (once) the code info for `code` seen in `frame`.
fn code_info(
    py: Python<'_>,
    shared: &Shared,
    code: *mut ffi::PyObject,
    frame: Option<&Frame>,
) -> Arc<CodeInfo> {
    if let Some(info) = shared.codes.get(code) {
        return info;
    }
    let globals = frame.map(|f| f.globals()).unwrap_or(std::ptr::null_mut());
    let caller_traced = frame
        .and_then(|f| f.previous())
        .and_then(|p| shared.codes.get(p.code()))
        .map(|i| i.traced)
        .unwrap_or(false);
    code_info_in(py, shared, code, globals, caller_traced)
}

/// Whether the code of a function about to be called from traced code is
/// traced: what `code_info` will say when the call enters it (the frame's
/// globals are the function's, its caller is traced).
pub(crate) fn function_traced(
    py: Python<'_>,
    shared: &Shared,
    code: *mut ffi::PyObject,
    globals: *mut ffi::PyObject,
) -> bool {
    if let Some(info) = shared.codes.get(code) {
        return info.traced;
    }
    code_info_in(py, shared, code, globals, true).traced
}

fn code_info_in(
    py: Python<'_>,
    shared: &Shared,
    code: *mut ffi::PyObject,
    globals: *mut ffi::PyObject,
    caller_traced: bool,
) -> Arc<CodeInfo> {
    let code_b = unsafe { Bound::from_borrowed_ptr(py, code) };
    let module = Some(globals)
        .filter(|g| !g.is_null())
        .and_then(|g| {
            unsafe { Bound::from_borrowed_ptr(py, g) }
                .get_item("__name__")
                .ok()
        })
        .map(|m| m.unbind())
        .unwrap_or_else(|| py.None());
    let decided = shared
        .decide
        .call1(py, (code_b.clone(), module, caller_traced))
        .and_then(|r| r.is_truthy(py));
    let classified = match decided {
        Ok(true) => shared
            .classify
            .call1(py, (code_b.clone(),))
            .and_then(|out| {
                let (nlocalsplus, rows): (u32, Bound<'_, PyList>) = out.extract(py)?;
                CodeInfo::traced(code_b.clone(), nlocalsplus, &rows)
            }),
        Ok(false) => Ok(CodeInfo::untraced(code_b.clone().unbind())),
        Err(e) => Err(e),
    };
    let info = match classified {
        Ok(info) => info,
        Err(e) => {
            filter_failed(shared, &code_b, e);
            CodeInfo::untraced(code_b.unbind())
        }
    };
    let info = Arc::new(info);
    shared.codes.insert(code, info.clone());
    info
}

/// Keeps the first error of the trace filter and abandons the execution;
/// `Session.end` raises the error.
fn filter_failed(shared: &Shared, code: &Bound<'_, PyAny>, err: PyErr) {
    let why = format!("deciding whether to trace {code} raised {err}");
    {
        let mut slot = shared
            .filter_error
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(err);
        }
    }
    shared.abort(why);
}

/// Whether `code` is traced for the calling worker thread (3.11 call events).
#[cfg(not(Py_3_12))]
pub fn frame_is_traced(py: Python<'_>, code: *mut ffi::PyObject, frame: &Frame) -> Option<bool> {
    WORKER.with(|w| {
        let w = w.try_borrow().ok()?;
        let w = w.as_ref()?;
        Some(code_info(py, &w.shared, code, Some(frame)).traced)
    })
}

/// The tracer's entry point for one instruction about to run.
pub fn on_instruction(
    py: Python<'_>,
    code: *mut ffi::PyObject,
    offset: usize,
    frame: impl Fn() -> Option<Frame>,
) -> Flow {
    WORKER.with(|cell| {
        let Ok(mut guard) = cell.try_borrow_mut() else {
            return Flow::Continue;
        };
        let Some(w) = guard.as_mut() else {
            return Flow::Continue;
        };
        let info = if w.last_code == code as usize {
            w.last_info.clone()
        } else {
            None
        };
        let info = match info {
            Some(i) => i,
            None => {
                let Some(frame) = frame().filter(|f| f.code() == code) else {
                    return Flow::Continue;
                };
                let i = code_info(py, &w.shared, code, Some(&frame));
                w.last_code = code as usize;
                w.last_info = Some(i.clone());
                i
            }
        };
        if !info.traced {
            return Flow::Untraced;
        }
        let op = info.op_at(offset);
        if op.kind == crate::codeinfo::OpKind::None {
            return Flow::Continue;
        }
        let Some(frame) = frame().filter(|f| f.code() == code) else {
            return Flow::Continue;
        };
        let frame = frame.with_top(info.nlocalsplus as usize, op.depth as usize);
        // 3.10 publishes the depth alone, 3.11 the index above the locals.
        #[cfg(not(Py_3_12))]
        {
            let published = frame.published_top();
            let expected = if cfg!(Py_3_11) {
                info.nlocalsplus + op.depth
            } else {
                op.depth
            };
            if published >= 0 && published as u32 != expected {
                DEPTH_MISMATCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let Some(tb) = TABLES.get() else {
            return Flow::Continue;
        };
        if let Some(kind) = access::real_lock_would_block(tb, &frame, op) {
            let why = format!(
                "thread {} would block on a {kind} that is not cooperative and that another thread holds, at {}; \
                 frontrun cannot schedule around a lock created before it patched threading",
                w.tid,
                code_line(code, offset)
            );
            let shared = w.shared.clone();
            let mut st = shared.lock();
            if st.standing(w.generation).is_ok() {
                st.abort(why.clone());
                shared.wake(&st);
            }
            return set_aborted(py, &why);
        }
        w.buf.clear();
        access::collect(tb, &frame, op, &mut w.buf);
        let native_site = w.buf.is_empty()
            && op.kind.is_call()
            && w.shared
                .native_calls
                .load(std::sync::atomic::Ordering::Relaxed)
            && may_do_native_io(py, &w.shared, tb, &frame, op);
        if w.buf.is_empty() && !native_site {
            // `vars(obj)` touches nothing shared itself, but its result
            // aliases obj's attributes.
            if let Some((dict, owner)) = access::dict_alias(tb, &frame, op) {
                w.shared
                    .keys
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .alias(py, dict, owner);
            }
            return Flow::Continue;
        }
        let shared = w.shared.clone();
        // Objects are numbered as this thread meets them *before* it gives
        // up the turn: which thread numbers a new object then follows the
        // order of the steps that executed, not the order the threads were
        // resumed in (see keys.rs).
        let mut resolved = resolve(py, &shared, w.tid, &w.buf);
        match acquire_turn(py, &shared, w.tid, w.generation) {
            Err(e) => return set_aborted(py, &e.to_string()),
            Ok(false) => {}
            Ok(true) => {
                // Other threads ran meanwhile: containers may have changed size.
                w.buf.clear();
                access::collect(tb, &frame, op, &mut w.buf);
                resolved = resolve(py, &shared, w.tid, &w.buf);
            }
        }
        if let Some((dict, owner)) = access::dict_alias(tb, &frame, op) {
            shared
                .keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .alias(py, dict, owner);
        }
        report(
            py,
            &shared,
            w.tid,
            w.generation,
            code as usize,
            offset as u32,
            resolved,
        )
    })
}

/// `file:line` of `offset` in `code`, for messages.
fn code_line(code: *mut ffi::PyObject, offset: usize) -> String {
    unsafe {
        let line = ffi::PyCode_Addr2Line(code as *mut ffi::PyCodeObject, offset as i32);
        let file = ffi::PyObject_GetAttrString(code, c"co_filename".as_ptr());
        let mut name = String::from("?");
        if file.is_null() {
            ffi::PyErr_Clear();
        } else {
            let p = ffi::PyUnicode_AsUTF8(file);
            if p.is_null() {
                ffi::PyErr_Clear();
            } else {
                name = std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
            }
            ffi::Py_DECREF(file);
        }
        format!("{name}:{line}")
    }
}

/// The engine keys of the accesses `raw` that worker `tid` is about to make.
fn resolve(py: Python<'_>, shared: &Shared, tid: ThreadId, raw: &[RawAccess]) -> Vec<(u64, bool)> {
    let mut resolved = Vec::with_capacity(raw.len());
    let mut keys = shared.keys.lock().unwrap_or_else(|p| p.into_inner());
    for a in raw {
        if a.module_dict {
            keys.number_module_dict(py, a.owner);
        }
        let slot = match a.slot {
            Slot::Fixed(s) => s,
            Slot::ObjectKey(k) => keys
                .number(py, k, Some(tid))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15),
        };
        let key = keys.key(py, a.owner, Some(tid), slot, || seed_desc(py, a.seed));
        resolved.push((key, a.write));
    }
    resolved
}

fn report(
    py: Python<'_>,
    shared: &Shared,
    tid: ThreadId,
    generation: u64,
    code: usize,
    offset: u32,
    resolved: Vec<(u64, bool)>,
) -> Flow {
    let mut st = shared.lock();
    match st.standing(generation) {
        Err(e) => return set_aborted(py, &e.to_string()),
        Ok(Standing::Released(_)) => return Flow::Continue,
        Ok(_) => {}
    }
    if st.between_steps {
        return Flow::Continue;
    }
    for &(key, write) in &resolved {
        if let Err(e) = st.engine(|x| x.access(tid, key, kind(write))) {
            shared.wake(&st);
            return set_aborted(py, &e.to_string());
        }
    }
    if shared.one_loop.load(std::sync::atomic::Ordering::Relaxed) {
        super::tasks::record_sites(&mut st, code, offset, &resolved);
    }
    match st.start_step(tid, code, offset) {
        Some(i) => st.steps[i].accesses = resolved,
        // Holding the turn (`io_hold`): the accesses join the step.
        None => join_step_record(&mut st, tid, &resolved),
    }
    Flow::Continue
}

fn seed_desc(py: Python<'_>, seed: Seed) -> SlotDesc {
    let own = |p: *mut ffi::PyObject| unsafe { Bound::from_borrowed_ptr(py, p) }.unbind();
    match seed {
        Seed::Attr(n) => SlotDesc::Attr(own(n)),
        Seed::Item(k) => SlotDesc::Item(own(k)),
        Seed::Index(i) => SlotDesc::Index(i),
        Seed::Shape => SlotDesc::Shape,
        Seed::Cell => SlotDesc::Cell,
        Seed::Global(n) => SlotDesc::Global(own(n)),
    }
}

impl KeyTable {
    /// Module dicts are numbered from the module's name, which is the same
    /// in every execution.
    pub fn number_module_dict(&mut self, py: Python<'_>, dict: *mut ffi::PyObject) {
        if self.is_numbered(dict) {
            return;
        }
        let name = unsafe { ffi::PyDict_GetItemString(dict, c"__name__".as_ptr()) };
        let h = if name.is_null() {
            dict as u64
        } else {
            let h = unsafe { ffi::PyObject_Hash(name) };
            if h == -1 {
                unsafe { ffi::PyErr_Clear() };
            }
            h as u64
        };
        self.set_number(
            py,
            dict,
            crate::keys::compose(h, 0x4d4f_4455_4c45) | (1 << 63),
        );
    }
}

/// Whether a call made by traced code may run native code that does I/O,
/// so that its events need a step of their own: a call into untraced
/// Python code (a driver written in Python) or into C code of an extension
/// type or module (a C driver, `os.read`). Calls into traced code (whose
/// own instructions are scheduling points), of classes, and of the
/// interpreter's own types and `builtins` functions are not: the decision
/// depends only on the callee, so programs without I/O keep the schedules
/// they have without the library.
pub fn may_do_native_io(
    py: Python<'_>,
    shared: &Shared,
    tb: &Tables,
    frame: &Frame,
    op: Op,
) -> bool {
    let (callable, first) = access::callee(frame, op);
    if callable.is_null() {
        return true;
    }
    let t = type_of(callable);
    unsafe {
        if t == tb.function || t == tb.method {
            let func = if t == tb.method {
                // PyMethodObject: { HEAD; PyObject *im_func; PyObject *im_self; ... }
                *((callable as *mut u8).add(std::mem::size_of::<ffi::PyObject>())
                    as *mut *mut ffi::PyObject)
            } else {
                callable
            };
            if type_of(func) != tb.function {
                return true;
            }
            let code = ffi::PyFunction_GetCode(func);
            let globals = ffi::PyFunction_GetGlobals(func);
            if code.is_null() {
                return true;
            }
            return !function_traced(py, shared, code, globals);
        }
        if ffi::PyType_Check(callable) != 0 {
            return false;
        }
        if t == tb.cfunction || ffi::PyCFunction_Check(callable) != 0 {
            let this = (*(callable as *mut ffi::PyCFunctionObject)).m_self;
            if this.is_null() {
                return true;
            }
            if ffi::PyModule_Check(this) != 0 {
                let name = ffi::PyModule_GetName(this);
                if name.is_null() {
                    ffi::PyErr_Clear();
                    return true;
                }
                return CStr::from_ptr(name).to_bytes() != b"builtins";
            }
            return !core_type(this);
        }
        if t == tb.method_descriptor || t == tb.wrapper_descriptor || t == tb.method_wrapper {
            return first.is_null() || !core_type(first);
        }
    }
    true
}

/// An object of one of the interpreter's own types (`str`, `list`,
/// `dict`...): their names carry no module. Extension types are named
/// `module.Type` (`psycopg2.extensions.cursor`, `_io.FileIO`).
fn core_type(obj: *mut ffi::PyObject) -> bool {
    unsafe {
        let ty = ffi::Py_TYPE(obj);
        let name = (*ty).tp_name;
        !name.is_null() && !CStr::from_ptr(name).to_bytes().contains(&b'.')
    }
}
