//! Who holds which cooperative lock and who waits for what, for the
//! strategies that do not search (`Planned`): they must not
//! run a blocked thread either, and a run that blocks every thread is a
//! deadlock they report like the engine does. The DPOR engine keeps the same
//! bookkeeping itself.

use crate::strategy::ThreadId;
use std::collections::HashMap;

/// What a blocked thread waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waits {
    /// A cooperative lock (key) held by another thread.
    Lock(u64),
    /// An event, condition or queue (key), until someone unblocks it.
    Object(u64),
    /// Another thread's end.
    Thread(ThreadId),
    /// A thread nobody started.
    Spawn,
}

/// One blocked thread of a deadlock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitInfo {
    pub thread: ThreadId,
    /// Locks it holds, in acquisition order.
    pub holds: Vec<u64>,
    pub waits: Waits,
}

/// A state where no unfinished thread can run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadlockDetail {
    /// A wait-for cycle (each thread waits for a lock the next one holds);
    /// empty when the blocked threads wait on objects nobody owns.
    pub cycle: Vec<WaitInfo>,
    /// Every blocked thread.
    pub blocked: Vec<WaitInfo>,
}

#[derive(Default)]
pub struct SyncModel {
    holder: HashMap<u64, ThreadId>,
    holds: Vec<Vec<u64>>,
    wait: Vec<Option<Waits>>,
}

impl SyncModel {
    pub fn new(num_threads: usize) -> SyncModel {
        SyncModel {
            holder: HashMap::new(),
            holds: vec![Vec::new(); num_threads],
            wait: vec![None; num_threads],
        }
    }

    pub fn reset(&mut self) {
        self.holder.clear();
        self.holds.iter_mut().for_each(Vec::clear);
        self.wait.iter_mut().for_each(|w| *w = None);
    }

    fn check(&self, t: ThreadId) -> Result<(), String> {
        if t >= self.wait.len() {
            return Err(format!("no thread {t} in this execution"));
        }
        Ok(())
    }

    pub fn runnable(&self, t: ThreadId) -> bool {
        self.wait.get(t).is_some_and(Option::is_none)
    }

    pub fn acquire(&mut self, t: ThreadId, lock: u64) -> Result<(), String> {
        self.check(t)?;
        if let Some(h) = self.holder.get(&lock) {
            return Err(format!(
                "thread {t} acquired lock {lock:#x}, which thread {h} holds"
            ));
        }
        self.holder.insert(lock, t);
        self.holds[t].push(lock);
        self.wait[t] = None;
        Ok(())
    }

    pub fn block_on_lock(&mut self, t: ThreadId, lock: u64) -> Result<(), String> {
        self.check(t)?;
        if !self.holder.contains_key(&lock) {
            return Err(format!(
                "thread {t} blocked on lock {lock:#x}, which is free"
            ));
        }
        self.wait[t] = Some(Waits::Lock(lock));
        Ok(())
    }

    pub fn release(&mut self, t: ThreadId, lock: u64) -> Result<(), String> {
        self.check(t)?;
        if self.holder.get(&lock) != Some(&t) {
            return Err(format!(
                "thread {t} released lock {lock:#x}, which it does not hold"
            ));
        }
        self.holder.remove(&lock);
        if let Some(pos) = self.holds[t].iter().rposition(|&l| l == lock) {
            self.holds[t].remove(pos);
        }
        for w in self.wait.iter_mut() {
            if *w == Some(Waits::Lock(lock)) {
                *w = None;
            }
        }
        Ok(())
    }

    pub fn block(&mut self, t: ThreadId, on: u64) -> Result<(), String> {
        self.check(t)?;
        self.wait[t] = Some(Waits::Object(on));
        Ok(())
    }

    pub fn unblock(&mut self, t: ThreadId) -> Result<(), String> {
        self.check(t)?;
        self.wait[t] = None;
        Ok(())
    }

    /// The deadlock among the threads not `finished`, if all of them wait.
    pub fn deadlock(&self, finished: &[bool]) -> Option<DeadlockDetail> {
        let n = self.wait.len();
        let unfinished: Vec<ThreadId> = (0..n).filter(|&t| !finished[t]).collect();
        if unfinished.is_empty() || unfinished.iter().any(|&t| self.wait[t].is_none()) {
            return None;
        }
        let edge = |t: ThreadId| {
            self.wait[t].map(|w| WaitInfo {
                thread: t,
                holds: self.holds[t].clone(),
                waits: w,
            })
        };
        let blocked: Vec<WaitInfo> = unfinished.iter().filter_map(|&t| edge(t)).collect();
        let next = |t: ThreadId| match self.wait[t]? {
            Waits::Lock(k) => self.holder.get(&k).copied(),
            Waits::Thread(u) => Some(u),
            Waits::Object(_) | Waits::Spawn => None,
        };
        Some(DeadlockDetail {
            cycle: find_cycle(n, next, edge),
            blocked,
        })
    }
}

impl SyncModel {
    /// The lock-ordering cycle `t` just closed by waiting for a lock, if
    /// it did: each thread of it waits for a lock the next one holds.
    pub fn cycle_through(&self, t: ThreadId) -> Option<DeadlockDetail> {
        let next = |u: ThreadId| match self.wait.get(u).copied().flatten()? {
            Waits::Lock(k) => self.holder.get(&k).copied(),
            _ => None,
        };
        let mut path = vec![t];
        let mut u = next(t)?;
        while u != t {
            if path.contains(&u) || path.len() > self.wait.len() {
                // A cycle that does not pass through `t` was reported
                // when it formed.
                return None;
            }
            path.push(u);
            u = next(u)?;
        }
        let edge = |v: ThreadId| WaitInfo {
            thread: v,
            holds: self.holds[v].clone(),
            waits: self.wait[v].unwrap_or(Waits::Spawn),
        };
        let blocked = (0..self.wait.len())
            .filter(|&v| self.wait[v].is_some())
            .map(edge)
            .collect();
        let mut cycle: Vec<WaitInfo> = path.into_iter().map(edge).collect();
        // Start the cycle at its lowest thread, as the engine does.
        let low = (0..cycle.len())
            .min_by_key(|&i| cycle[i].thread)
            .unwrap_or(0);
        cycle.rotate_left(low);
        Some(DeadlockDetail { cycle, blocked })
    }
}

/// The first wait-for cycle found by following `next` from each thread.
pub fn find_cycle(
    n: usize,
    next: impl Fn(ThreadId) -> Option<ThreadId>,
    edge: impl Fn(ThreadId) -> Option<WaitInfo>,
) -> Vec<WaitInfo> {
    for start in 0..n {
        let mut seen: Vec<ThreadId> = Vec::new();
        let mut t = start;
        while let Some(u) = next(t) {
            if let Some(pos) = seen.iter().position(|&s| s == t) {
                return seen[pos..].iter().filter_map(|&v| edge(v)).collect();
            }
            seen.push(t);
            t = u;
        }
    }
    Vec::new()
}
