//! What a file descriptor refers to, as a resource name.
//!
//! Names come from the address given to `connect`, or lazily, the first time
//! an unknown descriptor is used, from `fstat` + `getpeername` (sockets) or
//! the `/proc/self/fd` link (regular files). Pipes, terminals, devices and
//! unconnected sockets are remembered as "ignored" so the next call on them
//! costs one load. Closing a descriptor through a hooked function (`close`,
//! `fclose`, `dup2`, `dup3`, `close_range`) forgets its entry; a descriptor
//! closed by a path the library cannot see (a libc-internal close) keeps a
//! stale entry until it is connected again or closed through a hook.
//!
//! Entries are read without a lock: each has a state word holding a tag and
//! a generation. A writer moves the state to `BUSY`, writes the name words,
//! then publishes `NAMED` with a new generation; a reader copies the words
//! and keeps the copy only if the state word did not change meanwhile.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use frontrun_ring::{resource_key, NAME_CAPACITY};
use libc::c_int;

/// Descriptors below this number have a cached entry; higher ones are
/// named afresh on every call.
pub const TABLE_SIZE: usize = 4096;
const WORDS: usize = NAME_CAPACITY / 8;
const _: () = assert!(NAME_CAPACITY.is_multiple_of(8));

const TAG_UNKNOWN: u32 = 0;
const TAG_IGNORED: u32 = 1;
const TAG_NAMED: u32 = 2;
const TAG_BUSY: u32 = 3;
const TAG_MASK: u32 = 3;
const GENERATION_STEP: u32 = 4;

/// A resource name: the (possibly cut) bytes, the key of the full name, and
/// whether it is a socket (a peer can make reads on it block).
#[derive(Clone, Copy)]
pub struct Name {
    pub bytes: [u8; NAME_CAPACITY],
    pub len: u8,
    pub key: u64,
    pub socket: bool,
}

impl Name {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    fn from_full(full: &[u8], socket: bool) -> Name {
        let mut bytes = [0u8; NAME_CAPACITY];
        let n = full.len().min(NAME_CAPACITY);
        bytes[..n].copy_from_slice(&full[..n]);
        Name {
            bytes,
            len: n as u8,
            key: resource_key(full),
            socket,
        }
    }
}

struct Entry {
    state: AtomicU32,
    /// Length in the low byte, bit 8 set for sockets.
    len: AtomicU32,
    key: AtomicU64,
    words: [AtomicU64; WORDS],
}

impl Entry {
    const fn new() -> Entry {
        Entry {
            state: AtomicU32::new(TAG_UNKNOWN),
            len: AtomicU32::new(0),
            key: AtomicU64::new(0),
            words: [const { AtomicU64::new(0) }; WORDS],
        }
    }

    fn read(&self, state: u32) -> Option<Name> {
        let mut bytes = [0u8; NAME_CAPACITY];
        for (i, word) in self.words.iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
        }
        let len = self.len.load(Ordering::Relaxed);
        let key = self.key.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        (self.state.load(Ordering::Relaxed) == state).then_some(Name {
            bytes,
            len: (len & 0xff) as u8,
            key,
            socket: len & 0x100 != 0,
        })
    }

    /// Store `name` (or "ignored" when `None`), replacing whatever is there.
    /// Gives up if another thread is writing the entry right now; the entry
    /// then holds that thread's result.
    fn store(&self, name: Option<&Name>, only_if_unknown: bool) {
        let current = self.state.load(Ordering::Relaxed);
        let tag = current & TAG_MASK;
        if tag == TAG_BUSY || (only_if_unknown && tag != TAG_UNKNOWN) {
            return;
        }
        let generation = (current & !TAG_MASK).wrapping_add(GENERATION_STEP);
        if self
            .state
            .compare_exchange(
                current,
                generation | TAG_BUSY,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return;
        }
        let tag = match name {
            Some(name) => {
                for (i, word) in self.words.iter().enumerate() {
                    let mut chunk = [0u8; 8];
                    chunk.copy_from_slice(&name.bytes[i * 8..i * 8 + 8]);
                    word.store(u64::from_ne_bytes(chunk), Ordering::Relaxed);
                }
                self.len.store(
                    u32::from(name.len) | if name.socket { 0x100 } else { 0 },
                    Ordering::Relaxed,
                );
                self.key.store(name.key, Ordering::Relaxed);
                TAG_NAMED
            }
            None => TAG_IGNORED,
        };
        // A `forget` that came in meanwhile replaced BUSY with UNKNOWN; it
        // wins, since the descriptor may be closed by now.
        let _ = self.state.compare_exchange(
            generation | TAG_BUSY,
            generation | tag,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }

    fn forget(&self) {
        let _ = self
            .state
            .fetch_update(Ordering::Release, Ordering::Relaxed, |s| {
                (s & TAG_MASK != TAG_UNKNOWN)
                    .then(|| (s & !TAG_MASK).wrapping_add(GENERATION_STEP) | TAG_UNKNOWN)
            });
    }
}

static TABLE: [Entry; TABLE_SIZE] = [const { Entry::new() }; TABLE_SIZE];

/// Directory of the ring file (as bytes, NUL-free), set once at attach time:
/// files in it are the library's own and never named.
pub static RING_DIR: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// The name of `fd`, or `None` for stdio and ignored descriptors.
pub fn lookup(fd: c_int) -> Option<Name> {
    if fd < 3 {
        return None;
    }
    let Some(entry) = TABLE.get(fd as usize) else {
        return resolve(fd).ok().flatten();
    };
    let state = entry.state.load(Ordering::Acquire);
    match state & TAG_MASK {
        TAG_NAMED => entry.read(state).or_else(|| resolve(fd).ok().flatten()),
        TAG_IGNORED => None,
        TAG_BUSY => resolve(fd).ok().flatten(),
        _ => match resolve(fd) {
            Ok(name) => {
                if same_process() {
                    entry.store(name.as_ref(), true);
                }
                name
            }
            Err(()) => None,
        },
    }
}

/// Record that `fd` now refers to `name` (after `connect`).
pub fn set(fd: c_int, name: Option<&Name>) {
    if fd < 3 {
        return;
    }
    if let Some(entry) = TABLE.get(fd as usize) {
        // A concurrent writer can only be naming the same socket lazily,
        // so spinning briefly for it is enough.
        for _ in 0..1000 {
            if entry.state.load(Ordering::Relaxed) & TAG_MASK != TAG_BUSY {
                break;
            }
            std::hint::spin_loop();
        }
        entry.store(name, false);
    }
}

/// Forget what `fd` referred to (it was closed or replaced).
#[inline]
pub fn forget(fd: c_int) {
    if fd >= 0 {
        if let Some(entry) = TABLE.get(fd as usize) {
            entry.forget();
        }
        crate::db::forget(fd);
    }
}

pub fn forget_range(first: u32, last: u32) {
    let last = (last as usize).min(TABLE_SIZE - 1);
    for (fd, entry) in TABLE.iter().enumerate().take(last + 1).skip(first as usize) {
        entry.forget();
        crate::db::forget(fd as c_int);
    }
}

/// Whether this is the process the cached pid belongs to. A `vfork` child
/// shares the table with its parent, so it must not fill it with names of
/// descriptors that only it has.
pub fn same_process() -> bool {
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() } as u32;
    pid == crate::state::PID.load(Ordering::Relaxed)
}

/// Fixed buffer that `write!` can fill without allocating; excess is cut.
struct Buffer {
    bytes: [u8; 4200],
    len: usize,
}

impl Buffer {
    fn new() -> Buffer {
        Buffer {
            bytes: [0; 4200],
            len: 0,
        }
    }

    fn push(&mut self, data: &[u8]) {
        let n = data.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Write for Buffer {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

/// Name the descriptor from the kernel's view of it. `Err` means the
/// descriptor is not open (nothing to cache); `Ok(None)` means it is open
/// but is not a resource the engine tracks.
#[cold]
#[inline(never)]
fn resolve(fd: c_int) -> Result<Option<Name>, ()> {
    // SAFETY: plain syscalls on caller-provided buffers of the right size.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return Err(());
        }
        match st.st_mode & libc::S_IFMT {
            libc::S_IFSOCK => {
                let mut addr: libc::sockaddr_storage = std::mem::zeroed();
                let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                if libc::getpeername(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len) != 0
                {
                    return Ok(None);
                }
                if addr.ss_family as c_int == libc::AF_UNIX
                    && len as usize <= std::mem::size_of::<libc::sa_family_t>()
                {
                    // The peer is an unbound client (we are the server end):
                    // the resource is the path we listen on.
                    len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                    if libc::getsockname(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len)
                        != 0
                    {
                        return Ok(None);
                    }
                }
                Ok(socket_name(&addr as *const _ as *const libc::sockaddr, len))
            }
            libc::S_IFREG => Ok(file_name(fd)),
            _ => Ok(None),
        }
    }
}

fn file_name(fd: c_int) -> Option<Name> {
    let mut link = Buffer::new();
    let _ = write!(link, "/proc/self/fd/{fd}\0");
    let mut out = Buffer::new();
    out.push(b"file:");
    let room = out.bytes.len() - out.len;
    // SAFETY: NUL-terminated path; the target buffer has `room` bytes.
    let n = unsafe {
        libc::readlink(
            link.bytes.as_ptr() as *const libc::c_char,
            out.bytes[out.len..].as_mut_ptr() as *mut libc::c_char,
            room,
        )
    };
    if n <= 0 {
        return None;
    }
    out.len += n as usize;
    let path = &out.as_bytes()[5..];
    if let Some(dir) = RING_DIR.get() {
        if path.starts_with(dir) && path.get(dir.len()) == Some(&b'/') {
            return None;
        }
    }
    Some(Name::from_full(out.as_bytes(), false))
}

/// `socket:` name of a socket address, `None` for families not tracked and
/// for unnamed Unix sockets (socketpair ends).
///
/// # Safety
/// `addr` must point to `len` readable bytes.
pub unsafe fn socket_name(addr: *const libc::sockaddr, len: libc::socklen_t) -> Option<Name> {
    if addr.is_null() || (len as usize) < std::mem::size_of::<libc::sa_family_t>() {
        return None;
    }
    let mut out = Buffer::new();
    match (*addr).sa_family as c_int {
        libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            let a = &*(addr as *const libc::sockaddr_in);
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            let _ = write!(out, "socket:{ip}:{}", u16::from_be(a.sin_port));
        }
        libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            let a = &*(addr as *const libc::sockaddr_in6);
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let _ = write!(out, "socket:[{ip}]:{}", u16::from_be(a.sin6_port));
        }
        libc::AF_UNIX => {
            let a = &*(addr as *const libc::sockaddr_un);
            let offset = std::mem::offset_of!(libc::sockaddr_un, sun_path);
            let path_len = (len as usize).saturating_sub(offset).min(a.sun_path.len());
            let path = std::slice::from_raw_parts(a.sun_path.as_ptr() as *const u8, path_len);
            if path.is_empty() {
                return None;
            }
            out.push(b"socket:unix:");
            if path[0] == 0 {
                // Abstract namespace: shown with a leading '@'.
                out.push(b"@");
                out.push(&path[1..]);
            } else {
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                out.push(&path[..end]);
            }
        }
        _ => return None,
    }
    Some(Name::from_full(out.as_bytes(), true))
}
