//! The functions the hooks stand in front of, found with `dlsym(RTLD_NEXT)`.
//!
//! Each one is resolved the first time it is needed and kept in an atomic
//! pointer; two threads racing to resolve it store the same value, so no
//! lock (and no `Once`) is involved. A resolved pointer equal to the hook
//! itself would make every call recurse forever, so it is refused like a
//! missing symbol: the process stops with one line on stderr, since a hook
//! that cannot reach the real function has no correct way to go on.

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicPtr, Ordering};

use libc::{
    c_int, c_uint, iovec, msghdr, nfds_t, pollfd, pthread_cond_t, pthread_mutex_t, sigset_t,
    size_t, sockaddr, socklen_t, ssize_t, timespec, timeval, FILE,
};

pub struct RealFn {
    name: &'static CStr,
    /// The symbol version to ask for first (`dlvsym`), when the library
    /// defines several.
    version: Option<&'static CStr>,
    ptr: AtomicPtr<c_void>,
}

impl RealFn {
    pub const fn new(name: &'static CStr) -> RealFn {
        RealFn {
            name,
            version: None,
            ptr: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The definition of `name` at `version`. glibc keeps two
    /// `pthread_cond_*` ABIs on x86-64 (`GLIBC_2.2.5`, the old one that
    /// plain `dlsym` may return, and `GLIBC_2.3.2`, which programs link
    /// against); a target with one ABI has no such version, and the
    /// unversioned lookup is then used.
    pub const fn versioned(name: &'static CStr, version: &'static CStr) -> RealFn {
        RealFn {
            name,
            version: Some(version),
            ptr: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    #[inline(always)]
    pub fn get(&self, hook: *const c_void) -> *const c_void {
        let p = self.ptr.load(Ordering::Relaxed);
        if !p.is_null() {
            return p;
        }
        self.resolve(hook)
    }

    #[cold]
    #[inline(never)]
    fn resolve(&self, _hook: *const c_void) -> *const c_void {
        // SAFETY (of the lookups): NUL-terminated names; RTLD_NEXT searches
        // the objects loaded after this library.
        if let Some(version) = self.version {
            for handle in [libc::RTLD_NEXT, libc::RTLD_DEFAULT] {
                // SAFETY: NUL-terminated name and version.
                let p = unsafe { libc::dlvsym(handle, self.name.as_ptr(), version.as_ptr()) };
                if !p.is_null() && !in_this_library(p) {
                    self.ptr.store(p, Ordering::Relaxed);
                    return p;
                }
            }
        }
        // SAFETY: as above.
        let mut p = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) };
        if p.is_null() || in_this_library(p) {
            // Loaded with dlopen at run time (not preloaded): this library
            // comes last in the global scope, so the first definition there
            // is the one the program's objects were bound to.
            // SAFETY: as above.
            p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, self.name.as_ptr()) };
        }
        if p.is_null() || in_this_library(p) {
            fatal(self.name);
        }
        self.ptr.store(p, Ordering::Relaxed);
        p
    }
}

/// Whether `p` points into this library. (Comparing with the hook's own
/// address is not enough: when the library was loaded with dlopen, its
/// references to its exported names bind to the earlier definitions, so
/// `hooks::send as *const _` is libc's `send`.)
fn in_this_library(p: *const c_void) -> bool {
    fn marker() {}
    // SAFETY: dladdr only reads the loader's tables; zeroed info is valid.
    unsafe {
        let mut found: libc::Dl_info = std::mem::zeroed();
        let mut own: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(p, &mut found) == 0 || libc::dladdr(marker as *const c_void, &mut own) == 0
        {
            return false;
        }
        found.dli_fbase == own.dli_fbase
    }
}

fn fatal(name: &CStr) -> ! {
    let parts: [&[u8]; 3] = [
        b"frontrun: libfrontrun_io.so cannot find the real ",
        name.to_bytes(),
        b" (dlsym returned nothing or the hook itself); stopping\n",
    ];
    for part in parts {
        // SAFETY: a raw write(2) to stderr: the `write` symbol is hooked.
        unsafe { libc::syscall(libc::SYS_write, 2, part.as_ptr(), part.len()) };
    }
    // SAFETY: abort never returns.
    unsafe { libc::abort() }
}

/// Declares, for each hooked function, `real::name(args)` calling the next
/// definition of `name` after this library.
macro_rules! real_functions {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty;)*) => {$(
        #[inline(always)]
        pub unsafe fn $name($($arg: $ty),*) -> $ret {
            static REAL: RealFn = RealFn::new(
                match CStr::from_bytes_with_nul(concat!(stringify!($name), "\0").as_bytes()) {
                    Ok(name) => name,
                    Err(_) => panic!("symbol name with a NUL byte"),
                },
            );
            let f: unsafe extern "C" fn($($ty),*) -> $ret =
                std::mem::transmute(REAL.get(crate::hooks::$name as *const c_void));
            f($($arg),*)
        }
    )*};
}

real_functions! {
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t;
    fn sendto(
        fd: c_int,
        buf: *const c_void,
        len: size_t,
        flags: c_int,
        addr: *const sockaddr,
        addrlen: socklen_t,
    ) -> ssize_t;
    fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t;
    fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t;
    fn recvfrom(
        fd: c_int,
        buf: *mut c_void,
        len: size_t,
        flags: c_int,
        addr: *mut sockaddr,
        addrlen: *mut socklen_t,
    ) -> ssize_t;
    fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t;
    fn read(fd: c_int, buf: *mut c_void, len: size_t) -> ssize_t;
    fn readv(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t;
    fn write(fd: c_int, buf: *const c_void, len: size_t) -> ssize_t;
    fn writev(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t;
    fn close(fd: c_int) -> c_int;
    fn fclose(stream: *mut FILE) -> c_int;
    fn dup2(old: c_int, new: c_int) -> c_int;
    fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int;
    fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int;
    fn poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int;
    fn ppoll(
        fds: *mut pollfd,
        nfds: nfds_t,
        timeout: *const timespec,
        sigmask: *const sigset_t,
    ) -> c_int;
    fn select(
        nfds: c_int,
        readfds: *mut libc::fd_set,
        writefds: *mut libc::fd_set,
        exceptfds: *mut libc::fd_set,
        timeout: *mut timeval,
    ) -> c_int;
    fn pthread_mutex_lock(mutex: *mut pthread_mutex_t) -> c_int;
    fn pthread_mutex_trylock(mutex: *mut pthread_mutex_t) -> c_int;
    fn pthread_mutex_unlock(mutex: *mut pthread_mutex_t) -> c_int;
    fn pthread_mutex_init(
        mutex: *mut pthread_mutex_t,
        attr: *const libc::pthread_mutexattr_t,
    ) -> c_int;
    fn pthread_create(
        thread: *mut libc::pthread_t,
        attr: *const libc::pthread_attr_t,
        start: crate::threads::StartRoutine,
        arg: *mut c_void,
    ) -> c_int;
    fn pthread_join(thread: libc::pthread_t, retval: *mut *mut c_void) -> c_int;
    fn pthread_detach(thread: libc::pthread_t) -> c_int;
}

/// Declares `real::name(args)` for functions glibc defines at several
/// versions, calling the given one (see [`RealFn::versioned`]).
macro_rules! real_versioned_functions {
    ($(#[version = $version:literal] fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty;)*) => {$(
        #[inline(always)]
        pub unsafe fn $name($($arg: $ty),*) -> $ret {
            static REAL: RealFn = RealFn::versioned(
                match CStr::from_bytes_with_nul(concat!(stringify!($name), "\0").as_bytes()) {
                    Ok(name) => name,
                    Err(_) => panic!("symbol name with a NUL byte"),
                },
                match CStr::from_bytes_with_nul(concat!($version, "\0").as_bytes()) {
                    Ok(version) => version,
                    Err(_) => panic!("version with a NUL byte"),
                },
            );
            let f: unsafe extern "C" fn($($ty),*) -> $ret =
                std::mem::transmute(REAL.get(crate::hooks::$name as *const c_void));
            f($($arg),*)
        }
    )*};
}

real_versioned_functions! {
    #[version = "GLIBC_2.3.2"]
    fn pthread_cond_wait(cond: *mut pthread_cond_t, mutex: *mut pthread_mutex_t) -> c_int;
    #[version = "GLIBC_2.3.2"]
    fn pthread_cond_timedwait(
        cond: *mut pthread_cond_t,
        mutex: *mut pthread_mutex_t,
        abstime: *const timespec,
    ) -> c_int;
    #[version = "GLIBC_2.3.2"]
    fn pthread_cond_signal(cond: *mut pthread_cond_t) -> c_int;
    #[version = "GLIBC_2.3.2"]
    fn pthread_cond_broadcast(cond: *mut pthread_cond_t) -> c_int;
}
