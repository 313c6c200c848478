//! What we know about a code object: whether it is traced, and which of its
//! instructions can touch shared state. Computed once (by
//! `frontrun._opcodes.classify`) and then looked up by offset.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use std::sync::{Arc, Mutex};

/// Kinds of visible instructions. The numbers are defined here only:
/// `frontrun/_opcodes.py` reads them from `_engine.OPKINDS` (`NAMED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OpKind {
    None = 0,
    LoadAttr = 1,
    StoreAttr = 2,
    DeleteAttr = 3,
    SubscrRead = 4,
    SubscrWrite = 5,
    SubscrDelete = 6,
    SliceRead = 7,
    SliceWrite = 8,
    GlobalRead = 9,
    GlobalWrite = 10,
    DerefRead = 11,
    DerefWrite = 12,
    Call = 13,
    CallKw = 14,
    CallEx = 15,
    GetIter = 16,
    ForIter = 17,
    Contains = 18,
    Inplace = 19,
    ReadAll = 20,
    CallPlain = 21,
    CallPlainKw = 22,
    Truth = 23,
    ReadBoth = 24,
    ReadAll1 = 25,
    /// `with x:` about to call `x.__enter__()`.
    Enter = 26,
}

impl OpKind {
    /// Every kind with the name the Python side uses for it
    /// (`frontrun._opcodes`, through `_engine.OPKINDS`): the numbers are
    /// defined here only.
    pub const NAMED: [(&'static str, OpKind); 26] = [
        ("LOAD_ATTR", OpKind::LoadAttr),
        ("STORE_ATTR", OpKind::StoreAttr),
        ("DELETE_ATTR", OpKind::DeleteAttr),
        ("SUBSCR_READ", OpKind::SubscrRead),
        ("SUBSCR_WRITE", OpKind::SubscrWrite),
        ("SUBSCR_DELETE", OpKind::SubscrDelete),
        ("SLICE_READ", OpKind::SliceRead),
        ("SLICE_WRITE", OpKind::SliceWrite),
        ("GLOBAL_READ", OpKind::GlobalRead),
        ("GLOBAL_WRITE", OpKind::GlobalWrite),
        ("DEREF_READ", OpKind::DerefRead),
        ("DEREF_WRITE", OpKind::DerefWrite),
        ("CALL", OpKind::Call),
        ("CALL_KW", OpKind::CallKw),
        ("CALL_EX", OpKind::CallEx),
        ("GET_ITER", OpKind::GetIter),
        ("FOR_ITER", OpKind::ForIter),
        ("CONTAINS", OpKind::Contains),
        ("INPLACE", OpKind::Inplace),
        ("READ_ALL", OpKind::ReadAll),
        ("CALL_PLAIN", OpKind::CallPlain),
        ("CALL_PLAIN_KW", OpKind::CallPlainKw),
        ("TRUTH", OpKind::Truth),
        ("READ_BOTH", OpKind::ReadBoth),
        ("READ_ALL_1", OpKind::ReadAll1),
        ("ENTER", OpKind::Enter),
    ];

    /// A call: native code it runs may do I/O (see `Shared::native_calls`).
    pub fn is_call(self) -> bool {
        matches!(
            self,
            OpKind::Call
                | OpKind::CallKw
                | OpKind::CallEx
                | OpKind::CallPlain
                | OpKind::CallPlainKw
        )
    }

    fn from_u8(v: u8) -> OpKind {
        match v {
            1 => OpKind::LoadAttr,
            2 => OpKind::StoreAttr,
            3 => OpKind::DeleteAttr,
            4 => OpKind::SubscrRead,
            5 => OpKind::SubscrWrite,
            6 => OpKind::SubscrDelete,
            7 => OpKind::SliceRead,
            8 => OpKind::SliceWrite,
            9 => OpKind::GlobalRead,
            10 => OpKind::GlobalWrite,
            11 => OpKind::DerefRead,
            12 => OpKind::DerefWrite,
            13 => OpKind::Call,
            14 => OpKind::CallKw,
            15 => OpKind::CallEx,
            16 => OpKind::GetIter,
            17 => OpKind::ForIter,
            18 => OpKind::Contains,
            19 => OpKind::Inplace,
            20 => OpKind::ReadAll,
            21 => OpKind::CallPlain,
            22 => OpKind::CallPlainKw,
            23 => OpKind::Truth,
            24 => OpKind::ReadBoth,
            25 => OpKind::ReadAll1,
            26 => OpKind::Enter,
            _ => OpKind::None,
        }
    }
}

/// One instruction slot. `name` is borrowed from `CodeInfo::names`.
#[derive(Clone, Copy)]
pub struct Op {
    pub kind: OpKind,
    pub arg: u32,
    /// Stack depth before the instruction (above the fast locals).
    pub depth: u32,
    pub name: *mut pyo3::ffi::PyObject,
    /// The name is `__dict__` (the load creates an alias of the owner).
    pub dunder_dict: bool,
}

const NO_OP: Op = Op {
    kind: OpKind::None,
    arg: 0,
    depth: 0,
    name: std::ptr::null_mut(),
    dunder_dict: false,
};

pub struct CodeInfo {
    pub traced: bool,
    /// Fast-local slots below the value stack.
    pub nlocalsplus: u32,
    /// Indexed by instruction offset / 2 (one slot per code unit).
    ops: Box<[Op]>,
    /// Keeps the code object alive, so its address is never reused while
    /// the cache holds this entry.
    pub code: Py<PyAny>,
    _names: Vec<Py<PyString>>,
}

// The raw name pointers are owned by `_names`; CodeInfo is only read with
// the GIL held.
unsafe impl Send for CodeInfo {}
unsafe impl Sync for CodeInfo {}

impl CodeInfo {
    #[inline]
    pub fn op_at(&self, offset: usize) -> Op {
        self.ops.get(offset / 2).copied().unwrap_or(NO_OP)
    }

    pub fn untraced(code: Py<PyAny>) -> CodeInfo {
        CodeInfo {
            traced: false,
            nlocalsplus: 0,
            ops: Box::new([]),
            code,
            _names: Vec::new(),
        }
    }

    /// Builds the table from `classify(code)`: `(nlocalsplus, rows)` with
    /// rows `(offset, kind, arg, name, depth)`.
    pub fn traced(
        code: Bound<'_, PyAny>,
        nlocalsplus: u32,
        rows: &Bound<'_, PyList>,
    ) -> PyResult<CodeInfo> {
        let mut max_offset = 0usize;
        let mut parsed = Vec::with_capacity(rows.len());
        let mut names = Vec::new();
        for row in rows.iter() {
            let row = row.cast_into::<PyTuple>()?;
            let offset: usize = row.get_item(0)?.extract()?;
            let kind: u8 = row.get_item(1)?.extract()?;
            let arg: u32 = row.get_item(2)?.extract()?;
            let name_obj = row.get_item(3)?;
            let depth: u32 = row.get_item(4)?.extract()?;
            let mut dunder_dict = false;
            let name = if name_obj.is_none() {
                std::ptr::null_mut()
            } else {
                let s = name_obj.cast_into::<PyString>()?;
                dunder_dict = s.to_str()? == "__dict__";
                let ptr = s.as_ptr();
                names.push(s.unbind());
                ptr
            };
            max_offset = max_offset.max(offset);
            parsed.push((
                offset,
                Op {
                    kind: OpKind::from_u8(kind),
                    arg,
                    depth,
                    name,
                    dunder_dict,
                },
            ));
        }
        let mut ops = vec![NO_OP; max_offset / 2 + 1];
        for (offset, op) in parsed {
            ops[offset / 2] = op;
        }
        Ok(CodeInfo {
            traced: true,
            nlocalsplus,
            ops: ops.into_boxed_slice(),
            code: code.unbind(),
            _names: names,
        })
    }
}

/// Decisions per code object for one exploration.
#[derive(Default)]
pub struct CodeCache {
    map: Mutex<crate::keys::FastMap<usize, Arc<CodeInfo>>>,
}

impl CodeCache {
    pub fn get(&self, code: *mut pyo3::ffi::PyObject) -> Option<Arc<CodeInfo>> {
        self.map.lock().unwrap().get(&(code as usize)).cloned()
    }

    pub fn insert(&self, code: *mut pyo3::ffi::PyObject, info: Arc<CodeInfo>) {
        self.map.lock().unwrap().insert(code as usize, info);
    }

    /// Drops every entry; call with the GIL held (entries own references).
    pub fn clear(&self) -> Vec<Arc<CodeInfo>> {
        self.map.lock().unwrap().drain().map(|(_, v)| v).collect()
    }
}
