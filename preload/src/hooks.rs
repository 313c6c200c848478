//! The exported symbols that stand in for libc's. Each is a thin shim: it
//! reads its arguments into the shape the logic in `io`/`mutex` wants and
//! hands over the real call as a closure. No logic lives here.
//!
//! Each shim first asks whether the call is to be recorded at all and, if
//! not, calls the real function in tail position: the compiler then jumps to
//! it, so the real function returns straight to the caller. (An extra return
//! costs a mispredicted branch after every syscall on kernels that clear
//! the return stack buffer, about as much as the rest of the hook.)

use std::ffi::c_void;

use frontrun_ring::{Call, EventKind};
use libc::{
    c_int, c_uint, iovec, msghdr, nfds_t, pollfd, pthread_cond_t, pthread_mutex_t, sigset_t,
    size_t, sockaddr, socklen_t, ssize_t, timespec, timeval, FILE,
};

use crate::db;
use crate::io::{self, Blocking, Data};
use crate::names;
use crate::real;
use crate::tls;

/// A peek leaves the bytes for the next receive: the protocol state must
/// see them once.
fn recv_data(flags: c_int, data: Data) -> Data {
    if flags & libc::MSG_PEEK != 0 {
        Data::Unseen
    } else {
        data
    }
}

fn recv_blocking(flags: c_int) -> Blocking {
    if flags & libc::MSG_DONTWAIT != 0 {
        Blocking::No
    } else {
        Blocking::IfBlockingSocket
    }
}

#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    io::connect(
        fd,
        || names::socket_name(addr, len),
        |connected| db::on_connect(fd, addr, len, connected),
        || real::connect(fd, addr, len),
    )
}

#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t {
    if !io::recording(fd) {
        return real::send(fd, buf, len, flags);
    }
    io::transfer(
        fd,
        Call::Send,
        EventKind::Write,
        Blocking::No,
        Data::Buf(buf as *const u8, len),
        || None,
        || real::send(fd, buf, len, flags),
    )
}

#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    addrlen: socklen_t,
) -> ssize_t {
    if !io::recording(fd) {
        return real::sendto(fd, buf, len, flags, addr, addrlen);
    }
    io::transfer(
        fd,
        Call::Sendto,
        EventKind::Write,
        Blocking::No,
        Data::Buf(buf as *const u8, len),
        || names::socket_name(addr, addrlen),
        || real::sendto(fd, buf, len, flags, addr, addrlen),
    )
}

#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    if !io::recording(fd) {
        return real::sendmsg(fd, msg, flags);
    }
    io::transfer(
        fd,
        Call::Sendmsg,
        EventKind::Write,
        Blocking::No,
        Data::Msg(msg),
        || {
            if msg.is_null() {
                None
            } else {
                names::socket_name((*msg).msg_name as *const sockaddr, (*msg).msg_namelen)
            }
        },
        || real::sendmsg(fd, msg, flags),
    )
}

#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t {
    if !io::recording(fd) {
        return real::recv(fd, buf, len, flags);
    }
    io::transfer(
        fd,
        Call::Recv,
        EventKind::Read,
        recv_blocking(flags),
        recv_data(flags, Data::Buf(buf as *const u8, len)),
        || None,
        || real::recv(fd, buf, len, flags),
    )
}

#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
) -> ssize_t {
    if !io::recording(fd) {
        return real::recvfrom(fd, buf, len, flags, addr, addrlen);
    }
    io::transfer(
        fd,
        Call::Recvfrom,
        EventKind::Read,
        recv_blocking(flags),
        recv_data(flags, Data::Buf(buf as *const u8, len)),
        || None,
        || real::recvfrom(fd, buf, len, flags, addr, addrlen),
    )
}

#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    if !io::recording(fd) {
        return real::recvmsg(fd, msg, flags);
    }
    io::transfer(
        fd,
        Call::Recvmsg,
        EventKind::Read,
        recv_blocking(flags),
        recv_data(flags, Data::Msg(msg)),
        || None,
        || real::recvmsg(fd, msg, flags),
    )
}

#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, len: size_t) -> ssize_t {
    if !io::recording(fd) {
        return real::read(fd, buf, len);
    }
    io::transfer(
        fd,
        Call::Read,
        EventKind::Read,
        Blocking::IfBlockingSocket,
        Data::Buf(buf as *const u8, len),
        || None,
        || real::read(fd, buf, len),
    )
}

#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    if !io::recording(fd) {
        return real::readv(fd, iov, iovcnt);
    }
    io::transfer(
        fd,
        Call::Readv,
        EventKind::Read,
        Blocking::IfBlockingSocket,
        Data::Iov(iov, iovcnt),
        || None,
        || real::readv(fd, iov, iovcnt),
    )
}

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, len: size_t) -> ssize_t {
    if !io::recording(fd) {
        return real::write(fd, buf, len);
    }
    io::transfer(
        fd,
        Call::Write,
        EventKind::Write,
        Blocking::No,
        Data::Buf(buf as *const u8, len),
        || None,
        || real::write(fd, buf, len),
    )
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    if !io::recording(fd) {
        return real::writev(fd, iov, iovcnt);
    }
    io::transfer(
        fd,
        Call::Writev,
        EventKind::Write,
        Blocking::No,
        Data::Iov(iov, iovcnt),
        || None,
        || real::writev(fd, iov, iovcnt),
    )
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    io::close(fd, || real::close(fd))
}

/// Not an event of its own: only keeps the descriptor table right, since
/// libc closes the stream's descriptor internally.
#[no_mangle]
pub unsafe extern "C" fn fclose(stream: *mut FILE) -> c_int {
    let fd = if stream.is_null() {
        -1
    } else {
        libc::fileno(stream)
    };
    let ret = real::fclose(stream);
    names::forget(fd);
    ret
}

#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    let ret = real::dup2(old, new);
    if ret >= 0 {
        names::forget(new);
    }
    ret
}

#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    let ret = real::dup3(old, new, flags);
    if ret >= 0 {
        names::forget(new);
    }
    ret
}

#[no_mangle]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    let ret = real::close_range(first, last, flags);
    // CLOSE_RANGE_CLOEXEC only marks descriptors; they stay open.
    if ret == 0 && flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 {
        names::forget_range(first, last);
    }
    ret
}

unsafe fn poll_fds(fds: *const pollfd, nfds: nfds_t) -> impl Fn(&mut dyn FnMut(c_int)) {
    move |each: &mut dyn FnMut(c_int)| {
        if fds.is_null() {
            return;
        }
        for i in 0..nfds as usize {
            // SAFETY: the caller passed `nfds` entries.
            each(unsafe { (*fds.add(i)).fd });
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int {
    if timeout == 0 || !io::recording_any() {
        return real::poll(fds, nfds, timeout);
    }
    io::wait(Call::Poll, timeout != 0, poll_fds(fds, nfds), || {
        real::poll(fds, nfds, timeout)
    })
}

#[no_mangle]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    nfds: nfds_t,
    timeout: *const timespec,
    sigmask: *const sigset_t,
) -> c_int {
    let may_block = timeout.is_null() || (*timeout).tv_sec != 0 || (*timeout).tv_nsec != 0;
    io::wait(Call::Ppoll, may_block, poll_fds(fds, nfds), || {
        real::ppoll(fds, nfds, timeout, sigmask)
    })
}

#[no_mangle]
pub unsafe extern "C" fn select(
    nfds: c_int,
    readfds: *mut libc::fd_set,
    writefds: *mut libc::fd_set,
    exceptfds: *mut libc::fd_set,
    timeout: *mut timeval,
) -> c_int {
    let may_block = timeout.is_null() || (*timeout).tv_sec != 0 || (*timeout).tv_usec != 0;
    let sets = [readfds, writefds, exceptfds];
    let each_fd = move |each: &mut dyn FnMut(c_int)| {
        for fd in 0..nfds.clamp(0, libc::FD_SETSIZE as c_int) {
            // SAFETY: non-null sets hold FD_SETSIZE bits.
            if sets
                .iter()
                .any(|set| !set.is_null() && unsafe { libc::FD_ISSET(fd, *set) })
            {
                each(fd);
            }
        }
    };
    io::wait(Call::Select, may_block, each_fd, || {
        real::select(nfds, readfds, writefds, exceptfds, timeout)
    })
}

// The mutex functions need their caller's return address, which Rust cannot
// ask for. Each exported symbol is a two-instruction trampoline that loads
// it (from the stack on x86-64, the link register on AArch64) into the next
// argument register and jumps to the Rust function, which returns straight
// to the caller.
macro_rules! mutex_trampoline {
    ($name:ident => $target:path) => {
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name(_mutex: *mut pthread_mutex_t) -> c_int {
            core::arch::naked_asm!("mov rsi, [rsp]", "jmp {}", sym $target)
        }

        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name(_mutex: *mut pthread_mutex_t) -> c_int {
            core::arch::naked_asm!("mov x1, x30", "b {}", sym $target)
        }

        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        #[no_mangle]
        pub unsafe extern "C" fn $name(mutex: *mut pthread_mutex_t) -> c_int {
            $target(mutex, 0)
        }
    };
}

// `pthread_mutex_init` has two arguments: the return address goes third.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_init(
    _mutex: *mut pthread_mutex_t,
    _attr: *const libc::pthread_mutexattr_t,
) -> c_int {
    core::arch::naked_asm!("mov rdx, [rsp]", "jmp {}", sym mutex_init_from)
}

#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_init(
    _mutex: *mut pthread_mutex_t,
    _attr: *const libc::pthread_mutexattr_t,
) -> c_int {
    core::arch::naked_asm!("mov x2, x30", "b {}", sym mutex_init_from)
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_init(
    mutex: *mut pthread_mutex_t,
    attr: *const libc::pthread_mutexattr_t,
) -> c_int {
    mutex_init_from(mutex, attr, 0)
}

unsafe extern "C" fn mutex_init_from(
    mutex: *mut pthread_mutex_t,
    attr: *const libc::pthread_mutexattr_t,
    caller: usize,
) -> c_int {
    if !crate::mutex::recording() {
        return real::pthread_mutex_init(mutex, attr);
    }
    crate::mutex::born(mutex, caller, || real::pthread_mutex_init(mutex, attr))
}

mutex_trampoline!(pthread_mutex_lock => mutex_lock_from);
mutex_trampoline!(pthread_mutex_trylock => mutex_trylock_from);
mutex_trampoline!(pthread_mutex_unlock => mutex_unlock_from);

unsafe extern "C" fn mutex_lock_from(mutex: *mut pthread_mutex_t, caller: usize) -> c_int {
    if !crate::mutex::recording() {
        return real::pthread_mutex_lock(mutex);
    }
    crate::mutex::acquire(Call::MutexLock, mutex, caller, || {
        real::pthread_mutex_lock(mutex)
    })
}

unsafe extern "C" fn mutex_trylock_from(mutex: *mut pthread_mutex_t, caller: usize) -> c_int {
    if !crate::mutex::recording() {
        return real::pthread_mutex_trylock(mutex);
    }
    crate::mutex::acquire(Call::MutexTrylock, mutex, caller, || {
        real::pthread_mutex_trylock(mutex)
    })
}

unsafe extern "C" fn mutex_unlock_from(mutex: *mut pthread_mutex_t, caller: usize) -> c_int {
    if !crate::mutex::recording() {
        return real::pthread_mutex_unlock(mutex);
    }
    crate::mutex::release(mutex, caller, || real::pthread_mutex_unlock(mutex))
}

// The condition-variable functions, likewise: the return address goes in
// the register after the last argument.
macro_rules! cond_trampoline {
    ($name:ident($($arg:ident: $ty:ty),*) => $target:path, $x86:literal, $arm:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> c_int {
            core::arch::naked_asm!(concat!("mov ", $x86, ", [rsp]"), "jmp {}", sym $target)
        }

        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> c_int {
            core::arch::naked_asm!(concat!("mov ", $arm, ", x30"), "b {}", sym $target)
        }

        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> c_int {
            $target($($arg,)* 0)
        }
    };
}

cond_trampoline!(pthread_cond_wait(_cond: *mut pthread_cond_t, _mutex: *mut pthread_mutex_t)
    => cond_wait_from, "rdx", "x2");
cond_trampoline!(pthread_cond_timedwait(
    _cond: *mut pthread_cond_t,
    _mutex: *mut pthread_mutex_t,
    _abstime: *const timespec
) => cond_timedwait_from, "rcx", "x3");
cond_trampoline!(pthread_cond_signal(_cond: *mut pthread_cond_t) => cond_signal_from, "rsi", "x1");
cond_trampoline!(pthread_cond_broadcast(_cond: *mut pthread_cond_t)
    => cond_broadcast_from, "rsi", "x1");

unsafe extern "C" fn cond_wait_from(
    cond: *mut pthread_cond_t,
    mutex: *mut pthread_mutex_t,
    caller: usize,
) -> c_int {
    if !crate::mutex::gated() {
        return real::pthread_cond_wait(cond, mutex);
    }
    crate::mutex::cond_wait(cond, mutex, false, caller, || {
        real::pthread_cond_wait(cond, mutex)
    })
}

unsafe extern "C" fn cond_timedwait_from(
    cond: *mut pthread_cond_t,
    mutex: *mut pthread_mutex_t,
    abstime: *const timespec,
    caller: usize,
) -> c_int {
    if !crate::mutex::gated() {
        return real::pthread_cond_timedwait(cond, mutex, abstime);
    }
    crate::mutex::cond_wait(cond, mutex, true, caller, || {
        real::pthread_cond_timedwait(cond, mutex, abstime)
    })
}

unsafe extern "C" fn cond_signal_from(cond: *mut pthread_cond_t, caller: usize) -> c_int {
    if !crate::mutex::gated() {
        return real::pthread_cond_signal(cond);
    }
    crate::mutex::cond_wake(cond, false, caller, || real::pthread_cond_signal(cond))
}

unsafe extern "C" fn cond_broadcast_from(cond: *mut pthread_cond_t, caller: usize) -> c_int {
    if !crate::mutex::gated() {
        return real::pthread_cond_broadcast(cond);
    }
    crate::mutex::cond_wake(cond, true, caller, || real::pthread_cond_broadcast(cond))
}

// OpenSSL's plaintext calls (see `tls`). Hooked so that statements sent
// over TLS are classified like those on a plain socket; the socket calls
// they make underneath are then ciphertext and conflict with nothing. The
// real function depends on the caller (several copies of OpenSSL may be
// loaded), so each symbol is a trampoline that passes the caller's return
// address, like the mutex functions: in the register after the last
// argument.
macro_rules! ssl_trampoline {
    ($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $target:path, $x86:literal, $arm:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            core::arch::naked_asm!(concat!("mov ", $x86, ", [rsp]"), "jmp {}", sym $target)
        }

        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            core::arch::naked_asm!(concat!("mov ", $arm, ", x30"), "b {}", sym $target)
        }

        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            $target($($arg),*, 0)
        }
    };
}

ssl_trampoline!(SSL_write(ssl: *mut c_void, buf: *const c_void, num: c_int) -> c_int
    => ssl_write_from, "rcx", "x3");
ssl_trampoline!(SSL_read(ssl: *mut c_void, buf: *mut c_void, num: c_int) -> c_int
    => ssl_read_from, "rcx", "x3");
ssl_trampoline!(SSL_write_ex(ssl: *mut c_void, buf: *const c_void, num: size_t, written: *mut size_t) -> c_int
    => ssl_write_ex_from, "r8", "x4");
ssl_trampoline!(SSL_read_ex(ssl: *mut c_void, buf: *mut c_void, num: size_t, read: *mut size_t) -> c_int
    => ssl_read_ex_from, "r8", "x4");

ssl_trampoline!(SSL_connect(ssl: *mut c_void) -> c_int => ssl_connect_from, "rsi", "x1");
ssl_trampoline!(SSL_do_handshake(ssl: *mut c_void) -> c_int => ssl_handshake_from, "rsi", "x1");

/// This library's own `SSL_*` definitions, in the order of `tls::SslFn`.
fn ssl_hooks() -> [*const c_void; tls::FUNCTIONS] {
    [
        SSL_write as *const c_void,
        SSL_read as *const c_void,
        SSL_write_ex as *const c_void,
        SSL_read_ex as *const c_void,
        std::ptr::null(),
        SSL_connect as *const c_void,
        SSL_do_handshake as *const c_void,
    ]
}

/// `SSL_connect`, `SSL_do_handshake`: the handshake carries no statement,
/// so the socket calls it makes are not recorded (the reentrancy guard
/// passes them through); the descriptor they use is noted for the session.
unsafe fn ssl_handshake(f: tls::SslFn, ssl: *mut c_void, caller: usize) -> c_int {
    let (target, _) = ssl_target(f, ssl, caller);
    let real: unsafe extern "C" fn(*mut c_void) -> c_int = std::mem::transmute(target);
    if ssl.is_null() || !io::recording_any() {
        return real(ssl);
    }
    let Some(guard) = crate::state::Guard::enter() else {
        return real(ssl);
    };
    let ret = tls::learning(ssl, || real(ssl));
    drop(guard);
    ret
}

unsafe extern "C" fn ssl_connect_from(ssl: *mut c_void, caller: usize) -> c_int {
    ssl_handshake(tls::SslFn::Connect, ssl, caller)
}

unsafe extern "C" fn ssl_handshake_from(ssl: *mut c_void, caller: usize) -> c_int {
    ssl_handshake(tls::SslFn::DoHandshake, ssl, caller)
}

type SslIo = unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int;
type SslIoEx = unsafe extern "C" fn(*mut c_void, *mut c_void, size_t, *mut size_t) -> c_int;

/// The real function `f` for `caller` and the descriptor of `ssl`'s
/// session (-1 when it has none or nothing is recorded).
unsafe fn ssl_target(f: tls::SslFn, ssl: *mut c_void, caller: usize) -> (*mut c_void, c_int) {
    // The loader (on a site's first call) and SSL_get_fd may set errno.
    let saved = crate::state::errno();
    let found = ssl_target_inner(f, ssl, caller);
    crate::state::set_errno(saved);
    found
}

unsafe fn ssl_target_inner(f: tls::SslFn, ssl: *mut c_void, caller: usize) -> (*mut c_void, c_int) {
    let real = tls::real_for(caller, &ssl_hooks());
    let target = real.get(f);
    if target.is_null() {
        tls::missing(f, caller);
    }
    let get_fd = real.get(tls::SslFn::GetFd);
    if ssl.is_null() || !io::recording_any() {
        return (target, -1);
    }
    let fd = if get_fd.is_null() {
        -1
    } else {
        let get_fd: unsafe extern "C" fn(*const c_void) -> c_int = std::mem::transmute(get_fd);
        get_fd(ssl)
    };
    (target, if fd >= 0 { fd } else { tls::session_fd(ssl) })
}

unsafe fn ssl_io(
    f: tls::SslFn,
    ssl: *mut c_void,
    buf: *mut c_void,
    num: c_int,
    caller: usize,
) -> c_int {
    let (target, fd) = ssl_target(f, ssl, caller);
    let real: SslIo = std::mem::transmute(target);
    if num <= 0 || (fd < 0 && !io::recording_any()) {
        return real(ssl, buf, num);
    }
    if fd < 0 {
        return tls::learning(ssl, || real(ssl, buf, num));
    }
    let (call, kind) = match f {
        tls::SslFn::Write => (Call::SslWrite, EventKind::Write),
        _ => (Call::SslRead, EventKind::Read),
    };
    io::tls_transfer(
        fd,
        call,
        kind,
        Data::Buf(buf as *const u8, num as usize),
        || real(ssl, buf, num) as isize,
    ) as c_int
}

unsafe fn ssl_io_ex(
    f: tls::SslFn,
    ssl: *mut c_void,
    buf: *mut c_void,
    num: size_t,
    moved: *mut size_t,
    caller: usize,
) -> c_int {
    let (target, fd) = ssl_target(f, ssl, caller);
    let real: SslIoEx = std::mem::transmute(target);
    if num == 0 || (fd < 0 && !io::recording_any()) {
        return real(ssl, buf, num, moved);
    }
    if fd < 0 {
        return tls::learning(ssl, || real(ssl, buf, num, moved));
    }
    let (call, kind) = match f {
        tls::SslFn::WriteEx => (Call::SslWrite, EventKind::Write),
        _ => (Call::SslRead, EventKind::Read),
    };
    let rc = std::cell::Cell::new(0);
    io::tls_transfer(fd, call, kind, Data::Buf(buf as *const u8, num), || {
        let r = real(ssl, buf, num, moved);
        rc.set(r);
        if r == 1 && !moved.is_null() {
            *moved as isize
        } else {
            -1
        }
    });
    rc.get()
}

unsafe extern "C" fn ssl_write_from(
    ssl: *mut c_void,
    buf: *const c_void,
    num: c_int,
    caller: usize,
) -> c_int {
    ssl_io(tls::SslFn::Write, ssl, buf as *mut c_void, num, caller)
}

unsafe extern "C" fn ssl_read_from(
    ssl: *mut c_void,
    buf: *mut c_void,
    num: c_int,
    caller: usize,
) -> c_int {
    ssl_io(tls::SslFn::Read, ssl, buf, num, caller)
}

unsafe extern "C" fn ssl_write_ex_from(
    ssl: *mut c_void,
    buf: *const c_void,
    num: size_t,
    written: *mut size_t,
    caller: usize,
) -> c_int {
    ssl_io_ex(
        tls::SslFn::WriteEx,
        ssl,
        buf as *mut c_void,
        num,
        written,
        caller,
    )
}

unsafe extern "C" fn ssl_read_ex_from(
    ssl: *mut c_void,
    buf: *mut c_void,
    num: size_t,
    read: *mut size_t,
    caller: usize,
) -> c_int {
    ssl_io_ex(tls::SslFn::ReadEx, ssl, buf, num, read, caller)
}

// Threads that native code starts (see `threads`): `pthread_create` passes
// its caller's return address like the functions above, after its four
// arguments.
ssl_trampoline!(pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: crate::threads::StartRoutine,
    arg: *mut c_void
) -> c_int => thread_create_from, "r8", "x4");

unsafe extern "C" fn thread_create_from(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: crate::threads::StartRoutine,
    arg: *mut c_void,
    caller: usize,
) -> c_int {
    crate::threads::create(thread, start, arg, caller, |start, arg| {
        real::pthread_create(thread, attr, start, arg)
    })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_join(thread: libc::pthread_t, retval: *mut *mut c_void) -> c_int {
    crate::threads::join(thread, || real::pthread_join(thread, retval))
}

#[no_mangle]
pub unsafe extern "C" fn pthread_detach(thread: libc::pthread_t) -> c_int {
    crate::threads::detach(thread, || real::pthread_detach(thread))
}
