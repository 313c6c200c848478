//! The turn-taking side of the preload library's ring (`native.rs` reads
//! it): where drained events go, and workers that wait in native code (a
//! `recv` on a server) being set aside so that others may run.

use super::turns::{Phase, State, Turn};
use crate::mode::NativeWait;
use crate::native::{Item, Native, NativeLockOp, RowLockOp};
use frontrun_engine::ThreadId;
use std::time::Instant;

impl State {
    /// Drains the ring: events of the thread holding the turn join its open
    /// step; those of other threads wait for their next step. Threads set
    /// aside whose native wait returned become runnable again.
    pub(crate) fn drain_native(&mut self) {
        let Some(mut native) = self.native.take() else {
            return;
        };
        let mut items = Vec::new();
        let threads = &self.threads;
        let woke = native.drain(
            self.current,
            |t| threads.get(t).is_none_or(|s| s.finished()),
            |t, item| items.push((t, item)),
        );
        for (t, item) in items {
            match item {
                Item::Spawn(started) => {
                    let slot = &mut self.threads[t];
                    slot.native_threads = if started {
                        slot.native_threads + 1
                    } else {
                        slot.native_threads.saturating_sub(1)
                    };
                }
                Item::RowLock(RowLockOp::Block, key) => self.row_lock_wait(t, key),
                Item::RowLock(RowLockOp::Forget, key) => native.threads[t]
                    .pending
                    .retain(|i| !matches!(i, Item::RowLock(RowLockOp::Acquire, k) if *k == key)),
                item if self.current == Some(t) && self.threads[t].turn != Turn::SetAside => {
                    self.apply_native(&mut native, t, item);
                }
                item => native.threads[t].pending.push(item),
            }
        }
        for t in woke {
            if self.mode.native_wait() == NativeWait::SetAsideBlocked {
                let _ = self.engine(|x| x.unblock(t));
            }
            self.progress += 1;
        }
        self.native = Some(native);
    }

    /// Worker `t`, holding the turn, reaped its child `pid` (`None`: `t`
    /// ends): what the child and its descendants did joins `t`'s open step
    /// (the ring is drained first, so nothing the child did stays behind).
    pub(crate) fn reap_child(&mut self, t: ThreadId, pid: Option<u32>) {
        self.drain_native();
        let Some(mut native) = self.native.take() else {
            return;
        };
        let mut items = native.reap_child(t, pid);
        if pid.is_none() {
            items.extend(native.end_spawns(t));
            self.threads[t].native_threads = 0;
        }
        for item in items {
            if self.current == Some(t) {
                self.apply_native(&mut native, t, item);
            } else {
                native.threads[t].pending.push(item);
            }
        }
        self.native = Some(native);
    }

    /// `t`, holding the turn, asked the server for a row another worker's
    /// open transaction has locked: the server makes it wait, so the
    /// explorer sees it blocked on that lock until the holder's
    /// transaction ends, and the turn goes on (the caller of
    /// `drain_native` schedules the next step when `t` held it).
    fn row_lock_wait(&mut self, t: ThreadId, key: u64) {
        if self.current != Some(t) || self.threads[t].turn == Turn::SetAside {
            return;
        }
        if self.engine(|x| x.block_on_lock(t, key)).is_err() {
            // The explorer does not know the holder (its acquire was
            // refused): a plain wait, ended when the call returns.
            if self.engine(|x| x.block(t, key)).is_err() {
                return;
            }
        }
        self.end_native_step(t);
        self.threads[t].turn = Turn::SetAside;
        self.current = None;
        self.row_blocked = true;
    }

    /// Reports a native mutex operation; a refused one (a history the
    /// engine finds inconsistent) only loses ordering information.
    fn native_lock(&mut self, t: ThreadId, op: NativeLockOp, key: u64) {
        let _ = match op {
            NativeLockOp::Acquire => self.explorer.lock_acquire(t, key),
            NativeLockOp::TryFail => self.explorer.lock_try_fail(t, key),
            NativeLockOp::Release => {
                let r = self.explorer.lock_release(t, key);
                self.unpark_lock_waiters(key);
                r
            }
        };
    }

    fn apply_native(&mut self, native: &mut Native, t: ThreadId, item: Item) {
        match item {
            Item::Access(a) => {
                for &(key, write) in &a.keys {
                    if native.step_io.contains(&(key, write)) {
                        continue;
                    }
                    native.step_io.push((key, write));
                    let kind = super::turns::kind(write);
                    if self.engine(|x| x.io_access(t, key, kind)).is_err() {
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
            // A refused row lock (a history the engine finds inconsistent,
            // such as a lock the server handed over differently) only
            // loses ordering information.
            Item::RowLock(RowLockOp::Acquire, key) => {
                let _ = self.explorer.lock_acquire(t, key);
            }
            Item::RowLock(RowLockOp::Release, key) => {
                let _ = self.explorer.lock_release(t, key);
            }
            Item::RowLock(RowLockOp::Block | RowLockOp::Forget, _) | Item::Spawn(_) => {}
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
                        self.native_lock(t, op, key);
                    }
                    NativeLockOp::TryFail => self.native_lock(t, op, key),
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
                self.native_lock(t, NativeLockOp::Acquire, key);
            } else {
                i += 1;
            }
        }
        self.native = Some(native);
    }

    /// A step was just granted to `t`: events it made while set aside join it.
    pub(crate) fn native_step_opened(&mut self, t: ThreadId) {
        let Some(mut native) = self.native.take() else {
            return;
        };
        native.step_io.clear();
        // Given a step, it no longer waits aside (a row lock handed over
        // before its call returned, a poll loop back in Python).
        native.threads[t].set_aside = false;
        let items = std::mem::take(&mut native.threads[t].pending);
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
        native.any_set_aside()
            && (self.threads.iter().zip(&native.threads)).all(|(s, n)| s.finished() || n.set_aside)
    }

    /// Some thread waits in native code and every other unfinished one is
    /// parked in a cooperative primitive: the native wait may still end and
    /// wake them, so this is no deadlock yet.
    pub(crate) fn native_and_coop_waiting(&self) -> bool {
        let Some(native) = self.native.as_ref() else {
            return false;
        };
        native.any_set_aside()
            && (self.threads.iter().zip(&native.threads))
                .all(|(s, n)| s.finished() || n.set_aside || s.parked().is_some())
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
        if std::mem::take(&mut self.row_blocked) {
            let _ = self.schedule_next();
            return true;
        }
        if self.awaiting_native {
            if self.native_waiting() {
                return false;
            }
            let _ = self.schedule_next();
            return true;
        }
        if self.one_loop {
            // A task in a blocking native call blocks the whole loop, as
            // under asyncio: no other task can run until it returns.
            return false;
        }
        let Some(c) = self.current else { return false };
        if matches!(self.threads[c].turn, Turn::SetAside | Turn::Finished) {
            return false;
        }
        let Some(native) = self.native.as_ref() else {
            return false;
        };
        let Some(key) = native.blocked_for_long(c, Instant::now()) else {
            return false;
        };
        let other = (self.threads.iter().zip(&native.threads))
            .enumerate()
            .any(|(u, (s, n))| u != c && !s.finished() && !n.set_aside);
        if !other {
            return false;
        }
        match self.mode.native_wait() {
            NativeWait::KeepTurn => return false,
            NativeWait::SetAside => {}
            NativeWait::SetAsideBlocked => {
                if self.engine(|x| x.block(c, key)).is_err() {
                    return true;
                }
            }
        }
        if let Some(native) = self.native.as_mut() {
            native.threads[c].set_aside = true;
            native.waits += 1;
        }
        self.threads[c].turn = Turn::SetAside;
        let _ = self.schedule_next();
        true
    }
}
