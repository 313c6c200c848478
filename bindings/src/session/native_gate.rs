//! The mutex gate (`frontrun_ring::gate`): a worker's `pthread_mutex_*`
//! call from a C extension, made with the GIL released, becomes a
//! scheduling point whose step is the lock operation, exactly like the
//! cooperative `Lock` of `coop.rs`.
//!
//! The preload library calls [`mutex_gate`] from inside the hook, before
//! the real function. The calling thread is the worker itself, in native
//! code: it takes the scheduling point (which may grant the step to another
//! worker and park this one on its condition variable), then, holding the
//! turn, looks the mutex up: free, it reports the acquire and lets the real
//! call through; held by another worker, it reports a lock wait, parks
//! until a release wakes it, and tries again. A lock-ordering cycle ends
//! the execution at once (as for cooperative locks) and the call is
//! refused with `EDEADLK`, since the real call would never return.
//!
//! A call made while the thread holds the GIL is not gated: parked here,
//! it would keep every other worker from running Python code, including
//! the one whose step would wake it. Such calls stay events observed after
//! the fact (`native_waits.rs`).
//!
//! A gated `pthread_cond_wait` is played by the model, as the cooperative
//! `Condition` is (`frontrun/_coop.py`): its first step releases the mutex
//! and writes the condition (so that a signal sent before the wait and one
//! sent after are explored as two orders), then the worker parks on the
//! condition until a gated signal or broadcast (a step that writes the
//! condition and wakes its first or every waiter) or, for a timed wait, a
//! modelled timeout (every other worker waits too) lets it run again; it
//! then retakes the mutex like a `pthread_mutex_lock`. Waiters that nothing
//! wakes are a deadlock, with the blocked set the explorer reports.
//!
//! Nothing here touches Python objects. It takes the session's lock and
//! may allocate; the library's reentrancy guard is set, so mutex calls
//! made meanwhile (none, with Rust's futex-based locks) pass through.

use super::turns::{acquire_turn_with, wait_for_grant_detached, Blocked, Phase, State, Turn};
use super::worker::WORKER;
use crate::error::SessionError;
use crate::native::{NativeAccess, NativeLockOp};
use frontrun_engine::{AccessKind, ThreadId};
use frontrun_ring::gate::{
    GATE_BUSY, GATE_COND_BROADCAST, GATE_COND_PARK, GATE_COND_PARK_TIMED, GATE_COND_RELOCK,
    GATE_COND_SIGNAL, GATE_COND_TIMEDWAIT, GATE_COND_WAIT, GATE_GO, GATE_INIT, GATE_LOCK,
    GATE_PASS, GATE_REFUSE, GATE_TIMEDOUT, GATE_TRYLOCK, GATE_UNLOCK,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::turns::Shared;

/// The function handed to the library (`frontrun_ring::gate::MutexGate`).
pub unsafe extern "C" fn mutex_gate(op: u32, mutex: usize, cond: usize, caller: usize) -> i32 {
    catch_unwind(AssertUnwindSafe(|| gate(op, mutex, cond, caller))).unwrap_or(GATE_PASS)
}

fn worker() -> Option<(Arc<Shared>, ThreadId, u64)> {
    WORKER
        .try_with(|cell| {
            let w = cell.try_borrow().ok()?;
            let w = w.as_ref()?;
            Some((w.shared.clone(), w.tid, w.generation))
        })
        .ok()
        .flatten()
}

fn gate(op: u32, mutex: usize, cond: usize, caller: usize) -> i32 {
    if op == GATE_INIT {
        // Bookkeeping only: never waits, so the GIL does not matter.
        if let Some((shared, tid, generation)) = worker() {
            let mut st = shared.lock();
            if st.live(generation).is_ok() {
                if let Some(native) = st.native.as_mut() {
                    native.mutex_born(tid, mutex);
                }
            }
        }
        return GATE_PASS;
    }
    // SAFETY: PyGILState_Check may be called without the GIL.
    if unsafe { pyo3::ffi::PyGILState_Check() } != 0 {
        if matches!(op, GATE_COND_SIGNAL | GATE_COND_BROADCAST) {
            signal_in_step(op, cond, caller);
        }
        return GATE_PASS;
    }
    let Some((shared, tid, generation)) = worker() else {
        return GATE_PASS;
    };
    {
        let st = shared.lock();
        if st.live(generation).is_err() || st.native.is_none() {
            return GATE_PASS;
        }
    }
    let call = match op {
        GATE_LOCK => "pthread_mutex_lock",
        GATE_TRYLOCK => "pthread_mutex_trylock",
        GATE_UNLOCK => "pthread_mutex_unlock",
        GATE_COND_WAIT | GATE_COND_RELOCK => "pthread_cond_wait",
        GATE_COND_TIMEDWAIT => "pthread_cond_timedwait",
        GATE_COND_SIGNAL => "pthread_cond_signal",
        GATE_COND_BROADCAST => "pthread_cond_broadcast",
        GATE_COND_PARK | GATE_COND_PARK_TIMED => {
            return cond_park(
                &shared,
                tid,
                generation,
                cond,
                caller,
                op == GATE_COND_PARK_TIMED,
            )
        }
        _ => return GATE_PASS,
    };
    let wait = || wait_for_grant_detached(&shared, tid, generation);
    loop {
        match acquire_turn_with(&shared, tid, generation, wait) {
            Ok(_) => {}
            Err(SessionError::Deadlocked) => return after_deadlock(&shared, op, mutex, caller),
            Err(_) => return GATE_PASS,
        }
        let mut st = shared.lock();
        if st.live(generation).is_err() {
            return GATE_PASS;
        }
        // The step is placed at the Python call that went into C.
        let (code, offset) = st.threads[tid].last_seen.unwrap_or((0, 0));
        st.start_step(tid, code, offset);
        if matches!(
            op,
            GATE_COND_WAIT | GATE_COND_TIMEDWAIT | GATE_COND_SIGNAL | GATE_COND_BROADCAST
        ) {
            return st.gated_cond_step(&shared, tid, op, call, mutex, cond, caller);
        }
        let Some(native) = st.native.as_mut() else {
            return GATE_PASS;
        };
        let key = native.gated_mutex(mutex, caller);
        native.events += 1;
        let holder = native.holder(key);
        let name = native.names.get(&key).cloned().unwrap_or_default();
        let label = native.symbol(caller);
        st.note_native_call(tid, call, name, label);
        match (op, holder) {
            (GATE_UNLOCK, _) => {
                st.gated_release(tid, key);
                return GATE_GO;
            }
            (_, Some(u)) if u != tid && op == GATE_TRYLOCK => {
                let _ = st.engine(|x| x.lock_try_fail(tid, key));
                st.note_sync(tid, "try-acquire failed", key);
                return GATE_BUSY;
            }
            (_, Some(u)) if u != tid => {
                if st.gated_wait(&shared, tid, key) {
                    return GATE_REFUSE;
                }
                drop(st);
                match wait_for_grant_detached(&shared, tid, generation) {
                    Ok(()) => continue,
                    Err(SessionError::Deadlocked) => {
                        return after_deadlock(&shared, op, mutex, caller)
                    }
                    Err(_) => return GATE_PASS,
                }
            }
            _ => {
                let native = st.native.as_mut().expect("checked above");
                if native.lock_edge(tid, NativeLockOp::Acquire, key) {
                    let r = if op == GATE_TRYLOCK {
                        st.engine(|x| x.lock_try_acquire(tid, key))
                    } else {
                        st.engine(|x| x.lock_acquire(tid, key))
                    };
                    if r.is_err() {
                        shared.wake(&st);
                        return GATE_PASS;
                    }
                    st.note_sync(tid, "acquire", key);
                }
                return GATE_GO;
            }
        }
    }
}

/// The answer to a call whose execution ended in a deadlock while it
/// waited: a lock of a mutex another worker holds would never return, so it
/// is refused (`trylock`: busy), and so is a condition wait; anything else
/// goes on.
fn after_deadlock(shared: &Shared, op: u32, mutex: usize, caller: usize) -> i32 {
    let Some((_, tid, _)) = worker() else {
        return GATE_PASS;
    };
    let mut st = shared.lock();
    let Some(native) = st.native.as_mut() else {
        return GATE_PASS;
    };
    let key = native.gated_mutex(mutex, caller);
    match (op, native.holder(key)) {
        (GATE_LOCK | GATE_COND_RELOCK, Some(u)) if u != tid => GATE_REFUSE,
        // Nothing would wake libc's wait now: it ends at once.
        (GATE_COND_WAIT | GATE_COND_TIMEDWAIT, _) => GATE_REFUSE,
        (GATE_TRYLOCK, Some(u)) if u != tid => GATE_BUSY,
        _ => GATE_PASS,
    }
}

/// A signal or broadcast made holding the GIL takes no scheduling point,
/// but a worker holding the turn still wakes the condition's gated waiters,
/// in the step it is in.
fn signal_in_step(op: u32, cond: usize, caller: usize) {
    let Some((shared, tid, generation)) = worker() else {
        return;
    };
    let mut st = shared.lock();
    if st.live(generation).is_err() || st.current != Some(tid) || st.native.is_none() {
        return;
    }
    let call = if op == GATE_COND_BROADCAST {
        "pthread_cond_broadcast"
    } else {
        "pthread_cond_signal"
    };
    st.gated_cond_step(&shared, tid, op, call, 0, cond, caller);
}

/// Parks `tid`, which holds the turn after its wait's first step, on the
/// condition `cond` until a signal, a modelled timeout (`timed`) or the end
/// of the execution (see `frontrun_ring::gate::GATE_COND_PARK`).
fn cond_park(
    shared: &Shared,
    tid: ThreadId,
    generation: u64,
    cond: usize,
    caller: usize,
    timed: bool,
) -> i32 {
    let key = {
        let mut st = shared.lock();
        if st.live(generation).is_err() || st.current != Some(tid) {
            return GATE_PASS;
        }
        let Some(native) = st.native.as_mut() else {
            return GATE_PASS;
        };
        let key = native.gated_cond(cond, caller);
        if st.engine(|x| x.block(tid, key)).is_err() {
            shared.wake(&st);
            return GATE_PASS;
        }
        if let Some(native) = st.native.as_mut() {
            native.cond_waiters.push((key, tid));
        }
        let slot = &mut st.threads[tid];
        slot.turn = Turn::Parked(Blocked { timed, lock: None });
        slot.timed_out = false;
        st.note_sync(tid, "wait", key);
        // None with every worker parked is a deadlock (the phase is Done):
        // the wait below tells.
        let _ = st.schedule_next();
        shared.wake(&st);
        key
    };
    let woken = wait_for_grant_detached(shared, tid, generation);
    let mut st = shared.lock();
    if st.generation != generation {
        return GATE_PASS;
    }
    let timed_out = std::mem::take(&mut st.threads[tid].timed_out);
    if let Some(native) = st.native.as_mut() {
        native.cond_waiters.retain(|&w| w != (key, tid));
    }
    match woken {
        Ok(()) if st.live(generation).is_ok() && timed_out => GATE_TIMEDOUT,
        Ok(()) if st.live(generation).is_ok() => GATE_GO,
        Err(SessionError::Deadlocked) => GATE_REFUSE,
        _ => GATE_PASS,
    }
}

impl State {
    /// The step of a gated condition operation, holding the turn: a wait's
    /// first step (the condition written, the mutex released) or a signal
    /// or broadcast (the condition written, its waiters woken).
    #[allow(clippy::too_many_arguments)]
    fn gated_cond_step(
        &mut self,
        shared: &Shared,
        tid: ThreadId,
        op: u32,
        call: &'static str,
        mutex: usize,
        cond: usize,
        caller: usize,
    ) -> i32 {
        let Some(native) = self.native.as_mut() else {
            return GATE_PASS;
        };
        let key = native.gated_cond(cond, caller);
        native.events += 1;
        let name = native.names.get(&key).cloned().unwrap_or_default();
        let label = native.symbol(caller);
        let wait = matches!(op, GATE_COND_WAIT | GATE_COND_TIMEDWAIT);
        let mutex_key = wait.then(|| native.gated_mutex(mutex, caller));
        self.note_native_call(tid, call, name, label);
        if let Some(access) = (self.steps.last_mut())
            .filter(|s| s.thread == tid)
            .and_then(|s| s.native.last_mut())
        {
            access.keys.push((key, true));
        }
        if self
            .engine(|x| x.access(tid, key, AccessKind::Write))
            .is_err()
        {
            shared.wake(self);
            return GATE_PASS;
        }
        if let Some(mutex_key) = mutex_key {
            // A wait: the mutex is free from this step on.
            self.gated_release(tid, mutex_key);
            return GATE_GO;
        }
        let Some(native) = self.native.as_mut() else {
            return GATE_PASS;
        };
        let mut woken = Vec::new();
        let mut i = 0;
        while i < native.cond_waiters.len() {
            let (k, t) = native.cond_waiters[i];
            if k != key || !(op == GATE_COND_BROADCAST || woken.is_empty()) {
                i += 1;
                continue;
            }
            native.cond_waiters.remove(i);
            // One a modelled timeout already woke is no waiter any more.
            if self.threads[t].parked().is_some() {
                woken.push(t);
            }
        }
        for t in woken {
            if self.engine(|x| x.unblock(t)).is_err() {
                shared.wake(self);
                return GATE_PASS;
            }
            self.threads[t].unpark();
            self.note_sync(tid, "wake", key);
        }
        GATE_GO
    }

    fn note_sync(&mut self, tid: ThreadId, what: &'static str, key: u64) {
        if let Some(step) = self.steps.last_mut().filter(|s| s.thread == tid) {
            step.sync.push((what, key));
        }
    }

    fn note_native_call(&mut self, tid: ThreadId, call: &'static str, name: String, label: String) {
        if let Some(step) = self.steps.last_mut().filter(|s| s.thread == tid) {
            step.native.push(NativeAccess {
                call,
                name,
                label,
                write: true,
                keys: Vec::new(),
            });
        }
    }

    /// A gated unlock by `tid`: the release edge, and the threads parked on
    /// the mutex may run again. An unlock of a mutex the session did not
    /// see taken (before the exploration attached) is no edge.
    fn gated_release(&mut self, tid: ThreadId, key: u64) {
        let Some(native) = self.native.as_mut() else {
            return;
        };
        if !native.lock_edge(tid, NativeLockOp::Release, key) {
            return;
        }
        if let Some(i) = native.deferred.iter().position(|&d| d == (tid, key)) {
            // Taken in this very step by an ungated call: never reported.
            native.deferred.swap_remove(i);
            return;
        }
        let _ = self.engine(|x| x.lock_release(tid, key));
        self.note_sync(tid, "release", key);
        self.unpark_lock_waiters(key);
    }

    /// Parks `tid` on the mutex `key`, which another worker holds, and
    /// passes the turn on. Returns true when the wait closes a
    /// lock-ordering cycle: the execution then ends as a deadlock.
    fn gated_wait(&mut self, shared: &Shared, tid: ThreadId, key: u64) -> bool {
        if self.engine(|x| x.block_on_lock(tid, key)).is_err() {
            shared.wake(self);
            return false;
        }
        self.threads[tid].turn = Turn::Parked(Blocked {
            timed: false,
            lock: Some(key),
        });
        self.note_sync(tid, "wait for lock", key);
        if let Some(cycle) = self.explorer.lock_cycle(tid) {
            self.lock_cycle = Some(cycle);
            self.current = None;
            self.phase = Phase::Done;
            shared.wake(self);
            return true;
        }
        let _ = self.schedule_next();
        shared.wake(self);
        false
    }

    /// Workers parked on the lock `key` may run again.
    pub(crate) fn unpark_lock_waiters(&mut self, key: u64) {
        for slot in self.threads.iter_mut() {
            if slot.parked().is_some_and(|b| b.lock == Some(key)) {
                slot.unpark();
            }
        }
    }
}
