//! Shared helpers: build `libfrontrun_io.so` and the C programs of
//! `tests/preload/`, and run programs under the library with this test
//! process as the ring's consumer.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use frontrun_ring as ring;
use frontrun_ring::{env, Consumer, ConsumerOptions, EventKind, EventRecord};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("preload/ is inside the workspace")
        .to_path_buf()
}

/// Build the library with a nested cargo into its own target directory (the
/// outer cargo holds the lock on the main one) and return its path.
pub fn preload_lib() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let target = workspace().join("target").join("preload-tests");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "frontrun-preload", "--lib"])
            .arg("--manifest-path")
            .arg(workspace().join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("running cargo to build libfrontrun_io.so");
        assert!(status.success(), "building libfrontrun_io.so failed");
        let lib = target.join("debug").join("libfrontrun_io.so");
        assert!(lib.is_file(), "{} was not built", lib.display());
        lib
    })
    .clone()
}

/// An empty scratch directory for this test binary and `name`.
pub fn scratch(name: &str) -> PathBuf {
    // Per process: a test runner may run the tests of one binary as
    // processes of their own at the same time, and one must not wipe or
    // rebuild what another is running.
    static MINE: OnceLock<PathBuf> = OnceLock::new();
    let mine = MINE.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let stem = exe.file_stem().unwrap().to_string_lossy().into_owned();
        let binary = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("preload-{stem}"));
        // What processes that are gone left behind.
        if let Ok(entries) = std::fs::read_dir(&binary) {
            for entry in entries.flatten() {
                let pid = entry.file_name().to_string_lossy().parse::<u32>().ok();
                if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        binary.join(std::process::id().to_string())
    });
    let dir = mine.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn c_dir() -> PathBuf {
    workspace().join("tests").join("preload")
}

/// Compile `tests/preload/<name>.c` (once per test binary). `shared` makes
/// a shared library `lib<name>.so`; `link` names libraries built before.
pub fn c_program(name: &str, shared: bool, link: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap();
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    let out_dir = BIN.get_or_init(|| scratch("bin"));
    let out = if shared {
        out_dir.join(format!("lib{name}.so"))
    } else {
        out_dir.join(name)
    };
    let mut cmd = Command::new("gcc");
    cmd.args(["-O1", "-g", "-Wall", "-pthread"]);
    if shared {
        cmd.args(["-shared", "-fPIC"]);
    }
    cmd.arg(c_dir().join(format!("{name}.c")))
        .arg("-o")
        .arg(&out);
    for lib in link {
        cmd.arg(format!("-L{}", out_dir.display()))
            .arg(format!("-l{lib}"))
            .arg(format!("-Wl,-rpath,{}", out_dir.display()));
    }
    cmd.arg("-ldl");
    let status = cmd.status().expect("running gcc");
    assert!(status.success(), "compiling {name}.c failed");
    built.insert(name.to_string(), out.clone());
    out
}

pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub events: Vec<EventRecord>,
    pub lost: u64,
}

/// How to attach the program under test.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// No library at all.
    None,
    /// `LD_PRELOAD` only: the library makes its own ring, nobody consumes.
    PreloadOnly,
    /// `LD_PRELOAD` and `FRONTRUN_RING` pointing at a ring this test
    /// consumes, draining while the program runs.
    Consumed { mutex_events: bool },
    /// As `Consumed`, but events are taken only after the program exits.
    ConsumedLater { mutex_events: bool },
}

fn reader(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stream.read_to_string(&mut s);
        s
    })
}

/// Run `cmd` with the library as `attach` says, within `limit`; a program
/// that takes longer is killed and the test fails.
pub fn run(mut cmd: Command, attach: Attach, slots: u64, limit: Duration) -> Outcome {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env_remove(env::ENV_RING).env_remove("LD_PRELOAD");
    let mut ring_path = None;
    let mut consumer = None;
    match attach {
        Attach::None => {}
        Attach::PreloadOnly => {
            cmd.env("LD_PRELOAD", preload_lib());
        }
        Attach::Consumed { mutex_events } | Attach::ConsumedLater { mutex_events } => {
            let path = ring::create_private_ring(slots).expect("create ring");
            consumer = Some(
                Consumer::open(&path, ConsumerOptions { mutex_events }).expect("attach consumer"),
            );
            cmd.env("LD_PRELOAD", preload_lib())
                .env(env::ENV_RING, &path);
            ring_path = Some(path);
        }
    }
    let drain_while_running = matches!(attach, Attach::Consumed { .. });
    let mut child: Child = cmd.spawn().expect("spawning the program under test");
    let out = reader(child.stdout.take().unwrap());
    let err = reader(child.stderr.take().unwrap());
    let started = Instant::now();
    let mut events = Vec::new();
    let status = loop {
        if drain_while_running {
            if let Some(c) = consumer.as_mut() {
                if c.drain(|r| events.push(*r)) > 0 {
                    continue;
                }
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the program did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_micros(300));
    };
    let mut lost = 0;
    if let Some(mut c) = consumer {
        c.drain(|r| events.push(*r));
        lost = c.lost();
    }
    if let Some(path) = ring_path {
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir(path.parent().unwrap());
    }
    Outcome {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        events,
        lost,
    }
}

pub fn io_events(events: &[EventRecord]) -> Vec<&EventRecord> {
    events
        .iter()
        .filter(|e| {
            !matches!(
                e.kind(),
                Some(EventKind::MutexLock | EventKind::MutexUnlock | EventKind::MutexTryFailed)
            ) && !e.kind().is_some_and(EventKind::is_lineage)
        })
        .collect()
}

/// The interpreter the Python tests run: `FRONTRUN_TEST_PYTHON`, else the
/// repository's `.venv`, else `python3` from PATH (resolved to the real
/// executable, not a version-manager shim).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("FRONTRUN_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace().join(".venv").join("bin").join("python");
    if venv.is_file() {
        return venv;
    }
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is needed for these tests");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

pub fn services_required() -> bool {
    std::env::var("FRONTRUN_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Whether something listens on `addr`; when not, the test fails if
/// services are required and is skipped otherwise (the caller returns).
pub fn service_up(addr: &str, what: &str) -> bool {
    let up = std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
        .is_ok();
    if !up {
        assert!(
            !services_required(),
            "{what} is not reachable on {addr} and FRONTRUN_REQUIRE_SERVICES=1"
        );
        eprintln!("skipped: {what} is not reachable on {addr}");
    }
    up
}
