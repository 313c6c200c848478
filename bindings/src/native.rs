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
//! blocked on a server (so another worker may run, see
//! `session/native_waits.rs`, which applies what is drained here).
//!
//! Without the library nothing here runs: `attach` finds no ring symbol and
//! the session keeps `None`.

mod threads;

use frontrun_engine::ThreadId;
use frontrun_ring as ring;
use frontrun_ring::{Call, Consumer, ConsumerOptions, DbFallback, EventKind, EventRecord};
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
    // SAFETY: gettid has no preconditions. The system call: glibc's gettid()
    // wrapper (2.30) is newer than the wheels' glibc 2.17 baseline.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// The process's one consumer of the ring, shared by the explorations
/// running at the same time: each drain routes the events of the other
/// explorations' threads to their inboxes.
struct Hub {
    consumer: Consumer,
    users: usize,
    /// OS thread id -> the exploration it works for.
    routes: HashMap<u32, u64>,
    /// Pid of a process a worker started (or of one of its descendants)
    /// -> the exploration that worker works for.
    pid_routes: HashMap<u32, u64>,
    /// Events of other processes not known yet (a child's first events
    /// may be drained before the worker that started it says so), oldest
    /// first, at most [`MAX_ORPHANS`].
    orphans: std::collections::VecDeque<EventRecord>,
    /// Number of a thread native code started (its `ThreadStart` came
    /// from a routed thread) -> the exploration its starter works for,
    /// until the thread's `ThreadBegin` routes its id (see `threads`).
    spawn_routes: HashMap<u64, u64>,
    inbox: HashMap<u64, Vec<EventRecord>>,
    next_id: u64,
}

/// Events of unknown processes kept for a late [`Native::register_child`].
const MAX_ORPHANS: usize = 4096;

/// Routes `r`, an event of another process: to the exploration that owns
/// its process (a `Process` record makes the new process its parent's),
/// else into the orphans.
fn route_other_process(
    pid_routes: &mut HashMap<u32, u64>,
    orphans: &mut std::collections::VecDeque<EventRecord>,
    r: &EventRecord,
) -> Option<u64> {
    if let Some(&id) = pid_routes.get(&r.pid) {
        return Some(id);
    }
    if r.kind() == Some(EventKind::Process) {
        if let Some(&id) = pid_routes.get(&(r.addr as u32)) {
            pid_routes.insert(r.pid, id);
            return Some(id);
        }
    }
    if orphans.len() >= MAX_ORPHANS {
        orphans.pop_front();
    }
    orphans.push_back(*r);
    None
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
            set_gate(None);
            *guard = None;
        }
    }
}

/// Joins the process's consumer of the ring, attaching it first if no
/// exploration holds it; the first attach hands the library `gate`, the
/// sessions' mutex gate (`session::mutex_gate`: passed in, so that this
/// file does not depend on the session). `Ok(None)` when the library is not
/// loaded (or disabled itself, having said why); `Err` when it is loaded
/// but its ring cannot be used here.
pub fn attach(gate: ring::gate::MutexGate) -> Result<Option<HubHandle>, String> {
    let mut guard = hub();
    if let Some(h) = guard.as_mut() {
        h.users += 1;
        h.next_id += 1;
        return Ok(Some(HubHandle { id: h.next_id }));
    }
    let Some(consumer) = open_consumer()? else {
        return Ok(None);
    };
    set_gate(Some(gate));
    *guard = Some(Hub {
        consumer,
        users: 1,
        routes: HashMap::new(),
        pid_routes: HashMap::new(),
        orphans: Default::default(),
        spawn_routes: HashMap::new(),
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

/// The file name of the object holding `address`, and the dynamic symbol
/// before it with the offset from it.
fn symbolise(address: usize) -> (String, Option<(String, usize)>) {
    // SAFETY: dladdr only reads the loader's tables; the names it returns
    // live as long as the object, which is loaded (the call came from it).
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if address == 0 || libc::dladdr(address as *const libc::c_void, &mut info) == 0 {
            return (String::new(), None);
        }
        let object = if info.dli_fname.is_null() {
            String::new()
        } else {
            let path = CStr::from_ptr(info.dli_fname).to_string_lossy();
            path.rsplit('/').next().unwrap_or("").to_string()
        };
        let function = (!info.dli_sname.is_null()).then(|| {
            (
                CStr::from_ptr(info.dli_sname)
                    .to_string_lossy()
                    .into_owned(),
                address.wrapping_sub(info.dli_saddr as usize),
            )
        });
        (object, function)
    }
}

/// Hands the library the session's mutex gate (or takes it back with
/// `None`), unless `FRONTRUN_MUTEX_GATE=0`.
fn set_gate(gate: Option<ring::gate::MutexGate>) {
    if gate.is_some() && std::env::var_os(ring::env::ENV_MUTEX_GATE).is_some_and(|v| v == "0") {
        return;
    }
    // SAFETY: looking a symbol up by a NUL-terminated name.
    let setter = unsafe { libc::dlsym(libc::RTLD_DEFAULT, ring::gate::SET_GATE_SYMBOL.as_ptr()) };
    if setter.is_null() {
        return;
    }
    // SAFETY: the library exports it with this signature (ring/src/gate.rs).
    let setter: extern "C" fn(Option<ring::gate::MutexGate>) =
        unsafe { std::mem::transmute(setter) };
    setter(gate);
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

/// A native mutex operation, as the preload library reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeLockOp {
    Acquire,
    TryFail,
    Release,
}

/// A server-side row lock event (see [`Native::row_locks`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowLockOp {
    /// The thread's connection holds the row lock from this step on.
    Acquire,
    /// The thread's transaction ended: the lock is free.
    Release,
    /// The thread asked for a row lock another worker's open transaction
    /// holds: the server makes it wait, so it is set aside at once.
    Block,
    /// A wait on a row lock ended without the lock being handed over (the
    /// server did not make the thread wait after all, or answered with an
    /// error): its pending acquire is dropped.
    Forget,
}

/// A drained event waiting to be applied to its thread's step.
#[derive(Clone, Debug)]
pub enum Item {
    Access(NativeAccess),
    Lock(NativeLockOp, u64),
    RowLock(RowLockOp, u64),
    /// Native code of the worker started a thread (`true`), or a thread it
    /// started was joined (`false`): see `threads`.
    Spawn(bool),
}

/// A row lock a worker's connection holds in the server, as the consumer
/// follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HeldRowLock {
    key: u64,
    thread: ThreadId,
    fd: i32,
}

/// What the consumer knows of one worker in the running execution.
#[derive(Clone, Debug, Default)]
pub struct NativeSlot {
    /// Its OS thread id, once it entered this execution.
    os_tid: Option<u32>,
    /// Its events drained while it did not hold the turn (returning from a
    /// blocking call while another worker runs); they join its next step.
    pub pending: Vec<Item>,
    /// Nesting of the blocking calls it is in.
    block_depth: u32,
    /// Since when, and on which resource, it waits in native code.
    blocked_since: Option<(Instant, u64)>,
    /// The wait its last blocking call belonged to, kept after the call
    /// returned until it does anything else: a driver that waits by polling
    /// in a loop with a short timeout (psycopg 3 polls every 100 ms) makes
    /// one long wait out of many short calls, and the wait counts from the
    /// first of them.
    last_wait: Option<(Instant, u64)>,
    /// The resource it waits on, for messages.
    waiting_on: String,
    /// The scheduler set it aside while it waits in native code; cleared
    /// when the wait returns, or when it is given a step again.
    pub set_aside: bool,
    /// The row lock (and the descriptor of the connection asking) it waits
    /// for, set aside, until the holder's transaction ends.
    row_wait: Option<(u64, i32)>,
    /// The holder of the row lock it waited for, when its wait returned
    /// while that holder held the turn and had not yet reported the end of
    /// its transaction.
    /// The server answers the waiter when it commits the holder, so the two
    /// threads' events reach the ring in either order; the wake waits for
    /// the holder's end (or for the holder's turn to end) so that the
    /// explorer sees one order.
    answered: Option<ThreadId>,
}

/// The consumer and what it knows about the running execution.
pub struct Native {
    hub: HubHandle,
    pid: u32,
    /// One per worker; reset at each `begin`.
    pub threads: Vec<NativeSlot>,
    /// Native mutexes held by workers: key -> (thread, recursion depth).
    mutexes: HashMap<u64, (ThreadId, u32)>,
    /// Outermost acquires not yet reported: a mutex taken and released
    /// within one step is never reported (see `end_native_step` in
    /// `session/native_waits.rs`).
    pub deferred: Vec<(ThreadId, u64)>,
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
    /// Server-side row locks held by the workers' open transactions
    /// ([`frontrun_ring::DB_ROW_LOCK`]), oldest first. Only kept when
    /// `model_row_locks`: a search then sees a worker that asks for a held
    /// row as blocked at once, and its search orders the transactions by
    /// their locks instead of by a timer.
    row_locks: Vec<HeldRowLock>,
    model_row_locks: bool,
    lost_at_attach: u64,
    /// `object:function+0xoffset` of the call sites of gated mutex calls.
    symbols: HashMap<usize, String>,
    /// Mutexes a worker initialised in this execution: address -> key.
    /// Such a mutex is keyed by who made it (the worker, and how many it
    /// had made before), not by its address, which freed memory hands to
    /// the next object: two workers' connections often get the same one.
    born: HashMap<u64, u64>,
    /// Mutexes each worker initialised so far in this execution.
    births: Vec<u32>,
    /// Workers parked in a gated `pthread_cond_wait`: (condition key,
    /// thread), in the order they began to wait (a signal wakes the first).
    pub cond_waiters: Vec<(u64, ThreadId)>,
    /// Processes the workers started in this execution, and their
    /// descendants: pid -> (worker, command, parent pid).
    children: HashMap<u32, (ThreadId, String, u32)>,
    /// What those processes did, held until their worker reaps them (or
    /// ends): drained at moments set by timing, they would join whichever
    /// step of the worker was open then (see [`Native::reap_child`]).
    child_items: Vec<(u32, Item)>,
    /// Threads native code started in this execution (see `threads`).
    pub(crate) spawned: threads::Spawned,
}

impl Native {
    /// `model_row_locks`: follow the server's row locks (see
    /// [`Native::row_locks`]); a search does, a replay or a serial run
    /// keeps to the schedule it was given.
    pub fn new(hub: HubHandle, num_threads: usize, model_row_locks: bool) -> Native {
        let lost_at_attach = self::hub().as_ref().map_or(0, |h| h.consumer.lost());
        Native {
            hub,
            pid: std::process::id(),
            threads: vec![NativeSlot::default(); num_threads],
            mutexes: HashMap::new(),
            deferred: Vec::new(),
            step_io: Vec::new(),
            names: HashMap::new(),
            unseen: Default::default(),
            events: 0,
            waits: 0,
            row_locks: Vec::new(),
            model_row_locks,
            lost_at_attach,
            symbols: HashMap::new(),
            born: HashMap::new(),
            births: vec![0; num_threads],
            cond_waiters: Vec::new(),
            children: HashMap::new(),
            child_items: Vec::new(),
            spawned: Default::default(),
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
            h.pid_routes.retain(|_, id| *id != self.hub.id);
            h.spawn_routes.retain(|_, id| *id != self.hub.id);
        }
        self.children.clear();
        self.spawned = Default::default();
        self.child_items.clear();
        self.threads.fill(NativeSlot::default());
        self.mutexes.clear();
        self.born.clear();
        self.births.fill(0);
        self.cond_waiters.clear();
        self.deferred.clear();
        self.step_io.clear();
        self.row_locks.clear();
    }

    /// Routes the events of `os_tid` to worker `t` from now on, and to no
    /// other worker (`None`: to none, its events are dropped). An event
    /// loop's thread runs every task, so its events belong to whichever
    /// task runs (`session/tasks.rs`).
    pub fn route(&mut self, t: Option<ThreadId>, os_tid: u32) {
        for slot in self.threads.iter_mut() {
            if slot.os_tid == Some(os_tid) {
                slot.os_tid = None;
            }
        }
        if let Some(t) = t {
            self.register(t, os_tid);
        }
    }

    /// Stops following the server's row locks for this execution: the
    /// tasks of one event loop wait for a held row by awaiting the
    /// server's answer, which the loop sees (the task is blocked on what
    /// it awaits), not in a call that holds the turn.
    pub fn no_row_lock_model(&mut self) {
        self.model_row_locks = false;
    }

    pub fn register(&mut self, t: ThreadId, os_tid: u32) {
        if let Some(slot) = self.threads.get_mut(t) {
            slot.os_tid = Some(os_tid);
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
        let own = self.pid;
        let mut mine = h.inbox.remove(&me).unwrap_or_default();
        let Hub {
            consumer,
            routes,
            pid_routes,
            orphans,
            spawn_routes,
            inbox,
            ..
        } = h;
        consumer.drain(|r| {
            let id = match routes.get(&r.tid) {
                Some(&id) => {
                    if r.kind() == Some(EventKind::ThreadStart) {
                        spawn_routes.insert(r.addr, id);
                    }
                    Some(id)
                }
                None if r.pid != own => route_other_process(pid_routes, orphans, r),
                None if r.kind() == Some(EventKind::ThreadBegin) => {
                    let id = spawn_routes.remove(&r.addr);
                    if let Some(id) = id {
                        routes.insert(r.tid, id);
                    }
                    id
                }
                None => None,
            };
            match id {
                Some(id) if id == me => mine.push(*r),
                Some(id) => inbox.entry(id).or_default().push(*r),
                None => {}
            }
        });
        mine
    }

    /// Worker `t` started the process `pid` (`command`, for explanations):
    /// its events, and those of its descendants, are `t`'s from now on
    /// (they join `t`'s steps), including those already drained.
    pub fn register_child(&mut self, t: ThreadId, pid: u32, command: &str) {
        self.children
            .insert(pid, (t, command.to_string(), self.pid));
        let mut guard = hub();
        let Some(h) = guard.as_mut() else {
            return;
        };
        let me = self.hub.id;
        h.pid_routes.insert(pid, me);
        for r in std::mem::take(&mut h.orphans) {
            if let Some(id) = route_other_process(&mut h.pid_routes, &mut h.orphans, &r) {
                h.inbox.entry(id).or_default().push(r);
            }
        }
    }

    /// The worker a process's events belong to, with the process's name;
    /// a `Process` record adds the process to its parent's worker.
    fn child_event(&mut self, r: &EventRecord) -> Option<(ThreadId, String)> {
        if r.kind() == Some(EventKind::Process) {
            let parent = r.addr as u32;
            let known = self.children.get(&parent).cloned();
            let name = r.name();
            match (self.children.get_mut(&r.pid), known) {
                // An exec of a known process: its command now.
                (Some(known), _) if !name.is_empty() => known.1 = name,
                (Some(_), _) => {}
                (None, Some((t, parent_name, _))) => {
                    let name = if name.is_empty() {
                        format!("fork of {parent_name}")
                    } else {
                        name
                    };
                    self.children.insert(r.pid, (t, name, parent));
                }
                (None, None) => {}
            }
            return None;
        }
        self.children
            .get(&r.pid)
            .map(|(t, name, _)| (*t, name.clone()))
    }

    /// Whether worker `t` started the process `pid` itself.
    pub fn started_child(&self, t: ThreadId, pid: u32) -> bool {
        self.children
            .get(&pid)
            .is_some_and(|&(owner, _, parent)| owner == t && parent == self.pid)
    }

    /// Worker `t` reaped its child `pid` (`None`: `t` ends, and every
    /// process it started counts as reaped): what the child and its
    /// descendants did, for `t`'s open step. A child's events are held
    /// until then, so that they join the step in which the worker waits
    /// for it, whenever the ring was drained.
    pub fn reap_child(&mut self, t: ThreadId, pid: Option<u32>) -> Vec<Item> {
        let (out, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.child_items)
            .into_iter()
            .partition(|&(p, _)| self.reaped_with(t, pid, p));
        self.child_items = kept;
        out.into_iter().map(|(_, item)| item).collect()
    }

    /// Whether reaping `pid` (`None`: every process of worker `t`) reaps
    /// the process `p`: `p` is `pid` or one of its descendants.
    fn reaped_with(&self, t: ThreadId, pid: Option<u32>, mut p: u32) -> bool {
        let Some(pid) = pid else {
            return self.children.get(&p).is_some_and(|c| c.0 == t);
        };
        // Up the parents, as far as processes are known.
        for _ in 0..64 {
            if p == pid {
                return true;
            }
            match self.children.get(&p) {
                Some(&(_, _, parent)) => p = parent,
                None => return false,
            }
        }
        false
    }

    /// Takes every published event and hands `(thread, item)` to `sink`;
    /// returns the threads whose blocking call returned while they were set
    /// aside. `current` holds the turn.
    pub fn drain(
        &mut self,
        current: Option<ThreadId>,
        finished: impl Fn(ThreadId) -> bool,
        mut sink: impl FnMut(ThreadId, Item),
    ) -> Vec<ThreadId> {
        let mut woke = Vec::new();
        let records = self.take_records();
        for r in &records {
            if r.pid != self.pid {
                self.drain_child_event(r, &finished);
                continue;
            }
            if self.spawn_event(r, &finished, &mut sink) {
                continue;
            }
            let Some(t) = self.threads.iter().position(|s| s.os_tid == Some(r.tid)) else {
                continue;
            };
            if finished(t) {
                continue;
            }
            let slot = &mut self.threads[t];
            let Some(kind) = r.kind() else { continue };
            match kind {
                EventKind::Connect
                | EventKind::Close
                | EventKind::Process
                | EventKind::ThreadStart
                | EventKind::ThreadBegin
                | EventKind::ThreadEnd
                | EventKind::ThreadJoin => {}
                EventKind::BlockEnter => {
                    slot.block_depth += 1;
                    if slot.blocked_since.is_none() {
                        let since = match slot.last_wait {
                            Some((since, key)) if key == r.key => since,
                            _ => Instant::now(),
                        };
                        slot.blocked_since = Some((since, r.key));
                        slot.waiting_on = r.name();
                    }
                }
                EventKind::BlockLeave => {
                    slot.block_depth = slot.block_depth.saturating_sub(1);
                    // A poll that timed out while the server holds the row
                    // back (psycopg 3 waits in a loop of short polls) has
                    // not ended the wait.
                    let timed_out = r.result == 0
                        && matches!(r.call(), Some(Call::Poll | Call::Ppoll | Call::Select));
                    if slot.block_depth == 0 && !(timed_out && slot.row_wait.is_some()) {
                        slot.last_wait = slot.blocked_since.take();
                        let holder = slot.row_wait.and_then(|(key, _)| {
                            self.row_locks
                                .iter()
                                .find(|h| h.key == key && h.thread != t)
                                .map(|h| h.thread)
                        });
                        if let Some(h) = holder.filter(|&h| current == Some(h)) {
                            slot.answered = Some(h);
                            continue;
                        }
                        if slot.set_aside {
                            slot.set_aside = false;
                            woke.push(t);
                        }
                        if let Some((key, _)) = slot.row_wait.take() {
                            sink(t, Item::RowLock(RowLockOp::Forget, key));
                        }
                    }
                }
                EventKind::Write | EventKind::Read => {
                    slot.last_wait = None;
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
                    slot.last_wait = None;
                    if self.model_row_locks {
                        self.row_lock_events(r, t, current, &mut woke, &mut sink);
                    }
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
                    let key = match self.born.get(&r.addr) {
                        Some(&key) => key,
                        None => r.key ^ (u64::from(r.pid) << 48),
                    };
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
        // A waiter answered while its holder ran, and the holder's turn is
        // over without the end of its transaction: the wait ended some
        // other way (an error, a deadlock victim) and the lock was not
        // handed over.
        for (t, slot) in self.threads.iter_mut().enumerate() {
            if slot.answered.is_some_and(|h| current != Some(h)) {
                slot.answered = None;
                if slot.set_aside {
                    slot.set_aside = false;
                    woke.push(t);
                }
                if let Some((key, _)) = slot.row_wait.take() {
                    sink(t, Item::RowLock(RowLockOp::Forget, key));
                }
            }
        }
        woke
    }

    /// Follows the server's row locks through one protocol event of `t`:
    /// a transaction's end releases the locks its connection holds (and
    /// hands each to the oldest worker waiting for it); a row write in a
    /// transaction takes its row's lock, or, when another worker's open
    /// transaction holds it and `t` holds the turn, sets `t` aside as
    /// blocked on it (its acquire then joins its next step).
    fn row_lock_events(
        &mut self,
        r: &EventRecord,
        t: ThreadId,
        current: Option<ThreadId>,
        woke: &mut Vec<ThreadId>,
        sink: &mut impl FnMut(ThreadId, Item),
    ) {
        let Some(db) = r.db() else { return };
        if db.ends_transaction() {
            let mut i = 0;
            while i < self.row_locks.len() {
                let held = self.row_locks[i];
                if held.thread != t || held.fd != r.fd {
                    i += 1;
                    continue;
                }
                self.row_locks.remove(i);
                sink(t, Item::RowLock(RowLockOp::Release, held.key));
                let waiter = self
                    .threads
                    .iter()
                    .position(|s| matches!(s.row_wait, Some((k, _)) if k == held.key));
                if let Some(w) = waiter {
                    let slot = &mut self.threads[w];
                    let (_, fd) = slot.row_wait.take().unwrap_or_default();
                    // Its call returned before this end reached the ring.
                    if slot.answered.take().is_some() && slot.set_aside {
                        slot.set_aside = false;
                        woke.push(w);
                    }
                    self.row_locks.push(HeldRowLock {
                        key: held.key,
                        thread: w,
                        fd,
                    });
                }
            }
            return;
        }
        let Some(key) = db.row_lock() else { return };
        let holder = self.row_locks.iter().find(|h| h.key == key).copied();
        match holder {
            None => {
                self.row_locks.push(HeldRowLock {
                    key,
                    thread: t,
                    fd: r.fd,
                });
                self.names
                    .entry(key)
                    .or_insert_with(|| format!("row lock of {}", r.name()));
                sink(t, Item::RowLock(RowLockOp::Acquire, key));
            }
            // Taken again in the same transaction.
            Some(h) if h.thread == t && h.fd == r.fd => {}
            Some(h) if h.thread != t && current == Some(t) && !self.threads[t].set_aside => {
                let slot = &mut self.threads[t];
                slot.row_wait = Some((key, r.fd));
                slot.set_aside = true;
                slot.waiting_on = format!("{} (row locked by thread {})", r.name(), h.thread);
                self.waits += 1;
                sink(t, Item::RowLock(RowLockOp::Block, key));
                sink(t, Item::RowLock(RowLockOp::Acquire, key));
            }
            // Another connection of the same thread, or a thread not
            // holding the turn: the wait, if any, is left to the timer.
            Some(_) => {}
        }
    }

    /// An event of a process a worker started: its file, socket and
    /// database accesses are held for the worker's step that reaps the
    /// process ([`Native::reap_child`]), marked with the process. Its waits
    /// and mutexes are its own business.
    fn drain_child_event(&mut self, r: &EventRecord, finished: &impl Fn(ThreadId) -> bool) {
        let Some((t, command)) = self.child_event(r) else {
            return;
        };
        if finished(t) {
            return;
        }
        let by = format!("in child process {} ({command})", r.pid);
        let Some(access) = self.access_by(r, t, by) else {
            return;
        };
        self.events += 1;
        self.child_items.push((r.pid, Item::Access(access)));
    }

    /// The file, socket or database access `r` made by a process or a
    /// thread worker `t` started, labelled with who made it (`by`); `None`
    /// for its other events (its waits and mutexes are its own business).
    fn access_by(&mut self, r: &EventRecord, t: ThreadId, by: String) -> Option<NativeAccess> {
        match r.kind()? {
            kind @ (EventKind::Write | EventKind::Read) => {
                let write = kind == EventKind::Write;
                let name = r.name();
                self.names.entry(r.key).or_insert_with(|| name.clone());
                Some(NativeAccess {
                    call: r.call().map_or("", |c| c.name()),
                    name,
                    label: by,
                    write,
                    keys: vec![(r.key, write)],
                })
            }
            EventKind::DbAccess => {
                let mut a = self.db_access(r, t)?;
                a.label = if a.label.is_empty() {
                    by
                } else {
                    format!("{} ({by})", a.label)
                };
                Some(a)
            }
            _ => None,
        }
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

    /// The key of the mutex at `address`, as its ring events key it, named
    /// after the object that calls it from `caller` the first time.
    pub fn gated_mutex(&mut self, address: usize, caller: usize) -> u64 {
        let name = format!("mutex:0x{address:x}");
        let key = match self.born.get(&(address as u64)) {
            Some(&key) => key,
            None => ring::resource_key(name.as_bytes()) ^ (u64::from(self.pid) << 48),
        };
        self.names.entry(key).or_insert_with(|| {
            let (object, _) = symbolise(caller);
            if object.is_empty() {
                name
            } else {
                format!("{name} ({object})")
            }
        });
        key
    }

    /// The key of the condition variable at `address`, named like a
    /// mutex (`cond:0x...`, with the object that first used it).
    pub fn gated_cond(&mut self, address: usize, caller: usize) -> u64 {
        let name = format!("cond:0x{address:x}");
        let key = ring::resource_key(name.as_bytes()) ^ (u64::from(self.pid) << 48);
        self.names.entry(key).or_insert_with(|| {
            let (object, _) = symbolise(caller);
            if object.is_empty() {
                name
            } else {
                format!("{name} ({object})")
            }
        });
        key
    }

    /// Worker `t` initialised a mutex at `address`: from now on that
    /// address is this new mutex.
    pub fn mutex_born(&mut self, t: ThreadId, address: usize) {
        let Some(n) = self.births.get_mut(t) else {
            return;
        };
        let name = format!("mutex:thread{t}#{n}");
        *n += 1;
        let key = ring::resource_key(name.as_bytes()) ^ (u64::from(self.pid) << 48);
        self.born.insert(address as u64, key);
    }

    /// `object:function+0xoffset` for a return address (`object` alone when
    /// the function has no dynamic symbol), cached.
    pub fn symbol(&mut self, caller: usize) -> String {
        self.symbols
            .entry(caller)
            .or_insert_with(|| match symbolise(caller) {
                (object, Some((function, offset))) => format!("{object}:{function}+{offset:#x}"),
                (object, None) => object,
            })
            .clone()
    }

    /// The worker holding the native mutex `key`, as far as the session saw.
    pub fn holder(&self, key: u64) -> Option<ThreadId> {
        self.mutexes.get(&key).map(|&(t, _)| t)
    }

    /// Why an execution that stopped making progress is stuck, when native
    /// waits explain it: the threads waiting in native code and on what.
    pub fn stuck_reason(&self, current: Option<ThreadId>, stuck_for: Duration) -> Option<String> {
        let waiting: Vec<String> = (self.threads.iter().enumerate())
            .filter(|&(t, s)| s.set_aside || (Some(t) == current && s.blocked_since.is_some()))
            .map(|(t, s)| format!("thread {t} on {}", s.waiting_on))
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

    /// `t` was taken as waiting for a row lock but its call returned
    /// before the step ended: it waits for nothing.
    pub fn cancel_row_wait(&mut self, t: ThreadId) {
        if let Some(slot) = self.threads.get_mut(t) {
            slot.row_wait = None;
            slot.set_aside = false;
        }
    }

    /// Whether some worker is set aside in a native wait.
    pub fn any_set_aside(&self) -> bool {
        self.threads.iter().any(|s| s.set_aside)
    }

    /// The thread's waits that have lasted longer than [`BLOCK_GRACE`].
    pub fn blocked_for_long(&self, t: ThreadId, now: Instant) -> Option<u64> {
        match self.threads.get(t).and_then(|s| s.blocked_since) {
            Some((since, key)) if now.duration_since(since) >= BLOCK_GRACE => Some(key),
            _ => None,
        }
    }
}
