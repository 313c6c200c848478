//! Which commits a snapshot transaction is ordered against.
//!
//! Under REPEATABLE READ and SERIALIZABLE a transaction reads from a
//! snapshot taken at one statement (PostgreSQL: its first statement; MySQL:
//! its first consistent read). Which commits of other sessions it sees is
//! decided by the order of that statement and those commits. Only commits
//! that wrote a table the transaction reads matter, so the ordering is kept
//! per table, on one pseudo-table per real table, `<commits:T>`:
//!
//! * a commit that wrote row `r` of `T` writes row `r` of `<commits:T>`
//!   (a whole-table write of `T` writes all of `<commits:T>`), so commits to
//!   different rows meet only through the bucket over-report of
//!   [`super::keys`], and commits to different tables never;
//! * the statement that takes the snapshot reads, for every row or table it
//!   touches, that row or all of `<commits:T>`, so it is ordered against
//!   every commit that could change what it reads.
//!
//! # Tables read after the snapshot
//!
//! A later statement of the same transaction may read a table `U` (or a
//! row of it) the snapshot statement did not touch. The snapshot still decides what it
//! sees of `U`, but the snapshot statement has already been reported, so
//! it cannot be ordered against commits to `U` any more. Such tables are
//! recorded here, process-wide, as *hints*: from then on every snapshot
//! statement also reads `<commits:U>`. A hint added during an exploration
//! means that exploration ran with an incomplete ordering, so the explorer
//! compares [`generation`] before and after and explores again from the
//! start when it grew (programs are deterministic given the schedule, so
//! the second exploration sees no new hint). [`reset`] forgets the hints;
//! the explorer calls it before each exploration.
//!
//! When [`MAX_HINTS`] tables are hinted, further hints make every snapshot
//! statement fall back to the coarse key, which orders it against
//! everything on the server.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::{fnv1a64, AccessKind, Classification, Fallback, InlineStr, RowKey, RowValue};
use super::{TableAccess, TABLE_CAP};

/// Prefix of the commit-ordering pseudo-tables.
pub const COMMITS_PREFIX: &[u8] = b"<commits:";

/// Most tables remembered as read after a snapshot.
pub const MAX_HINTS: usize = 16;

const WORDS: usize = TABLE_CAP / 8;
const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const READY: u8 = 2;

struct Hint {
    state: AtomicU8,
    len: AtomicU8,
    /// The canonical table name, 8 bytes a word.
    name: [AtomicU64; WORDS],
}

static HINTS: [Hint; MAX_HINTS] = [const {
    Hint {
        state: AtomicU8::new(EMPTY),
        len: AtomicU8::new(0),
        name: [const { AtomicU64::new(0) }; WORDS],
    }
}; MAX_HINTS];
static OVERFLOW: AtomicBool = AtomicBool::new(false);
static GENERATION: AtomicU32 = AtomicU32::new(0);

/// Bumped by every new hint (and by [`reset`]).
pub fn generation() -> u32 {
    GENERATION.load(Ordering::Acquire)
}

/// Forgets every hint. Only call while no snapshot statement is being
/// classified (between explorations).
pub fn reset() {
    for h in &HINTS {
        h.state.store(EMPTY, Ordering::Release);
    }
    OVERFLOW.store(false, Ordering::Release);
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

fn load(h: &Hint) -> Option<InlineStr<TABLE_CAP>> {
    if h.state.load(Ordering::Acquire) != READY {
        return None;
    }
    let len = h.len.load(Ordering::Relaxed) as usize;
    let mut bytes = [0u8; TABLE_CAP];
    for (i, w) in h.name.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
    }
    Some(InlineStr::from_truncated(&bytes[..len.min(TABLE_CAP)]))
}

/// Records `table` as read after a snapshot; true when it is new.
fn hint(table: &[u8]) -> bool {
    for h in &HINTS {
        if load(h).is_some_and(|t| t.as_bytes() == table) {
            return false;
        }
    }
    for h in &HINTS {
        if h.state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        let mut bytes = [0u8; TABLE_CAP];
        let n = table.len().min(TABLE_CAP);
        bytes[..n].copy_from_slice(&table[..n]);
        for (i, w) in h.name.iter().enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            w.store(u64::from_le_bytes(word), Ordering::Relaxed);
        }
        h.len.store(n as u8, Ordering::Relaxed);
        h.state.store(READY, Ordering::Release);
        GENERATION.fetch_add(1, Ordering::AcqRel);
        return true;
    }
    if !OVERFLOW.swap(true, Ordering::AcqRel) {
        GENERATION.fetch_add(1, Ordering::AcqRel);
        return true;
    }
    false
}

/// Whether `table` is one of the commit-ordering pseudo-tables.
pub fn is_commit_order(table: &[u8]) -> bool {
    table.starts_with(COMMITS_PREFIX)
}

/// `<commits:T>` for the real table `T` (cut to [`TABLE_CAP`]: long names
/// that share a prefix merge, which only adds conflicts).
pub fn commits_table(table: &[u8]) -> InlineStr<TABLE_CAP> {
    let mut name = InlineStr::from_truncated(COMMITS_PREFIX);
    let _ = name.push_str(&table[..table.len().min(TABLE_CAP - COMMITS_PREFIX.len() - 1)]);
    let _ = name.push(b'>');
    name
}

/// Row `row` of `<commits:T>`: the same digest (and, for explanations, the
/// same column and value) as the row of `T`.
fn commit_row(table: &[u8], row: RowKey, kind: AccessKind) -> TableAccess {
    TableAccess {
        table: commits_table(table),
        row: Some(row),
        kind,
    }
}

/// The snapshot's read for one access: the commits to that row, or to the
/// whole table.
fn snapshot_read(table: &[u8], row: Option<RowKey>) -> TableAccess {
    match row {
        Some(r) => commit_row(table, r, AccessKind::Read),
        None => TableAccess {
            table: commits_table(table),
            row: None,
            kind: AccessKind::Read,
        },
    }
}

/// The row of an access, when it names one by a digest.
fn digest_row(a: &TableAccess) -> Option<RowKey> {
    a.row.filter(|r| matches!(r.value, RowValue::Digest(_)))
}

fn row_digest(a: &TableAccess) -> Option<u64> {
    match digest_row(a).map(|r| r.value) {
        Some(RowValue::Digest(d)) => Some(d),
        _ => None,
    }
}

/// What a snapshot transaction has been ordered against so far: tables
/// (`row` none) or single rows of them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Covered {
    entries: [(u64, Option<u64>); 8],
    len: u8,
}

impl Covered {
    pub(crate) const fn new() -> Self {
        Covered {
            entries: [(0, None); 8],
            len: 0,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    fn contains(&self, table: u64, row: Option<u64>) -> bool {
        self.entries[..self.len as usize]
            .iter()
            .any(|&(t, r)| t == table && (r.is_none() || r == row))
    }

    /// Records the entry; past capacity nothing is kept, so the access
    /// counts as not covered again later, which only repeats its ordering.
    fn insert(&mut self, table: u64, row: Option<u64>) {
        if !self.contains(table, row) && (self.len as usize) < self.entries.len() {
            self.entries[self.len as usize] = (table, row);
            self.len += 1;
        }
    }
}

/// The statement takes (or may take) the transaction's snapshot: order it
/// against commits to every row or table it touches and to every hinted
/// table.
pub(crate) fn take_snapshot(stmt: &mut Classification, covered: &mut Covered) {
    let mut reads = [TableAccess {
        table: InlineStr::new(),
        row: None,
        kind: AccessKind::Read,
    }; super::MAX_ACCESSES];
    let mut n = 0;
    for a in stmt.accesses() {
        let t = a.table.as_bytes();
        if is_commit_order(t) || t.is_empty() {
            continue;
        }
        covered.insert(fnv1a64(t), row_digest(a));
        reads[n] = snapshot_read(t, digest_row(a));
        n += 1;
    }
    for r in &reads[..n] {
        stmt.push(*r);
    }
    for h in &HINTS {
        if let Some(t) = load(h) {
            let d = fnv1a64(t.as_bytes());
            if !covered.contains(d, None) {
                covered.insert(d, None);
                stmt.push(snapshot_read(t.as_bytes(), None));
            }
        }
    }
    if OVERFLOW.load(Ordering::Acquire) {
        stmt.set_fallback(Fallback::TooManyAccesses);
    }
}

/// A statement after the snapshot: tables it touches where the snapshot
/// was not ordered against the commits it reads become hints (see the
/// module docs), and are ordered against commits here at least.
pub(crate) fn after_snapshot(stmt: &mut Classification, covered: &mut Covered) {
    let mut late = [InlineStr::<TABLE_CAP>::new(); super::MAX_ACCESSES];
    let mut n = 0;
    for a in stmt.accesses() {
        let t = a.table.as_bytes();
        if is_commit_order(t) || t.is_empty() || covered.contains(fnv1a64(t), row_digest(a)) {
            continue;
        }
        late[n] = a.table;
        n += 1;
    }
    for t in &late[..n] {
        hint(t.as_bytes());
        covered.insert(fnv1a64(t.as_bytes()), None);
        stmt.push(snapshot_read(t.as_bytes(), None));
    }
}

/// The writes of a commit on the pseudo-tables: a row of `<commits:T>` for
/// each row it wrote (the same digest as the row), `<commits:T>` as a whole
/// for a table it wrote as a whole. When that does not fit in `out`, one
/// whole-table write per table instead (which orders the commit against
/// every snapshot of the table, and against other commits to it).
pub(crate) fn commit_markers(writes: &Classification, out: &mut Classification) {
    let marked =
        |a: &TableAccess| a.kind == AccessKind::Write && !is_commit_order(a.table.as_bytes());
    let per_row = writes.accesses().iter().filter(|a| marked(a)).count();
    if out.accesses().len() + per_row <= super::MAX_ACCESSES {
        for a in writes.accesses().iter().filter(|a| marked(a)) {
            out.push(match digest_row(a) {
                Some(r) => commit_row(a.table.as_bytes(), r, AccessKind::Write),
                None => TableAccess {
                    table: commits_table(a.table.as_bytes()),
                    row: None,
                    kind: AccessKind::Write,
                },
            });
        }
        return;
    }
    for a in writes.accesses().iter().filter(|a| marked(a)) {
        out.push(TableAccess {
            table: commits_table(a.table.as_bytes()),
            row: None,
            kind: AccessKind::Write,
        });
    }
}
