//! Turn-taking between the worker threads of one exploration.
//!
//! Exactly one worker runs traced code at a time: the one holding the turn.
//! At each visible instruction the holder asks the strategy who performs the
//! next step. If it is itself, it reports the instruction's accesses and
//! runs it, keeping the turn; otherwise it grants the step to the chosen
//! thread and parks (GIL released) until a step is granted back. A thread
//! woken with a grant reports the accesses of the instruction it was parked
//! at (or, fresh from the start, of its first visible instruction), so the
//! engine sees accesses in the order they really happen.

use crate::access::{self, RawAccess, Seed, Slot, TABLES};
use crate::codeinfo::{CodeCache, CodeInfo};
use crate::frame::Frame;
use crate::keys::{KeyTable, SlotDesc};
use crate::strategy::{Report, Strategy, ThreadId};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pyo3::create_exception!(
    _engine,
    ExecutionAborted,
    pyo3::exceptions::PyBaseException,
    "Raised inside a worker thread when its execution was abandoned (timeout, deadlock, or an engine error)."
);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Running,
    Done,
    Aborted(String),
}

/// How often the main thread, waiting for an execution, lets Python handle
/// signals (KeyboardInterrupt).
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Why an execution was abandoned, which thread held the turn, and where
/// that thread was last seen (code, offset).
pub type Abandoned = (String, Option<ThreadId>, Option<(usize, u32)>);

/// One step as it happened: who, where, and which accesses.
#[derive(Clone, Debug)]
pub struct StepRecord {
    pub thread: ThreadId,
    pub code: usize,
    pub offset: u32,
    pub accesses: Vec<(u64, bool)>,
    /// Cooperative synchronisation done in this step: (operation, key).
    pub sync: Vec<(&'static str, u64)>,
    /// C-level accesses seen in this step (libfrontrun_io.so).
    pub native: Vec<crate::native::NativeAccess>,
}

pub struct State {
    pub strategy: Box<dyn Strategy>,
    pub generation: u64,
    pub phase: Phase,
    pub(crate) num_threads: usize,
    /// Thread holding the turn.
    pub(crate) current: Option<ThreadId>,
    /// `granted[t]`: a step was assigned to `t` and not yet consumed.
    pub(crate) granted: Vec<bool>,
    /// Index in `steps` of the step granted to each thread.
    pub(crate) pending_step: Vec<Option<usize>>,
    /// `holding[t]`: `t` is in a request/answer exchange with a server
    /// (`io_hold`) and keeps the turn: its instructions join its step.
    holding: Vec<bool>,
    pub(crate) finished: Vec<bool>,
    /// The native event ring, when the preload library is loaded.
    pub native: Option<crate::native::Native>,
    /// `off_turn[t]`: `t` was set aside while blocked in native code and
    /// has not been granted a step since; it must wait for one.
    pub(crate) off_turn: Vec<bool>,
    /// No thread could run but some wait in native code: the next step is
    /// granted when one of them returns (see `native.rs`).
    pub(crate) awaiting_native: bool,
    pub steps: Vec<StepRecord>,
    /// Last visible instruction of each thread: (code, offset).
    pub last_seen: Vec<Option<(usize, u32)>>,
    /// Bumped at every step and finish; the main thread watches it to spot
    /// a thread that holds the turn without reaching a scheduling point.
    pub(crate) progress: u64,
    pub max_steps: u64,
    /// Threads parked in a cooperative primitive (see `coop.rs`).
    pub blocked: Vec<Option<crate::coop::Blocked>>,
    /// Threads whose timed wait was ended by a modelled timeout.
    pub timed_out: Vec<bool>,
    /// Lock holders and waits, to see a lock-ordering cycle the moment it
    /// closes (the strategy only sees deadlocks once no thread can run).
    pub sync: crate::sync_model::SyncModel,
    /// The cycle that ended this execution early.
    pub lock_cycle: Option<crate::sync_model::DeadlockDetail>,
}

impl State {
    /// Modelled timeouts: when every unfinished thread is blocked and some
    /// of them in a timed wait, the lowest such thread times out (its wait
    /// returns as timed out). A timed wait therefore only expires when
    /// nothing else could happen first.
    fn fire_timeouts(&mut self) -> Result<(), String> {
        let n = self.num_threads;
        let all_blocked = (0..n).all(|t| self.finished[t] || self.blocked[t].is_some());
        if !all_blocked {
            return Ok(());
        }
        let timed = (0..n).find(|&t| self.blocked[t].is_some_and(|b| b.timed));
        if let Some(t) = timed {
            self.strategy.unblock(t)?;
            self.sync.unblock(t)?;
            self.blocked[t] = None;
            self.timed_out[t] = true;
        }
        Ok(())
    }

    /// Some thread waits in native code and every other unfinished one is
    /// parked in a cooperative primitive: the native wait may still end and
    /// wake them, so this is no deadlock yet.
    fn native_and_coop_waiting(&self) -> bool {
        let Some(native) = self.native.as_ref() else {
            return false;
        };
        native.set_aside.iter().any(|&a| a)
            && (0..self.num_threads)
                .all(|u| self.finished[u] || native.set_aside[u] || self.blocked[u].is_some())
    }

    fn grant(&mut self, t: ThreadId) {
        self.steps.push(StepRecord {
            thread: t,
            code: 0,
            offset: 0,
            accesses: Vec::new(),
            sync: Vec::new(),
            native: Vec::new(),
        });
        self.pending_step[t] = Some(self.steps.len() - 1);
        self.granted[t] = true;
        self.off_turn[t] = false;
        self.current = Some(t);
        self.progress += 1;
        self.native_step_opened(t);
    }

    /// Worker `tid`, at (code, offset), begins the step it was granted:
    /// the grant is used up and the step placed. Returns the index of that
    /// step in `steps`, or None when no step was pending (the worker keeps
    /// the turn and goes on with the step it is in).
    #[inline]
    fn start_step(&mut self, tid: ThreadId, code: usize, offset: u32) -> Option<usize> {
        let pending = self.pending_step[tid].take();
        if let Some(i) = pending {
            let step = &mut self.steps[i];
            step.code = code;
            step.offset = offset;
        }
        self.granted[tid] = false;
        if code != 0 {
            self.last_seen[tid] = Some((code, offset));
        }
        self.progress += 1;
        pending
    }

    /// Gives the execution up. Its workers are *released*: from now on they
    /// run unscheduled and untraced to their end, as the program would
    /// without frontrun, so that what they hold (a lock, a transaction on a
    /// server) is let go the way their code lets go of it. None is
    /// interrupted from outside: an asynchronous exception landing in a
    /// thread blocked in C wedges 3.11's tracing for the next execution.
    /// Stragglers still running when the execution ends see a new
    /// generation at their next traced instruction and unwind there.
    fn abort(&mut self, why: String) {
        if matches!(self.phase, Phase::Running | Phase::Idle) {
            self.phase = Phase::Aborted(why);
        }
    }

    /// The execution was given up, and its workers run free (see `abort`).
    pub(crate) fn released(&self) -> bool {
        matches!(self.phase, Phase::Aborted(_))
    }

    /// Asks the strategy for the next step and grants it.
    pub(crate) fn schedule_next(&mut self) -> Result<Option<ThreadId>, String> {
        if self.steps.len() as u64 >= self.max_steps {
            let why = format!(
                "the execution exceeded max_branches={} scheduling points; raise max_branches or shorten the \
                 threads (a loop that never ends, such as a spin wait, also causes this)",
                self.max_steps
            );
            self.abort(why.clone());
            return Err(why);
        }
        self.drain_native();
        if let Some(c) = self.current {
            self.end_native_step(c);
        }
        if self.native_waiting() || self.native_and_coop_waiting() {
            self.current = None;
            self.awaiting_native = true;
            return Ok(None);
        }
        self.awaiting_native = false;
        if let Err(e) = self.fire_timeouts() {
            self.abort(format!("engine error: {e}"));
            return Err(e);
        }
        match self.strategy.schedule() {
            Ok(Some(t)) => {
                self.grant(t);
                Ok(Some(t))
            }
            Ok(None) => {
                self.current = None;
                if self.finished.iter().all(|&f| f) {
                    self.phase = Phase::Done;
                } else if self.blocked.iter().any(Option::is_some) {
                    // Every unfinished thread waits on a cooperative
                    // primitive: a deadlock, which the strategy's report
                    // describes. The parked threads unwind (see
                    // `wait_for_grant`).
                    self.phase = Phase::Done;
                } else {
                    let waiting: Vec<_> = (0..self.num_threads)
                        .filter(|&t| !self.finished[t])
                        .collect();
                    self.abort(format!(
                        "no thread can take the next step (unfinished threads: {waiting:?})"
                    ));
                }
                Ok(None)
            }
            Err(e) => {
                self.abort(format!("engine error: {e}"));
                Err(e)
            }
        }
    }
}

pub struct Shared {
    pub state: Mutex<State>,
    /// The main thread waits here for the end of the execution.
    pub cv: Condvar,
    /// Worker `t` waits on `thread_cvs[t]` for a step.
    pub thread_cvs: Vec<Condvar>,
    pub codes: CodeCache,
    pub keys: Mutex<KeyTable>,
    /// `decide(code, module_name, caller_traced) -> bool`
    pub decide: Py<PyAny>,
    /// `classify(code) -> list[(offset, kind, arg, name)]`
    pub classify: Py<PyAny>,
    /// Names of the I/O resources reported so far, by engine key, for
    /// explanations (`describe`).
    pub io_names: Mutex<HashMap<u64, String>>,
    /// Calls are scheduling points: native code they run may do I/O that
    /// must be ordered against other threads (set when a ring is attached).
    pub native_calls: std::sync::atomic::AtomicBool,
    /// The first exception `decide` or `classify` raised. The execution is
    /// abandoned and `Session.end` raises it: a trace filter that fails must
    /// not quietly leave code untraced.
    pub filter_error: Mutex<Option<PyErr>>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a worker thread knows about itself.
struct Worker {
    shared: Arc<Shared>,
    generation: u64,
    tid: ThreadId,
    last_code: usize,
    last_info: Option<Arc<CodeInfo>>,
    buf: Vec<RawAccess>,
}

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// Instructions where the statically computed stack depth disagreed with
/// the one the interpreter published (3.11 only; a test checks it stays 0).
pub static DEPTH_MISMATCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Outcome of the tracer's look at one instruction.
pub enum Flow {
    /// Not a worker thread, or untraced code: nothing to do, ever, here.
    Untraced,
    Continue,
    /// The execution was abandoned; an exception is set.
    Raise,
}

fn set_aborted(py: Python<'_>, why: &str) -> Flow {
    ExecutionAborted::new_err(why.to_string()).restore(py);
    Flow::Raise
}

/// Builds (once) the code info for `code` seen in `frame`.
fn code_info(
    py: Python<'_>,
    shared: &Shared,
    code: *mut ffi::PyObject,
    frame: Option<&Frame>,
) -> Arc<CodeInfo> {
    if let Some(info) = shared.codes.get(code) {
        return info;
    }
    let globals = frame.map(|f| f.globals()).unwrap_or(std::ptr::null_mut());
    let caller_traced = frame
        .and_then(|f| f.previous())
        .and_then(|p| shared.codes.get(p.code()))
        .map(|i| i.traced)
        .unwrap_or(false);
    code_info_in(py, shared, code, globals, caller_traced)
}

/// Whether the code of a function about to be called from traced code is
/// traced: what `code_info` will say when the call enters it (the frame's
/// globals are the function's, its caller is traced).
pub(crate) fn function_traced(
    py: Python<'_>,
    shared: &Shared,
    code: *mut ffi::PyObject,
    globals: *mut ffi::PyObject,
) -> bool {
    if let Some(info) = shared.codes.get(code) {
        return info.traced;
    }
    code_info_in(py, shared, code, globals, true).traced
}

fn code_info_in(
    py: Python<'_>,
    shared: &Shared,
    code: *mut ffi::PyObject,
    globals: *mut ffi::PyObject,
    caller_traced: bool,
) -> Arc<CodeInfo> {
    let code_b = unsafe { Bound::from_borrowed_ptr(py, code) };
    let module = Some(globals)
        .filter(|g| !g.is_null())
        .and_then(|g| {
            unsafe { Bound::from_borrowed_ptr(py, g) }
                .get_item("__name__")
                .ok()
        })
        .map(|m| m.unbind())
        .unwrap_or_else(|| py.None());
    let decided = shared
        .decide
        .call1(py, (code_b.clone(), module, caller_traced))
        .and_then(|r| r.is_truthy(py));
    let classified = match decided {
        Ok(true) => shared
            .classify
            .call1(py, (code_b.clone(),))
            .and_then(|out| {
                let (nlocalsplus, rows): (u32, Bound<'_, PyList>) = out.extract(py)?;
                CodeInfo::traced(code_b.clone(), nlocalsplus, &rows)
            }),
        Ok(false) => Ok(CodeInfo::untraced(code_b.clone().unbind())),
        Err(e) => Err(e),
    };
    let info = match classified {
        Ok(info) => info,
        Err(e) => {
            filter_failed(shared, &code_b, e);
            CodeInfo::untraced(code_b.unbind())
        }
    };
    let info = Arc::new(info);
    shared.codes.insert(code, info.clone());
    info
}

/// Keeps the first error of the trace filter and abandons the execution;
/// `Session.end` raises the error.
fn filter_failed(shared: &Shared, code: &Bound<'_, PyAny>, err: PyErr) {
    let why = format!("deciding whether to trace {code} raised {err}");
    {
        let mut slot = shared
            .filter_error
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(err);
        }
    }
    shared.abort(why);
}

/// Whether `code` is traced for the calling worker thread (3.11 call events).
#[cfg(not(Py_3_12))]
pub fn frame_is_traced(py: Python<'_>, code: *mut ffi::PyObject, frame: &Frame) -> Option<bool> {
    WORKER.with(|w| {
        let w = w.try_borrow().ok()?;
        let w = w.as_ref()?;
        Some(code_info(py, &w.shared, code, Some(frame)).traced)
    })
}

/// The tracer's entry point for one instruction about to run.
pub fn on_instruction(
    py: Python<'_>,
    code: *mut ffi::PyObject,
    offset: usize,
    frame: impl Fn() -> Option<Frame>,
) -> Flow {
    WORKER.with(|cell| {
        let Ok(mut guard) = cell.try_borrow_mut() else {
            return Flow::Continue;
        };
        let Some(w) = guard.as_mut() else {
            return Flow::Continue;
        };
        let info = if w.last_code == code as usize {
            w.last_info.clone()
        } else {
            None
        };
        let info = match info {
            Some(i) => i,
            None => {
                let Some(frame) = frame().filter(|f| f.code() == code) else {
                    return Flow::Continue;
                };
                let i = code_info(py, &w.shared, code, Some(&frame));
                w.last_code = code as usize;
                w.last_info = Some(i.clone());
                i
            }
        };
        if !info.traced {
            return Flow::Untraced;
        }
        let op = info.op_at(offset);
        if op.kind == crate::codeinfo::OpKind::None {
            return Flow::Continue;
        }
        let Some(frame) = frame().filter(|f| f.code() == code) else {
            return Flow::Continue;
        };
        let frame = frame.with_top(info.nlocalsplus as usize, op.depth as usize);
        // 3.10 publishes the depth alone, 3.11 the index above the locals.
        #[cfg(not(Py_3_12))]
        {
            let published = frame.published_top();
            let expected = if cfg!(Py_3_11) {
                info.nlocalsplus + op.depth
            } else {
                op.depth
            };
            if published >= 0 && published as u32 != expected {
                DEPTH_MISMATCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let Some(tb) = TABLES.get() else {
            return Flow::Continue;
        };
        if let Some(kind) = access::real_lock_would_block(tb, &frame, op) {
            let why = format!(
                "thread {} would block on a {kind} that is not cooperative and that another thread holds, at {}; \
                 frontrun cannot schedule around a lock created before it patched threading",
                w.tid,
                code_line(code, offset)
            );
            let shared = w.shared.clone();
            let mut st = shared.lock();
            if st.generation == w.generation {
                st.abort(why.clone());
                shared.wake(&st);
            }
            return set_aborted(py, &why);
        }
        w.buf.clear();
        access::collect(tb, &frame, op, &mut w.buf);
        let native_site = w.buf.is_empty()
            && op.kind.is_call()
            && w.shared
                .native_calls
                .load(std::sync::atomic::Ordering::Relaxed)
            && crate::native::may_do_native_io(py, &w.shared, tb, &frame, op);
        if w.buf.is_empty() && !native_site {
            // `vars(obj)` touches nothing shared itself, but its result
            // aliases obj's attributes.
            if let Some((dict, owner)) = access::dict_alias(tb, &frame, op) {
                w.shared
                    .keys
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .alias(py, dict, owner);
            }
            return Flow::Continue;
        }
        let shared = w.shared.clone();
        // Objects are numbered as this thread meets them *before* it gives
        // up the turn: which thread numbers a new object then follows the
        // order of the steps that executed, not the order the threads were
        // resumed in (see keys.rs).
        let mut resolved = resolve(py, &shared, w.tid, &w.buf);
        match acquire_turn(py, &shared, w.tid, w.generation) {
            Err(why) => return set_aborted(py, &why),
            Ok(false) => {}
            Ok(true) => {
                // Other threads ran meanwhile: containers may have changed size.
                w.buf.clear();
                access::collect(tb, &frame, op, &mut w.buf);
                resolved = resolve(py, &shared, w.tid, &w.buf);
            }
        }
        if let Some((dict, owner)) = access::dict_alias(tb, &frame, op) {
            shared
                .keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .alias(py, dict, owner);
        }
        report(
            py,
            &shared,
            w.tid,
            w.generation,
            code as usize,
            offset as u32,
            resolved,
        )
    })
}

/// `file:line` of `offset` in `code`, for messages.
fn code_line(code: *mut ffi::PyObject, offset: usize) -> String {
    unsafe {
        let line = ffi::PyCode_Addr2Line(code as *mut ffi::PyCodeObject, offset as i32);
        let file = ffi::PyObject_GetAttrString(code, c"co_filename".as_ptr());
        let mut name = String::from("?");
        if file.is_null() {
            ffi::PyErr_Clear();
        } else {
            let p = ffi::PyUnicode_AsUTF8(file);
            if p.is_null() {
                ffi::PyErr_Clear();
            } else {
                name = std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
            }
            ffi::Py_DECREF(file);
        }
        format!("{name}:{line}")
    }
}

/// Makes sure the calling thread holds a granted step. Returns whether it
/// had to wait for it (other threads ran in between).
pub(crate) fn acquire_turn(
    py: Python<'_>,
    shared: &Shared,
    tid: ThreadId,
    generation: u64,
) -> Result<bool, String> {
    {
        let mut st = shared.lock();
        if st.generation != generation {
            return Err("this execution is over".into());
        }
        if st.released() {
            return Ok(false);
        }
        if st.granted[tid] || (st.holding[tid] && st.current == Some(tid)) {
            return Ok(false);
        }
        if st.off_turn[tid] {
            // Set aside during a native wait: others hold the turn now.
            drop(st);
            wait_for_grant(py, shared, tid, generation)?;
            return Ok(true);
        }
        match st.schedule_next() {
            Ok(Some(t)) if t == tid => return Ok(false),
            Ok(Some(_)) => {}
            Ok(None) => {
                let why =
                    format!("the scheduler has no step for thread {tid}, which is still running");
                st.abort(why);
                shared.wake(&st);
                return Ok(false);
            }
            Err(e) => {
                shared.wake(&st);
                if st.released() {
                    return Ok(false);
                }
                return Err(e);
            }
        }
        shared.wake(&st);
    }
    wait_for_grant(py, shared, tid, generation)?;
    Ok(true)
}

pub(crate) fn wait_for_grant(
    py: Python<'_>,
    shared: &Shared,
    tid: ThreadId,
    generation: u64,
) -> Result<(), String> {
    py.detach(|| {
        let mut st = shared.lock();
        loop {
            if st.generation != generation {
                return Err("this execution is over".to_string());
            }
            if st.released() || (st.granted[tid] && st.current == Some(tid)) {
                return Ok(());
            }
            if st.phase == Phase::Done {
                return Err("the execution ended in a deadlock".to_string());
            }
            st = shared.thread_cvs[tid]
                .wait(st)
                .unwrap_or_else(|p| p.into_inner());
        }
    })
}

/// The engine keys of the accesses `raw` that worker `tid` is about to make.
fn resolve(py: Python<'_>, shared: &Shared, tid: ThreadId, raw: &[RawAccess]) -> Vec<(u64, bool)> {
    let mut resolved = Vec::with_capacity(raw.len());
    let mut keys = shared.keys.lock().unwrap_or_else(|p| p.into_inner());
    for a in raw {
        if a.module_dict {
            keys.number_module_dict(py, a.owner);
        }
        let slot = match a.slot {
            Slot::Fixed(s) => s,
            Slot::ObjectKey(k) => keys
                .number(py, k, Some(tid))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15),
        };
        let key = keys.key(py, a.owner, Some(tid), slot, || seed_desc(py, a.seed));
        resolved.push((key, a.write));
    }
    resolved
}

fn report(
    py: Python<'_>,
    shared: &Shared,
    tid: ThreadId,
    generation: u64,
    code: usize,
    offset: u32,
    resolved: Vec<(u64, bool)>,
) -> Flow {
    let mut st = shared.lock();
    if st.generation != generation {
        return set_aborted(py, "this execution is over");
    }
    if st.released() {
        return Flow::Continue;
    }
    for &(key, write) in &resolved {
        if let Err(e) = st.strategy.access(tid, key, write) {
            let why = format!("engine error: {e}");
            st.abort(why.clone());
            shared.wake(&st);
            return set_aborted(py, &why);
        }
    }
    match st.start_step(tid, code, offset) {
        Some(i) => st.steps[i].accesses = resolved,
        // Holding the turn (`io_hold`): the accesses join the step.
        None => join_step_record(&mut st, tid, &resolved),
    }
    Flow::Continue
}

fn seed_desc(py: Python<'_>, seed: Seed) -> SlotDesc {
    let own = |p: *mut ffi::PyObject| unsafe { Bound::from_borrowed_ptr(py, p) }.unbind();
    match seed {
        Seed::Attr(n) => SlotDesc::Attr(own(n)),
        Seed::Item(k) => SlotDesc::Item(own(k)),
        Seed::Index(i) => SlotDesc::Index(i),
        Seed::Shape => SlotDesc::Shape,
        Seed::Cell => SlotDesc::Cell,
        Seed::Global(n) => SlotDesc::Global(own(n)),
    }
}

impl KeyTable {
    /// Module dicts are numbered from the module's name, which is the same
    /// in every execution.
    pub fn number_module_dict(&mut self, py: Python<'_>, dict: *mut ffi::PyObject) {
        if self.is_numbered(dict) {
            return;
        }
        let name = unsafe { ffi::PyDict_GetItemString(dict, c"__name__".as_ptr()) };
        let h = if name.is_null() {
            dict as u64
        } else {
            let h = unsafe { ffi::PyObject_Hash(name) };
            if h == -1 {
                unsafe { ffi::PyErr_Clear() };
            }
            h as u64
        };
        self.set_number(
            py,
            dict,
            crate::keys::compose(h, 0x4d4f_4455_4c45) | (1 << 63),
        );
    }
}

// ---------------------------------------------------------------------------
// Worker lifecycle, driven from Python.
// ---------------------------------------------------------------------------

/// Registers the calling thread as worker `tid` and parks it until its first
/// step is granted.
pub fn enter(py: Python<'_>, shared: &Arc<Shared>, tid: ThreadId) -> PyResult<()> {
    let generation = {
        let st = shared.lock();
        if tid >= st.num_threads {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "no thread {tid} in this execution"
            )));
        }
        st.generation
    };
    if let Some(native) = shared.lock().native.as_mut() {
        native.register(tid, crate::native::os_tid());
    }
    WORKER.with(|w| {
        *w.borrow_mut() = Some(Worker {
            shared: shared.clone(),
            generation,
            tid,
            last_code: 0,
            last_info: None,
            buf: Vec::with_capacity(8),
        })
    });
    crate::tracer::install_for_thread();
    wait_for_grant(py, shared, tid, generation).map_err(ExecutionAborted::new_err)
}

/// Unregisters the calling thread and passes the turn on.
pub fn leave(py: Python<'_>, shared: &Arc<Shared>, tid: ThreadId) {
    crate::tracer::uninstall_for_thread();
    let worker = WORKER.with(|w| w.borrow_mut().take());
    let generation = worker.as_ref().map(|w| w.generation);
    drop(worker);
    let set_aside = {
        let st = shared.lock();
        Some(st.generation) == generation
            && tid < st.num_threads
            && st.off_turn[tid]
            && !st.granted[tid]
    };
    if set_aside {
        // Returned from a native wait and ended before another scheduling
        // point: its last step still needs the turn.
        if let Some(g) = generation {
            // (After a deadlock it only unwinds: record its end below.)
            if wait_for_grant(py, shared, tid, g).is_err() && shared.lock().phase != Phase::Done {
                return;
            }
        }
    }
    let mut st = shared.lock();
    if Some(st.generation) != generation || tid >= st.num_threads || st.finished[tid] {
        return;
    }
    if st.current == Some(tid) {
        st.drain_native();
        st.end_native_step(tid);
    }
    st.finished[tid] = true;
    st.granted[tid] = false;
    st.holding[tid] = false;
    st.pending_step[tid] = None;
    // After a deadlock the strategy's execution is over; the blocked
    // threads only unwind.
    if st.phase == Phase::Running {
        if let Err(e) = st.strategy.finish(tid) {
            st.abort(format!("engine error: {e}"));
        }
    }
    st.progress += 1;
    if st.phase == Phase::Running && st.current == Some(tid) {
        let _ = st.schedule_next();
    }
    shared.wake(&st);
}

/// What the calling thread is to the I/O wrappers, which ask before naming
/// a resource (so other threads pay one call): 0 not a worker, 1 a worker,
/// 2 a worker whose exploration reads the preload library's events (the
/// library then sees its libc-level socket and file calls itself).
pub fn worker_kind() -> u8 {
    let shared = WORKER.with(|w| {
        w.try_borrow()
            .ok()
            .and_then(|w| w.as_ref().map(|w| w.shared.clone()))
    });
    match shared {
        None => 0,
        Some(s) if s.lock().native.is_some() => 2,
        Some(_) => 1,
    }
}

/// The calling worker is about to perform I/O on `resources` (full names
/// such as `file:/tmp/x`, with whether the operation writes). With
/// `own_step`, the operation becomes a step of its own, taken before it
/// runs so the engine can order it: wait for the turn, report the accesses
/// in the engine's I/O key space, record the step at `frame`'s innermost
/// traced caller. Without it, the accesses join the step the worker is
/// running now (receives: a reply must stay with its request, see
/// `frontrun/_io.py`). Returns false, doing nothing, when the calling
/// thread is not a worker.
pub fn io_step(
    py: Python<'_>,
    resources: &[(Vec<u8>, bool)],
    frame: Option<&Bound<'_, PyAny>>,
    own_step: bool,
) -> PyResult<bool> {
    let found = WORKER.with(|cell| {
        let guard = cell.try_borrow().ok()?;
        guard
            .as_ref()
            .map(|w| (w.shared.clone(), w.tid, w.generation))
    });
    let Some((shared, tid, generation)) = found else {
        return Ok(false);
    };
    let accesses: Vec<(u64, bool)> = resources
        .iter()
        .map(|(name, write)| (frontrun_ring::resource_key(name), *write))
        .collect();
    {
        let mut names = shared.io_names.lock().unwrap_or_else(|p| p.into_inner());
        for ((name, _), (key, _)) in resources.iter().zip(&accesses) {
            names
                .entry(*key)
                .or_insert_with(|| String::from_utf8_lossy(name).into_owned());
        }
    }
    if join_current_step(&shared, tid, generation, &accesses, own_step)? {
        return Ok(true);
    }
    let (code, offset) = frame.map(|f| traced_caller(&shared, f)).unwrap_or((0, 0));
    acquire_turn(py, &shared, tid, generation).map_err(ExecutionAborted::new_err)?;
    let mut st = shared.lock();
    if st.generation != generation {
        return Err(ExecutionAborted::new_err("this execution is over"));
    }
    if let Phase::Aborted(why) = &st.phase {
        return Err(ExecutionAborted::new_err(why.clone()));
    }
    for &(key, write) in &accesses {
        if let Err(e) = st.strategy.io_access(tid, key, write) {
            let why = format!("engine error: {e}");
            st.abort(why.clone());
            shared.wake(&st);
            return Err(ExecutionAborted::new_err(why));
        }
    }
    if let Some(i) = st.start_step(tid, code, offset) {
        st.steps[i].accesses = accesses;
    }
    Ok(true)
}

/// Adds I/O accesses to the step worker `tid` is running, if it holds the
/// turn with its step already under way and either `own_step` is false or
/// it is holding the turn (`io_hold`); false when it must take a step.
fn join_current_step(
    shared: &Shared,
    tid: ThreadId,
    generation: u64,
    accesses: &[(u64, bool)],
    own_step: bool,
) -> PyResult<bool> {
    let mut st = shared.lock();
    if st.generation != generation {
        return Err(ExecutionAborted::new_err("this execution is over"));
    }
    if let Phase::Aborted(why) = &st.phase {
        return Err(ExecutionAborted::new_err(why.clone()));
    }
    let running = st.current == Some(tid)
        && !st.granted[tid]
        && st.steps.last().is_some_and(|s| s.thread == tid);
    if !running || (own_step && !st.holding[tid]) {
        return Ok(false);
    }
    for &(key, write) in accesses {
        if let Err(e) = st.strategy.io_access(tid, key, write) {
            let why = format!("engine error: {e}");
            st.abort(why.clone());
            shared.wake(&st);
            return Err(ExecutionAborted::new_err(why));
        }
    }
    join_step_record(&mut st, tid, accesses);
    st.progress += 1;
    Ok(true)
}

/// Adds `accesses` to the record of the step `tid` is running.
fn join_step_record(st: &mut State, tid: ThreadId, accesses: &[(u64, bool)]) {
    if let Some(step) = st.steps.last_mut().filter(|s| s.thread == tid) {
        for &a in accesses {
            if !step.accesses.contains(&a) {
                step.accesses.push(a);
            }
        }
    }
}

/// The calling worker starts (`on`) or ends a request/answer exchange with
/// a server: while it lasts, the worker keeps the turn, and its
/// instructions and I/O join the step it is in, so that no other worker's
/// request reaches the server between this request and its answer (the
/// server's order would then depend on timing). Does nothing in a thread
/// that is not a worker.
pub fn io_hold(on: bool) {
    let found = WORKER.with(|cell| {
        let guard = cell.try_borrow().ok()?;
        guard
            .as_ref()
            .map(|w| (w.shared.clone(), w.tid, w.generation))
    });
    let Some((shared, tid, generation)) = found else {
        return;
    };
    let mut st = shared.lock();
    if st.generation == generation && tid < st.num_threads {
        st.holding[tid] = on && st.current == Some(tid);
    }
}

/// `(code, offset)` of the innermost frame from `frame` outwards whose code
/// is traced, or `(0, 0)` when none is: where the user's program asked for
/// the I/O.
fn traced_caller(shared: &Shared, frame: &Bound<'_, PyAny>) -> (usize, u32) {
    let mut f = Some(frame.clone());
    while let Some(cur) = f.filter(|f| !f.is_none()) {
        if let Ok(code) = cur.getattr("f_code") {
            if shared.codes.get(code.as_ptr()).is_some_and(|i| i.traced) {
                let offset = cur
                    .getattr("f_lasti")
                    .and_then(|o| o.extract::<i64>())
                    .unwrap_or(0);
                return (code.as_ptr() as usize, offset.max(0) as u32);
            }
        }
        f = cur.getattr("f_back").ok();
    }
    (0, 0)
}

impl Shared {
    pub fn new(
        strategy: Box<dyn Strategy>,
        num_threads: usize,
        max_steps: u64,
        decide: Py<PyAny>,
        classify: Py<PyAny>,
    ) -> Shared {
        Shared {
            state: Mutex::new(State {
                strategy,
                generation: 0,
                phase: Phase::Idle,
                num_threads,
                current: None,
                granted: vec![false; num_threads],
                pending_step: vec![None; num_threads],
                holding: vec![false; num_threads],
                finished: vec![false; num_threads],
                steps: Vec::new(),
                last_seen: vec![None; num_threads],
                progress: 0,
                max_steps,
                blocked: vec![None; num_threads],
                timed_out: vec![false; num_threads],
                sync: crate::sync_model::SyncModel::new(num_threads),
                lock_cycle: None,
                native: None,
                off_turn: vec![false; num_threads],
                awaiting_native: false,
            }),
            cv: Condvar::new(),
            thread_cvs: (0..num_threads).map(|_| Condvar::new()).collect(),
            codes: CodeCache::default(),
            keys: Mutex::new(KeyTable::default()),
            decide,
            classify,
            io_names: Mutex::new(HashMap::new()),
            native_calls: std::sync::atomic::AtomicBool::new(false),
            filter_error: Mutex::new(None),
        }
    }

    /// Starts an execution; false when the strategy has nothing left.
    pub fn begin(&self, py: Python<'_>, record_descs: bool) -> Result<bool, String> {
        let released = {
            let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            keys.record_descs = record_descs;
            keys.clear()
        };
        let _ = py;
        drop(released);
        let mut st = self.lock();
        if st.phase == Phase::Running {
            return Err("an execution is already running".into());
        }
        if !st.strategy.begin_execution()? {
            return Ok(false);
        }
        st.generation += 1;
        st.phase = Phase::Running;
        st.current = None;
        let n = st.num_threads;
        st.granted = vec![false; n];
        st.pending_step = vec![None; n];
        st.holding = vec![false; n];
        st.finished = vec![false; n];
        st.steps.clear();
        st.last_seen = vec![None; n];
        st.blocked = vec![None; n];
        st.timed_out = vec![false; n];
        st.sync.reset();
        st.lock_cycle = None;
        st.off_turn = vec![false; n];
        st.awaiting_native = false;
        if let Some(native) = st.native.as_mut() {
            native.begin();
        }
        st.progress += 1;
        Ok(true)
    }

    /// Grants the first step. Call after the state is numbered.
    pub fn kick(&self) {
        let mut st = self.lock();
        if st.phase == Phase::Running && st.current.is_none() {
            let _ = st.schedule_next();
        }
        self.wake(&st);
    }

    /// Wakes whoever must act on `st`: the thread holding the turn while
    /// the execution runs; everyone (main thread included) otherwise. Waking
    /// only the chosen thread keeps a handoff to one context switch.
    fn wake(&self, st: &State) {
        match (&st.phase, st.current) {
            (Phase::Running, Some(t)) => self.thread_cvs[t].notify_one(),
            _ => {
                self.cv.notify_all();
                for cv in &self.thread_cvs {
                    cv.notify_all();
                }
            }
        }
    }

    /// Waits for the execution to finish. Returns None when it did, or why
    /// it was abandoned (and which thread was holding the turn).
    pub fn wait(
        &self,
        py: Python<'_>,
        timeout: Duration,
        stuck_after: Duration,
    ) -> PyResult<Option<Abandoned>> {
        py.detach(|| {
            let deadline = Instant::now() + timeout;
            let mut signals_checked = Instant::now();
            let mut st = self.lock();
            let mut seen_progress = st.progress;
            let mut since = Instant::now();
            // Checking a counter instead of timestamping every step keeps
            // clock reads off the hot path; the check runs a few times per
            // deadlock_timeout.
            let mut tick = (stuck_after / 4).max(Duration::from_millis(1));
            if st.native.is_some() {
                tick = tick.min(crate::native::POLL_INTERVAL);
            }
            loop {
                if st.native_tick() {
                    self.wake(&st);
                }
                match &st.phase {
                    // After a deadlock, wait until the blocked threads have
                    // unwound: the invariant must not see them running.
                    Phase::Done if st.finished.iter().all(|&f| f) => return Ok(None),
                    Phase::Aborted(why) => {
                        let cur = st.current;
                        return Ok(Some((why.clone(), cur, cur.and_then(|t| st.last_seen[t]))));
                    }
                    _ => {}
                }
                let now = Instant::now();
                if st.progress != seen_progress {
                    seen_progress = st.progress;
                    since = now;
                }
                if now >= deadline {
                    let cur = st.current;
                    let why = format!("timeout_per_run ({:.1}s) expired", timeout.as_secs_f64());
                    st.abort(why.clone());
                    self.wake(&st);
                    return Ok(Some((why, cur, cur.and_then(|t| st.last_seen[t]))));
                }
                if now.duration_since(since) >= stuck_after {
                    let cur = st.current;
                    let native = st.native.as_ref().and_then(|n| n.stuck_reason(cur, stuck_after));
                    let why = native.unwrap_or_else(|| {
                        format!(
                            "no scheduling point reached for {:.1}s (deadlock_timeout): the thread holding the turn \
                             is blocked or busy outside traced code",
                            stuck_after.as_secs_f64()
                        )
                    });
                    st.abort(why.clone());
                    self.wake(&st);
                    return Ok(Some((why, cur, cur.and_then(|t| st.last_seen[t]))));
                }
                let wake = deadline.min(since + stuck_after).min(now + tick).min(now + SIGNAL_CHECK);
                let (g, _) = self
                    .cv
                    .wait_timeout(st, wake.saturating_duration_since(now) + Duration::from_millis(1))
                    .unwrap_or_else(|p| p.into_inner());
                st = g;
                if signals_checked.elapsed() >= SIGNAL_CHECK {
                    // Ctrl-C must not wait for the execution to end. The
                    // state lock is released first: workers take it while
                    // holding the GIL.
                    drop(st);
                    if let Err(e) = Python::attach(|py| py.check_signals()) {
                        self.abort("interrupted".to_string());
                        return Err(e);
                    }
                    signals_checked = Instant::now();
                    st = self.lock();
                }
            }
        })
    }

    pub fn abort(&self, why: String) {
        let mut st = self.lock();
        st.abort(why);
        self.wake(&st);
    }

    /// Closes the execution and returns the strategy's report; its steps
    /// stay available (`steps`) until the next execution begins.
    pub fn end(&self) -> Result<(Report, Phase), String> {
        let mut st = self.lock();
        let phase = std::mem::replace(&mut st.phase, Phase::Idle);
        // Stragglers of this execution see a new generation and bail out.
        st.generation += 1;
        self.wake(&st);
        let mut report = st.strategy.end_execution()?;
        if let Some(d) = st.lock_cycle.take() {
            // Ended at the cycle, while other threads could still run: the
            // strategy saw an execution ended early.
            report.deadlock = Some(crate::strategy::deadlock_threads(&d));
            report.deadlock_detail = Some(d);
            report.aborted = None;
        }
        Ok((report, phase))
    }

    /// The steps of the current (or last ended) execution.
    pub fn steps(&self) -> Vec<StepRecord> {
        self.lock().steps.clone()
    }
}

/// The calling thread's worker registration: its session, id and the
/// execution it belongs to.
/// In the child of a `fork` made by a worker: the calling thread, the only
/// one the child has, stops being a worker and is no longer traced, so the
/// child runs freely. Nothing here takes a lock: the session's may have
/// been held by a thread the child does not have. The registration is
/// leaked, not dropped, for the same reason.
pub fn forget_worker_after_fork() {
    WORKER.with(|cell| {
        if let Ok(mut w) = cell.try_borrow_mut() {
            if let Some(w) = w.take() {
                std::mem::forget(w);
            }
        }
    });
    crate::tracer::uninstall_for_thread();
}

pub(crate) fn current_worker() -> Option<(Arc<Shared>, ThreadId, u64)> {
    WORKER.with(|cell| {
        let w = cell.try_borrow().ok()?;
        let w = w.as_ref()?;
        Some((w.shared.clone(), w.tid, w.generation))
    })
}

// ---------------------------------------------------------------------------
// Cooperative primitives (`coop.rs`): a worker inside a lock, event,
// condition or queue method takes a scheduling point whose step is the
// synchronisation operation, and may park until another thread wakes it.
// ---------------------------------------------------------------------------

/// What a cooperative operation reports in its step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncOp {
    Acquire,
    TryAcquire,
    TryFail,
    Release,
    Read,
    Write,
    /// Wakes the given thread.
    Unblock(ThreadId),
}

impl SyncOp {
    fn name(self) -> &'static str {
        match self {
            SyncOp::Acquire | SyncOp::TryAcquire => "acquire",
            SyncOp::TryFail => "try-acquire failed",
            SyncOp::Release => "release",
            SyncOp::Read => "read",
            SyncOp::Write => "write",
            SyncOp::Unblock(_) => "wake",
        }
    }
}

fn worker_or_err() -> Result<(Arc<Shared>, ThreadId, u64), String> {
    current_worker().ok_or_else(|| "the calling thread is not a frontrun worker".to_string())
}

fn check_live(st: &State, generation: u64) -> Result<(), String> {
    if st.generation != generation {
        return Err("this execution is over".into());
    }
    match &st.phase {
        Phase::Aborted(why) => Err(why.clone()),
        Phase::Running => Ok(()),
        _ => Err("this execution is over".into()),
    }
}

/// The calling worker's id while its execution runs.
pub(crate) fn coop_tid() -> Option<ThreadId> {
    let (shared, tid, generation) = current_worker()?;
    let st = shared.lock();
    (st.generation == generation && st.phase == Phase::Running).then_some(tid)
}

/// Takes the scheduling point of a cooperative operation, made at
/// (`code`, `offset`) of user code. The step belongs to the operation until
/// the thread's next scheduling point.
pub(crate) fn coop_turn(
    py: Python<'_>,
    code: usize,
    offset: u32,
    objs: &[*mut ffi::PyObject],
) -> Result<(), String> {
    let (shared, tid, generation) = worker_or_err()?;
    for &obj in objs {
        sync_key(py, &shared, tid, obj);
    }
    acquire_turn(py, &shared, tid, generation)?;
    let mut st = shared.lock();
    check_live(&st, generation)?;
    st.start_step(tid, code, offset);
    Ok(())
}

fn sync_key(py: Python<'_>, shared: &Shared, tid: ThreadId, obj: *mut ffi::PyObject) -> u64 {
    shared.keys.lock().unwrap_or_else(|p| p.into_inner()).key(
        py,
        obj,
        Some(tid),
        crate::keys::SLOT_SYNC,
        || SlotDesc::Sync,
    )
}

/// Reports `op` on the primitive `obj` in the calling worker's step.
pub(crate) fn coop_event(
    py: Python<'_>,
    op: SyncOp,
    obj: *mut ffi::PyObject,
) -> Result<(), String> {
    let (shared, tid, generation) = worker_or_err()?;
    let key = sync_key(py, &shared, tid, obj);
    let mut st = shared.lock();
    check_live(&st, generation)?;
    if st.current != Some(tid) {
        return Err(format!(
            "thread {tid} reported {} without its turn",
            op.name()
        ));
    }
    let r = match op {
        SyncOp::Acquire | SyncOp::TryAcquire => st
            .strategy
            .lock_acquire(tid, key, op == SyncOp::TryAcquire)
            .and_then(|()| st.sync.acquire(tid, key)),
        SyncOp::TryFail => st.strategy.lock_try_fail(tid, key),
        SyncOp::Release => st.strategy.lock_release(tid, key).and_then(|()| {
            for b in st.blocked.iter_mut() {
                if b.is_some_and(|b| b.lock == Some(key)) {
                    *b = None;
                }
            }
            st.sync.release(tid, key)
        }),
        SyncOp::Read => st.strategy.access(tid, key, false),
        SyncOp::Write => st.strategy.access(tid, key, true),
        SyncOp::Unblock(t) if t >= st.num_threads => Err(format!("no thread {t} to wake")),
        SyncOp::Unblock(t) => st.strategy.unblock(t).and_then(|()| {
            st.blocked[t] = None;
            st.sync.unblock(t)
        }),
    };
    if let Err(e) = r {
        let why = format!("engine error: {e}");
        st.abort(why.clone());
        shared.wake(&st);
        return Err(why);
    }
    if let Some(step) = st.steps.last_mut() {
        step.sync.push((op.name(), key));
    }
    Ok(())
}

/// Parks the calling worker on `obj` (a lock another thread holds when
/// `lock`, else an event, condition or queue) until it is woken. Returns
/// false when a `timed` wait was ended by a modelled timeout.
pub(crate) fn coop_block(
    py: Python<'_>,
    obj: *mut ffi::PyObject,
    lock: bool,
    timed: bool,
) -> Result<bool, String> {
    let (shared, tid, generation) = worker_or_err()?;
    let key = sync_key(py, &shared, tid, obj);
    {
        let mut st = shared.lock();
        check_live(&st, generation)?;
        if st.current != Some(tid) {
            return Err(format!("thread {tid} blocked without its turn"));
        }
        let r = if lock {
            st.strategy
                .block_on_lock(tid, key)
                .and_then(|()| st.sync.block_on_lock(tid, key))
        } else {
            st.strategy
                .block(tid, key)
                .and_then(|()| st.sync.block(tid, key))
        };
        if let Err(e) = r {
            let why = format!("engine error: {e}");
            st.abort(why.clone());
            shared.wake(&st);
            return Err(why);
        }
        st.blocked[tid] = Some(crate::coop::Blocked {
            timed,
            lock: lock.then_some(key),
        });
        st.timed_out[tid] = false;
        if let Some(step) = st.steps.last_mut() {
            step.sync
                .push((if lock { "wait for lock" } else { "wait" }, key));
        }
        if lock {
            if let Some(cycle) = st.sync.cycle_through(tid) {
                // A lock-ordering cycle never resolves: end the execution
                // now rather than when the other threads are done.
                st.lock_cycle = Some(cycle);
                st.current = None;
                st.phase = Phase::Done;
                shared.wake(&st);
                return Err("the execution ended in a deadlock".into());
            }
        }
        // Ok(None) is a deadlock (the phase is then Done) or a wait for a
        // thread blocked in native code: `wait_for_grant` tells them apart.
        let next = st.schedule_next();
        shared.wake(&st);
        next?;
    }
    wait_for_grant(py, &shared, tid, generation)?;
    let mut st = shared.lock();
    Ok(!std::mem::take(&mut st.timed_out[tid]))
}
