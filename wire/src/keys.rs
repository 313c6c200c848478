//! From classified accesses to the `u64` keys the engine compares.
//!
//! The engine's conflict relation is plain: two accesses conflict iff they
//! carry the same key and at least one is a write. The relation we want on
//! tables and rows is richer. Writing `T` for a whole-table access and
//! `T[r]` for an access to row `r`:
//!
//! | pair                    | conflicts when            |
//! |-------------------------|---------------------------|
//! | `T` read, `T` read      | never                     |
//! | `T` write, anything on T| always                    |
//! | `T` read, `T[r]` write  | always                    |
//! | `T[r]`, `T[s]`          | `r == s` and one writes   |
//!
//! No single key per row expresses this (a table read would have to share a
//! key with every row). Each access therefore expands to a few engine
//! accesses over three families of keys per table:
//!
//! * the table key `K_T`,
//! * `B` bucket keys `K_T#b` (`B` = [`ROW_BUCKETS`]),
//! * a row key `K_T#r` per row.
//!
//! | access       | engine accesses                                    |
//! |--------------|----------------------------------------------------|
//! | `T` read     | read `K_T`, read every `K_T#b`                     |
//! | `T` write    | write `K_T`, write every `K_T#b`                   |
//! | `T[r]` read  | read `K_T`, read `K_T#r`                           |
//! | `T[r]` write | read `K_T`, write `K_T#bucket(r)`, write `K_T#r`   |
//!
//! Soundness, pair by pair: a table write writes `K_T`, which every access to
//! T touches. A table read and a row write share `K_T#bucket(r)`, written by
//! the row write. Two accesses to the same row share `K_T#r`. So every
//! conflict of the table above is seen. The only over-report: two row writes
//! to different rows in the same bucket (both write the bucket key), about
//! `1/B` of write/write pairs on distinct rows. Row reads never touch a
//! bucket, so a row read and a write to another row stay independent
//! exactly, and the 64-bit hashes make accidental key collisions negligible
//! (a collision could only add conflicts, never remove one).
//!
//! This over-report cannot be avoided without knowing every row: a table
//! read touches finitely many keys, each row write must meet one of them
//! with a write (a shared write by two table reads would make them
//! conflict), so two of infinitely many rows always share a key. `B` buckets
//! is the best that `B` keys can do. The engine's consumer, which knows the
//! writing thread, does better: it gives a row write the thread's bucket
//! instead of `bucket(r)` (writes of one thread never need ordering), so
//! distinct rows written by up to `B` threads never conflict
//! (`ring::DbAccess::engine_accesses_by`).
//!
//! # The coarse key
//!
//! A request the classifier did not understand falls back to the coarse
//! key of its server, [`coarse_key`], as a write. For that fallback to meet
//! the fine-grained accesses of other workers on the same server, every
//! access above also reads the coarse key: fine accesses never conflict
//! through it (all reads), a fallback conflicts with all of them, and two
//! fallbacks with each other. It is one more level of the same hierarchy
//! (server, table, row). Costs: `B + 2` engine accesses for a table-level
//! access, 3 for a row read, 4 for a row write.
//!
//! # Key strings
//!
//! Each key is the FNV-1a 64 ([`crate::fnv1a64`]) of a UTF-8 string,
//! so the Python side can compute the same keys:
//!
//! * coarse: `socket:<server>` (`socket:localhost:5432`), the key of a
//!   request that could not be classified, whatever the protocol (the raw
//!   socket events of `libfrontrun_io.so` still name the peer by address,
//!   `socket:127.0.0.1:5432`, so the two spellings do not meet yet),
//! * table: `<scheme>:<server>/<table>` (`sql:localhost:5432/accounts`;
//!   Redis uses the empty table, `redis:localhost:6379/`),
//! * bucket: the table string + `#bucket=<b>`, `b` in decimal, where
//!   `b = (row_digest * 0x9e3779b97f4a7c15 mod 2^64) >> (64 - log2 B)`,
//! * row: the table string + `#row=<digest>`, `digest` as 16 lowercase hex
//!   digits: the FNV-1a 64 of the canonical row value (SQL, see
//!   [`crate::sql::canonical_value`]) or of the raw key bytes (Redis,
//!   at most the first [`crate::resp::KEY_HASH_CAP`]).
//!
//! `<server>` is whatever the caller names the peer by; both sides must use
//! the same spelling, and one server reached by two spellings (`127.0.0.1`,
//! `::1`, a Unix socket) would look like two servers, hiding conflicts
//! between them. [`server_name`] and [`unix_server_name`] give the spelling
//! to use: loopback addresses and PostgreSQL's Unix socket all become
//! `localhost:<port>`.

use core::fmt::{self, Write as _};

use super::{AccessKind, Fnv1a, InlineStr, RowValue, TableAccess};

/// Buckets per table for row writes (see the module docs).
pub const ROW_BUCKETS: u64 = 32;

/// Which family of resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Sql,
    Redis,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Sql => "sql",
            Scheme::Redis => "redis",
        }
    }
}

/// A resource as the key mapping sees it.
#[derive(Clone, Copy, Debug)]
pub struct Resource<'a> {
    pub scheme: Scheme,
    pub server: &'a str,
    pub table: &'a [u8],
    /// Digest of the row value; `None` for the whole table.
    pub row: Option<u64>,
}

impl<'a> Resource<'a> {
    /// The resource of a classified access. A row still waiting for a
    /// parameter counts as the whole table.
    pub fn of(scheme: Scheme, server: &'a str, access: &'a TableAccess) -> Self {
        let row = match access.row {
            Some(r) => match r.value {
                RowValue::Digest(d) => Some(d),
                RowValue::Param(_) => None,
            },
            None => None,
        };
        Resource {
            scheme,
            server,
            table: access.table.as_bytes(),
            row,
        }
    }
}

/// One access as the engine takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EngineAccess {
    pub key: u64,
    pub kind: AccessKind,
}

/// The keys of one table: `K_T`, its buckets and its rows, all continuing
/// the hash state of the table string (FNV-1a is a running state, so
/// `K_T#b` is `K_T`'s state fed `#bucket=<b>`). It can be rebuilt from
/// `K_T` alone ([`TableKeys::from_table_key`]), which is how the ring's
/// consumer derives the keys of an event whose name was cut: one mapping,
/// from the strings or from the table key.
#[derive(Clone, Copy, Debug)]
pub struct TableKeys(Fnv1a);

impl TableKeys {
    #[inline]
    pub fn new(scheme: Scheme, server: &str, table: &[u8]) -> Self {
        let mut h = Fnv1a::new();
        h.bytes(scheme.as_str().as_bytes());
        h.byte(b':');
        h.bytes(server.as_bytes());
        h.byte(b'/');
        h.bytes(table);
        TableKeys(h)
    }

    /// The keys of the table whose key is `table_key`.
    #[inline]
    pub const fn from_table_key(table_key: u64) -> Self {
        TableKeys(Fnv1a::resume(table_key))
    }

    /// `K_T`.
    #[inline]
    pub fn table(self) -> u64 {
        self.0.finish()
    }

    /// `K_T#b`.
    #[inline]
    pub fn bucket(self, bucket: u64) -> u64 {
        let mut h = self.0;
        let _ = write!(h, "#bucket={bucket}");
        h.finish()
    }

    /// `K_T#r` for a row digest.
    #[inline]
    pub fn row(self, digest: u64) -> u64 {
        let mut h = self.0;
        let _ = write!(h, "#row={digest:016x}");
        h.finish()
    }

    /// The table, bucket and row accesses of one access to this table (the
    /// table of the module docs without the coarse key), handed to `sink`;
    /// returns how many (`ROW_BUCKETS + 1`, 2 or 3).
    pub fn accesses(
        self,
        row: Option<u64>,
        kind: AccessKind,
        mut sink: impl FnMut(EngineAccess),
    ) -> usize {
        match row {
            None => {
                sink(EngineAccess {
                    key: self.table(),
                    kind,
                });
                for b in 0..ROW_BUCKETS {
                    sink(EngineAccess {
                        key: self.bucket(b),
                        kind,
                    });
                }
                1 + ROW_BUCKETS as usize
            }
            Some(digest) => {
                sink(EngineAccess {
                    key: self.table(),
                    kind: AccessKind::Read,
                });
                let row = self.row(digest);
                if kind == AccessKind::Write {
                    sink(EngineAccess {
                        key: self.bucket(bucket_of(digest)),
                        kind: AccessKind::Write,
                    });
                    sink(EngineAccess {
                        key: row,
                        kind: AccessKind::Write,
                    });
                    3
                } else {
                    sink(EngineAccess {
                        key: row,
                        kind: AccessKind::Read,
                    });
                    2
                }
            }
        }
    }
}

/// The name of the server behind a TCP peer address: `localhost:<port>`
/// for any loopback address (IPv4, IPv6 or IPv4-mapped), else `ip:port`
/// (IPv6 in brackets).
pub fn server_name(addr: &core::net::SocketAddr) -> InlineStr<64> {
    let mut name = InlineStr::new();
    let loopback = match addr.ip() {
        core::net::IpAddr::V4(ip) => ip.is_loopback(),
        core::net::IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    let _ = if loopback {
        write!(name, "localhost:{}", addr.port())
    } else {
        write!(name, "{addr}")
    };
    name
}

/// The name of the server behind a Unix socket path: PostgreSQL's
/// `<dir>/.s.PGSQL.<port>` is `localhost:<port>`, like its TCP loopback;
/// any other path names itself (a MySQL socket cannot be matched to its TCP
/// port, so mixing both spellings in one test hides their conflicts).
pub fn unix_server_name(path: &[u8]) -> InlineStr<64> {
    let file = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
    if let Some(port) = file.strip_prefix(b".s.PGSQL.") {
        if !port.is_empty() && port.len() <= 5 && port.iter().all(u8::is_ascii_digit) {
            let mut name = InlineStr::new();
            name.push_str(b"localhost:");
            name.push_str(port);
            return name;
        }
    }
    let mut name = InlineStr::new();
    name.push_str(b"unix:");
    // A path longer than fits is cut; distinct long paths may then merge,
    // which only adds conflicts.
    for &b in path {
        if !name.push(if (0x20..0x7f).contains(&b) { b } else { b'?' }) {
            break;
        }
    }
    name
}

/// The coarse key of a server: what a request that fell back writes (and
/// its reply reads), and what every fine-grained access reads.
pub fn coarse_key(server: &str) -> u64 {
    let mut h = Fnv1a::new();
    h.bytes(b"socket:");
    h.bytes(server.as_bytes());
    h.finish()
}

/// The table key `K_T`.
pub fn table_key(scheme: Scheme, server: &str, table: &[u8]) -> u64 {
    TableKeys::new(scheme, server, table).table()
}

/// The bucket key `K_T#b`.
pub fn bucket_key(scheme: Scheme, server: &str, table: &[u8], bucket: u64) -> u64 {
    TableKeys::new(scheme, server, table).bucket(bucket)
}

/// The row key `K_T#r` for a row digest.
pub fn row_key(scheme: Scheme, server: &str, table: &[u8], digest: u64) -> u64 {
    TableKeys::new(scheme, server, table).row(digest)
}

/// The bucket a row falls in: the top bits of the digest times an odd
/// constant (multiplicative hashing), so every bit of the digest counts.
/// FNV-1a's low bits depend only on the low bits of the input bytes, so
/// `digest % B` would put `user:a` and `user:A` (bytes 32 apart) in one
/// bucket every time.
pub fn bucket_of(digest: u64) -> u64 {
    const SPREAD: u64 = 0x9e37_79b9_7f4a_7c15;
    const SHIFT: u32 = 64 - ROW_BUCKETS.trailing_zeros();
    const _: () = assert!(ROW_BUCKETS.is_power_of_two());
    digest.wrapping_mul(SPREAD) >> SHIFT
}

/// Expands one access into engine accesses, handing each to `sink`, and
/// returns how many it produced (`ROW_BUCKETS + 2`, 3 or 4).
pub fn engine_accesses(
    res: Resource<'_>,
    kind: AccessKind,
    mut sink: impl FnMut(EngineAccess),
) -> usize {
    sink(EngineAccess {
        key: coarse_key(res.server),
        kind: AccessKind::Read,
    });
    1 + TableKeys::new(res.scheme, res.server, res.table).accesses(res.row, kind, sink)
}

/// The relation the keys must cover: same scheme, server and table, then
/// (one side whole-table, or same row) and at least one write.
pub fn semantic_conflict(a: (&Resource<'_>, AccessKind), b: (&Resource<'_>, AccessKind)) -> bool {
    let (ra, ka) = a;
    let (rb, kb) = b;
    if ra.scheme != rb.scheme || ra.server != rb.server || ra.table != rb.table {
        return false;
    }
    if ka == AccessKind::Read && kb == AccessKind::Read {
        return false;
    }
    match (ra.row, rb.row) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// The human name of an access for reports: `sql:localhost:5432/accounts`,
/// `sql:localhost:5432/accounts#id=1`, `redis:localhost:6379/counter`.
/// With an empty `server` the short form is printed (`sql:accounts#id=1`,
/// `redis:counter`), for `[read sql:accounts]` in explanations. Displayed
/// without allocating.
#[derive(Clone, Copy, Debug)]
pub struct ResourceName<'a> {
    pub scheme: Scheme,
    pub server: &'a str,
    pub access: &'a TableAccess,
}

impl fmt::Display for ResourceName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if !self.server.is_empty() {
            write!(f, "{}/", self.server)?;
        }
        write!(f, "{}", self.access.table)?;
        if let Some(row) = &self.access.row {
            match self.scheme {
                Scheme::Redis => write!(f, "{}", row.display)?,
                Scheme::Sql => {
                    write!(f, "#{}=", row.column)?;
                    match row.value {
                        RowValue::Digest(_) => write!(f, "{}", row.display)?,
                        RowValue::Param(n) => write!(f, "${n}")?,
                    }
                }
            }
        }
        Ok(())
    }
}
