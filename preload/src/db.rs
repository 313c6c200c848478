//! Database connections: which sockets speak a wire protocol the engine
//! understands, and the per-connection classifier state. The events a
//! `send` or `recv` on such a socket becomes are encoded by
//! `frontrun_ring::db_records`, beside their decoder.
//!
//! A socket is a database connection when `connect` names a well-known port
//! (5432 PostgreSQL, 3306 MySQL/MariaDB, 6379 Redis), a port listed in
//! `FRONTRUN_PROTOCOLS`, or a Unix socket whose file is `.s.PGSQL.<port>`,
//! `mysqld.sock`/`mysql.sock` or `redis.sock`/`redis-server.sock`.
//!
//! # State pool
//!
//! The classifier states are large (about 11.5 KiB for PostgreSQL), so they
//! are not in the descriptor table: a fixed pool of [`POOL_SLOTS`] states,
//! in zero-initialised static memory (untouched pages cost nothing), is
//! claimed at `connect` with a compare-and-swap and given back at `close`.
//! A hook uses a state only after moving its word from idle to in-use, after
//! the real call returned (so a call blocked in the kernel holds nothing);
//! when that fails (another thread is classifying bytes of the same
//! descriptor right now) or when the pool was exhausted at `connect`, the
//! call is reported on the coarse key, never waited for. Bytes not fed to
//! a state can cost it its framing; it then answers `Desynced`, which is
//! the coarse key again. Each slot word carries a generation, bumped per
//! claim, which the descriptor's entry repeats: a hook holding a stale entry
//! (the descriptor was closed and the slot reused meanwhile) fails its
//! compare-and-swap instead of feeding another connection's state.
//!
//! # Not covered
//!
//! Descriptors numbered [`TABLE_SIZE`] or more, descriptors made by `dup`
//! or inherited across `exec`, and connections made before the
//! library was attached have no entry: their traffic gives plain
//! `Write`/`Read` events on the socket's own name, as before.
//!
//! A `vfork` child shares this memory with its parent and, through
//! `subprocess`, closes every inherited descriptor: closes from a process
//! other than the one that connected leave the entries alone.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::atomic::{AtomicU32, Ordering};

use frontrun_ring::DbScheme;
use frontrun_wire::keys::{server_name, unix_server_name};
use frontrun_wire::mysql::MysqlConn;
use frontrun_wire::pg::PgConn;
use frontrun_wire::resp::RespConn;
use frontrun_wire::{Classification, Fallback, InlineStr, WireConn};
use libc::c_int;

use crate::names::TABLE_SIZE;

/// Connections that can have a protocol state at the same time.
pub const POOL_SLOTS: usize = 128;
const _: () = assert!(POOL_SLOTS < 256);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Protocol {
    Postgres = 1,
    Mysql = 2,
    Redis = 3,
}

impl Protocol {
    fn from_u32(v: u32) -> Option<Protocol> {
        match v {
            1 => Some(Protocol::Postgres),
            2 => Some(Protocol::Mysql),
            3 => Some(Protocol::Redis),
            _ => None,
        }
    }

    pub fn scheme(self) -> DbScheme {
        match self {
            Protocol::Redis => DbScheme::Redis,
            _ => DbScheme::Sql,
        }
    }
}

// ---------------------------------------------------------------------------
// Which ports speak which protocol.

/// `FRONTRUN_PROTOCOLS` entries: `port << 8 | protocol` (0 = none), 0 when
/// unused. Written once at initialisation.
const OVERRIDES: usize = 16;
static PORT_OVERRIDES: [AtomicU32; OVERRIDES] = [const { AtomicU32::new(0) }; OVERRIDES];

/// Parse `FRONTRUN_PROTOCOLS` (initialisation only; may allocate). Returns
/// the entries it could not understand.
pub fn configure(spec: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let mut n = 0;
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let parsed = item.split_once('=').and_then(|(port, proto)| {
            // Port 0 is no server's; it would also read as the end of the list.
            let port = port.trim().parse::<u16>().ok().filter(|&p| p != 0)?;
            let proto = match proto.trim() {
                "pg" | "postgres" | "postgresql" => Protocol::Postgres as u32,
                "mysql" | "mariadb" => Protocol::Mysql as u32,
                "redis" => Protocol::Redis as u32,
                "none" => 0,
                _ => return None,
            };
            Some(u32::from(port) << 8 | proto)
        });
        match parsed {
            Some(v) if n < OVERRIDES => {
                PORT_OVERRIDES[n].store(v, Ordering::Relaxed);
                n += 1;
            }
            _ => bad.push(item.to_string()),
        }
    }
    bad
}

fn protocol_of_port(port: u16) -> Option<Protocol> {
    for entry in &PORT_OVERRIDES {
        let v = entry.load(Ordering::Relaxed);
        if v == 0 {
            break;
        }
        if (v >> 8) as u16 == port {
            return Protocol::from_u32(v & 0xff);
        }
    }
    match port {
        5432 => Some(Protocol::Postgres),
        3306 => Some(Protocol::Mysql),
        6379 => Some(Protocol::Redis),
        _ => None,
    }
}

fn protocol_of_path(path: &[u8]) -> Option<Protocol> {
    let file = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
    if let Some(port) = file.strip_prefix(b".s.PGSQL.") {
        let port = std::str::from_utf8(port).ok()?.parse::<u16>().ok()?;
        // An override for the port decides, as for TCP.
        return protocol_of_port(port).or(Some(Protocol::Postgres));
    }
    match file {
        b"mysqld.sock" | b"mysql.sock" => Some(Protocol::Mysql),
        b"redis.sock" | b"redis-server.sock" => Some(Protocol::Redis),
        _ => None,
    }
}

/// The protocol and server name of a socket address, if it is a database
/// the library understands.
///
/// # Safety
/// `addr` must point to `len` readable bytes.
pub unsafe fn classify_address(
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
) -> Option<(Protocol, InlineStr<64>)> {
    if addr.is_null() || (len as usize) < std::mem::size_of::<libc::sa_family_t>() {
        return None;
    }
    match (*addr).sa_family as c_int {
        libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            let a = &*(addr as *const libc::sockaddr_in);
            let port = u16::from_be(a.sin_port);
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            let proto = protocol_of_port(port)?;
            Some((
                proto,
                server_name(&SocketAddr::V4(SocketAddrV4::new(ip, port))),
            ))
        }
        libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            let a = &*(addr as *const libc::sockaddr_in6);
            let port = u16::from_be(a.sin6_port);
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let proto = protocol_of_port(port)?;
            Some((
                proto,
                server_name(&SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0))),
            ))
        }
        libc::AF_UNIX => {
            let a = &*(addr as *const libc::sockaddr_un);
            let offset = std::mem::offset_of!(libc::sockaddr_un, sun_path);
            let path_len = (len as usize).saturating_sub(offset).min(a.sun_path.len());
            let path = std::slice::from_raw_parts(a.sun_path.as_ptr() as *const u8, path_len);
            if path.first().is_none_or(|b| *b == 0) {
                return None;
            }
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            let path = &path[..end];
            Some((protocol_of_path(path)?, unix_server_name(path)))
        }
        _ => None,
    }
}

/// The server name of a connected socket, from the kernel (the slow path
/// for connections without a state of their own).
fn peer_server(fd: c_int) -> Option<(Protocol, InlineStr<64>)> {
    // SAFETY: getpeername fills a buffer of the size it is given.
    unsafe {
        let mut addr: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getpeername(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len) != 0 {
            return None;
        }
        classify_address(&addr as *const _ as *const libc::sockaddr, len)
    }
}

// ---------------------------------------------------------------------------
// The state pool.

// Every slot has room for the largest state anyway: boxing would allocate.
#[allow(clippy::large_enum_variant)]
enum Machine {
    Postgres(PgConn),
    Mysql(MysqlConn),
    Redis(RespConn),
}

impl Machine {
    fn wire(&mut self) -> &mut dyn WireConn {
        match self {
            Machine::Postgres(m) => m,
            Machine::Mysql(m) => m,
            Machine::Redis(m) => m,
        }
    }

    fn wire_ref(&self) -> &dyn WireConn {
        match self {
            Machine::Postgres(m) => m,
            Machine::Mysql(m) => m,
            Machine::Redis(m) => m,
        }
    }
}

struct Conn {
    protocol: Protocol,
    server: InlineStr<64>,
    machine: Machine,
    /// The TLS library's plaintext calls were seen on this connection: the
    /// machine is fed from them, and the socket's own bytes (ciphertext)
    /// conflict with nothing.
    tls: bool,
}

const FREE: u32 = 0;
const IDLE: u32 = 1;
const IN_USE: u32 = 2;
/// Closed while a hook was using it: that hook frees it when done.
const CLOSING: u32 = 3;
const TAG_MASK: u32 = 3;
/// Generations are kept to 22 bits, the room they have in a descriptor
/// entry.
const GENERATION_MASK: u32 = (1 << 22) - 1;

struct Slot {
    /// `generation << 2 | tag`.
    state: AtomicU32,
    /// Initialised whenever the tag is not FREE; only touched by the thread
    /// that moved the tag to IN_USE.
    conn: UnsafeCell<MaybeUninit<Conn>>,
}

// SAFETY: `conn` is only accessed by the one thread that owns the IN_USE
// tag (see `Slot::state`).
unsafe impl Sync for Slot {}

static POOL: [Slot; POOL_SLOTS] = [const {
    Slot {
        state: AtomicU32::new(FREE),
        conn: UnsafeCell::new(MaybeUninit::uninit()),
    }
}; POOL_SLOTS];

/// Per descriptor: 0 for a socket that is not a database connection, else
/// `generation << 10 | protocol << 8 | (slot + 1)`, slot + 1 being 0 when
/// the connection got no state.
static FD_CONN: [AtomicU32; TABLE_SIZE] = [const { AtomicU32::new(0) }; TABLE_SIZE];

fn pack(generation: u32, protocol: Protocol, slot: Option<usize>) -> u32 {
    generation << 10 | (protocol as u32) << 8 | slot.map_or(0, |s| s as u32 + 1)
}

/// `connect` on `fd` towards `addr` returned: when it `connected` (or is
/// under way) to a database, give the descriptor a fresh state; in every
/// case drop the state the descriptor had.
///
/// # Safety
/// `addr` must point to `len` readable bytes.
pub unsafe fn on_connect(
    fd: c_int,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
    connected: bool,
) {
    let Some(entry) = FD_CONN.get(fd as usize) else {
        return;
    };
    let found = if connected {
        classify_address(addr, len)
    } else {
        None
    };
    let value = match found {
        None => 0,
        Some((protocol, server)) => {
            let claimed = claim(protocol, server);
            let generation = claimed.map_or(0, |(_, g)| g);
            pack(generation, protocol, claimed.map(|(s, _)| s))
        }
    };
    let old = entry.swap(value, Ordering::AcqRel);
    release(old);
}

fn claim(protocol: Protocol, server: InlineStr<64>) -> Option<(usize, u32)> {
    for (i, slot) in POOL.iter().enumerate() {
        let current = slot.state.load(Ordering::Relaxed);
        if current & TAG_MASK != FREE {
            continue;
        }
        let generation = ((current >> 2) + 1) & GENERATION_MASK;
        if slot
            .state
            .compare_exchange(
                current,
                generation << 2 | IN_USE,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            continue;
        }
        let machine = match protocol {
            Protocol::Postgres => Machine::Postgres(PgConn::default()),
            Protocol::Mysql => Machine::Mysql(MysqlConn::default()),
            Protocol::Redis => Machine::Redis(RespConn::default()),
        };
        // SAFETY: this thread owns the slot (IN_USE with a new generation).
        unsafe {
            (*slot.conn.get()).write(Conn {
                protocol,
                server,
                machine,
                tls: false,
            });
        }
        slot.state.store(generation << 2 | IDLE, Ordering::Release);
        return Some((i, generation));
    }
    None
}

/// Give back the state named by a descriptor entry value.
fn release(value: u32) {
    let Some(index) = (value & 0xff).checked_sub(1) else {
        return;
    };
    let generation = value >> 10;
    let slot = &POOL[index as usize];
    let _ = slot
        .state
        .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |s| {
            if s >> 2 != generation {
                return None;
            }
            match s & TAG_MASK {
                IDLE => Some(generation << 2 | FREE),
                IN_USE => Some(generation << 2 | CLOSING),
                _ => None,
            }
        });
}

/// The descriptor was closed or replaced.
#[inline]
pub fn forget(fd: c_int) {
    if let Some(entry) = FD_CONN.get(fd as usize) {
        if entry.load(Ordering::Relaxed) != 0 && crate::names::same_process() {
            release(entry.swap(0, Ordering::AcqRel));
        }
    }
}

/// What a hook found for a descriptor.
pub enum Lookup {
    /// Not a database connection.
    Plain,
    /// A database connection with its state, held until the value drops.
    Owned(Held),
    /// A database connection whose state cannot be used now.
    Coarse(Protocol, InlineStr<64>),
}

pub struct Held {
    slot: &'static Slot,
    generation: u32,
}

impl Held {
    fn conn(&mut self) -> &mut Conn {
        // SAFETY: holding IN_USE gives this thread the slot, and the slot
        // was initialised when it was claimed.
        unsafe { (*self.slot.conn.get()).assume_init_mut() }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let in_use = self.generation << 2 | IN_USE;
        if self
            .slot
            .state
            .compare_exchange(
                in_use,
                self.generation << 2 | IDLE,
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_err()
        {
            // Closed meanwhile: nobody else can reach it any more.
            self.slot
                .state
                .store(self.generation << 2 | FREE, Ordering::Release);
        }
    }
}

#[inline]
pub fn lookup(fd: c_int) -> Lookup {
    let Some(entry) = FD_CONN.get(fd as usize) else {
        return Lookup::Plain;
    };
    let value = entry.load(Ordering::Acquire);
    if value == 0 {
        return Lookup::Plain;
    }
    let coarse = || match peer_server(fd) {
        Some((p, server)) => Lookup::Coarse(p, server),
        None => Lookup::Plain,
    };
    let Some(index) = (value & 0xff).checked_sub(1) else {
        return coarse();
    };
    let generation = value >> 10;
    let slot = &POOL[index as usize];
    if slot
        .state
        .compare_exchange(
            generation << 2 | IDLE,
            generation << 2 | IN_USE,
            Ordering::Acquire,
            Ordering::Relaxed,
        )
        .is_err()
    {
        return coarse();
    }
    Lookup::Owned(Held { slot, generation })
}

// ---------------------------------------------------------------------------
// Turning classifications into records.

/// Calls its argument with each buffer of a call, in order.
pub type Chunks<'a> = &'a mut dyn FnMut(&mut dyn FnMut(&[u8]));

/// Feed the bytes of a send to the connection's classifier; `chunks`
/// lists the buffers in order (several for `writev`/`sendmsg`).
pub fn classify_send(held: &mut Held, chunks: Chunks<'_>, out: &mut Classification) {
    let conn = held.conn();
    let mut first = true;
    chunks(&mut |bytes: &[u8]| {
        let mut feed =
            |target: &mut Classification| conn.machine.wire().on_send_into(bytes, target);
        if first {
            feed(out);
            first = false;
        } else {
            // Later buffers of a writev/sendmsg only (a 1.2 KiB result is
            // not worth preparing for every send).
            let mut part = Classification::new();
            feed(&mut part);
            out.merge(&part);
        }
    });
}

/// Feed reply bytes and copy out the classification of the request they
/// answer.
pub fn classify_recv(held: &mut Held, chunks: Chunks<'_>, out: &mut Classification) {
    let conn = held.conn();
    let was_encrypted = conn.machine.wire_ref().is_encrypted();
    chunks(&mut |bytes: &[u8]| conn.machine.wire().on_recv(bytes));
    let m = conn.machine.wire_ref();
    let (last, encrypted, desynced) = (m.last(), m.is_encrypted(), m.reply_unmatched());
    *out = *last;
    // Ciphertext or a lost framing: the reply cannot be matched to a
    // request, but it still comes from the server. (A reply that turned the
    // stream encrypted is the plaintext answer to the TLS request itself.)
    if (encrypted && was_encrypted) || desynced {
        out.clear();
        out.set_fallback(if encrypted {
            Fallback::Encrypted
        } else {
            Fallback::Desynced
        });
    }
}

/// Whether `fd` is a database connection with a protocol state (without
/// taking the state).
pub fn has_state(fd: c_int) -> bool {
    FD_CONN
        .get(fd as usize)
        .is_some_and(|e| e.load(Ordering::Acquire) & 0xff != 0)
}

/// Plaintext of the TLS session is about to be fed: switch the machine
/// over (once) from the ciphertext it saw.
pub fn enter_tls(held: &mut Held) {
    let conn = held.conn();
    if !conn.tls {
        conn.tls = true;
        conn.machine.wire().start_plaintext();
    }
}

/// Whether the socket's bytes are ciphertext whose plaintext the TLS hooks
/// see.
pub fn is_tls(held: &mut Held) -> bool {
    held.conn().tls
}

pub fn identity(held: &mut Held) -> (Protocol, InlineStr<64>) {
    let conn = held.conn();
    (conn.protocol, conn.server)
}

// ---------------------------------------------------------------------------
// Snapshot hints (see `frontrun_wire::snapshot`), for the explorer.

/// How many times the tables read after a snapshot grew (or were reset):
/// an exploration during which it changed explores again.
#[no_mangle]
pub extern "C" fn frontrun_io_snapshot_generation() -> libc::c_uint {
    frontrun_wire::snapshot::generation()
}

/// Forgets the tables read after a snapshot; called before an exploration.
#[no_mangle]
pub extern "C" fn frontrun_io_snapshot_reset() {
    frontrun_wire::snapshot::reset();
}
