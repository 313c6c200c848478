//! Ring files: creating, sizing and mapping them, and telling whether the
//! process that wrote into one is still alive.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions};

use crate::{clamp_capacity, ring_len, RingError, RingView};

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
