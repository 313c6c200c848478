//! The accesses of an operand: attributes, container elements and shape,
//! iteration, truth tests, cells and globals (the precision rules are in
//! `mod.rs`).

use super::record::{RawAccess, Seed, Slot, WHOLE_READ_CAP};
use super::tables::{attrs_tracked, container_of, item_slot, type_of, Container, Tables};
use crate::codeinfo::OpKind;
use crate::frame::Frame;
use crate::keys::{SLOT_CELL, SLOT_SHAPE};
use pyo3::ffi;

pub struct Collector<'a> {
    pub tb: &'a Tables,
    pub out: &'a mut Vec<RawAccess>,
}

impl Collector<'_> {
    pub(super) fn push(&mut self, owner: *mut ffi::PyObject, slot: Slot, seed: Seed, write: bool) {
        self.out.push(RawAccess {
            owner,
            module_dict: false,
            slot,
            seed,
            write,
        });
    }

    pub(super) fn shape(&mut self, c: *mut ffi::PyObject, write: bool) {
        self.push(c, Slot::Fixed(SLOT_SHAPE), Seed::Shape, write);
    }

    pub(super) fn attr(&mut self, o: *mut ffi::PyObject, name: *mut ffi::PyObject, write: bool) {
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

    pub(super) fn index_slot(c: *mut ffi::PyObject, k: *mut ffi::PyObject) -> Option<i64> {
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

    pub(super) fn index(&mut self, c: *mut ffi::PyObject, i: i64, write: bool) {
        self.push(c, Slot::Fixed(i as u64), Seed::Index(i), write);
    }

    /// Reads of the elements `range(start, stop, step)` of a list-like `c`.
    pub(super) fn slice_read(&mut self, c: *mut ffi::PyObject, slice: *mut ffi::PyObject) {
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

    pub(super) fn subscr(&mut self, c: *mut ffi::PyObject, k: *mut ffi::PyObject, kind: OpKind) {
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
    pub(super) fn inserts_on_read(&self, c: *mut ffi::PyObject, k: *mut ffi::PyObject) -> bool {
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

    pub(super) fn contains(&mut self, c: *mut ffi::PyObject, item: *mut ffi::PyObject) {
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

    pub(super) fn get_iter(&mut self, it: *mut ffi::PyObject) {
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
    pub(super) fn iter_next(&mut self, it: *mut ffi::PyObject) {
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
    pub(super) fn truth(&mut self, x: *mut ffi::PyObject) {
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

    pub(super) fn inplace(&mut self, left: *mut ffi::PyObject) {
        match container_of(self.tb, left) {
            Container::Untracked => {}
            _ => self.shape(left, true),
        }
    }

    pub(super) fn deref(&mut self, frame: &Frame, index: u32, write: bool) {
        let cell = frame.fast_local(index as usize);
        if cell.is_null() || type_of(cell) != self.tb.cell {
            return;
        }
        self.push(cell, Slot::Fixed(SLOT_CELL), Seed::Cell, write);
    }

    pub(super) fn global(&mut self, frame: &Frame, name: *mut ffi::PyObject, write: bool) {
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
}
