//! Events from native code, read from the preload library's ring.
//!
//! When the process runs under `LD_PRELOAD=libfrontrun_io.so`, libc calls
//! made by C extensions (libpq, libmariadb, a plain `os.write`) land in a
//! shared-memory ring (`frontrun_ring`). An exploration attaches as
//! the ring's consumer and, at every scheduling point, drains it: each event
//! belongs to the DPOR thread whose OS thread id produced it, and joins that
//! thread's current step. Reads and writes become I/O accesses, protocol
//! events the table/row/key accesses the library computed, mutex events
//! lock edges, and `poll`/`recv` waits tell the scheduler that a worker is
//! blocked on a server (so another worker may run, see `session.rs`).
//!
//! Without the library nothing here runs: `attach` finds no ring symbol and
//! the session keeps `None`.

use crate::strategy::{NativeLockOp, ThreadId};
use frontrun_ring as ring;
use frontrun_ring::{Consumer, ConsumerOptions, DbFallback, EventKind, EventRecord};
use frontrun_wire::{AccessKind, Fallback};
use std::collections::HashMap;
use std::ffi::CStr;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the thread holding the turn may sit in a blocking native call
/// (a `poll` or `recv` on a server) before the scheduler lets another
/// worker run. Ordinary replies arrive well within it; a wait on a row lock
/// held by another worker's open transaction never ends without it.
pub const BLOCK_GRACE: Duration = Duration::from_millis(200);

/// How often the main thread looks at the ring while an execution runs.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The calling thread's OS thread id (what the library records as `tid`).
pub fn os_tid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// The process's one consumer of the ring, shared by the explorations
/// running at the same time: each drain routes the events of the other
/// explorations' threads to their inboxes.
struct Hub {
    consumer: Consumer,
    users: usize,
    /// OS thread id -> the exploration it works for.
    routes: HashMap<u32, u64>,
    inbox: HashMap<u64, Vec<EventRecord>>,
    next_id: u64,
}

static HUB: std::sync::Mutex<Option<Hub>> = std::sync::Mutex::new(None);

/// In the child of a `fork`: forget the parent's attachment to the ring
/// without detaching it (the parent still drains the ring; the child's own
/// events reach it tagged with the child's pid). Left alone when a thread
/// the child does not have held the lock at the fork.
pub fn forget_after_fork() {
    let guard = match HUB.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    let mut guard = guard;
    if let Some(h) = guard.take() {
        std::mem::forget(h);
    }
}

fn hub() -> std::sync::MutexGuard<'static, Option<Hub>> {
    HUB.lock().unwrap_or_else(|p| p.into_inner())
}

/// One exploration's membership of the hub.
pub struct HubHandle {
    id: u64,
}

impl Drop for HubHandle {
    fn drop(&mut self) {
        let mut guard = hub();
        let Some(h) = guard.as_mut() else { return };
        h.routes.retain(|_, id| *id != self.id);
        h.inbox.remove(&self.id);
        h.users -= 1;
        if h.users == 0 {
            // Producers go back to passing straight through.
            *guard = None;
        }
    }
}

/// Joins the process's consumer of the ring, attaching it first if no
/// exploration holds it. `Ok(None)` when the library is not loaded (or
/// disabled itself, having said why); `Err` when it is loaded but its ring
/// cannot be used here.
pub fn attach() -> Result<Option<HubHandle>, String> {
    let mut guard = hub();
    if let Some(h) = guard.as_mut() {
        h.users += 1;
        h.next_id += 1;
        return Ok(Some(HubHandle { id: h.next_id }));
    }
    let Some(consumer) = open_consumer()? else {
        return Ok(None);
    };
    *guard = Some(Hub {
        consumer,
        users: 1,
        routes: HashMap::new(),
        inbox: HashMap::new(),
        next_id: 1,
    });
    Ok(Some(HubHandle { id: 1 }))
}

fn open_consumer() -> Result<Option<Consumer>, String> {
    // SAFETY: looking a symbol up by a NUL-terminated name.
    let version = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"frontrun_io_ring_version".as_ptr()) };
    if version.is_null() {
        return Ok(None);
    }
    // SAFETY: the library exports these with exactly these C signatures
    // (docs/preload.md, "For tools").
    let version: extern "C" fn() -> u32 = unsafe { std::mem::transmute(version) };
    let have = version();
    if have != ring::VERSION {
        return Err(format!(
            "libfrontrun_io.so writes ring version {have} but this engine reads version {}; the library and the \
             frontrun package come from different builds (use the library `frontrun --preload-path` names)",
            ring::VERSION
        ));
    }
    let path_fn = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"frontrun_io_ring_path".as_ptr()) };
    if path_fn.is_null() {
        return Ok(None);
    }
    let path_fn: extern "C" fn() -> *const libc::c_char = unsafe { std::mem::transmute(path_fn) };
    let path = path_fn();
    if path.is_null() {
        return Ok(None);
    }
    // SAFETY: a NUL-terminated string owned by the library for its lifetime.
    let path = unsafe { CStr::from_ptr(path) }
        .to_string_lossy()
        .into_owned();
    match Consumer::open(Path::new(&path), ConsumerOptions { mutex_events: true }) {
        Ok(c) => Ok(Some(c)),
        // An ancestor's engine drains this ring: this process is a child
        // of a process under test.
        Err(ring::RingError::AlreadyConsumed { .. }) => Ok(None),
        Err(e) => Err(format!(
            "cannot attach to the native event ring {path}: {e}"
        )),
    }
}

/// One C-level access as the explanation shows it: the libc call, the
/// resource, the statement (for database requests), and the engine keys it
/// stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeAccess {
    pub call: &'static str,
    pub name: String,
    pub label: String,
    pub write: bool,
    pub keys: Vec<(u64, bool)>,
}

/// A drained event waiting to be applied to its thread's step.
#[derive(Clone, Debug)]
pub enum Item {
    Access(NativeAccess),
    Lock(NativeLockOp, u64),
}

/// The consumer and what it knows about the running execution.
pub struct Native {
    hub: HubHandle,
    pid: u32,
    /// OS thread id of each DPOR thread, once it entered this execution.
    os_tids: Vec<Option<u32>>,
    /// Events of threads that did not hold the turn when they were drained
    /// (a worker returning from a blocking call while another runs); they
    /// join the thread's next step.
    pub pending: Vec<Vec<Item>>,
    block_depth: Vec<u32>,
    /// Since when, and on which resource, each thread waits in native code.
    pub blocked_since: Vec<Option<(Instant, u64)>>,
    /// The wait each thread's last blocking call belonged to, kept after the
    /// call returned until the thread does anything else: a driver that
    /// waits by polling in a loop with a short timeout (psycopg 3 polls
    /// every 100 ms) makes one long wait out of many short calls, and the
    /// wait counts from the first of them.
    last_wait: Vec<Option<(Instant, u64)>>,
    /// The resource each thread waits on, for messages.
    waiting_on: Vec<String>,
    /// Threads the scheduler set aside while they wait in native code.
    pub set_aside: Vec<bool>,
    /// Native mutexes held by workers: key -> (thread, recursion depth).
    mutexes: HashMap<u64, (ThreadId, u32)>,
    /// Outermost acquires not yet reported: a mutex taken and released
    /// within one step is never reported (see [`State::end_native_step`]).
    deferred: Vec<(ThreadId, u64)>,
    /// I/O keys already reported in the open step (one report per key).
    pub step_io: Vec<(u64, bool)>,
    /// Readable names of the I/O keys seen, for explanations.
    pub names: HashMap<u64, String>,
    /// Servers whose statements could not be read, with why (over the
    /// whole exploration, for the result).
    pub unseen: std::collections::BTreeMap<String, &'static str>,
    /// Events attributed to a worker, over the whole exploration.
    pub events: u64,
    /// Times a worker waiting in native code was set aside.
    pub waits: u64,
    lost_at_attach: u64,
}

impl Native {
    pub fn new(hub: HubHandle, num_threads: usize) -> Native {
        let lost_at_attach = self::hub().as_ref().map_or(0, |h| h.consumer.lost());
        Native {
            hub,
            pid: std::process::id(),
            os_tids: vec![None; num_threads],
            pending: vec![Vec::new(); num_threads],
            block_depth: vec![0; num_threads],
            blocked_since: vec![None; num_threads],
            last_wait: vec![None; num_threads],
            waiting_on: vec![String::new(); num_threads],
            set_aside: vec![false; num_threads],
            mutexes: HashMap::new(),
            deferred: Vec::new(),
            step_io: Vec::new(),
            names: HashMap::new(),
            unseen: Default::default(),
            events: 0,
            waits: 0,
            lost_at_attach,
        }
    }

    /// Events the ring dropped since the exploration attached.
    pub fn lost(&self) -> u64 {
        hub()
            .as_ref()
            .map_or(0, |h| h.consumer.lost())
            .saturating_sub(self.lost_at_attach)
    }

    /// Forgets the previous execution; events still in the ring (setup(),
    /// the invariant, stragglers) belong to no step.
    pub fn begin(&mut self) {
        self.take_records();
        if let Some(h) = hub().as_mut() {
            h.routes.retain(|_, id| *id != self.hub.id);
        }
        let n = self.os_tids.len();
        self.os_tids = vec![None; n];
        self.pending.iter_mut().for_each(Vec::clear);
        self.block_depth = vec![0; n];
        self.blocked_since = vec![None; n];
        self.last_wait = vec![None; n];
        self.set_aside = vec![false; n];
        self.mutexes.clear();
        self.deferred.clear();
        self.step_io.clear();
    }

    pub fn register(&mut self, t: ThreadId, os_tid: u32) {
        if let Some(slot) = self.os_tids.get_mut(t) {
            *slot = Some(os_tid);
            if let Some(h) = hub().as_mut() {
                h.routes.insert(os_tid, self.hub.id);
            }
        }
    }

    /// This exploration's events, oldest first: those other explorations'
    /// drains set aside for it, then the ring's, whose events for other
    /// explorations go to their inboxes.
    fn take_records(&mut self) -> Vec<EventRecord> {
        let mut guard = hub();
        let Some(h) = guard.as_mut() else {
            return Vec::new();
        };
        let me = self.hub.id;
        let mut mine = h.inbox.remove(&me).unwrap_or_default();
        let Hub {
            consumer,
            routes,
            inbox,
            ..
        } = h;
        consumer.drain(|r| match routes.get(&r.tid) {
            Some(&id) if id == me => mine.push(*r),
            Some(&id) => inbox.entry(id).or_default().push(*r),
            None => {}
        });
        mine
    }

    /// Takes every published event and hands `(thread, item)` to `sink`;
    /// returns the threads whose blocking call returned while they were set
    /// aside.
    pub fn drain(
        &mut self,
        finished: &[bool],
        mut sink: impl FnMut(ThreadId, Item),
    ) -> Vec<ThreadId> {
        let mut woke = Vec::new();
        let records = self.take_records();
        for r in &records {
            if r.pid != self.pid {
                continue;
            }
            let Some(t) = self.os_tids.iter().position(|&o| o == Some(r.tid)) else {
                continue;
            };
            if finished.get(t).copied().unwrap_or(true) {
                continue;
            }
            let Some(kind) = r.kind() else { continue };
            match kind {
                EventKind::Connect | EventKind::Close => {}
                EventKind::BlockEnter => {
                    self.block_depth[t] += 1;
                    if self.blocked_since[t].is_none() {
                        let since = match self.last_wait[t] {
                            Some((since, key)) if key == r.key => since,
                            _ => Instant::now(),
                        };
                        self.blocked_since[t] = Some((since, r.key));
                        self.waiting_on[t] = r.name();
                    }
                }
                EventKind::BlockLeave => {
                    self.block_depth[t] = self.block_depth[t].saturating_sub(1);
                    if self.block_depth[t] == 0 {
                        self.last_wait[t] = self.blocked_since[t].take();
                        if self.set_aside[t] {
                            self.set_aside[t] = false;
                            woke.push(t);
                        }
                    }
                }
                EventKind::Write | EventKind::Read => {
                    self.last_wait[t] = None;
                    self.events += 1;
                    let write = kind == EventKind::Write;
                    let name = r.name();
                    self.names.entry(r.key).or_insert_with(|| name.clone());
                    sink(
                        t,
                        Item::Access(NativeAccess {
                            call: r.call().map_or("", |c| c.name()),
                            name,
                            label: String::new(),
                            write,
                            keys: vec![(r.key, write)],
                        }),
                    );
                }
                EventKind::DbAccess => {
                    self.last_wait[t] = None;
                    if let Some(a) = self.db_access(r, t) {
                        self.events += 1;
                        sink(t, Item::Access(a));
                    }
                }
                EventKind::MutexLock | EventKind::MutexTryFailed | EventKind::MutexUnlock => {
                    self.events += 1;
                    let op = match kind {
                        EventKind::MutexLock => NativeLockOp::Acquire,
                        EventKind::MutexTryFailed => NativeLockOp::TryFail,
                        _ => NativeLockOp::Release,
                    };
                    // Addresses mean something per process only.
                    let key = r.key ^ (u64::from(r.pid) << 48);
                    self.names.entry(key).or_insert_with(|| {
                        let origin = r.origin();
                        if origin.is_empty() {
                            r.name()
                        } else {
                            format!("{} ({origin})", r.name())
                        }
                    });
                    sink(t, Item::Lock(op, key));
                }
            }
        }
        woke
    }

    fn db_access(&mut self, r: &EventRecord, thread: ThreadId) -> Option<NativeAccess> {
        let db = r.db()?;
        if db.is_no_conflict() {
            return None;
        }
        let why = match db.fallback {
            Some(DbFallback::Wire(Fallback::Encrypted)) => {
                Some("encrypted by a TLS library other than OpenSSL, or GSS")
            }
            Some(DbFallback::Wire(Fallback::Desynced)) => Some("a protocol it could not follow"),
            _ => None,
        };
        if let Some(why) = why {
            self.unseen.entry(db.server.to_string()).or_insert(why);
        }
        let write = db.kind? == AccessKind::Write;
        let full = r.name();
        let short = match db.scheme {
            Some(s) if !db.is_coarse() => {
                let prefix = format!("{}:{}/", s.as_str(), db.server);
                match full.strip_prefix(&prefix) {
                    Some(rest) if !db.server.is_empty() => format!("{}:{rest}", s.as_str()),
                    _ => full.clone(),
                }
            }
            _ => full.clone(),
        };
        let mut keys = Vec::with_capacity(4);
        db.engine_accesses_by(thread, |a| keys.push((a.key, a.kind == AccessKind::Write)));
        // Bucket keys stand for "some row of the table"; Redis has one
        // table per server.
        let table_name = match db.scheme {
            Some(s) if !db.is_coarse() && !db.server.is_empty() => {
                if db.table.is_empty() {
                    format!("{}:{}", s.as_str(), db.server)
                } else {
                    format!("{}:{}", s.as_str(), String::from_utf8_lossy(db.table))
                }
            }
            _ => short.clone(),
        };
        let last = keys.len().saturating_sub(1);
        for (i, &(k, _)) in keys.iter().enumerate() {
            let name = if db.is_coarse() {
                short.clone()
            } else if i == 0 {
                format!("socket:{}", db.server)
            } else if i == last && db.row.is_some() {
                short.clone()
            } else {
                table_name.clone()
            };
            self.names.entry(k).or_insert(name);
        }
        Some(NativeAccess {
            call: r.call().map_or("", |c| c.name()),
            name: short,
            label: db.label.to_string(),
            write,
            keys,
        })
    }

    /// Bookkeeping for a native mutex operation by `t`: whether to report
    /// it to the strategy. Only the outermost acquire and release of a
    /// mutex are edges, and only while the history is consistent (a mutex
    /// taken before the exploration attached is not one).
    pub fn lock_edge(&mut self, t: ThreadId, op: NativeLockOp, key: u64) -> bool {
        match op {
            NativeLockOp::Acquire => match self.mutexes.get_mut(&key) {
                None => {
                    self.mutexes.insert(key, (t, 1));
                    true
                }
                Some((holder, depth)) if *holder == t => {
                    *depth += 1;
                    false
                }
                Some(_) => false,
            },
            NativeLockOp::Release => match self.mutexes.get_mut(&key) {
                Some((holder, depth)) if *holder == t => {
                    *depth -= 1;
                    if *depth == 0 {
                        self.mutexes.remove(&key);
                        true
                    } else {
                        false
                    }
                }
                _ => false,
            },
            NativeLockOp::TryFail => self.mutexes.get(&key).is_some_and(|(h, _)| *h != t),
        }
    }

    /// Why an execution that stopped making progress is stuck, when native
    /// waits explain it: the threads waiting in native code and on what.
    pub fn stuck_reason(&self, current: Option<ThreadId>, stuck_for: Duration) -> Option<String> {
        let waiting: Vec<String> = (0..self.os_tids.len())
            .filter(|&t| {
                self.set_aside[t] || (Some(t) == current && self.blocked_since[t].is_some())
            })
            .map(|t| format!("thread {t} on {}", self.waiting_on[t]))
            .collect();
        if waiting.is_empty() {
            return None;
        }
        Some(format!(
            "no scheduling point reached for {:.1}s (deadlock_timeout): {} waited in native code (a blocking \
             recv or poll) and no other thread could run to end the wait",
            stuck_for.as_secs_f64(),
            waiting.join(", ")
        ))
    }

    /// The thread's waits that have lasted longer than [`BLOCK_GRACE`].
    pub fn blocked_for_long(&self, t: ThreadId, now: Instant) -> Option<u64> {
        match self.blocked_since.get(t).copied().flatten() {
            Some((since, key)) if now.duration_since(since) >= BLOCK_GRACE => Some(key),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// The turn-taking state's side: where drained events go.
// ---------------------------------------------------------------------------

use crate::session::{Phase, State};

impl State {
    /// Drains the ring: events of the thread holding the turn join its open
    /// step; those of other threads wait for their next step. Threads set
    /// aside whose native wait returned become runnable again.
    pub(crate) fn drain_native(&mut self) {
        let Some(mut native) = self.native.take() else {
            return;
        };
        let mut items = Vec::new();
        let woke = native.drain(&self.finished, |t, item| items.push((t, item)));
        for (t, item) in items {
            if self.current == Some(t) && !self.off_turn[t] {
                self.apply_native(&mut native, t, item);
            } else {
                native.pending[t].push(item);
            }
        }
        for t in woke {
            if let Err(e) = self.strategy.native_unblock(t) {
                self.abort_native(format!("engine error: {e}"));
            }
            self.progress += 1;
        }
        self.native = Some(native);
    }

    fn abort_native(&mut self, why: String) {
        if matches!(self.phase, Phase::Running | Phase::Idle) {
            self.phase = Phase::Aborted(why);
        }
    }

    fn apply_native(&mut self, native: &mut Native, t: ThreadId, item: Item) {
        match item {
            Item::Access(a) => {
                for &(key, write) in &a.keys {
                    if native.step_io.contains(&(key, write)) {
                        continue;
                    }
                    native.step_io.push((key, write));
                    if let Err(e) = self.strategy.io_access(t, key, write) {
                        self.abort_native(format!("engine error: {e}"));
                        return;
                    }
                }
                if let Some(step) = self.steps.last_mut().filter(|s| s.thread == t) {
                    let seen = step
                        .native
                        .iter()
                        .any(|b| b.name == a.name && b.label == a.label && b.write == a.write);
                    if !seen {
                        step.native.push(a);
                    }
                }
            }
            Item::Lock(op, key) => {
                if !native.lock_edge(t, op, key) {
                    return;
                }
                match op {
                    NativeLockOp::Acquire => native.deferred.push((t, key)),
                    NativeLockOp::Release => {
                        if let Some(i) = native.deferred.iter().position(|&d| d == (t, key)) {
                            native.deferred.swap_remove(i);
                            return;
                        }
                        // A failed edge (a history the engine finds
                        // inconsistent) only loses ordering information.
                        let _ = self.strategy.native_lock(t, op, key);
                    }
                    NativeLockOp::TryFail => {
                        let _ = self.strategy.native_lock(t, op, key);
                    }
                }
            }
        }
    }

    /// The step of `t` is about to end: report the native mutexes it took
    /// during the step and still holds.
    ///
    /// A mutex taken and released within one step is not reported at all.
    /// A step is one atomic event of the search, so the lock adds no order
    /// inside it, and between steps it would only add the order of two
    /// critical sections, which the accesses recorded in them order
    /// already when they conflict. Reporting it made every pair of steps
    /// that take the same library-internal mutex (libkrb5's, OpenSSL's, the
    /// allocator's) race, with nothing recorded inside to tell the orders
    /// apart: each such pair cost an execution that explored the same
    /// trace.
    pub(crate) fn end_native_step(&mut self, t: ThreadId) {
        let Some(mut native) = self.native.take() else {
            return;
        };
        let mut i = 0;
        while i < native.deferred.len() {
            if native.deferred[i].0 == t {
                let (_, key) = native.deferred.swap_remove(i);
                let _ = self.strategy.native_lock(t, NativeLockOp::Acquire, key);
            } else {
                i += 1;
            }
        }
        self.native = Some(native);
    }

    /// Reports an I/O access of the thread holding the turn, once per key
    /// and kind per step, whether the preload library or a Python-level
    /// patch saw it (or both).
    #[allow(dead_code)] // for the Python-level I/O layer
    pub(crate) fn report_io(&mut self, t: ThreadId, key: u64, write: bool) -> Result<(), String> {
        if let Some(native) = self.native.as_mut() {
            if native.step_io.contains(&(key, write)) {
                return Ok(());
            }
            native.step_io.push((key, write));
        }
        self.strategy.io_access(t, key, write)
    }

    /// A step was just granted to `t`: events it made while set aside join it.
    pub(crate) fn native_step_opened(&mut self, t: ThreadId) {
        let Some(mut native) = self.native.take() else {
            return;
        };
        native.step_io.clear();
        let items = std::mem::take(&mut native.pending[t]);
        for item in items {
            self.apply_native(&mut native, t, item);
        }
        self.native = Some(native);
    }

    /// True when no thread can take a step now but some thread waits in
    /// native code: the step goes to it once its call returns.
    pub(crate) fn native_waiting(&self) -> bool {
        let Some(native) = self.native.as_ref() else {
            return false;
        };
        let any_aside = native.set_aside.iter().any(|&a| a);
        any_aside && !(0..self.num_threads).any(|u| !self.finished[u] && !native.set_aside[u])
    }

    /// The main thread's periodic look while an execution runs: drains the
    /// ring, grants the next step when a native wait returned while nobody
    /// could run, and sets the thread holding the turn aside when it has
    /// waited in native code for longer than [`BLOCK_GRACE`] and another
    /// thread can run. Returns whether threads must be woken.
    pub(crate) fn native_tick(&mut self) -> bool {
        if self.native.is_none() || self.phase != Phase::Running {
            return false;
        }
        self.drain_native();
        if self.phase != Phase::Running {
            return true;
        }
        if self.awaiting_native {
            if self.native_waiting() {
                return false;
            }
            let _ = self.schedule_next();
            return true;
        }
        let Some(c) = self.current else { return false };
        if self.off_turn[c] || self.finished[c] {
            return false;
        }
        let Some(native) = self.native.as_ref() else {
            return false;
        };
        let Some(key) = native.blocked_for_long(c, Instant::now()) else {
            return false;
        };
        let other =
            (0..self.num_threads).any(|u| u != c && !self.finished[u] && !native.set_aside[u]);
        if !other {
            return false;
        }
        match self.strategy.native_block(c, key) {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                self.abort_native(format!("engine error: {e}"));
                return true;
            }
        }
        if let Some(native) = self.native.as_mut() {
            native.set_aside[c] = true;
            native.waits += 1;
        }
        self.off_turn[c] = true;
        self.granted[c] = false;
        self.pending_step[c] = None;
        let _ = self.schedule_next();
        true
    }
}

/// Gives a session its consumer: from now on calls are scheduling points.
pub fn install(shared: &crate::session::Shared, hub: Option<HubHandle>, num_threads: usize) {
    let Some(hub) = hub else { return };
    shared.lock().native = Some(Native::new(hub, num_threads));
    shared
        .native_calls
        .store(true, std::sync::atomic::Ordering::Relaxed);
}

// ---------------------------------------------------------------------------
// Which calls are scheduling points.
// ---------------------------------------------------------------------------

use crate::access::{self, type_of, Tables};
use crate::codeinfo::Op;
use crate::frame::Frame;
use pyo3::ffi;
use pyo3::Python;

/// Whether a call made by traced code may run native code that does I/O,
/// so that its events need a step of their own: a call into untraced
/// Python code (a driver written in Python) or into C code of an extension
/// type or module (a C driver, `os.read`). Calls into traced code (whose
/// own instructions are scheduling points), of classes, and of the
/// interpreter's own types and `builtins` functions are not: the decision
/// depends only on the callee, so programs without I/O keep the schedules
/// they have without the library.
pub fn may_do_native_io(
    py: Python<'_>,
    shared: &crate::session::Shared,
    tb: &Tables,
    frame: &Frame,
    op: Op,
) -> bool {
    let (callable, first) = access::callee(frame, op);
    if callable.is_null() {
        return true;
    }
    let t = type_of(callable);
    unsafe {
        if t == tb.function || t == tb.method {
            let func = if t == tb.method {
                // PyMethodObject: { HEAD; PyObject *im_func; PyObject *im_self; ... }
                *((callable as *mut u8).add(std::mem::size_of::<ffi::PyObject>())
                    as *mut *mut ffi::PyObject)
            } else {
                callable
            };
            if type_of(func) != tb.function {
                return true;
            }
            let code = ffi::PyFunction_GetCode(func);
            let globals = ffi::PyFunction_GetGlobals(func);
            if code.is_null() {
                return true;
            }
            return !crate::session::function_traced(py, shared, code, globals);
        }
        if ffi::PyType_Check(callable) != 0 {
            return false;
        }
        if t == tb.cfunction || ffi::PyCFunction_Check(callable) != 0 {
            let this = (*(callable as *mut ffi::PyCFunctionObject)).m_self;
            if this.is_null() {
                return true;
            }
            if ffi::PyModule_Check(this) != 0 {
                let name = ffi::PyModule_GetName(this);
                if name.is_null() {
                    ffi::PyErr_Clear();
                    return true;
                }
                return CStr::from_ptr(name).to_bytes() != b"builtins";
            }
            return !core_type(this);
        }
        if t == tb.method_descriptor || t == tb.wrapper_descriptor || t == tb.method_wrapper {
            return first.is_null() || !core_type(first);
        }
    }
    true
}

/// An object of one of the interpreter's own types (`str`, `list`,
/// `dict`...): their names carry no module. Extension types are named
/// `module.Type` (`psycopg2.extensions.cursor`, `_io.FileIO`).
fn core_type(obj: *mut ffi::PyObject) -> bool {
    unsafe {
        let ty = ffi::Py_TYPE(obj);
        let name = (*ty).tp_name;
        !name.is_null() && !CStr::from_ptr(name).to_bytes().contains(&b'.')
    }
}
