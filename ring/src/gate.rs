//! The mutex gate: how a worker's `pthread_mutex_*` call asks the engine
//! for its turn before it runs.
//!
//! The ring carries events *after* they happened; a mutex operation that
//! must be scheduled has to stop *before* it happens. Both sides live in
//! the process under test (the engine is not a thread of its own: the
//! worker holding the turn runs the scheduler), so the gate is a function
//! the binding hands to the library, not a record:
//!
//! * The library exports `void frontrun_io_set_mutex_gate(MutexGate gate)`
//!   (NULL turns gating off). The binding sets it when it attaches as the
//!   ring's consumer and clears it when it detaches. The child of a `fork`
//!   starts with no gate.
//! * A hooked `pthread_mutex_lock`/`trylock`/`unlock` (and `init`) made while a consumer
//!   is attached, by a call site inside a Python extension module (an
//!   object whose file name has `.cpython-` or ends in `.abi3.so`), calls
//!   `gate(op, mutex, caller)` *before* the real function, inside the
//!   library's reentrancy guard and with `errno` saved around it. `op` is
//!   one of [`GATE_LOCK`], [`GATE_TRYLOCK`], [`GATE_UNLOCK`]; `mutex` the
//!   mutex's address; `caller` the call's return address.
//! * The gate returns one of the `GATE_*` answers below. It may block (it
//!   parks the calling thread until the engine grants it the operation);
//!   it never blocks once the exploration is over, and it returns
//!   [`GATE_PASS`] for any call it does not schedule (the thread holds the
//!   GIL, is no worker, the execution ended), which the library then
//!   handles as before (the real call, then a ring event).
//! * After [`GATE_REFUSE`] the library returns `EDEADLK` without locking
//!   and remembers the mutex for the calling thread; that thread's next
//!   `pthread_mutex_unlock` of it returns `EPERM` without unlocking (it
//!   does not hold it). At most [`REFUSED_PER_THREAD`] such mutexes are
//!   remembered per thread.

/// `pthread_mutex_lock`.
pub const GATE_LOCK: u32 = 0;
/// `pthread_mutex_trylock`.
pub const GATE_TRYLOCK: u32 = 1;
/// `pthread_mutex_unlock`.
pub const GATE_UNLOCK: u32 = 2;
/// `pthread_mutex_init`, asked whatever the thread holds and never
/// blocking: a new mutex starts at this address, so the engine stops taking
/// it for the one that lived there before (freed memory is reused: two
/// workers' connection objects often get the same address). The answer is
/// ignored.
pub const GATE_INIT: u32 = 3;

/// Not scheduled: make the real call and record it in the ring as usual.
pub const GATE_PASS: i32 = 0;
/// Scheduled and granted: make the real call; the engine already has the
/// event, so none goes into the ring.
pub const GATE_GO: i32 = 1;
/// The operation closes a lock-ordering cycle (a deadlock the engine
/// reported): return `EDEADLK` without calling the real function.
pub const GATE_REFUSE: i32 = 2;
/// A `trylock` of a mutex another worker holds: return `EBUSY` without
/// calling the real function (the engine recorded the failed attempt).
pub const GATE_BUSY: i32 = 3;

/// Mutexes refused with `EDEADLK` that one thread remembers.
pub const REFUSED_PER_THREAD: usize = 4;

/// The gate's C signature.
pub type MutexGate = unsafe extern "C" fn(op: u32, mutex: usize, caller: usize) -> i32;

/// Name of the library's setter, for `dlsym`.
pub const SET_GATE_SYMBOL: &std::ffi::CStr = c"frontrun_io_set_mutex_gate";
