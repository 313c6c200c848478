//! What an object is, for the access classifier: the type objects and
//! builtins recognised by identity, the kind of container, whether its
//! attributes are tracked, the slot of a dict key.

use super::record::Slot;
use pyo3::ffi;
use std::sync::OnceLock;

/// Type objects and builtins recognised by identity, captured once from
/// Python (`frontrun.dpor` passes them to `_engine.init_tables`).
pub struct Tables {
    pub list: usize,
    pub dict: usize,
    pub set: usize,
    pub bytearray: usize,
    pub deque: usize,
    /// `_thread.lock` and `_thread.RLock`: the real locks, which frontrun
    /// does not schedule (its cooperative classes replace them while an
    /// exploration runs, but not those created before).
    pub real_lock: usize,
    pub real_rlock: usize,
    /// `collections.defaultdict`: reading a missing key inserts it.
    pub defaultdict: usize,
    pub immutable: Vec<usize>,
    pub module: usize,
    pub type_type: usize,
    pub function: usize,
    pub method: usize,
    pub cfunction: usize,
    pub method_descriptor: usize,
    pub wrapper_descriptor: usize,
    pub method_wrapper: usize,
    pub cell: usize,
    pub list_iter: usize,
    pub list_reviter: usize,
    pub enumerate: usize,
    pub dict_keys: usize,
    pub dict_values: usize,
    pub dict_items: usize,
    pub dict_iters: Vec<usize>,
    pub set_iter: usize,
    pub object_hash: usize,
    pub builtins: Vec<(usize, Builtin)>,
}

unsafe impl Send for Tables {}
unsafe impl Sync for Tables {}

pub static TABLES: OnceLock<Tables> = OnceLock::new();

/// Builtins that act on their arguments rather than on `__self__`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    SetAttr,
    GetAttr,
    DelAttr,
    HasAttr,
    Len,
    /// Iterates (reads all of) every argument from index `.0` on.
    ReadsArgsFrom(usize),
    Next,
    Iter,
    Vars,
    GetItem,
    SetItem,
    DelItem,
}

impl Builtin {
    pub fn from_name(name: &str) -> Option<Builtin> {
        Some(match name {
            "setattr" => Builtin::SetAttr,
            "getattr" => Builtin::GetAttr,
            "delattr" => Builtin::DelAttr,
            "hasattr" => Builtin::HasAttr,
            "len" => Builtin::Len,
            "reads_all" => Builtin::ReadsArgsFrom(0),
            "reads_all_from_1" => Builtin::ReadsArgsFrom(1),
            "next" => Builtin::Next,
            "iter" => Builtin::Iter,
            "vars" => Builtin::Vars,
            "getitem" => Builtin::GetItem,
            "setitem" => Builtin::SetItem,
            "delitem" => Builtin::DelItem,
            _ => return None,
        })
    }
}

#[inline]
pub(crate) fn type_of(o: *mut ffi::PyObject) -> usize {
    unsafe { ffi::Py_TYPE(o) as usize }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Container {
    List,
    Dict,
    Set,
    /// Another mutable C container (deque, bytearray, ...).
    Other,
    /// Not a container we model (immutable, or Python-level code that is
    /// traced on its own).
    Untracked,
}

fn is_heap_type(t: *mut ffi::PyTypeObject) -> bool {
    unsafe { ffi::PyType_GetFlags(t) & ffi::Py_TPFLAGS_HEAPTYPE != 0 }
}

/// A mutable sequence of fixed-size elements behind the buffer protocol
/// (`array.array`, ctypes arrays): indexed like a list, so it gets a
/// location per index and a SHAPE.
fn is_buffer_sequence(t: *mut ffi::PyTypeObject) -> bool {
    unsafe {
        let buffer = (*t).tp_as_buffer;
        let seq = (*t).tp_as_sequence;
        let mapping = (*t).tp_as_mapping;
        !buffer.is_null()
            && (*buffer).bf_getbuffer.is_some()
            && !seq.is_null()
            && (*seq).sq_length.is_some()
            && !mapping.is_null()
            && (*mapping).mp_ass_subscript.is_some()
    }
}

pub(super) fn container_of(tb: &Tables, o: *mut ffi::PyObject) -> Container {
    if o.is_null() {
        return Container::Untracked;
    }
    let t = type_of(o);
    if t == tb.list || t == tb.bytearray || t == tb.deque {
        return Container::List;
    }
    if t == tb.dict {
        return Container::Dict;
    }
    if t == tb.set {
        return Container::Set;
    }
    unsafe {
        if ffi::PyList_Check(o) != 0 {
            return Container::List;
        }
        if ffi::PyDict_Check(o) != 0 {
            return Container::Dict;
        }
        if ffi::PySet_Check(o) != 0 {
            return Container::Set;
        }
        if ffi::PyByteArray_Check(o) != 0 {
            return Container::List;
        }
        if tb.immutable.contains(&t) {
            return Container::Untracked;
        }
        if is_heap_type(t as *mut ffi::PyTypeObject) {
            // `array.array` and ctypes arrays are C types allocated on the
            // heap; Python classes are heap types too, but their code is
            // traced on its own.
            return if is_buffer_sequence(t as *mut ffi::PyTypeObject) {
                Container::List
            } else {
                Container::Untracked
            };
        }
    }
    // Other C types: only those that support item assignment are mutable
    // containers worth tracking.
    let mapping = unsafe { (*(t as *mut ffi::PyTypeObject)).tp_as_mapping };
    if !mapping.is_null() && unsafe { (*mapping).mp_ass_subscript.is_some() } {
        return Container::Other;
    }
    Container::Untracked
}

/// Whether attribute accesses on `o` can conflict: instances of Python
/// classes, classes themselves and modules. Instances of C types without an
/// instance dict cannot have their attributes rebound.
pub(super) fn attrs_tracked(tb: &Tables, o: *mut ffi::PyObject) -> bool {
    if o.is_null() {
        return false;
    }
    let t = type_of(o);
    if t == tb.module || t == tb.type_type {
        return true;
    }
    if tb.immutable.contains(&t) {
        return false;
    }
    let tp = t as *mut ffi::PyTypeObject;
    is_heap_type(tp) || unsafe { ffi::PyType_Check(o) != 0 }
}

/// Python hash of `k` as a slot, or identity when `k` hashes by identity
/// (its default hash changes from one execution to the next).
pub(super) fn item_slot(tb: &Tables, k: *mut ffi::PyObject) -> Option<Slot> {
    unsafe {
        let tp = ffi::Py_TYPE(k);
        if (*tp).tp_hash.map(|f| f as usize) == Some(tb.object_hash) {
            return Some(Slot::ObjectKey(k));
        }
        let h = ffi::PyObject_Hash(k);
        if h == -1 && !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        Some(Slot::Fixed(h as u64))
    }
}

pub(super) fn str_of(o: *mut ffi::PyObject) -> Option<&'static str> {
    unsafe {
        if o.is_null() || ffi::PyUnicode_Check(o) == 0 {
            return None;
        }
        let mut size: ffi::Py_ssize_t = 0;
        let p = ffi::PyUnicode_AsUTF8AndSize(o, &mut size);
        if p.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        // Lives as long as the string object, which outlives this call.
        std::str::from_utf8(std::slice::from_raw_parts(p as *const u8, size as usize)).ok()
    }
}
