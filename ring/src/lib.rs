//! The shared-memory event ring between `libfrontrun_io.so` and the engine.
//!
//! Native code (libpq, a database driver, any C extension) cannot report to
//! the engine through Python, so the preload library writes one fixed-size
//! record per intercepted call into a ring that lives in a shared file
//! mapping. Every process of the tree under test, forked or exec'd, maps the
//! same file and writes into it; the engine is the single consumer and drains
//! the ring at each scheduling point.
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
//! explanations. The protocol fields (`row` to `label`) are only written for
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
//! the consumer waiting at that slot for good. So a producer records its
//! claim first (`seq` = its ticket, then `pid`, as atomic stores), and
//! publishes with a compare-exchange of the turn; a consumer waiting at an
//! unpublished slot takes it back (the same compare-exchange, to the next
//! lap's turn) and counts it in `lost` once the claimer's pid is gone, or
//! after a bound when the claim names no pid ([`Consumer`]).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memmap2::{MmapMut, MmapOptions};

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
}
pub use env::ENV_RING;

mod db;
pub use db::{
    access_code, access_of, db_records, DbAccess, DbFallback, DbScheme, DB_ACCESS_NONE,
    DB_ACCESS_READ, DB_ACCESS_WRITE, DB_COARSE, DB_HAS_ROW, DB_NAME_CUT, DB_NO_CONFLICT, DB_REPLY,
};

/// `b"FRNTRING"` as a little-endian word.
pub const MAGIC: u64 = u64::from_le_bytes(*b"FRNTRING");
/// Layout version; bump on any change to the header or the record.
/// Version 2 added the protocol fields of [`EventRecord`] and
/// [`EventKind::DbAccess`].
pub const VERSION: u32 = 2;
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

/// What happened. Stored as a byte in [`EventRecord::kind`].
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A socket connected (or started connecting) to the resource.
    Connect = 1,
    /// Data went out: send, sendto, sendmsg, write, writev.
    Write = 2,
    /// Data came in: recv, recvfrom, recvmsg, read, readv.
    Read = 3,
    /// The descriptor naming the resource was closed.
    Close = 4,
    /// The thread is about to block waiting for a peer on the resource.
    BlockEnter = 5,
    /// The thread returned from that blocking call.
    BlockLeave = 6,
    /// A mutex was acquired (lock, or a trylock that succeeded).
    MutexLock = 7,
    /// A trylock found the mutex taken.
    MutexTryFailed = 8,
    /// A mutex is about to be released.
    MutexUnlock = 9,
    /// One access to a table, row or key, from a request sent on (or the
    /// reply received from) a database connection the library understands.
    /// It replaces the `Write`/`Read` event of that call: see
    /// [`EventRecord::db`] and "Protocol events" in the module docs.
    DbAccess = 10,
}

impl EventKind {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Connect,
            2 => Self::Write,
            3 => Self::Read,
            4 => Self::Close,
            5 => Self::BlockEnter,
            6 => Self::BlockLeave,
            7 => Self::MutexLock,
            8 => Self::MutexTryFailed,
            9 => Self::MutexUnlock,
            10 => Self::DbAccess,
            _ => return None,
        })
    }
}

/// Which libc function produced the event. Stored in [`EventRecord::call`].
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    Connect = 1,
    Send = 2,
    Sendto = 3,
    Sendmsg = 4,
    Recv = 5,
    Recvfrom = 6,
    Recvmsg = 7,
    Read = 8,
    Readv = 9,
    Write = 10,
    Writev = 11,
    Close = 12,
    Poll = 13,
    Ppoll = 14,
    Select = 15,
    MutexLock = 16,
    MutexTrylock = 17,
    MutexUnlock = 18,
    /// OpenSSL's `SSL_write`/`SSL_write_ex`: plaintext on a TLS connection.
    SslWrite = 19,
    /// OpenSSL's `SSL_read`/`SSL_read_ex`.
    SslRead = 20,
}

impl Call {
    const ALL: [Call; 20] = [
        Call::Connect,
        Call::Send,
        Call::Sendto,
        Call::Sendmsg,
        Call::Recv,
        Call::Recvfrom,
        Call::Recvmsg,
        Call::Read,
        Call::Readv,
        Call::Write,
        Call::Writev,
        Call::Close,
        Call::Poll,
        Call::Ppoll,
        Call::Select,
        Call::MutexLock,
        Call::MutexTrylock,
        Call::MutexUnlock,
        Call::SslWrite,
        Call::SslRead,
    ];

    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| *c as u8 == v)
    }

    /// The libc function's name.
    pub fn name(self) -> &'static str {
        match self {
            Call::Connect => "connect",
            Call::Send => "send",
            Call::Sendto => "sendto",
            Call::Sendmsg => "sendmsg",
            Call::Recv => "recv",
            Call::Recvfrom => "recvfrom",
            Call::Recvmsg => "recvmsg",
            Call::Read => "read",
            Call::Readv => "readv",
            Call::Write => "write",
            Call::Writev => "writev",
            Call::Close => "close",
            Call::Poll => "poll",
            Call::Ppoll => "ppoll",
            Call::Select => "select",
            Call::MutexLock => "pthread_mutex_lock",
            Call::MutexTrylock => "pthread_mutex_trylock",
            Call::MutexUnlock => "pthread_mutex_unlock",
            Call::SslWrite => "SSL_write",
            Call::SslRead => "SSL_read",
        }
    }
}

/// One event as stored in a slot (after the slot's turn word).
///
/// Protocol events ([`EventKind::DbAccess`]) are described in the module
/// docs. Other resource names look like `socket:127.0.0.1:5432`, `socket:[::1]:6379`,
/// `socket:unix:/path`, `file:/abs/path` and `mutex:0x7f0123456789`. The
/// `key` of sockets and files is [`resource_key`] of the full name and means
/// the same resource in every process; a mutex key is only meaningful
/// together with `pid` (it is an address).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EventRecord {
    /// Global sequence number, assigned by the ring when the event is pushed.
    pub seq: u64,
    /// `CLOCK_MONOTONIC` in nanoseconds.
    pub time_ns: u64,
    pub pid: u32,
    /// OS thread id (`gettid`).
    pub tid: u32,
    /// An [`EventKind`].
    pub kind: u8,
    /// A [`Call`].
    pub call: u8,
    /// Bytes of `name` in use.
    pub name_len: u8,
    /// Bytes of `origin` in use.
    pub origin_len: u8,
    /// The descriptor involved, -1 for mutex events.
    pub fd: i32,
    /// The call's return value, or `-errno` when it failed.
    pub result: i64,
    /// [`resource_key`] of the full resource name.
    pub key: u64,
    /// The mutex address for mutex events, 0 otherwise.
    pub addr: u64,
    pub name: [u8; NAME_CAPACITY],
    /// File name of the shared object that made the call (mutex events).
    pub origin: [u8; ORIGIN_CAPACITY],
    /// [`EventKind::DbAccess`] only, like every field below: the digest of
    /// the row (or Redis key) when `db_flags` has [`DB_HAS_ROW`].
    pub row: u64,
    /// [`frontrun_wire::keys::coarse_key`] of the server.
    pub coarse_key: u64,
    /// [`DB_ACCESS_READ`], [`DB_ACCESS_WRITE`], or [`DB_ACCESS_NONE`] for a
    /// [`DB_NO_CONFLICT`] event (see [`access_code`]).
    pub access: u8,
    /// `DB_*` bits.
    pub db_flags: u8,
    /// 1 `sql`, 2 `redis` ([`DbScheme`]).
    pub scheme: u8,
    /// Bytes of the server part of `name` (after `<scheme>:`).
    pub server_len: u8,
    /// Bytes of the table part of `name` (after `<server>/`).
    pub table_len: u8,
    /// Bytes of `label` in use.
    pub label_len: u8,
    /// Why the request fell back to the coarse key ([`DbFallback`]), 0 if
    /// it did not.
    pub fallback: u8,
    pub _reserved: u8,
    /// The request, for explanations (`SELECT balance FROM accounts WHERE
    /// id = $1`), whitespace collapsed, cut to [`LABEL_CAPACITY`].
    pub label: [u8; LABEL_CAPACITY],
}

impl EventRecord {
    pub const EMPTY: EventRecord = EventRecord {
        seq: 0,
        time_ns: 0,
        pid: 0,
        tid: 0,
        kind: 0,
        call: 0,
        name_len: 0,
        origin_len: 0,
        fd: -1,
        result: 0,
        key: 0,
        addr: 0,
        name: [0; NAME_CAPACITY],
        origin: [0; ORIGIN_CAPACITY],
        row: 0,
        coarse_key: 0,
        access: 0,
        db_flags: 0,
        scheme: 0,
        server_len: 0,
        table_len: 0,
        label_len: 0,
        fallback: 0,
        _reserved: 0,
        label: [0; LABEL_CAPACITY],
    };

    pub fn kind(&self) -> Option<EventKind> {
        EventKind::from_u8(self.kind)
    }

    pub fn call(&self) -> Option<Call> {
        Call::from_u8(self.call)
    }

    /// The resource name as stored (possibly cut at [`NAME_CAPACITY`]).
    pub fn name_bytes(&self) -> &[u8] {
        &self.name[..usize::from(self.name_len).min(NAME_CAPACITY)]
    }

    pub fn name(&self) -> String {
        String::from_utf8_lossy(self.name_bytes()).into_owned()
    }

    pub fn origin_bytes(&self) -> &[u8] {
        &self.origin[..usize::from(self.origin_len).min(ORIGIN_CAPACITY)]
    }

    pub fn origin(&self) -> String {
        String::from_utf8_lossy(self.origin_bytes()).into_owned()
    }

    /// Store `name` (cut to [`NAME_CAPACITY`]); the caller sets `key`.
    pub fn set_name(&mut self, name: &[u8]) {
        let n = name.len().min(NAME_CAPACITY);
        self.name[..n].copy_from_slice(&name[..n]);
        self.name_len = n as u8;
    }

    pub fn set_origin(&mut self, origin: &[u8]) {
        let n = origin.len().min(ORIGIN_CAPACITY);
        self.origin[..n].copy_from_slice(&origin[..n]);
        self.origin_len = n as u8;
    }

    /// Store a request label (cut to [`LABEL_CAPACITY`]).
    pub fn set_label(&mut self, label: &[u8]) {
        let n = label.len().min(LABEL_CAPACITY);
        self.label[..n].copy_from_slice(&label[..n]);
        self.label_len = n as u8;
    }

    pub fn label(&self) -> &str {
        let b = &self.label[..usize::from(self.label_len).min(LABEL_CAPACITY)];
        std::str::from_utf8(b).unwrap_or("")
    }
}

impl std::fmt::Debug for EventRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecord")
            .field("seq", &self.seq)
            .field("pid", &self.pid)
            .field("tid", &self.tid)
            .field("kind", &self.kind())
            .field("call", &self.call().map(Call::name))
            .field("fd", &self.fd)
            .field("result", &self.result)
            .field("name", &self.name())
            .field("origin", &self.origin())
            .finish()
    }
}

/// FNV-1a over a resource name: the key under which the engine compares
/// resources, from the ring or from Python-level I/O detection alike.
pub fn resource_key(name: &[u8]) -> u64 {
    frontrun_wire::fnv1a64(name)
}

#[repr(C)]
struct Header {
    magic: u64,
    version: u32,
    slot_size: u32,
    capacity: u64,
    total_len: u64,
    creator_pid: u32,
    flags: AtomicU32,
    consumer_pid: AtomicU32,
    _pad0: [u8; 20],
    enqueue_pos: AtomicU64,
    _pad1: [u8; 56],
    dequeue_pos: AtomicU64,
    _pad2: [u8; 56],
    lost: AtomicU64,
    stalled: AtomicU32,
    _pad3: [u8; 52],
}

#[repr(C)]
struct Slot {
    /// The Vyukov turn minus the slot's index (see the module docs).
    turn: AtomicU64,
    record: EventRecord,
}

const _: () = assert!(std::mem::size_of::<Header>() == HEADER_SIZE);
const _: () = assert!(std::mem::size_of::<Slot>() == SLOT_SIZE);
const _: () = assert!(std::mem::offset_of!(Header, enqueue_pos) == 64);
const _: () = assert!(std::mem::offset_of!(Header, dequeue_pos) == 128);
const _: () = assert!(std::mem::offset_of!(Header, lost) == 192);

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

/// Why a ring could not be created, opened or attached.
#[derive(Debug)]
pub enum RingError {
    Io { path: PathBuf, error: io::Error },
    TooSmall { len: usize },
    BadMagic { found: u64 },
    BadVersion { found: u32 },
    BadLayout { reason: &'static str },
    AlreadyConsumed { pid: u32 },
}

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RingError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            RingError::TooSmall { len } => write!(
                f,
                "file is {len} bytes, too small for a frontrun ring (header alone is {HEADER_SIZE})"
            ),
            RingError::BadMagic { found } => {
                write!(f, "not a frontrun ring (magic {found:#018x})")
            }
            RingError::BadVersion { found } => write!(
                f,
                "ring layout version {found}, this build reads version {VERSION}; \
                 use the library and engine of the same frontrun build"
            ),
            RingError::BadLayout { reason } => write!(f, "corrupt ring header: {reason}"),
            RingError::AlreadyConsumed { pid } => write!(
                f,
                "the ring already has a consumer (pid {pid}); only one engine may drain it"
            ),
        }
    }
}

impl std::error::Error for RingError {}

/// Outcome of [`RingView::push`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Stored under this sequence number.
    Pushed(u64),
    /// The ring stayed full (or lost its consumer); counted in `lost`.
    Lost,
}

/// A validated ring somewhere in memory: the producer side, and the raw
/// operations the [`Consumer`] builds on. It is a plain pointer, so it is
/// `Copy` and costs nothing to rebuild from a stored base address.
#[derive(Clone, Copy, Debug)]
pub struct RingView {
    base: NonNull<u8>,
    mask: u64,
}

// SAFETY: every shared field is accessed atomically, and slot payloads are
// handed over through the turn word with release/acquire ordering.
unsafe impl Send for RingView {}
unsafe impl Sync for RingView {}

impl RingView {
    /// Write a fresh header for a ring of `capacity` slots at `base`.
    ///
    /// # Safety
    /// `base` must be 64-byte aligned, writable for `ring_len(capacity)`
    /// bytes, zero-filled (a new mapping of a truncated file is), and not yet
    /// visible to any other party.
    pub unsafe fn initialize(base: *mut u8, capacity: u64, creator_pid: u32) -> RingView {
        debug_assert!(capacity.is_power_of_two());
        let header = base as *mut Header;
        std::ptr::addr_of_mut!((*header).version).write(VERSION);
        std::ptr::addr_of_mut!((*header).slot_size).write(SLOT_SIZE as u32);
        std::ptr::addr_of_mut!((*header).capacity).write(capacity);
        std::ptr::addr_of_mut!((*header).total_len).write(ring_len(capacity) as u64);
        std::ptr::addr_of_mut!((*header).creator_pid).write(creator_pid);
        // The magic goes last: a reader that sees it sees a complete header.
        fence(Ordering::Release);
        std::ptr::addr_of_mut!((*header).magic).write(MAGIC);
        RingView {
            base: NonNull::new_unchecked(base),
            mask: capacity - 1,
        }
    }

    /// Check the header of `len` mapped bytes at `base`.
    ///
    /// # Safety
    /// `base` must point to `len` readable and writable bytes that stay
    /// mapped for as long as the returned view (or copies of it) is used.
    pub unsafe fn validate(base: *mut u8, len: usize) -> Result<RingView, RingError> {
        if len < HEADER_SIZE {
            return Err(RingError::TooSmall { len });
        }
        let header = &*(base as *const Header);
        let magic = std::ptr::read_volatile(&header.magic);
        if magic != MAGIC {
            return Err(RingError::BadMagic { found: magic });
        }
        fence(Ordering::Acquire);
        if header.version != VERSION {
            return Err(RingError::BadVersion {
                found: header.version,
            });
        }
        if header.slot_size as usize != SLOT_SIZE {
            return Err(RingError::BadLayout {
                reason: "slot size differs from this build's",
            });
        }
        let cap = header.capacity;
        if !cap.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&cap) {
            return Err(RingError::BadLayout {
                reason: "capacity is not a power of two in the allowed range",
            });
        }
        if header.total_len != ring_len(cap) as u64 || len != ring_len(cap) {
            return Err(RingError::BadLayout {
                reason: "file size does not match the capacity in the header",
            });
        }
        Ok(RingView {
            base: NonNull::new_unchecked(base),
            mask: cap - 1,
        })
    }

    /// Rebuild a view from a base address that [`RingView::validate`] or
    /// [`RingView::initialize`] accepted before.
    ///
    /// # Safety
    /// As for `validate`, and the header must have been validated.
    #[inline]
    pub unsafe fn from_validated(base: NonNull<u8>) -> RingView {
        let cap = (*(base.as_ptr() as *const Header)).capacity;
        RingView {
            base,
            mask: cap - 1,
        }
    }

    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: validated at construction.
        unsafe { &*(self.base.as_ptr() as *const Header) }
    }

    #[inline]
    fn slot(&self, pos: u64) -> *mut Slot {
        let index = (pos & self.mask) as usize;
        // SAFETY: index < capacity and the mapping holds capacity slots.
        unsafe { self.base.as_ptr().add(HEADER_SIZE + index * SLOT_SIZE) as *mut Slot }
    }

    pub fn capacity(&self) -> u64 {
        self.mask + 1
    }

    pub fn creator_pid(&self) -> u32 {
        self.header().creator_pid
    }

    #[inline]
    pub fn flags(&self) -> u32 {
        self.header().flags.load(Ordering::Relaxed)
    }

    #[inline]
    pub fn consumer_attached(&self) -> bool {
        self.flags() & FLAG_CONSUMER_ATTACHED != 0
    }

    pub fn lost(&self) -> u64 {
        self.header().lost.load(Ordering::Relaxed)
    }

    /// Sequence number the next pushed event will get.
    pub fn next_seq(&self) -> u64 {
        self.header().enqueue_pos.load(Ordering::Relaxed)
    }

    /// Store `record` under a fresh sequence number if a slot is free now.
    /// None when there is no room, and when the consumer gave up waiting
    /// for this producer's slot and took it back (see [`Consumer::pop`];
    /// the consumer counted the event as lost).
    #[inline]
    pub fn try_push(&self, record: &EventRecord) -> Option<u64> {
        match self.attempt(record) {
            Attempt::Stored(seq) => Some(seq),
            Attempt::Full | Attempt::TakenBack => None,
        }
    }

    #[inline]
    fn attempt(&self, record: &EventRecord) -> Attempt {
        let header = self.header();
        let mut pos = header.enqueue_pos.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(pos);
            let index = pos & self.mask;
            // SAFETY: slot points into the mapping; turn is atomic.
            let turn = unsafe { (*slot).turn.load(Ordering::Acquire) }.wrapping_add(index);
            let diff = turn.wrapping_sub(pos) as i64;
            if diff == 0 {
                match header.enqueue_pos.compare_exchange_weak(
                    pos,
                    pos + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the ticket gives this producer the slot
                        // until it publishes the next turn.
                        unsafe {
                            let dst = std::ptr::addr_of_mut!((*slot).record);
                            // Who holds the ticket, first: a consumer that
                            // finds the slot never published can tell
                            // whether its producer still lives.
                            claim_word_pid(dst).store(record.pid, Ordering::Relaxed);
                            claim_word_seq(dst).store(pos, Ordering::Release);
                            write_used_part(dst, record);
                            // A compare-exchange, not a store: the consumer
                            // may have taken the slot back meanwhile.
                            if (*slot)
                                .turn
                                .compare_exchange(
                                    pos.wrapping_sub(index),
                                    (pos + 1).wrapping_sub(index),
                                    Ordering::Release,
                                    Ordering::Relaxed,
                                )
                                .is_err()
                            {
                                return Attempt::TakenBack;
                            }
                        }
                        return Attempt::Stored(pos);
                    }
                    Err(current) => pos = current,
                }
            } else if diff < 0 {
                return Attempt::Full;
            } else {
                pos = header.enqueue_pos.load(Ordering::Relaxed);
            }
        }
    }

    /// Store `record`, waiting at most `max_wait` for room. An event that
    /// finds no room in time is counted in the header's `lost` counter, and
    /// until the consumer next takes an event, later producers do not wait
    /// (so a ring without a draining consumer costs one wait, not one per
    /// event). Waiting also stops when the consumer detaches.
    pub fn push(&self, record: &EventRecord, max_wait: Duration) -> PushOutcome {
        match self.attempt(record) {
            Attempt::Stored(seq) => return PushOutcome::Pushed(seq),
            // Already counted by the consumer.
            Attempt::TakenBack => return PushOutcome::Lost,
            Attempt::Full => {}
        }
        let header = self.header();
        if header.stalled.load(Ordering::Relaxed) == 0 && !max_wait.is_zero() {
            let deadline = Instant::now() + max_wait;
            let mut spins = 0u32;
            loop {
                if spins < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
                spins = spins.saturating_add(1);
                match self.attempt(record) {
                    Attempt::Stored(seq) => return PushOutcome::Pushed(seq),
                    Attempt::TakenBack => return PushOutcome::Lost,
                    Attempt::Full => {}
                }
                if !self.consumer_attached()
                    || header.stalled.load(Ordering::Relaxed) != 0
                    || Instant::now() >= deadline
                {
                    break;
                }
            }
            header.stalled.store(1, Ordering::Relaxed);
        }
        header.lost.fetch_add(1, Ordering::Relaxed);
        PushOutcome::Lost
    }

    /// Take the oldest published record. Only one party may call this at a
    /// time (the ring is single-consumer); [`Consumer`] guarantees it.
    fn pop(&self) -> Option<EventRecord> {
        let header = self.header();
        let pos = header.dequeue_pos.load(Ordering::Relaxed);
        let slot = self.slot(pos);
        let index = pos & self.mask;
        // SAFETY: slot points into the mapping; turn is atomic.
        let turn = unsafe { (*slot).turn.load(Ordering::Acquire) }.wrapping_add(index);
        if turn != pos + 1 {
            return None;
        }
        // SAFETY: the turn says the record is published and not reused
        // until this consumer hands the slot back below.
        let record = unsafe { std::ptr::addr_of!((*slot).record).read() };
        unsafe {
            (*slot)
                .turn
                .store((pos + self.mask + 1).wrapping_sub(index), Ordering::Release);
        }
        header.dequeue_pos.store(pos + 1, Ordering::Release);
        if header.stalled.load(Ordering::Relaxed) != 0 {
            header.stalled.store(0, Ordering::Relaxed);
        }
        Some(record)
    }

    /// When the oldest slot is claimed (its ticket handed out) but not yet
    /// published: its sequence number and, when the producer got as far as
    /// recording it, the producer's pid. Consumer side only.
    fn unpublished_claim(&self) -> Option<(u64, Option<u32>)> {
        let header = self.header();
        let pos = header.dequeue_pos.load(Ordering::Relaxed);
        if header.enqueue_pos.load(Ordering::Acquire) <= pos {
            return None;
        }
        let slot = self.slot(pos);
        let index = pos & self.mask;
        // SAFETY: slot points into the mapping; the claim words are atomic.
        unsafe {
            let turn = (*slot).turn.load(Ordering::Acquire).wrapping_add(index);
            if turn != pos {
                return None;
            }
            let record = std::ptr::addr_of_mut!((*slot).record);
            let claimer = (claim_word_seq(record).load(Ordering::Acquire) == pos)
                .then(|| claim_word_pid(record).load(Ordering::Relaxed))
                .filter(|&pid| pid != 0);
            Some((pos, claimer))
        }
    }

    /// Give up on the unpublished slot `pos`: hand it to the next lap as a
    /// pop would, and count its event as lost. False when its producer
    /// published it after all (then it is popped as usual).
    fn take_back(&self, pos: u64) -> bool {
        let header = self.header();
        let slot = self.slot(pos);
        let index = pos & self.mask;
        // SAFETY: slot points into the mapping; turn is atomic.
        let taken = unsafe {
            (*slot).turn.compare_exchange(
                pos.wrapping_sub(index),
                (pos + self.mask + 1).wrapping_sub(index),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
        };
        if taken.is_err() {
            return false;
        }
        header.dequeue_pos.store(pos + 1, Ordering::Release);
        header.lost.fetch_add(1, Ordering::Relaxed);
        if header.stalled.load(Ordering::Relaxed) != 0 {
            header.stalled.store(0, Ordering::Relaxed);
        }
        true
    }
}

/// Copy the fixed fields and the used bytes of the name and origin (and,
/// for a protocol event, its fields and the used bytes of its label): the
/// rest of the slot keeps whatever an earlier event left there, which the
/// lengths make invisible. Copying less moves fewer cache lines from the
/// consumer's core to the producer's.
///
/// # Safety
/// `dst` must be a slot record this producer owns.
#[inline(always)]
unsafe fn write_used_part(dst: *mut EventRecord, record: &EventRecord) {
    // `seq` and `pid` are the claim, stored atomically before this.
    const TIME: usize = std::mem::offset_of!(EventRecord, time_ns);
    const PID: usize = std::mem::offset_of!(EventRecord, pid);
    const TID: usize = std::mem::offset_of!(EventRecord, tid);
    const FIXED: usize = std::mem::offset_of!(EventRecord, name);
    const ORIGIN: usize = std::mem::offset_of!(EventRecord, origin);
    let src = record as *const EventRecord as *const u8;
    let dst = dst as *mut u8;
    std::ptr::copy_nonoverlapping(src.add(TIME), dst.add(TIME), PID - TIME);
    std::ptr::copy_nonoverlapping(src.add(TID), dst.add(TID), FIXED - TID);
    let name = usize::from(record.name_len).min(NAME_CAPACITY);
    std::ptr::copy_nonoverlapping(src.add(FIXED), dst.add(FIXED), name);
    let origin = usize::from(record.origin_len).min(ORIGIN_CAPACITY);
    std::ptr::copy_nonoverlapping(src.add(ORIGIN), dst.add(ORIGIN), origin);
    if record.kind == EventKind::DbAccess as u8 {
        const DB: usize = std::mem::offset_of!(EventRecord, row);
        const LABEL: usize = std::mem::offset_of!(EventRecord, label);
        std::ptr::copy_nonoverlapping(src.add(DB), dst.add(DB), LABEL - DB);
        let label = usize::from(record.label_len).min(LABEL_CAPACITY);
        std::ptr::copy_nonoverlapping(src.add(LABEL), dst.add(LABEL), label);
    }
}

const _: () = assert!(std::mem::offset_of!(EventRecord, seq) == 0);
const _: () = assert!(std::mem::offset_of!(EventRecord, pid) == 16);

/// The `seq` field of a slot's record as the atomic word of the claim.
///
/// # Safety
/// `record` must point to a slot's record in the mapping (8-byte aligned:
/// slots are multiples of 8 bytes after a 256-byte header).
#[inline(always)]
unsafe fn claim_word_seq<'a>(record: *mut EventRecord) -> &'a AtomicU64 {
    AtomicU64::from_ptr(std::ptr::addr_of_mut!((*record).seq))
}

/// The `pid` field of a slot's record as an atomic word.
///
/// # Safety
/// As for [`claim_word_seq`].
#[inline(always)]
unsafe fn claim_word_pid<'a>(record: *mut EventRecord) -> &'a AtomicU32 {
    AtomicU32::from_ptr(std::ptr::addr_of_mut!((*record).pid))
}

/// What one attempt to store an event came to.
enum Attempt {
    Stored(u64),
    Full,
    /// The ticket was taken, but the consumer gave up waiting for the slot
    /// and took it back before the record was published.
    TakenBack,
}

/// Whether process `pid` is still running (a zombie is not: its threads
/// are gone). Read from `/proc`; when that cannot be read, assume it runs.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state is the field after the command name, which is in
            // parentheses and may itself contain ") ".
            let after = stat.iter().rposition(|&b| b == b')').map_or(0, |i| i + 2);
            !matches!(stat.get(after), Some(b'Z' | b'X'))
        }
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

/// Where [`create_private_ring`] puts its directories: `/dev/shm` when it
/// exists, else the temporary directory.
pub fn ring_parent_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Create a private directory (0700) holding a new ring file (0600) of
/// `capacity` slots, under `/dev/shm` when it exists, else the temporary
/// directory. Returns the file's path; the caller maps it.
pub fn create_private_ring(capacity: u64) -> Result<PathBuf, RingError> {
    let parent = ring_parent_dir();
    let pid = std::process::id();
    let mut attempt = 0u32;
    let dir = loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = parent.join(format!("frontrun-{pid}-{nanos:08x}{attempt}"));
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => break dir,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(error) => return Err(RingError::Io { path: dir, error }),
        }
    };
    let path = dir.join("ring");
    create_ring_file(&path, capacity)?;
    Ok(path)
}

/// Create a new ring file at `path` (which must not exist), 0600.
pub fn create_ring_file(path: &Path, capacity: u64) -> Result<(), RingError> {
    let capacity = clamp_capacity(capacity);
    let io_err = |error| RingError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err)?;
    file.set_len(ring_len(capacity) as u64).map_err(io_err)?;
    // SAFETY: a file this function just created; nobody else maps it yet.
    let map = unsafe { MmapOptions::new().map_mut(&file) }.map_err(io_err)?;
    unsafe { RingView::initialize(map.as_ptr() as *mut u8, capacity, std::process::id()) };
    Ok(())
}

/// Open an existing ring file and map it, validating the header. The
/// mapping is returned with the view; keep it alive while the view is used.
pub fn map_ring_file(path: &Path) -> Result<(MmapMut, RingView), RingError> {
    let io_err = |error| RingError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err)?;
    // SAFETY: the ring is shared memory by design; every access to it goes
    // through atomics or the turn protocol.
    let map = unsafe { MmapOptions::new().map_mut(&file) }.map_err(io_err)?;
    let view = unsafe { RingView::validate(map.as_ptr() as *mut u8, map.len()) }?;
    Ok((map, view))
}

/// Options for [`Consumer::open`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ConsumerOptions {
    /// Ask producers for `pthread_mutex_*` events.
    pub mutex_events: bool,
}

/// How long the consumer waits at a claimed but unpublished slot before it
/// looks at the claimer (publishing takes a producer a few stores).
pub const CLAIM_CHECK_AFTER: Duration = Duration::from_millis(5);
/// How long the consumer waits at such a slot at most, when it cannot tell
/// that the claimer died (the producer was killed before recording its pid,
/// or its process lives on without the thread, as after `exec`).
pub const CLAIM_GIVE_UP_AFTER: Duration = Duration::from_secs(2);

/// The engine's end of the ring: the only party that takes events out.
///
/// A producer killed (`SIGKILL`, a crash) between taking its ticket and
/// publishing its slot would leave the consumer waiting at that slot for
/// good, and every later event would pile up behind it until the ring
/// filled. So the consumer takes such a slot back and counts its event as
/// lost: at once when the pid the producer recorded in it is gone (or a
/// zombie), after [`CLAIM_GIVE_UP_AFTER`] when it cannot tell. A producer
/// that was only paused that long finds its slot taken back when it
/// publishes and drops its event (already counted); should the ring have
/// gone a full lap meanwhile, its late copy can tear the newer record in
/// that slot.
pub struct Consumer {
    _map: MmapMut,
    view: RingView,
    taken_back: u64,
    /// The ring file's device and inode: which ring this is, whatever
    /// address it is mapped at.
    ring_id: RingId,
    /// This ring may have an entry in [`STUCK`].
    may_be_stuck: bool,
}

/// The unpublished slot the consumers of this process wait at, per ring
/// (its file's device and inode): the slot's sequence number and since
/// when. Kept
/// for the process rather than per [`Consumer`]: explorations attach and
/// detach their consumer many times, and the wait must add up across them.
static STUCK: std::sync::Mutex<Vec<(RingId, u64, Instant)>> = std::sync::Mutex::new(Vec::new());

/// A ring file's device and inode.
type RingId = (u64, u64);

/// When a consumer of ring `base` first found slot `pos` unpublished
/// (None the first time); `pos` None forgets the ring's entry.
fn stuck_since(base: RingId, pos: Option<u64>) -> Option<Instant> {
    let mut stuck = STUCK.lock().unwrap_or_else(|p| p.into_inner());
    let entry = stuck.iter().position(|&(b, _, _)| b == base);
    match (pos, entry) {
        (None, Some(i)) => {
            stuck.swap_remove(i);
            None
        }
        (None, None) => None,
        (Some(pos), Some(i)) if stuck[i].1 == pos => Some(stuck[i].2),
        (Some(pos), Some(i)) => {
            stuck[i] = (base, pos, Instant::now());
            None
        }
        (Some(pos), None) => {
            stuck.push((base, pos, Instant::now()));
            None
        }
    }
}

impl Consumer {
    /// Map the ring at `path` and attach to it as its consumer.
    pub fn open(path: &Path, options: ConsumerOptions) -> Result<Consumer, RingError> {
        let (map, view) = map_ring_file(path)?;
        let header = view.header();
        let pid = std::process::id();
        if header
            .consumer_pid
            .compare_exchange(0, pid, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(RingError::AlreadyConsumed {
                pid: header.consumer_pid.load(Ordering::Relaxed),
            });
        }
        let mut set = FLAG_CONSUMER_ATTACHED;
        if options.mutex_events {
            set |= FLAG_MUTEX_EVENTS;
        }
        header.flags.fetch_or(set, Ordering::Release);
        let ring_id = std::fs::metadata(path)
            .map(|m| {
                use std::os::unix::fs::MetadataExt;
                (m.dev(), m.ino())
            })
            .unwrap_or((0, view.base().as_ptr() as u64));
        Ok(Consumer {
            _map: map,
            view,
            taken_back: 0,
            ring_id,
            may_be_stuck: true,
        })
    }

    pub fn view(&self) -> RingView {
        self.view
    }

    pub fn capacity(&self) -> u64 {
        self.view.capacity()
    }

    /// Turn mutex events on or off for every producer.
    pub fn set_mutex_events(&self, on: bool) {
        let flags = &self.view.header().flags;
        if on {
            flags.fetch_or(FLAG_MUTEX_EVENTS, Ordering::Release);
        } else {
            flags.fetch_and(!FLAG_MUTEX_EVENTS, Ordering::Release);
        }
    }

    /// Events dropped so far because the ring stayed full. Report it: a
    /// non-zero count means the engine saw an incomplete history.
    pub fn lost(&self) -> u64 {
        self.view.lost()
    }

    /// Slots taken back from producers that never published them (see
    /// the type's docs); each is also counted in [`Consumer::lost`].
    pub fn taken_back(&self) -> u64 {
        self.taken_back
    }

    /// Take the oldest event, if one is published; first takes back the
    /// oldest slot when its producer died before publishing it.
    pub fn pop(&mut self) -> Option<EventRecord> {
        loop {
            if let Some(record) = self.view.pop() {
                return Some(record);
            }
            if !self.take_back_dead_claim() {
                return None;
            }
        }
    }

    /// True when the oldest slot was taken back.
    fn take_back_dead_claim(&mut self) -> bool {
        let base = self.ring_id;
        let Some((pos, claimer)) = self.view.unpublished_claim() else {
            if self.may_be_stuck {
                stuck_since(base, None);
                self.may_be_stuck = false;
            }
            return false;
        };
        self.may_be_stuck = true;
        let Some(since) = stuck_since(base, Some(pos)) else {
            return false;
        };
        let waited = since.elapsed();
        if waited < CLAIM_CHECK_AFTER {
            return false;
        }
        let dead = claimer.is_some_and(|pid| !process_alive(pid));
        if !dead && waited < CLAIM_GIVE_UP_AFTER {
            return false;
        }
        if !self.view.take_back(pos) {
            return false;
        }
        stuck_since(base, None);
        self.taken_back += 1;
        true
    }

    /// Take every event published so far, oldest first; returns how many.
    pub fn drain(&mut self, mut each: impl FnMut(&EventRecord)) -> usize {
        let mut n = 0;
        while let Some(record) = self.pop() {
            each(&record);
            n += 1;
        }
        n
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let header = self.view.header();
        // A copy made by fork is not the consumer: the parent still is.
        if header.consumer_pid.load(Ordering::Acquire) != std::process::id() {
            return;
        }
        header.flags.fetch_and(
            !(FLAG_CONSUMER_ATTACHED | FLAG_MUTEX_EVENTS),
            Ordering::Release,
        );
        header.consumer_pid.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontrun_wire::keys::{engine_accesses, Resource, Scheme};
    use frontrun_wire::AccessKind;

    fn temp_ring(capacity: u64) -> (PathBuf, Consumer) {
        let path = create_private_ring(capacity).expect("create ring");
        let consumer = Consumer::open(&path, ConsumerOptions::default()).expect("attach");
        (path, consumer)
    }

    fn remove(path: &Path) {
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_dir(path.parent().unwrap());
    }

    fn record(tag: u64) -> EventRecord {
        let mut r = EventRecord::EMPTY;
        r.kind = EventKind::Write as u8;
        r.addr = tag;
        r
    }

    #[test]
    fn events_come_out_in_push_order_with_consecutive_sequence_numbers() {
        let (path, mut consumer) = temp_ring(64);
        let (_map, producer) = map_ring_file(&path).unwrap();
        for round in 0..5u64 {
            for i in 0..50 {
                assert!(producer.try_push(&record(round * 100 + i)).is_some());
            }
            let mut got = Vec::new();
            consumer.drain(|r| got.push((r.seq, r.addr)));
            let want: Vec<_> = (0..50).map(|i| (round * 50 + i, round * 100 + i)).collect();
            assert_eq!(got, want);
        }
        remove(&path);
    }

    #[test]
    fn full_ring_counts_lost_events_and_stops_waiting() {
        let (path, mut consumer) = temp_ring(64);
        let (_map, producer) = map_ring_file(&path).unwrap();
        let wait = Duration::from_millis(5);
        for i in 0..64 {
            assert_eq!(producer.push(&record(i), wait), PushOutcome::Pushed(i));
        }
        let started = Instant::now();
        for i in 0..1000 {
            assert_eq!(producer.push(&record(i), wait), PushOutcome::Lost);
        }
        // One wait for the first lost event, none for the rest.
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(consumer.lost(), 1000);
        assert_eq!(consumer.drain(|_| {}), 64);
        // Room again: producers store and wait again.
        assert_eq!(producer.push(&record(7), wait), PushOutcome::Pushed(64));
        remove(&path);
    }

    #[test]
    fn bad_files_are_rejected_with_a_reason() {
        let dir = std::env::temp_dir().join(format!("frontrun-ring-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let short = dir.join("short");
        std::fs::write(&short, [0u8; 16]).unwrap();
        assert!(matches!(
            map_ring_file(&short),
            Err(RingError::TooSmall { len: 16 })
        ));
        let wrong = dir.join("wrong");
        std::fs::write(&wrong, vec![0xabu8; ring_len(64)]).unwrap();
        assert!(matches!(
            map_ring_file(&wrong),
            Err(RingError::BadMagic { .. })
        ));
        let ring = dir.join("ring");
        create_ring_file(&ring, 64).unwrap();
        let file = OpenOptions::new().write(true).open(&ring).unwrap();
        file.set_len(ring_len(64) as u64 + 8).unwrap();
        assert!(matches!(
            map_ring_file(&ring),
            Err(RingError::BadLayout { .. })
        ));
        assert!(matches!(
            map_ring_file(&dir.join("missing")),
            Err(RingError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn second_consumer_is_refused_until_the_first_detaches() {
        let (path, first) = temp_ring(64);
        assert!(first.view().consumer_attached());
        assert!(matches!(
            Consumer::open(&path, ConsumerOptions::default()),
            Err(RingError::AlreadyConsumed { .. })
        ));
        drop(first);
        let (_map, view) = map_ring_file(&path).unwrap();
        assert!(!view.consumer_attached());
        let second = Consumer::open(&path, ConsumerOptions { mutex_events: true }).unwrap();
        assert_eq!(view.flags(), FLAG_CONSUMER_ATTACHED | FLAG_MUTEX_EVENTS);
        drop(second);
        remove(&path);
    }

    #[test]
    fn concurrent_producers_get_unique_gapless_sequence_numbers() {
        let (path, mut consumer) = temp_ring(1024);
        const THREADS: u64 = 4;
        const PER_THREAD: u64 = 50_000;
        let producers: Vec<_> = (0..THREADS)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let (_map, view) = map_ring_file(&path).unwrap();
                    for i in 0..PER_THREAD {
                        let outcome = view.push(&record(t << 32 | i), Duration::from_secs(10));
                        assert!(matches!(outcome, PushOutcome::Pushed(_)));
                    }
                })
            })
            .collect();
        let mut next_per_thread = vec![0u64; THREADS as usize];
        let mut expected_seq = 0u64;
        while expected_seq < THREADS * PER_THREAD {
            consumer.drain(|r| {
                assert_eq!(r.seq, expected_seq);
                expected_seq += 1;
                let t = (r.addr >> 32) as usize;
                assert_eq!(r.addr & 0xffff_ffff, next_per_thread[t]);
                next_per_thread[t] += 1;
            });
            std::hint::spin_loop();
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(consumer.lost(), 0);
        remove(&path);
    }

    /// What a producer killed after taking its ticket leaves behind: the
    /// ticket taken and, when `pid` is given, the claim recorded, but the
    /// slot never published.
    fn claim_and_die(view: &RingView, pid: Option<u32>) -> u64 {
        let header = view.header();
        let pos = header.enqueue_pos.fetch_add(1, Ordering::Relaxed);
        if let Some(pid) = pid {
            let slot = view.slot(pos);
            unsafe {
                let record = std::ptr::addr_of_mut!((*slot).record);
                claim_word_pid(record).store(pid, Ordering::Relaxed);
                claim_word_seq(record).store(pos, Ordering::Release);
            }
        }
        pos
    }

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn a_slot_claimed_by_a_dead_process_is_taken_back_and_counted_as_lost() {
        let (path, mut consumer) = temp_ring(64);
        let (_map, producer) = map_ring_file(&path).unwrap();
        for i in 0..2 {
            assert!(producer.try_push(&record(i)).is_some());
        }
        let dead = claim_and_die(&producer, Some(dead_pid()));
        for i in 10..13 {
            assert!(producer.try_push(&record(i)).is_some());
        }
        let mut got = Vec::new();
        consumer.drain(|r| got.push((r.seq, r.addr)));
        assert_eq!(
            got,
            vec![(0, 0), (1, 1)],
            "the published events before the claim"
        );
        std::thread::sleep(CLAIM_CHECK_AFTER + Duration::from_millis(2));
        consumer.drain(|r| got.push((r.seq, r.addr)));
        assert_eq!(got[2..], [(dead + 1, 10), (dead + 2, 11), (dead + 3, 12)]);
        assert_eq!((consumer.lost(), consumer.taken_back()), (1, 1));
        // The slot serves the next lap as usual.
        for i in 0..200 {
            assert!(producer.try_push(&record(i)).is_some());
            assert_eq!(consumer.pop().map(|r| r.addr), Some(i));
        }
        assert_eq!(consumer.lost(), 1);
        remove(&path);
    }

    #[test]
    fn a_slot_claimed_by_a_live_producer_is_waited_for_up_to_the_bound() {
        let (path, mut consumer) = temp_ring(64);
        let (_map, producer) = map_ring_file(&path).unwrap();
        claim_and_die(&producer, Some(std::process::id()));
        claim_and_die(&producer, None);
        assert!(producer.try_push(&record(7)).is_some());
        let started = Instant::now();
        let mut got = Vec::new();
        while got.is_empty() {
            consumer.drain(|r| got.push(r.addr));
            assert!(
                started.elapsed() < CLAIM_GIVE_UP_AFTER * 3,
                "never taken back"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // Both slots (the live claimer's and the one naming no pid) were
        // waited for, for the bound each at most once in a row.
        assert!(started.elapsed() >= CLAIM_GIVE_UP_AFTER);
        assert_eq!(got, vec![7]);
        assert_eq!((consumer.lost(), consumer.taken_back()), (2, 2));
        remove(&path);
    }

    #[test]
    fn a_producer_whose_slot_was_taken_back_drops_its_event_without_counting_it_again() {
        let (path, consumer) = temp_ring(64);
        let (_map, producer) = map_ring_file(&path).unwrap();
        // The consumer takes slot 0 back before its producer publishes.
        let pos = claim_and_die(&producer, Some(std::process::id()));
        assert!(consumer.view().take_back(pos));
        let index = pos & producer.mask;
        let slot = producer.slot(pos);
        let published = unsafe {
            (*slot).turn.compare_exchange(
                pos.wrapping_sub(index),
                (pos + 1).wrapping_sub(index),
                Ordering::Release,
                Ordering::Relaxed,
            )
        };
        assert!(published.is_err(), "the late publish must fail");
        assert_eq!(consumer.lost(), 1);
        remove(&path);
    }

    fn written(r: &EventRecord, thread: usize) -> Vec<u64> {
        let mut keys = Vec::new();
        r.db().unwrap().engine_accesses_by(thread, |a| {
            if a.kind == AccessKind::Write {
                keys.push(a.key)
            }
        });
        keys
    }

    #[test]
    fn row_writes_of_two_threads_never_meet_in_a_bucket_whatever_their_digests() {
        use frontrun_wire::keys::bucket_of;
        use frontrun_wire::sql::COMMITS_TABLE;
        // Two digests in the same bucket: as two rows (or two commits)
        // whose names happen to hash alike.
        let first = 0x1234_5678_9abc_def0;
        let second = (first + 1..)
            .find(|&d| bucket_of(d) == bucket_of(first))
            .unwrap();
        for table in [b"accounts".as_slice(), COMMITS_TABLE] {
            let a = db_record(table, Some(first), AccessKind::Write, false);
            let b = db_record(table, Some(second), AccessKind::Write, false);
            let mut plain = (Vec::new(), Vec::new());
            a.db().unwrap().engine_accesses(|x| {
                if x.kind == AccessKind::Write {
                    plain.0.push(x.key)
                }
            });
            b.db().unwrap().engine_accesses(|x| {
                if x.kind == AccessKind::Write {
                    plain.1.push(x.key)
                }
            });
            assert!(
                plain.0.iter().any(|k| plain.1.contains(k)),
                "the digests' buckets collide"
            );
            let (wa, wb) = (written(&a, 0), written(&b, 1));
            assert!(wa.iter().all(|k| !wb.contains(k)), "{wa:x?} {wb:x?}");
            // The same row still conflicts across threads.
            let again = written(&a, 1);
            assert!(wa.iter().any(|k| again.contains(k)));
            // A whole-table read meets both writes; a read of another row
            // meets neither.
            let whole = db_record(table, None, AccessKind::Read, false);
            let other = db_record(table, Some(first ^ 1), AccessKind::Read, false);
            let (mut read_all, mut read_other) = (Vec::new(), Vec::new());
            whole
                .db()
                .unwrap()
                .engine_accesses_by(2, |x| read_all.push(x.key));
            other
                .db()
                .unwrap()
                .engine_accesses_by(2, |x| read_other.push(x.key));
            assert!(
                wa.iter().any(|k| read_all.contains(k)) && wb.iter().any(|k| read_all.contains(k))
            );
            assert!(wa.iter().chain(&wb).all(|k| !read_other.contains(k)));
            // Cut names give the same keys.
            let cut = db_record(table, Some(first), AccessKind::Write, true);
            assert_eq!(written(&cut, 0), wa);
        }
    }

    #[test]
    fn resource_key_is_fnv1a() {
        assert_eq!(resource_key(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(resource_key(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(
            resource_key(b"socket:127.0.0.1:5432"),
            resource_key(b"socket:127.0.0.1:5433")
        );
    }

    fn db_record(table: &[u8], row: Option<u64>, kind: AccessKind, cut: bool) -> EventRecord {
        use frontrun_wire::keys::{coarse_key, table_key};
        let server = "localhost:5432";
        let mut r = EventRecord::EMPTY;
        r.kind = EventKind::DbAccess as u8;
        let mut name = b"sql:localhost:5432/".to_vec();
        name.extend_from_slice(table);
        r.set_name(&name);
        r.key = table_key(Scheme::Sql, server, table);
        r.coarse_key = coarse_key(server);
        r.scheme = DbScheme::Sql as u8;
        r.server_len = server.len() as u8;
        r.table_len = table.len() as u8;
        r.access = access_code(kind);
        r.db_flags = if cut { DB_NAME_CUT } else { 0 };
        if let Some(d) = row {
            r.row = d;
            r.db_flags |= DB_HAS_ROW;
        }
        r
    }

    #[test]
    fn db_event_keys_are_the_wire_keys_with_or_without_the_name() {
        for row in [None, Some(0x1234_5678_9abc_def0)] {
            for kind in [AccessKind::Read, AccessKind::Write] {
                let mut expected = Vec::new();
                let res = Resource {
                    scheme: Scheme::Sql,
                    server: "localhost:5432",
                    table: b"accounts",
                    row,
                };
                engine_accesses(res, kind, |a| expected.push(a));
                for cut in [false, true] {
                    let r = db_record(b"accounts", row, kind, cut);
                    let db = r.db().unwrap();
                    if !cut {
                        assert_eq!(db.server, "localhost:5432");
                        assert_eq!(db.table, b"accounts");
                    }
                    let mut got = Vec::new();
                    let n = db.engine_accesses(|a| got.push(a));
                    assert_eq!(n, got.len());
                    assert_eq!(got, expected, "row {row:?} {kind:?} cut {cut}");
                }
            }
        }
    }
}
