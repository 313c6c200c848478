//! The events a step reports: accesses, lock operations, waits, spawns,
//! joins and ends, each recorded with its happens-before and the races it
//! makes; and the deadlocks they can form.

use super::*;

impl Explorer {
    pub(super) fn open_step(&mut self, t: ThreadId) {
        let ex = &mut self.exec;
        ex.thread_steps[t] += 1;
        let local = ex.thread_steps[t];
        ex.thread_clock[t].set(t, local);
        let start = ex.accesses.len() as u32;
        ex.steps.push(Step {
            thread: t,
            local,
            acc_start: start,
            acc_end: start,
        });
        ex.current = Some(t);
        if let Some(from) = ex.woken_by[t].take() {
            self.sync_from(from);
        }
    }

    /// Ends the open step: computes its clock and its races, and records its
    /// accesses in the path.
    pub(super) fn close_step(&mut self) {
        let Some(q) = self.exec.current.take() else {
            return;
        };
        let ex = &mut self.exec;
        let s = ex.steps.len() - 1;
        ex.steps[s].acc_end = ex.accesses.len() as u32;
        // A candidate is a race unless another predecessor of this step
        // happens after it. For a blocking acquire, only predecessors of
        // what the step did up to the acquire count: what it touches after
        // taking the lock (a request that locks a row and writes it, in one
        // native call) is ordered after the previous holder's critical
        // section by the lock itself, and must not hide the race between
        // the two acquires, which is the one to reverse.
        let races_before = ex.races.len();
        for c in &ex.candidates {
            let first = &ex.steps[c.first.step as usize];
            let indirect = ex.preds.iter().any(|p| {
                p.step != c.first.step
                    && (!c.acquire || p.at <= c.second)
                    && ex.clocks.entry(p.step as usize, first.thread) >= first.local
            });
            if indirect {
                continue;
            }
            let second = AccRef {
                step: s as u32,
                thread: q as u32,
                acc: c.second,
            };
            if !ex.races[races_before..].contains(&(c.first, second)) {
                ex.races.push((c.first, second));
            }
        }
        ex.candidates.clear();
        for p in &ex.preds {
            let clock = ex.clocks.get(p.step as usize);
            ex.thread_clock[q].join(clock);
        }
        ex.preds.clear();
        ex.clocks.push(&ex.thread_clock[q]);
        for &child in &ex.spawned {
            let (a, b) = if child < q {
                let (lo, hi) = ex.thread_clock.split_at_mut(q);
                (&mut lo[child], &hi[0])
            } else {
                let (lo, hi) = ex.thread_clock.split_at_mut(child);
                (&mut hi[0], &lo[q])
            };
            a.join(b.as_slice());
        }
        ex.spawned.clear();
        let acc = &ex.accesses[ex.steps[s].acc_start as usize..ex.steps[s].acc_end as usize];
        let node = &mut self.path[s];
        if s < self.branch_point && node.event.as_slice() != acc {
            self.stats.divergences += 1;
        }
        node.event.clear();
        node.event.extend_from_slice(acc);
    }

    pub(super) fn push_access(&mut self, space: Space, key: ObjectKey, op: Op) -> u32 {
        let idx = self.exec.accesses.len() as u32;
        self.exec.accesses.push(Access { space, key, op });
        idx
    }

    pub(super) fn current_ref(&self, acc: u32) -> AccRef {
        let s = self.exec.steps.len() - 1;
        AccRef {
            step: s as u32,
            thread: self.exec.steps[s].thread as u32,
            acc,
        }
    }

    pub(super) fn add_pred(&mut self, r: AccRef) {
        if r.step as usize + 1 != self.exec.steps.len() {
            let at = self.exec.accesses.len() as u32 - 1;
            self.exec.preds.push(Pred { step: r.step, at });
        }
    }

    /// Notes a possible race with `first`, unless the scheduled thread
    /// already knows of it (its clock so far, synchronisation included).
    pub(super) fn add_candidate(&mut self, first: AccRef, second: u32) {
        self.push_candidate(first, second, false);
    }

    pub(super) fn push_candidate(&mut self, first: AccRef, second: u32, acquire: bool) {
        let s = self.exec.steps.len() - 1;
        let q = self.exec.steps[s].thread;
        let f = &self.exec.steps[first.step as usize];
        if first.step as usize != s
            && f.thread != q
            && self.exec.thread_clock[q].get(f.thread) < f.local
        {
            self.exec.candidates.push(Candidate {
                first,
                second,
                acquire,
            });
        }
    }

    /// A synchronisation edge into the open step from the closed step
    /// `from` (release to acquire, finish to join, wake-up to the woken
    /// thread): it orders `from` before everything the step does next but
    /// is never itself a race to reverse.
    pub(super) fn sync_from(&mut self, from: u32) {
        let s = self.exec.steps.len() - 1;
        if from as usize >= s {
            return;
        }
        let q = self.exec.steps[s].thread;
        let ex = &mut self.exec;
        ex.thread_clock[q].join(ex.clocks.get(from as usize));
    }

    /// Thread `t` read or wrote the shared object `key` in this step.
    pub fn access(
        &mut self,
        t: ThreadId,
        key: ObjectKey,
        kind: AccessKind,
    ) -> Result<(), EngineError> {
        self.check_current("access", t)?;
        self.data_access(Space::Memory, key, kind);
        Ok(())
    }

    /// Thread `t` read from or wrote to the I/O resource `key` (a socket's
    /// peer, a file) in this step. I/O keys are separate from object keys.
    pub fn io_access(
        &mut self,
        t: ThreadId,
        key: ObjectKey,
        kind: AccessKind,
    ) -> Result<(), EngineError> {
        self.check_current("io_access", t)?;
        self.data_access(Space::Io, key, kind);
        Ok(())
    }

    pub(super) fn data_access(&mut self, space: Space, key: ObjectKey, kind: AccessKind) {
        let op = match kind {
            AccessKind::Read => Op::Read,
            AccessKind::Write => Op::Write,
        };
        let acc = self.push_access(space, key, op);
        let me = self.current_ref(acc);
        let id = self.exec.object(space, key);
        let last_write = self.exec.objects[id].last_write;
        if let Some(w) = last_write {
            self.add_pred(w);
            self.add_candidate(w, acc);
        }
        match kind {
            AccessKind::Read => {
                let reads = &mut self.exec.objects[id].reads;
                match reads.iter_mut().find(|r| r.thread == me.thread) {
                    Some(r) => *r = me,
                    None => reads.push(me),
                }
            }
            AccessKind::Write => {
                let mut reads = std::mem::take(&mut self.exec.objects[id].reads);
                for &r in &reads {
                    self.add_pred(r);
                    self.add_candidate(r, acc);
                }
                reads.clear();
                let obj = &mut self.exec.objects[id];
                obj.reads = reads;
                obj.last_write = Some(me);
            }
        }
    }

    /// Thread `t` took lock `lock` with a blocking acquire in this step.
    pub fn lock_acquire(&mut self, t: ThreadId, lock: ObjectKey) -> Result<(), EngineError> {
        self.check_current("lock_acquire", t)?;
        self.acquire(t, lock, false)
    }

    /// Thread `t` took lock `lock` with a non-blocking acquire in this step.
    /// Unlike a blocking acquire, it could also have run before the previous
    /// release (and failed there), so it races with that release.
    pub fn lock_try_acquire(&mut self, t: ThreadId, lock: ObjectKey) -> Result<(), EngineError> {
        self.check_current("lock_try_acquire", t)?;
        self.acquire(t, lock, true)
    }

    pub(super) fn acquire(
        &mut self,
        t: ThreadId,
        lock: ObjectKey,
        try_: bool,
    ) -> Result<(), EngineError> {
        let id = self.exec.object(Space::Lock, lock);
        if let Some(holder) = self.exec.objects[id].holder {
            return Err(EngineError::LockHeld {
                thread: t,
                lock,
                holder,
            });
        }
        let acc = self.push_access(Space::Lock, lock, Op::Acquire);
        let me = self.current_ref(acc);
        let obj = &self.exec.objects[id];
        let (release, acquire) = (obj.last_release, obj.last_acquire);
        // The previous acquire is the race to reverse; the release between
        // them cannot be reversed with a blocking acquire, which could not
        // have run while the lock was held. A try-acquire could have (and
        // failed), so for it the release is a race of its own.
        if let Some(a) = acquire {
            self.push_candidate(a, acc, !try_);
        }
        if let Some(r) = release {
            if try_ {
                self.add_pred(r);
                self.add_candidate(r, acc);
            } else {
                self.sync_from(r.step);
            }
        }
        let obj = &mut self.exec.objects[id];
        obj.holder = Some(t);
        obj.last_acquire = Some(me);
        obj.try_fails.clear();
        self.exec.holds[t].push(lock);
        if self.exec.wait[t] == Some(WaitTarget::Lock(lock)) {
            self.exec.wait[t] = None;
        }
        Ok(())
    }

    /// Thread `t` tried to take lock `lock` without blocking and failed.
    pub fn lock_try_fail(&mut self, t: ThreadId, lock: ObjectKey) -> Result<(), EngineError> {
        self.check_current("lock_try_fail", t)?;
        let me = self.probe(t, lock, Op::TryFail)?;
        let id = self.exec.object(Space::Lock, lock);
        self.exec.objects[id].try_fails.push(me);
        Ok(())
    }

    /// Thread `t` wants lock `lock`, which another thread holds, and waits.
    /// The thread cannot be scheduled until the lock is released; it should
    /// then retry (and report `lock_acquire`).
    pub fn block_on_lock(&mut self, t: ThreadId, lock: ObjectKey) -> Result<(), EngineError> {
        self.check_current("block_on_lock", t)?;
        self.probe(t, lock, Op::BlockProbe)?;
        self.exec.wait[t] = Some(WaitTarget::Lock(lock));
        Ok(())
    }

    pub(super) fn probe(
        &mut self,
        t: ThreadId,
        lock: ObjectKey,
        op: Op,
    ) -> Result<AccRef, EngineError> {
        let id = self.exec.object(Space::Lock, lock);
        if self.exec.objects[id].holder.is_none() {
            return Err(EngineError::LockFree { thread: t, lock });
        }
        let acc = self.push_access(Space::Lock, lock, op);
        let me = self.current_ref(acc);
        if let Some(a) = self.exec.objects[id].last_acquire {
            self.add_pred(a);
            self.add_candidate(a, acc);
        }
        Ok(me)
    }

    /// Thread `t` released lock `lock`; threads blocked on it may run again.
    pub fn lock_release(&mut self, t: ThreadId, lock: ObjectKey) -> Result<(), EngineError> {
        self.check_current("lock_release", t)?;
        let id = self.exec.object(Space::Lock, lock);
        if self.exec.objects[id].holder != Some(t) {
            return Err(EngineError::LockNotHeld { thread: t, lock });
        }
        let acc = self.push_access(Space::Lock, lock, Op::Release);
        let me = self.current_ref(acc);
        let fails = std::mem::take(&mut self.exec.objects[id].try_fails);
        for &f in &fails {
            self.add_pred(f);
            self.add_candidate(f, acc);
        }
        let obj = &mut self.exec.objects[id];
        obj.try_fails = fails;
        obj.try_fails.clear();
        obj.holder = None;
        obj.last_release = Some(me);
        if let Some(pos) = self.exec.holds[t].iter().rposition(|&l| l == lock) {
            self.exec.holds[t].remove(pos);
        }
        for w in self.exec.wait.iter_mut() {
            if *w == Some(WaitTarget::Lock(lock)) {
                *w = None;
            }
        }
        Ok(())
    }

    /// Thread `t` waits on `on` (an event, condition, queue or native
    /// blocking call) until some thread calls [`unblock`](Self::unblock).
    /// The accesses that make the wait and the wake-up conflict (for example
    /// a read of the event flag and the write that sets it) should be
    /// reported with [`access`](Self::access) as usual.
    pub fn block(&mut self, t: ThreadId, on: ObjectKey) -> Result<(), EngineError> {
        self.check_current("block", t)?;
        self.exec.wait[t] = Some(WaitTarget::Object(on));
        Ok(())
    }

    /// Makes a blocked thread `t` runnable again. Any thread may call it
    /// while an execution runs; unblocking a thread that is not blocked does
    /// nothing.
    pub fn unblock(&mut self, t: ThreadId) -> Result<(), EngineError> {
        self.check_thread(t)?;
        if self.phase != Phase::Running {
            return Err(EngineError::NoExecution { call: "unblock" });
        }
        if matches!(self.exec.wait[t], None | Some(WaitTarget::Spawn)) {
            return Ok(());
        }
        self.exec.wait[t] = None;
        if self.exec.current.is_some() {
            // The woken thread's next step happens after this one.
            self.exec.woken_by[t] = Some((self.exec.steps.len() - 1) as u32);
        }
        Ok(())
    }

    /// Declares that thread `child` starts only when some thread reports
    /// [`spawn`](Self::spawn) for it. Call after `begin_execution`, before
    /// the child's first step.
    pub fn expect_spawn(&mut self, child: ThreadId) -> Result<(), EngineError> {
        self.check_thread(child)?;
        if self.phase != Phase::Running {
            return Err(EngineError::NoExecution {
                call: "expect_spawn",
            });
        }
        if self.exec.thread_steps[child] != 0 {
            return Err(EngineError::AlreadyStarted { child });
        }
        self.exec.wait[child] = Some(WaitTarget::Spawn);
        Ok(())
    }

    /// Thread `parent` started thread `child` in this step: everything the
    /// parent did so far happens before the child's steps.
    pub fn spawn(&mut self, parent: ThreadId, child: ThreadId) -> Result<(), EngineError> {
        self.check_current("spawn", parent)?;
        self.check_thread(child)?;
        if self.exec.thread_steps[child] != 0 || child == parent {
            return Err(EngineError::AlreadyStarted { child });
        }
        if self.exec.wait[child] == Some(WaitTarget::Spawn) {
            self.exec.wait[child] = None;
        }
        self.exec.spawned.push(child);
        Ok(())
    }

    /// Thread `t` joins `target`. If `target` has finished, its steps now
    /// happen before `t`'s; otherwise `t` waits until it finishes and should
    /// then report `join` again.
    pub fn join(&mut self, t: ThreadId, target: ThreadId) -> Result<(), EngineError> {
        self.check_current("join", t)?;
        self.check_thread(target)?;
        if self.exec.finished & bit(target) != 0 {
            self.push_access(Space::Thread, target as u64, Op::Join);
            if let Some(step) = self.exec.finish_step[target] {
                self.sync_from(step);
            }
        } else {
            self.push_access(Space::Thread, target as u64, Op::BlockProbe);
            self.exec.wait[t] = Some(WaitTarget::Thread(target));
        }
        Ok(())
    }

    /// Thread `t` has ended. Call it during `t`'s last step, or at any time
    /// for a thread that never took a step.
    pub fn finish(&mut self, t: ThreadId) -> Result<(), EngineError> {
        self.check_thread(t)?;
        if self.phase != Phase::Running {
            return Err(EngineError::NoExecution { call: "finish" });
        }
        if self.exec.finished & bit(t) != 0 {
            return Err(EngineError::ThreadFinished {
                call: "finish",
                thread: t,
            });
        }
        if self.exec.current == Some(t) {
            self.push_access(Space::Thread, t as u64, Op::Finish);
            self.exec.finish_step[t] = Some((self.exec.steps.len() - 1) as u32);
        } else if self.exec.thread_steps[t] != 0 {
            return Err(EngineError::NotScheduled {
                call: "finish",
                thread: t,
                scheduled: self.exec.current,
            });
        }
        self.exec.finished |= bit(t);
        self.exec.wait[t] = None;
        for w in self.exec.wait.iter_mut() {
            if *w == Some(WaitTarget::Thread(t)) {
                *w = None;
            }
        }
        Ok(())
    }

    /// The wait-for cycle that thread `t` closed by waiting for a lock
    /// ([`block_on_lock`](Self::block_on_lock)), if it closed one: each
    /// thread of the cycle waits for a lock the next one holds. Such a
    /// cycle never resolves, so a driver may end the execution at once
    /// instead of letting the other threads run to their end first; the
    /// deadlock's `blocked` lists every thread waiting now. The cycle starts
    /// at its lowest thread. `None` when `t` waits for no lock or the locks
    /// it waits for lead to no cycle through `t` (one that does not pass
    /// through `t` was returned when it formed).
    pub fn lock_cycle(&self, t: ThreadId) -> Option<Deadlock> {
        let ex = &self.exec;
        let n = self.num_threads;
        if t >= n || self.phase != Phase::Running {
            return None;
        }
        let next = |u: ThreadId| -> Option<ThreadId> {
            match ex.wait[u]? {
                WaitTarget::Lock(k) => {
                    let id = *ex.object_ids.get(&(Space::Lock, k))? as usize;
                    ex.objects[id].holder
                }
                _ => None,
            }
        };
        let mut path = vec![t];
        let mut u = next(t)?;
        while u != t {
            if path.contains(&u) || path.len() > n {
                return None;
            }
            path.push(u);
            u = next(u)?;
        }
        let edge = |v: ThreadId| WaitEdge {
            thread: v,
            holds: ex.holds[v].clone(),
            waits_for: ex.wait[v].unwrap_or(WaitTarget::Spawn),
        };
        let blocked = (0..n).filter(|&v| ex.wait[v].is_some()).map(edge).collect();
        let mut cycle: Vec<WaitEdge> = path.into_iter().map(edge).collect();
        let low = (0..cycle.len())
            .min_by_key(|&i| cycle[i].thread)
            .unwrap_or(0);
        cycle.rotate_left(low);
        Some(Deadlock { cycle, blocked })
    }

    pub(super) fn find_deadlock(&self) -> Deadlock {
        let ex = &self.exec;
        let edge = |t: ThreadId| -> Option<WaitEdge> {
            ex.wait[t].map(|w| WaitEdge {
                thread: t,
                holds: ex.holds[t].clone(),
                waits_for: w,
            })
        };
        let blocked: Vec<WaitEdge> = (0..self.num_threads).filter_map(edge).collect();
        // Each blocked thread waits for at most one thread: a lock's holder
        // or a joined thread. Follow those edges looking for a cycle.
        let next = |t: ThreadId| -> Option<ThreadId> {
            match ex.wait[t]? {
                WaitTarget::Lock(k) => {
                    let id = *ex.object_ids.get(&(Space::Lock, k))? as usize;
                    ex.objects[id].holder
                }
                WaitTarget::Thread(u) => Some(u),
                WaitTarget::Object(_) | WaitTarget::Spawn => None,
            }
        };
        let mut cycle = Vec::new();
        'start: for start in 0..self.num_threads {
            let mut seen = Vec::new();
            let mut t = start;
            while let Some(u) = next(t) {
                if let Some(pos) = seen.iter().position(|&s| s == t) {
                    cycle = seen[pos..].iter().filter_map(|&v| edge(v)).collect();
                    break 'start;
                }
                seen.push(t);
                t = u;
            }
        }
        Deadlock { cycle, blocked }
    }
}
