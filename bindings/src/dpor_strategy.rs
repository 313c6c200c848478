//! The DPOR engine (`frontrun-engine`) as a `Strategy`.

use crate::strategy::{NativeLockOp, RaceInfo, Report, Strategy, ThreadId};
use frontrun_engine::{AccessKind, Config, Explorer};

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
            deadlock: r.deadlock.map(|d| {
                let edges = if d.cycle.is_empty() {
                    &d.blocked
                } else {
                    &d.cycle
                };
                edges.iter().map(|e| e.thread).collect()
            }),
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
