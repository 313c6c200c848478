//! The result types the native module returns: frozen records with named,
//! read-only fields instead of dicts and bare tuples.
//!
//! Each record also reads as a tuple of its fields, in the order written
//! here (`len`, indexing, unpacking), like `os.stat_result`: the Python
//! side names the fields, while the report code keeps accepting the
//! hand-made tuples its tests build. Two records are equal when they are of
//! the same type and their fields are equal.

use frontrun_engine::{AccessKind, Deadlock, Race as EngineRace, WaitTarget};
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// The tuple protocol, `__repr__` and `__eq__` of a record, from the list
/// of its fields (read through their getters, so each field's Python value
/// is the one its getter returns).
macro_rules! record {
    ($ty:ident { $($field:ident),+ $(,)? }) => {
        #[pymethods]
        impl $ty {
            fn __len__(&self) -> usize {
                [$(stringify!($field)),+].len()
            }

            fn __getitem__<'py>(slf: &Bound<'py, Self>, index: isize) -> PyResult<Bound<'py, PyAny>> {
                let names = [$(stringify!($field)),+];
                let i = if index < 0 { index + names.len() as isize } else { index };
                match usize::try_from(i).ok().and_then(|i| names.get(i)) {
                    Some(name) => slf.getattr(*name),
                    None => Err(PyIndexError::new_err(concat!(stringify!($ty), " index out of range"))),
                }
            }

            fn __iter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
                Ok(fields(slf, &[$(stringify!($field)),+])?.try_iter()?.into_any())
            }

            fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
                let parts: PyResult<Vec<String>> = [$(stringify!($field)),+]
                    .iter()
                    .map(|name| Ok(format!("{name}={}", slf.getattr(*name)?.repr()?)))
                    .collect();
                Ok(format!(concat!(stringify!($ty), "({})"), parts?.join(", ")))
            }

            fn __eq__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let py = slf.py();
                if !other.is_instance_of::<$ty>() {
                    return Ok(py.NotImplemented().into_bound(py));
                }
                let names = [$(stringify!($field)),+];
                let equal = fields(slf.as_any(), &names)?.eq(fields(other, &names)?)?;
                Ok(pyo3::types::PyBool::new(py, equal).to_owned().into_any())
            }
        }
    };
}

/// The fields `names` of `obj` as a tuple.
fn fields<'py>(obj: &Bound<'py, PyAny>, names: &[&str]) -> PyResult<Bound<'py, PyTuple>> {
    let values: PyResult<Vec<_>> = names.iter().map(|n| obj.getattr(*n)).collect();
    PyTuple::new(obj.py(), values?)
}

/// Two steps of an execution that race: their accesses to `key` are not
/// ordered by happens-before.
#[pyclass(module = "frontrun._engine", frozen, get_all)]
#[derive(Clone)]
pub struct Race {
    pub first_step: usize,
    pub second_step: usize,
    pub key: u64,
    pub first_writes: bool,
    pub second_writes: bool,
}
record!(Race {
    first_step,
    second_step,
    key,
    first_writes,
    second_writes
});

impl From<&EngineRace> for Race {
    fn from(r: &EngineRace) -> Self {
        Race {
            first_step: r.first.step,
            second_step: r.second.step,
            key: r.first.key,
            first_writes: r.first.kind == AccessKind::Write,
            second_writes: r.second.kind == AccessKind::Write,
        }
    }
}

/// One blocked thread of a deadlock: the locks it holds (keys, in
/// acquisition order) and what it waits for: `waits` is "lock", "object"
/// (key in `target`), "thread" (thread number in `target`) or "spawn"
/// (`target` 0).
#[pyclass(module = "frontrun._engine", frozen, get_all)]
#[derive(Clone)]
pub struct BlockedThread {
    pub thread: usize,
    pub holds: Vec<u64>,
    pub waits: &'static str,
    pub target: u64,
}
record!(BlockedThread {
    thread,
    holds,
    waits,
    target
});

/// No thread could run while some had not finished: the wait-for `cycle`
/// (empty when there is none) and every `blocked` thread.
#[pyclass(module = "frontrun._engine", frozen, get_all)]
#[derive(Clone)]
pub struct DeadlockDetail {
    pub cycle: Vec<BlockedThread>,
    pub blocked: Vec<BlockedThread>,
}
record!(DeadlockDetail { cycle, blocked });

impl From<&Deadlock> for DeadlockDetail {
    fn from(d: &Deadlock) -> Self {
        let edges = |edges: &[frontrun_engine::WaitEdge]| {
            edges
                .iter()
                .map(|w| {
                    let (waits, target) = match w.waits_for {
                        WaitTarget::Lock(k) => ("lock", k),
                        WaitTarget::Object(k) => ("object", k),
                        WaitTarget::Thread(t) => ("thread", t as u64),
                        WaitTarget::Spawn => ("spawn", 0),
                    };
                    BlockedThread {
                        thread: w.thread,
                        holds: w.holds.clone(),
                        waits,
                        target,
                    }
                })
                .collect()
        };
        DeadlockDetail {
            cycle: edges(&d.cycle),
            blocked: edges(&d.blocked),
        }
    }
}

/// What `Session.end()` says about the execution that ended.
#[pyclass(module = "frontrun._engine", frozen, get_all)]
pub struct ExecutionEnd {
    /// The thread that took each step.
    pub schedule: Vec<usize>,
    pub races: Vec<Race>,
    /// The threads of a deadlock: the wait-for cycle, or every blocked
    /// thread when there is none.
    pub deadlock: Option<Vec<usize>>,
    pub deadlock_detail: Option<DeadlockDetail>,
    /// Why the explorer cut the execution short, if it did.
    pub engine_aborted: Option<String>,
    /// Why the session abandoned the execution, if it did.
    pub aborted: Option<String>,
}
record!(ExecutionEnd {
    schedule,
    races,
    deadlock,
    deadlock_detail,
    engine_aborted,
    aborted
});

/// Why `Session.wait()` gave up on an execution, and the thread that held
/// the turn then (with the code object and offset it was last seen at).
#[pyclass(module = "frontrun._engine", frozen, get_all)]
pub struct Abandoned {
    pub reason: String,
    pub thread: Option<usize>,
    pub code: Option<Py<PyAny>>,
    pub offset: Option<u32>,
}
record!(Abandoned {
    reason,
    thread,
    code,
    offset
});

/// One access of a step: the key and whether it wrote.
#[pyclass(module = "frontrun._engine", frozen, get_all)]
#[derive(Clone)]
pub struct Access {
    pub key: u64,
    pub is_write: bool,
}
record!(Access { key, is_write });

/// One step of the last execution: the thread, where it was (code object
/// or None, instruction offset) and its accesses.
#[pyclass(module = "frontrun._engine", frozen, get_all)]
pub struct Step {
    pub thread: usize,
    pub code: Option<Py<PyAny>>,
    pub offset: u32,
    pub accesses: Vec<Access>,
}
record!(Step {
    thread,
    code,
    offset,
    accesses
});

/// What a key stands for: `kind` is "attr", "item", "index", "shape",
/// "cell", "sync", "global" (slot of `owner`) or "io" (owner None, `slot`
/// the resource's name).
#[pyclass(module = "frontrun._engine", frozen, get_all)]
pub struct KeyDescription {
    pub owner: Py<PyAny>,
    pub kind: &'static str,
    pub slot: Py<PyAny>,
}
record!(KeyDescription { owner, kind, slot });

/// One cooperative synchronisation operation of the last execution.
#[pyclass(module = "frontrun._engine", frozen, get_all)]
pub struct SyncStep {
    pub step: usize,
    pub thread: usize,
    pub op: &'static str,
    pub key: u64,
}
record!(SyncStep {
    step,
    thread,
    op,
    key
});

/// One C-level access of a step: the libc call, the resource, the
/// statement ("" when none) and whether it wrote.
#[pyclass(module = "frontrun._engine", frozen, get_all)]
pub struct NativeCall {
    pub call: &'static str,
    pub resource: String,
    pub statement: String,
    pub is_write: bool,
}
record!(NativeCall {
    call,
    resource,
    statement,
    is_write
});

/// What `install_runtime_hooks` has patched so far.
#[pyclass(module = "frontrun._engine", frozen, get_all)]
pub struct RuntimeHooks {
    pub objects: usize,
    pub slots: usize,
}
record!(RuntimeHooks { objects, slots });

/// Adds the result types to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Abandoned>()?;
    m.add_class::<Access>()?;
    m.add_class::<BlockedThread>()?;
    m.add_class::<DeadlockDetail>()?;
    m.add_class::<ExecutionEnd>()?;
    m.add_class::<KeyDescription>()?;
    m.add_class::<NativeCall>()?;
    m.add_class::<Race>()?;
    m.add_class::<RuntimeHooks>()?;
    m.add_class::<Step>()?;
    m.add_class::<SyncStep>()?;
    Ok(())
}
