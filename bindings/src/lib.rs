//! `frontrun._engine`: the native half of the Python package.
//!
//! The per-instruction hot path lives here: the tracing backends
//! (`tracer`), reading operands off the frame (`frame`), turning an
//! instruction into accesses (`access`, `codeinfo`), keying objects
//! (`keys`) and the turn-taking between worker threads (`session`). The
//! Python package (`frontrun.dpor`) sets an exploration up and formats its
//! results; it is not called per instruction.

mod access;
mod boundary;
mod codeinfo;
mod coop;
mod dpor_strategy;
mod frame;
mod got_hooks;
mod io_names;
mod keys;
mod native;
mod session;
mod strategy;
mod sync_model;
mod tracer;

use boundary::shield;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use session::{Phase, Shared};
use std::sync::Arc;
use std::time::Duration;

/// `(reason, thread holding the turn, its code object, its offset)`.
type WaitOutcome = (String, Option<usize>, Option<Py<PyAny>>, Option<u32>);
/// `(libc call, resource, statement or "", is_write)`.
type NativeCall = (&'static str, String, String, bool);

fn runtime(e: String) -> PyErr {
    PyRuntimeError::new_err(e)
}

/// Longest wait the session accepts: `frontrun._args.MAX_SECONDS`. Longer
/// ones would overflow the clock arithmetic (`Instant + Duration` panics).
const MAX_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// A number of seconds from Python as a `Duration`, at most [`MAX_WAIT`].
fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    if value.is_nan() || value < 0.0 {
        return Err(PyValueError::new_err(format!(
            "{name} must be a number of seconds >= 0, got {value}"
        )));
    }
    Ok(Duration::try_from_secs_f64(value).map_or(MAX_WAIT, |d| d.min(MAX_WAIT)))
}

/// One exploration: the strategy, the code cache and the turn-taking state.
#[pyclass(module = "frontrun._engine", frozen)]
struct Session {
    shared: Arc<Shared>,
    num_threads: usize,
}

#[pymethods]
impl Session {
    #[new]
    #[pyo3(signature = (num_threads, decide, classify, *, mode="serial", max_branches=100_000, max_executions=None, preemption_bound=None, schedule=None, native=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        num_threads: usize,
        decide: Py<PyAny>,
        classify: Py<PyAny>,
        mode: &str,
        max_branches: u64,
        max_executions: Option<u64>,
        preemption_bound: Option<u32>,
        schedule: Option<Vec<usize>>,
        native: bool,
    ) -> PyResult<Self> {
        shield("Session()", || {
            if num_threads == 0 {
                return Err(PyValueError::new_err("num_threads must be at least 1"));
            }
            // A replay needs the same scheduling points as the exploration it
            // repeats, so it reads the ring too, when it can.
            let native = match mode {
                "dpor" if native => native::attach().map_err(PyRuntimeError::new_err)?,
                "replay" if native => native::attach().ok().flatten(),
                _ => None,
            };
            let strategy: Box<dyn strategy::Strategy> = match mode {
                "serial" => Box::new(strategy::Planned::serial(
                    num_threads,
                    max_executions.unwrap_or(1),
                )),
                "replay" => {
                    let schedule = schedule
                        .ok_or_else(|| PyValueError::new_err("mode='replay' needs a schedule"))?;
                    Box::new(strategy::Planned::replay(num_threads, schedule))
                }
                "dpor" => {
                    let config = frontrun_engine::Config {
                        preemption_bound,
                        max_branches,
                        max_executions,
                    };
                    Box::new(
                        dpor_strategy::Dpor::new(num_threads, config)
                            .map_err(PyValueError::new_err)?,
                    )
                }
                other => return Err(PyValueError::new_err(format!("unknown mode {other:?}"))),
            };
            let shared = Arc::new(Shared::new(
                strategy,
                num_threads,
                max_branches,
                decide,
                classify,
            ));
            native::install(&shared, native, num_threads);
            Ok(Session {
                shared,
                num_threads,
            })
        })
    }

    #[getter]
    fn num_threads(&self) -> usize {
        self.num_threads
    }

    /// Starts an execution; False when nothing is left to explore.
    #[pyo3(signature = (record_descriptions=true))]
    fn begin(&self, py: Python<'_>, record_descriptions: bool) -> PyResult<bool> {
        shield("Session.begin", || {
            self.shared.begin(py, record_descriptions).map_err(runtime)
        })
    }

    /// Numbers these objects first, in this order (see `keys.rs`).
    fn prenumber(&self, py: Python<'_>, objs: &Bound<'_, PyList>) -> PyResult<()> {
        shield("Session.prenumber", || {
            let ptrs: Vec<_> = objs.iter().map(|o| o.as_ptr()).collect();
            self.shared
                .keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .prenumber(py, &ptrs);
            Ok(())
        })
    }

    /// Grants the first step of the execution.
    fn kick(&self) -> PyResult<()> {
        shield("Session.kick", || {
            self.shared.kick();
            Ok(())
        })
    }

    /// Called by worker `tid` in its own thread: installs the tracer and
    /// waits for the first step granted to it.
    fn enter(&self, py: Python<'_>, tid: usize) -> PyResult<()> {
        shield("Session.enter", || session::enter(py, &self.shared, tid))
    }

    /// Called by worker `tid` when it is done (also after an exception).
    fn leave(&self, py: Python<'_>, tid: usize) -> PyResult<()> {
        shield("Session.leave", || {
            session::leave(py, &self.shared, tid);
            Ok(())
        })
    }

    /// Waits for the execution to end. Returns None when every thread
    /// finished, else `(reason, thread, code, offset)` about the thread that
    /// held the turn when the execution was abandoned.
    fn wait(
        &self,
        py: Python<'_>,
        timeout: f64,
        deadlock_timeout: f64,
    ) -> PyResult<Option<WaitOutcome>> {
        let timeout = seconds("timeout", timeout)?;
        let deadlock_timeout = seconds("deadlock_timeout", deadlock_timeout)?;
        shield("Session.wait", || {
            let out = self.shared.wait(py, timeout, deadlock_timeout)?;
            Ok(out.map(|(why, t, seen)| {
                let (code, offset) = match seen {
                    Some((c, o)) => (self.code_object(py, c), Some(o)),
                    None => (None, None),
                };
                (why, t, code, offset)
            }))
        })
    }

    /// Abandons the running execution; parked workers raise ExecutionAborted.
    fn abort(&self, why: String) -> PyResult<()> {
        shield("Session.abort", || {
            self.shared.abort(why);
            Ok(())
        })
    }

    /// Ends the execution and returns what happened in it.
    fn end<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        shield("Session.end", || {
            let (report, phase) = self.shared.end().map_err(runtime)?;
            let filter_error = self
                .shared
                .filter_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(err) = filter_error {
                return Err(err);
            }
            let out = PyDict::new(py);
            out.set_item("schedule", report.schedule)?;
            let races: Vec<_> = report
                .races
                .iter()
                .map(|r| {
                    (
                        r.first_step,
                        r.second_step,
                        r.key,
                        r.first_write,
                        r.second_write,
                    )
                })
                .collect();
            out.set_item("races", races)?;
            out.set_item("deadlock", report.deadlock)?;
            out.set_item(
                "deadlock_detail",
                coop::deadlock_to_py(py, &report.deadlock_detail)?,
            )?;
            out.set_item("engine_aborted", report.aborted)?;
            out.set_item(
                "aborted",
                match phase {
                    Phase::Aborted(why) => Some(why),
                    _ => None,
                },
            )?;
            Ok(out)
        })
    }

    /// The steps of the last execution: `(thread, code, offset, accesses)`
    /// with accesses `(key, is_write)`. Kept until the next `begin`.
    fn steps<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        shield("Session.steps", || {
            let steps_py = PyList::empty(py);
            for s in self.shared.steps() {
                let code = if s.code == 0 {
                    None
                } else {
                    self.code_object(py, s.code)
                };
                let mut accesses = s.accesses;
                for a in &s.native {
                    for &k in &a.keys {
                        if !accesses.contains(&k) {
                            accesses.push(k);
                        }
                    }
                }
                steps_py.append((s.thread, code, s.offset, accesses))?;
            }
            Ok(steps_py)
        })
    }

    /// `(owner, slot_kind, slot)` for a key seen in the last execution:
    /// slot_kind is "attr", "item", "index", "shape", "cell" or "global".
    fn describe<'py>(&self, py: Python<'py>, key: u64) -> PyResult<Option<Bound<'py, PyTuple>>> {
        shield("Session.describe", || {
            if let Some(name) = self.io_name(key) {
                let none = py.None().into_bound(py);
                return Ok(Some(PyTuple::new(
                    py,
                    [
                        none,
                        "io".into_pyobject(py)?.into_any(),
                        name.into_pyobject(py)?.into_any(),
                    ],
                )?));
            }
            let keys = self.shared.keys.lock().unwrap_or_else(|p| p.into_inner());
            let Some(d) = keys.descs.get(&key) else {
                drop(keys);
                return self.describe_native(py, key);
            };
            let owner = d.owner.clone_ref(py).into_bound(py);
            let t = match &d.slot {
                keys::SlotDesc::Attr(n) => PyTuple::new(
                    py,
                    [
                        owner,
                        "attr".into_pyobject(py)?.into_any(),
                        n.bind(py).clone(),
                    ],
                )?,
                keys::SlotDesc::Item(k) => PyTuple::new(
                    py,
                    [
                        owner,
                        "item".into_pyobject(py)?.into_any(),
                        k.bind(py).clone(),
                    ],
                )?,
                keys::SlotDesc::Index(i) => PyTuple::new(
                    py,
                    [
                        owner,
                        "index".into_pyobject(py)?.into_any(),
                        i.into_pyobject(py)?.into_any(),
                    ],
                )?,
                keys::SlotDesc::Shape => PyTuple::new(
                    py,
                    [
                        owner,
                        "shape".into_pyobject(py)?.into_any(),
                        py.None().into_bound(py),
                    ],
                )?,
                keys::SlotDesc::Cell => PyTuple::new(
                    py,
                    [
                        owner,
                        "cell".into_pyobject(py)?.into_any(),
                        py.None().into_bound(py),
                    ],
                )?,
                keys::SlotDesc::Sync => PyTuple::new(
                    py,
                    [
                        owner,
                        "sync".into_pyobject(py)?.into_any(),
                        py.None().into_bound(py),
                    ],
                )?,
                keys::SlotDesc::Global(n) => PyTuple::new(
                    py,
                    [
                        owner,
                        "global".into_pyobject(py)?.into_any(),
                        n.bind(py).clone(),
                    ],
                )?,
            };
            Ok(Some(t))
        })
    }

    /// Cooperative synchronisation of the last execution, in order:
    /// `(step, thread, operation, key)`; `describe(key)` names the object.
    fn sync_steps(&self) -> PyResult<Vec<(usize, usize, &'static str, u64)>> {
        shield("Session.sync_steps", || {
            let mut out = Vec::new();
            for (i, s) in self.shared.steps().iter().enumerate() {
                for &(op, key) in &s.sync {
                    out.push((i, s.thread, op, key));
                }
            }
            Ok(out)
        })
    }

    #[getter]
    fn executions(&self) -> PyResult<u64> {
        shield("Session.executions", || {
            Ok(self.shared.lock().strategy.executions())
        })
    }

    #[getter]
    fn exhausted(&self) -> PyResult<bool> {
        shield("Session.exhausted", || {
            Ok(self.shared.lock().strategy.exhausted())
        })
    }

    /// Whether native events are read (the preload library is loaded and
    /// this exploration is the ring's consumer).
    #[getter]
    fn native_attached(&self) -> PyResult<bool> {
        shield("Session.native_attached", || {
            Ok(self.shared.lock().native.is_some())
        })
    }

    /// Native events attributed to worker threads so far.
    #[getter]
    fn native_events(&self) -> PyResult<u64> {
        shield("Session.native_events", || {
            Ok(self.shared.lock().native.as_ref().map_or(0, |n| n.events))
        })
    }

    /// Times a worker blocked in native code was set aside so that other
    /// workers could run.
    #[getter]
    fn native_waits(&self) -> PyResult<u64> {
        shield("Session.native_waits", || {
            Ok(self.shared.lock().native.as_ref().map_or(0, |n| n.waits))
        })
    }

    /// Servers whose statements the preload library could not read
    /// (`"server: why"`), so their traffic was only seen as a whole.
    #[getter]
    fn unseen_statements(&self) -> Vec<String> {
        self.shared.lock().native.as_ref().map_or(Vec::new(), |n| {
            n.unseen
                .iter()
                .map(|(server, why)| format!("{server}: {why}"))
                .collect()
        })
    }

    /// Native events the ring dropped because it stayed full.
    #[getter]
    fn events_lost(&self) -> PyResult<u64> {
        shield("Session.events_lost", || {
            Ok(self.shared.lock().native.as_ref().map_or(0, |n| n.lost()))
        })
    }

    /// The C-level accesses of each step of the last execution:
    /// `[(libc call, resource, statement or "", is_write), ...]` per step.
    fn native_steps(&self) -> PyResult<Vec<Vec<NativeCall>>> {
        shield("Session.native_steps", || {
            Ok(self
                .shared
                .steps()
                .into_iter()
                .map(|s| {
                    s.native
                        .into_iter()
                        .map(|a| (a.call, a.name, a.label, a.write))
                        .collect()
                })
                .collect())
        })
    }

    /// Releases cached code objects and numbered objects.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        shield("Session.close", || {
            let dropped = self.shared.codes.clear();
            drop(dropped);
            let released = self
                .shared
                .keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            drop(released);
            // Producers go back to passing straight through.
            self.shared.lock().native = None;
            let _ = py;
            Ok(())
        })
    }
}

impl Session {
    fn io_name(&self, key: u64) -> Option<String> {
        let names = self
            .shared
            .io_names
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        names.get(&key).cloned()
    }

    /// `(None, "io", name)` for an I/O key seen in native events.
    fn describe_native<'py>(
        &self,
        py: Python<'py>,
        key: u64,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let st = self.shared.lock();
        let Some(name) = st.native.as_ref().and_then(|n| n.names.get(&key)) else {
            return Ok(None);
        };
        let t = PyTuple::new(
            py,
            [
                py.None().into_bound(py),
                "io".into_pyobject(py)?.into_any(),
                name.into_pyobject(py)?.into_any(),
            ],
        )?;
        Ok(Some(t))
    }

    fn code_object(&self, py: Python<'_>, code: usize) -> Option<Py<PyAny>> {
        let info = self.shared.codes.get(code as *mut pyo3::ffi::PyObject)?;
        Some(info.code.clone_ref(py))
    }
}

/// Captures the type objects and builtins the access classifier recognises
/// by identity. `spec` maps names to objects; see `frontrun/_tables.py`.
#[pyfunction]
fn init_tables(spec: &Bound<'_, PyDict>) -> PyResult<()> {
    shield("init_tables", || {
        let get = |name: &str| -> PyResult<usize> {
            spec.get_item(name)?
                .map(|o| o.as_ptr() as usize)
                .ok_or_else(|| PyValueError::new_err(format!("init_tables: missing {name}")))
        };
        let list_of = |name: &str| -> PyResult<Vec<usize>> {
            let v = spec
                .get_item(name)?
                .ok_or_else(|| PyValueError::new_err(format!("init_tables: missing {name}")))?;
            Ok(v.cast_into::<PyList>()?
                .iter()
                .map(|o| o.as_ptr() as usize)
                .collect())
        };
        let mut builtins = Vec::new();
        if let Some(b) = spec.get_item("builtins")? {
            for item in b.cast_into::<PyList>()?.iter() {
                let (obj, kind): (Bound<'_, PyAny>, String) = item.extract()?;
                let b = access::Builtin::from_name(&kind).ok_or_else(|| {
                    PyValueError::new_err(format!("init_tables: unknown builtin kind {kind}"))
                })?;
                builtins.push((obj.as_ptr() as usize, b));
            }
        }
        let object_hash = unsafe {
            (*std::ptr::addr_of_mut!(pyo3::ffi::PyBaseObject_Type))
                .tp_hash
                .map(|f| f as usize)
                .unwrap_or(0)
        };
        let tables = access::Tables {
            list: get("list")?,
            dict: get("dict")?,
            set: get("set")?,
            bytearray: get("bytearray")?,
            deque: get("deque")?,
            defaultdict: get("defaultdict")?,
            real_lock: get("real_lock")?,
            real_rlock: get("real_rlock")?,
            immutable: list_of("immutable")?,
            module: get("module")?,
            type_type: get("type")?,
            function: get("function")?,
            method: get("method")?,
            cfunction: get("builtin_function_or_method")?,
            method_descriptor: get("method_descriptor")?,
            wrapper_descriptor: get("wrapper_descriptor")?,
            method_wrapper: get("method_wrapper")?,
            cell: get("cell")?,
            list_iter: get("list_iterator")?,
            list_reviter: get("list_reverseiterator")?,
            enumerate: get("enumerate")?,
            dict_keys: get("dict_keys")?,
            dict_values: get("dict_values")?,
            dict_items: get("dict_items")?,
            dict_iters: list_of("dict_iterators")?,
            set_iter: get("set_iterator")?,
            object_hash,
            builtins,
        };
        // The objects named here are builtins that live as long as the
        // interpreter; a second call (same objects) is harmless.
        let _ = access::TABLES.set(tables);
        Ok(())
    })
}

/// A schedule as one line of text (`v1:0,0,1`), for printing and pasting.
#[pyfunction]
fn format_schedule(schedule: Vec<usize>) -> PyResult<String> {
    shield("format_schedule", || {
        Ok(frontrun_engine::format_schedule(&schedule))
    })
}

/// Reads a schedule printed by `format_schedule`.
#[pyfunction]
fn parse_schedule(text: &str) -> PyResult<Vec<usize>> {
    shield("parse_schedule", || {
        frontrun_engine::parse_schedule(text).map_err(|e| PyValueError::new_err(e.to_string()))
    })
}

/// The callable frontrun registers for `sys.monitoring` INSTRUCTION events
/// (3.12+), or None where the settrace backend is used.
#[pyfunction]
fn instruction_callback(py: Python<'_>) -> PyResult<Py<PyAny>> {
    shield("instruction_callback", || tracer::instruction_callback(py))
}

/// How often the static stack depth disagreed with the interpreter's own
/// (3.11 only; always 0 on 3.12+, where the interpreter publishes none).
#[pyfunction]
fn depth_mismatches() -> PyResult<u64> {
    shield("depth_mismatches", || {
        Ok(session::DEPTH_MISMATCHES.load(std::sync::atomic::Ordering::Relaxed))
    })
}

/// 0 when the calling thread is not a worker of a running exploration, 1
/// when it is, 2 when it is and the exploration reads the preload
/// library's events.
#[pyfunction]
fn io_worker() -> PyResult<u8> {
    shield("io_worker", || Ok(session::worker_kind()))
}

/// The calling worker is about to perform I/O on `resources`, a list of
/// `(name, is_write)` with names such as `b"file:/tmp/x"`: takes a step
/// for it, or with `own_step=False` adds the accesses to the step under
/// way (see `session::io_step`). `frame` is where the I/O wrapper was
/// called; a new step is recorded at its innermost traced caller. Returns
/// False, doing nothing, in a thread that is not a worker.
#[pyfunction]
#[pyo3(signature = (resources, frame=None, own_step=true))]
fn io_step(
    py: Python<'_>,
    resources: Vec<(Vec<u8>, bool)>,
    frame: Option<Bound<'_, PyAny>>,
    own_step: bool,
) -> PyResult<bool> {
    shield("io_step", || {
        session::io_step(py, &resources, frame.as_ref(), own_step)
    })
}

/// Starts (`on=True`) or ends a request/answer exchange of the calling
/// worker with a server: meanwhile it keeps the turn (see
/// `session::io_hold`). Does nothing in a thread that is not a worker.
#[pyfunction]
fn io_hold(on: bool) -> PyResult<()> {
    shield("io_hold", || {
        session::io_hold(on);
        Ok(())
    })
}

/// The engine key of a resource name (as the preload library computes it).
#[pyfunction]
fn resource_key(name: Vec<u8>) -> PyResult<u64> {
    shield("resource_key", || Ok(frontrun_ring::resource_key(&name)))
}

/// `socket:<ip>:<port>` / `socket:[<ipv6>]:<port>` for a numeric host, as
/// the preload library names a socket's peer; None for a non-numeric host.
#[pyfunction]
fn inet_socket_name(host: &str, port: u16) -> PyResult<Option<String>> {
    shield("inet_socket_name", || {
        Ok(io_names::inet_socket_name(host, port))
    })
}

/// Called in the child of a `fork` (an `os.register_at_fork` handler): the
/// calling thread leaves the scheduler and the child forgets the parent's
/// ring consumer, so the child runs freely (see `session` and `native`).
#[pyfunction]
fn detach_after_fork() -> PyResult<()> {
    shield("detach_after_fork", || {
        session::forget_worker_after_fork();
        native::forget_after_fork();
        Ok(())
    })
}

/// Panics with `message`, under the same shield as every other entry
/// point: the test of that shield (a panic must arrive as `InternalError`).
#[pyfunction]
fn _selftest_panic(message: &str) -> PyResult<()> {
    shield("_selftest_panic", || panic!("{message}"))
}

/// The native module. Its Python face is described in `_engine.pyi`.
/// Load `library` (libfrontrun_io.so) and redirect the loaded objects'
/// imports of its hooked functions to it (see `got_hooks`). Returns
/// `(objects, slots)` patched so far; raises OSError when it cannot.
#[pyfunction]
fn install_runtime_hooks(library: &str) -> PyResult<(usize, usize)> {
    got_hooks::install(library)
        .map(|done| (done.objects, done.slots))
        .map_err(pyo3::exceptions::PyOSError::new_err)
}

/// GOT slots redirected by `install_runtime_hooks` so far (0: never installed).
#[pyfunction]
fn runtime_hook_slots() -> usize {
    got_hooks::slots_patched()
}

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("BACKEND", tracer::BACKEND)?;
    m.add(
        "ExecutionAborted",
        m.py().get_type::<session::ExecutionAborted>(),
    )?;
    m.add(
        "InternalError",
        m.py().get_type::<boundary::InternalError>(),
    )?;
    boundary::install_hook();
    m.add_class::<Session>()?;
    m.add_function(wrap_pyfunction!(init_tables, m)?)?;
    m.add_function(wrap_pyfunction!(install_runtime_hooks, m)?)?;
    m.add_function(wrap_pyfunction!(runtime_hook_slots, m)?)?;
    m.add_function(wrap_pyfunction!(instruction_callback, m)?)?;
    m.add_function(wrap_pyfunction!(depth_mismatches, m)?)?;
    m.add_function(wrap_pyfunction!(format_schedule, m)?)?;
    m.add_function(wrap_pyfunction!(parse_schedule, m)?)?;
    m.add_function(wrap_pyfunction!(io_worker, m)?)?;
    m.add_function(wrap_pyfunction!(io_step, m)?)?;
    m.add_function(wrap_pyfunction!(io_hold, m)?)?;
    m.add_function(wrap_pyfunction!(resource_key, m)?)?;
    m.add_function(wrap_pyfunction!(inet_socket_name, m)?)?;
    m.add_function(wrap_pyfunction!(_selftest_panic, m)?)?;
    m.add_function(wrap_pyfunction!(detach_after_fork, m)?)?;
    coop::register(m)?;
    Ok(())
}
