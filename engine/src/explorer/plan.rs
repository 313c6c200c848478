//! The path of scheduling points the searches keep across executions, and
//! how each search plans the next execution from the races of the last
//! one: optimal DPOR's wakeup trees, the bounded search's backtrack sets.

use super::*;

/// A sleeping thread and the accesses its step had when it was explored.
#[derive(Clone, Copy, Debug)]
pub(super) struct SleepEntry {
    pub(super) thread: ThreadId,
    pub(super) start: u32,
    pub(super) end: u32,
}

/// One scheduling point of the path. Nodes persist across executions up to
/// the branch point; deeper ones are rebuilt by each execution.
#[derive(Debug, Default)]
pub(super) struct Node {
    /// Thread chosen here in the latest execution through this node.
    pub(super) thread: ThreadId,
    /// Threads able to run here.
    pub(super) enabled: ThreadSet,
    /// Preemptions in the schedule up to and including this step.
    pub(super) preemptions: u32,
    /// The step taken here ended in a yield: switching away from it after
    /// this step is no preemption.
    pub(super) yielded: bool,
    /// Accesses of the step taken here (what `thread` did).
    pub(super) event: Vec<Access>,
    /// Threads whose exploration from here is covered elsewhere.
    pub(super) sleep: Vec<SleepEntry>,
    pub(super) sleep_accesses: Vec<Access>,
    /// Sequences still to explore from here (unbounded mode).
    pub(super) wut: WakeupTree,
    /// Bounded mode: threads to try from here, and threads tried.
    pub(super) backtrack: ThreadSet,
    pub(super) done: ThreadSet,
}

impl Node {
    pub(super) fn reset(&mut self) {
        self.event.clear();
        self.sleep.clear();
        self.sleep_accesses.clear();
        self.backtrack = 0;
        self.done = 0;
    }

    pub(super) fn sleeping(&self) -> ThreadSet {
        self.sleep.iter().fold(0, |s, e| s | bit(e.thread))
    }
}

impl Explorer {
    /// Algorithm 2, lines 1-6: for each race `e < e'`, insert
    /// `notdep(e, E).e'` into the wakeup tree before `e` unless a sleeping
    /// thread there is a weak initial of it.
    pub(super) fn plan_optimal(&mut self) {
        // A race whose second step only found a lock held (or a thread
        // alive) is reversed by running that thread where its probe was:
        // there it does what it did once its wait ended, as far as this
        // execution shows, or, if it never could run again, something no
        // execution has shown, which conflicts with every step (one access
        // past the execution's, taken off at the end). Judged by the probe,
        // the sequence could be absorbed by an existing branch that starts
        // with that thread, and the order of its other steps before that
        // thread's never explored.
        let unseen = self.exec.accesses.len() as u32;
        self.exec.accesses.push(Access {
            space: Space::Unknown,
            key: 0,
            op: Op::Write,
        });
        let ex = &self.exec;
        let mut last_pair = None;
        for &(first, second) in &ex.races {
            let pair = (first.step, second.step);
            if last_pair == Some(pair) {
                continue;
            }
            last_pair = Some(pair);
            let e = ex.steps[first.step as usize];
            let seq = &mut self.seq;
            seq.clear();
            for j in first.step as usize + 1..ex.steps.len() {
                if j == second.step as usize || ex.clocks.entry(j, e.thread) >= e.local {
                    continue;
                }
                let s = &ex.steps[j];
                if only_blocked(&ex.accesses[s.acc_start as usize..s.acc_end as usize]) {
                    continue;
                }
                seq.push(SeqStep {
                    thread: s.thread,
                    start: s.acc_start,
                    end: s.acc_end,
                });
            }
            let s2 = &ex.steps[second.step as usize];
            let (start, end) =
                if only_blocked(&ex.accesses[s2.acc_start as usize..s2.acc_end as usize]) {
                    // Its step once it could run, in this execution; if
                    // it never could, unknown.
                    ex.steps[second.step as usize + 1..]
                        .iter()
                        .find(|s| {
                            s.thread == s2.thread
                                && !only_blocked(
                                    &ex.accesses[s.acc_start as usize..s.acc_end as usize],
                                )
                        })
                        .map_or((unseen, unseen + 1), |s| (s.acc_start, s.acc_end))
                } else {
                    (s2.acc_start, s2.acc_end)
                };
            seq.push(SeqStep {
                thread: s2.thread,
                start,
                end,
            });
            let node = &mut self.path[first.step as usize];
            let acc = |s: &SeqStep| &ex.accesses[s.start as usize..s.end as usize];
            let covered = node.sleep.iter().any(|z| {
                let zacc = &node.sleep_accesses[z.start as usize..z.end as usize];
                match seq.iter().position(|s| s.thread == z.thread) {
                    // An unknown step of the sleeper's is the one it took
                    // when it was explored from here.
                    Some(k) => {
                        let step = match acc(&seq[k]) {
                            s if unknown(s) => zacc,
                            s => s,
                        };
                        seq[..k].iter().all(|s| !dependent(acc(s), step))
                    }
                    None => seq.iter().all(|s| !dependent(zacc, acc(s))),
                }
            });
            if !covered {
                node.wut.insert(seq, &ex.accesses);
            }
        }
        self.exec.accesses.pop();
    }

    /// Finds the deepest node with something left to explore; the nodes
    /// below it are finished and their threads go to sleep at their parent.
    pub(super) fn backtrack_optimal(&mut self, len: usize) {
        for j in (0..len).rev() {
            let node = &mut self.path[j];
            let start = node.sleep_accesses.len() as u32;
            node.sleep_accesses.extend_from_slice(&node.event);
            node.sleep.push(SleepEntry {
                thread: node.thread,
                start,
                end: node.sleep_accesses.len() as u32,
            });
            if !node.wut.is_empty() {
                self.branch_point = j;
                return;
            }
        }
        self.exhausted = true;
    }

    /// Classic DPOR planning under a preemption bound (see module docs).
    pub(super) fn plan_bounded(&mut self) {
        let ex = &self.exec;
        for &(first, second) in &ex.races {
            let i = first.step as usize;
            let q = ex.steps[second.step as usize].thread;
            let p = ex.steps[i].thread;
            let mut j = i;
            while j > 0 && self.path[j - 1].thread == p {
                j -= 1;
            }
            for at in [i, j] {
                let node = &mut self.path[at];
                if node.enabled & bit(q) != 0 {
                    node.backtrack |= bit(q);
                } else {
                    node.backtrack |= node.enabled;
                }
            }
        }
    }

    pub(super) fn backtrack_bounded(&mut self, len: usize) {
        let bound = self.bounded().unwrap_or(u32::MAX);
        for j in (0..len).rev() {
            let before = if j == 0 {
                0
            } else {
                self.path[j - 1].preemptions
            };
            let prev = j.checked_sub(1).map(|p| self.path[p].thread);
            let after_yield = j > 0 && self.path[j - 1].yielded;
            let node = &mut self.path[j];
            node.done |= bit(node.thread);
            let mut todo = node.backtrack & node.enabled & !node.done;
            while todo != 0 {
                let t = todo.trailing_zeros() as ThreadId;
                todo &= todo - 1;
                let preempts =
                    !after_yield && prev.is_some_and(|p| p != t && node.enabled & bit(p) != 0);
                if before + u32::from(preempts) <= bound {
                    self.branch_point = j;
                    self.bounded_choice = Some(t);
                    return;
                }
                // Out of budget here: never try it again at this node.
                node.done |= bit(t);
            }
        }
        self.exhausted = true;
    }
}
