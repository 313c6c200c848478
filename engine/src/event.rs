//! The events a step can contain, and when two steps are dependent.
//!
//! A step of a thread is the visible operation it performs between two
//! `schedule()` calls; the binding reports it as a short list of accesses.
//! Two steps are *dependent* when some access of one conflicts with some
//! access of the other; everything else commutes. This is the independence
//! relation that defines the Mazurkiewicz traces the explorer enumerates.

/// Index of a thread, `0..num_threads`.
pub type ThreadId = usize;

/// Identity of a shared object, I/O resource or lock, chosen by the caller.
pub type ObjectKey = u64;

/// Whether an access reads or writes its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    Read,
    Write,
}

/// Key spaces: a memory object, an I/O resource and a lock with the same
/// `ObjectKey` are different objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Space {
    Memory,
    Io,
    Lock,
    /// Thread lifetime: spawn, finish and join on the thread whose id is the key.
    Thread,
    /// What a thread that was blocked will do once it can run, which no
    /// execution has seen yet: it conflicts with every access.
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Read,
    Write,
    Acquire,
    Release,
    /// A blocking acquire that found the lock held, or a join that found
    /// the thread alive: the thread waits and retries.
    BlockProbe,
    /// A non-blocking acquire that failed; unlike a block probe, the program
    /// sees the failure and may act on it.
    TryFail,
    /// The thread ended (key: itself).
    Finish,
    /// A successful join (key: the joined thread).
    Join,
}

impl Op {
    fn is_probe(self) -> bool {
        matches!(self, Op::BlockProbe | Op::TryFail)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Access {
    pub(crate) space: Space,
    pub(crate) key: ObjectKey,
    pub(crate) op: Op,
}

impl Access {
    /// Whether the two accesses do not commute.
    #[inline]
    pub(crate) fn conflicts(&self, other: &Access) -> bool {
        if self.key != other.key || self.space != other.space {
            return self.space == Space::Unknown || other.space == Space::Unknown;
        }
        match self.space {
            Space::Unknown => true,
            Space::Memory | Space::Io => !(self.op == Op::Read && other.op == Op::Read),
            Space::Lock => !(self.op.is_probe() && other.op.is_probe()),
            // A finish changes the outcome of a join attempt; two joins of
            // the same thread commute.
            Space::Thread => (self.op == Op::Finish) != (other.op == Op::Finish),
        }
    }
}

/// Whether a step only found a lock held (or a thread alive) and blocked.
/// Such a step changes nothing: retrying after the wake-up gives the same
/// trace, so it is left out of reordered sequences and wakes no sleeper.
#[inline]
pub(crate) fn only_blocked(step: &[Access]) -> bool {
    !step.is_empty() && step.iter().all(|a| a.op == Op::BlockProbe)
}

/// Whether a planned step stands for a step no execution has shown (see
/// [`Space::Unknown`]).
#[inline]
pub(crate) fn unknown(step: &[Access]) -> bool {
    matches!(step, [a] if a.space == Space::Unknown)
}

/// Whether two steps (given by their accesses) are dependent.
#[inline]
pub(crate) fn dependent(a: &[Access], b: &[Access]) -> bool {
    a.iter().any(|x| b.iter().any(|y| x.conflicts(y)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(space: Space, key: u64, op: Op) -> Access {
        Access { space, key, op }
    }

    #[test]
    fn reads_commute_and_writes_do_not() {
        let r = acc(Space::Memory, 1, Op::Read);
        let w = acc(Space::Memory, 1, Op::Write);
        let other = acc(Space::Memory, 2, Op::Write);
        let io = acc(Space::Io, 1, Op::Write);
        assert!(!r.conflicts(&r));
        assert!(r.conflicts(&w) && w.conflicts(&r) && w.conflicts(&w));
        assert!(!w.conflicts(&other));
        assert!(!w.conflicts(&io));
    }

    #[test]
    fn failed_lock_attempts_commute_with_each_other_only() {
        let a = acc(Space::Lock, 7, Op::Acquire);
        let p = acc(Space::Lock, 7, Op::BlockProbe);
        let f = acc(Space::Lock, 7, Op::TryFail);
        assert!(!p.conflicts(&f));
        assert!(a.conflicts(&p) && a.conflicts(&f) && a.conflicts(&a));
    }

    #[test]
    fn an_unknown_step_conflicts_with_everything() {
        let u = acc(Space::Unknown, 0, Op::Write);
        for other in [
            acc(Space::Memory, 3, Op::Read),
            acc(Space::Io, 0, Op::Write),
            acc(Space::Lock, 7, Op::BlockProbe),
            acc(Space::Thread, 1, Op::Finish),
            u,
        ] {
            assert!(u.conflicts(&other) && other.conflicts(&u));
        }
    }
}
