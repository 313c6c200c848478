//! A small SQL classifier: which tables (and, where cheap, which row) a
//! statement string reads or writes.
//!
//! It lexes the text properly (quoted identifiers, string literals in both
//! dialects, dollar quotes, comments, casts) so that keywords or `;` inside
//! literals and comments never mislead it, then looks only at what matters
//! for conflicts:
//!
//! * the statement head (`SELECT`, `INSERT`, `UPDATE`, DDL, `BEGIN`, ...),
//! * the table after `FROM`, `JOIN`, `USING`, `INTO`, `UPDATE`,
//!   `DELETE FROM`, `TABLE`, `REFERENCES`, at any nesting depth that is a
//!   query (so `extract(year FROM ts)` is not a table, but a subquery is),
//! * `FOR UPDATE` / `FOR NO KEY UPDATE`, which makes the reads writes: the
//!   rows are locked, so such a select must order against writes and
//!   against other locking selects,
//! * a row: a top-level `WHERE <key> = <literal or placeholder>` conjunct on
//!   a single-table `SELECT`/`UPDATE`/`DELETE`, or the key column of a
//!   single-row `INSERT ... VALUES`.
//!
//! Anything else it is unsure about yields a [`Fallback`] so the caller
//! keeps the coarse socket key; it never answers "no conflict" for text it
//! did not understand.
//!
//! # Which column is a row key
//!
//! Row independence is only sound if a table's rows are always named
//! through the same unique column. With [`RowPolicy::heuristic`] that column
//! is `id`, `<table>_id` or `<singular table>_id` (`accounts.account_id`);
//! a declared column ([`RowPolicy::declare`]) replaces the guess for its
//! table. Other `*_id` columns are usually foreign keys that select many
//! rows, so an equality on them stays table-level. Assumptions, stated
//! plainly: a table does not have two different columns that this guess
//! takes for its key, and no secondary unique constraint, foreign key,
//! trigger or view ties two rows together (when they do, use
//! [`RowPolicy::off`] or declare nothing for that table).
//!
//! # Transactions
//!
//! Inside `BEGIN ... COMMIT`, other sessions see the writes only at
//! `COMMIT`. [`SqlSession`] remembers the writes of the open transaction and
//! reports them again at `COMMIT`, so an order "reader before the commit /
//! after the commit" is explored too. `ROLLBACK` forgets them. Under
//! REPEATABLE READ and SERIALIZABLE (MySQL's default) the statement that
//! takes the transaction's snapshot is also ordered against every commit,
//! through the pseudo-table [`COMMITS_TABLE`]; see [`SqlSession`].

use super::{
    fnv1a64, AccessKind, Classification, Fallback, Fnv1a, InlineStr, RowKey, RowValue, TableAccess,
    COLUMN_CAP, TABLE_CAP, VALUE_DISPLAY_CAP,
};

/// Longest statement string classified; longer text falls back.
pub const SCAN_CAP: usize = 16 * 1024;
/// Most SQL bytes one `send` gets classified, over all the messages it
/// holds; requests past it fall back ([`Fallback::TooLong`]) while framing
/// goes on, so a huge pipelined send costs a bounded amount of parsing.
pub const SEND_SCAN_BUDGET: usize = 64 * 1024;
/// Deepest parenthesis nesting followed; deeper text falls back.
const MAX_DEPTH: usize = 32;
/// Most CTE names remembered per statement.
const MAX_CTES: usize = 8;
/// Most declared key columns in a [`RowPolicy`].
pub const MAX_DECLARED_KEYS: usize = 8;

/// Which lexical rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `"ident"`, `$1`, `$tag$...$tag$`, nested `/* */`, `?` an operator.
    Postgres,
    /// `` `ident` ``, `"string"`, backslash escapes, `#` comments, `?`
    /// placeholders, `/*! ... */` executable comments (which fall back).
    Mysql,
}

/// How rows are recognised.
#[derive(Clone, Copy, Debug)]
pub struct RowPolicy {
    heuristic: bool,
    declared: [(InlineStr<TABLE_CAP>, InlineStr<TABLE_CAP>); MAX_DECLARED_KEYS],
    n_declared: u8,
}

impl Default for RowPolicy {
    fn default() -> Self {
        RowPolicy::heuristic()
    }
}

impl RowPolicy {
    /// `id`, `<table>_id`, `<singular>_id`, plus any declared columns.
    pub const fn heuristic() -> Self {
        RowPolicy {
            heuristic: true,
            declared: [(InlineStr::new(), InlineStr::new()); MAX_DECLARED_KEYS],
            n_declared: 0,
        }
    }

    /// Only declared columns; with none declared, every access is
    /// table-level.
    pub const fn off() -> Self {
        RowPolicy {
            heuristic: false,
            declared: [(InlineStr::new(), InlineStr::new()); MAX_DECLARED_KEYS],
            n_declared: 0,
        }
    }

    /// Declares `column` the single-column primary key of `table` (names
    /// are canonicalised like SQL text). False when the policy is full.
    pub fn declare(&mut self, table: &str, column: &str) -> bool {
        if self.n_declared as usize >= MAX_DECLARED_KEYS {
            return false;
        }
        let t = canonical_name(table.as_bytes());
        let c = canonical_name(column.as_bytes());
        self.declared[self.n_declared as usize] = (t, c);
        self.n_declared += 1;
        true
    }

    /// Whether `column` (canonical) names rows of `table` (canonical).
    pub fn is_key_column(&self, table: &[u8], column: &[u8]) -> bool {
        let mut table_declared = false;
        for (t, c) in &self.declared[..self.n_declared as usize] {
            if t.as_bytes() == table {
                table_declared = true;
                if c.as_bytes() == column {
                    return true;
                }
            }
        }
        if table_declared || !self.heuristic {
            return false;
        }
        if column == b"id" {
            return true;
        }
        let Some(stem) = column.strip_suffix(b"_id") else {
            return false;
        };
        if stem.is_empty() {
            return false;
        }
        if stem == table {
            return true;
        }
        if let Some(t) = table.strip_suffix(b"ies") {
            if stem.len() == t.len() + 1 && stem.starts_with(t) && stem.ends_with(b"y") {
                return true;
            }
        }
        if let Some(t) = table.strip_suffix(b"es") {
            if stem == t {
                return true;
            }
        }
        if let Some(t) = table.strip_suffix(b"s") {
            if stem == t {
                return true;
            }
        }
        false
    }
}

/// The prefix of the pseudo-tables that order commits against snapshots
/// (see [`super::snapshot`]).
pub const COMMITS_TABLE: &[u8] = super::snapshot::COMMITS_PREFIX;

/// Session-level isolation, as far as the statements have said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Isolation {
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
/// [`super::snapshot`] expresses that per table: every commit that wrote
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
    in_txn: bool,
    /// MySQL `autocommit = 0`: a new transaction starts after each end.
    implicit: bool,
    mysql: bool,
    isolation: Isolation,
    /// This transaction reads from one snapshot.
    txn_snapshot: bool,
    /// ... which is surely taken by now.
    snapshot_taken: bool,
    /// Tables the snapshot has been ordered against.
    covered: super::snapshot::Covered,
    /// MySQL `SET TRANSACTION ISOLATION LEVEL ...`: the next transaction
    /// only (true: a snapshot).
    next_txn: Option<bool>,
    writes: Classification,
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
            covered: super::snapshot::Covered::new(),
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

    fn session_snapshots(&self) -> bool {
        match self.isolation {
            Isolation::ServerDefault => self.mysql,
            Isolation::Snapshot => true,
            Isolation::PerStatement => false,
        }
    }

    /// `snapshot`: the statement asked for one snapshot (`Some(true)`), for
    /// a snapshot per statement (`Some(false)`), or left it to the session.
    fn start_txn(&mut self, snapshot: Option<bool>) {
        self.in_txn = true;
        self.txn_snapshot = snapshot
            .or(self.next_txn.take())
            .unwrap_or_else(|| self.session_snapshots());
        self.snapshot_taken = false;
        self.covered.clear();
        self.writes.clear();
    }

    fn record(&mut self, stmt: &mut Classification) {
        if !self.in_txn {
            // Outside a transaction each statement is its own commit.
            let own = *stmt;
            super::snapshot::commit_markers(&own, stmt);
            return;
        }
        if self.txn_snapshot && !self.snapshot_taken {
            // PostgreSQL takes the snapshot at the first statement, MySQL
            // at the first consistent read.
            let reads = stmt.accesses().iter().any(|a| a.kind == AccessKind::Read);
            super::snapshot::take_snapshot(stmt, &mut self.covered);
            self.snapshot_taken = reads || !self.mysql;
        } else if self.txn_snapshot {
            super::snapshot::after_snapshot(stmt, &mut self.covered);
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

    fn begin(&mut self, snapshot: Option<bool>, out: &mut Classification) {
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

    fn end(&mut self, commit: bool, out: &mut Classification) {
        if commit && self.in_txn {
            for a in self.writes.accesses() {
                out.push(*a);
            }
            super::snapshot::commit_markers(&self.writes, out);
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

// ---------------------------------------------------------------------------
// Lexer

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum T {
    Word,
    QIdent,
    Str,
    Num,
    Param,
    Punct(u8),
    Op,
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    t: T,
    s: usize,
    e: usize,
}

#[derive(Clone, Copy)]
struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    d: Dialect,
    /// Unterminated literal/comment, executable comment, or other text this
    /// classifier should not trust.
    bad: bool,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl<'a> Lexer<'a> {
    fn new(src: &'a [u8], d: Dialect) -> Self {
        Lexer {
            src,
            pos: 0,
            d,
            bad: false,
        }
    }

    fn at(&self, i: usize) -> u8 {
        self.src.get(i).copied().unwrap_or(0)
    }

    fn skip_trivia(&mut self) {
        loop {
            let b = self.at(self.pos);
            if self.pos >= self.src.len() {
                return;
            }
            if b.is_ascii_whitespace() || b == 0x0b {
                self.pos += 1;
            } else if b == b'-' && self.at(self.pos + 1) == b'-' {
                if self.d == Dialect::Mysql {
                    let c = self.at(self.pos + 2);
                    if !(self.pos + 2 >= self.src.len() || c.is_ascii_whitespace() || c < 0x20) {
                        return;
                    }
                }
                self.skip_line();
            } else if b == b'#' && self.d == Dialect::Mysql {
                self.skip_line();
            } else if b == b'/' && self.at(self.pos + 1) == b'*' {
                if self.d == Dialect::Mysql
                    && (self.at(self.pos + 2) == b'!'
                        || (self.at(self.pos + 2) == b'M' && self.at(self.pos + 3) == b'!'))
                {
                    // Executable comment: MySQL runs its contents.
                    self.bad = true;
                }
                self.skip_block_comment();
            } else {
                return;
            }
        }
    }

    fn skip_line(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
            self.pos += 1;
        }
    }

    fn skip_block_comment(&mut self) {
        let nested = self.d == Dialect::Postgres;
        let mut depth = 0usize;
        while self.pos < self.src.len() {
            if self.at(self.pos) == b'/' && self.at(self.pos + 1) == b'*' {
                if depth == 0 || nested {
                    depth += 1;
                }
                self.pos += 2;
            } else if self.at(self.pos) == b'*' && self.at(self.pos + 1) == b'/' {
                depth -= 1;
                self.pos += 2;
                if depth == 0 {
                    return;
                }
            } else {
                self.pos += 1;
            }
        }
        self.bad = true;
    }

    /// Skips a quoted run starting at `self.pos` (the opening quote).
    fn skip_quoted(&mut self, q: u8, backslash: bool) {
        self.pos += 1;
        while self.pos < self.src.len() {
            let b = self.src[self.pos];
            if backslash && b == b'\\' {
                self.pos += 2;
                continue;
            }
            if b == q {
                if self.at(self.pos + 1) == q && self.pos + 1 < self.src.len() {
                    self.pos += 2;
                    continue;
                }
                self.pos += 1;
                return;
            }
            self.pos += 1;
        }
        self.pos = self.src.len();
        self.bad = true;
    }

    /// `$tag$ ... $tag$` at `self.pos`; false if this `$` does not open one.
    fn try_dollar_string(&mut self) -> bool {
        let start = self.pos;
        let mut i = start + 1;
        while i < self.src.len() && (self.src[i].is_ascii_alphanumeric() || self.src[i] == b'_') {
            i += 1;
        }
        if self.at(i) != b'$' || i >= self.src.len() {
            return false;
        }
        if i > start + 1 && self.src[start + 1].is_ascii_digit() {
            return false;
        }
        let tag = &self.src[start..=i];
        let mut j = i + 1;
        while j + tag.len() <= self.src.len() {
            if &self.src[j..j + tag.len()] == tag {
                self.pos = j + tag.len();
                return true;
            }
            j += 1;
        }
        self.pos = self.src.len();
        self.bad = true;
        true
    }

    fn next(&mut self) -> Option<Tok> {
        self.skip_trivia();
        let s = self.pos;
        if s >= self.src.len() {
            return None;
        }
        let b = self.src[s];
        let t = match b {
            b'\'' => {
                self.skip_quoted(b'\'', self.d == Dialect::Mysql);
                T::Str
            }
            b'"' if self.d == Dialect::Mysql => {
                self.skip_quoted(b'"', true);
                T::Str
            }
            b'"' => {
                self.skip_quoted(b'"', false);
                T::QIdent
            }
            b'`' => {
                self.skip_quoted(b'`', false);
                T::QIdent
            }
            b'$' if self.d == Dialect::Postgres && self.at(s + 1).is_ascii_digit() => {
                self.pos += 1;
                while self.at(self.pos).is_ascii_digit() && self.pos < self.src.len() {
                    self.pos += 1;
                }
                T::Param
            }
            b'$' if self.d == Dialect::Postgres && self.try_dollar_string() => T::Str,
            b'?' if self.d == Dialect::Mysql => {
                self.pos += 1;
                T::Param
            }
            b'0'..=b'9' => {
                self.lex_number(s);
                T::Num
            }
            b'.' if self.at(s + 1).is_ascii_digit()
                && !(s > 0 && (is_ident_char(self.src[s - 1]) || self.src[s - 1] == b'"')) =>
            {
                self.lex_number(s);
                T::Num
            }
            b'(' | b')' | b',' | b';' | b'.' | b'[' | b']' => {
                self.pos += 1;
                T::Punct(b)
            }
            _ if is_ident_start(b) => {
                let q = self.at(s + 1);
                if matches!(b, b'e' | b'E' | b'n' | b'N' | b'b' | b'B' | b'x' | b'X') && q == b'\''
                {
                    self.pos += 1;
                    let bs = matches!(b, b'e' | b'E') || self.d == Dialect::Mysql;
                    self.skip_quoted(b'\'', bs);
                    T::Str
                } else {
                    while self.pos < self.src.len() && is_ident_char(self.src[self.pos]) {
                        self.pos += 1;
                    }
                    T::Word
                }
            }
            _ => self.lex_operator(),
        };
        if self.pos == s {
            // Never stall on a byte no rule consumed.
            self.pos += 1;
        }
        Some(Tok { t, s, e: self.pos })
    }

    fn lex_number(&mut self, s: usize) {
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            let exponent_sign = self.pos > s
                && (c == b'+' || c == b'-')
                && matches!(self.src[self.pos - 1], b'e' | b'E')
                && self.src[s..self.pos - 1]
                    .iter()
                    .all(|x| x.is_ascii_digit() || *x == b'.');
            if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exponent_sign {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn lex_operator(&mut self) -> T {
        const OPS: &[u8] = b"+-*/<>=~!@#%^&|`?:";
        let s = self.pos;
        let mut i = s;
        while i < self.src.len() && OPS.contains(&self.src[i]) {
            if self.d == Dialect::Mysql && (self.src[i] == b'#' || self.src[i] == b'?') {
                break;
            }
            if i > s
                && ((self.src[i] == b'-' && self.src[i - 1] == b'-')
                    || (self.src[i] == b'*' && self.src[i - 1] == b'/'))
            {
                i -= 1;
                break;
            }
            i += 1;
        }
        if i == s {
            // A byte outside every class: skip it as an operator.
            self.pos = s + 1;
            return T::Op;
        }
        // PostgreSQL: a multi-character operator cannot end in + or -
        // unless it holds one of ~!@#%^&|`?  (so `=-5` is `=` then `-5`).
        let special = self.src[s..i].iter().any(|c| b"~!@#%^&|`?".contains(c));
        while i - s > 1 && matches!(self.src[i - 1], b'+' | b'-') && !special {
            i -= 1;
        }
        self.pos = i;
        if i - s == 1 && self.src[s] == b'=' {
            T::Punct(b'=')
        } else {
            T::Op
        }
    }
}

// ---------------------------------------------------------------------------
// Keywords

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kw {
    None,
    Select,
    With,
    Values,
    Table,
    Insert,
    Replace,
    Update,
    Delete,
    Merge,
    From,
    Join,
    Into,
    Using,
    Where,
    Set,
    For,
    No,
    Key,
    Share,
    On,
    Conflict,
    Duplicate,
    Do,
    Then,
    Only,
    Lateral,
    As,
    And,
    Or,
    Between,
    Not,
    Materialized,
    Recursive,
    Distinct,
    References,
    Ignore,
    Returning,
    Group,
    Order,
    Limit,
    Offset,
    Having,
    Window,
    Union,
    Intersect,
    Except,
    Fetch,
    Lock,
    Inner,
    Left,
    Right,
    Full,
    Cross,
    Natural,
    Outer,
    Straight,
    Create,
    Drop,
    Alter,
    Truncate,
    Copy,
    Explain,
    Analyze,
    Verbose,
    If,
    Exists,
    Index,
    View,
    Temporary,
    Unique,
    Concurrently,
    Rename,
    To,
    Begin,
    Start,
    Commit,
    End,
    Rollback,
    Abort,
    Savepoint,
    Release,
    Show,
    Reset,
    Discard,
    Deallocate,
    Listen,
    Unlisten,
    Use,
    Describe,
    Prepare,
    Transaction,
    Work,
    Modifiers,
}

/// Keywords by upper-case spelling.
const KEYWORDS: &[(&[u8], Kw)] = &[
    (b"ABORT", Kw::Abort),
    (b"ALTER", Kw::Alter),
    (b"ANALYSE", Kw::Analyze),
    (b"ANALYZE", Kw::Analyze),
    (b"AND", Kw::And),
    (b"AS", Kw::As),
    (b"BEGIN", Kw::Begin),
    (b"BETWEEN", Kw::Between),
    (b"COMMIT", Kw::Commit),
    (b"CONCURRENTLY", Kw::Concurrently),
    (b"CONFLICT", Kw::Conflict),
    (b"COPY", Kw::Copy),
    (b"CREATE", Kw::Create),
    (b"CROSS", Kw::Cross),
    (b"DEALLOCATE", Kw::Deallocate),
    (b"DELAYED", Kw::Modifiers),
    (b"DELETE", Kw::Delete),
    (b"DESC", Kw::Describe),
    (b"DESCRIBE", Kw::Describe),
    (b"DISCARD", Kw::Discard),
    (b"DISTINCT", Kw::Distinct),
    (b"DO", Kw::Do),
    (b"DROP", Kw::Drop),
    (b"DUPLICATE", Kw::Duplicate),
    (b"END", Kw::End),
    (b"EXCEPT", Kw::Except),
    (b"EXISTS", Kw::Exists),
    (b"EXPLAIN", Kw::Explain),
    (b"FETCH", Kw::Fetch),
    (b"FOR", Kw::For),
    (b"FROM", Kw::From),
    (b"FULL", Kw::Full),
    (b"GLOBAL", Kw::Temporary),
    (b"GROUP", Kw::Group),
    (b"HAVING", Kw::Having),
    (b"HIGH_PRIORITY", Kw::Modifiers),
    (b"IF", Kw::If),
    (b"IGNORE", Kw::Ignore),
    (b"INDEX", Kw::Index),
    (b"INNER", Kw::Inner),
    (b"INSERT", Kw::Insert),
    (b"INTERSECT", Kw::Intersect),
    (b"INTO", Kw::Into),
    (b"JOIN", Kw::Join),
    (b"KEY", Kw::Key),
    (b"LATERAL", Kw::Lateral),
    (b"LEFT", Kw::Left),
    (b"LIMIT", Kw::Limit),
    (b"LISTEN", Kw::Listen),
    (b"LOCAL", Kw::Temporary),
    (b"LOCK", Kw::Lock),
    (b"LOW_PRIORITY", Kw::Modifiers),
    (b"MATERIALIZED", Kw::Materialized),
    (b"MERGE", Kw::Merge),
    (b"MINUS", Kw::Except),
    (b"NATURAL", Kw::Natural),
    (b"NO", Kw::No),
    (b"NOT", Kw::Not),
    (b"OFFSET", Kw::Offset),
    (b"ON", Kw::On),
    (b"ONLY", Kw::Only),
    (b"OR", Kw::Or),
    (b"ORDER", Kw::Order),
    (b"OUTER", Kw::Outer),
    (b"PREPARE", Kw::Prepare),
    (b"QUICK", Kw::Modifiers),
    (b"RECURSIVE", Kw::Recursive),
    (b"REFERENCES", Kw::References),
    (b"RELEASE", Kw::Release),
    (b"RENAME", Kw::Rename),
    (b"REPLACE", Kw::Replace),
    (b"RESET", Kw::Reset),
    (b"RETURNING", Kw::Returning),
    (b"RIGHT", Kw::Right),
    (b"ROLLBACK", Kw::Rollback),
    (b"SAVEPOINT", Kw::Savepoint),
    (b"SELECT", Kw::Select),
    (b"SET", Kw::Set),
    (b"SHARE", Kw::Share),
    (b"SHOW", Kw::Show),
    (b"START", Kw::Start),
    (b"STRAIGHT", Kw::Straight),
    (b"STRAIGHT_JOIN", Kw::Join),
    (b"TABLE", Kw::Table),
    (b"TABLES", Kw::Table),
    (b"TEMP", Kw::Temporary),
    (b"TEMPORARY", Kw::Temporary),
    (b"THEN", Kw::Then),
    (b"TO", Kw::To),
    (b"TRANSACTION", Kw::Transaction),
    (b"TRUNCATE", Kw::Truncate),
    (b"UNION", Kw::Union),
    (b"UNIQUE", Kw::Unique),
    (b"UNLISTEN", Kw::Unlisten),
    (b"UNLOGGED", Kw::Temporary),
    (b"UPDATE", Kw::Update),
    (b"UPSERT", Kw::Replace),
    (b"USE", Kw::Use),
    (b"USING", Kw::Using),
    (b"VALUE", Kw::Values),
    (b"VALUES", Kw::Values),
    (b"VERBOSE", Kw::Verbose),
    (b"VIEW", Kw::View),
    (b"WHERE", Kw::Where),
    (b"WINDOW", Kw::Window),
    (b"WITH", Kw::With),
    (b"WORK", Kw::Work),
    (b"XOR", Kw::Or),
];

/// A word of at most 16 bytes packed into an integer (upper-cased by the
/// caller), so keyword lookup is a binary search over integers.
const fn pack(w: &[u8]) -> u128 {
    let mut v: u128 = 0;
    let mut i = 0;
    while i < w.len() {
        v = (v << 8) | w[i] as u128;
        i += 1;
    }
    v
}

const N_KEYWORDS: usize = KEYWORDS.len();
/// Slots of the keyword hash table (a power of two, under half full).
const KW_SLOTS: usize = 256;

const fn kw_slot(v: u128) -> usize {
    let x = (v as u64) ^ ((v >> 64) as u64);
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize % KW_SLOTS
}

/// [`KEYWORDS`] in an open-addressing table built at compile time; a slot
/// holding 0 is empty (no packed word is 0).
const KW_TABLE: [(u128, Kw); KW_SLOTS] = {
    let mut t = [(0u128, Kw::None); KW_SLOTS];
    let mut i = 0;
    while i < N_KEYWORDS {
        let v = pack(KEYWORDS[i].0);
        let mut slot = kw_slot(v);
        while t[slot].0 != 0 {
            slot = (slot + 1) % KW_SLOTS;
        }
        t[slot] = (v, KEYWORDS[i].1);
        i += 1;
    }
    t
};

fn kw_of(w: &[u8]) -> Kw {
    if w.len() > 16 || w.len() < 2 {
        return Kw::None;
    }
    let mut v: u128 = 0;
    for &c in w {
        if !(c.is_ascii_alphabetic() || c == b'_') {
            return Kw::None;
        }
        v = (v << 8) | c.to_ascii_uppercase() as u128;
    }
    let mut slot = kw_slot(v);
    loop {
        let (k, kw) = KW_TABLE[slot];
        if k == v {
            return kw;
        }
        if k == 0 {
            return Kw::None;
        }
        slot = (slot + 1) % KW_SLOTS;
    }
}

/// Words that end a table reference or cannot be a table name unquoted.
fn is_clause_word(k: Kw) -> bool {
    !matches!(
        k,
        Kw::None | Kw::Key | Kw::No | Kw::Share | Kw::Work | Kw::Transaction
    )
}

// ---------------------------------------------------------------------------
// Names and values

/// Canonical table or column name: last dotted part, unquoted, ASCII
/// lowercased, cut to [`TABLE_CAP`] bytes.
pub fn canonical_name(name: &[u8]) -> InlineStr<TABLE_CAP> {
    let mut lx = Lexer::new(name, Dialect::Postgres);
    let mut last = InlineStr::new();
    while let Some(t) = lx.next() {
        match t.t {
            T::Word | T::QIdent => last = ident_text(name, t),
            _ => {}
        }
    }
    last
}

fn ident_text(src: &[u8], t: Tok) -> InlineStr<TABLE_CAP> {
    let mut out = InlineStr::new();
    let raw = &src[t.s..t.e];
    if t.t == T::QIdent && raw.len() >= 2 {
        let q = raw[0];
        let inner = &raw[1..raw.len() - 1];
        let mut i = 0;
        while i < inner.len() {
            let c = inner[i];
            if c == q && inner.get(i + 1) == Some(&q) {
                i += 1;
            }
            out.push(c.to_ascii_lowercase());
            i += 1;
        }
    } else {
        for &c in raw {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let mut s = 0;
    let mut e = b.len();
    while s < e && b[s].is_ascii_whitespace() {
        s += 1;
    }
    while e > s && b[e - 1].is_ascii_whitespace() {
        e -= 1;
    }
    &b[s..e]
}

/// Canonical form of a row value, as its FNV-1a digest and a display
/// prefix. Different spellings of one value must meet: `5`, `'5'`, `'05'`,
/// `' +5 '`, `5.0` and a text-format parameter `5` are all `5`; text is
/// trimmed and ASCII-lowercased and a UUID keeps only its hex digits. Merging
/// distinct values only over-reports conflicts; splitting one value would
/// miss them, so anything whose spellings this cannot unify (exponents,
/// escapes, over-long numbers) returns `None` and the access stays
/// table-level. `raw` is the value's text with any quoting already removed.
pub fn canonical_value(raw: &[u8]) -> Option<(u64, InlineStr<VALUE_DISPLAY_CAP>)> {
    let t = trim_ascii(raw);
    let hex = t.iter().filter(|c| c.is_ascii_hexdigit()).count();
    let uuid_like = hex == 32
        && !t.iter().all(u8::is_ascii_digit)
        && t.iter()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, b'-' | b'{' | b'}'));
    let mut buf: InlineStr<64> = InlineStr::new();
    if uuid_like {
        // Fall through to the text path, which keeps only the hex digits.
    } else if let Some(ok) = canonical_number(t, &mut buf) {
        if !ok {
            return None;
        }
        return Some((
            fnv1a64(buf.as_bytes()),
            InlineStr::from_truncated(buf.as_bytes()),
        ));
    }
    let mut h = Fnv1a::new();
    let mut disp = InlineStr::new();
    for &c in t {
        if uuid_like && !c.is_ascii_hexdigit() {
            continue;
        }
        let c = c.to_ascii_lowercase();
        h.byte(c);
        disp.push(if (0x20..0x7f).contains(&c) { c } else { b'?' });
    }
    Some((h.finish(), disp))
}

/// `None`: not a number. `Some(false)`: number-like but not unifiable.
fn canonical_number(t: &[u8], out: &mut InlineStr<64>) -> Option<bool> {
    let (neg, body) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if body.is_empty() {
        return None;
    }
    let first = body[0];
    if !(first.is_ascii_digit() || (first == b'.' && body.len() > 1)) {
        return None;
    }
    let mut dot = None;
    for (i, &c) in body.iter().enumerate() {
        if c == b'.' && dot.is_none() {
            dot = Some(i);
        } else if !c.is_ascii_digit() {
            // 1e5, 0x1f, '12abc', '5 x', '2024-01-01': MySQL compares such
            // a string with an integer column by its numeric prefix, so it
            // may name row 12 or 5; no single key is safe.
            return Some(false);
        }
    }
    let (int, frac) = match dot {
        Some(d) => (&body[..d], &body[d + 1..]),
        None => (body, &body[..0]),
    };
    let int = {
        let z = int.iter().take_while(|c| **c == b'0').count();
        &int[z..]
    };
    let frac = {
        let mut e = frac.len();
        while e > 0 && frac[e - 1] == b'0' {
            e -= 1;
        }
        &frac[..e]
    };
    if int.len() + frac.len() + 2 > 64 {
        return Some(false);
    }
    let zero = int.is_empty() && frac.is_empty();
    if neg && !zero {
        out.push(b'-');
    }
    if int.is_empty() {
        out.push(b'0');
    } else {
        out.push_str(int);
    }
    if !frac.is_empty() {
        out.push(b'.');
        out.push_str(frac);
    }
    Some(true)
}

/// The value of a literal token, or the index of a placeholder.
fn literal_value(src: &[u8], toks: &[Tok], d: Dialect) -> Option<RowValueLit> {
    match toks {
        [t] if t.t == T::Param => {
            let n = if d == Dialect::Postgres {
                parse_u16(&src[t.s + 1..t.e])?
            } else {
                0 // MySQL '?': numbered by the caller
            };
            Some(RowValueLit::Param(n, t.s))
        }
        [t] if t.t == T::Num => {
            let (dg, disp) = canonical_value(&src[t.s..t.e])?;
            Some(RowValueLit::Value(dg, disp))
        }
        [sign, t]
            if t.t == T::Num && sign.t == T::Op && matches!(&src[sign.s..sign.e], b"-" | b"+") =>
        {
            if sign.e != t.s {
                return None;
            }
            let (dg, disp) = canonical_value(&src[sign.s..t.e])?;
            Some(RowValueLit::Value(dg, disp))
        }
        [t] if t.t == T::Str => {
            let raw = &src[t.s..t.e];
            let inner = if raw.first() == Some(&b'$') {
                let close = raw[1..].iter().position(|c| *c == b'$')? + 1;
                let tag = &raw[..=close];
                if raw.len() < 2 * tag.len() {
                    return None;
                }
                &raw[tag.len()..raw.len() - tag.len()]
            } else {
                let q = raw[0];
                if !(q == b'\'' || q == b'"' || q == b'n' || q == b'N') {
                    return None; // E'', B'', X'': escapes or bit strings
                }
                let raw = if q == b'n' || q == b'N' {
                    &raw[1..]
                } else {
                    raw
                };
                if raw.len() < 2 {
                    return None;
                }
                let q = raw[0];
                let inner = &raw[1..raw.len() - 1];
                if inner.contains(&b'\\') || inner.contains(&q) {
                    return None;
                }
                inner
            };
            let (dg, disp) = canonical_value(inner)?;
            Some(RowValueLit::Value(dg, disp))
        }
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum RowValueLit {
    Value(u64, InlineStr<VALUE_DISPLAY_CAP>),
    /// PostgreSQL number, or 0 for a MySQL `?` at this byte offset.
    Param(u16, usize),
}

fn parse_u16(b: &[u8]) -> Option<u16> {
    if b.is_empty() || b.len() > 5 {
        return None;
    }
    let mut n: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (c - b'0') as u32;
    }
    u16::try_from(n).ok().filter(|n| *n > 0)
}

// ---------------------------------------------------------------------------
// Classification of one statement

/// What one statement does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatementKind {
    /// Reads and/or writes tables (listed in the classification).
    Data,
    /// Conflicts with nothing (`SET`, `SHOW`, `SELECT 1`, ...).
    NoConflict,
    Begin,
    /// A transaction start that asks for REPEATABLE READ or SERIALIZABLE:
    /// the snapshot comes with the first statement.
    BeginSnapshot,
    /// MySQL `START TRANSACTION WITH CONSISTENT SNAPSHOT`: the snapshot is
    /// taken right here.
    BeginConsistentSnapshot,
    /// `SET ... ISOLATION LEVEL REPEATABLE READ | SERIALIZABLE` (for the
    /// session when `session_wide`, else for the current or next
    /// transaction).
    IsolationSnapshot {
        session_wide: bool,
    },
    /// `SET ... ISOLATION LEVEL READ COMMITTED | READ UNCOMMITTED` (a
    /// session default when `session_wide`, else for the current or next
    /// transaction).
    IsolationPerStatement {
        session_wide: bool,
    },
    /// `BEGIN ISOLATION LEVEL READ COMMITTED | READ UNCOMMITTED`.
    BeginPerStatement,
    Commit,
    Rollback,
    /// `COMMIT AND CHAIN`: a commit, then at once a new transaction.
    CommitAndChain,
    RollbackAndChain,
    /// MySQL `SET autocommit = 0`.
    AutocommitOff,
    /// MySQL `SET autocommit = 1` (commits an open transaction).
    AutocommitOn,
    /// `CREATE`/`DROP`/`ALTER`/`TRUNCATE`/`LOCK`: data, and in MySQL an
    /// implicit commit first.
    Ddl,
    /// Not understood; the classification carries a fallback.
    Unknown,
}

/// Classifies a string holding one or more statements into `out` (cleared
/// first), updating the transaction memory of `session`.
pub fn classify_sql(
    text: &[u8],
    dialect: Dialect,
    policy: &RowPolicy,
    session: &mut SqlSession,
    out: &mut Classification,
) {
    out.clear();
    classify_sql_append(text, dialect, policy, session, out, &mut 0);
}

/// Like [`classify_sql`] but adds to `out`. `mysql_params` numbers MySQL `?`
/// placeholders across the string.
pub(crate) fn classify_sql_append(
    text: &[u8],
    dialect: Dialect,
    policy: &RowPolicy,
    session: &mut SqlSession,
    out: &mut Classification,
    mysql_params: &mut u16,
) {
    if dialect == Dialect::Mysql {
        session.mysql = true;
    }
    if text.len() > SCAN_CAP {
        out.count_request();
        out.set_fallback(Fallback::TooLong);
        if !out.has_label() {
            out.set_label(&text[..LABEL_PREFIX.min(text.len())]);
        }
        return;
    }
    let mut lx = Lexer::new(text, dialect);
    // Without any `;` byte the text is one statement: skip the splitting
    // pass. (An unterminated literal it would have flagged makes the server
    // reject the text, so nothing is missed; executable comments, which do
    // run, keep the full pass.)
    if !text.contains(&b';') && !contains_ci(text, b"/*!") && !contains_ci(text, b"/*m!") {
        lx.pos = text.len();
    }
    let mut start = 0usize;
    let mut any = false;
    let mut label_meaningful = out.has_label() && !out.is_no_conflict();
    loop {
        let tok = lx.next();
        let end = match tok {
            Some(Tok {
                t: T::Punct(b';'),
                s,
                ..
            }) => s,
            Some(_) => continue,
            None => text.len(),
        };
        let piece = &text[start..end];
        if !is_blank(piece, dialect) {
            any = true;
            let mut stmt = Classification::new();
            let kind = classify_statement(piece, dialect, policy, &mut stmt, mysql_params);
            if lx.bad {
                stmt.set_fallback(Fallback::Unrecognized);
            }
            out.count_request();
            apply_txn(session, kind, &mut stmt);
            let meaningful = !stmt.is_no_conflict();
            if !out.has_label() || (meaningful && !label_meaningful) {
                out.set_label(trim_ascii(piece));
                label_meaningful = meaningful;
            }
            out.merge(&stmt);
        }
        if tok.is_none() {
            break;
        }
        start = end + 1;
    }
    if !any {
        out.count_request();
        if !out.has_label() {
            out.set_label(trim_ascii(text));
        }
    }
}

const LABEL_PREFIX: usize = 200;

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

/// Classifies text holding exactly one statement (the extended protocols
/// allow no more) into `out`, which gets its label; no transaction effect
/// is applied (see [`apply_txn`]). Several statements fall back.
pub(crate) fn classify_single(
    text: &[u8],
    dialect: Dialect,
    policy: &RowPolicy,
    out: &mut Classification,
) -> StatementKind {
    out.clear();
    out.set_label(trim_ascii(&text[..text.len().min(LABEL_PREFIX)]));
    if text.len() > SCAN_CAP {
        out.set_fallback(Fallback::TooLong);
        return StatementKind::Unknown;
    }
    let mut lx = Lexer::new(text, dialect);
    let mut end = text.len();
    while let Some(t) = lx.next() {
        if t.t == T::Punct(b';') {
            end = t.s;
            if !is_blank(&text[t.e..], dialect) {
                out.set_fallback(Fallback::Unrecognized);
                return StatementKind::Unknown;
            }
            break;
        }
    }
    let kind = classify_statement(&text[..end], dialect, policy, out, &mut 0);
    if lx.bad {
        out.set_fallback(Fallback::Unrecognized);
        return StatementKind::Unknown;
    }
    kind
}

fn is_blank(piece: &[u8], d: Dialect) -> bool {
    let mut lx = Lexer::new(piece, d);
    lx.next().is_none()
}

/// Scanner state for one statement.
struct Scan<'a, 'o> {
    src: &'a [u8],
    d: Dialect,
    lx: Lexer<'a>,
    /// The statement's own result, empty on entry.
    out: &'o mut Classification,
    depth: usize,
    query: [bool; MAX_DEPTH],
    ctes: [InlineStr<TABLE_CAP>; MAX_CTES],
    n_ctes: usize,
    for_update: bool,
    all_writes: bool,
    /// Head of the top-level statement (after any CTE list).
    head: Kw,
    /// Top-level FROM/JOIN/USING items, tables or not.
    sources0: u32,
    /// The first top-level table read, kept aside for a row key.
    read0: Option<InlineStr<TABLE_CAP>>,
    /// The first top-level write target, kept aside for a row key.
    target0: Option<InlineStr<TABLE_CAP>>,
    /// Byte offset right after the target name (INSERT analysis).
    target0_end: usize,
    where0: u32,
    where0_pos: usize,
    set0_pos: Option<usize>,
    seen_set0: bool,
    /// A FROM list at this depth continues after a subquery item.
    from_list: [bool; MAX_DEPTH],
    /// This group is a FROM item (a subquery or a parenthesised join).
    from_item: [bool; MAX_DEPTH],
    /// Offset of the `(` of the last `FROM f(...)` call seen.
    call_paren: usize,
    unknown: bool,
}

fn classify_statement(
    src: &[u8],
    d: Dialect,
    policy: &RowPolicy,
    out: &mut Classification,
    mysql_params: &mut u16,
) -> StatementKind {
    let mut lx = Lexer::new(src, d);
    let Some(first) = lx.next() else {
        return StatementKind::NoConflict;
    };
    let mut k = if first.t == T::Word {
        kw_of(&src[first.s..first.e])
    } else {
        Kw::None
    };
    let mut body_start = first.s;
    // EXPLAIN [ANALYZE] [VERBOSE] [(options)] stmt: classify the statement
    // (EXPLAIN ANALYZE runs it).
    if k == Kw::Explain {
        loop {
            let save = lx;
            match lx.next() {
                Some(t)
                    if t.t == T::Word
                        && matches!(kw_of(&src[t.s..t.e]), Kw::Analyze | Kw::Verbose) => {}
                Some(t) if t.t == T::Punct(b'(') => {
                    if !skip_group(&mut lx) {
                        return unknown(out);
                    }
                }
                Some(t) => {
                    body_start = t.s;
                    k = if t.t == T::Word {
                        kw_of(&src[t.s..t.e])
                    } else {
                        Kw::None
                    };
                    let _ = save;
                    break;
                }
                None => return unknown(out),
            }
        }
    }
    let body = &src[body_start..];
    match k {
        Kw::Begin => {
            // `BEGIN` alone (or with TRANSACTION/WORK/isolation options)
            // starts a transaction; MySQL `BEGIN NOT ATOMIC` is a block.
            if words_after(body, d, 1).any_is(Kw::Not) {
                return unknown(out);
            }
            begin_kind(body)
        }
        Kw::Start => {
            if words_after(body, d, 1).first_is(Kw::Transaction) {
                begin_kind(body)
            } else {
                unknown(out)
            }
        }
        Kw::Commit | Kw::End => {
            if words_after(body, d, 1).first_is(Kw::Prepare) {
                unknown(out)
            } else if chains(body, d) {
                StatementKind::CommitAndChain
            } else {
                StatementKind::Commit
            }
        }
        Kw::Rollback | Kw::Abort => {
            let w = words_after(body, d, 1);
            if w.any_is(Kw::To) {
                // ROLLBACK TO SAVEPOINT: the transaction stays open; its
                // earlier writes may remain, so they stay remembered.
                StatementKind::NoConflict
            } else if w.first_is(Kw::Prepare) {
                unknown(out)
            } else if chains(body, d) {
                StatementKind::RollbackAndChain
            } else {
                StatementKind::Rollback
            }
        }
        Kw::Savepoint
        | Kw::Release
        | Kw::Show
        | Kw::Reset
        | Kw::Discard
        | Kw::Deallocate
        | Kw::Listen
        | Kw::Unlisten
        | Kw::Use
        | Kw::Describe => StatementKind::NoConflict,
        Kw::Set => {
            // MySQL `SET @x = (SELECT ...)` reads; plain settings do not.
            let mut lx = Lexer::new(body, d);
            let mut has_query = false;
            let mut autocommit: Option<StatementKind> = None;
            while let Some(t) = lx.next() {
                if word_kw(body, &t) == Kw::Select {
                    has_query = true;
                }
                if d == Dialect::Mysql
                    && t.t == T::Word
                    && body[t.s..t.e].eq_ignore_ascii_case(b"autocommit")
                {
                    autocommit = Some(autocommit_value(body, &mut lx));
                }
            }
            if let Some(k) = autocommit {
                if k == StatementKind::Unknown || has_query {
                    return unknown(out);
                }
                k
            } else if has_query {
                scan_dml(body, d, policy, out, mysql_params)
            } else if let Some(k) = isolation_of(body) {
                k
            } else {
                StatementKind::NoConflict
            }
        }
        // PREPARE name AS stmt: nothing runs yet. PREPARE TRANSACTION hands
        // the transaction to two-phase commit, which is not followed.
        Kw::Prepare if d == Dialect::Postgres => {
            if words_after(body, d, 1).first_is(Kw::Transaction) {
                unknown(out)
            } else {
                StatementKind::NoConflict
            }
        }
        Kw::Select
        | Kw::With
        | Kw::Values
        | Kw::Table
        | Kw::Insert
        | Kw::Replace
        | Kw::Update
        | Kw::Delete
        | Kw::Merge => scan_dml(body, d, policy, out, mysql_params),
        Kw::None if first.t == T::Punct(b'(') => scan_dml(body, d, policy, out, mysql_params),
        Kw::Create | Kw::Drop | Kw::Alter | Kw::Truncate | Kw::Lock | Kw::Copy => {
            scan_ddl(body, d, k, out)
        }
        _ => unknown(out),
    }
}

/// The value after `autocommit`: `= 0|OFF|FALSE` or `= 1|ON|TRUE`.
fn autocommit_value(src: &[u8], lx: &mut Lexer<'_>) -> StatementKind {
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

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// A transaction start, with or without one snapshot for the whole
/// transaction (`ISOLATION LEVEL REPEATABLE READ | SERIALIZABLE`, `WITH
/// CONSISTENT SNAPSHOT`).
fn begin_kind(body: &[u8]) -> StatementKind {
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
fn isolation_of(body: &[u8]) -> Option<StatementKind> {
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
fn chains(src: &[u8], d: Dialect) -> bool {
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

fn unknown(out: &mut Classification) -> StatementKind {
    out.set_fallback(Fallback::Unrecognized);
    StatementKind::Unknown
}

/// Skips to the `)` matching an already consumed `(`.
fn skip_group(lx: &mut Lexer<'_>) -> bool {
    let mut depth = 1usize;
    while let Some(t) = lx.next() {
        match t.t {
            T::Punct(b'(') => depth += 1,
            T::Punct(b')') => {
                depth -= 1;
                if depth == 0 {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// The first few keywords after the head word.
struct Words {
    kws: [Kw; 4],
    n: usize,
}

impl Words {
    fn first_is(&self, k: Kw) -> bool {
        self.n > 0 && self.kws[0] == k
    }
    fn any_is(&self, k: Kw) -> bool {
        self.kws[..self.n].contains(&k)
    }
}

fn words_after(src: &[u8], d: Dialect, skip: usize) -> Words {
    let mut lx = Lexer::new(src, d);
    let mut w = Words {
        kws: [Kw::None; 4],
        n: 0,
    };
    let mut i = 0;
    while let Some(t) = lx.next() {
        if i >= skip {
            if w.n == 4 {
                break;
            }
            w.kws[w.n] = if t.t == T::Word {
                kw_of(&src[t.s..t.e])
            } else {
                Kw::None
            };
            w.n += 1;
        }
        i += 1;
    }
    w
}

fn word_kw(src: &[u8], t: &Tok) -> Kw {
    if t.t == T::Word {
        kw_of(&src[t.s..t.e])
    } else {
        Kw::None
    }
}

/// Functions a table-less `SELECT` may call without touching shared state.
fn is_pure_function(name: &[u8]) -> bool {
    const PURE: &[&[u8]] = &[
        b"version",
        b"now",
        b"current_timestamp",
        b"current_date",
        b"current_time",
        b"localtimestamp",
        b"current_setting",
        b"current_user",
        b"session_user",
        b"current_database",
        b"current_schema",
        b"current_schemas",
        b"pg_backend_pid",
        b"pg_is_in_recovery",
        b"txid_current",
        b"coalesce",
        b"nullif",
        b"greatest",
        b"least",
        b"cast",
        b"abs",
        b"lower",
        b"upper",
        b"length",
        b"concat",
        b"md5",
        b"random",
        b"gen_random_uuid",
        b"uuid",
        b"database",
        b"user",
        b"schema",
        b"connection_id",
        b"last_insert_id",
        b"found_rows",
        b"row_count",
        b"to_char",
        b"date_trunc",
        b"extract",
        b"set_config",
        b"pg_sleep",
        b"sleep",
        b"utc_timestamp",
        b"sysdate",
        b"clock_timestamp",
        b"statement_timestamp",
        b"transaction_timestamp",
        b"inet_server_addr",
        b"inet_server_port",
        b"pg_postmaster_start_time",
        b"round",
        b"floor",
        b"ceil",
        b"ifnull",
        b"if",
        b"char_length",
        b"substring",
        b"substr",
        b"trim",
        b"replace",
        b"format",
        b"array",
        b"row",
        b"exists",
    ];
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return false;
    }
    for (i, c) in name.iter().enumerate() {
        buf[i] = c.to_ascii_lowercase();
    }
    PURE.contains(&&buf[..name.len()])
}

/// Cheap pre-check: CTE names can only exist if `WITH` occurs somewhere.
fn contains_word_with(src: &[u8]) -> bool {
    let n = src.len();
    (0..n.saturating_sub(3)).any(|i| {
        src[i] | 0x20 == b'w'
            && src[i + 1] | 0x20 == b'i'
            && src[i + 2] | 0x20 == b't'
            && src[i + 3] | 0x20 == b'h'
    })
}

fn scan_dml(
    src: &[u8],
    d: Dialect,
    policy: &RowPolicy,
    out: &mut Classification,
    mysql_params: &mut u16,
) -> StatementKind {
    let mut sc = Scan {
        src,
        d,
        lx: Lexer::new(src, d),
        out,
        depth: 0,
        query: [false; MAX_DEPTH],
        ctes: [InlineStr::new(); MAX_CTES],
        n_ctes: 0,
        for_update: false,
        all_writes: false,
        head: Kw::None,
        sources0: 0,
        read0: None,
        target0: None,
        target0_end: 0,
        where0: 0,
        where0_pos: 0,
        set0_pos: None,
        seen_set0: false,
        from_list: [false; MAX_DEPTH],
        from_item: [false; MAX_DEPTH],
        call_paren: usize::MAX,
        unknown: false,
    };
    sc.query[0] = true;
    if contains_word_with(src) {
        sc.collect_ctes();
    }
    let mut saw_function_call = false;
    let mut prev: Option<Tok> = None;
    let mut prev_kw = Kw::None;
    let mut prev2_kw = Kw::None;
    let mut group_start = true;
    while let Some(t) = sc.lx.next() {
        let k = word_kw(src, &t);
        if group_start && sc.depth > 0 {
            let query_head = matches!(
                k,
                Kw::Select
                    | Kw::With
                    | Kw::Values
                    | Kw::Table
                    | Kw::Insert
                    | Kw::Update
                    | Kw::Delete
                    | Kw::Merge
            );
            sc.query[sc.depth] = query_head || t.t == T::Punct(b'(');
            if sc.from_item[sc.depth] && !query_head && (t.t == T::Word || t.t == T::QIdent) {
                // A parenthesised join, `FROM (a JOIN b ON ...)`: its first
                // table has no FROM of its own.
                sc.query[sc.depth] = true;
                sc.lx.pos = t.s;
                sc.read_list(AccessKind::Read, false);
                group_start = false;
                prev = None;
                prev_kw = Kw::None;
                continue;
            }
        }
        let at_group_start = group_start;
        group_start = false;
        match t.t {
            T::Punct(b'(') => {
                if let Some(p) = prev {
                    if p.t == T::Word && word_kw(src, &p) == Kw::None {
                        let name = &src[p.s..p.e];
                        if !is_pure_function(name) {
                            saw_function_call = true;
                        }
                        sc.side_effect_call(name);
                    }
                }
                let outer = sc.depth;
                let from_item = t.s != sc.call_paren && matches!(prev_kw, Kw::From | Kw::Join)
                    || prev.is_some_and(|p| {
                        (p.t == T::Punct(b',') && sc.from_list[outer])
                            || (p.t == T::Punct(b'(') && sc.from_item[outer])
                    });
                sc.depth += 1;
                if sc.depth >= MAX_DEPTH {
                    sc.unknown = true;
                    break;
                }
                sc.query[sc.depth] = false;
                sc.from_list[sc.depth] = false;
                sc.from_item[sc.depth] = from_item;
                group_start = true;
            }
            T::Punct(b')') => {
                if sc.depth == 0 {
                    sc.unknown = true;
                    break;
                }
                sc.depth -= 1;
            }
            T::Punct(b',') if sc.from_list[sc.depth] && sc.query[sc.depth] => {
                // `FROM (subquery) s, t`: the list goes on after the group.
                let kind = sc.source_kind();
                sc.read_list(kind, true);
            }
            _ => {}
        }
        if t.t == T::Word && k != Kw::None && k != Kw::As {
            sc.from_list[sc.depth] = false;
        }
        if t.t == T::Word && sc.query[sc.depth] {
            let head_pos = at_group_start || prev.map(|p| p.t == T::Punct(b')')).unwrap_or(false);
            if sc.depth == 0
                && sc.head == Kw::None
                && matches!(
                    k,
                    Kw::Select
                        | Kw::Values
                        | Kw::Table
                        | Kw::Insert
                        | Kw::Replace
                        | Kw::Update
                        | Kw::Delete
                        | Kw::Merge
                )
            {
                sc.head = k;
            }
            match k {
                Kw::From if prev_kw == Kw::Delete => sc.read_list(AccessKind::Write, false),
                Kw::From if prev_kw == Kw::Distinct => {}
                Kw::From => {
                    let kind = sc.source_kind();
                    sc.read_list(kind, true)
                }
                Kw::Join => {
                    let kind = sc.source_kind();
                    sc.read_one(kind, true);
                }
                Kw::Using => {
                    let save = sc.lx;
                    match sc.lx.next() {
                        Some(n) if n.t == T::Punct(b'(') => {
                            sc.lx = save;
                        }
                        _ => {
                            sc.lx = save;
                            sc.read_list(AccessKind::Read, true);
                        }
                    }
                }
                Kw::Into => sc.write_target(),
                Kw::Insert | Kw::Replace if head_pos => {
                    if k == Kw::Replace {
                        // REPLACE deletes whatever row any unique key hits.
                        sc.flag_no_insert_row();
                    }
                    sc.skip_modifiers();
                    if !sc.next_is(Kw::Into) {
                        sc.write_target();
                    }
                }
                Kw::Update
                    if head_pos
                        && !matches!(
                            prev_kw,
                            Kw::For | Kw::Do | Kw::Key | Kw::Then | Kw::No | Kw::On
                        ) =>
                {
                    sc.skip_modifiers();
                    sc.write_target();
                    // MySQL multi-table UPDATE t1, t2 SET ...
                    while sc.next_punct(b',') {
                        sc.all_writes = true;
                        sc.write_target();
                    }
                }
                Kw::Delete if head_pos && !matches!(prev_kw, Kw::Then | Kw::On) => {
                    sc.skip_modifiers();
                    if !sc.next_is(Kw::From) {
                        // MySQL multi-table DELETE t1, t2 FROM ...: every
                        // table may be written.
                        sc.all_writes = true;
                    }
                }
                Kw::Table if at_group_start => sc.read_one(AccessKind::Read, false),
                Kw::References => sc.read_one(AccessKind::Read, false),
                Kw::Update if prev_kw == Kw::For || (prev_kw == Kw::Key && prev2_kw == Kw::No) => {
                    sc.for_update = true;
                }
                Kw::Where if sc.depth == 0 => {
                    sc.where0 += 1;
                    sc.where0_pos = t.e;
                }
                Kw::Set if sc.depth == 0 && !sc.seen_set0 => {
                    sc.seen_set0 = true;
                    sc.set0_pos = Some(t.e);
                }
                _ => {}
            }
        }
        prev = Some(t);
        prev2_kw = prev_kw;
        prev_kw = k;
    }
    if sc.depth != 0 {
        sc.unknown = true;
    }
    sc.finish(policy, saw_function_call, mysql_params)
}

impl Scan<'_, '_> {
    /// Calls with effects on shared state that a plain read would hide:
    /// sequences become writes of the sequence (named by its literal),
    /// advisory locks writes of one per-server lock resource, and a few
    /// others fall back. User-defined functions are not looked into.
    fn side_effect_call(&mut self, name: &[u8]) {
        let mut lower = [0u8; 32];
        if name.len() > lower.len() {
            return;
        }
        for (i, c) in name.iter().enumerate() {
            lower[i] = c.to_ascii_lowercase();
        }
        let name = &lower[..name.len()];
        if name == b"nextval" || name == b"setval" {
            let mut peek = self.lx;
            match peek.next() {
                Some(t) if t.t == T::Str && t.e - t.s >= 2 && self.src[t.s] == b'\'' => {
                    let seq = canonical_name(&self.src[t.s + 1..t.e - 1]);
                    self.out.push(TableAccess {
                        table: seq,
                        row: None,
                        kind: AccessKind::Write,
                    });
                }
                _ => self.unknown = true,
            }
        } else if name.starts_with(b"pg_advisory")
            || name.starts_with(b"pg_try_advisory")
            || matches!(
                name,
                b"get_lock"
                    | b"release_lock"
                    | b"release_all_locks"
                    | b"is_free_lock"
                    | b"is_used_lock"
            )
        {
            let mut table = InlineStr::new();
            table.push_str(b"<advisory locks>");
            self.out.push(TableAccess {
                table,
                row: None,
                kind: AccessKind::Write,
            });
        } else if name.starts_with(b"lo_")
            || name.starts_with(b"dblink")
            || matches!(
                name,
                b"pg_notify"
                    | b"txid_current_snapshot"
                    | b"pg_terminate_backend"
                    | b"pg_cancel_backend"
            )
        {
            self.unknown = true;
        }
    }

    /// MySQL `UPDATE t1 JOIN t2 SET ...` may write every table before SET.
    fn source_kind(&mut self) -> AccessKind {
        if self.head == Kw::Update && !self.seen_set0 && self.depth == 0 {
            self.all_writes = true;
            AccessKind::Write
        } else {
            AccessKind::Read
        }
    }

    fn next_is(&self, k: Kw) -> bool {
        let mut lx = self.lx;
        matches!(lx.next(), Some(t) if word_kw(self.src, &t) == k)
    }

    fn next_punct(&mut self, p: u8) -> bool {
        let save = self.lx;
        match self.lx.next() {
            Some(t) if t.t == T::Punct(p) => true,
            _ => {
                self.lx = save;
                false
            }
        }
    }

    fn skip_modifiers(&mut self) {
        loop {
            let save = self.lx;
            match self.lx.next() {
                Some(t)
                    if matches!(word_kw(self.src, &t), Kw::Modifiers | Kw::Ignore | Kw::Only) =>
                {
                    if word_kw(self.src, &t) == Kw::Ignore {
                        self.flag_no_insert_row();
                    }
                }
                _ => {
                    self.lx = save;
                    return;
                }
            }
        }
    }

    fn flag_no_insert_row(&mut self) {
        self.target0_end = usize::MAX;
    }

    /// Finds `name AS (` and `name (cols) AS (` so CTE names are not taken
    /// for tables.
    fn collect_ctes(&mut self) {
        let mut lx = Lexer::new(self.src, self.d);
        let mut toks: [Option<Tok>; 4] = [None; 4];
        let mut has_with = false;
        let mut paren_name: [Option<Tok>; MAX_DEPTH] = [None; MAX_DEPTH];
        let mut depth = 0usize;
        let mut last_closed_name: Option<Tok> = None;
        while let Some(t) = lx.next() {
            let k = word_kw(self.src, &t);
            if k == Kw::With {
                has_with = true;
            }
            match t.t {
                T::Punct(b'(') => {
                    if depth + 1 < MAX_DEPTH {
                        paren_name[depth + 1] =
                            toks[3].filter(|p| p.t == T::Word || p.t == T::QIdent);
                    }
                    depth += 1;
                }
                T::Punct(b')') => {
                    if depth > 0 && depth < MAX_DEPTH {
                        last_closed_name = paren_name[depth];
                    }
                    depth = depth.saturating_sub(1);
                }
                _ => {}
            }
            if has_with && t.t == T::Punct(b'(') {
                // name AS (   |   name AS [NOT] MATERIALIZED (
                let mut i = 3usize;
                while i > 0 {
                    if let Some(p) = toks[i] {
                        if matches!(word_kw(self.src, &p), Kw::Not | Kw::Materialized) {
                            i -= 1;
                            continue;
                        }
                    }
                    break;
                }
                if let Some(asw) = toks[i] {
                    if word_kw(self.src, &asw) == Kw::As && i > 0 {
                        let name = match toks[i - 1] {
                            Some(n) if n.t == T::Word || n.t == T::QIdent => Some(n),
                            Some(n) if n.t == T::Punct(b')') => last_closed_name,
                            _ => None,
                        };
                        if let Some(n) = name {
                            if self.n_ctes < MAX_CTES {
                                self.ctes[self.n_ctes] = ident_text(self.src, n);
                                self.n_ctes += 1;
                            }
                        }
                    }
                }
            }
            toks.rotate_left(1);
            toks[3] = Some(t);
        }
    }

    fn is_cte(&self, name: &InlineStr<TABLE_CAP>) -> bool {
        self.ctes[..self.n_ctes].contains(name)
    }

    /// Reads `[ONLY|LATERAL] name[.name]* [*]`; `None` (cursor unmoved past
    /// the name) if what follows is not a table name. The second value says
    /// whether an item (table, function or subquery) was there at all.
    fn table_name(&mut self, columns_may_follow: bool) -> (Option<InlineStr<TABLE_CAP>>, bool) {
        loop {
            let save = self.lx;
            let Some(t) = self.lx.next() else {
                return (None, false);
            };
            let k = word_kw(self.src, &t);
            if matches!(k, Kw::Only | Kw::Lateral) {
                continue;
            }
            if t.t == T::Punct(b'(') {
                self.lx = save;
                return (None, true);
            }
            if !(t.t == T::QIdent || (t.t == T::Word && !is_clause_word(k))) {
                self.lx = save;
                return (None, false);
            }
            let mut name = ident_text(self.src, t);
            loop {
                let save2 = self.lx;
                match self.lx.next() {
                    Some(p) if p.t == T::Punct(b'.') => {
                        let save3 = self.lx;
                        match self.lx.next() {
                            Some(n) if n.t == T::Word || n.t == T::QIdent => {
                                name = ident_text(self.src, n);
                            }
                            _ => {
                                self.lx = save3;
                                break;
                            }
                        }
                    }
                    _ => {
                        self.lx = save2;
                        break;
                    }
                }
            }
            // `name(` in FROM is a function call, not a table; after INTO
            // it opens the column list.
            let mut peek = self.lx;
            if let Some(p) = peek.next() {
                if p.t == T::Punct(b'(') && !columns_may_follow {
                    self.call_paren = p.s;
                    return (None, true);
                }
            }
            return (Some(name), true);
        }
    }

    fn skip_alias(&mut self) {
        let save = self.lx;
        match self.lx.next() {
            Some(t) if word_kw(self.src, &t) == Kw::As => {
                let save2 = self.lx;
                match self.lx.next() {
                    Some(n) if n.t == T::Word || n.t == T::QIdent => {}
                    _ => self.lx = save2,
                }
            }
            Some(t)
                if t.t == T::QIdent || (t.t == T::Word && word_kw(self.src, &t) == Kw::None) => {}
            _ => {
                self.lx = save;
                return;
            }
        }
        // Column aliases: alias(a, b).
        let save = self.lx;
        match self.lx.next() {
            Some(t) if t.t == T::Punct(b'(') => {
                if !skip_group(&mut self.lx) {
                    self.unknown = true;
                }
            }
            _ => self.lx = save,
        }
    }

    fn add(&mut self, name: InlineStr<TABLE_CAP>, kind: AccessKind, is_source: bool) {
        if kind == AccessKind::Read && self.is_cte(&name) {
            if self.depth == 0 && is_source {
                self.sources0 += 1;
            }
            return;
        }
        if self.depth == 0 && is_source && kind == AccessKind::Read {
            self.sources0 += 1;
            if self.sources0 == 1 {
                self.read0 = Some(name);
                return;
            }
        }
        self.out.push(TableAccess {
            table: name,
            row: None,
            kind,
        });
    }

    fn read_one(&mut self, kind: AccessKind, is_source: bool) {
        let (name, present) = self.table_name(false);
        match name {
            Some(n) => {
                self.add(n, kind, is_source);
                self.skip_alias();
            }
            None => {
                if !present {
                    self.unknown = true;
                } else {
                    self.from_list[self.depth] = true;
                    if self.depth == 0 && is_source {
                        self.sources0 += 1;
                    }
                }
            }
        }
    }

    fn read_list(&mut self, kind: AccessKind, is_source: bool) {
        loop {
            if kind == AccessKind::Write && !is_source {
                self.write_target();
            } else {
                self.read_one(kind, is_source);
            }
            let save = self.lx;
            match self.lx.next() {
                Some(t) if t.t == T::Punct(b',') => continue,
                _ => {
                    self.lx = save;
                    return;
                }
            }
        }
    }

    fn write_target(&mut self) {
        let (name, present) = self.table_name(true);
        match name {
            Some(n) => {
                if self.depth == 0 && self.target0.is_none() {
                    self.target0 = Some(n);
                    if self.target0_end != usize::MAX {
                        self.target0_end = self.lx.pos;
                    }
                } else {
                    self.out.push(TableAccess {
                        table: n,
                        row: None,
                        kind: AccessKind::Write,
                    });
                }
                self.skip_alias();
            }
            None => {
                // MySQL `SELECT ... INTO @var` / `INTO OUTFILE 'f'` name no
                // table; anything else unreadable may hide the written one.
                let mut peek = self.lx;
                let harmless = !present
                    && match peek.next() {
                        Some(t) if t.t == T::Op => self.src[t.s] == b'@',
                        Some(t) if t.t == T::Word => {
                            let w = &self.src[t.s..t.e];
                            w.eq_ignore_ascii_case(b"outfile")
                                || w.eq_ignore_ascii_case(b"dumpfile")
                        }
                        _ => false,
                    };
                if !harmless {
                    self.unknown = true;
                }
            }
        }
    }

    fn finish(
        self,
        policy: &RowPolicy,
        saw_function_call: bool,
        mysql_params: &mut u16,
    ) -> StatementKind {
        if self.unknown || self.lx.bad {
            self.out.set_fallback(Fallback::Unrecognized);
        }
        let mut row: Option<RowKey> = None;
        let mysql_base = *mysql_params;
        if !self.unknown && !self.all_writes {
            match self.head {
                Kw::Select if self.sources0 == 1 && self.target0.is_none() && self.where0 == 1 => {
                    if let Some(t) = self.read0 {
                        row = where_row(
                            self.src,
                            self.d,
                            self.where0_pos,
                            t.as_bytes(),
                            policy,
                            mysql_base,
                        );
                    }
                }
                Kw::Update | Kw::Delete if self.sources0 == 0 && self.where0 == 1 => {
                    if let Some(t) = self.target0 {
                        let set_ok = match self.set0_pos {
                            Some(p) => !set_mentions_key(self.src, self.d, p, t.as_bytes(), policy),
                            None => self.head == Kw::Delete,
                        };
                        if set_ok {
                            row = where_row(
                                self.src,
                                self.d,
                                self.where0_pos,
                                t.as_bytes(),
                                policy,
                                mysql_base,
                            );
                        }
                    }
                }
                Kw::Insert if self.target0_end != usize::MAX && self.target0_end != 0 => {
                    if let Some(t) = self.target0 {
                        row = insert_row(
                            self.src,
                            self.d,
                            self.target0_end,
                            t.as_bytes(),
                            policy,
                            mysql_base,
                        );
                    }
                }
                _ => {}
            }
        }
        // Number MySQL placeholders across statements.
        if self.d == Dialect::Mysql {
            let mut lx = Lexer::new(self.src, self.d);
            while let Some(t) = lx.next() {
                if t.t == T::Param {
                    *mysql_params = mysql_params.saturating_add(1);
                }
            }
        }
        if let Some(t) = self.target0 {
            let r = if self.head == Kw::Select { None } else { row };
            self.out.push(TableAccess {
                table: t,
                row: r,
                kind: AccessKind::Write,
            });
        }
        if let Some(t) = self.read0 {
            let r = if self.head == Kw::Select { row } else { None };
            self.out.push(TableAccess {
                table: t,
                row: r,
                kind: AccessKind::Read,
            });
        }
        if self.for_update || self.all_writes {
            for a in self.out.accesses_mut() {
                a.kind = AccessKind::Write;
            }
        }
        let kind = if self.out.fallback().is_some() {
            StatementKind::Unknown
        } else if self.out.accesses().is_empty() {
            if saw_function_call || self.head != Kw::Select && self.head != Kw::Values {
                self.out.set_fallback(Fallback::Unrecognized);
                StatementKind::Unknown
            } else {
                StatementKind::NoConflict
            }
        } else {
            StatementKind::Data
        };
        kind
    }
}

/// The key column named by `col`, `q.col` or `s.q.col`, if `col` is the
/// table's key column. A single-source statement leaves the qualifier no
/// other table to name, so it is not checked.
fn key_column_of(
    src: &[u8],
    toks: &[Tok],
    table: &[u8],
    policy: &RowPolicy,
) -> Option<InlineStr<TABLE_CAP>> {
    let name = match toks {
        [c] if c.t == T::Word || c.t == T::QIdent => *c,
        [_q, dot, c] if dot.t == T::Punct(b'.') && (c.t == T::Word || c.t == T::QIdent) => *c,
        [_s, d1, _q, d2, c]
            if d1.t == T::Punct(b'.')
                && d2.t == T::Punct(b'.')
                && (c.t == T::Word || c.t == T::QIdent) =>
        {
            *c
        }
        _ => return None,
    };
    if name.t == T::Word && kw_of(&src[name.s..name.e]) != Kw::None {
        return None;
    }
    let col = ident_text(src, name);
    if policy.is_key_column(table, col.as_bytes()) {
        Some(col)
    } else {
        None
    }
}

/// Where a trailing `::type` or `::type(n)` cast starts in value tokens
/// (their length without one), or `usize::MAX` for any other `::` shape.
fn strip_cast(src: &[u8], toks: &[Tok]) -> usize {
    for (i, t) in toks.iter().enumerate() {
        if t.t == T::Op && &src[t.s..t.e] == b"::" {
            let rest = &toks[i + 1..];
            let ok = match rest {
                [w] => w.t == T::Word,
                [w, o, n, c] => {
                    w.t == T::Word
                        && o.t == T::Punct(b'(')
                        && n.t == T::Num
                        && c.t == T::Punct(b')')
                }
                _ => false,
            };
            return if ok { i } else { usize::MAX };
        }
    }
    toks.len()
}

fn make_row(
    src: &[u8],
    d: Dialect,
    col: InlineStr<TABLE_CAP>,
    val: &[Tok],
    mysql_base: u16,
) -> Option<RowKey> {
    let n = strip_cast(src, val);
    if n == usize::MAX {
        return None;
    }
    let lit = literal_value(src, &val[..n], d)?;
    let column = InlineStr::<COLUMN_CAP>::from_truncated(col.as_bytes());
    match lit {
        RowValueLit::Value(dg, disp) => Some(RowKey {
            column,
            value: RowValue::Digest(dg),
            display: disp,
        }),
        RowValueLit::Param(n, at) => {
            let n = if d == Dialect::Mysql {
                // 1-based position of this `?` in the whole string.
                let mut lx = Lexer::new(src, d);
                let mut k = mysql_base;
                while let Some(t) = lx.next() {
                    if t.t == T::Param {
                        k = k.saturating_add(1);
                        if t.s == at {
                            break;
                        }
                    }
                }
                k
            } else {
                n
            };
            let mut display = InlineStr::new();
            display.push(if d == Dialect::Mysql { b'?' } else { b'$' });
            let mut buf = [0u8; 5];
            let mut i = buf.len();
            let mut m = n;
            loop {
                i -= 1;
                buf[i] = b'0' + (m % 10) as u8;
                m /= 10;
                if m == 0 {
                    break;
                }
            }
            display.push_str(&buf[i..]);
            Some(RowKey {
                column,
                value: RowValue::Param(n),
                display,
            })
        }
    }
}

const MAX_COND_TOKS: usize = 12;

/// Looks for `key = value` among the top-level conjuncts of a WHERE clause
/// starting at byte `pos`.
fn where_row(
    src: &[u8],
    d: Dialect,
    pos: usize,
    table: &[u8],
    policy: &RowPolicy,
    mysql_base: u16,
) -> Option<RowKey> {
    let mut lx = Lexer::new(src, d);
    lx.pos = pos;
    let mut depth = 0usize;
    let mut cond = [Tok {
        t: T::Op,
        s: 0,
        e: 0,
    }; MAX_COND_TOKS];
    let mut n = 0usize;
    let mut overflow = false;
    let mut between = false;
    let mut found: Option<RowKey> = None;
    loop {
        let t = lx.next();
        let k = t.map(|t| word_kw(src, &t)).unwrap_or(Kw::None);
        let end_of_conjunct = match t {
            None => true,
            Some(t) if depth == 0 => match k {
                Kw::And if between => {
                    between = false;
                    false
                }
                Kw::And => true,
                Kw::Or => return None,
                Kw::Group
                | Kw::Order
                | Kw::Limit
                | Kw::Offset
                | Kw::Returning
                | Kw::For
                | Kw::Having
                | Kw::Window
                | Kw::Union
                | Kw::Intersect
                | Kw::Except
                | Kw::Fetch
                | Kw::Lock => true,
                _ => t.t == T::Punct(b')'),
            },
            _ => false,
        };
        if end_of_conjunct {
            if found.is_none() && !overflow {
                found = conjunct_row(src, d, &cond[..n], table, policy, mysql_base);
            }
            n = 0;
            overflow = false;
            if k != Kw::And {
                return found;
            }
            continue;
        }
        let t = t?;
        if k == Kw::Between && depth == 0 {
            between = true;
        }
        match t.t {
            T::Punct(b'(') => depth += 1,
            T::Punct(b')') => depth = depth.saturating_sub(1),
            _ => {}
        }
        if n < MAX_COND_TOKS {
            cond[n] = t;
            n += 1;
        } else {
            overflow = true;
        }
    }
}

fn conjunct_row(
    src: &[u8],
    d: Dialect,
    cond: &[Tok],
    table: &[u8],
    policy: &RowPolicy,
    mysql_base: u16,
) -> Option<RowKey> {
    let eq = cond.iter().position(|t| t.t == T::Punct(b'='))?;
    let (l, r) = (&cond[..eq], &cond[eq + 1..]);
    if let Some(col) = key_column_of(src, l, table, policy) {
        if let Some(row) = make_row(src, d, col, r, mysql_base) {
            return Some(row);
        }
    }
    if let Some(col) = key_column_of(src, r, table, policy) {
        return make_row(src, d, col, l, mysql_base);
    }
    None
}

/// Whether the SET clause starting at `pos` mentions the key column (then
/// the row may move and the update stays table-level).
fn set_mentions_key(src: &[u8], d: Dialect, pos: usize, table: &[u8], policy: &RowPolicy) -> bool {
    let mut lx = Lexer::new(src, d);
    lx.pos = pos;
    let mut depth = 0usize;
    while let Some(t) = lx.next() {
        let k = word_kw(src, &t);
        match t.t {
            T::Punct(b'(') => depth += 1,
            T::Punct(b')') => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 && matches!(k, Kw::Where | Kw::From | Kw::Returning) {
            return false;
        }
        if (t.t == T::Word && k == Kw::None) || t.t == T::QIdent {
            let c = ident_text(src, t);
            if policy.is_key_column(table, c.as_bytes()) {
                return true;
            }
        }
    }
    false
}

/// `INSERT INTO t (cols) VALUES (vals)` with a single tuple: the row named
/// by the key column. `ON CONFLICT (key)` is allowed; any other conflict
/// clause may touch another row, so it stays table-level.
fn insert_row(
    src: &[u8],
    d: Dialect,
    pos: usize,
    table: &[u8],
    policy: &RowPolicy,
    mysql_base: u16,
) -> Option<RowKey> {
    let mut lx = Lexer::new(src, d);
    lx.pos = pos;
    let mut t = lx.next()?;
    // Optional alias: INSERT INTO t AS x (...)
    if word_kw(src, &t) == Kw::As {
        lx.next()?;
        t = lx.next()?;
    }
    if t.t != T::Punct(b'(') {
        return None;
    }
    // Column list.
    let mut key_index = None;
    let mut key_col = InlineStr::new();
    let mut i = 0usize;
    loop {
        let c = lx.next()?;
        if !(c.t == T::Word || c.t == T::QIdent) {
            return None;
        }
        let name = ident_text(src, c);
        if policy.is_key_column(table, name.as_bytes()) {
            if key_index.is_some() {
                return None;
            }
            key_index = Some(i);
            key_col = name;
        }
        let sep = lx.next()?;
        match sep.t {
            T::Punct(b',') => i += 1,
            T::Punct(b')') => break,
            _ => return None,
        }
    }
    let key_index = key_index?;
    let v = lx.next()?;
    if word_kw(src, &v) != Kw::Values {
        return None;
    }
    if lx.next()?.t != T::Punct(b'(') {
        return None;
    }
    let mut elem = [Tok {
        t: T::Op,
        s: 0,
        e: 0,
    }; MAX_COND_TOKS];
    let mut n = 0usize;
    let mut idx = 0usize;
    let mut depth = 0usize;
    let mut value: Option<RowKey> = None;
    loop {
        let t = lx.next()?;
        let top = depth == 0;
        match t.t {
            T::Punct(b'(') => depth += 1,
            T::Punct(b')') if depth > 0 => depth -= 1,
            _ => {}
        }
        if top && (t.t == T::Punct(b',') || t.t == T::Punct(b')')) {
            if idx == key_index {
                if n > MAX_COND_TOKS {
                    return None;
                }
                value = make_row(src, d, key_col, &elem[..n], mysql_base);
                value?;
            }
            if t.t == T::Punct(b')') {
                break;
            }
            idx += 1;
            n = 0;
            continue;
        }
        if n < MAX_COND_TOKS {
            elem[n] = t;
        }
        n += 1;
    }
    // What may follow the tuple: nothing, RETURNING, or ON CONFLICT (key).
    match lx.next() {
        None => value,
        Some(t) => match word_kw(src, &t) {
            Kw::Returning => value,
            Kw::On => {
                if word_kw(src, &lx.next()?) != Kw::Conflict {
                    return None; // ON DUPLICATE KEY UPDATE: any unique key
                }
                if lx.next()?.t != T::Punct(b'(') {
                    return None;
                }
                let c = lx.next()?;
                if ident_text(src, c).as_bytes() != key_col.as_bytes() {
                    return None;
                }
                if lx.next()?.t != T::Punct(b')') {
                    return None;
                }
                // DO UPDATE SET id = ... would move the row.
                if set_mentions_key(src, d, lx.pos, table, policy) {
                    return None;
                }
                value
            }
            _ => None,
        },
    }
}

// ---------------------------------------------------------------------------
// DDL and friends

fn scan_ddl(src: &[u8], d: Dialect, head: Kw, out: &mut Classification) -> StatementKind {
    let mut lx = Lexer::new(src, d);
    let _ = lx.next(); // head
    let mut names = Classification::new();
    let mut kind = AccessKind::Write;
    let ok = match head {
        Kw::Create => ddl_create(src, &mut lx, &mut names),
        Kw::Drop => {
            let t = lx.next();
            match t.map(|t| word_kw(src, &t)) {
                Some(Kw::Table) | Some(Kw::View) | Some(Kw::Temporary) => {
                    ddl_skip(
                        src,
                        &mut lx,
                        &[Kw::Temporary, Kw::Table, Kw::View, Kw::Materialized],
                    );
                    ddl_skip_if_exists(src, &mut lx);
                    ddl_name_list(src, &mut lx, &mut names)
                }
                Some(Kw::Materialized) => {
                    ddl_skip(src, &mut lx, &[Kw::View]);
                    ddl_skip_if_exists(src, &mut lx);
                    ddl_name_list(src, &mut lx, &mut names)
                }
                _ => false,
            }
        }
        Kw::Alter => match lx.next().map(|t| word_kw(src, &t)) {
            Some(Kw::Table) => {
                ddl_skip_if_exists(src, &mut lx);
                ddl_skip(src, &mut lx, &[Kw::Only]);
                let ok = ddl_name(src, &mut lx, &mut names);
                // ALTER TABLE t RENAME TO u: u is written too.
                while let Some(t) = lx.next() {
                    if matches!(word_kw(src, &t), Kw::To | Kw::References) {
                        let _ = ddl_name(src, &mut lx, &mut names);
                    }
                }
                ok
            }
            _ => false,
        },
        Kw::Truncate => {
            ddl_skip(src, &mut lx, &[Kw::Table, Kw::Only]);
            ddl_name_list(src, &mut lx, &mut names)
        }
        Kw::Lock => {
            // LOCK TABLE a, b IN ... MODE / MySQL LOCK TABLES a READ, b WRITE
            ddl_skip(src, &mut lx, &[Kw::Table, Kw::Only]);
            let mut ok = true;
            loop {
                ddl_skip(src, &mut lx, &[Kw::Only]);
                if !ddl_name(src, &mut lx, &mut names) {
                    ok = false;
                    break;
                }
                let mut more = false;
                while let Some(t) = lx.next() {
                    if t.t == T::Punct(b',') {
                        more = true;
                        break;
                    }
                }
                if !more {
                    break;
                }
            }
            ok
        }
        Kw::Copy => {
            // COPY t [(cols)] FROM ...: write; COPY t TO ...: read;
            // COPY (query) TO ...: the query's reads.
            let mut peek = lx;
            match peek.next() {
                Some(t) if t.t == T::Punct(b'(') => {
                    let inner_start = peek.pos;
                    if !skip_group(&mut peek) {
                        return unknown(out);
                    }
                    let inner = &src[inner_start..peek.pos - 1];
                    let mut q = Classification::new();
                    let k = scan_dml(inner, d, &RowPolicy::off(), &mut q, &mut 0);
                    for a in q.accesses() {
                        out.push(*a);
                    }
                    if let Some(f) = q.fallback() {
                        out.set_fallback(f);
                    }
                    return k;
                }
                _ => {
                    let ok = ddl_name(src, &mut lx, &mut names);
                    let mut dir = Kw::None;
                    while let Some(t) = lx.next() {
                        let k = word_kw(src, &t);
                        if matches!(k, Kw::From | Kw::To) {
                            dir = k;
                            break;
                        }
                    }
                    if dir == Kw::To {
                        kind = AccessKind::Read;
                    }
                    ok && dir != Kw::None
                }
            }
        }
        _ => false,
    };
    if !ok || lx.bad {
        return unknown(out);
    }
    for a in names.accesses() {
        let mut a = *a;
        if kind == AccessKind::Read {
            a.kind = kind;
        }
        out.push(a);
    }
    if let Some(f) = names.fallback() {
        out.set_fallback(f);
    }
    StatementKind::Ddl
}

fn ddl_skip(src: &[u8], lx: &mut Lexer<'_>, words: &[Kw]) {
    loop {
        let save = *lx;
        match lx.next() {
            Some(t) if words.contains(&word_kw(src, &t)) => {}
            _ => {
                *lx = save;
                return;
            }
        }
    }
}

fn ddl_skip_if_exists(src: &[u8], lx: &mut Lexer<'_>) {
    let save = *lx;
    if matches!(lx.next(), Some(t) if word_kw(src, &t) == Kw::If) {
        ddl_skip(src, lx, &[Kw::Not, Kw::Exists]);
    } else {
        *lx = save;
    }
}

fn ddl_name(src: &[u8], lx: &mut Lexer<'_>, names: &mut Classification) -> bool {
    let Some(t) = lx.next() else { return false };
    if !(t.t == T::QIdent || t.t == T::Word) {
        return false;
    }
    let mut name = ident_text(src, t);
    loop {
        let save = *lx;
        match lx.next() {
            Some(p) if p.t == T::Punct(b'.') => match lx.next() {
                Some(n) if n.t == T::Word || n.t == T::QIdent => name = ident_text(src, n),
                _ => return false,
            },
            _ => {
                *lx = save;
                break;
            }
        }
    }
    names.push(TableAccess {
        table: name,
        row: None,
        kind: AccessKind::Write,
    });
    true
}

fn ddl_name_list(src: &[u8], lx: &mut Lexer<'_>, names: &mut Classification) -> bool {
    loop {
        if !ddl_name(src, lx, names) {
            return false;
        }
        let save = *lx;
        match lx.next() {
            Some(t) if t.t == T::Punct(b',') => {}
            _ => {
                *lx = save;
                return true;
            }
        }
    }
}

fn ddl_create(src: &[u8], lx: &mut Lexer<'_>, names: &mut Classification) -> bool {
    // CREATE [OR REPLACE] [TEMP|UNLOGGED|...] [UNIQUE] [MATERIALIZED] TABLE|VIEW|INDEX
    loop {
        let Some(t) = lx.next() else { return false };
        let k = word_kw(src, &t);
        match k {
            Kw::Or | Kw::Replace | Kw::Temporary | Kw::Unique | Kw::Materialized => continue,
            Kw::Table | Kw::View => {
                ddl_skip_if_exists(src, lx);
                if !ddl_name(src, lx, names) {
                    return false;
                }
                // Tables referenced by the definition (REFERENCES u, AS SELECT
                // ... FROM u) are read; the new table is written.
                let rest = &src[lx.pos..];
                let mut q = Classification::new();
                scan_refs(rest, lx.d, &mut q);
                for a in q.accesses() {
                    names.push(TableAccess {
                        kind: AccessKind::Read,
                        ..*a
                    });
                }
                if let Some(f) = q.fallback() {
                    names.set_fallback(f);
                }
                while lx.next().is_some() {}
                return true;
            }
            Kw::Index => {
                // CREATE INDEX [CONCURRENTLY] [IF NOT EXISTS] [name] ON [ONLY] t
                while let Some(t) = lx.next() {
                    if word_kw(src, &t) == Kw::On {
                        ddl_skip(src, lx, &[Kw::Only]);
                        let ok = ddl_name(src, lx, names);
                        while lx.next().is_some() {}
                        return ok;
                    }
                }
                return false;
            }
            _ => return false,
        }
    }
}

/// Tables named after REFERENCES/FROM/JOIN in a DDL body, as reads.
fn scan_refs(src: &[u8], d: Dialect, out: &mut Classification) {
    let mut lx = Lexer::new(src, d);
    while let Some(t) = lx.next() {
        if matches!(word_kw(src, &t), Kw::References | Kw::From | Kw::Join) {
            let mut names = Classification::new();
            let save = lx;
            if !ddl_name(src, &mut lx, &mut names) {
                lx = save;
            }
            for a in names.accesses() {
                out.push(*a);
            }
        }
    }
    if lx.bad {
        out.set_fallback(Fallback::Unrecognized);
    }
}

#[cfg(test)]
mod tests {
    use super::{kw_of, Kw, KEYWORDS};

    #[test]
    fn every_keyword_is_found_whatever_its_case() {
        for (word, kw) in KEYWORDS {
            assert_eq!(kw_of(word), *kw);
            assert_eq!(kw_of(&word.to_ascii_lowercase()), *kw);
        }
        assert_eq!(kw_of(b"accounts"), Kw::None);
        assert_eq!(kw_of(b"selects"), Kw::None);
    }
}
