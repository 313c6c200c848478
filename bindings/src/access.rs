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

use crate::codeinfo::{Op, OpKind};
use crate::frame::Frame;
use crate::keys::{SLOT_CELL, SLOT_SHAPE};
use pyo3::ffi;
use std::ffi::CStr;
use std::os::raw::c_char;
use std::sync::OnceLock;

/// Whole-container reads of larger containers report only this many
/// elements (plus SHAPE): a documented precision limit.
pub const WHOLE_READ_CAP: isize = 1024;

/// How the slot of an access is identified.
#[derive(Clone, Copy)]
pub enum Slot {
    /// A value-derived slot (attribute name hash, dict key hash, list index).
    Fixed(u64),
    /// A dict key hashed by identity: the key object's own number.
    ObjectKey(*mut ffi::PyObject),
}

/// What the slot is, for explanations (pointers borrowed from the frame).
#[derive(Clone, Copy)]
pub enum Seed {
    Attr(*mut ffi::PyObject),
    Item(*mut ffi::PyObject),
    Index(i64),
    Shape,
    Cell,
    Global(*mut ffi::PyObject),
}

#[derive(Clone, Copy)]
pub struct RawAccess {
    pub owner: *mut ffi::PyObject,
    /// The owner is a module's globals dict: its number derives from the
    /// module's name, so it is the same in every execution.
    pub module_dict: bool,
    pub slot: Slot,
    pub seed: Seed,
    pub write: bool,
}

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
enum Container {
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

fn container_of(tb: &Tables, o: *mut ffi::PyObject) -> Container {
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
fn attrs_tracked(tb: &Tables, o: *mut ffi::PyObject) -> bool {
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
fn item_slot(tb: &Tables, k: *mut ffi::PyObject) -> Option<Slot> {
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

fn str_of(o: *mut ffi::PyObject) -> Option<&'static str> {
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

pub struct Collector<'a> {
    pub tb: &'a Tables,
    pub out: &'a mut Vec<RawAccess>,
}

impl Collector<'_> {
    fn push(&mut self, owner: *mut ffi::PyObject, slot: Slot, seed: Seed, write: bool) {
        self.out.push(RawAccess {
            owner,
            module_dict: false,
            slot,
            seed,
            write,
        });
    }

    fn shape(&mut self, c: *mut ffi::PyObject, write: bool) {
        self.push(c, Slot::Fixed(SLOT_SHAPE), Seed::Shape, write);
    }

    fn attr(&mut self, o: *mut ffi::PyObject, name: *mut ffi::PyObject, write: bool) {
        if !attrs_tracked(self.tb, o) || name.is_null() {
            return;
        }
        let Some(Slot::Fixed(h)) = item_slot(self.tb, name) else {
            return;
        };
        if type_of(o) == self.tb.module {
            let d = unsafe { ffi::PyModule_GetDict(o) };
            if d.is_null() {
                return;
            }
            self.out.push(RawAccess {
                owner: d,
                module_dict: true,
                slot: Slot::Fixed(h),
                seed: Seed::Global(name),
                write,
            });
            return;
        }
        self.push(o, Slot::Fixed(h), Seed::Attr(name), write);
    }

    fn index_slot(c: *mut ffi::PyObject, k: *mut ffi::PyObject) -> Option<i64> {
        unsafe {
            if ffi::PyLong_Check(k) == 0 {
                return None;
            }
            let mut i = ffi::PyLong_AsSsize_t(k);
            if i == -1 && !ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Clear();
                return None;
            }
            let n = ffi::PyObject_Size(c);
            if n < 0 {
                ffi::PyErr_Clear();
                return None;
            }
            if i < 0 {
                i += n;
            }
            (0..n).contains(&i).then_some(i as i64)
        }
    }

    fn index(&mut self, c: *mut ffi::PyObject, i: i64, write: bool) {
        self.push(c, Slot::Fixed(i as u64), Seed::Index(i), write);
    }

    /// Reads of the elements `range(start, stop, step)` of a list-like `c`.
    fn slice_read(&mut self, c: *mut ffi::PyObject, slice: *mut ffi::PyObject) {
        unsafe {
            let n = ffi::PyObject_Size(c);
            if n < 0 {
                ffi::PyErr_Clear();
                self.shape(c, false);
                return;
            }
            let (mut start, mut stop, mut step) = (0, 0, 0);
            if ffi::PySlice_Unpack(slice, &mut start, &mut stop, &mut step) < 0 {
                ffi::PyErr_Clear();
                self.shape(c, false);
                return;
            }
            let count = ffi::PySlice_AdjustIndices(n, &mut start, &mut stop, step);
            let mut i = start;
            for _ in 0..count.min(WHOLE_READ_CAP) {
                self.index(c, i as i64, false);
                i += step;
            }
        }
        self.shape(c, false);
    }

    /// Reads the whole of `c`: every element and its shape.
    pub fn whole_read(&mut self, c: *mut ffi::PyObject) {
        let tb = self.tb;
        let t = type_of(c);
        if t == tb.dict_values || t == tb.dict_items {
            let d = unsafe {
                *((c as *mut u8).add(std::mem::size_of::<ffi::PyObject>())
                    as *mut *mut ffi::PyObject)
            };
            if !d.is_null() {
                self.whole_read(d);
            }
            return;
        }
        if t == tb.dict_keys {
            let d = unsafe {
                *((c as *mut u8).add(std::mem::size_of::<ffi::PyObject>())
                    as *mut *mut ffi::PyObject)
            };
            if !d.is_null() {
                self.shape(d, false);
            }
            return;
        }
        match container_of(tb, c) {
            Container::List => {
                let n = unsafe { ffi::PyObject_Size(c) };
                if n < 0 {
                    unsafe { ffi::PyErr_Clear() };
                } else {
                    for i in 0..n.min(WHOLE_READ_CAP) {
                        self.index(c, i as i64, false);
                    }
                }
                self.shape(c, false);
            }
            Container::Dict => {
                let mut pos: ffi::Py_ssize_t = 0;
                let mut k = std::ptr::null_mut();
                let mut v = std::ptr::null_mut();
                let mut seen = 0;
                while seen < WHOLE_READ_CAP
                    && unsafe { ffi::PyDict_Next(c, &mut pos, &mut k, &mut v) } != 0
                {
                    if let Some(slot) = item_slot(tb, k) {
                        self.push(c, slot, Seed::Item(k), false);
                    }
                    seen += 1;
                }
                self.shape(c, false);
            }
            Container::Set | Container::Other => self.shape(c, false),
            Container::Untracked => {}
        }
    }

    fn subscr(&mut self, c: *mut ffi::PyObject, k: *mut ffi::PyObject, kind: OpKind) {
        let container = container_of(self.tb, c);
        if container == Container::Untracked || k.is_null() {
            return;
        }
        let is_slice = unsafe { ffi::PySlice_Check(k) != 0 };
        match (container, kind) {
            (Container::List, OpKind::SubscrRead) => {
                if is_slice {
                    self.slice_read(c, k);
                } else if let Some(i) = Self::index_slot(c, k) {
                    self.index(c, i, false);
                    self.shape(c, false);
                } else {
                    self.shape(c, false);
                }
            }
            (Container::List, OpKind::SubscrWrite) if !is_slice => {
                if let Some(i) = Self::index_slot(c, k) {
                    self.index(c, i, true);
                    self.shape(c, false);
                } else {
                    // An index we cannot place: it may be any element.
                    self.shape(c, true);
                }
            }
            (Container::List, _) => self.shape(c, true),
            (Container::Dict, OpKind::SubscrRead) if self.inserts_on_read(c, k) => {
                // `d[k]` of a defaultdict without k stores the factory's
                // value: a write, and which thread does it first decides
                // which object every later reader gets.
                if let Some(slot) = item_slot(self.tb, k) {
                    self.push(c, slot, Seed::Item(k), true);
                }
                self.shape(c, true);
            }
            (_, OpKind::SubscrRead) => {
                if let Some(slot) = item_slot(self.tb, k) {
                    self.push(c, slot, Seed::Item(k), false);
                }
                self.shape(c, false);
            }
            (_, OpKind::SubscrWrite) => {
                let Some(slot) = item_slot(self.tb, k) else {
                    self.shape(c, true);
                    return;
                };
                self.push(c, slot, Seed::Item(k), true);
                let present =
                    container == Container::Dict && unsafe { ffi::PyDict_Contains(c, k) } == 1;
                unsafe { ffi::PyErr_Clear() };
                self.shape(c, !present);
            }
            (_, _) => {
                if let Some(slot) = item_slot(self.tb, k) {
                    self.push(c, slot, Seed::Item(k), true);
                }
                self.shape(c, true);
            }
        }
    }

    /// Whether `c[k]` will insert `k`: `c` is a defaultdict (or a subclass)
    /// that does not hold `k` yet.
    fn inserts_on_read(&self, c: *mut ffi::PyObject, k: *mut ffi::PyObject) -> bool {
        let t = type_of(c);
        if t == self.tb.dict || self.tb.defaultdict == 0 {
            return false;
        }
        let dd = self.tb.defaultdict as *mut ffi::PyTypeObject;
        if unsafe { ffi::PyObject_TypeCheck(c, dd) } == 0 {
            return false;
        }
        let present = unsafe { ffi::PyDict_Contains(c, k) };
        unsafe { ffi::PyErr_Clear() };
        present == 0
    }

    fn contains(&mut self, c: *mut ffi::PyObject, item: *mut ffi::PyObject) {
        let t = type_of(c);
        if t == self.tb.dict_keys {
            let d = unsafe {
                *((c as *mut u8).add(std::mem::size_of::<ffi::PyObject>())
                    as *mut *mut ffi::PyObject)
            };
            if !d.is_null() {
                self.contains(d, item);
            }
            return;
        }
        match container_of(self.tb, c) {
            Container::Dict => {
                if let Some(slot) = item_slot(self.tb, item) {
                    self.push(c, slot, Seed::Item(item), false);
                }
                self.shape(c, false);
            }
            Container::Set => self.shape(c, false),
            Container::List | Container::Other => self.whole_read(c),
            Container::Untracked => {
                if t == self.tb.dict_values || t == self.tb.dict_items {
                    self.whole_read(c);
                }
            }
        }
    }

    fn get_iter(&mut self, it: *mut ffi::PyObject) {
        let t = type_of(it);
        if t == self.tb.dict_keys || t == self.tb.dict_values || t == self.tb.dict_items {
            self.whole_read(it);
            return;
        }
        match container_of(self.tb, it) {
            // Lists are read element by element as FOR_ITER advances.
            Container::List
                if type_of(it) == self.tb.list || unsafe { ffi::PyList_Check(it) != 0 } => {}
            Container::Dict | Container::Set => self.shape(it, false),
            Container::List | Container::Other => self.whole_read(it),
            Container::Untracked => {}
        }
    }

    /// The element a list iterator is about to yield.
    fn iter_next(&mut self, it: *mut ffi::PyObject) {
        let tb = self.tb;
        let t = type_of(it);
        let head = std::mem::size_of::<ffi::PyObject>();
        unsafe {
            if t == tb.list_iter || t == tb.list_reviter {
                // listiterobject / listreviterobject: { HEAD; Py_ssize_t it_index; PyListObject *it_seq; }
                let index = *((it as *mut u8).add(head) as *mut isize);
                let seq = *((it as *mut u8).add(head + 8) as *mut *mut ffi::PyObject);
                if seq.is_null() {
                    return;
                }
                if index >= 0 && index < ffi::PyList_Size(seq) {
                    self.index(seq, index as i64, false);
                }
                self.shape(seq, false);
            } else if t == tb.enumerate {
                // enumobject: { HEAD; Py_ssize_t en_index; PyObject *en_sit; ... }
                let inner = *((it as *mut u8).add(head + 8) as *mut *mut ffi::PyObject);
                if !inner.is_null() {
                    self.iter_next(inner);
                }
            } else if tb.dict_iters.contains(&t) || t == tb.set_iter {
                // dictiterobject { HEAD; PyDictObject *di_dict; ... }, setiterobject { HEAD; PySetObject *si_set; ... }
                let owner = *((it as *mut u8).add(head) as *mut *mut ffi::PyObject);
                if !owner.is_null() {
                    self.shape(owner, false);
                }
            }
        }
    }

    /// Truth or length of `x`: a read of a container's shape.
    fn truth(&mut self, x: *mut ffi::PyObject) {
        let t = type_of(x);
        if t == self.tb.dict_keys || t == self.tb.dict_values || t == self.tb.dict_items {
            let d = unsafe {
                *((x as *mut u8).add(std::mem::size_of::<ffi::PyObject>())
                    as *mut *mut ffi::PyObject)
            };
            if !d.is_null() {
                self.shape(d, false);
            }
            return;
        }
        if container_of(self.tb, x) != Container::Untracked {
            self.shape(x, false);
        }
    }

    fn inplace(&mut self, left: *mut ffi::PyObject) {
        match container_of(self.tb, left) {
            Container::Untracked => {}
            _ => self.shape(left, true),
        }
    }

    fn deref(&mut self, frame: &Frame, index: u32, write: bool) {
        let cell = frame.fast_local(index as usize);
        if cell.is_null() || type_of(cell) != self.tb.cell {
            return;
        }
        self.push(cell, Slot::Fixed(SLOT_CELL), Seed::Cell, write);
    }

    fn global(&mut self, frame: &Frame, name: *mut ffi::PyObject, write: bool) {
        let g = frame.globals();
        if g.is_null() || name.is_null() {
            return;
        }
        if !write && unsafe { ffi::PyDict_Check(g) } != 0 {
            // A builtin reached through the globals lookup (`len`, `print`)
            // is not module state.
            let b = frame.builtins();
            let builtin = unsafe {
                ffi::PyDict_GetItem(g, name).is_null()
                    && !b.is_null()
                    && ffi::PyDict_Check(b) != 0
                    && !ffi::PyDict_GetItem(b, name).is_null()
            };
            if builtin {
                return;
            }
        }
        let Some(Slot::Fixed(h)) = item_slot(self.tb, name) else {
            return;
        };
        self.out.push(RawAccess {
            owner: g,
            module_dict: true,
            slot: Slot::Fixed(h),
            seed: Seed::Global(name),
            write,
        });
    }

    /// Accesses made by calling `callable` with `args` (positional first).
    fn call(&mut self, callable: *mut ffi::PyObject, args: &[*mut ffi::PyObject]) {
        let tb = self.tb;
        if callable.is_null() {
            return;
        }
        let t = type_of(callable);
        if t == tb.function || t == tb.method {
            return;
        }
        let c = callable as usize;
        if let Some(&(_, b)) = tb.builtins.iter().find(|(p, _)| *p == c) {
            self.builtin(b, args);
            return;
        }
        unsafe {
            if t == tb.cfunction || ffi::PyCFunction_Check(callable) != 0 {
                let f = callable as *mut ffi::PyCFunctionObject;
                let this = (*f).m_self;
                let ml = (*f).m_ml;
                if this.is_null() || ml.is_null() || (*ml).ml_name.is_null() {
                    return;
                }
                let name = CStr::from_ptr((*ml).ml_name as *const c_char)
                    .to_str()
                    .unwrap_or("");
                self.method(this, name, args);
            } else if t == tb.method_descriptor || t == tb.wrapper_descriptor {
                // PyDescrObject: { HEAD; PyTypeObject *d_type; PyObject *d_name; ... }
                let head = std::mem::size_of::<ffi::PyObject>();
                let d_type = *((callable as *mut u8).add(head) as *mut usize);
                let d_name = *((callable as *mut u8).add(head + 8) as *mut *mut ffi::PyObject);
                let Some(name) = str_of(d_name) else { return };
                let Some((&this, rest)) = args.split_first() else {
                    return;
                };
                if d_type == std::ptr::addr_of_mut!(ffi::PyBaseObject_Type) as usize {
                    let attr = rest.first().copied().unwrap_or(std::ptr::null_mut());
                    match name {
                        "__setattr__" | "__delattr__" => self.attr(this, attr, true),
                        "__getattribute__" => self.attr(this, attr, false),
                        _ => {}
                    }
                    return;
                }
                self.method(this, name, rest);
            } else if t == tb.method_wrapper {
                // wrapperobject: { HEAD; PyWrapperDescrObject *descr; PyObject *self; }
                let head = std::mem::size_of::<ffi::PyObject>();
                let descr = *((callable as *mut u8).add(head) as *mut *mut ffi::PyObject);
                let this = *((callable as *mut u8).add(head + 8) as *mut *mut ffi::PyObject);
                if descr.is_null() || this.is_null() {
                    return;
                }
                let d_name = *((descr as *mut u8).add(head + 8) as *mut *mut ffi::PyObject);
                let Some(name) = str_of(d_name) else { return };
                if name == "__setattr__" || name == "__delattr__" {
                    self.attr(
                        this,
                        args.first().copied().unwrap_or(std::ptr::null_mut()),
                        true,
                    );
                    return;
                }
                self.method(this, name, args);
            }
        }
    }

    fn builtin(&mut self, b: Builtin, args: &[*mut ffi::PyObject]) {
        let arg = |i: usize| args.get(i).copied().unwrap_or(std::ptr::null_mut());
        match b {
            Builtin::SetAttr | Builtin::DelAttr => self.attr(arg(0), arg(1), true),
            Builtin::GetAttr | Builtin::HasAttr => self.attr(arg(0), arg(1), false),
            Builtin::Len => {
                let c = arg(0);
                if !c.is_null() && container_of(self.tb, c) != Container::Untracked {
                    self.shape(c, false);
                }
            }
            Builtin::ReadsArgsFrom(first) => {
                for &a in args.iter().skip(first) {
                    if !a.is_null() {
                        self.whole_read(a);
                    }
                }
            }
            Builtin::Next => {
                if !arg(0).is_null() {
                    self.iter_next(arg(0));
                }
            }
            Builtin::Iter => {
                if !arg(0).is_null() {
                    self.get_iter(arg(0));
                }
            }
            Builtin::Vars => {}
            Builtin::GetItem => self.subscr(arg(0), arg(1), OpKind::SubscrRead),
            Builtin::SetItem => self.subscr(arg(0), arg(1), OpKind::SubscrWrite),
            Builtin::DelItem => self.subscr(arg(0), arg(1), OpKind::SubscrDelete),
        }
    }

    /// A C method `name` of `this`, classified by name.
    fn method(&mut self, this: *mut ffi::PyObject, name: &str, args: &[*mut ffi::PyObject]) {
        let arg0 = args.first().copied().unwrap_or(std::ptr::null_mut());
        let t = type_of(this);
        if t != self.tb.list && self.tb.immutable.contains(&t) {
            // str.join / bytes.join iterate their argument.
            if name == "join" && !arg0.is_null() {
                self.whole_read(arg0);
            }
            return;
        }
        match container_of(self.tb, this) {
            Container::Untracked => {}
            Container::Set => {
                let reads = matches!(
                    name,
                    "__contains__"
                        | "issubset"
                        | "issuperset"
                        | "isdisjoint"
                        | "union"
                        | "intersection"
                        | "difference"
                        | "symmetric_difference"
                        | "copy"
                        | "__len__"
                        | "__iter__"
                        | "__copy__"
                        | "__reduce__"
                        | "__sizeof__"
                );
                self.shape(this, !reads);
            }
            Container::Dict => match name {
                "get" | "__getitem__" | "__contains__" => self.contains(this, arg0),
                "keys" | "__len__" | "__iter__" | "__reversed__" | "__sizeof__" => {
                    self.shape(this, false)
                }
                "values" | "items" | "copy" | "__copy__" | "__reduce__" | "__repr__" => {
                    self.whole_read(this)
                }
                "__setitem__" => self.subscr(this, arg0, OpKind::SubscrWrite),
                "pop" | "setdefault" | "__delitem__" => {
                    if !arg0.is_null() {
                        if let Some(slot) = item_slot(self.tb, arg0) {
                            self.push(this, slot, Seed::Item(arg0), true);
                        }
                    }
                    self.shape(this, true);
                }
                _ => self.shape(this, true),
            },
            Container::List | Container::Other => match name {
                "__getitem__" => self.subscr(this, arg0, OpKind::SubscrRead),
                "__setitem__" => self.subscr(this, arg0, OpKind::SubscrWrite),
                "__len__" | "__sizeof__" => self.shape(this, false),
                "count" | "index" | "copy" | "__copy__" | "__contains__" | "__iter__"
                | "__reversed__" | "__reduce__" | "__reduce_ex__" | "__repr__" | "__eq__"
                | "__ne__" | "__lt__" | "__le__" | "__gt__" | "__ge__" | "tolist" | "tobytes"
                | "tounicode" | "hex" => self.whole_read(this),
                _ => self.shape(this, true),
            },
        }
    }
}

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
