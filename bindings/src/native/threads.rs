//! Threads that native code of a worker starts (`pthread_create` in a C
//! extension or a library under it; the preload library's `threads`
//! module announces them).
//!
//! Such a thread is no worker: the exploration does not schedule it. What
//! it does (file, socket and database accesses) belongs to the worker that
//! started it, as a child process's does: the worker keeps the turn from
//! the start to the `pthread_join` (the session counts its threads, see
//! `ThreadSlot::native_threads`), and the thread's events are held until
//! that join, or the worker's end, and then join the worker's open step.
//! Held, they land in the same step whatever the moment the ring was
//! drained, so a schedule replays the same way.

use super::{Item, Native};
use frontrun_engine::ThreadId;
use frontrun_ring::{EventKind, EventRecord};
use std::collections::HashMap;

/// One thread native code started in this execution.
#[derive(Clone, Debug)]
pub(crate) struct Thread {
    worker: ThreadId,
    /// Its call site, `object:function+0x..`.
    site: String,
    ended: bool,
    joined: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Spawned {
    /// Number (the preload library's) -> thread.
    threads: HashMap<u64, Thread>,
    /// OS thread id -> number, once the thread began.
    tids: HashMap<u32, u64>,
    /// What the threads did, held until their join: (number, item).
    items: Vec<(u64, Item)>,
    /// Threads still running when their worker ended: their call sites.
    pub(crate) unfinished: Vec<String>,
}

impl Native {
    /// Takes `r` if it is about a thread native code started, or comes
    /// from one; items for the workers go to `sink`.
    pub(super) fn spawn_event(
        &mut self,
        r: &EventRecord,
        finished: &impl Fn(ThreadId) -> bool,
        sink: &mut impl FnMut(ThreadId, Item),
    ) -> bool {
        match r.kind() {
            Some(EventKind::ThreadStart) => {
                let worker = match self.spawned.tids.get(&r.tid) {
                    Some(n) => self.spawned.threads.get(n).map(|t| t.worker),
                    None => self.threads.iter().position(|s| s.os_tid == Some(r.tid)),
                };
                if let Some(worker) = worker.filter(|&w| !finished(w)) {
                    let site = self.symbol(r.result as usize);
                    self.spawned.threads.insert(
                        r.addr,
                        Thread {
                            worker,
                            site,
                            ended: false,
                            joined: false,
                        },
                    );
                    sink(worker, Item::Spawn(true));
                }
                true
            }
            Some(EventKind::ThreadBegin) => {
                if self.spawned.threads.contains_key(&r.addr) {
                    self.spawned.tids.insert(r.tid, r.addr);
                }
                true
            }
            Some(EventKind::ThreadEnd) => {
                if let Some(t) = self.spawned.threads.get_mut(&r.addr) {
                    t.ended = true;
                }
                self.spawned.tids.retain(|_, n| *n != r.addr);
                true
            }
            Some(EventKind::ThreadJoin) => {
                let worker = match self.spawned.threads.get_mut(&r.addr) {
                    Some(t) if !t.joined => {
                        t.joined = true;
                        t.worker
                    }
                    _ => return true,
                };
                for item in self.release(|n| n == r.addr) {
                    sink(worker, item);
                }
                sink(worker, Item::Spawn(false));
                true
            }
            _ => {
                let Some(&n) = self.spawned.tids.get(&r.tid) else {
                    return false;
                };
                let Some(t) = self.spawned.threads.get(&n) else {
                    return true;
                };
                if finished(t.worker) {
                    return true;
                }
                let by = format!("in a native thread started at {}", t.site);
                let worker = t.worker;
                let Some(access) = self.access_by(r, worker, by) else {
                    return true;
                };
                self.events += 1;
                self.spawned.items.push((n, Item::Access(access)));
                true
            }
        }
    }

    /// The held items of the threads whose number passes `which`.
    fn release(&mut self, which: impl Fn(u64) -> bool) -> Vec<Item> {
        let (out, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.spawned.items)
            .into_iter()
            .partition(|&(n, _)| which(n));
        self.spawned.items = kept;
        out.into_iter().map(|(_, item)| item).collect()
    }

    /// Worker `t` ends: what the threads it started and never joined did
    /// joins its last step; those still running are remembered (what they
    /// do from now on is not seen).
    pub fn end_spawns(&mut self, t: ThreadId) -> Vec<Item> {
        let mut mine = Vec::new();
        for (&n, thread) in self.spawned.threads.iter_mut() {
            if thread.worker == t && !thread.joined {
                thread.joined = true;
                mine.push(n);
                if !thread.ended && !self.spawned.unfinished.contains(&thread.site) {
                    self.spawned.unfinished.push(thread.site.clone());
                }
            }
        }
        self.release(|n| mine.contains(&n))
    }
}
