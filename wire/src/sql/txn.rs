//! Transactions: the per-connection memory of an open transaction
//! ([`SqlSession`]), which reports its writes again at `COMMIT` and orders
//! snapshots against commits, and the transaction statements themselves.

use super::*;

/// The prefix of the pseudo-tables that order commits against snapshots
/// (see [`crate::snapshot`]).
pub const COMMITS_TABLE: &[u8] = crate::snapshot::COMMITS_PREFIX;

/// Session-level isolation, as far as the statements have said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Isolation {
    /// The server default: snapshots per transaction in MySQL (InnoDB's
    /// REPEATABLE READ), per statement in PostgreSQL (READ COMMITTED).
    #[default]
    ServerDefault,
    /// REPEATABLE READ or SERIALIZABLE: one snapshot per transaction.
    Snapshot,
    /// READ COMMITTED or READ UNCOMMITTED: a snapshot per statement.
    PerStatement,
}

/// Per-connection transaction memory (see the module docs).
///
/// MySQL rules are followed once a MySQL statement is seen: with
/// `SET autocommit = 0` every statement is inside a transaction that the
/// next `COMMIT` publishes, and `BEGIN`, DDL and `SET autocommit = 1` commit
/// an open transaction implicitly.
///
/// # Snapshots
///
/// Under REPEATABLE READ or SERIALIZABLE (MySQL's default) a transaction
/// reads from a snapshot, so which commits of other sessions it sees
/// depends on the order of the statement that takes it and those commits.
/// [`crate::snapshot`] expresses that per table: every commit that wrote
/// something (a `COMMIT`, or a write outside any transaction) writes a row
/// of `<commits:T>` for each table `T` it wrote, and the statement that
/// takes the snapshot reads `<commits:T>` for the tables it touches (for
/// PostgreSQL the first statement of the transaction; for MySQL every
/// statement up to and including the first that reads, a safe superset of
/// its first consistent read). Transactions on different tables therefore
/// stay independent, and commits of different rows too (the consumer puts a
/// row write in the writing thread's bucket:
/// `ring::DbAccess::engine_accesses_by`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SqlSession {
    pub(super) in_txn: bool,
    /// MySQL `autocommit = 0`: a new transaction starts after each end.
    pub(super) implicit: bool,
    pub(super) mysql: bool,
    pub(super) isolation: Isolation,
    /// This transaction reads from one snapshot.
    pub(super) txn_snapshot: bool,
    /// ... which is surely taken by now.
    pub(super) snapshot_taken: bool,
    /// Tables the snapshot has been ordered against.
    pub(super) covered: crate::snapshot::Covered,
    /// MySQL `SET TRANSACTION ISOLATION LEVEL ...`: the next transaction
    /// only (true: a snapshot).
    pub(super) next_txn: Option<bool>,
    pub(super) writes: Classification,
}

impl SqlSession {
    pub const fn new() -> Self {
        SqlSession {
            in_txn: false,
            implicit: false,
            mysql: false,
            isolation: Isolation::ServerDefault,
            txn_snapshot: false,
            snapshot_taken: false,
            covered: crate::snapshot::Covered::new(),
            next_txn: None,
            writes: Classification::new(),
        }
    }

    /// A session that follows MySQL's transaction rules from the start.
    pub const fn for_mysql() -> Self {
        let mut s = SqlSession::new();
        s.mysql = true;
        s
    }

    /// Whether a transaction is open (explicitly, or implicitly with MySQL
    /// autocommit off).
    pub fn in_transaction(&self) -> bool {
        self.in_txn
    }

    pub(super) fn session_snapshots(&self) -> bool {
        match self.isolation {
            Isolation::ServerDefault => self.mysql,
            Isolation::Snapshot => true,
            Isolation::PerStatement => false,
        }
    }

    /// `snapshot`: the statement asked for one snapshot (`Some(true)`), for
    /// a snapshot per statement (`Some(false)`), or left it to the session.
    pub(super) fn start_txn(&mut self, snapshot: Option<bool>) {
        self.in_txn = true;
        self.txn_snapshot = snapshot
            .or(self.next_txn.take())
            .unwrap_or_else(|| self.session_snapshots());
        self.snapshot_taken = false;
        self.covered.clear();
        self.writes.clear();
    }

    pub(super) fn record(&mut self, stmt: &mut Classification) {
        if !self.in_txn {
            // Outside a transaction each statement is its own commit.
            let own = *stmt;
            crate::snapshot::commit_markers(&own, stmt);
            return;
        }
        stmt.mark_txn(Classification::TAKES_ROW_LOCKS);
        if self.txn_snapshot && !self.snapshot_taken {
            // PostgreSQL takes the snapshot at the first statement, MySQL
            // at the first consistent read.
            let reads = stmt.accesses().iter().any(|a| a.kind == AccessKind::Read);
            crate::snapshot::take_snapshot(stmt, &mut self.covered);
            self.snapshot_taken = reads || !self.mysql;
        } else if self.txn_snapshot {
            crate::snapshot::after_snapshot(stmt, &mut self.covered);
        }
        for a in stmt.accesses() {
            if a.kind == AccessKind::Write {
                self.writes.push(*a);
            }
        }
        if let Some(f) = stmt.fallback() {
            self.writes.set_fallback(f);
        }
    }

    pub(super) fn begin(&mut self, snapshot: Option<bool>, out: &mut Classification) {
        if self.in_txn {
            if self.mysql {
                // MySQL commits the open transaction first.
                self.end(true, out);
            } else {
                // PostgreSQL ignores a nested BEGIN: keep what is pending.
                return;
            }
        }
        self.start_txn(snapshot);
    }

    pub(super) fn end(&mut self, commit: bool, out: &mut Classification) {
        if self.in_txn {
            out.mark_txn(Classification::ENDS_TRANSACTION);
        }
        if commit && self.in_txn {
            for a in self.writes.accesses() {
                out.push(*a);
            }
            crate::snapshot::commit_markers(&self.writes, out);
            if let Some(f) = self.writes.fallback() {
                out.set_fallback(f);
            }
        }
        self.in_txn = false;
        self.writes.clear();
        if self.implicit {
            self.start_txn(None);
        }
    }
}

/// Runs the transaction effect of a statement: `BEGIN` opens, `COMMIT` adds
/// the remembered writes to `stmt`, other statements' writes are
/// remembered.
pub(crate) fn apply_txn(session: &mut SqlSession, kind: StatementKind, stmt: &mut Classification) {
    match kind {
        StatementKind::Begin => session.begin(None, stmt),
        StatementKind::BeginSnapshot => session.begin(Some(true), stmt),
        StatementKind::BeginPerStatement => session.begin(Some(false), stmt),
        StatementKind::BeginConsistentSnapshot => {
            session.begin(Some(true), stmt);
            session.record(stmt);
            session.snapshot_taken = true;
        }
        StatementKind::IsolationSnapshot { session_wide } => {
            if session_wide {
                session.isolation = Isolation::Snapshot;
            }
            if session.in_txn && !session.txn_snapshot {
                session.txn_snapshot = true;
                session.snapshot_taken = false;
                session.covered.clear();
            } else if !session.in_txn && !session_wide && session.mysql {
                session.next_txn = Some(true);
            }
        }
        StatementKind::IsolationPerStatement { session_wide } => {
            if session_wide {
                session.isolation = Isolation::PerStatement;
            } else if session.in_txn {
                // PostgreSQL: for the open transaction, which has not run a
                // query yet (the server refuses it later). MySQL with
                // autocommit off: the next transaction is the open one when
                // nothing ran in it yet.
                if !session.snapshot_taken && session.writes.accesses().is_empty() {
                    session.txn_snapshot = false;
                }
            } else if session.mysql {
                // MySQL `SET TRANSACTION`: the next transaction only.
                session.next_txn = Some(false);
            }
        }
        StatementKind::Commit => session.end(true, stmt),
        StatementKind::Rollback => session.end(false, stmt),
        StatementKind::CommitAndChain | StatementKind::RollbackAndChain => {
            // The chained transaction keeps the isolation level.
            let snapshot = session.txn_snapshot;
            session.end(kind == StatementKind::CommitAndChain, stmt);
            if !session.in_txn {
                session.start_txn(Some(snapshot));
            }
        }
        StatementKind::AutocommitOff => {
            session.implicit = true;
            if !session.in_txn {
                session.start_txn(None);
            }
        }
        StatementKind::AutocommitOn => {
            session.implicit = false;
            session.end(true, stmt);
        }
        StatementKind::Ddl if session.mysql => {
            session.end(true, stmt);
            session.record(stmt);
        }
        _ => session.record(stmt),
    }
}

/// The value after `autocommit`: `= 0|OFF|FALSE` or `= 1|ON|TRUE`.
pub(super) fn autocommit_value(src: &[u8], lx: &mut Lexer<'_>) -> StatementKind {
    let eq = lx.next();
    let v = lx.next();
    match (eq, v) {
        (Some(e), Some(v)) if e.t == T::Punct(b'=') || &src[e.s..e.e] == b":=" => {
            let w = &src[v.s..v.e];
            if w == b"0" || w.eq_ignore_ascii_case(b"off") || w.eq_ignore_ascii_case(b"false") {
                StatementKind::AutocommitOff
            } else if w == b"1" || w.eq_ignore_ascii_case(b"on") || w.eq_ignore_ascii_case(b"true")
            {
                StatementKind::AutocommitOn
            } else {
                StatementKind::Unknown
            }
        }
        _ => StatementKind::Unknown,
    }
}

pub(super) fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// A transaction start, with or without one snapshot for the whole
/// transaction (`ISOLATION LEVEL REPEATABLE READ | SERIALIZABLE`, `WITH
/// CONSISTENT SNAPSHOT`).
pub(super) fn begin_kind(body: &[u8]) -> StatementKind {
    if contains_ci(body, b"consistent") {
        StatementKind::BeginConsistentSnapshot
    } else if contains_ci(body, b"repeatable") || contains_ci(body, b"serializable") {
        StatementKind::BeginSnapshot
    } else if contains_ci(body, b"committed") {
        StatementKind::BeginPerStatement
    } else {
        StatementKind::Begin
    }
}

/// What a `SET` does to isolation, if it mentions it. Errs towards
/// snapshots: a snapshot assumed where there is none only adds conflicts.
pub(super) fn isolation_of(body: &[u8]) -> Option<StatementKind> {
    if !contains_ci(body, b"isolation") {
        return None;
    }
    // `SET TRANSACTION ISOLATION LEVEL ...` is for one transaction; the
    // session forms name SESSION, CHARACTERISTICS or a variable. MySQL's
    // `SET GLOBAL ...` changes only sessions opened later.
    let mut lx = Lexer::new(body, Dialect::Postgres);
    let _ = lx.next();
    let second = lx.next();
    let word = |w: &[u8]| matches!(second, Some(t) if t.t == T::Word && body[t.s..t.e].eq_ignore_ascii_case(w));
    let one_txn = word(b"transaction");
    let global = word(b"global") || contains_ci(body, b"@@global.");
    if contains_ci(body, b"repeatable") || contains_ci(body, b"serializable") {
        Some(StatementKind::IsolationSnapshot {
            session_wide: !one_txn,
        })
    } else if contains_ci(body, b"committed") && !global {
        Some(StatementKind::IsolationPerStatement {
            session_wide: !one_txn,
        })
    } else {
        Some(StatementKind::NoConflict)
    }
}

/// `... AND CHAIN` (not `AND NO CHAIN`): a new transaction starts at once.
pub(super) fn chains(src: &[u8], d: Dialect) -> bool {
    let mut lx = Lexer::new(src, d);
    let mut prev_no = false;
    while let Some(t) = lx.next() {
        let w = &src[t.s..t.e];
        if w.eq_ignore_ascii_case(b"chain") {
            return !prev_no;
        }
        prev_no = w.eq_ignore_ascii_case(b"no");
    }
    false
}
