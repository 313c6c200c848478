//! Threads that native code starts.
//!
//! A C extension (or a library under it) that starts a thread with
//! `pthread_create` runs code that is no worker of the exploration: the
//! engine would drop its events, since it routes events by thread id. The
//! hook numbers each such thread and tells the engine who started it:
//!
//! 1. The creating thread sends [`EventKind::ThreadStart`] (the number, its
//!    call site) before calling the real `pthread_create`, so the record
//!    comes before anything the new thread sends.
//! 2. The new thread starts in [`begin`], which sends
//!    [`EventKind::ThreadBegin`] (the number, from the new thread's id) and
//!    runs the start routine, then [`EventKind::ThreadEnd`].
//! 3. A `pthread_join` of the thread that returns sends
//!    [`EventKind::ThreadJoin`] from the joining thread.
//!
//! Threads the interpreter starts (`threading`, `_thread`) are left alone:
//! the Python side follows those itself. So are calls from this library.
//!
//! The start routine and its argument wait for the new thread in a fixed
//! table of [`SPAWNS`] slots, and joinable threads' handles in another: no
//! allocation, no lock. With every slot taken, a thread is started without
//! being followed (its events are dropped, as before this module).
//! A thread that ends with `pthread_exit` sends no `ThreadEnd`.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use frontrun_ring::{EventKind, EventRecord};
use libc::{c_int, pthread_t};

use crate::mutex;
use crate::state::{self, Guard};

/// Threads being started at once, and joinable threads remembered.
const SPAWNS: usize = 256;

pub type StartRoutine = extern "C" fn(*mut c_void) -> *mut c_void;

struct Spawn {
    /// 0 free, 1 being filled or waiting for its thread.
    taken: AtomicU32,
    start: AtomicUsize,
    arg: AtomicUsize,
    id: AtomicU64,
}

static SPAWN_TABLE: [Spawn; SPAWNS] = [const {
    Spawn {
        taken: AtomicU32::new(0),
        start: AtomicUsize::new(0),
        arg: AtomicUsize::new(0),
        id: AtomicU64::new(0),
    }
}; SPAWNS];

struct Joinable {
    /// The `pthread_t`, 0 when the entry is free.
    thread: AtomicU64,
    id: AtomicU64,
}

static JOIN_TABLE: [Joinable; SPAWNS] = [const {
    Joinable {
        thread: AtomicU64::new(0),
        id: AtomicU64::new(0),
    }
}; SPAWNS];

/// A `pthread_t` (an `unsigned long`) as a table word.
#[allow(clippy::unnecessary_cast)]
fn handle_of(thread: pthread_t) -> u64 {
    thread as u64
}

/// The next thread's number (numbers start at 1).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn emit(guard: &Guard, kind: EventKind, id: u64, caller: usize, info: u32) {
    let Some(ring) = state::active_ring() else {
        return;
    };
    let mut record = EventRecord::EMPTY;
    record.kind = kind as u8;
    record.addr = id;
    record.result = caller as i64;
    if info != 0 {
        mutex::origin_of(info, &mut record);
    }
    let _ = guard.emit(ring, &mut record);
}

/// `pthread_create(thread, attr, start, arg)` from `caller`; `real` calls
/// the real function with the start routine and argument given to it.
pub fn create(
    thread: *mut pthread_t,
    start: StartRoutine,
    arg: *mut c_void,
    caller: usize,
    real: impl FnOnce(StartRoutine, *mut c_void) -> c_int,
) -> c_int {
    if state::active_ring().is_none() {
        return real(start, arg);
    }
    let Some(guard) = Guard::enter() else {
        return real(start, arg);
    };
    let info = mutex::classify_caught(caller);
    if info & mutex::SITE_IGNORED != 0 {
        drop(guard);
        return real(start, arg);
    }
    let Some(index) = SPAWN_TABLE.iter().position(|s| {
        s.taken
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }) else {
        drop(guard);
        return real(start, arg);
    };
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let spawn = &SPAWN_TABLE[index];
    spawn.start.store(start as usize, Ordering::Relaxed);
    spawn.arg.store(arg as usize, Ordering::Relaxed);
    spawn.id.store(id, Ordering::Release);
    emit(&guard, EventKind::ThreadStart, id, caller, info);
    // The slot's index, not a pointer, is the new thread's argument.
    let rc = real(begin, (index + 1) as *mut c_void);
    let saved = state::errno();
    if rc != 0 {
        spawn.taken.store(0, Ordering::Release);
        emit(&guard, EventKind::ThreadJoin, id, 0, 0);
    } else if !thread.is_null() {
        // SAFETY: pthread_create filled `*thread` on success.
        let handle = handle_of(unsafe { *thread });
        if let Some(entry) = JOIN_TABLE.iter().find(|j| {
            j.thread
                .compare_exchange(0, handle, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        }) {
            entry.id.store(id, Ordering::Release);
        }
    }
    state::set_errno(saved);
    rc
}

/// Where a followed thread starts: announces itself, runs the start
/// routine it was given, announces its end.
extern "C" fn begin(slot: *mut c_void) -> *mut c_void {
    let spawn = &SPAWN_TABLE[(slot as usize - 1) % SPAWNS];
    let id = spawn.id.load(Ordering::Acquire);
    let start = spawn.start.load(Ordering::Relaxed);
    let arg = spawn.arg.load(Ordering::Relaxed) as *mut c_void;
    spawn.taken.store(0, Ordering::Release);
    // SAFETY: stored from a `StartRoutine` by `create`.
    let start: StartRoutine = unsafe { std::mem::transmute(start) };
    if let Some(guard) = Guard::enter() {
        emit(&guard, EventKind::ThreadBegin, id, 0, 0);
    }
    let ret = start(arg);
    if let Some(guard) = Guard::enter() {
        emit(&guard, EventKind::ThreadEnd, id, 0, 0);
    }
    ret
}

/// Forgets the joinable thread `thread`; its number, if it was followed.
fn forget(thread: pthread_t) -> Option<u64> {
    let handle = handle_of(thread);
    if handle == 0 {
        return None;
    }
    let entry = JOIN_TABLE
        .iter()
        .find(|j| j.thread.load(Ordering::Acquire) == handle)?;
    let id = entry.id.swap(0, Ordering::AcqRel);
    entry.thread.store(0, Ordering::Release);
    (id != 0).then_some(id)
}

/// `pthread_join(thread, ...)`; `real` joins.
pub fn join(thread: pthread_t, real: impl FnOnce() -> c_int) -> c_int {
    let rc = real();
    if rc == 0 {
        let saved = state::errno();
        if let Some(id) = forget(thread) {
            if let Some(guard) = Guard::enter() {
                emit(&guard, EventKind::ThreadJoin, id, 0, 0);
            }
        }
        state::set_errno(saved);
    }
    rc
}

/// `pthread_detach(thread)`: nobody will join it.
pub fn detach(thread: pthread_t, real: impl FnOnce() -> c_int) -> c_int {
    let rc = real();
    if rc == 0 {
        forget(thread);
    }
    rc
}
