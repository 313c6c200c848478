//! The DPOR engine (`frontrun-engine`) as a `Strategy`.

use crate::strategy::{deadlock_threads, NativeLockOp, RaceInfo, Report, Strategy, ThreadId};
use crate::sync_model::{DeadlockDetail, WaitInfo, Waits};
use frontrun_engine::{AccessKind, Config, Deadlock, Explorer, WaitEdge, WaitTarget};

pub struct Dpor {
    explorer: Explorer,
    executions: u64,
    exhausted: bool,
}

impl Dpor {
    pub fn new(num_threads: usize, config: Config) -> Result<Dpor, String> {
        let explorer = Explorer::new(num_threads, config).map_err(|e| e.to_string())?;
        Ok(Dpor {
            explorer,
            executions: 0,
            exhausted: false,
        })
    }
}

impl Strategy for Dpor {
    fn begin_execution(&mut self) -> Result<bool, String> {
        let more = self.explorer.begin_execution().map_err(|e| e.to_string())?;
        if more {
            self.executions += 1;
        } else {
            self.exhausted = true;
        }
        Ok(more)
    }

    fn schedule(&mut self) -> Result<Option<ThreadId>, String> {
        self.explorer.schedule().map_err(|e| e.to_string())
    }

    fn access(&mut self, thread: ThreadId, key: u64, write: bool) -> Result<(), String> {
        let kind = if write {
            AccessKind::Write
        } else {
            AccessKind::Read
        };
        self.explorer
            .access(thread, key, kind)
            .map_err(|e| e.to_string())
    }

    fn io_access(&mut self, thread: ThreadId, key: u64, write: bool) -> Result<(), String> {
        let kind = if write {
            AccessKind::Write
        } else {
            AccessKind::Read
        };
        self.explorer
            .io_access(thread, key, kind)
            .map_err(|e| e.to_string())
    }

    fn native_lock(&mut self, thread: ThreadId, op: NativeLockOp, key: u64) -> Result<(), String> {
        let r = match op {
            NativeLockOp::Acquire => self.explorer.lock_acquire(thread, key),
            NativeLockOp::TryFail => self.explorer.lock_try_fail(thread, key),
            NativeLockOp::Release => self.explorer.lock_release(thread, key),
        };
        r.map_err(|e| e.to_string())
    }

    fn native_block(&mut self, thread: ThreadId, key: u64) -> Result<bool, String> {
        self.explorer
            .block(thread, key)
            .map_err(|e| e.to_string())?;
        Ok(true)
    }

    fn native_unblock(&mut self, thread: ThreadId) -> Result<(), String> {
        self.explorer.unblock(thread).map_err(|e| e.to_string())
    }

    fn finish(&mut self, thread: ThreadId) -> Result<(), String> {
        self.explorer.finish(thread).map_err(|e| e.to_string())
    }

    fn lock_acquire(&mut self, thread: ThreadId, lock: u64, try_: bool) -> Result<(), String> {
        let r = if try_ {
            self.explorer.lock_try_acquire(thread, lock)
        } else {
            self.explorer.lock_acquire(thread, lock)
        };
        r.map_err(|e| e.to_string())
    }

    fn lock_try_fail(&mut self, thread: ThreadId, lock: u64) -> Result<(), String> {
        self.explorer
            .lock_try_fail(thread, lock)
            .map_err(|e| e.to_string())
    }

    fn block_on_lock(&mut self, thread: ThreadId, lock: u64) -> Result<(), String> {
        self.explorer
            .block_on_lock(thread, lock)
            .map_err(|e| e.to_string())
    }

    fn lock_release(&mut self, thread: ThreadId, lock: u64) -> Result<(), String> {
        self.explorer
            .lock_release(thread, lock)
            .map_err(|e| e.to_string())
    }

    fn block(&mut self, thread: ThreadId, on: u64) -> Result<(), String> {
        self.explorer.block(thread, on).map_err(|e| e.to_string())
    }

    fn unblock(&mut self, thread: ThreadId) -> Result<(), String> {
        self.explorer.unblock(thread).map_err(|e| e.to_string())
    }

    fn end_execution(&mut self) -> Result<Report, String> {
        let r = self.explorer.end_execution().map_err(|e| e.to_string())?;
        Ok(Report {
            schedule: r.schedule,
            races: r
                .races
                .iter()
                .map(|race| RaceInfo {
                    first_step: race.first.step,
                    second_step: race.second.step,
                    key: race.first.key,
                    first_write: race.first.kind == AccessKind::Write,
                    second_write: race.second.kind == AccessKind::Write,
                })
                .collect(),
            deadlock: r.deadlock.as_ref().map(|d| deadlock_threads(&detail(d))),
            deadlock_detail: r.deadlock.as_ref().map(detail),
            aborted: r.aborted.map(|a| a.to_string()),
        })
    }

    fn executions(&self) -> u64 {
        self.executions
    }

    fn exhausted(&self) -> bool {
        self.exhausted
    }
}

fn detail(d: &Deadlock) -> DeadlockDetail {
    let edge = |e: &WaitEdge| WaitInfo {
        thread: e.thread,
        holds: e.holds.clone(),
        waits: match e.waits_for {
            WaitTarget::Lock(k) => Waits::Lock(k),
            WaitTarget::Object(k) => Waits::Object(k),
            WaitTarget::Thread(t) => Waits::Thread(t),
            WaitTarget::Spawn => Waits::Spawn,
        },
    };
    DeadlockDetail {
        cycle: d.cycle.iter().map(edge).collect(),
        blocked: d.blocked.iter().map(edge).collect(),
    }
}
