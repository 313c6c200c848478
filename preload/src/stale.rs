//! Rings left behind by processes that ended without running destructors.
//!
//! The creator of a ring removes it from the library's destructor. A
//! creator that ends with `_exit` (dash does, so every `frontrun sh -c ...`
//! would) or is killed by a signal leaves its directory
//! `frontrun-<pid>-<suffix>/ring` in `/dev/shm`, and nothing else would ever
//! remove it. So a process that is about to create a ring first removes the
//! stale ones: those whose creator is gone. Only directories that are
//! unmistakably frontrun's own are touched:
//!
//! * named `frontrun-<pid>-<suffix>`, a real directory (not a symlink) owned
//!   by this user with mode 0700, holding exactly one regular file `ring`,
//!   owned by this user, that starts with the ring's magic;
//! * whose `<pid>` is not running (absent from `/proc`, or a zombie);
//! * whose ring file nobody holds a lock on: every process attached to a
//!   ring holds a shared `flock` on it for as long as it lives ([`hold`]),
//!   so a ring whose creator is gone stays while its children run, and a
//!   creator in another pid namespace sharing `/dev/shm` keeps its ring.
//!
//! The scan reads one directory and stats a few entries; it runs once per
//! process tree (children attach to the ring they inherit and skip it).

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use frontrun_ring::{process_alive, MAGIC};

/// Remove the stale rings under `parent` (the directory rings are created
/// in). Returns how many were removed.
pub fn remove_stale_rings(parent: &Path) -> usize {
    let Ok(entries) = fs::read_dir(parent) else {
        return 0;
    };
    // SAFETY: getuid and getpid cannot fail.
    let uid = unsafe { libc::getuid() };
    let me = unsafe { libc::getpid() } as u32;
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(creator_of) else {
            continue;
        };
        if pid == me || process_alive(pid) {
            continue;
        }
        if remove_if_stale(&entry.path(), uid) {
            removed += 1;
        }
    }
    removed
}

/// The creator's pid in a ring directory's name `frontrun-<pid>-<suffix>`.
fn creator_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("frontrun-")?;
    let (pid, suffix) = rest.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    pid.parse().ok()
}

fn remove_if_stale(dir: &Path, uid: u32) -> bool {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return false;
    };
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o7777 != 0o700 {
        return false;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    let names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    if names.len() != 1 || names[0] != "ring" {
        return false;
    }
    let ring = dir.join("ring");
    let Ok(file) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&ring)
    else {
        return false;
    };
    let Ok(meta) = file.metadata() else {
        return false;
    };
    if !meta.is_file() || meta.uid() != uid || !starts_with_magic(&file) {
        return false;
    }
    // SAFETY: a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return false;
    }
    fs::remove_file(&ring).is_ok() && fs::remove_dir(dir).is_ok()
}

fn starts_with_magic(mut file: &File) -> bool {
    let mut word = [0u8; 8];
    file.read_exact(&mut word).is_ok() && u64::from_le_bytes(word) == MAGIC
}

/// Lowest descriptor number [`hold`] uses, so that the program's own
/// first `open` still gets the number it would get without the library.
const HOLD_FD_MIN: libc::c_int = 512;

/// Keep a shared lock on the ring this process writes to, for as long as it
/// lives, so that [`remove_stale_rings`] in another process never takes it
/// for stale. Every process attached to the ring holds one (a forked child
/// shares its parent's; an exec'd one takes its own when the library loads
/// again). The descriptor is close-on-exec, moved above the numbers
/// programs usually get, and never closed.
pub fn hold(ring: &Path) {
    let Ok(file) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(ring)
    else {
        return;
    };
    // SAFETY: descriptors this function owns; the one kept is leaked on
    // purpose.
    unsafe {
        let mut fd = file.as_raw_fd();
        let high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, HOLD_FD_MIN);
        if high >= 0 {
            drop(file);
            fd = high;
        } else {
            std::mem::forget(file);
        }
        libc::flock(fd, libc::LOCK_SH | libc::LOCK_NB);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_frontrun_ring_directory_names_give_a_pid() {
        assert_eq!(creator_of("frontrun-1234-0a1b2c3d0"), Some(1234));
        assert_eq!(creator_of("frontrun-check-abc"), None);
        assert_eq!(creator_of("frontrun-12x-abc"), None);
        assert_eq!(creator_of("frontrun-12-"), None);
        assert_eq!(creator_of("frontrun-12-zz"), None);
        assert_eq!(creator_of("PostgreSQL.1234"), None);
    }
}
