//! What the I/O hooks do around the real call, as safe Rust.
//!
//! Each entry point takes the real call as a closure and decides, before
//! running it, whether the call is one the engine wants to see: the library
//! must be attached to a ring with a consumer, this thread must not already
//! be inside hook logic, and the descriptor must name a tracked resource.
//! Otherwise the call passes straight through. When it is wanted, the real
//! call runs exactly once; events are recorded around it and errno is put
//! back to what the real call left. On a database connection (see `db`)
//! the bytes the call moved are classified and the call is recorded as
//! `DbAccess` events instead of a `Write`/`Read` event.

use std::panic::{catch_unwind, AssertUnwindSafe};

use frontrun_ring::{db_records, Call, EventKind, EventRecord, RingView};
use frontrun_wire::Classification;
use libc::c_int;

use crate::db;
use crate::names::{self, Name};
use crate::state::{self, Guard};

/// Whether a read-like call may wait for a peer.
#[derive(Clone, Copy)]
pub enum Blocking {
    /// Never (writes, or the caller asked for a non-blocking call).
    No,
    /// When the descriptor is a socket in blocking mode.
    IfBlockingSocket,
}

fn record(call: Call, kind: EventKind, fd: c_int, name: &Name, result: i64) -> EventRecord {
    let mut r = EventRecord::EMPTY;
    r.kind = kind as u8;
    r.call = call as u8;
    r.fd = fd;
    r.result = result;
    r.key = name.key;
    r.set_name(name.as_bytes());
    r
}

fn result_of(ret: i64, errno: c_int) -> i64 {
    if ret < 0 {
        -i64::from(errno)
    } else {
        ret
    }
}

fn socket_is_blocking(fd: c_int) -> bool {
    // SAFETY: F_GETFL takes no argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    flags >= 0 && flags & libc::O_NONBLOCK == 0
}

struct Plan {
    ring: RingView,
    name: Name,
    blocks: bool,
}

/// The bytes a data transfer call moves, as the caller passed them. Read
/// only after the real call, and only up to the count it returned.
#[derive(Clone, Copy)]
pub enum Data {
    /// Not looked at (`MSG_PEEK`, or bytes that do not belong to a stream).
    Unseen,
    Buf(*const u8, usize),
    Iov(*const libc::iovec, c_int),
    Msg(*const libc::msghdr),
}

impl Data {
    /// Hands the first `limit` bytes to `each`, buffer by buffer.
    ///
    /// # Safety
    /// The pointers must be what the real call was given, still valid.
    unsafe fn chunks(self, limit: usize, each: &mut dyn FnMut(&[u8])) {
        let mut left = limit;
        let mut iovecs = |iov: *const libc::iovec, n: usize| {
            if iov.is_null() {
                return;
            }
            for i in 0..n {
                if left == 0 {
                    break;
                }
                let v = &*iov.add(i);
                let take = v.iov_len.min(left);
                if take > 0 && !v.iov_base.is_null() {
                    each(std::slice::from_raw_parts(v.iov_base as *const u8, take));
                }
                left -= take;
            }
        };
        match self {
            Data::Unseen => {}
            Data::Buf(p, len) => {
                if !p.is_null() && limit > 0 {
                    each(std::slice::from_raw_parts(p, len.min(limit)));
                }
            }
            Data::Iov(iov, n) => iovecs(iov, n.max(0) as usize),
            Data::Msg(msg) => {
                if !msg.is_null() {
                    iovecs((*msg).msg_iov, (*msg).msg_iovlen);
                }
            }
        }
    }
}

/// Whether a call on `fd` may be recorded: not stdio, and a consumer is
/// attached. Shims call this first so that the pass-through path is a tail
/// call to the real function.
#[inline(always)]
pub fn recording(fd: c_int) -> bool {
    fd >= 3 && recording_any()
}

/// Whether anything is recorded now (a consumer is attached).
#[inline(always)]
pub fn recording_any() -> bool {
    state::active_ring_or_init().is_some()
}

/// Run a data transfer call (`send`, `recv`, `read`, `write`, ...) on `fd`.
/// `fallback_name` names the resource when the descriptor has no name of
/// its own (the destination address of `sendto` on an unconnected socket).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn transfer(
    fd: c_int,
    call: Call,
    kind: EventKind,
    blocking: Blocking,
    data: Data,
    fallback_name: impl FnOnce() -> Option<Name>,
    real: impl FnOnce() -> isize,
) -> isize {
    if fd < 3 {
        return real();
    }
    match state::active_ring_or_init() {
        None => real(),
        Some(ring) => transfer_recorded(
            ring,
            fd,
            call,
            kind,
            blocking,
            data,
            Via::Socket,
            fallback_name,
            real,
        ),
    }
}

/// Where the bytes of a transfer were seen.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The socket call itself.
    Socket,
    /// The TLS library's plaintext call on the socket's session.
    Tls,
}

/// A TLS library's plaintext call (`SSL_write`, `SSL_read`, ...) on the
/// session over `fd`. On a database connection the plaintext is classified
/// like a socket's bytes (and the socket's own ciphertext is then reported
/// as conflicting with nothing); on any other descriptor the call passes
/// through, and the socket calls it makes are recorded as usual. `real`
/// returns the bytes moved, or a negative value.
#[inline(always)]
pub fn tls_transfer(
    fd: c_int,
    call: Call,
    kind: EventKind,
    data: Data,
    real: impl FnOnce() -> isize,
) -> isize {
    if fd < 3 || !db::has_state(fd) {
        return real();
    }
    match state::active_ring_or_init() {
        None => real(),
        Some(ring) => transfer_recorded(
            ring,
            fd,
            call,
            kind,
            if kind == EventKind::Read {
                Blocking::IfBlockingSocket
            } else {
                Blocking::No
            },
            data,
            Via::Tls,
            || None,
            real,
        ),
    }
}

/// The recording half of [`transfer`], kept out of line so the
/// pass-through path stays a few instructions.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn transfer_recorded(
    ring: RingView,
    fd: c_int,
    call: Call,
    kind: EventKind,
    blocking: Blocking,
    data: Data,
    via: Via,
    fallback_name: impl FnOnce() -> Option<Name>,
    real: impl FnOnce() -> isize,
) -> isize {
    if via == Via::Socket {
        crate::tls::note_socket_call(fd);
    }
    // (For a TLS call the guard also makes the socket calls inside it pass
    // through: their bytes are the ciphertext of what is classified here.)
    let Some(guard) = Guard::enter() else {
        return real();
    };
    let saved = state::errno();
    let plan = catch_unwind(AssertUnwindSafe(|| {
        let name = names::lookup(fd).or_else(fallback_name)?;
        let blocks =
            matches!(blocking, Blocking::IfBlockingSocket) && name.socket && socket_is_blocking(fd);
        if blocks {
            let _ = guard.emit(ring, &mut record(call, EventKind::BlockEnter, fd, &name, 0));
        }
        Some(Plan { ring, name, blocks })
    }))
    .ok()
    .flatten();
    state::set_errno(saved);
    let ret = real();
    let Some(plan) = plan else {
        return ret;
    };
    let after = state::errno();
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let result = result_of(ret as i64, after);
        if plan.blocks {
            let _ = guard.emit(
                plan.ring,
                &mut record(call, EventKind::BlockLeave, fd, &plan.name, result),
            );
        }
        let raw = record(call, kind, fd, &plan.name, result);
        let reply = kind == EventKind::Read;
        let moved = if ret > 0 { ret as usize } else { 0 };
        let mut emit = |r: &mut EventRecord| {
            let _ = guard.emit(plan.ring, r);
        };
        // The protocol state is taken after the real call, so that a call
        // blocked in the kernel does not hold it.
        let lookup = if plan.name.socket {
            db::lookup(fd)
        } else {
            db::Lookup::Plain
        };
        match lookup {
            db::Lookup::Plain => emit(&mut { raw }),
            db::Lookup::Coarse(protocol, server) => db_records(
                &raw,
                protocol.scheme(),
                &server,
                None,
                reply,
                ret <= 0,
                &mut emit,
            ),
            db::Lookup::Owned(mut held) => {
                if via == Via::Socket && db::is_tls(&mut held) {
                    // Ciphertext: its plaintext is classified by the TLS
                    // hooks.
                    let (protocol, server) = db::identity(&mut held);
                    drop(held);
                    db_records(
                        &raw,
                        protocol.scheme(),
                        &server,
                        None,
                        reply,
                        true,
                        &mut emit,
                    );
                    return;
                }
                if via == Via::Tls {
                    db::enter_tls(&mut held);
                }
                let (protocol, server) = db::identity(&mut held);
                let mut classification = Classification::new();
                // SAFETY: the buffers the real call was given; it moved
                // `moved` bytes.
                let mut chunks = |each: &mut dyn FnMut(&[u8])| unsafe { data.chunks(moved, each) };
                if reply {
                    db::classify_recv(&mut held, &mut chunks, &mut classification);
                } else if moved > 0 {
                    db::classify_send(&mut held, &mut chunks, &mut classification);
                }
                drop(held);
                db_records(
                    &raw,
                    protocol.scheme(),
                    &server,
                    Some(&classification),
                    reply,
                    ret <= 0,
                    &mut emit,
                );
            }
        }
    }));
    state::set_errno(after);
    ret
}

/// `connect`: remember the name of the address (and give a database
/// connection its protocol state through `on_connected`, told whether the
/// connection is made or under way), then record the attempt (including a
/// non-blocking one that returns `EINPROGRESS`).
pub fn connect(
    fd: c_int,
    name: impl FnOnce() -> Option<Name>,
    on_connected: impl FnOnce(bool),
    real: impl FnOnce() -> c_int,
) -> c_int {
    let ret = real();
    let after = state::errno();
    if fd < 3 {
        return ret;
    }
    let Some(guard) = Guard::enter() else {
        return ret;
    };
    let _ = state::active_ring_or_init();
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // The name is kept even while no consumer is attached, so it is
        // right when one attaches later.
        if state::RING
            .load(std::sync::atomic::Ordering::Relaxed)
            .is_null()
        {
            return;
        }
        let name = name();
        names::set(fd, name.as_ref());
        on_connected(ret == 0 || after == libc::EINPROGRESS);
        if let (Some(ring), Some(name)) = (state::active_ring(), name) {
            let _ = guard.emit(
                ring,
                &mut record(
                    Call::Connect,
                    EventKind::Connect,
                    fd,
                    &name,
                    result_of(ret as i64, after),
                ),
            );
        }
    }));
    state::set_errno(after);
    ret
}

/// `close`: record it for named descriptors, and forget the name.
#[inline(always)]
pub fn close(fd: c_int, real: impl FnOnce() -> c_int) -> c_int {
    if fd < 3 {
        return real();
    }
    match state::active_ring() {
        Some(ring) => close_recorded(ring, fd, real),
        None => {
            // Forgotten before the real close (nobody may name the dying
            // descriptor) and after it (a lazy lookup racing with the close
            // may have refilled the entry).
            names::forget(fd);
            crate::tls::forget_fd(fd);
            let ret = real();
            names::forget(fd);
            ret
        }
    }
}

#[inline(never)]
fn close_recorded(ring: RingView, fd: c_int, real: impl FnOnce() -> c_int) -> c_int {
    crate::tls::forget_fd(fd);
    let guard = Guard::enter();
    let saved = state::errno();
    let plan = match &guard {
        Some(_) => catch_unwind(AssertUnwindSafe(|| names::lookup(fd)))
            .ok()
            .flatten()
            .map(|name| (ring, name)),
        _ => None,
    };
    names::forget(fd);
    state::set_errno(saved);
    let ret = real();
    let after = state::errno();
    names::forget(fd);
    if let (Some(guard), Some((ring, name))) = (&guard, plan) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            let _ = guard.emit(
                ring,
                &mut record(
                    Call::Close,
                    EventKind::Close,
                    fd,
                    &name,
                    result_of(ret as i64, after),
                ),
            );
        }));
    }
    drop(guard);
    state::set_errno(after);
    ret
}

/// Most descriptors a single poll/select reports on.
const MAX_WAIT_FDS: usize = 8;

#[inline(always)]
/// `poll`, `ppoll`, `select`: when the call may block, record entering and
/// leaving it for each named descriptor it waits on. `each_fd` lists the
/// descriptors waited on.
pub fn wait(
    call: Call,
    may_block: bool,
    each_fd: impl Fn(&mut dyn FnMut(c_int)),
    real: impl FnOnce() -> c_int,
) -> c_int {
    if !may_block {
        return real();
    }
    match state::active_ring_or_init() {
        None => real(),
        Some(ring) => wait_recorded(ring, call, each_fd, real),
    }
}

#[inline(never)]
fn wait_recorded(
    ring: RingView,
    call: Call,
    each_fd: impl Fn(&mut dyn FnMut(c_int)),
    real: impl FnOnce() -> c_int,
) -> c_int {
    let Some(guard) = Guard::enter() else {
        return real();
    };
    let saved = state::errno();
    let mut waited: [Option<(c_int, Name)>; MAX_WAIT_FDS] = [None; MAX_WAIT_FDS];
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let mut n = 0;
        each_fd(&mut |fd| {
            if n < MAX_WAIT_FDS && fd >= 3 {
                if let Some(name) = names::lookup(fd) {
                    waited[n] = Some((fd, name));
                    n += 1;
                }
            }
        });
        for (fd, name) in waited.iter().flatten() {
            let _ = guard.emit(ring, &mut record(call, EventKind::BlockEnter, *fd, name, 0));
        }
    }));
    state::set_errno(saved);
    let ret = real();
    let after = state::errno();
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let result = result_of(ret as i64, after);
        for (fd, name) in waited.iter().flatten() {
            let _ = guard.emit(
                ring,
                &mut record(call, EventKind::BlockLeave, *fd, name, result),
            );
        }
    }));
    state::set_errno(after);
    ret
}
