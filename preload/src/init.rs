//! Attaching to a ring at load time, and what the library exports for the
//! in-process engine. The protocol is documented in
//! `frontrun_ring`.

use std::ffi::{c_char, c_int, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;

use frontrun_ring as ring;
use frontrun_ring::{env, RingError, VERSION};

use crate::config;
use crate::state::{self, Guard, INIT, INIT_DONE, INIT_NONE, INIT_RUNNING};

/// The ring file this process writes to, NUL-terminated for C callers.
static RING_PATH: OnceLock<CString> = OnceLock::new();
/// This process created the ring (and removes it at exit).
static OWN_RING: AtomicBool = AtomicBool::new(false);
/// Pid recorded in the ring's header by its creator. A forked child of the
/// creator inherits `OWN_RING` but must not remove the file when it exits.
static CREATOR_PID: AtomicU32 = AtomicU32::new(0);

#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = on_load;

/// The last component of `argv[0]`, as glibc hands it to constructors, for
/// the [`EventKind::Process`] record of an exec'd process. Set once,
/// before `attach` reads it.
static COMMAND: OnceLock<Vec<u8>> = OnceLock::new();

#[used]
#[link_section = ".fini_array"]
static DESTRUCTOR: extern "C" fn() = on_unload;

extern "C" fn on_load(argc: c_int, argv: *const *const c_char, _envp: *const *const c_char) {
    if argc > 0 && !argv.is_null() {
        // SAFETY: glibc passes the process's argv to .init_array functions;
        // argv[0] is a NUL-terminated string when argc > 0.
        let arg0 = unsafe { *argv };
        if !arg0.is_null() {
            let bytes = unsafe { std::ffi::CStr::from_ptr(arg0) }.to_bytes();
            let base = bytes.rsplit(|&b| b == b'/').next().unwrap_or(bytes);
            let _ = COMMAND.set(base.to_vec());
        }
    }
    initialize();
}

/// Records that this process started, with its parent's pid (see
/// [`EventKind::Process`]). Only while a consumer wants events.
fn announce_process(guard: &Guard, parent: u32, command: &[u8]) {
    let Some(ring) = state::active_ring() else {
        return;
    };
    let mut record = ring::EventRecord::EMPTY;
    record.kind = ring::EventKind::Process as u8;
    record.addr = u64::from(parent);
    record.set_name(command);
    let _ = guard.emit(ring, &mut record);
}

/// Runs once, from the constructor or from the first hooked call that comes
/// before it. A thread that finds initialisation already running does not
/// wait for it: its call passes through.
#[cold]
#[inline(never)]
pub fn initialize() {
    if INIT
        .compare_exchange(INIT_NONE, INIT_RUNNING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    // Calls the library makes while setting up (file creation, closing the
    // ring's descriptor, the stderr message) must not reach the hooks'
    // logic. The guard may already be held by a hook that triggered this.
    let guard = Guard::enter();
    let announce = std::panic::catch_unwind(attach).ok().flatten();
    if let (Some(guard), Some(parent)) = (guard.as_ref(), announce) {
        announce_process(
            guard,
            parent,
            COMMAND.get().map_or(&[][..], |c| c.as_slice()),
        );
    }
    INIT.store(INIT_DONE, Ordering::Release);
}

/// Attaches to the ring; returns the parent's pid when this process was
/// started by an attached one (to announce, see [`announce_process`]).
fn attach() -> Option<u32> {
    // SAFETY: getpid cannot fail.
    state::PID.store(unsafe { libc::getpid() } as u32, Ordering::Relaxed);
    // SAFETY: registering a plain function; it runs in the child of fork.
    unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    crate::mutex::learn_process();

    let mutex = config::mutex_from_env(std::env::var_os(env::ENV_MUTEX)).reported();
    state::MUTEX_FROM_ENV.store(mutex, Ordering::Relaxed);
    let wait = config::wait_from_env(std::env::var_os(env::ENV_RING_WAIT_US)).reported();
    state::WAIT_NS.store(wait, Ordering::Relaxed);
    if let Ok(spec) = std::env::var(env::ENV_PROTOCOLS) {
        let bad = crate::db::configure(&spec);
        if !bad.is_empty() {
            eprintln!(
                "frontrun: {}: ignoring {:?}: expected <port 1-65535>=<pg|mysql|redis|none>, at most 16; \
                 the other entries apply",
                env::ENV_PROTOCOLS,
                bad
            );
        }
    }

    let (path, own) = match std::env::var_os(env::ENV_RING) {
        Some(path) => (PathBuf::from(path), false),
        None => {
            let capacity = config::slots_from_env(std::env::var_os(env::ENV_RING_SLOTS)).reported();
            crate::stale::remove_stale_rings(&ring::ring_parent_dir());
            match ring::create_private_ring(capacity) {
                Ok(path) => (path, true),
                Err(e) => {
                    disable(None, &e);
                    return None;
                }
            }
        }
    };
    let (map, view) = match ring::map_ring_file(&path) {
        Ok(mapped) => mapped,
        Err(e) => {
            disable(Some(&path), &e);
            return None;
        }
    };
    // The mapping stays for the life of the process: hooks may run until
    // the last instruction, after every destructor.
    std::mem::forget(map);
    crate::stale::hold(&path);
    if let Some(dir) = path.parent() {
        let _ = crate::names::RING_DIR.set(dir.as_os_str().as_encoded_bytes().to_vec());
    }
    // SAFETY: getpid cannot fail.
    let own = own || view.creator_pid() == unsafe { libc::getpid() } as u32;
    OWN_RING.store(own, Ordering::Relaxed);
    CREATOR_PID.store(view.creator_pid(), Ordering::Relaxed);
    let _ = RING_PATH.set(CString::new(path.as_os_str().as_encoded_bytes()).unwrap_or_default());
    // Children (forked or exec'd) attach to the same ring.
    std::env::set_var(env::ENV_RING, &path);
    state::RING.store(view.base().as_ptr(), Ordering::Release);
    // Exec'd by an attached process (or started by one): announced with
    // the parent's pid.
    // SAFETY: getppid cannot fail.
    (!own).then(|| unsafe { libc::getppid() } as u32)
}

fn disable(path: Option<&Path>, error: &RingError) {
    match path {
        Some(path) => {
            let reason: &dyn std::fmt::Display = match error {
                RingError::Io { error, .. } => error,
                other => other,
            };
            eprintln!(
                "frontrun: {}={}: {reason}; libfrontrun_io.so is disabled and records nothing",
                env::ENV_RING,
                path.display()
            )
        }
        None => eprintln!(
            "frontrun: cannot create an event ring: {error}; libfrontrun_io.so is disabled and records nothing"
        ),
    }
}

extern "C" fn after_fork_in_child() {
    // SAFETY: getpid cannot fail.
    let parent = state::PID.swap(unsafe { libc::getpid() } as u32, Ordering::Relaxed);
    state::FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
    // The gate schedules the parent's workers; in the child it would take
    // the parent's session lock, which another thread may have held at the
    // fork.
    crate::mutex::forget_gate();
    if let Some(guard) = Guard::enter() {
        announce_process(&guard, parent, b"");
    }
}

extern "C" fn on_unload() {
    // Only the creating process removes the file, and only the file: the
    // mapping stays (other destructors may still make hooked calls), and
    // processes already attached keep theirs.
    if !OWN_RING.load(Ordering::Relaxed) {
        return;
    }
    // SAFETY: getpid cannot fail.
    if CREATOR_PID.load(Ordering::Relaxed) != unsafe { libc::getpid() } as u32 {
        return;
    }
    let Some(path) = RING_PATH.get() else {
        return;
    };
    let _guard = Guard::enter();
    let path = Path::new(std::ffi::OsStr::from_bytes(path.as_bytes()));
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

use std::os::unix::ffi::OsStrExt;

/// Path of the ring this process writes to, or NULL when disabled.
#[no_mangle]
pub extern "C" fn frontrun_io_ring_path() -> *const c_char {
    if state::RING.load(Ordering::Acquire).is_null() {
        return std::ptr::null();
    }
    RING_PATH.get().map_or(std::ptr::null(), |p| p.as_ptr())
}

/// 1 when this process created the ring, 0 when it inherited it.
#[no_mangle]
pub extern "C" fn frontrun_io_ring_is_own() -> libc::c_int {
    libc::c_int::from(OWN_RING.load(Ordering::Relaxed))
}

/// Layout version of the records this library writes.
#[no_mangle]
pub extern "C" fn frontrun_io_ring_version() -> libc::c_uint {
    VERSION
}
