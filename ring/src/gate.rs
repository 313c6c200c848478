//! The mutex gate: how a worker's `pthread_mutex_*` (and `pthread_cond_*`)
//! call asks the engine for its turn before it runs.
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
//!   `gate(op, mutex, cond, caller)` *before* the real function, inside the
//!   library's reentrancy guard and with `errno` saved around it. `op` is
//!   one of [`GATE_LOCK`], [`GATE_TRYLOCK`], [`GATE_UNLOCK`]; `mutex` the
//!   mutex's address; `cond` is 0; `caller` the call's return address.
//! * A hooked `pthread_cond_wait`/`timedwait`/`signal`/`broadcast` from
//!   such a call site asks the same gate, with `cond` the condition's
//!   address (and `mutex` the waiter's mutex, 0 for signal and broadcast).
//!   A wait is three questions: [`GATE_COND_WAIT`] (or
//!   [`GATE_COND_TIMEDWAIT`]) is the step that releases the mutex in the
//!   model and joins the condition; after [`GATE_GO`] the library unlocks
//!   the real mutex and asks [`GATE_COND_PARK`] (or
//!   [`GATE_COND_PARK_TIMED`]), which returns once a signal woke the
//!   thread, a modelled timeout ended its wait ([`GATE_TIMEDOUT`]), or the
//!   execution ended; then it retakes the mutex with [`GATE_COND_RELOCK`]
//!   (a gated `pthread_mutex_lock` under the wait's name) and the real
//!   lock. The real `pthread_cond_wait` is not called for a gated wait.
//!   After [`GATE_PASS`] to the first question the real function runs, as
//!   for any call the gate does not schedule; after [`GATE_REFUSE`] (the
//!   execution deadlocked first) the library unlocks the mutex and returns
//!   `EDEADLK`, as for a refused park.
//! * The gate returns one of the `GATE_*` answers below. It may block (it
//!   parks the calling thread until the engine grants it the operation);
//!   it never blocks once the exploration is over, and it returns
//!   [`GATE_PASS`] for any call it does not schedule (the thread holds the
//!   GIL, is no worker, the execution ended), which the library then
//!   handles as before (the real call, then a ring event).
//! * After [`GATE_REFUSE`] the library returns `EDEADLK` without locking
//!   and remembers the mutex for the calling thread; that thread's next
//!   `pthread_mutex_unlock` of it (or `pthread_cond_wait` with it) returns
//!   `EPERM` without unlocking (it does not hold it), until the thread
//!   locks it for real again. At most [`REFUSED_PER_THREAD`] such mutexes
//!   are remembered per thread.

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

/// The step that begins a `pthread_cond_wait`: the mutex is released (in
/// the model: the library unlocks the real one after [`GATE_GO`]) and the
/// thread joins the condition's waiters.
pub const GATE_COND_WAIT: u32 = 4;
/// [`GATE_COND_WAIT`] for `pthread_cond_timedwait`.
pub const GATE_COND_TIMEDWAIT: u32 = 5;
/// Parks the thread, which holds the turn, on the condition until a
/// signal wakes it ([`GATE_GO`]), a modelled timeout ends the wait
/// ([`GATE_TIMEDOUT`], only for the timed variant), the execution
/// deadlocks ([`GATE_REFUSE`]: return `EDEADLK` without the mutex) or ends
/// otherwise ([`GATE_PASS`]: take the real mutex and return 0, a spurious
/// wakeup).
pub const GATE_COND_PARK: u32 = 6;
/// [`GATE_COND_PARK`] for a wait with a timeout.
pub const GATE_COND_PARK_TIMED: u32 = 7;
/// A woken waiter retakes its mutex: answered as [`GATE_LOCK`].
pub const GATE_COND_RELOCK: u32 = 8;
/// `pthread_cond_signal`: wakes the condition's first waiter, if any. The
/// library makes the real call whatever the answer (a thread outside the
/// model may be waiting in the real function).
pub const GATE_COND_SIGNAL: u32 = 9;
/// `pthread_cond_broadcast`: wakes every waiter; as [`GATE_COND_SIGNAL`].
pub const GATE_COND_BROADCAST: u32 = 10;

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

/// A timed wait ended by a modelled timeout: retake the mutex, return
/// `ETIMEDOUT`.
pub const GATE_TIMEDOUT: i32 = 4;

/// Mutexes refused with `EDEADLK` that one thread remembers.
pub const REFUSED_PER_THREAD: usize = 4;

/// The gate's C signature.
pub type MutexGate = unsafe extern "C" fn(op: u32, mutex: usize, cond: usize, caller: usize) -> i32;

/// Name of the library's setter, for `dlsym`.
pub const SET_GATE_SYMBOL: &std::ffi::CStr = c"frontrun_io_set_mutex_gate";
