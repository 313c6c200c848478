//! Mutex events, attributed to the shared object that took the mutex.
//!
//! The exported `pthread_mutex_*` symbols are tiny trampolines (see
//! `hooks.rs`) that pass the caller's return address along. The address is
//! mapped to its object with `dladdr` once per call site and cached in a
//! lock-free table. Calls from the interpreter (the GIL and the
//! interpreter's other internal mutexes, taken several times per blocking
//! call) are dropped, as are calls from this library, so the engine only
//! sees mutexes taken by extension modules and the libraries they use.
//!
//! `dladdr` takes the dynamic loader's lock. It runs once per new call site,
//! while the calling thread may hold the mutex it just took; a deadlock would
//! need another thread inside `dlopen` that waits for that same mutex at
//! that moment. The cache makes this a one-time window per call site.
//!
//! Scheduling: a call from a Python extension module's own code (the
//! object's file name has `.cpython-` or ends in `.abi3.so`) first asks
//! the engine's gate for its turn, when the engine set one (see
//! `frontrun_ring::gate`); calls from the libraries under an extension
//! (libpq, OpenSSL, libc) are only observed, since their internal mutexes
//! would add scheduling points that tell no two interleavings apart.
//!
//! Condition variables: a gated `pthread_cond_wait` never reaches libc's.
//! Its release and retake of the mutex happen inside libc, where no hook
//! sees them, so the library plays the wait itself: the gate's step
//! releases the mutex in the model, the real mutex is unlocked, the gate
//! parks the thread on the condition until a gated signal (or a modelled
//! timeout) wakes it, and the mutex is retaken through the gated lock path.
//! Ungated waits (the GIL's own, a thread holding the GIL) are libc's.
//!
//! Limitations: a caller that jumps to `pthread_mutex_lock` as a tail call
//! is attributed to its own caller.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use frontrun_ring::gate::{
    MutexGate, GATE_BUSY, GATE_COND_BROADCAST, GATE_COND_PARK, GATE_COND_PARK_TIMED,
    GATE_COND_RELOCK, GATE_COND_SIGNAL, GATE_COND_TIMEDWAIT, GATE_COND_WAIT, GATE_GO, GATE_INIT,
    GATE_LOCK, GATE_PASS, GATE_REFUSE, GATE_TIMEDOUT, GATE_TRYLOCK, GATE_UNLOCK,
};
use frontrun_ring::{resource_key, Call, EventKind, EventRecord, ORIGIN_CAPACITY};
use libc::{c_int, pthread_cond_t, pthread_mutex_t};

use crate::state::{self, Guard};

const SITES: usize = 2048;
const OBJECTS: usize = 256;
const PROBES: usize = 32;

/// Site info: valid bit, "ignore" bit, object index.
const SITE_VALID: u32 = 1 << 31;
pub(crate) const SITE_IGNORED: u32 = 1 << 30;
/// The call site is in a Python extension module: its calls are gated.
const SITE_EXTENSION: u32 = 1 << 29;
const SITE_OBJECT: u32 = 0xffff;

/// The engine's gate (a [`MutexGate`]), null when none is set.
static GATE: AtomicPtr<libc::c_void> = AtomicPtr::new(std::ptr::null_mut());

/// Sets (or, with NULL, clears) the function gated mutex calls ask for
/// their turn (see `frontrun_ring::gate`).
#[no_mangle]
pub extern "C" fn frontrun_io_set_mutex_gate(gate: Option<MutexGate>) {
    let p = gate.map_or(std::ptr::null_mut(), |g| g as *mut libc::c_void);
    GATE.store(p, Ordering::Release);
}

/// In the child of a `fork`: no gate (see `init::after_fork_in_child`).
pub fn forget_gate() {
    GATE.store(std::ptr::null_mut(), Ordering::Release);
}

/// Asks the gate about a call from the site `info`; [`GATE_PASS`] when no
/// gate is set or the site is not gated. errno is the caller's business.
#[inline]
fn ask_gate(info: u32, op: u32, mutex: *mut pthread_mutex_t, return_address: usize) -> i32 {
    ask_gate_cond(info, op, mutex, std::ptr::null_mut(), return_address)
}

/// [`ask_gate`] for an operation on the condition `cond`.
#[inline]
fn ask_gate_cond(
    info: u32,
    op: u32,
    mutex: *mut pthread_mutex_t,
    cond: *mut pthread_cond_t,
    return_address: usize,
) -> i32 {
    if info & (SITE_IGNORED | SITE_EXTENSION) != SITE_EXTENSION {
        return GATE_PASS;
    }
    let gate = GATE.load(Ordering::Acquire);
    if gate.is_null() {
        return GATE_PASS;
    }
    // SAFETY: only ever set from a `MutexGate` by the setter above.
    let gate: MutexGate = unsafe { std::mem::transmute(gate) };
    // SAFETY: the gate's contract (frontrun_ring::gate): it never unwinds.
    unsafe { gate(op, mutex as usize, cond as usize, return_address) }
}

fn is_extension_module(name: &[u8]) -> bool {
    name.ends_with(b".abi3.so") || name.windows(9).any(|w| w == b".cpython-")
}

struct Site {
    return_address: AtomicUsize,
    info: AtomicU32,
}

struct Object {
    base: AtomicUsize,
    /// Length of the name, with bit 8 set once the name is written.
    len: AtomicU32,
    name: [AtomicU64; ORIGIN_CAPACITY / 8],
}

static SITE_TABLE: [Site; SITES] = [const {
    Site {
        return_address: AtomicUsize::new(0),
        info: AtomicU32::new(0),
    }
}; SITES];

static OBJECT_TABLE: [Object; OBJECTS] = [const {
    Object {
        base: AtomicUsize::new(0),
        len: AtomicU32::new(0),
        name: [const { AtomicU64::new(0) }; ORIGIN_CAPACITY / 8],
    }
}; OBJECTS];

/// Facts about the process fixed at initialisation.
pub struct Process {
    /// Load base of the main program.
    pub main_base: usize,
    /// The main program is a Python interpreter.
    pub main_is_python: bool,
    /// Load base of this library.
    pub own_base: usize,
}

pub static PROCESS: OnceLock<Process> = OnceLock::new();

fn object_base(address: usize) -> Option<(usize, *const libc::c_char)> {
    // SAFETY: dladdr only reads the loader's tables.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(address as *const libc::c_void, &mut info) == 0 {
            return None;
        }
        Some((info.dli_fbase as usize, info.dli_fname))
    }
}

fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Called once from initialisation.
pub fn learn_process() {
    // SAFETY: getauxval reads the auxiliary vector.
    let entry = unsafe { libc::getauxval(libc::AT_ENTRY) } as usize;
    let main_base = object_base(entry).map(|(b, _)| b).unwrap_or(0);
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
    let exe_name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let own_base = object_base(learn_process as *const () as usize)
        .map(|(b, _)| b)
        .unwrap_or(0);
    let _ = PROCESS.set(Process {
        main_base,
        main_is_python: exe_name.starts_with("python"),
        own_base,
    });
}

fn object_index(base: usize, path: &[u8]) -> Option<u32> {
    let start = base.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56;
    for i in 0..OBJECTS {
        let index = (start + i) % OBJECTS;
        let object = &OBJECT_TABLE[index];
        let current = object.base.load(Ordering::Acquire);
        if current == base {
            return Some(index as u32);
        }
        if current == 0 {
            match object
                .base
                .compare_exchange(0, base, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    let name = basename(path);
                    let n = name.len().min(ORIGIN_CAPACITY);
                    let mut bytes = [0u8; ORIGIN_CAPACITY];
                    bytes[..n].copy_from_slice(&name[..n]);
                    for (w, word) in object.name.iter().enumerate() {
                        let mut chunk = [0u8; 8];
                        chunk.copy_from_slice(&bytes[w * 8..w * 8 + 8]);
                        word.store(u64::from_ne_bytes(chunk), Ordering::Relaxed);
                    }
                    object.len.store(n as u32 | 0x100, Ordering::Release);
                    return Some(index as u32);
                }
                Err(actual) if actual == base => return Some(index as u32),
                Err(_) => {}
            }
        }
    }
    None
}

fn classify_uncached(return_address: usize) -> u32 {
    let Some(process) = PROCESS.get() else {
        return SITE_VALID | SITE_IGNORED;
    };
    let Some((base, fname)) = object_base(return_address) else {
        return SITE_VALID | SITE_IGNORED;
    };
    let path: &[u8] = if fname.is_null() {
        b""
    } else {
        // SAFETY: dladdr returns a NUL-terminated name owned by the loader.
        unsafe { std::ffi::CStr::from_ptr(fname) }.to_bytes()
    };
    let name = basename(path);
    let interpreter = name.starts_with(b"libpython")
        || (base == process.main_base && process.main_is_python)
        || base == process.own_base;
    let Some(index) = object_index(base, path) else {
        return SITE_VALID | SITE_IGNORED;
    };
    let extension = if is_extension_module(name) {
        SITE_EXTENSION
    } else {
        0
    };
    SITE_VALID | if interpreter { SITE_IGNORED } else { 0 } | extension | index
}

/// Site info for a return address, computing it once per call site.
fn classify(return_address: usize) -> u32 {
    let start = return_address.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 53;
    for i in 0..PROBES {
        let site = &SITE_TABLE[(start + i) % SITES];
        let current = site.return_address.load(Ordering::Acquire);
        if current == return_address {
            let info = site.info.load(Ordering::Acquire);
            if info != 0 {
                return info;
            }
            return classify_uncached(return_address);
        }
        if current == 0 {
            let info = classify_uncached(return_address);
            if site
                .return_address
                .compare_exchange(0, return_address, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                site.info.store(info, Ordering::Release);
            }
            return info;
        }
    }
    classify_uncached(return_address)
}

pub(crate) fn origin_of(info: u32, record: &mut EventRecord) {
    let object = &OBJECT_TABLE[(info & SITE_OBJECT) as usize % OBJECTS];
    let len = object.len.load(Ordering::Acquire);
    if len & 0x100 == 0 {
        return;
    }
    let mut bytes = [0u8; ORIGIN_CAPACITY];
    for (w, word) in object.name.iter().enumerate() {
        bytes[w * 8..w * 8 + 8].copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
    }
    record.set_origin(&bytes[..(len & 0xff) as usize]);
}

/// `mutex:0x<address in lower-case hex>` into `out`; returns its length.
/// (Written by hand: `core::fmt` costs more than the rest of the event.)
fn mutex_name(address: usize, out: &mut [u8; 32]) -> usize {
    const PREFIX: &[u8] = b"mutex:0x";
    out[..PREFIX.len()].copy_from_slice(PREFIX);
    let digits = ((usize::BITS - address.leading_zeros()).div_ceil(4)).max(1) as usize;
    for i in 0..digits {
        let nibble = (address >> (4 * (digits - 1 - i))) & 0xf;
        out[PREFIX.len() + i] = b"0123456789abcdef"[nibble];
    }
    PREFIX.len() + digits
}

fn emit(
    guard: &Guard,
    ring: frontrun_ring::RingView,
    info: u32,
    mutex: *mut pthread_mutex_t,
    call: Call,
    kind: EventKind,
    result: c_int,
) {
    let mut record = EventRecord::EMPTY;
    record.kind = kind as u8;
    record.call = call as u8;
    record.result = i64::from(result);
    record.addr = mutex as u64;
    let mut name = [0u8; 32];
    let len = mutex_name(mutex as usize, &mut name);
    record.key = resource_key(&name[..len]);
    record.set_name(&name[..len]);
    origin_of(info, &mut record);
    let _ = guard.emit(ring, &mut record);
}

/// Whether mutex calls are recorded now (see `io::recording`).
#[inline(always)]
pub fn recording() -> bool {
    state::mutex_ring().is_some()
}

/// Which event a mutex call produces, from its result.
fn kind_after(call: Call, result: c_int) -> Option<EventKind> {
    match (call, result) {
        (Call::MutexLock, 0) | (Call::MutexTrylock, 0) => Some(EventKind::MutexLock),
        (Call::MutexTrylock, libc::EBUSY) => Some(EventKind::MutexTryFailed),
        _ => None,
    }
}

/// `pthread_mutex_lock` and `pthread_mutex_trylock`: the event follows the
/// acquisition, so its sequence number orders it after the previous
/// holder's unlock.
#[inline(always)]
pub fn acquire(
    call: Call,
    mutex: *mut pthread_mutex_t,
    return_address: usize,
    real: impl FnOnce() -> c_int,
) -> c_int {
    match state::mutex_ring() {
        None => real(),
        Some(ring) => acquire_recorded(ring, call, mutex, return_address, real),
    }
}

#[inline(never)]
fn acquire_recorded(
    ring: frontrun_ring::RingView,
    call: Call,
    mutex: *mut pthread_mutex_t,
    return_address: usize,
    real: impl FnOnce() -> c_int,
) -> c_int {
    let Some(guard) = Guard::enter() else {
        return real();
    };
    let saved = state::errno();
    let op = if call == Call::MutexTrylock {
        GATE_TRYLOCK
    } else {
        GATE_LOCK
    };
    let (info, answer) = catch_unwind(AssertUnwindSafe(|| {
        let info = classify(return_address);
        (info, ask_gate(info, op, mutex, return_address))
    }))
    .unwrap_or((SITE_VALID | SITE_IGNORED, GATE_PASS));
    state::set_errno(saved);
    match answer {
        GATE_GO => {
            let ret = real();
            if ret == 0 {
                // Held for real now: a refusal of it in an earlier
                // execution (worker threads are reused) no longer holds.
                guard.take_refused(mutex as usize);
            }
            return ret;
        }
        GATE_REFUSE => {
            guard.note_refused(mutex as usize);
            return libc::EDEADLK;
        }
        GATE_BUSY => return libc::EBUSY,
        _ => {}
    }
    let ret = real();
    let saved = state::errno();
    if ret == 0 {
        guard.take_refused(mutex as usize);
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if info & SITE_IGNORED != 0 {
            return;
        }
        if let Some(kind) = kind_after(call, ret) {
            emit(&guard, ring, info, mutex, call, kind, ret);
        }
    }));
    state::set_errno(saved);
    ret
}

/// `pthread_mutex_unlock`: the event is recorded while the mutex is still
/// held, for the same reason.
#[inline(always)]
pub fn release(
    mutex: *mut pthread_mutex_t,
    return_address: usize,
    real: impl FnOnce() -> c_int,
) -> c_int {
    match state::mutex_ring() {
        None => real(),
        Some(ring) => release_recorded(ring, mutex, return_address, real),
    }
}

#[inline(never)]
fn release_recorded(
    ring: frontrun_ring::RingView,
    mutex: *mut pthread_mutex_t,
    return_address: usize,
    real: impl FnOnce() -> c_int,
) -> c_int {
    let Some(guard) = Guard::enter() else {
        return real();
    };
    if guard.take_refused(mutex as usize) {
        // Its lock was refused: this thread does not hold it.
        return libc::EPERM;
    }
    let saved = state::errno();
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let info = classify(return_address);
        // Granted: the engine has the release; otherwise it is recorded
        // while the mutex is still held, as for an ungated call.
        if ask_gate(info, GATE_UNLOCK, mutex, return_address) != GATE_GO && info & SITE_IGNORED == 0
        {
            emit(
                &guard,
                ring,
                info,
                mutex,
                Call::MutexUnlock,
                EventKind::MutexUnlock,
                0,
            );
        }
    }));
    state::set_errno(saved);
    real()
}

/// `pthread_mutex_init`: the gate learns that a new mutex starts at this
/// address (see `frontrun_ring::gate::GATE_INIT`); no event is recorded.
#[inline(never)]
pub fn born(
    mutex: *mut pthread_mutex_t,
    return_address: usize,
    real: impl FnOnce() -> c_int,
) -> c_int {
    if GATE.load(Ordering::Acquire).is_null() {
        return real();
    }
    let Some(_guard) = Guard::enter() else {
        return real();
    };
    let saved = state::errno();
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let info = classify(return_address);
        ask_gate(info, GATE_INIT, mutex, return_address)
    }));
    state::set_errno(saved);
    real()
}

/// Whether a gate is set and mutex calls are recorded: the condition
/// hooks pass straight through otherwise (the GIL's waits are among them).
#[inline(always)]
pub fn gated() -> bool {
    !GATE.load(Ordering::Relaxed).is_null() && recording()
}

/// The call site's info, computed without letting a panic out.
pub(crate) fn classify_caught(return_address: usize) -> u32 {
    catch_unwind(AssertUnwindSafe(|| classify(return_address))).unwrap_or(SITE_VALID | SITE_IGNORED)
}

/// `pthread_cond_wait` (`timed`: `pthread_cond_timedwait`, whose `real`
/// call carries the deadline). Gated, the wait is the model's (see the
/// module's comment, and `frontrun_ring::gate::GATE_COND_WAIT`): the real
/// function is never called, and a modelled timeout returns `ETIMEDOUT`.
#[inline(never)]
pub fn cond_wait(
    cond: *mut pthread_cond_t,
    mutex: *mut pthread_mutex_t,
    timed: bool,
    return_address: usize,
    real: impl FnOnce() -> c_int,
) -> c_int {
    let Some(guard) = Guard::enter() else {
        return real();
    };
    if guard.refused(mutex as usize) {
        // Its lock was refused: this thread does not hold the mutex.
        return libc::EPERM;
    }
    let saved = state::errno();
    let info = classify_caught(return_address);
    let (wait, park) = if timed {
        (GATE_COND_TIMEDWAIT, GATE_COND_PARK_TIMED)
    } else {
        (GATE_COND_WAIT, GATE_COND_PARK)
    };
    match ask_gate_cond(info, wait, mutex, cond, return_address) {
        GATE_GO => {}
        GATE_REFUSE => {
            // The execution ended in a deadlock before the wait began: it
            // ends as a wait refused while parked does, without the mutex.
            // SAFETY: the caller's mutex, which it holds.
            unsafe { crate::real::pthread_mutex_unlock(mutex) };
            guard.note_refused(mutex as usize);
            state::set_errno(saved);
            return libc::EDEADLK;
        }
        _ => {
            state::set_errno(saved);
            return real();
        }
    }
    // Released in the model (the step is this thread's, nobody else runs
    // a gated call meanwhile): now for real.
    // SAFETY: the caller's mutex, which it holds (pthread_cond_wait's
    // precondition).
    unsafe { crate::real::pthread_mutex_unlock(mutex) };
    let result = match ask_gate_cond(info, park, mutex, cond, return_address) {
        GATE_REFUSE => {
            // The execution ended in a deadlock: the wait would never end.
            guard.note_refused(mutex as usize);
            state::set_errno(saved);
            return libc::EDEADLK;
        }
        GATE_TIMEDOUT => Some(libc::ETIMEDOUT),
        GATE_GO => Some(0),
        // The execution is over: a spurious wakeup, the mutex taken for
        // real with no model to ask.
        _ => None,
    };
    if result.is_some()
        && ask_gate_cond(
            info,
            GATE_COND_RELOCK,
            mutex,
            std::ptr::null_mut(),
            return_address,
        ) == GATE_REFUSE
    {
        guard.note_refused(mutex as usize);
        state::set_errno(saved);
        return libc::EDEADLK;
    }
    // SAFETY: the caller's mutex; granted (or unscheduled), uncontended in
    // the model.
    let rc = unsafe { crate::real::pthread_mutex_lock(mutex) };
    state::set_errno(saved);
    if rc != 0 {
        return rc;
    }
    result.unwrap_or(0)
}

/// `pthread_cond_signal` (`broadcast`: `pthread_cond_broadcast`): a gated
/// call is a step that wakes the condition's waiters in the model; the real
/// call follows in every case, for threads waiting in libc's function.
#[inline(never)]
pub fn cond_wake(
    cond: *mut pthread_cond_t,
    broadcast: bool,
    return_address: usize,
    real: impl FnOnce() -> c_int,
) -> c_int {
    let Some(guard) = Guard::enter() else {
        return real();
    };
    let saved = state::errno();
    let info = classify_caught(return_address);
    let op = if broadcast {
        GATE_COND_BROADCAST
    } else {
        GATE_COND_SIGNAL
    };
    let _ = ask_gate_cond(info, op, std::ptr::null_mut(), cond, return_address);
    state::set_errno(saved);
    drop(guard);
    real()
}
