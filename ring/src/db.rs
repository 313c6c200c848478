//! The database record: what an [`EventKind::DbAccess`] event carries, its
//! encoder ([`db_records`], run by the preload library inside its hooks)
//! and its decoder ([`EventRecord::db`], run by the consumer), side by side
//! so that the two cannot drift apart.
//!
//! The fields are [`EventRecord`]'s `row`, `coarse_key`, `access`,
//! `db_flags`, `scheme`, `server_len`, `table_len`, `label_len`, `fallback`
//! and `label`, plus `name` (the resource name, `sql:<server>/<table>...`,
//! or `socket:<server>` for the coarse key) and `key` (the table key, or
//! the coarse key).

use std::fmt::Write as _;

use frontrun_wire::keys::{
    coarse_key, engine_accesses, table_key, EngineAccess, Resource, ResourceName, Scheme,
    TableKeys, ROW_BUCKETS,
};
use frontrun_wire::snapshot::is_commit_order;
use frontrun_wire::{AccessKind, Classification, Fallback, InlineStr, RowValue, TableAccess};

use crate::{EventKind, EventRecord, NAME_CAPACITY};

/// [`EventRecord::access`] of a [`DB_NO_CONFLICT`] event: no access.
pub const DB_ACCESS_NONE: u8 = 0;
/// [`EventRecord::access`] of a read.
pub const DB_ACCESS_READ: u8 = 1;
/// [`EventRecord::access`] of a write.
pub const DB_ACCESS_WRITE: u8 = 2;

/// The `access` code of `kind`.
pub fn access_code(kind: AccessKind) -> u8 {
    match kind {
        AccessKind::Read => DB_ACCESS_READ,
        AccessKind::Write => DB_ACCESS_WRITE,
    }
}

/// The access an `access` code stands for; `None` for [`DB_ACCESS_NONE`]
/// (and any code this version does not know).
pub fn access_of(code: u8) -> Option<AccessKind> {
    match code {
        DB_ACCESS_READ => Some(AccessKind::Read),
        DB_ACCESS_WRITE => Some(AccessKind::Write),
        _ => None,
    }
}

/// The access has a row (`row` is its digest); without it the access is to
/// the whole table.
pub const DB_HAS_ROW: u8 = 1;
/// The access is to the server's coarse key (`coarse_key`; `name` is
/// `socket:<server>`): the request fell back (see `fallback`).
pub const DB_COARSE: u8 = 2;
/// The request conflicts with nothing (`BEGIN`, `SET`, `PING`, startup and
/// authentication, an incomplete message, a failed call): no engine access.
pub const DB_NO_CONFLICT: u8 = 4;
/// The event comes from a receive: the reply to the connection's last
/// request, reported as reads of that request's resources.
pub const DB_REPLY: u8 = 8;
/// `name` was cut at [`NAME_CAPACITY`]; the server and table strings are
/// incomplete, but the keys ([`DbAccess::engine_accesses`]) are not.
pub const DB_NAME_CUT: u8 = 16;
/// The row this write names stays locked by the server until the
/// connection's transaction ends (a row write inside a transaction; see
/// [`Classification::row_locks_taken`]).
pub const DB_ROW_LOCK: u8 = 32;
/// The request ended the connection's transaction: the row locks it took
/// on this descriptor are released. Every record of the request carries it.
pub const DB_TXN_END: u8 = 64;

/// Fixed buffer for formatting a resource name; excess is cut and noted.
struct NameBuf {
    bytes: [u8; NAME_CAPACITY],
    len: usize,
    cut: bool,
}

impl std::fmt::Write for NameBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = NAME_CAPACITY - self.len;
        let n = s.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        self.cut |= n < s.len();
        Ok(())
    }
}

/// Encodes the records of one classified call on a connection of `scheme`
/// to `server`, handing each to `emit`; the fields not listed in the module
/// docs come from `template`. `reply` says the call was a receive:
/// accesses become reads of the last request
/// ([`Classification::reply_reads`]). `failed` calls moved no bytes and
/// conflict with nothing. `classification` is `None` when the connection had
/// no usable state (coarse key, [`DbFallback::NoState`]). Allocates
/// nothing (it runs inside the hooks).
pub fn db_records(
    template: &EventRecord,
    scheme: DbScheme,
    server: &InlineStr<64>,
    classification: Option<&Classification>,
    reply: bool,
    failed: bool,
    emit: &mut dyn FnMut(&mut EventRecord),
) {
    let server_str = server.as_str();
    let coarse = coarse_key(server_str);
    let mut base = *template;
    base.kind = EventKind::DbAccess as u8;
    base.scheme = scheme as u8;
    base.coarse_key = coarse;
    base.server_len = server.len() as u8;
    base.db_flags = if reply { DB_REPLY } else { 0 };
    if let Some(c) = classification {
        base.set_label(c.label().as_bytes());
        if !reply && !failed && c.ends_transaction() {
            base.db_flags |= DB_TXN_END;
        }
    }
    let row_locks = !reply && classification.is_some_and(Classification::row_locks_taken);
    // A receive reads what the request wrote.
    let coarse_access = access_code(if reply {
        AccessKind::Read
    } else {
        AccessKind::Write
    });
    let coarse_record = |base: &EventRecord, flags: u8, access: u8, fallback: u8| {
        let mut r = *base;
        let mut name = NameBuf {
            bytes: [0; NAME_CAPACITY],
            len: 0,
            cut: false,
        };
        let _ = write!(name, "socket:{server_str}");
        r.set_name(&name.bytes[..name.len]);
        r.key = coarse;
        r.table_len = 0;
        r.db_flags |= flags | if name.cut { DB_NAME_CUT } else { 0 };
        r.access = access;
        r.fallback = fallback;
        r
    };
    if failed {
        emit(&mut coarse_record(&base, DB_NO_CONFLICT, DB_ACCESS_NONE, 0));
        return;
    }
    let Some(c) = classification else {
        emit(&mut coarse_record(
            &base,
            DB_COARSE,
            coarse_access,
            DbFallback::NoState.to_u8(),
        ));
        return;
    };
    let mut emitted = 0;
    let mut one = |a: &TableAccess| {
        let mut r = base;
        let mut name = NameBuf {
            bytes: [0; NAME_CAPACITY],
            len: 0,
            cut: false,
        };
        let _ = write!(
            name,
            "{}",
            ResourceName {
                scheme: scheme.wire(),
                server: server_str,
                access: a,
            }
        );
        r.set_name(&name.bytes[..name.len]);
        if name.cut {
            r.db_flags |= DB_NAME_CUT;
        }
        r.key = table_key(scheme.wire(), server_str, a.table.as_bytes());
        r.table_len = a.table.len() as u8;
        if let Some(RowValue::Digest(d)) = a.row.map(|row| row.value) {
            r.row = d;
            r.db_flags |= DB_HAS_ROW;
            if row_locks && a.kind == AccessKind::Write && !is_commit_order(a.table.as_bytes()) {
                r.db_flags |= DB_ROW_LOCK;
            }
        }
        r.access = access_code(a.kind);
        emit(&mut r);
        emitted += 1;
    };
    if reply {
        c.reply_reads().for_each(|a| one(&a));
    } else {
        c.accesses().iter().for_each(&mut one);
    }
    if let Some(f) = c.fallback() {
        emit(&mut coarse_record(
            &base,
            DB_COARSE,
            coarse_access,
            DbFallback::Wire(f).to_u8(),
        ));
        emitted += 1;
    }
    if emitted == 0 {
        emit(&mut coarse_record(&base, DB_NO_CONFLICT, DB_ACCESS_NONE, 0));
    }
}

impl EventRecord {
    /// The protocol fields of a [`EventKind::DbAccess`] event.
    pub fn db(&self) -> Option<DbAccess<'_>> {
        if self.kind() != Some(EventKind::DbAccess) {
            return None;
        }
        let name = self.name_bytes();
        let scheme = DbScheme::from_u8(self.scheme);
        let cut = self.db_flags & DB_NAME_CUT != 0;
        let (server, table): (&[u8], &[u8]) = if self.db_flags & DB_COARSE != 0 {
            (name.strip_prefix(b"socket:").unwrap_or(b""), b"")
        } else {
            let start = scheme.map_or(0, |s| s.as_str().len() + 1);
            let server_end = start + usize::from(self.server_len);
            let table_start = server_end + 1;
            let table_end = table_start + usize::from(self.table_len);
            (
                name.get(start..server_end.min(name.len())).unwrap_or(b""),
                name.get(table_start.min(name.len())..table_end.min(name.len()))
                    .unwrap_or(b""),
            )
        };
        Some(DbAccess {
            kind: access_of(self.access),
            flags: self.db_flags,
            scheme,
            server: if cut {
                ""
            } else {
                std::str::from_utf8(server).unwrap_or("")
            },
            table: if cut { b"" } else { table },
            row: (self.db_flags & DB_HAS_ROW != 0).then_some(self.row),
            table_key: self.key,
            coarse_key: self.coarse_key,
            fallback: DbFallback::from_u8(self.fallback),
            label: self.label(),
        })
    }
}

/// Which family of resource names a protocol event uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbScheme {
    Sql = 1,
    Redis = 2,
}

impl DbScheme {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(DbScheme::Sql),
            2 => Some(DbScheme::Redis),
            _ => None,
        }
    }

    pub fn wire(self) -> Scheme {
        match self {
            DbScheme::Sql => Scheme::Sql,
            DbScheme::Redis => Scheme::Redis,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.wire().as_str()
    }
}

/// Why a request fell back to the coarse key: the classifier's
/// [`Fallback`] reasons, plus the library's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbFallback {
    Wire(Fallback),
    /// The library had no protocol state for the connection: the state pool
    /// was exhausted, another thread was using the connection at the same
    /// moment, or the connection was made while the library was not
    /// attached.
    NoState,
}

impl DbFallback {
    pub fn to_u8(self) -> u8 {
        match self {
            DbFallback::Wire(Fallback::Unrecognized) => 1,
            DbFallback::Wire(Fallback::TooLong) => 2,
            DbFallback::Wire(Fallback::TooManyAccesses) => 3,
            DbFallback::Wire(Fallback::Encrypted) => 4,
            DbFallback::Wire(Fallback::Desynced) => 5,
            DbFallback::Wire(Fallback::UnknownPrepared) => 6,
            DbFallback::NoState => 7,
        }
    }

    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => DbFallback::Wire(Fallback::Unrecognized),
            2 => DbFallback::Wire(Fallback::TooLong),
            3 => DbFallback::Wire(Fallback::TooManyAccesses),
            4 => DbFallback::Wire(Fallback::Encrypted),
            5 => DbFallback::Wire(Fallback::Desynced),
            6 => DbFallback::Wire(Fallback::UnknownPrepared),
            7 => DbFallback::NoState,
            _ => return None,
        })
    }
}

/// A [`EventKind::DbAccess`] event, decoded ([`EventRecord::db`]).
#[derive(Clone, Copy, Debug)]
pub struct DbAccess<'a> {
    /// `None` for a [`DB_NO_CONFLICT`] event.
    pub kind: Option<AccessKind>,
    /// `DB_*` bits.
    pub flags: u8,
    pub scheme: Option<DbScheme>,
    /// The server as the keys spell it (`localhost:5432`); empty when the
    /// name was cut ([`DB_NAME_CUT`]).
    pub server: &'a str,
    /// The canonical table (empty for Redis, and when the name was cut).
    pub table: &'a [u8],
    /// Row (or Redis key) digest.
    pub row: Option<u64>,
    /// [`frontrun_wire::keys::table_key`] (for a [`DB_COARSE`] event, the
    /// coarse key).
    pub table_key: u64,
    pub coarse_key: u64,
    pub fallback: Option<DbFallback>,
    pub label: &'a str,
}

impl DbAccess<'_> {
    pub fn is_no_conflict(&self) -> bool {
        self.flags & DB_NO_CONFLICT != 0
    }

    pub fn is_coarse(&self) -> bool {
        self.flags & DB_COARSE != 0
    }

    pub fn is_reply(&self) -> bool {
        self.flags & DB_REPLY != 0
    }

    /// The server-side row lock this write takes ([`DB_ROW_LOCK`]), as a
    /// key of its own: one per table and row of one server, whatever the
    /// descriptor. The consumer holds it for the writing connection until
    /// a [`DB_TXN_END`] event on the same descriptor.
    pub fn row_lock(&self) -> Option<u64> {
        if self.flags & DB_ROW_LOCK == 0 {
            return None;
        }
        let row = self.row?;
        let mut h = frontrun_wire::Fnv1a::new();
        h.bytes(b"row-lock\0");
        h.bytes(&self.table_key.to_le_bytes());
        h.bytes(&row.to_le_bytes());
        Some(h.finish())
    }

    /// The request ended its connection's transaction ([`DB_TXN_END`]).
    pub fn ends_transaction(&self) -> bool {
        self.flags & DB_TXN_END != 0
    }

    /// The engine accesses this event stands for, handed to `sink`; returns
    /// how many. Nothing for a no-conflict event, the coarse key for a
    /// fallback, and otherwise exactly what
    /// [`frontrun_wire::keys::engine_accesses`] gives for the access. When
    /// the name was cut the same keys are derived from `table_key`
    /// ([`TableKeys::from_table_key`]).
    pub fn engine_accesses(&self, mut sink: impl FnMut(EngineAccess)) -> usize {
        let Some(kind) = self.kind else { return 0 };
        if self.is_no_conflict() {
            return 0;
        }
        if self.is_coarse() {
            sink(EngineAccess {
                key: self.coarse_key,
                kind,
            });
            return 1;
        }
        let Some(scheme) = self.scheme else { return 0 };
        if self.flags & DB_NAME_CUT == 0 {
            let res = Resource {
                scheme: scheme.wire(),
                server: self.server,
                table: self.table,
                row: self.row,
            };
            return engine_accesses(res, kind, sink);
        }
        sink(EngineAccess {
            key: self.coarse_key,
            kind: AccessKind::Read,
        });
        1 + TableKeys::from_table_key(self.table_key).accesses(self.row, kind, sink)
    }

    /// [`DbAccess::engine_accesses`] for an event of DPOR thread `thread`,
    /// which is what a consumer that knows the thread should call. One
    /// access differs: a row write (a commit's marker on
    /// [`frontrun_wire::sql::COMMITS_TABLE`]
    /// included) writes the bucket of the writing thread, `thread mod`
    /// [`ROW_BUCKETS`], instead of the bucket of the row's digest.
    ///
    /// A bucket only has to meet every whole-table access (which touches
    /// all buckets); which bucket a row write takes is free. With the
    /// digest's, two threads writing different rows met in one bucket one
    /// time in [`ROW_BUCKETS`], depending only on the names of the rows and
    /// tables: the number of executions explored then changed with the
    /// names (random per test run, or per tenant). Two writes of one
    /// thread are ordered by the thread anyway, so with the thread's bucket
    /// writes of different rows by different threads never conflict, up to
    /// `ROW_BUCKETS` threads.
    pub fn engine_accesses_by(&self, thread: usize, mut sink: impl FnMut(EngineAccess)) -> usize {
        let row_write = self.kind == Some(AccessKind::Write)
            && self.scheme.is_some()
            && self.flags & (DB_COARSE | DB_NO_CONFLICT) == 0;
        let Some(digest) = self.row.filter(|_| row_write) else {
            return self.engine_accesses(sink);
        };
        let keys = TableKeys::from_table_key(self.table_key);
        let bucket_key = keys.bucket(thread as u64 % ROW_BUCKETS);
        let row_key = keys.row(digest);
        for (key, kind) in [
            (self.coarse_key, AccessKind::Read),
            (self.table_key, AccessKind::Read),
            (bucket_key, AccessKind::Write),
            (row_key, AccessKind::Write),
        ] {
            sink(EngineAccess { key, kind });
        }
        4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontrun_wire::pg::PgConn;

    fn pg_query(sql: &[u8]) -> Vec<u8> {
        let mut msg = vec![b'Q'];
        msg.extend_from_slice(&((sql.len() + 5) as u32).to_be_bytes());
        msg.extend_from_slice(sql);
        msg.push(0);
        msg
    }

    fn encode(
        c: Option<&Classification>,
        server: &InlineStr<64>,
        reply: bool,
        failed: bool,
    ) -> Vec<EventRecord> {
        let mut out = Vec::new();
        db_records(
            &EventRecord::EMPTY,
            DbScheme::Sql,
            server,
            c,
            reply,
            failed,
            &mut |r| out.push(*r),
        );
        out
    }

    fn decoded_keys(records: &[EventRecord]) -> Vec<EngineAccess> {
        let mut keys = Vec::new();
        for r in records {
            r.db()
                .expect("a DbAccess record")
                .engine_accesses(|a| keys.push(a));
        }
        keys
    }

    #[test]
    fn access_codes_round_trip() {
        for kind in [AccessKind::Read, AccessKind::Write] {
            assert_eq!(access_of(access_code(kind)), Some(kind));
        }
        assert_eq!(access_of(DB_ACCESS_NONE), None);
    }

    /// What the decoder gives for encoded records is what the key mapping
    /// gives for the classified accesses themselves, for a request, its
    /// reply, a fallback and a call without state.
    #[test]
    fn decoded_records_are_the_classified_accesses() {
        let server = frontrun_wire::keys::server_name(&"127.0.0.1:5432".parse().unwrap());
        let s = server.as_str();
        let mut conn = PgConn::default();
        let c = conn.on_send(&pg_query(
            b"UPDATE accounts SET balance = 0 WHERE id = 7; SELECT * FROM audit",
        ));
        // Besides the two tables, a write outside a transaction also writes
        // its commit marker (`frontrun_wire::snapshot`).
        assert!(c.accesses().len() >= 2);
        let mut expected = Vec::new();
        for a in c.accesses() {
            engine_accesses(Resource::of(Scheme::Sql, s, a), a.kind, |k| {
                expected.push(k)
            });
        }
        let records = encode(Some(&c), &server, false, false);
        assert_eq!(records.len(), c.accesses().len());
        assert_eq!(decoded_keys(&records), expected);
        let db = records[0].db().unwrap();
        assert_eq!(db.kind, Some(AccessKind::Write));
        assert_eq!(
            (db.server, db.table, db.row.is_some()),
            (s, &b"accounts"[..], true)
        );

        // The reply reads what the request touched.
        let mut expected = Vec::new();
        for a in c.reply_reads() {
            engine_accesses(Resource::of(Scheme::Sql, s, &a), AccessKind::Read, |k| {
                expected.push(k)
            });
        }
        let replies = encode(Some(&c), &server, true, false);
        assert!(replies.iter().all(|r| r.db().unwrap().is_reply()));
        assert_eq!(decoded_keys(&replies), expected);

        // No state: the coarse key, written by a send and read by a receive.
        for (reply, kind) in [(false, AccessKind::Write), (true, AccessKind::Read)] {
            let r = encode(None, &server, reply, false);
            assert_eq!(r.len(), 1);
            let db = r[0].db().unwrap();
            assert!(db.is_coarse());
            assert_eq!(db.fallback, Some(DbFallback::NoState));
            assert_eq!(
                decoded_keys(&r),
                [EngineAccess {
                    key: coarse_key(s),
                    kind
                }]
            );
        }

        // A failed call, and a request that conflicts with nothing.
        let begin = conn.on_send(&pg_query(b"BEGIN"));
        for r in [
            encode(Some(&c), &server, false, true),
            encode(Some(&begin), &server, false, false),
        ] {
            assert_eq!(r.len(), 1);
            assert!(r[0].db().unwrap().is_no_conflict());
            assert_eq!(r[0].access, DB_ACCESS_NONE);
            assert!(decoded_keys(&r).is_empty());
        }
    }

    /// A name too long for the record still decodes to the same keys.
    #[test]
    fn a_cut_name_decodes_to_the_same_keys() {
        let server = frontrun_wire::keys::server_name(&"127.0.0.1:5432".parse().unwrap());
        let table = "t".repeat(60);
        let sql = format!("UPDATE {table} SET v = 1 WHERE id = 12345678901234567890");
        let c = PgConn::default().on_send(&pg_query(sql.as_bytes()));
        let mut expected = Vec::new();
        for a in c.accesses() {
            engine_accesses(Resource::of(Scheme::Sql, server.as_str(), a), a.kind, |k| {
                expected.push(k)
            });
        }
        let records = encode(Some(&c), &server, false, false);
        assert!(records[0].db_flags & DB_NAME_CUT != 0);
        assert_eq!(decoded_keys(&records), expected);
    }

    /// A row write inside a transaction names its row lock; the request
    /// that ends the transaction says so on every record (also when it
    /// writes nothing), and neither holds for a reply or outside one.
    #[test]
    fn row_locks_and_transaction_ends_are_marked() {
        let server = frontrun_wire::keys::server_name(&"127.0.0.1:5432".parse().unwrap());
        let mut conn = PgConn::default();
        let outside = conn.on_send(&pg_query(b"UPDATE accounts SET balance = 0 WHERE id = 7"));
        let outside = encode(Some(&outside), &server, false, false);
        assert!(outside.iter().all(|r| r.db().unwrap().row_lock().is_none()));
        conn.on_send(&pg_query(b"BEGIN"));
        let c = conn.on_send(&pg_query(
            b"SELECT balance FROM accounts WHERE id = 7 FOR UPDATE",
        ));
        let locks: Vec<u64> = encode(Some(&c), &server, false, false)
            .iter()
            .filter_map(|r| r.db().unwrap().row_lock())
            .collect();
        assert_eq!(locks.len(), 1);
        assert!(encode(Some(&c), &server, true, false).iter().all(|r| r
            .db()
            .unwrap()
            .row_lock()
            .is_none()));
        // The UPDATE of the same row in the same transaction names the same lock.
        let u = conn.on_send(&pg_query(b"UPDATE accounts SET balance = 1 WHERE id = 7"));
        let again: Vec<u64> = encode(Some(&u), &server, false, false)
            .iter()
            .filter_map(|r| r.db().unwrap().row_lock())
            .collect();
        assert_eq!(again, locks);
        let other = conn.on_send(&pg_query(b"UPDATE accounts SET balance = 1 WHERE id = 8"));
        let other = encode(Some(&other), &server, false, false);
        assert!(other
            .iter()
            .filter_map(|r| r.db().unwrap().row_lock())
            .all(|k| k != locks[0]));
        let commit = encode(
            Some(&conn.on_send(&pg_query(b"COMMIT"))),
            &server,
            false,
            false,
        );
        assert!(!commit.is_empty());
        assert!(commit.iter().all(|r| {
            let db = r.db().unwrap();
            db.ends_transaction() && db.row_lock().is_none()
        }));
        conn.on_send(&pg_query(b"BEGIN"));
        let rollback = encode(
            Some(&conn.on_send(&pg_query(b"ROLLBACK"))),
            &server,
            false,
            false,
        );
        assert_eq!(rollback.len(), 1);
        assert!(rollback[0].db().unwrap().is_no_conflict());
        assert!(rollback[0].db().unwrap().ends_transaction());
    }
}
