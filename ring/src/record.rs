//! The record format: one fixed-size [`EventRecord`] per intercepted call,
//! what happened ([`EventKind`]) and which libc function did it ([`Call`]).
//! The protocol fields of database events are in `db.rs`.

use crate::{LABEL_CAPACITY, NAME_CAPACITY, ORIGIN_CAPACITY};

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
    /// The process started: forked (`name` empty) or loaded by an `exec`
    /// of a process that was attached (`name` its command, `argv[0]`'s
    /// last component). `addr` holds the parent's pid, so that a
    /// consumer can tell whose descendant each process is.
    Process = 11,
    /// Native code is starting a thread (`pthread_create`, from outside
    /// the interpreter): `addr` is the thread's number in this process,
    /// `result` the caller's return address, `origin` its object. Sent by
    /// the creating thread before the thread exists.
    ThreadStart = 12,
    /// The first event of a thread started that way (`addr`: its number),
    /// from the new thread, so that a consumer learns its id.
    ThreadBegin = 13,
    /// That thread's start routine returned (`addr`: its number). A thread
    /// that calls `pthread_exit` sends none.
    ThreadEnd = 14,
    /// A `pthread_join` of that thread returned (`addr`: its number), or
    /// its `pthread_create` failed; sent by the joining thread.
    ThreadJoin = 15,
}

impl EventKind {
    /// Whether the event tells who started a process or thread, rather
    /// than touching a resource.
    pub fn is_lineage(self) -> bool {
        matches!(
            self,
            Self::Process
                | Self::ThreadStart
                | Self::ThreadBegin
                | Self::ThreadEnd
                | Self::ThreadJoin
        )
    }

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
            11 => Self::Process,
            12 => Self::ThreadStart,
            13 => Self::ThreadBegin,
            14 => Self::ThreadEnd,
            15 => Self::ThreadJoin,
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
    /// the row (or Redis key) when `db_flags` has [`DB_HAS_ROW`](crate::DB_HAS_ROW).
    pub row: u64,
    /// [`frontrun_wire::keys::coarse_key`] of the server.
    pub coarse_key: u64,
    /// [`DB_ACCESS_READ`](crate::DB_ACCESS_READ), [`DB_ACCESS_WRITE`](crate::DB_ACCESS_WRITE), or [`DB_ACCESS_NONE`](crate::DB_ACCESS_NONE) for a
    /// [`DB_NO_CONFLICT`](crate::DB_NO_CONFLICT) event (see [`access_code`](crate::access_code)).
    pub access: u8,
    /// `DB_*` bits.
    pub db_flags: u8,
    /// 1 `sql`, 2 `redis` ([`DbScheme`](crate::DbScheme)).
    pub scheme: u8,
    /// Bytes of the server part of `name` (after `<scheme>:`).
    pub server_len: u8,
    /// Bytes of the table part of `name` (after `<server>/`).
    pub table_len: u8,
    /// Bytes of `label` in use.
    pub label_len: u8,
    /// Why the request fell back to the coarse key ([`DbFallback`](crate::DbFallback)), 0 if
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
