//! The state of one execution: its steps, their accesses and clocks, the
//! shared objects, and the races found so far.

use super::*;

pub(super) type KeyMap = FastMap<(Space, ObjectKey), u32>;

/// A reference to one access of one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct AccRef {
    pub(super) step: u32,
    pub(super) thread: u32,
    /// Index of the access in `Execution::accesses`.
    pub(super) acc: u32,
}

#[derive(Debug, Default)]
pub(super) struct ObjectState {
    pub(super) last_write: Option<AccRef>,
    /// Latest read of each thread since the last write.
    pub(super) reads: Vec<AccRef>,
    pub(super) holder: Option<ThreadId>,
    pub(super) last_acquire: Option<AccRef>,
    pub(super) last_release: Option<AccRef>,
    /// Failed try-acquires since the last acquire.
    pub(super) try_fails: Vec<AccRef>,
}

impl ObjectState {
    pub(super) fn reset(&mut self) {
        self.last_write = None;
        self.reads.clear();
        self.holder = None;
        self.last_acquire = None;
        self.last_release = None;
        self.try_fails.clear();
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Step {
    pub(super) thread: ThreadId,
    /// 1-based position among the steps of `thread`.
    pub(super) local: u32,
    pub(super) acc_start: u32,
    pub(super) acc_end: u32,
}

/// A conflicting earlier step the open step happens after.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pred {
    pub(super) step: u32,
    /// The access of the open step that conflicts with it.
    pub(super) at: u32,
}

/// A possible race of the open step: earlier access `first` against the
/// step's access `second`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Candidate {
    pub(super) first: AccRef,
    pub(super) second: u32,
    /// `second` is a blocking acquire racing with the previous acquire of
    /// its lock: only what the step did before it can make the race
    /// indirect (see `close_step`).
    pub(super) acquire: bool,
}

/// The state of one execution; `clear()` resets it keeping allocations.
#[derive(Debug)]
pub(super) struct Execution {
    pub(super) steps: Vec<Step>,
    pub(super) accesses: Vec<Access>,
    pub(super) clocks: ClockTable,
    pub(super) thread_clock: Vec<VersionVec>,
    pub(super) thread_steps: Vec<u32>,
    pub(super) finished: ThreadSet,
    pub(super) wait: Vec<Option<WaitTarget>>,
    pub(super) holds: Vec<Vec<ObjectKey>>,
    pub(super) finish_step: Vec<Option<u32>>,
    /// Step that woke each thread with `unblock`, until its next step.
    pub(super) woken_by: Vec<Option<u32>>,
    pub(super) object_ids: KeyMap,
    pub(super) objects: Vec<ObjectState>,
    pub(super) live_objects: usize,
    /// Thread of the open step, if one is open.
    pub(super) current: Option<ThreadId>,
    pub(super) preds: Vec<Pred>,
    pub(super) candidates: Vec<Candidate>,
    pub(super) spawned: Vec<ThreadId>,
    /// Races found so far: (first access, second access).
    pub(super) races: Vec<(AccRef, AccRef)>,
    /// Set once `schedule()` returned `None`.
    pub(super) over: bool,
    pub(super) deadlock: Option<Deadlock>,
    pub(super) aborted: Option<AbortReason>,
    /// The open step's thread yielded ([`Explorer::yield_now`]).
    pub(super) yielded: bool,
}

impl Execution {
    pub(super) fn new(n: usize) -> Self {
        Execution {
            steps: Vec::new(),
            accesses: Vec::new(),
            clocks: ClockTable::new(n),
            thread_clock: vec![VersionVec::new(n); n],
            thread_steps: vec![0; n],
            finished: 0,
            wait: vec![None; n],
            holds: vec![Vec::new(); n],
            finish_step: vec![None; n],
            woken_by: vec![None; n],
            object_ids: KeyMap::default(),
            objects: Vec::new(),
            live_objects: 0,
            current: None,
            preds: Vec::new(),
            candidates: Vec::new(),
            spawned: Vec::new(),
            races: Vec::new(),
            yielded: false,
            over: false,
            deadlock: None,
            aborted: None,
        }
    }

    pub(super) fn clear(&mut self) {
        self.steps.clear();
        self.accesses.clear();
        self.clocks.clear();
        self.thread_clock.iter_mut().for_each(VersionVec::clear);
        self.thread_steps.iter_mut().for_each(|s| *s = 0);
        self.finished = 0;
        self.wait.iter_mut().for_each(|w| *w = None);
        self.holds.iter_mut().for_each(Vec::clear);
        self.finish_step.iter_mut().for_each(|f| *f = None);
        self.woken_by.iter_mut().for_each(|f| *f = None);
        self.object_ids.clear();
        self.live_objects = 0;
        self.current = None;
        self.preds.clear();
        self.candidates.clear();
        self.spawned.clear();
        self.races.clear();
        self.over = false;
        self.deadlock = None;
        self.aborted = None;
        self.yielded = false;
    }

    pub(super) fn object(&mut self, space: Space, key: ObjectKey) -> usize {
        let next = self.live_objects as u32;
        let id = *self.object_ids.entry((space, key)).or_insert(next) as usize;
        if id == self.live_objects {
            if self.objects.len() == id {
                self.objects.push(ObjectState::default());
            } else {
                self.objects[id].reset();
            }
            self.live_objects += 1;
        }
        id
    }

    pub(super) fn enabled(&self, n: usize) -> ThreadSet {
        let mut set = 0;
        for t in 0..n {
            if self.finished & bit(t) == 0 && self.wait[t].is_none() {
                set |= bit(t);
            }
        }
        set
    }
}
