//! `frontrun._engine.Session`: the Python face of one exploration.

use super::results::{
    Abandoned, Access, DeadlockDetail, ExecutionEnd, KeyDescription, NativeCall, Race, Step,
    SyncStep,
};
use crate::boundary::shield;
use crate::session::{self, Phase, Shared};
use crate::{keys, mode, native, tracer};
use frontrun_engine::Deadlock;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::sync::Arc;
use std::time::Duration;

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
pub(super) struct Session {
    shared: Arc<Shared>,
    num_threads: usize,
}

impl Session {
    /// The exploration's state, for the event loop's calls (`tasks.rs`).
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn build(
        mode: mode::Mode,
        num_threads: usize,
        decide: Py<PyAny>,
        classify: Py<PyAny>,
        max_branches: u64,
        max_executions: Option<u64>,
        native: bool,
    ) -> PyResult<Self> {
        if num_threads == 0 {
            return Err(PyValueError::new_err("num_threads must be at least 1"));
        }
        let native = match mode.ring() {
            mode::RingUse::Required if native => {
                native::attach(session::mutex_gate).map_err(PyRuntimeError::new_err)?
            }
            mode::RingUse::IfLoaded if native => native::attach(session::mutex_gate).ok().flatten(),
            _ => None,
        };
        let shared = Arc::new(Shared::new(
            mode,
            num_threads,
            max_branches,
            max_executions,
            decide,
            classify,
        )?);
        shared.attach_native(native, num_threads);
        Ok(Session {
            shared,
            num_threads,
        })
    }
}

#[pymethods]
impl Session {
    /// A search of every distinct interleaving: optimal DPOR, or within
    /// `preemption_bound` preemptions. Reads the preload library's ring
    /// when `native` (an error if the library is loaded but its ring
    /// cannot be used).
    #[staticmethod]
    #[pyo3(signature = (num_threads, decide, classify, *, max_branches=100_000, max_executions=None, preemption_bound=None, native=true))]
    fn search(
        num_threads: usize,
        decide: Py<PyAny>,
        classify: Py<PyAny>,
        max_branches: u64,
        max_executions: Option<u64>,
        preemption_bound: Option<u32>,
        native: bool,
    ) -> PyResult<Self> {
        shield("Session.search", || {
            let mode = match preemption_bound {
                Some(preemptions) => mode::Mode::Bounded { preemptions },
                None => mode::Mode::Optimal,
            };
            Session::build(
                mode,
                num_threads,
                decide,
                classify,
                max_branches,
                max_executions,
                native,
            )
        })
    }

    /// One run that follows `schedule` (then the explorer's default
    /// choices). Reads the ring when the library is loaded and `native`.
    #[staticmethod]
    #[pyo3(signature = (num_threads, decide, classify, schedule, *, max_branches=100_000, native=true))]
    fn replay(
        num_threads: usize,
        decide: Py<PyAny>,
        classify: Py<PyAny>,
        schedule: Vec<usize>,
        max_branches: u64,
        native: bool,
    ) -> PyResult<Self> {
        shield("Session.replay", || {
            let mode = mode::Mode::Replay { schedule };
            Session::build(
                mode,
                num_threads,
                decide,
                classify,
                max_branches,
                None,
                native,
            )
        })
    }

    /// `runs` runs, each thread to its end (or until it blocks) before the
    /// next; no ring.
    #[staticmethod]
    #[pyo3(signature = (num_threads, decide, classify, *, runs=1))]
    fn serial(
        num_threads: usize,
        decide: Py<PyAny>,
        classify: Py<PyAny>,
        runs: u64,
    ) -> PyResult<Self> {
        shield("Session.serial", || {
            let mode = mode::Mode::Serial { runs };
            Session::build(mode, num_threads, decide, classify, 100_000, None, false)
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
            Ok(self.shared.begin(py, record_descriptions)?)
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
        shield("Session.enter", || {
            let generation = session::enter(&self.shared, tid)?;
            tracer::install_for_thread();
            Ok(session::wait_first_step(py, &self.shared, tid, generation)?)
        })
    }

    /// The ids from `first` on are spare: each starts only when a worker
    /// starts a thread on it (`spawn`). Called after `begin`, before `kick`.
    fn expect_spawns(&self, first: usize) -> PyResult<()> {
        shield("Session.expect_spawns", || {
            Ok(session::expect_spawns(&self.shared, first)?)
        })
    }

    /// Called by a worker, in its step, that starts a thread which will
    /// work as `child`. Returns the generation the new thread passes to
    /// `enter_spawned`, or None when the execution was given up (the new
    /// thread then runs free).
    fn spawn(&self, child: usize) -> PyResult<Option<u64>> {
        shield("Session.spawn", || {
            Ok(session::thread_spawn(&self.shared, child)?)
        })
    }

    /// Called by a thread a worker started, in that thread: `enter` as
    /// worker `tid` of the execution `generation` (`spawn`'s answer).
    fn enter_spawned(&self, py: Python<'_>, tid: usize, generation: u64) -> PyResult<()> {
        shield("Session.enter_spawned", || {
            let generation = session::enter_spawned(&self.shared, tid, generation)?;
            tracer::install_for_thread();
            Ok(session::wait_first_step(py, &self.shared, tid, generation)?)
        })
    }

    /// Called by worker `tid` when it is done (also after an exception).
    fn leave(&self, py: Python<'_>, tid: usize) -> PyResult<()> {
        shield("Session.leave", || {
            if !tracer::uninstall_for_thread() {
                // sys.settrace in the worker (pdb, a profiler) took the
                // events: what the thread did from then on is not in the
                // execution.
                self.shared.abort(format!(
                    "thread {tid} replaced frontrun's trace function (sys.settrace: a debugger or profiler \
                     started in the worker), so its steps after that were not seen"
                ));
            }
            session::leave(py, &self.shared, tid);
            Ok(())
        })
    }

    /// Waits for the execution to end. Returns None when every thread
    /// finished, else why the execution was abandoned and where the thread
    /// that held the turn then was.
    fn wait(
        &self,
        py: Python<'_>,
        timeout: f64,
        deadlock_timeout: f64,
    ) -> PyResult<Option<Abandoned>> {
        let timeout = seconds("timeout", timeout)?;
        let deadlock_timeout = seconds("deadlock_timeout", deadlock_timeout)?;
        shield("Session.wait", || {
            let out = self.shared.wait(py, timeout, deadlock_timeout)?;
            Ok(out.map(|(reason, thread, seen)| {
                let (code, offset) = match seen {
                    Some((c, o)) => (self.code_object(py, c), Some(o)),
                    None => (None, None),
                };
                Abandoned {
                    reason,
                    thread,
                    code,
                    offset,
                }
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
    fn end(&self) -> PyResult<ExecutionEnd> {
        shield("Session.end", || {
            let (report, phase) = self.shared.end()?;
            let filter_error = self
                .shared
                .filter_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(err) = filter_error {
                return Err(err);
            }
            Ok(ExecutionEnd {
                races: report.races.iter().map(Race::from).collect(),
                deadlock: report.deadlock.as_ref().map(deadlock_threads),
                deadlock_detail: report.deadlock.as_ref().map(DeadlockDetail::from),
                engine_aborted: report.aborted.map(|a| a.to_string()),
                aborted: match phase {
                    Phase::Aborted(why) => Some(why),
                    _ => None,
                },
                schedule: report.schedule,
            })
        })
    }

    /// The steps of the last execution, kept until the next `begin`.
    fn steps(&self, py: Python<'_>) -> PyResult<Vec<Step>> {
        shield("Session.steps", || {
            let mut out = Vec::new();
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
                out.push(Step {
                    thread: s.thread,
                    code,
                    offset: s.offset,
                    accesses: accesses
                        .into_iter()
                        .map(|(key, is_write)| Access { key, is_write })
                        .collect(),
                });
            }
            Ok(out)
        })
    }

    /// What a key seen in the last execution stands for (None when it is
    /// not known).
    fn describe(&self, py: Python<'_>, key: u64) -> PyResult<Option<KeyDescription>> {
        shield("Session.describe", || {
            if let Some(name) = self.io_name(key) {
                return Ok(Some(io_description(py, name)?));
            }
            let keys = self.shared.keys.lock().unwrap_or_else(|p| p.into_inner());
            let Some(d) = keys.descs.get(&key) else {
                drop(keys);
                return self.describe_native(py, key);
            };
            let (kind, slot) = match &d.slot {
                keys::SlotDesc::Attr(n) => ("attr", n.clone_ref(py)),
                keys::SlotDesc::Item(k) => ("item", k.clone_ref(py)),
                keys::SlotDesc::Index(i) => ("index", i.into_pyobject(py)?.into_any().unbind()),
                keys::SlotDesc::Shape => ("shape", py.None()),
                keys::SlotDesc::Cell => ("cell", py.None()),
                keys::SlotDesc::Sync => ("sync", py.None()),
                keys::SlotDesc::Global(n) => ("global", n.clone_ref(py)),
            };
            Ok(Some(KeyDescription {
                owner: d.owner.clone_ref(py),
                kind,
                slot,
            }))
        })
    }

    /// Cooperative synchronisation of the last execution, in order;
    /// `describe(key)` names the object.
    fn sync_steps(&self) -> PyResult<Vec<SyncStep>> {
        shield("Session.sync_steps", || {
            let mut out = Vec::new();
            for (i, s) in self.shared.steps().iter().enumerate() {
                for &(op, key) in &s.sync {
                    out.push(SyncStep {
                        step: i,
                        thread: s.thread,
                        op,
                        key,
                    });
                }
            }
            Ok(out)
        })
    }

    #[getter]
    fn executions(&self) -> PyResult<u64> {
        shield("Session.executions", || Ok(self.shared.lock().executions))
    }

    #[getter]
    fn exhausted(&self) -> PyResult<bool> {
        shield("Session.exhausted", || Ok(self.shared.lock().exhausted()))
    }

    /// Whether the search ended having explored every trace (under a
    /// preemption bound: the unbounded search finished first).
    #[getter]
    fn complete(&self) -> PyResult<bool> {
        shield("Session.complete", || {
            let st = self.shared.lock();
            Ok(st.exhausted() && st.explorer.complete())
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

    /// Call sites of the threads native code started in the last execution
    /// that were still running when their worker ended: what they did
    /// after that was not seen.
    #[getter]
    fn native_threads_unfinished(&self) -> Vec<String> {
        self.shared
            .lock()
            .native
            .as_ref()
            .map_or(Vec::new(), |n| n.spawned.unfinished.clone())
    }

    /// Native events the ring dropped because it stayed full.
    #[getter]
    fn events_lost(&self) -> PyResult<u64> {
        shield("Session.events_lost", || {
            Ok(self.shared.lock().native.as_ref().map_or(0, |n| n.lost()))
        })
    }

    /// The C-level accesses of each step of the last execution.
    fn native_steps(&self) -> PyResult<Vec<Vec<NativeCall>>> {
        shield("Session.native_steps", || {
            Ok(self
                .shared
                .steps()
                .into_iter()
                .map(|s| {
                    s.native
                        .into_iter()
                        .map(|a| NativeCall {
                            call: a.call,
                            resource: a.name,
                            statement: a.label,
                            is_write: a.write,
                        })
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

/// An I/O resource's key: no owner, kind "io", the resource's name.
fn io_description(py: Python<'_>, name: String) -> PyResult<KeyDescription> {
    Ok(KeyDescription {
        owner: py.None(),
        kind: "io",
        slot: name.into_pyobject(py)?.into_any().unbind(),
    })
}

/// Threads of a deadlock, as `Session.end().deadlock` lists them: the
/// wait-for cycle, or every blocked thread when there is none.
fn deadlock_threads(d: &Deadlock) -> Vec<usize> {
    let edges = if d.cycle.is_empty() {
        &d.blocked
    } else {
        &d.cycle
    };
    edges.iter().map(|e| e.thread).collect()
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

    /// The description of an I/O key seen in native events.
    fn describe_native(&self, py: Python<'_>, key: u64) -> PyResult<Option<KeyDescription>> {
        let st = self.shared.lock();
        let Some(name) = st.native.as_ref().and_then(|n| n.names.get(&key)) else {
            return Ok(None);
        };
        Ok(Some(io_description(py, name.clone())?))
    }

    fn code_object(&self, py: Python<'_>, code: usize) -> Option<Py<PyAny>> {
        let info = self.shared.codes.get(code as *mut pyo3::ffi::PyObject)?;
        Some(info.code.clone_ref(py))
    }
}
