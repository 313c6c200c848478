//! The shared-memory event ring between `libfrontrun_io.so` and the engine.
//!
//! Native code (libpq, a database driver, any C extension) cannot report to
//! the engine through Python, so the preload library writes one fixed-size
//! record per intercepted call into a ring that lives in a shared file
//! mapping. Every process of the tree under test, forked or exec'd, maps the
//! same file and writes into it; the engine is the single consumer and drains
//! the ring at each scheduling point.
//!
//! This crate is the whole contract between the two sides: this page is
//! its specification, and every record kind has its encoder and its decoder
//! here. Files: `record.rs` (the record format), `db.rs` (the database
//! record, encoder and decoder), `queue.rs` (header, slots, the producers'
//! claim and publish), `file.rs` (ring files), `consumer.rs` (the one
//! consumer), `gate.rs` (the mutex gate: scheduling a mutex operation
//! before it runs), and `bin/frontrun-ring.rs`, a command-line consumer for
//! benchmarks and for looking at a ring by hand.
//!
//! # Layout (version 2, all integers native-endian)
//!
//! ```text
//! offset  size  field
//!      0     8  magic         b"FRNTRING" read as a little-endian u64
//!      8     4  version       VERSION
//!     12     4  slot_size     SLOT_SIZE (296)
//!     16     8  capacity      number of slots, a power of two
//!     24     8  total_len     HEADER_SIZE + capacity * SLOT_SIZE = file size
//!     32     4  creator_pid   process that created the file
//!     36     4  flags         FLAG_CONSUMER_ATTACHED | FLAG_MUTEX_EVENTS
//!     40     4  consumer_pid  pid of the attached consumer, 0 when none
//!     64     8  enqueue_pos   next sequence number to hand out (own cache line)
//!    128     8  dequeue_pos   next sequence number to consume (own cache line)
//!    192     8  lost          events dropped because the ring stayed full
//!    200     4  stalled       1 after a producer timed out, until the next pop
//!    256        slots[capacity], SLOT_SIZE bytes each
//! ```
//!
//! A slot is an 8-byte `turn` word followed by an [`EventRecord`]. The queue
//! is Dmitry Vyukov's bounded MPMC array queue used with a single consumer:
//! slot `i` is free for the producer holding ticket `pos` when its turn is
//! `pos`, and holds a published record for the consumer at `pos` when its
//! turn is `pos + 1`. The ticket doubles as the event's global sequence
//! number, so sequence numbers have no gaps and no duplicates: a ticket is
//! only taken once its slot is free, and an event that cannot get one is
//! counted in `lost` instead. The turn word is stored minus the slot index,
//! so a freshly truncated (all-zero) file is a valid empty ring and creating
//! one touches no slot page.
//!
//! # Attach protocol
//!
//! * With only `LD_PRELOAD=libfrontrun_io.so` and no [`ENV_RING`] in the
//!   environment, the library creates a ring file (0600, in a fresh 0700
//!   directory under `/dev/shm`, or the temporary directory) when it is
//!   loaded, and sets [`ENV_RING`] to its path so that child processes attach
//!   to the same ring. The creating process removes the file at exit.
//! * When [`ENV_RING`] is already set, the library maps that file instead.
//!   A missing file or a wrong magic, version or size disables the library
//!   with one line on stderr.
//! * The library exports, for the in-process engine (look them up with
//!   `dlsym(RTLD_DEFAULT, name)`; absent means the library is not loaded):
//!   - `const char *frontrun_io_ring_path(void)`: the ring file this process
//!     writes to, or NULL when the library is disabled;
//!   - `int frontrun_io_ring_is_own(void)`: 1 when this process created the
//!     ring, 0 when it inherited it from an ancestor (an ancestor's engine is
//!     then the rightful consumer);
//!   - `unsigned frontrun_io_ring_version(void)`: [`VERSION`] of the layout
//!     the library writes.
//! * The engine opens the path with [`Consumer::open`], which validates the
//!   header and sets `FLAG_CONSUMER_ATTACHED` (and `FLAG_MUTEX_EVENTS` on
//!   request). Producers write nothing while no consumer is attached, so a
//!   process under the library but without an engine runs at pass-through
//!   cost. Dropping the consumer clears the flag.
//!
//! Only one consumer may be attached at a time; [`Consumer::open`] refuses a
//! second one.
//!
//! ## What the binding does, step by step
//!
//! 1. `dlsym(RTLD_DEFAULT, "frontrun_io_ring_version")`; if absent, the
//!    library is not preloaded: run without native events (say so once).
//!    If it returns something other than [`VERSION`], the library and the
//!    engine come from different builds: refuse native events with that
//!    reason.
//! 2. `dlsym(RTLD_DEFAULT, "frontrun_io_ring_path")` and call it; NULL means
//!    the library disabled itself (it already printed why).
//! 3. `Consumer::open(Path::new(path), ConsumerOptions { mutex_events })`.
//!    [`RingError::AlreadyConsumed`] means an ancestor's engine drains this
//!    ring (this process is a child of a process under test): run without
//!    native events. Otherwise keep the consumer for the session.
//! 4. At each scheduling point, [`Consumer::drain`]: records come oldest
//!    first, with consecutive `seq`; match them to DPOR threads by `pid` and
//!    `tid` (the OS thread id, `threading.get_native_id()` in Python).
//! 5. Report [`Consumer::lost`] with the result when it is not zero: events
//!    were dropped because the ring stayed full for longer than
//!    [`env::ENV_RING_WAIT_US`] allows, so the native history is incomplete.
//! 6. Drop the consumer at the end: producers go back to passing through.
//!
//! `frontrun_io_ring_is_own` is informational (the creator removes the file
//! at exit); `create_private_ring` plus [`ENV_RING`] in a child's environment
//! is how a test or a tool gives a child process a ring it consumes.
//!
//! # Protocol events
//!
//! On a socket the library knows to be a database connection (PostgreSQL,
//! MySQL/MariaDB or Redis; by port, Unix socket path or
//! [`env::ENV_PROTOCOLS`]), each `send`/`write`-family call is fed to the
//! connection's classifier ([`frontrun_wire`]) and each `recv`/`read`-family
//! call to its reply side, and the call is reported as one or more
//! [`EventKind::DbAccess`] events *instead of* its `Write`/`Read` event, so
//! no byte is counted twice: raw `Write`/`Read` events only ever describe
//! other descriptors. `Connect`, `Close`, `BlockEnter` and `BlockLeave` of a
//! database socket keep the socket's own name (`socket:127.0.0.1:5432`),
//! so the scheduler still sees a worker waiting on the server.
//!
//! The events of one call are consecutive for their thread (same `tid`,
//! `call`, `fd` and `result`), and are one of:
//!
//! * one event per table, row or key the request touches, `access` read or
//!   write; `name` is the readable resource (`sql:localhost:5432/accounts#id=1`,
//!   `redis:localhost:6379/counter`) laid out as `<scheme>:<server>/<table>...`
//!   with `server_len`/`table_len` giving the parts; `key` is the table key,
//!   `row` the row digest when [`DB_HAS_ROW`], `coarse_key` the server's;
//! * plus, when the request was not fully understood, one [`DB_COARSE`]
//!   event: `name` `socket:<server>` spelled as
//!   [`frontrun_wire::keys::coarse_key`] hashes it (`socket:localhost:5432`:
//!   loopback addresses are `localhost`), `access` write, `fallback` the
//!   reason ([`DbFallback`]); TLS connections give only these;
//! * or, when the request conflicts with nothing (`BEGIN`, `SET`, startup,
//!   a partial message, a call that failed), a single [`DB_NO_CONFLICT`]
//!   event with `access` 0.
//!
//! Receives carry [`DB_REPLY`] and repeat the last request's resources as
//! reads ([`frontrun_wire::Classification::reply_reads`]); the coarse key as a
//! read when that request fell back. `label` is the request's text for
//! explanations. A row write inside a transaction carries [`DB_ROW_LOCK`]
//! (the server keeps the row locked until the transaction ends;
//! [`DbAccess::row_lock`] names the lock), and every event of a request
//! that ended the connection's transaction carries [`DB_TXN_END`].
//! The protocol fields (`row` to `label`) are only written for
//! `DbAccess` events; in other records they hold leftovers.
//!
//! ## Turning a protocol event into engine accesses
//!
//! 1. `record.db()` gives a [`DbAccess`]; skip it when
//!    [`DbAccess::is_no_conflict`].
//! 2. [`DbAccess::engine_accesses_by`] hands out the `(key, read/write)`
//!    pairs: the coarse key alone for a [`DB_COARSE`] event, else exactly
//!    what [`frontrun_wire::keys::engine_accesses`] gives for
//!    `Resource { scheme, server, table, row }` (from the fields above; keys
//!    are still right when `name` was cut, [`DB_NAME_CUT`]), except that a
//!    row write takes the writing thread's bucket.
//! 3. Report each pair as an access of the step of the DPOR thread that owns
//!    `tid`; use `name` and `label` in explanations.
//!
//! A producer that dies between taking a ticket and publishing its slot (a
//! few stores; only `SIGKILL` or a crash there can do it) must not leave
//! the consumer waiting at that slot for good. So taking a slot and naming
//! oneself in it are one step: a producer stores `(pid << 32) | (ticket +
//! 1) mod 2^32` in the slot's first word (`seq`) with a compare-exchange,
//! and only then is `enqueue_pos` moved on (by it, or by any producer that
//! finds the slot named). It publishes with a compare-exchange of the
//! turn. A consumer waiting at an unpublished slot below `enqueue_pos`
//! takes it back (the same compare-exchange, to the next lap's turn) and
//! counts it in `lost`: at once when the claimer's pid is gone, after a
//! bound when it lives ([`Consumer`]). The consumer puts the
//! sequence number back in `seq` when it takes an event.

use std::time::Duration;

/// Environment variables read by the preload library and the engine. Every
/// name the project uses for the native layer is defined here.
pub mod env {
    /// Path of the ring file. Set by the library for its children; when set
    /// before the library loads, the library attaches to that ring.
    pub const ENV_RING: &str = "FRONTRUN_RING";
    /// `1` turns on mutex events even before a consumer asks for them.
    pub const ENV_MUTEX: &str = "FRONTRUN_MUTEX";
    /// Number of slots of a ring the library creates (rounded up to a power
    /// of two, between [`super::MIN_CAPACITY`] and [`super::MAX_CAPACITY`]).
    pub const ENV_RING_SLOTS: &str = "FRONTRUN_RING_SLOTS";
    /// How long, in microseconds, a producer waits for room in a full ring
    /// before it counts its event as lost.
    pub const ENV_RING_WAIT_US: &str = "FRONTRUN_RING_WAIT_US";
    /// Which wire protocol a server port speaks, overriding the well-known
    /// ports: comma-separated `<port>=<protocol>` with protocol `pg`,
    /// `mysql`, `redis` or `none` (plain socket events), e.g.
    /// `5433=pg,6380=redis,3306=none`.
    pub const ENV_PROTOCOLS: &str = "FRONTRUN_PROTOCOLS";
    /// `0` keeps native mutex operations out of the scheduler (they are
    /// then only observed, as events after the fact); see [`super::gate`].
    pub const ENV_MUTEX_GATE: &str = "FRONTRUN_MUTEX_GATE";
}
pub use env::ENV_RING;

mod db;
pub use db::{
    access_code, access_of, db_records, DbAccess, DbFallback, DbScheme, DB_ACCESS_NONE,
    DB_ACCESS_READ, DB_ACCESS_WRITE, DB_COARSE, DB_HAS_ROW, DB_NAME_CUT, DB_NO_CONFLICT, DB_REPLY,
    DB_ROW_LOCK, DB_TXN_END,
};

/// `b"FRNTRING"` as a little-endian word.
pub const MAGIC: u64 = u64::from_le_bytes(*b"FRNTRING");
/// Layout version; bump on any change to the header or the record.
/// Version 2 added the protocol fields of [`EventRecord`] and
/// [`EventKind::DbAccess`]; version 3 made a slot's first word the claim
/// (pid and lap in one word) until the consumer takes the event; version
/// 4 added [`EventKind::Process`]; version 5 the thread events
/// ([`EventKind::ThreadStart`] and the three after it).
pub const VERSION: u32 = 5;
/// Bytes before the first slot.
pub const HEADER_SIZE: usize = 256;
/// Bytes per slot: the turn word and one [`EventRecord`].
pub const SLOT_SIZE: usize = 296;
/// Bytes of a resource name kept inline; longer names are cut (the key is
/// still computed over the whole name).
pub const NAME_CAPACITY: usize = 96;
/// Bytes of the calling object's file name kept inline (mutex events).
pub const ORIGIN_CAPACITY: usize = 32;
/// Bytes of a request's label kept inline ([`EventKind::DbAccess`]); the
/// same as the classifier's own cap.
pub const LABEL_CAPACITY: usize = frontrun_wire::LABEL_CAP;
/// Ring size used when nothing else is asked for.
pub const DEFAULT_CAPACITY: u64 = 1 << 16;
pub const MIN_CAPACITY: u64 = 64;
pub const MAX_CAPACITY: u64 = 1 << 24;
/// Default producer wait on a full ring.
pub const DEFAULT_WAIT: Duration = Duration::from_millis(20);

/// A consumer is attached: producers write events.
pub const FLAG_CONSUMER_ATTACHED: u32 = 1;
/// The consumer wants `pthread_mutex_*` events.
pub const FLAG_MUTEX_EVENTS: u32 = 2;

/// Bytes needed for a ring of `capacity` slots.
pub fn ring_len(capacity: u64) -> usize {
    HEADER_SIZE + capacity as usize * SLOT_SIZE
}

/// `requested` rounded up to a power of two within the allowed range.
pub fn clamp_capacity(requested: u64) -> u64 {
    requested
        .clamp(MIN_CAPACITY, MAX_CAPACITY)
        .next_power_of_two()
}

mod consumer;
mod file;
pub mod gate;
mod queue;
mod record;

pub use consumer::*;
pub use file::*;
pub use queue::*;
pub use record::*;

#[cfg(test)]
mod tests;
