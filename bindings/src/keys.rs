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
//! 2. Any other object is numbered when a worker first meets it, from that
//!    worker's own count: "the k-th object thread t met that nobody had
//!    numbered before it". A global first-access counter would not do: two
//!    executions that order independent steps differently (thread 0 builds
//!    a kwargs dict, thread 1 a bound method) would give the same objects
//!    different numbers, and an event DPOR recorded in one execution (in a
//!    sleep set or a wakeup tree) would not match the same event in the
//!    next, so the search would stop early believing everything explored.
//!    A thread's own sequence of first meetings depends only on what that
//!    thread did, so the numbers agree across such executions. Each thread
//!    counts every object it meets for the first time, also those another
//!    thread numbered already, so that which thread got to a shared object
//!    first does not shift the numbers of everything it meets afterwards.
//!    The one case left: a new object that two threads first meet through
//!    independent steps (two reads) is numbered by whichever came first, so
//!    its number differs between those two orders; the explorer then sees
//!    a replayed prefix diverge, and the result says the exploration was
//!    not conclusive rather than claiming it complete.
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

pub use frontrun_engine::FastMap;

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

/// Numbers of objects met by workers carry this bit, the worker in bits
/// 40..46 and the worker's own count below (see the module docs).
const MET_BY_WORKER: u64 = 1 << 62;

#[derive(Clone, Copy)]
struct Numbered {
    number: u64,
    /// Bit t: worker t has met this object (only for numbers given by
    /// workers; the others never advance a worker's count).
    met_by: u64,
}

/// Per-execution numbering of objects.
#[derive(Default)]
pub struct KeyTable {
    numbers: FastMap<usize, Numbered>,
    /// Per worker: how many objects it has met for the first time.
    met: Vec<u64>,
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
        self.met.clear();
        self.next = 1;
        (
            std::mem::take(&mut self.keep),
            std::mem::take(&mut self.descs),
        )
    }

    /// Numbers `objs` in order, before any thread runs.
    pub fn prenumber(&mut self, py: Python<'_>, objs: &[*mut ffi::PyObject]) {
        for &o in objs {
            self.number(py, o, None);
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
        let entry = Numbered {
            number: n,
            met_by: 0,
        };
        if self.numbers.insert(obj as usize, entry).is_none() {
            self.keep
                .push(unsafe { Bound::from_borrowed_ptr(py, obj) }.unbind());
        }
    }

    /// The number of `obj`, as met by worker `by` (None: before the workers
    /// start, in breadth-first order).
    pub fn number(&mut self, py: Python<'_>, obj: *mut ffi::PyObject, by: Option<usize>) -> u64 {
        let obj = self
            .aliases
            .get(&(obj as usize))
            .map(|&o| o as *mut ffi::PyObject)
            .unwrap_or(obj);
        // MAX_THREADS is 64, so a worker is one bit of `met_by`.
        let bit = by.map_or(0, |t| 1u64 << (t & 63));
        if let Some(entry) = self.numbers.get_mut(&(obj as usize)) {
            let number = entry.number;
            if number & MET_BY_WORKER != 0 && entry.met_by & bit == 0 {
                entry.met_by |= bit;
                if let Some(t) = by {
                    self.count_meeting(t);
                }
            }
            return number;
        }
        let number = match by {
            None => {
                self.next += 1;
                self.next - 1
            }
            Some(t) => MET_BY_WORKER | ((t as u64 & 63) << 40) | self.count_meeting(t),
        };
        self.numbers.insert(
            obj as usize,
            Numbered {
                number,
                met_by: bit,
            },
        );
        self.keep
            .push(unsafe { Bound::from_borrowed_ptr(py, obj) }.unbind());
        number
    }

    /// Counts a first meeting of worker `t`; returns the count before it.
    fn count_meeting(&mut self, t: usize) -> u64 {
        if self.met.len() <= t {
            self.met.resize(t + 1, 0);
        }
        self.met[t] += 1;
        self.met[t] - 1
    }

    /// The key of `slot` in `obj`, recording a description the first time.
    pub fn key(
        &mut self,
        py: Python<'_>,
        obj: *mut ffi::PyObject,
        by: Option<usize>,
        slot: u64,
        desc: impl FnOnce() -> SlotDesc,
    ) -> u64 {
        let n = self.number(py, obj, by);
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
