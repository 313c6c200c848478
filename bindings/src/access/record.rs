//! The access record the classifier produces: an owner, a slot, what the
//! slot is (for explanations), and whether it writes.

use pyo3::ffi;

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
