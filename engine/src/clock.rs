//! Vector clocks for the happens-before relation of one execution.
//!
//! Entry `t` of a clock is the number of steps of thread `t` that happen
//! before (or are) the event the clock belongs to. A step `s` of thread `t`
//! with per-thread position `i` (1-based) happens before an event with clock
//! `c` exactly when `c[t] >= i`.

/// A vector clock with one entry per thread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionVec {
    entries: Vec<u32>,
}

impl VersionVec {
    /// A clock of `num_threads` zero entries.
    pub fn new(num_threads: usize) -> Self {
        VersionVec {
            entries: vec![0; num_threads],
        }
    }

    /// The entry of thread `t`.
    #[inline]
    pub fn get(&self, t: usize) -> u32 {
        self.entries[t]
    }

    /// Sets the entry of thread `t`.
    #[inline]
    pub fn set(&mut self, t: usize, value: u32) {
        self.entries[t] = value;
    }

    /// Point-wise maximum with `other` (which must have the same length).
    #[inline]
    pub fn join(&mut self, other: &[u32]) {
        for (mine, theirs) in self.entries.iter_mut().zip(other) {
            if *theirs > *mine {
                *mine = *theirs;
            }
        }
    }

    /// Resets every entry to zero, keeping the allocation.
    #[inline]
    pub fn clear(&mut self) {
        self.entries.iter_mut().for_each(|e| *e = 0);
    }

    /// The entries, thread by thread.
    #[inline]
    pub fn as_slice(&self) -> &[u32] {
        &self.entries
    }

    /// Whether every entry of `self` is at most the matching entry of `other`.
    pub fn le(&self, other: &VersionVec) -> bool {
        self.entries
            .iter()
            .zip(&other.entries)
            .all(|(mine, theirs)| mine <= theirs)
    }
}

/// Clocks of all steps of an execution, stored back to back so that an
/// execution allocates nothing once the buffer has grown to its length.
#[derive(Debug, Default)]
pub(crate) struct ClockTable {
    width: usize,
    data: Vec<u32>,
}

impl ClockTable {
    pub(crate) fn new(width: usize) -> Self {
        ClockTable {
            width,
            data: Vec::new(),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.data.clear();
    }

    /// Appends a copy of `clock` as the clock of the next step.
    pub(crate) fn push(&mut self, clock: &VersionVec) {
        self.data.extend_from_slice(clock.as_slice());
    }

    #[inline]
    pub(crate) fn get(&self, step: usize) -> &[u32] {
        &self.data[step * self.width..(step + 1) * self.width]
    }

    /// Entry `thread` of the clock of `step`.
    #[inline]
    pub(crate) fn entry(&self, step: usize, thread: usize) -> u32 {
        self.data[step * self.width + thread]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_takes_the_pointwise_maximum() {
        let mut a = VersionVec::new(3);
        a.set(0, 2);
        a.set(2, 1);
        let mut b = VersionVec::new(3);
        b.set(1, 4);
        b.set(2, 0);
        a.join(b.as_slice());
        assert_eq!(a.as_slice(), &[2, 4, 1]);
        assert!(b.le(&a));
        assert!(!a.le(&b));
    }
}
