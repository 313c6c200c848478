//! Classification of one statement: splitting a string into statements,
//! the statement head, and the dispatch to the DML, DDL and transaction
//! layers.

use super::*;

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

pub(super) const LABEL_PREFIX: usize = 200;

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

pub(super) fn is_blank(piece: &[u8], d: Dialect) -> bool {
    let mut lx = Lexer::new(piece, d);
    lx.next().is_none()
}

/// Scanner state for one statement.
pub(super) struct Scan<'a, 'o> {
    pub(super) src: &'a [u8],
    pub(super) d: Dialect,
    pub(super) lx: Lexer<'a>,
    /// The statement's own result, empty on entry.
    pub(super) out: &'o mut Classification,
    pub(super) depth: usize,
    pub(super) query: [bool; MAX_DEPTH],
    pub(super) ctes: [InlineStr<TABLE_CAP>; MAX_CTES],
    pub(super) n_ctes: usize,
    pub(super) for_update: bool,
    pub(super) all_writes: bool,
    /// Head of the top-level statement (after any CTE list).
    pub(super) head: Kw,
    /// Top-level FROM/JOIN/USING items, tables or not.
    pub(super) sources0: u32,
    /// The first top-level table read, kept aside for a row key.
    pub(super) read0: Option<InlineStr<TABLE_CAP>>,
    /// The first top-level write target, kept aside for a row key.
    pub(super) target0: Option<InlineStr<TABLE_CAP>>,
    /// Byte offset right after the target name (INSERT analysis).
    pub(super) target0_end: usize,
    pub(super) where0: u32,
    pub(super) where0_pos: usize,
    pub(super) set0_pos: Option<usize>,
    pub(super) seen_set0: bool,
    /// A FROM list at this depth continues after a subquery item.
    pub(super) from_list: [bool; MAX_DEPTH],
    /// This group is a FROM item (a subquery or a parenthesised join).
    pub(super) from_item: [bool; MAX_DEPTH],
    /// Offset of the `(` of the last `FROM f(...)` call seen.
    pub(super) call_paren: usize,
    pub(super) unknown: bool,
}

pub(super) fn classify_statement(
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

pub(super) fn unknown(out: &mut Classification) -> StatementKind {
    out.set_fallback(Fallback::Unrecognized);
    StatementKind::Unknown
}

/// Skips to the `)` matching an already consumed `(`.
pub(super) fn skip_group(lx: &mut Lexer<'_>) -> bool {
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
pub(super) struct Words {
    pub(super) kws: [Kw; 4],
    pub(super) n: usize,
}

impl Words {
    pub(super) fn first_is(&self, k: Kw) -> bool {
        self.n > 0 && self.kws[0] == k
    }
    pub(super) fn any_is(&self, k: Kw) -> bool {
        self.kws[..self.n].contains(&k)
    }
}

pub(super) fn words_after(src: &[u8], d: Dialect, skip: usize) -> Words {
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

pub(super) fn word_kw(src: &[u8], t: &Tok) -> Kw {
    if t.t == T::Word {
        kw_of(&src[t.s..t.e])
    } else {
        Kw::None
    }
}

/// Functions a table-less `SELECT` may call without touching shared state.
pub(super) fn is_pure_function(name: &[u8]) -> bool {
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
pub(super) fn contains_word_with(src: &[u8]) -> bool {
    let n = src.len();
    (0..n.saturating_sub(3)).any(|i| {
        src[i] | 0x20 == b'w'
            && src[i + 1] | 0x20 == b'i'
            && src[i + 2] | 0x20 == b't'
            && src[i + 3] | 0x20 == b'h'
    })
}
