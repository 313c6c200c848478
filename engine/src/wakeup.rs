//! Wakeup trees (Abdulla et al., JACM 2017, section 6).
//!
//! A wakeup tree hangs off one node of the exploration path and holds the
//! sequences of steps still to be explored from there. Its leaves are the
//! sequences that race reversal asked for; inner nodes are their shared
//! prefixes, *modulo commuting independent steps*. Children are ordered:
//! older insertions come first and are explored first.
//!
//! Each tree node stores the step its thread is expected to perform (the
//! accesses seen when that step ran in an earlier execution), since the
//! engine never knows a thread's next step before it runs.

use crate::event::{dependent, unknown, Access};
use crate::ThreadId;

const NIL: u32 = u32::MAX;
const ROOT: u32 = 0;

#[derive(Clone, Copy, Debug)]
struct WNode {
    thread: ThreadId,
    acc_start: u32,
    acc_end: u32,
    first_child: u32,
    last_child: u32,
    next_sibling: u32,
}

impl WNode {
    fn new(thread: ThreadId, acc_start: u32, acc_end: u32) -> Self {
        WNode {
            thread,
            acc_start,
            acc_end,
            first_child: NIL,
            last_child: NIL,
            next_sibling: NIL,
        }
    }
}

/// A step of a sequence to insert: its thread and the range of its accesses
/// in a caller-owned access buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SeqStep {
    pub(crate) thread: ThreadId,
    pub(crate) start: u32,
    pub(crate) end: u32,
}

/// An ordered tree of step sequences; node 0 is the root (the path node
/// the tree belongs to). Unlinked nodes stay in the arena until the tree
/// empties, which resets it, or until they are most of it: then the live
/// part is copied into a fresh arena. (The tree of a node near the root of
/// the path empties only when the exploration ends; without compaction it
/// kept every sequence ever inserted, some kilobytes per execution.)
#[derive(Clone, Debug)]
pub(crate) struct WakeupTree {
    nodes: Vec<WNode>,
    accesses: Vec<Access>,
    /// Arena length right after the last compaction: the tree is compacted
    /// again once the arena has doubled since.
    compacted_len: usize,
}

/// Arenas smaller than this are never compacted.
const COMPACT_MIN: usize = 64;

/// An empty tree has no arena at all (the root is created on first
/// insertion), so the path nodes of a long execution allocate nothing.
impl Default for WakeupTree {
    fn default() -> Self {
        WakeupTree {
            nodes: Vec::new(),
            accesses: Vec::new(),
            compacted_len: 0,
        }
    }
}

impl WakeupTree {
    pub(crate) fn clear(&mut self) {
        // A cleared tree is refilled with a subtree, usually much smaller
        // than what the arena once held: keep small arenas for reuse, give
        // large ones back (every node of the path keeps its tree).
        if self.nodes.capacity() > 4 * COMPACT_MIN {
            self.nodes = Vec::new();
        }
        if self.accesses.capacity() > 8 * COMPACT_MIN {
            self.accesses = Vec::new();
        }
        self.nodes.clear();
        self.accesses.clear();
        self.compacted_len = 0;
    }

    /// Nodes in the arena, linked or not (for tests).
    #[cfg(test)]
    fn arena_len(&self) -> usize {
        self.nodes.len()
    }

    /// Copies the live tree into a fresh arena once the arena has doubled
    /// since the last compaction: each node is copied at most a constant
    /// number of times on average, and garbage is at most half the arena.
    fn compact_if_sparse(&mut self) {
        if self.nodes.len() < COMPACT_MIN.max(2 * self.compacted_len) {
            return;
        }
        let mut fresh = WakeupTree::default();
        fresh.ensure_root();
        let mut child = self.first_child();
        while child != NIL {
            let copied = self.copy_subtree(child, &mut fresh);
            fresh.link_last(ROOT, copied);
            child = self.nodes[child as usize].next_sibling;
        }
        fresh.compacted_len = fresh.nodes.len();
        *self = fresh;
    }

    fn ensure_root(&mut self) {
        if self.nodes.is_empty() {
            self.nodes.push(WNode::new(usize::MAX, 0, 0));
        }
    }

    fn first_child(&self) -> u32 {
        self.nodes.first().map_or(NIL, |root| root.first_child)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first_child() == NIL
    }

    /// Thread of the first (oldest) child of the root.
    pub(crate) fn first_thread(&self) -> Option<ThreadId> {
        let c = self.first_child();
        (c != NIL).then(|| self.nodes[c as usize].thread)
    }

    /// Removes the first child of the root and moves its subtree into `into`
    /// (which is cleared first) as `into`'s root children.
    pub(crate) fn take_first(&mut self, into: &mut WakeupTree) {
        into.clear();
        let c = self.first_child();
        if c == NIL {
            return;
        }
        into.ensure_root();
        let mut child = self.nodes[c as usize].first_child;
        while child != NIL {
            let copied = self.copy_subtree(child, into);
            into.link_last(ROOT, copied);
            child = self.nodes[child as usize].next_sibling;
        }
        self.unlink_first();
    }

    /// Removes the first child of the root and its subtree.
    pub(crate) fn unlink_first(&mut self) {
        let c = self.first_child();
        if c == NIL {
            return;
        }
        let next = self.nodes[c as usize].next_sibling;
        self.nodes[ROOT as usize].first_child = next;
        if next == NIL {
            self.clear();
        } else {
            self.compact_if_sparse();
        }
    }

    fn copy_subtree(&self, node: u32, into: &mut WakeupTree) -> u32 {
        let n = self.nodes[node as usize];
        let start = into.accesses.len() as u32;
        into.accesses
            .extend_from_slice(&self.accesses[n.acc_start as usize..n.acc_end as usize]);
        let end = into.accesses.len() as u32;
        let id = into.nodes.len() as u32;
        into.nodes.push(WNode::new(n.thread, start, end));
        let mut child = n.first_child;
        while child != NIL {
            let copied = self.copy_subtree(child, into);
            into.link_last(id, copied);
            child = self.nodes[child as usize].next_sibling;
        }
        id
    }

    fn link_last(&mut self, parent: u32, child: u32) {
        let last = self.nodes[parent as usize].last_child;
        if last == NIL {
            self.nodes[parent as usize].first_child = child;
        } else {
            self.nodes[last as usize].next_sibling = child;
        }
        self.nodes[parent as usize].last_child = child;
    }

    fn node_accesses(&self, node: u32) -> &[Access] {
        let n = &self.nodes[node as usize];
        &self.accesses[n.acc_start as usize..n.acc_end as usize]
    }

    /// `insert[E](w, wut)`: adds the sequence `w` unless the tree already
    /// holds a leaf that is a weak prefix of it (modulo independence).
    ///
    /// Walking down from the root, a child with thread `p` absorbs the next
    /// part of `w` when `p` is a weak initial of what is left: either `p`'s
    /// first step in `w` depends on no earlier step of `w` (that step is
    /// removed from `w`), or `p` does not occur in `w` and its step commutes
    /// with all of `w`. If some leaf is reached, `w` is redundant; otherwise
    /// the rest of `w` becomes a new last child of the deepest node reached.
    /// `w` is consumed.
    pub(crate) fn insert(&mut self, w: &mut Vec<SeqStep>, buf: &[Access]) {
        let acc = |s: &SeqStep| &buf[s.start as usize..s.end as usize];
        self.ensure_root();
        let mut node = ROOT;
        loop {
            if w.is_empty() {
                return;
            }
            let mut child = self.nodes[node as usize].first_child;
            let mut matched = NIL;
            while child != NIL {
                let p = self.nodes[child as usize].thread;
                if let Some(k) = w.iter().position(|s| s.thread == p) {
                    // A step of `w` that no execution has shown is, here,
                    // the step this child saw its thread take.
                    let step = match acc(&w[k]) {
                        s if unknown(s) => self.node_accesses(child),
                        s => s,
                    };
                    if w[..k].iter().all(|s| !dependent(acc(s), step)) {
                        w.remove(k);
                        matched = child;
                        break;
                    }
                } else {
                    let mine = self.node_accesses(child);
                    if w.iter().all(|s| !dependent(mine, acc(s))) {
                        matched = child;
                        break;
                    }
                }
                child = self.nodes[child as usize].next_sibling;
            }
            if matched == NIL {
                let mut parent = node;
                for s in w.drain(..) {
                    let start = self.accesses.len() as u32;
                    self.accesses.extend_from_slice(acc(&s));
                    let end = self.accesses.len() as u32;
                    let id = self.nodes.len() as u32;
                    self.nodes.push(WNode::new(s.thread, start, end));
                    self.link_last(parent, id);
                    parent = id;
                }
                return;
            }
            if self.nodes[matched as usize].first_child == NIL {
                // A leaf that is a weak prefix of `w`: exploring it covers `w`.
                w.clear();
                return;
            }
            node = matched;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Op, Space};

    fn buf() -> Vec<Access> {
        vec![
            Access {
                space: Space::Memory,
                key: 1,
                op: Op::Write,
            },
            Access {
                space: Space::Memory,
                key: 2,
                op: Op::Write,
            },
            Access {
                space: Space::Memory,
                key: 1,
                op: Op::Read,
            },
        ]
    }

    fn step(thread: ThreadId, idx: u32) -> SeqStep {
        SeqStep {
            thread,
            start: idx,
            end: idx + 1,
        }
    }

    #[test]
    fn a_sequence_equivalent_to_a_leaf_is_not_inserted_twice() {
        let b = buf();
        let mut t = WakeupTree::default();
        // Thread 1 writes x, then thread 2 writes y.
        t.insert(&mut vec![step(1, 0), step(2, 1)], &b);
        // Thread 2 writes y, then thread 1 writes x: the same trace.
        t.insert(&mut vec![step(2, 1), step(1, 0)], &b);
        assert_eq!(t.first_thread(), Some(1));
        let mut sub = WakeupTree::default();
        t.take_first(&mut sub);
        assert!(t.is_empty(), "the second sequence must have been absorbed");
        assert_eq!(sub.first_thread(), Some(2));
    }

    #[test]
    fn a_tree_that_never_empties_keeps_a_bounded_arena() {
        let b = buf();
        let mut t = WakeupTree::default();
        let mut sub = WakeupTree::default();
        // One live branch at all times; every round inserts a long
        // sequence and then explores (takes) the oldest branch.
        t.insert(&mut vec![step(1, 0), step(2, 1)], &b);
        for round in 0..10_000usize {
            let mut w: Vec<SeqStep> = (0..20)
                .map(|i| step(if i % 2 == 0 { 2 } else { 1 }, 2))
                .collect();
            w.insert(0, step(3 + round % 5, 0));
            t.insert(&mut w, &b);
            t.take_first(&mut sub);
            assert!(!t.is_empty());
        }
        assert!(t.arena_len() < 200, "arena holds {} nodes", t.arena_len());
        // What is left is still what was inserted last.
        t.take_first(&mut sub);
        assert!(t.is_empty());
        assert!(!sub.is_empty());
    }

    #[test]
    fn dependent_orders_become_separate_branches() {
        let b = buf();
        let mut t = WakeupTree::default();
        t.insert(&mut vec![step(1, 0), step(2, 2)], &b);
        t.insert(&mut vec![step(2, 2), step(1, 0)], &b);
        let mut sub = WakeupTree::default();
        t.take_first(&mut sub);
        assert_eq!(t.first_thread(), Some(2));
    }
}
