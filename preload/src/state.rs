//! Process-wide and per-thread state the hooks consult on every call.
//!
//! Everything here is an atomic or a `const`-initialised thread-local
//! without a destructor, so it is usable before the library's constructor
//! has run (another library's constructor may call a hook first), during
//! thread exit, and in a `vfork` child (which shares this memory with its
//! parent and runs on the parent's thread-local block).

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use frontrun_ring::gate::REFUSED_PER_THREAD;
use frontrun_ring::{EventRecord, PushOutcome, RingView, FLAG_MUTEX_EVENTS};

/// Base of the mapped ring once the library is attached; null before the
/// constructor ran, and forever when the library is disabled. The mapping
/// is never unmapped (hooks can run until the very end of the process).
pub static RING: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

/// Initialisation: not started, running, finished (attached or disabled).
pub const INIT_NONE: u8 = 0;
pub const INIT_RUNNING: u8 = 1;
pub const INIT_DONE: u8 = 2;
pub static INIT: AtomicU8 = AtomicU8::new(INIT_NONE);

/// This process's pid, refreshed in the child after `fork` (but not after
/// `vfork`: see the crate docs).
pub static PID: AtomicU32 = AtomicU32::new(0);
/// Bumped in the child after each `fork`, so cached thread ids are redone.
pub static FORK_GENERATION: AtomicU32 = AtomicU32::new(0);
/// `FRONTRUN_MUTEX=1` was set.
pub static MUTEX_FROM_ENV: AtomicBool = AtomicBool::new(false);
/// Producer wait on a full ring, in nanoseconds.
pub static WAIT_NS: AtomicU64 = AtomicU64::new(0);

/// What each thread keeps; one thread-local block so that a hook looks it
/// up once.
pub struct ThreadState {
    /// Set while this thread runs hook logic: hooked calls made from inside
    /// it (by the library itself or by the real function) pass through.
    in_hook: Cell<bool>,
    /// `FORK_GENERATION << 32 | tid`, 0 until first needed.
    tid: Cell<u64>,
    /// Mutexes whose lock the engine refused (`EDEADLK`, a deadlock it
    /// reported): this thread does not hold them, so its unlock of one is
    /// not passed on. 0 is an empty cell.
    refused: [Cell<usize>; REFUSED_PER_THREAD],
}

thread_local! {
    static THREAD: ThreadState = const {
        ThreadState {
            in_hook: Cell::new(false),
            tid: Cell::new(0),
            refused: [const { Cell::new(0) }; REFUSED_PER_THREAD],
        }
    };
}

/// The ring, if the library is attached and a consumer wants events.
#[inline(always)]
pub fn active_ring() -> Option<RingView> {
    let base = NonNull::new(RING.load(Ordering::Acquire))?;
    // SAFETY: RING only ever holds a validated, never-unmapped ring.
    let view = unsafe { RingView::from_validated(base) };
    view.consumer_attached().then_some(view)
}

/// Like [`active_ring`] but also runs the library's initialisation if no
/// constructor has run yet (a hooked call from an earlier constructor).
#[inline(always)]
pub fn active_ring_or_init() -> Option<RingView> {
    if INIT.load(Ordering::Acquire) == INIT_NONE {
        crate::init::initialize();
    }
    active_ring()
}

/// The ring, when mutex events are wanted.
#[inline(always)]
pub fn mutex_ring() -> Option<RingView> {
    let view = active_ring()?;
    (MUTEX_FROM_ENV.load(Ordering::Relaxed) || view.flags() & FLAG_MUTEX_EVENTS != 0)
        .then_some(view)
}

/// Proof that this thread entered hook logic; leaving clears the flag.
pub struct Guard {
    thread: &'static ThreadState,
}

impl Guard {
    #[inline(always)]
    pub fn enter() -> Option<Guard> {
        // SAFETY: the block has no destructor, so it stays valid for the
        // whole life of the thread, which outlasts any guard.
        let thread: &'static ThreadState = THREAD.with(|t| unsafe { &*(t as *const ThreadState) });
        if thread.in_hook.get() {
            return None;
        }
        thread.in_hook.set(true);
        Some(Guard { thread })
    }

    #[inline]
    fn tid(&self) -> u32 {
        let generation = FORK_GENERATION.load(Ordering::Relaxed);
        let cached = self.thread.tid.get();
        if cached != 0 && (cached >> 32) as u32 == generation {
            return cached as u32;
        }
        // SAFETY: gettid and getpid cannot fail. The system call, not glibc's
        // gettid(): that wrapper is glibc 2.30's, newer than the 2.17 the
        // manylinux wheels are linked against.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
        // A vfork child runs on its parent's thread-local block: caching its
        // own id there would give the parent thread the child's id.
        if unsafe { libc::getpid() } as u32 == PID.load(Ordering::Relaxed) {
            self.thread
                .tid
                .set(u64::from(generation) << 32 | u64::from(tid));
        }
        tid
    }

    /// Remembers that this thread's lock of `mutex` was refused (when a
    /// cell is free; a fifth refused mutex is forgotten, and its unlock
    /// then reaches the real function).
    pub fn note_refused(&self, mutex: usize) {
        if let Some(cell) = self.thread.refused.iter().find(|c| c.get() == 0) {
            cell.set(mutex);
        }
    }

    /// Whether `mutex` was refused to this thread (kept in mind).
    #[inline]
    pub fn refused(&self, mutex: usize) -> bool {
        mutex != 0 && self.thread.refused.iter().any(|c| c.get() == mutex)
    }

    /// Whether `mutex` was refused to this thread; forgets it.
    #[inline]
    pub fn take_refused(&self, mutex: usize) -> bool {
        match self.thread.refused.iter().find(|c| c.get() == mutex) {
            Some(cell) if mutex != 0 => {
                cell.set(0);
                true
            }
            _ => false,
        }
    }

    /// Stamp `record` with time, pid and thread, and push it.
    #[inline]
    pub fn emit(&self, ring: RingView, record: &mut EventRecord) -> PushOutcome {
        record.time_ns = monotonic_ns();
        record.pid = PID.load(Ordering::Relaxed);
        record.tid = self.tid();
        ring.push(
            record,
            Duration::from_nanos(WAIT_NS.load(Ordering::Relaxed)),
        )
    }
}

impl Drop for Guard {
    #[inline(always)]
    fn drop(&mut self) {
        self.thread.in_hook.set(false);
    }
}

#[inline(always)]
pub fn errno() -> libc::c_int {
    // SAFETY: glibc's per-thread errno location.
    unsafe { *libc::__errno_location() }
}

#[inline(always)]
pub fn set_errno(value: libc::c_int) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = value }
}

#[inline]
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
