//! From "this instruction is about to run in this frame" to the list of
//! shared-memory accesses it performs.
//!
//! Operands are read from the frame's value stack (see `frame.rs`). All
//! pointers collected here are borrowed: they stay valid because the frame is
//! suspended until the accesses are reported and the instruction runs.
//!
//! Precision rules (they decide how many executions DPOR needs):
//! - attributes: one location per (object, name); `obj.__dict__[name]` is the
//!   same location;
//! - lists: one location per index, plus a SHAPE location; reading or writing
//!   an element also reads SHAPE, so element accesses at different indices
//!   are independent while append/insert/pop/sort/... (SHAPE writes) conflict
//!   with all of them;
//! - dicts: the same per key; storing a key that is not there yet changes
//!   the shape;
//! - sets: SHAPE only (membership is the shape);
//! - whole-container reads (`sum(xs)`, `xs.copy()`, `d.items()`) read every
//!   element (up to `WHOLE_READ_CAP`) and SHAPE.
//!
//! The files: `tables.rs` says what an object is (the type objects and
//! builtins recognised by identity, the kind of container, the slot of a
//! key); `collector.rs` turns an operand into the accesses to its
//! attributes, items, elements and cells; `calls.rs` does the same for
//! calls of builtins and of methods of builtin containers; `locks.rs` spots
//! an acquire of a real lock that would block; `record.rs` is the access
//! record they all produce. Here: the dispatch on the instruction.

mod calls;
mod collector;
mod locks;
mod record;
mod tables;

use crate::codeinfo::{Op, OpKind};
use crate::frame::Frame;
use collector::Collector;
use pyo3::ffi;
use tables::{attrs_tracked, container_of, Container};

pub use locks::real_lock_would_block;
pub use record::{RawAccess, Seed, Slot};
pub(crate) use tables::type_of;
pub use tables::{Builtin, Tables, TABLES};

/// The callable a call instruction is about to call, and its first
/// argument (the bound object of a method call), when they can be read.
pub fn callee(frame: &Frame, op: Op) -> (*mut ffi::PyObject, *mut ffi::PyObject) {
    let first = |args: &[*mut ffi::PyObject]| args.first().copied().unwrap_or(std::ptr::null_mut());
    match op.kind {
        OpKind::Call | OpKind::CallKw => {
            let shift = (op.kind == OpKind::CallKw) as usize;
            let (callable, args) = call_operands(frame, op.arg as usize, shift);
            (callable, first(&args))
        }
        OpKind::CallPlain | OpKind::CallPlainKw => {
            let shift = (op.kind == OpKind::CallPlainKw) as usize;
            let argc = op.arg as usize;
            let arg0 = if argc > 0 {
                frame.peek(shift + argc - 1)
            } else {
                std::ptr::null_mut()
            };
            (frame.peek(shift + argc), arg0)
        }
        OpKind::CallEx => {
            let has_kwargs = (op.arg & 1) as usize;
            let func = frame.peek(has_kwargs + if cfg!(Py_3_13) { 2 } else { 1 });
            (func, std::ptr::null_mut())
        }
        _ => (std::ptr::null_mut(), std::ptr::null_mut()),
    }
}

/// Positions of a call's callable and arguments on the stack.
fn call_operands(
    frame: &Frame,
    argc: usize,
    shift: usize,
) -> (*mut ffi::PyObject, Vec<*mut ffi::PyObject>) {
    // 3.11/3.12: [method_or_NULL, callable_or_self, args...]
    // 3.13:      [callable, self_or_NULL, args...]
    let lower = frame.peek(shift + argc + 1);
    let upper = frame.peek(shift + argc);
    let (callable, first_self) = if cfg!(Py_3_13) || !lower.is_null() {
        (lower, upper)
    } else {
        (upper, std::ptr::null_mut())
    };
    let mut args = Vec::with_capacity(argc + 1);
    if !first_self.is_null() {
        args.push(first_self);
    }
    for i in 0..argc {
        args.push(frame.peek(shift + argc - 1 - i));
    }
    (callable, args)
}

/// The accesses `op` is about to perform in `frame`.
pub fn collect(tb: &Tables, frame: &Frame, op: Op, out: &mut Vec<RawAccess>) {
    let mut c = Collector { tb, out };
    match op.kind {
        OpKind::None => {}
        OpKind::LoadAttr => {
            let owner = frame.peek(0);
            c.attr(owner, op.name, false);
        }
        OpKind::StoreAttr | OpKind::DeleteAttr => c.attr(frame.peek(0), op.name, true),
        OpKind::SubscrRead | OpKind::SubscrWrite | OpKind::SubscrDelete => {
            c.subscr(frame.peek(1), frame.peek(0), op.kind)
        }
        OpKind::SliceRead | OpKind::SliceWrite => {
            let container = frame.peek(2);
            match container_of(tb, container) {
                Container::Untracked => {}
                Container::List if op.kind == OpKind::SliceRead => unsafe {
                    let slice =
                        ffi::PySlice_New(frame.peek(1), frame.peek(0), std::ptr::null_mut());
                    if slice.is_null() {
                        ffi::PyErr_Clear();
                        c.shape(container, false);
                    } else {
                        c.slice_read(container, slice);
                        ffi::Py_DECREF(slice);
                    }
                },
                _ => c.shape(container, op.kind == OpKind::SliceWrite),
            }
        }
        OpKind::GlobalRead => c.global(frame, op.name, false),
        OpKind::GlobalWrite => c.global(frame, op.name, true),
        OpKind::DerefRead => c.deref(frame, op.arg, false),
        OpKind::DerefWrite => c.deref(frame, op.arg, true),
        OpKind::Call | OpKind::CallKw => {
            let shift = (op.kind == OpKind::CallKw) as usize;
            let (callable, args) = call_operands(frame, op.arg as usize, shift);
            c.call(callable, &args);
        }
        OpKind::CallPlain | OpKind::CallPlainKw => {
            // 3.10: [callable, args...] (+ kwnames on top for the KW form)
            let shift = (op.kind == OpKind::CallPlainKw) as usize;
            let argc = op.arg as usize;
            let callable = frame.peek(shift + argc);
            let args: Vec<_> = (0..argc)
                .map(|i| frame.peek(shift + argc - 1 - i))
                .collect();
            c.call(callable, &args);
        }
        OpKind::CallEx => {
            let has_kwargs = (op.arg & 1) as usize;
            let callargs = frame.peek(has_kwargs);
            let func = frame.peek(has_kwargs + if cfg!(Py_3_13) { 2 } else { 1 });
            if !callargs.is_null() && container_of(tb, callargs) != Container::Untracked {
                // f(*xs) with xs a list: the interpreter copies it first.
                c.whole_read(callargs);
            } else if !callargs.is_null() && unsafe { ffi::PyTuple_Check(callargs) } != 0 {
                let n = unsafe { ffi::PyTuple_Size(callargs) };
                let args: Vec<_> = (0..n)
                    .map(|i| unsafe { ffi::PyTuple_GetItem(callargs, i) })
                    .collect();
                c.call(func, &args);
            }
        }
        OpKind::GetIter => {
            let it = frame.peek(0);
            if !it.is_null() {
                c.get_iter(it);
            }
        }
        OpKind::ForIter => {
            let it = frame.peek(0);
            if !it.is_null() {
                c.iter_next(it);
            }
        }
        OpKind::Contains => {
            let container = frame.peek(0);
            if !container.is_null() {
                c.contains(container, frame.peek(1));
            }
        }
        OpKind::Inplace => {
            let left = frame.peek(1);
            if !left.is_null() {
                c.inplace(left);
            }
        }
        OpKind::Truth => {
            let x = frame.peek(0);
            if !x.is_null() {
                c.truth(x);
            }
        }
        OpKind::ReadBoth => {
            for n in [1, 0] {
                let x = frame.peek(n);
                if !x.is_null() && container_of(tb, x) != Container::Untracked {
                    c.whole_read(x);
                }
            }
        }
        // Entering a context touches nothing by itself: what `__enter__`
        // does is seen in its own code (or, for a lock frontrun does not
        // control, checked by `real_lock_would_block`).
        OpKind::Enter => {}
        OpKind::ReadAll1 => {
            let x = frame.peek(1);
            if !x.is_null() {
                c.whole_read(x);
            }
        }
        OpKind::ReadAll => {
            let x = frame.peek(0);
            if !x.is_null() {
                c.whole_read(x);
            }
        }
    }
}

/// `obj.__dict__` and `vars(obj)` return the dict behind `obj`'s
/// attributes: returns `(dict, obj)` so the dict's items get the keys of
/// the attributes.
pub fn dict_alias(
    tb: &Tables,
    frame: &Frame,
    op: Op,
) -> Option<(*mut ffi::PyObject, *mut ffi::PyObject)> {
    let owner = match op.kind {
        OpKind::LoadAttr if op.dunder_dict => frame.peek(0),
        OpKind::Call | OpKind::CallKw | OpKind::CallPlain if op.arg == 1 => {
            let (callable, args) = match op.kind {
                OpKind::CallPlain => (frame.peek(1), vec![frame.peek(0)]),
                _ => call_operands(frame, 1, (op.kind == OpKind::CallKw) as usize),
            };
            let is_vars = tb
                .builtins
                .iter()
                .any(|&(p, b)| b == Builtin::Vars && p == callable as usize);
            if !is_vars || args.len() != 1 {
                return None;
            }
            args[0]
        }
        _ => return None,
    };
    if owner.is_null() || !attrs_tracked(tb, owner) || type_of(owner) == tb.module {
        return None;
    }
    unsafe {
        let d = ffi::PyObject_GenericGetDict(owner, std::ptr::null_mut());
        if d.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        // The object keeps its dict alive; our reference is not needed.
        ffi::Py_DECREF(d);
        Some((d, owner))
    }
}
