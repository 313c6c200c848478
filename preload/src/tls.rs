//! OpenSSL's plaintext calls: the real functions behind the `SSL_*` hooks.
//!
//! libpq and mysqlclient encrypt with OpenSSL, often a private copy bundled
//! in a binary wheel (psycopg2-binary, psycopg's binary package) next to the
//! system's copy that Python's `ssl` module uses. The hooks in `hooks.rs`
//! stand in front of every copy, since the symbol names are the same, so the
//! real function must be the one of the copy the caller linked against:
//! `dlsym(RTLD_NEXT)` would find the first copy in the global scope, which
//! for a copy loaded privately (`RTLD_LOCAL`, as Python loads extension
//! modules) is the wrong library, with its own structure layouts.
//!
//! Each hook is entered through a trampoline that passes the caller's return
//! address. The object holding that address (`dladdr`) is opened again with
//! `RTLD_NOLOAD`, and `dlsym` on its handle searches that object and its
//! own dependencies, which is how the caller's call would have been bound
//! without this library. The functions (`SSL_write`, `SSL_read`,
//! `SSL_write_ex`, `SSL_read_ex`, `SSL_connect`, `SSL_do_handshake` and
//! `SSL_get_fd`) are resolved together per
//! call site and cached in a fixed table, so the loader is asked once per
//! call site; when the table is full, every call asks it again (correct,
//! only slower). The loader calls happen under the reentrancy guard, so
//! the mutexes they take are not recorded.

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

use crate::state::Guard;

/// The functions resolved per call site, by index.
#[derive(Clone, Copy)]
pub enum SslFn {
    Write = 0,
    Read = 1,
    WriteEx = 2,
    ReadEx = 3,
    GetFd = 4,
    Connect = 5,
    DoHandshake = 6,
}

pub const FUNCTIONS: usize = 7;
const NAMES: [&CStr; FUNCTIONS] = [
    c"SSL_write",
    c"SSL_read",
    c"SSL_write_ex",
    c"SSL_read_ex",
    c"SSL_get_fd",
    c"SSL_connect",
    c"SSL_do_handshake",
];

const SITES: usize = 64;
const EMPTY: u8 = 0;
const FILLING: u8 = 1;
const READY: u8 = 2;

struct Site {
    caller: AtomicUsize,
    state: AtomicU8,
    own: std::sync::atomic::AtomicBool,
    functions: [AtomicPtr<c_void>; FUNCTIONS],
}

static SITE_TABLE: [Site; SITES] = [const {
    Site {
        caller: AtomicUsize::new(0),
        state: AtomicU8::new(EMPTY),
        own: std::sync::atomic::AtomicBool::new(false),
        functions: [const { AtomicPtr::new(std::ptr::null_mut()) }; FUNCTIONS],
    }
}; SITES];

thread_local! {
    /// The caller of this thread's latest hook call from outside this
    /// library. A real function that a hook called can end in a tail call
    /// to another `SSL_*` function (OpenSSL's `SSL_connect` jumps to
    /// `SSL_do_handshake`), whose return address is then the hook's own:
    /// that call belongs to the copy of OpenSSL the hook called into, the
    /// one this caller linked against.
    static OUTER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The real functions for one call site.
pub struct Real {
    functions: [*mut c_void; FUNCTIONS],
    /// The call site is in this library (a tail call, see `OUTER`).
    own: bool,
}

impl Real {
    /// The function, or null when no copy of OpenSSL defines it.
    pub fn get(&self, f: SslFn) -> *mut c_void {
        self.functions[f as usize]
    }
}

/// The real `SSL_*` functions for a call from `caller` (a return address).
/// `hooks` are this library's own definitions, never returned.
pub fn real_for(caller: usize, hooks: &[*const c_void; FUNCTIONS]) -> Real {
    let real = site_real(caller, hooks);
    if !real.own {
        OUTER.with(|o| o.set(caller));
        return real;
    }
    match OUTER.with(|o| o.get()) {
        0 => real,
        outer => site_real(outer, hooks),
    }
}

fn site_real(caller: usize, hooks: &[*const c_void; FUNCTIONS]) -> Real {
    let start = caller.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58;
    for i in 0..8 {
        let site = &SITE_TABLE[(start + i) % SITES];
        let current = site.caller.load(Ordering::Acquire);
        if current == caller && site.state.load(Ordering::Acquire) == READY {
            return Real {
                functions: std::array::from_fn(|f| site.functions[f].load(Ordering::Relaxed)),
                own: site.own.load(Ordering::Relaxed),
            };
        }
        if current == 0
            && site
                .state
                .compare_exchange(EMPTY, FILLING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let real = resolve(caller, hooks);
            for (slot, f) in site.functions.iter().zip(real.functions) {
                slot.store(f, Ordering::Relaxed);
            }
            site.own.store(real.own, Ordering::Relaxed);
            site.caller.store(caller, Ordering::Release);
            site.state.store(READY, Ordering::Release);
            return real;
        }
    }
    resolve(caller, hooks)
}

#[cold]
fn resolve(caller: usize, hooks: &[*const c_void; FUNCTIONS]) -> Real {
    // Held while the loader runs: its own mutexes are not events.
    let _guard = Guard::enter();
    let mut functions = [std::ptr::null_mut(); FUNCTIONS];
    let mut own = false;
    // SAFETY: dladdr fills `info` for an address; the name it returns lives
    // as long as the object, which is loaded (the caller runs in it).
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        let mut handle = std::ptr::null_mut();
        if caller != 0
            && libc::dladdr(caller as *const c_void, &mut info) != 0
            && !info.dli_fname.is_null()
            && *info.dli_fname != 0
        {
            let mut mine: libc::Dl_info = std::mem::zeroed();
            own = libc::dladdr(resolve as *const c_void, &mut mine) != 0
                && mine.dli_fbase == info.dli_fbase;
            handle = libc::dlopen(info.dli_fname, libc::RTLD_NOLOAD | libc::RTLD_LAZY);
        }
        for (i, name) in NAMES.iter().enumerate() {
            let mut p = if handle.is_null() {
                std::ptr::null_mut()
            } else {
                libc::dlsym(handle, name.as_ptr())
            };
            if p.is_null() || hooks.contains(&(p as *const c_void)) {
                p = libc::dlsym(libc::RTLD_NEXT, name.as_ptr());
            }
            if hooks.contains(&(p as *const c_void)) {
                p = std::ptr::null_mut();
            }
            functions[i] = p;
        }
        if !handle.is_null() {
            libc::dlclose(handle);
        }
    }
    Real { functions, own }
}

/// Stops the process when a hook has no real function to call (an
/// `SSL_*` call from code that linked against no OpenSSL cannot happen).
/// The message names the object the call came from.
pub fn missing(name: SslFn, caller: usize) -> ! {
    let mut object: &[u8] = b"an unknown object";
    // SAFETY: dladdr on an address; the name lives as long as the object.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if caller != 0
            && libc::dladdr(caller as *const c_void, &mut info) != 0
            && !info.dli_fname.is_null()
        {
            object = CStr::from_ptr(info.dli_fname).to_bytes();
        }
    }
    let parts: [&[u8]; 5] = [
        b"frontrun: libfrontrun_io.so cannot find the real ",
        NAMES[name as usize].to_bytes(),
        b" for its caller in ",
        object,
        b"; stopping\n",
    ];
    for part in parts {
        // SAFETY: a raw write(2) to stderr: the `write` symbol is hooked.
        unsafe { libc::syscall(libc::SYS_write, 2, part.as_ptr(), part.len()) };
    }
    // SAFETY: abort never returns.
    unsafe { libc::abort() }
}

// ---------------------------------------------------------------------------
// The descriptor under a session whose BIO does not say (libpq 18 gives its
// sessions a BIO of its own, for which `SSL_get_fd` answers -1).
//
// Such a session's first calls run without classification: their socket
// calls are recorded as usual (ciphertext, on the coarse key) and the
// descriptor they use is noted per thread. From then on the session's
// descriptor comes from this table, emptied for a descriptor when it is
// closed (so a session allocated later at the same address is not taken
// for the old one).

const SESSIONS: usize = 128;

struct Session {
    ssl: AtomicUsize,
    fd: std::sync::atomic::AtomicI32,
}

static SESSION_TABLE: [Session; SESSIONS] = [const {
    Session {
        ssl: AtomicUsize::new(0),
        fd: std::sync::atomic::AtomicI32::new(-1),
    }
}; SESSIONS];

/// -2: this thread is not learning; -1: learning, nothing seen; else the
/// descriptor its TLS call used.
const NOT_LEARNING: libc::c_int = -2;

thread_local! {
    static LEARNED: std::cell::Cell<libc::c_int> = const { std::cell::Cell::new(NOT_LEARNING) };
}

fn session_slot(ssl: usize) -> usize {
    ssl.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (usize::BITS - 7)
}

/// The descriptor noted for `ssl`, or -1.
pub fn session_fd(ssl: *mut c_void) -> libc::c_int {
    let key = ssl as usize;
    let start = session_slot(key);
    for i in 0..8 {
        let s = &SESSION_TABLE[(start + i) % SESSIONS];
        if s.ssl.load(Ordering::Acquire) == key {
            return s.fd.load(Ordering::Acquire);
        }
    }
    -1
}

fn remember(ssl: *mut c_void, fd: libc::c_int) {
    let key = ssl as usize;
    let start = session_slot(key);
    for i in 0..8 {
        let s = &SESSION_TABLE[(start + i) % SESSIONS];
        let current = s.ssl.load(Ordering::Acquire);
        if current == key {
            s.fd.store(fd, Ordering::Release);
            return;
        }
        if current == 0
            && s.ssl
                .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            s.fd.store(fd, Ordering::Release);
            s.ssl.store(key, Ordering::Release);
            return;
        }
    }
    // Full: the session stays unclassified (its ciphertext stays coarse).
}

/// `fd` was closed: sessions over it are gone.
#[inline]
pub fn forget_fd(fd: libc::c_int) {
    for s in &SESSION_TABLE {
        if s.fd.load(Ordering::Relaxed) == fd {
            let key = s.ssl.load(Ordering::Acquire);
            if key != 0 && key != usize::MAX && s.fd.load(Ordering::Acquire) == fd {
                s.fd.store(-1, Ordering::Release);
                let _ = s
                    .ssl
                    .compare_exchange(key, 0, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
    }
}

/// A socket call on `fd` (recorded or passed through by the reentrancy
/// guard): note it when this thread is learning a session's descriptor.
#[inline(always)]
pub fn note_socket_call(fd: libc::c_int) {
    let _ = LEARNED.try_with(|l| {
        if l.get() == -1 {
            l.set(fd);
        }
    });
}

/// Runs `real` (a TLS call on `ssl`) and notes the descriptor its socket
/// calls used.
pub fn learning<R>(ssl: *mut c_void, real: impl FnOnce() -> R) -> R {
    let _ = LEARNED.try_with(|l| l.set(-1));
    let ret = real();
    let fd = LEARNED
        .try_with(|l| l.replace(NOT_LEARNING))
        .unwrap_or(NOT_LEARNING);
    if fd >= 0 {
        remember(ssl, fd);
    }
    ret
}
