//! The lifecycle of an execution, driven by the main thread: begin, grant
//! the first step, wait for the end (watching for a stuck turn, a timeout,
//! native waits and Ctrl-C), end with the explorer's report.

use super::turns::{Phase, Shared, State, StepRecord, ThreadSlot};
use crate::codeinfo::CodeCache;
use crate::error::{SessionError, SessionResult};
use crate::keys::KeyTable;
use crate::mode::{Mode, NativeWait};
use crate::native::{HubHandle, Native};
use frontrun_engine::{ExecutionReport, ThreadId};
use pyo3::prelude::*;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often the main thread, waiting for an execution, lets Python handle
/// signals (KeyboardInterrupt).
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Why an execution was abandoned, which thread held the turn, and where
/// that thread was last seen (code, offset).
pub type Abandoned = (String, Option<ThreadId>, Option<(usize, u32)>);

impl Shared {
    pub fn new(
        mode: Mode,
        num_threads: usize,
        max_steps: u64,
        max_executions: Option<u64>,
        decide: Py<PyAny>,
        classify: Py<PyAny>,
    ) -> SessionResult<Shared> {
        let explorer = mode.explorer(num_threads, max_steps, max_executions)?;
        Ok(Shared {
            state: Mutex::new(State {
                explorer,
                mode,
                max_executions,
                executions: 0,
                exhausted: false,
                generation: 0,
                phase: Phase::Idle,
                num_threads,
                current: None,
                threads: vec![ThreadSlot::default(); num_threads],
                steps: Vec::new(),
                progress: 0,
                max_steps,
                lock_cycle: None,
                sites: Vec::new(),
                native: None,
                awaiting_native: false,
                row_blocked: false,
                one_loop: false,
                between_steps: false,
            }),
            cv: Condvar::new(),
            thread_cvs: (0..num_threads).map(|_| Condvar::new()).collect(),
            codes: CodeCache::default(),
            keys: Mutex::new(KeyTable::default()),
            decide,
            classify,
            io_names: Mutex::new(HashMap::new()),
            native_calls: std::sync::atomic::AtomicBool::new(false),
            one_loop: std::sync::atomic::AtomicBool::new(false),
            filter_error: Mutex::new(None),
        })
    }

    /// Gives the session the ring's consumer: from now on calls are
    /// scheduling points.
    pub fn attach_native(&self, hub: Option<HubHandle>, num_threads: usize) {
        let Some(hub) = hub else { return };
        let mut st = self.lock();
        let model_row_locks = st.mode.native_wait() != NativeWait::KeepTurn;
        st.native = Some(Native::new(hub, num_threads, model_row_locks));
        drop(st);
        self.native_calls
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Starts an execution; false when the explorer has nothing left.
    pub fn begin(&self, py: Python<'_>, record_descs: bool) -> SessionResult<bool> {
        let released = {
            let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            keys.record_descs = record_descs;
            keys.clear()
        };
        let _ = py;
        drop(released);
        let mut st = self.lock();
        if st.phase == Phase::Running {
            return Err(SessionError::AlreadyRunning);
        }
        if !st.begin_explorer()? {
            st.exhausted = true;
            return Ok(false);
        }
        st.executions += 1;
        st.generation += 1;
        st.phase = Phase::Running;
        st.current = None;
        st.threads.fill(ThreadSlot::default());
        st.steps.clear();
        st.lock_cycle = None;
        st.sites.clear();
        st.awaiting_native = false;
        st.row_blocked = false;
        st.one_loop = false;
        st.between_steps = false;
        if let Some(native) = st.native.as_mut() {
            native.begin();
        }
        st.progress += 1;
        Ok(true)
    }

    /// Grants the first step. Call after the state is numbered.
    pub fn kick(&self) {
        let mut st = self.lock();
        if st.phase == Phase::Running && st.current.is_none() {
            let _ = st.schedule_next();
        }
        self.wake(&st);
    }

    /// Waits for the execution to finish. Returns None when it did, or why
    /// it was abandoned (and which thread was holding the turn).
    pub fn wait(
        &self,
        py: Python<'_>,
        timeout: Duration,
        stuck_after: Duration,
    ) -> PyResult<Option<Abandoned>> {
        py.detach(|| {
            let mut deadline = Instant::now() + timeout;
            let mut last = Instant::now();
            let mut signals_checked = Instant::now();
            let mut st = self.lock();
            let mut seen_progress = st.progress;
            let mut since = Instant::now();
            // Checking a counter instead of timestamping every step keeps
            // clock reads off the hot path; the check runs a few times per
            // deadlock_timeout.
            let mut tick = (stuck_after / 4).max(Duration::from_millis(1));
            if st.native.is_some() {
                tick = tick.min(crate::native::POLL_INTERVAL);
            }
            loop {
                if st.native_tick() {
                    self.wake(&st);
                }
                match &st.phase {
                    // After a deadlock, wait until the blocked threads have
                    // unwound: the invariant must not see them running.
                    Phase::Done if st.threads.iter().all(ThreadSlot::finished) => return Ok(None),
                    Phase::Aborted(why) => {
                        let cur = st.current;
                        return Ok(Some((why.clone(), cur, cur.and_then(|t| st.threads[t].last_seen))));
                    }
                    _ => {}
                }
                let now = Instant::now();
                if crate::tracer::debugger_active() {
                    // Time at a debugger's prompt is not the execution's.
                    let paused = now.duration_since(last);
                    deadline += paused;
                    since += paused;
                }
                last = now;
                if st.progress != seen_progress {
                    seen_progress = st.progress;
                    since = now;
                }
                if now >= deadline {
                    let cur = st.current;
                    let why = format!("timeout_per_run ({:.1}s) expired", timeout.as_secs_f64());
                    st.abort(why.clone());
                    self.wake(&st);
                    return Ok(Some((why, cur, cur.and_then(|t| st.threads[t].last_seen))));
                }
                if now.duration_since(since) >= stuck_after {
                    let cur = st.current;
                    let native = st.native.as_ref().and_then(|n| n.stuck_reason(cur, stuck_after));
                    let why = native.unwrap_or_else(|| {
                        format!(
                            "no scheduling point reached for {:.1}s (deadlock_timeout): the thread holding the turn \
                             is blocked or busy outside traced code",
                            stuck_after.as_secs_f64()
                        )
                    });
                    st.abort(why.clone());
                    self.wake(&st);
                    return Ok(Some((why, cur, cur.and_then(|t| st.threads[t].last_seen))));
                }
                let wake = deadline.min(since + stuck_after).min(now + tick).min(now + SIGNAL_CHECK);
                let (g, _) = self
                    .cv
                    .wait_timeout(st, wake.saturating_duration_since(now) + Duration::from_millis(1))
                    .unwrap_or_else(|p| p.into_inner());
                st = g;
                if signals_checked.elapsed() >= SIGNAL_CHECK {
                    // Ctrl-C must not wait for the execution to end. The
                    // state lock is released first: workers take it while
                    // holding the GIL.
                    drop(st);
                    if let Err(e) = Python::attach(|py| py.check_signals()) {
                        self.abort("interrupted".to_string());
                        return Err(e);
                    }
                    signals_checked = Instant::now();
                    st = self.lock();
                }
            }
        })
    }

    pub fn abort(&self, why: String) {
        let mut st = self.lock();
        st.abort(why);
        self.wake(&st);
    }

    /// Closes the execution and returns the explorer's report; its steps
    /// stay available (`steps`) until the next execution begins.
    pub fn end(&self) -> SessionResult<(ExecutionReport, Phase)> {
        let mut st = self.lock();
        let phase = std::mem::replace(&mut st.phase, Phase::Idle);
        // Stragglers of this execution see a new generation and bail out.
        st.generation += 1;
        self.wake(&st);
        let mut report = st
            .explorer
            .end_execution()
            .map_err(SessionError::Lifecycle)?;
        if let Some(d) = st.lock_cycle.take() {
            // Ended at the cycle, while other threads could still run: the
            // explorer saw an execution ended early.
            report.deadlock = Some(d);
            report.aborted = None;
        }
        Ok((report, phase))
    }

    /// The steps of the current (or last ended) execution.
    pub fn steps(&self) -> Vec<StepRecord> {
        self.lock().steps.clone()
    }
}
