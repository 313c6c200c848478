//! `libfrontrun_io.so`: an `LD_PRELOAD` library that reports the I/O and
//! mutex operations of native code to the frontrun engine.
//!
//! C extensions (libpq under psycopg2, client libraries of other databases)
//! talk to their servers without going through Python, so the engine would
//! not see their conflicts. This library stands in front of libc's
//! `connect`, `send`/`sendto`/`sendmsg`, `recv`/`recvfrom`/`recvmsg`,
//! `read`/`readv`, `write`/`writev`, `close`, `poll`/`ppoll`/`select` and
//! `pthread_mutex_lock`/`trylock`/`unlock` (and the `pthread_cond_*`
//! wait and signal functions, for the scheduling of native code: see
//! `mutex`), and of OpenSSL's plaintext
//! calls (`SSL_write`/`SSL_read` and their `_ex` forms, `SSL_connect`,
//! `SSL_do_handshake`; see `tls`), and `pthread_create`/`pthread_join`/
//! `pthread_detach` (to follow the threads native code starts: see
//! `threads`), names the resource each call
//! touches, and pushes one record per event into the shared-memory ring of
//! `frontrun_ring` (whose docs describe the layout and the attach
//! protocol).
//!
//! # Environment
//!
//! All names are defined in `frontrun_ring::env`:
//! `FRONTRUN_RING` (the ring to attach to; set by the library for its
//! children), `FRONTRUN_MUTEX=1` (mutex events without waiting for the
//! consumer to ask), `FRONTRUN_RING_SLOTS` (size of a ring the library
//! creates, default 65536 slots of 296 bytes), `FRONTRUN_RING_WAIT_US` (how
//! long a producer waits on a full ring before counting its event as lost,
//! default 20 ms; after one such timeout producers stop waiting until the
//! consumer takes an event).
//!
//! `FRONTRUN_PROTOCOLS` (`5433=pg,6380=redis,3306=none`) says which server
//! ports speak which database protocol, beyond the well-known ones.
//!
//! # Database connections
//!
//! Sockets connected to PostgreSQL, MySQL/MariaDB or Redis (see `db`) get a
//! protocol classifier: their sends and receives become `DbAccess` events
//! naming statements' tables, rows and keys instead of `Write`/`Read`
//! events naming the socket (the ring's docs describe the events). A
//! connection made while the library was not yet attached, or whose state
//! is busy (two threads classifying on one descriptor at once) or could not be had (the
//! pool of states is full), is reported on the coarse `socket:<server>` key.
//!
//! # What is not seen
//!
//! Only calls that go through the dynamic symbol table reach the hooks:
//! libc's internal calls (stdio's `fread`/`fwrite`, `fclose`'s close,
//! `posix_spawn`) and raw syscalls do not. `epoll`, `accept`, `open` and
//! `dup` are not hooked: descriptors they create are named lazily on first
//! use. Descriptors 0-2 are never resources.
//!
//! # Rules every hook follows
//!
//! * Pass straight through when the library is not attached to a ring, when
//!   no consumer is attached, or when this thread is already inside hook
//!   logic (a thread-local flag, see `state::Guard`).
//! * Run the real function exactly once, and leave errno as the real
//!   function left it.
//! * Allocate nothing and take no lock: names are formatted into stack
//!   buffers, the descriptor table and the call-site cache are fixed-size
//!   arrays of atomics, and the ring is lock-free. (The one-time exceptions
//!   are initialisation and `dladdr` on a new mutex call site, see `mutex`.)
//! * Never unwind into C: the logic around the real call runs under
//!   `catch_unwind`, and the real call is never repeated after a panic.
//!
//! # Why not redhook
//!
//! The `redhook` crate was the first choice and was set aside, because:
//! its wrapper falls back to calling the real function again when the hook
//! body panics, which would send data twice if the panic came after the real
//! call; it resolves the real function inside `std::sync::Once`, i.e. under
//! a lock taken inside a hook, which deadlocks if the resolution itself
//! re-enters the same hook; it cannot check that the resolved pointer is not
//! the hook itself; and it panics (then aborts) when a symbol is missing.
//! `real.rs` is the small replacement: `dlsym(RTLD_NEXT)` once per function
//! into an atomic pointer, refused if it points back at the hook.
//!
//! # fork and vfork
//!
//! A forked child keeps the inherited mapping and writes into the same
//! ring; a `pthread_atfork` handler refreshes the cached pid and makes every
//! thread re-read its thread id. A `vfork` child (as `subprocess` uses) runs
//! on its parent's memory and thread-local block without any handler
//! running, so it must not change state the parent relies on: it never
//! fills the descriptor table nor the thread's cached id (both checked with
//! `getpid` on the slow path that fills them), forgetting entries is
//! harmless (the parent names them again on next use), and the few events it
//! could produce before `exec` (on descriptors it inherited) carry the
//! parent's pid, and the parent thread's id when that thread had already
//! recorded an event.

mod config;
mod db;
mod hooks;
mod init;
mod io;
mod mutex;
mod names;
mod real;
mod stale;
mod state;
mod threads;
mod tls;
