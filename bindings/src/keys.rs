//! Object keys: turning "this object, this attribute" into the engine's
//! `ObjectKey`.
//!
//! `id()` is useless across executions: `setup()` builds fresh state each
//! time, at new addresses, while DPOR compares what one execution did with
//! what another one will do (sleep sets and wakeup trees hold events from
//! earlier executions). So objects get *numbers* that mean the same thing in
//! every execution:
//!
//! 1. Before the threads start, the objects reachable from the state that
//!    `setup()` returned are numbered in breadth-first order (see
//!    `frontrun/_state_walk.py`). `setup()` is deterministic, so the same
//!    object gets the same number every time.
//! 2. Any other object gets the next number when it is first accessed in an
//!    execution. Two executions that share a schedule prefix access objects
//!    in the same order during that prefix, so they agree on these numbers
//!    too; after they diverge, numbers of objects first met there may differ.
//!    That is the documented limit: shared state reachable from `setup()`'s
//!    result (or from module globals, keyed by module name) is keyed exactly.
//!
//! Numbered objects are kept alive until the execution ends, so an address
//! is never reused for a different object inside one execution.
//!
//! A key is a hash of (object number, slot). Slots: attribute and dict keys
//! use the key's Python hash (equal keys, same slot, as in a dict: this is
//! what makes `obj.__dict__["x"]` and `obj.x` the same location); list
//! indices use the index; every container also has a SHAPE slot that
//! shape-changing operations write and element accesses read.

use pyo3::ffi;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiplicative hasher for maps keyed by addresses and precomputed keys:
/// SipHash's DoS resistance buys nothing here and costs on every access.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

pub const SLOT_SHAPE: u64 = 0x5348_4150_455f_5f5f; // "SHAPE___"
pub const SLOT_CELL: u64 = 0x4345_4c4c_5f5f_5f5f; // "CELL____"
/// The slot of a cooperative lock, event, condition or queue itself.
pub const SLOT_SYNC: u64 = 0x5359_4e43_5f5f_5f5f; // "SYNC____"

/// What a slot is, for the explanation.
pub enum SlotDesc {
    Attr(Py<PyAny>),
    Item(Py<PyAny>),
    Index(i64),
    Shape,
    Cell,
    Global(Py<PyAny>),
    /// A cooperative synchronisation primitive (the owner itself).
    Sync,
}

pub struct KeyDesc {
    pub owner: Py<PyAny>,
    pub slot: SlotDesc,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

pub fn compose(number: u64, slot: u64) -> u64 {
    mix(mix(number) ^ slot.rotate_left(17))
}

/// Per-execution numbering of objects.
#[derive(Default)]
pub struct KeyTable {
    numbers: FastMap<usize, u64>,
    /// `obj.__dict__` (and module dicts) share the number of their owner.
    aliases: FastMap<usize, usize>,
    keep: Vec<Py<PyAny>>,
    next: u64,
    pub descs: FastMap<u64, KeyDesc>,
    pub record_descs: bool,
}

impl KeyTable {
    /// Forgets every number. Returns what held objects alive: drop it
    /// *after* releasing the table's lock, since freeing objects can run
    /// Python code (`__del__`) that lets other threads in.
    pub fn clear(&mut self) -> (Vec<Py<PyAny>>, FastMap<u64, KeyDesc>) {
        self.numbers.clear();
        self.aliases.clear();
        self.next = 1;
        (
            std::mem::take(&mut self.keep),
            std::mem::take(&mut self.descs),
        )
    }

    /// Numbers `objs` in order, before any thread runs.
    pub fn prenumber(&mut self, py: Python<'_>, objs: &[*mut ffi::PyObject]) {
        for &o in objs {
            self.number(py, o);
        }
    }

    pub fn alias(&mut self, py: Python<'_>, alias: *mut ffi::PyObject, owner: *mut ffi::PyObject) {
        if self
            .aliases
            .insert(alias as usize, owner as usize)
            .is_none()
        {
            self.keep
                .push(unsafe { Bound::from_borrowed_ptr(py, alias) }.unbind());
        }
    }

    pub fn is_numbered(&self, obj: *mut ffi::PyObject) -> bool {
        self.numbers.contains_key(&(obj as usize))
    }

    pub fn set_number(&mut self, py: Python<'_>, obj: *mut ffi::PyObject, n: u64) {
        if self.numbers.insert(obj as usize, n).is_none() {
            self.keep
                .push(unsafe { Bound::from_borrowed_ptr(py, obj) }.unbind());
        }
    }

    pub fn number(&mut self, py: Python<'_>, obj: *mut ffi::PyObject) -> u64 {
        let obj = self
            .aliases
            .get(&(obj as usize))
            .map(|&o| o as *mut ffi::PyObject)
            .unwrap_or(obj);
        if let Some(&n) = self.numbers.get(&(obj as usize)) {
            return n;
        }
        let n = self.next;
        self.next += 1;
        self.numbers.insert(obj as usize, n);
        self.keep
            .push(unsafe { Bound::from_borrowed_ptr(py, obj) }.unbind());
        n
    }

    /// The key of `slot` in `obj`, recording a description the first time.
    pub fn key(
        &mut self,
        py: Python<'_>,
        obj: *mut ffi::PyObject,
        slot: u64,
        desc: impl FnOnce() -> SlotDesc,
    ) -> u64 {
        let n = self.number(py, obj);
        let key = compose(n, slot);
        if self.record_descs {
            // An item of `obj.__dict__` is described as the attribute.
            let owner = self
                .aliases
                .get(&(obj as usize))
                .map(|&o| o as *mut ffi::PyObject);
            self.descs.entry(key).or_insert_with(|| KeyDesc {
                owner: unsafe { Bound::from_borrowed_ptr(py, owner.unwrap_or(obj)) }.unbind(),
                slot: match (owner, desc()) {
                    (Some(_), SlotDesc::Item(k)) => SlotDesc::Attr(k),
                    (_, d) => d,
                },
            });
        }
        key
    }
}
