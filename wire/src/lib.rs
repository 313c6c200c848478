//! Protocol-aware resource keys for bytes written to database sockets.
//!
//! The preload library sees every `send`/`write` a C extension makes. Keyed
//! by socket alone, two workers talking to the same server always conflict.
//! This crate reads the client side of three wire protocols (PostgreSQL,
//! MySQL/MariaDB, Redis RESP) and turns each request into reads and writes
//! of named resources: `sql:<server>/<table>` (optionally one row of it) and
//! `redis:<server>/<key>`. Workers touching different rows, tables or keys
//! then commute, and DPOR stops exploring their orders.
//!
//! The crate is `#![no_std]` and does not link `alloc`: the classifiers run
//! inside libc hooks, where allocating is not allowed, and the compiler now
//! holds them to it (`tests/wire_no_alloc.rs` also counts allocations at run
//! time). It depends on nothing.
//!
//! # Shape of the code
//!
//! * [`sql`]: a lexer and a pragmatic classifier for one SQL string (several
//!   statements allowed). It is not a parser: it recognises the statement
//!   head, the tables after `FROM`/`JOIN`/`INTO`/`UPDATE`/..., and a primary
//!   key equality in a top-level `WHERE`. Anything it is unsure of is
//!   reported as a [`Fallback`], never as "no conflict".
//! * [`pg`], [`mysql`], [`resp`]: one small connection-state type each
//!   ([`pg::PgConn`], [`mysql::MysqlConn`], [`resp::RespConn`]) that the
//!   caller keeps per socket, all driven through the [`WireConn`] trait.
//!   Every `send` goes through `on_send`, which returns the
//!   [`Classification`] of the requests completed by those bytes. The two
//!   length-prefixed protocols share one framer (`framer.rs`), which carries
//!   a message split across sends and skips one too long to keep.
//! * [`keys`]: the single mapping from a classified access to the `u64` keys
//!   the engine compares, shared by the preload library and the Python-level
//!   socket detection so both produce identical keys.
//!
//! # Costs and safety
//!
//! Everything here runs inside libc hooks, so: no input makes it panic (a
//! fuzz test feeds it random and mutated buffers), every scan is capped
//! ([`sql::SCAN_CAP`] bytes of SQL per statement string,
//! [`sql::SEND_SCAN_BUDGET`] bytes of SQL per `send`, [`resp::KEY_HASH_CAP`]
//! bytes per Redis key, fixed carry buffers for requests split across `send`
//! calls), and nothing allocates (the crate has no `alloc`; a test also counts
//! allocations at run time). Results
//! are plain `Copy` structs of fixed capacity ([`Classification`] holds at
//! most [`MAX_ACCESSES`] accesses); when a request needs more, the result
//! says so through [`Fallback::TooManyAccesses`] and the caller falls back to
//! the coarse socket key. The bytes themselves are only read, never altered.
//!
//! # What callers do with a result
//!
//! * Each access in [`Classification::accesses`] becomes the engine accesses
//!   produced by [`keys::engine_accesses`].
//! * If [`Classification::fallback`] is set, the caller *also* reports the
//!   coarse key [`keys::coarse_key`] as a write: some part of the request
//!   was not understood, and only the coarse key is sure to cover it. Every
//!   fine-grained access reads that key, so the fallback still conflicts
//!   with other workers' precise accesses to the same server.
//! * A request with no accesses and no fallback (`BEGIN`, `SET`, `PING`, the
//!   startup packet, ...) conflicts with nothing.
//! * Replies: a `recv` on the connection carries the answer to the request
//!   last sent. The connection state keeps that request's classification
//!   ([`pg::PgConn::last`] and friends), so the caller attributes the `recv`
//!   to the same resources as reads ([`Classification::reply_reads`]; plus
//!   the coarse key as a read when the request fell back) instead of to the
//!   socket.
//!
//! # Encryption
//!
//! libpq negotiates TLS by default (`sslmode=prefer`), and then the socket
//! carries ciphertext. [`pg::PgConn`] and [`mysql::MysqlConn`] notice the TLS
//! (or GSS) negotiation and from then on answer [`Fallback::Encrypted`] for
//! every buffer, so callers keep the coarse key. When the caller can see the
//! plaintext (the preload library hooks OpenSSL's `SSL_write`/`SSL_read`),
//! it calls `start_plaintext` on the state and feeds the plaintext instead;
//! the classification is then the same as without TLS.
//!
//! # Example
//!
//! ```
//! use frontrun_wire::keys::{engine_accesses, server_name, Resource, ResourceName, Scheme};
//! use frontrun_wire::pg::PgConn;
//!
//! let mut conn = PgConn::default(); // one per socket, kept in the fd table
//! let sql = b"UPDATE accounts SET balance = 0 WHERE id = 7\0";
//! let mut msg = vec![b'Q'];
//! msg.extend_from_slice(&((sql.len() + 4) as u32).to_be_bytes());
//! msg.extend_from_slice(sql);
//!
//! let result = conn.on_send(&msg);
//! assert!(result.fallback().is_none());
//! let access = &result.accesses()[0];
//! let server = server_name(&"127.0.0.1:5432".parse().unwrap());
//! let server = server.as_str();
//! let name = ResourceName { scheme: Scheme::Sql, server, access };
//! assert_eq!(name.to_string(), "sql:localhost:5432/accounts#id=7");
//! let mut keys = Vec::new();
//! engine_accesses(Resource::of(Scheme::Sql, server, access), access.kind, |k| keys.push(k));
//! // coarse and table keys (read), bucket and row keys (write)
//! assert_eq!(keys.len(), 4);
//! ```
//!
//! # Sizes
//!
//! A [`Classification`] is about 1.2 KiB; the connection states are about
//! 11.5 KiB ([`pg::PgConn`], four prepared statements), 10 KiB
//! ([`mysql::MysqlConn`]) and 4 KiB ([`resp::RespConn`]), none of which grows:
//! a table of 1024 connections costs about 12 MiB.
//!
//! # Server names
//!
//! `<server>` is hashed into every key, so the preload library and the
//! Python side must name a server the same way, and one server must not get
//! two names. Use [`keys::server_name`] for a TCP peer address and
//! [`keys::unix_server_name`] for a Unix socket path: every loopback
//! address, and PostgreSQL's Unix socket, becomes `localhost:<port>`.
//!
//! # What this cannot see
//!
//! The classifier reads statement text only. Views, rules, triggers,
//! foreign-key actions and user-defined functions can touch tables the text
//! does not name; such effects are missed (the coarse socket key would have
//! covered them). Row keys assume the key-column guess of [`sql::RowPolicy`]
//! and no secondary unique constraint coupling rows; callers who cannot
//! accept that use [`sql::RowPolicy::off`].

#![no_std]

// Unit tests run under the standard test harness.
#[cfg(test)]
extern crate std;

pub mod keys;
pub mod mysql;
pub mod pg;
pub mod resp;
pub mod snapshot;
pub mod sql;

mod framer;
mod inline;

pub use inline::{fnv1a64, Fnv1a, InlineStr};

/// One connection's protocol machine, whatever the protocol: what a caller
/// keeps per database socket ([`pg::PgConn`], [`mysql::MysqlConn`],
/// [`resp::RespConn`]) and feeds every buffer of that socket, in order.
pub trait WireConn {
    /// Classifies the bytes of one `send` into `out` (cleared first): the
    /// requests those bytes complete.
    fn on_send_into(&mut self, bytes: &[u8], out: &mut Classification);

    /// Feeds bytes the server sent. A machine whose state does not depend
    /// on replies ignores them.
    fn on_recv(&mut self, bytes: &[u8]);

    /// The classification of the last send that completed a request: what
    /// a reply answers.
    fn last(&self) -> &Classification;

    /// True once the stream is known to be encrypted (TLS or GSS).
    fn is_encrypted(&self) -> bool;

    /// True once a reply can no longer be matched to the request it
    /// answers, because the machine lost the framing of the stream: the
    /// caller then reports the reply on the coarse key instead of as reads
    /// of [`WireConn::last`].
    fn reply_unmatched(&self) -> bool;

    /// From now on the bytes fed are the plaintext inside the TLS session
    /// (seen by hooks on the TLS library), not the socket's ciphertext.
    fn start_plaintext(&mut self);

    /// [`WireConn::on_send_into`] into a new result.
    fn on_send(&mut self, bytes: &[u8]) -> Classification {
        let mut out = Classification::new();
        self.on_send_into(bytes, &mut out);
        out
    }
}

/// Most accesses one [`Classification`] holds; more sets
/// [`Fallback::TooManyAccesses`].
pub const MAX_ACCESSES: usize = 8;
/// Bytes kept of a request for its human label.
pub const LABEL_CAP: usize = 80;
/// Bytes of a table name kept (PostgreSQL truncates identifiers to 63).
pub const TABLE_CAP: usize = 64;
/// Bytes of a key column name kept for display.
pub const COLUMN_CAP: usize = 16;
/// Bytes of a row value (or Redis key) kept for display; the key itself is
/// computed over the whole value.
pub const VALUE_DISPLAY_CAP: usize = 24;

/// Whether an access only observes a resource or may change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    Read,
    Write,
}

impl AccessKind {
    /// The stronger of two kinds: a write if either is.
    pub fn join(self, other: AccessKind) -> AccessKind {
        if self == AccessKind::Write || other == AccessKind::Write {
            AccessKind::Write
        } else {
            AccessKind::Read
        }
    }
}

/// The value that selects one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowValue {
    /// FNV-1a digest of the canonical value (see [`sql::canonical_value`]).
    Digest(u64),
    /// A placeholder (`$n` / `?`, 1-based) still waiting for its `Bind` or
    /// execute packet. Never present in a result returned by `on_send`.
    Param(u16),
}

/// One row of a table, chosen by an equality on its key column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowKey {
    /// The key column, for display (empty for Redis keys).
    pub column: InlineStr<COLUMN_CAP>,
    pub value: RowValue,
    /// The canonical value, truncated, for display.
    pub display: InlineStr<VALUE_DISPLAY_CAP>,
}

/// One access to a table (or, with `row`, to one of its rows). For Redis the
/// table is empty and the row is the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableAccess {
    /// Canonical name: unquoted, ASCII-lowercased, schema or database
    /// qualifier dropped (so `public.accounts`, `"Accounts"` and `accounts`
    /// are one table; merging distinct tables only over-reports).
    pub table: InlineStr<TABLE_CAP>,
    pub row: Option<RowKey>,
    pub kind: AccessKind,
}

/// Why a result cannot stand alone, so the caller adds the coarse socket key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// A statement or command this module does not understand.
    Unrecognized,
    /// Longer than the scan cap, or split across sends beyond the carry.
    TooLong,
    /// More accesses than [`MAX_ACCESSES`].
    TooManyAccesses,
    /// The stream is TLS or GSS encrypted.
    Encrypted,
    /// Framing was lost (a length that makes no sense); the connection
    /// stays in fallback from then on.
    Desynced,
    /// An execute of a prepared statement this state does not know.
    UnknownPrepared,
}

/// The outcome of classifying one buffer (or one request): the accesses it
/// makes, whether the coarse key is needed too, and a label for reports.
#[derive(Clone, Copy, Debug)]
pub struct Classification {
    accesses: [TableAccess; MAX_ACCESSES],
    len: u8,
    fallback: Option<Fallback>,
    label: InlineStr<LABEL_CAP>,
    requests: u16,
    /// [`Classification::TAKES_ROW_LOCKS`] and [`Classification::ENDS_TRANSACTION`].
    txn: u8,
}

const EMPTY_ACCESS: TableAccess = TableAccess {
    table: InlineStr::new(),
    row: None,
    kind: AccessKind::Read,
};

impl Default for Classification {
    fn default() -> Self {
        Classification::new()
    }
}

impl Classification {
    pub const fn new() -> Self {
        Classification {
            accesses: [EMPTY_ACCESS; MAX_ACCESSES],
            len: 0,
            fallback: None,
            label: InlineStr::new(),
            requests: 0,
            txn: 0,
        }
    }

    /// The request ran inside an open transaction: the rows it writes
    /// (`UPDATE`, `DELETE`, `INSERT`, `SELECT ... FOR UPDATE`) stay locked
    /// by the server until the transaction ends.
    pub const TAKES_ROW_LOCKS: u8 = 1;
    /// The request ended the connection's transaction (`COMMIT`,
    /// `ROLLBACK`, an implicit commit): its row locks are released. The
    /// accesses of such a request take no lock of their own (see
    /// [`Self::row_locks_taken`]).
    pub const ENDS_TRANSACTION: u8 = 2;

    pub fn clear(&mut self) {
        self.len = 0;
        self.fallback = None;
        self.label.clear();
        self.requests = 0;
        self.txn = 0;
    }

    /// Whether the row writes of this request are row locks held until the
    /// transaction ends. A request that also ends a transaction (a batch
    /// `UPDATE ...; COMMIT`) is taken as holding none: which part of it
    /// came first is not kept, and a lock left unmodelled only makes the
    /// waiter wait as before, where a lock modelled wrongly would make a
    /// worker wait for a release that never comes.
    pub fn row_locks_taken(&self) -> bool {
        self.txn & Self::TAKES_ROW_LOCKS != 0 && !self.ends_transaction()
    }

    /// Whether this request ended the connection's transaction.
    pub fn ends_transaction(&self) -> bool {
        self.txn & Self::ENDS_TRANSACTION != 0
    }

    pub(crate) fn mark_txn(&mut self, flag: u8) {
        self.txn |= flag;
    }

    /// The accesses, each table or row at most once per kind.
    pub fn accesses(&self) -> &[TableAccess] {
        &self.accesses[..self.len as usize]
    }

    /// Set when the caller must also report the coarse socket key.
    pub fn fallback(&self) -> Option<Fallback> {
        self.fallback
    }

    /// True when the request conflicts with nothing at all.
    pub fn is_no_conflict(&self) -> bool {
        self.len == 0 && self.fallback.is_none()
    }

    /// The accesses to report for a reply to this request: the same
    /// resources, as reads. The request's own send already carries the real
    /// reads and writes; the reply only orders the client's observation of
    /// them, so reporting it as reads adds no conflict between two replies
    /// and never hides one. When [`Self::fallback`] is set the caller reads
    /// the coarse socket key as well.
    /// The commit-ordering pseudo-tables ([`snapshot`]) are left out: a
    /// reply observes data, not commits.
    pub fn reply_reads(&self) -> impl Iterator<Item = TableAccess> + '_ {
        self.accesses()
            .iter()
            .filter(|a| !snapshot::is_commit_order(a.table.as_bytes()))
            .map(|a| TableAccess {
                kind: AccessKind::Read,
                ..*a
            })
    }

    /// A short human label: the first meaningful statement or command,
    /// whitespace collapsed, cut to [`LABEL_CAP`] bytes.
    pub fn label(&self) -> &str {
        self.label.as_str()
    }

    /// How many requests (statements, commands, execute messages) the
    /// buffer completed.
    pub fn requests(&self) -> u16 {
        self.requests
    }

    /// Adds an access, merging it with an equal table/row (a write wins);
    /// past capacity it records [`Fallback::TooManyAccesses`].
    pub fn push(&mut self, access: TableAccess) {
        for existing in &mut self.accesses[..self.len as usize] {
            if existing.table == access.table && existing.row == access.row {
                existing.kind = existing.kind.join(access.kind);
                return;
            }
        }
        if (self.len as usize) < MAX_ACCESSES {
            self.accesses[self.len as usize] = access;
            self.len += 1;
        } else {
            self.set_fallback(Fallback::TooManyAccesses);
        }
    }

    /// Records a fallback reason; the first one is kept.
    pub fn set_fallback(&mut self, reason: Fallback) {
        if self.fallback.is_none() {
            self.fallback = Some(reason);
        }
    }

    /// Adds everything from `other` (accesses, fallback, requests; the
    /// label only if this one has none).
    pub fn merge(&mut self, other: &Classification) {
        for a in other.accesses() {
            self.push(*a);
        }
        if let Some(f) = other.fallback {
            self.set_fallback(f);
        }
        if self.label.is_empty() {
            self.label = other.label;
        }
        self.requests = self.requests.saturating_add(other.requests);
        self.txn |= other.txn;
    }

    pub(crate) fn count_request(&mut self) {
        self.requests = self.requests.saturating_add(1);
    }

    pub(crate) fn has_label(&self) -> bool {
        !self.label.is_empty()
    }

    /// Sets the label from raw request text: whitespace runs become one
    /// space, bytes outside printable ASCII become `?`, long text ends in
    /// `...`.
    pub(crate) fn set_label(&mut self, text: &[u8]) {
        self.label.clear();
        let mut last_space = true;
        for (i, &b) in text.iter().enumerate() {
            let c = match b {
                b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c => b' ',
                0x21..=0x7e => b,
                _ => b'?',
            };
            if c == b' ' && last_space {
                continue;
            }
            last_space = c == b' ';
            if self.label.len() >= LABEL_CAP - 3 {
                if text[i..].iter().any(|b| !b.is_ascii_whitespace()) {
                    while self.label.as_bytes().last() == Some(&b' ') {
                        self.label.pop();
                    }
                    let _ = self.label.push_str(b"...");
                }
                break;
            }
            let _ = self.label.push(c);
        }
        while self.label.as_bytes().last() == Some(&b' ') {
            self.label.pop();
        }
    }

    /// Rows still bound to placeholders are dropped to table level.
    pub(crate) fn drop_param_rows(&mut self) {
        let n = self.len as usize;
        let mut kept = Classification::new();
        kept.fallback = self.fallback;
        kept.label = self.label;
        kept.requests = self.requests;
        kept.txn = self.txn;
        for a in &self.accesses[..n] {
            let mut a = *a;
            if let Some(RowKey {
                value: RowValue::Param(_),
                ..
            }) = a.row
            {
                a.row = None;
            }
            kept.push(a);
        }
        *self = kept;
    }

    pub(crate) fn accesses_mut(&mut self) -> &mut [TableAccess] {
        &mut self.accesses[..self.len as usize]
    }
}
