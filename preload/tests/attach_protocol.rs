//! How a process finds its ring: created at load, inherited through
//! FRONTRUN_RING, exported to the in-process engine, refused when bad.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{c_program, python, run, scratch, Attach};
use frontrun_ring as ring;
use frontrun_ring::{env, EventKind, VERSION};

fn field<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} line in:\n{stdout}"))
}

#[test]
fn library_alone_creates_a_ring_exports_it_and_removes_it_at_exit() {
    let prog = c_program("ring_symbols", false, &[]);
    let mut cmd = Command::new(prog);
    cmd.env(env::ENV_RING_SLOTS, "100");
    let outcome = run(cmd, Attach::PreloadOnly, 64, Duration::from_secs(30));
    assert!(outcome.status.success(), "{}", outcome.stderr);
    let out = &outcome.stdout;
    let path = field(out, "PATH");
    assert!(path.starts_with('/'), "{out}");
    assert_eq!(field(out, "ENV"), path, "children are told the same path");
    assert_eq!(field(out, "CHILD"), path, "a child process sees it");
    assert_eq!(field(out, "OWN"), "1");
    assert_eq!(field(out, "VERSION"), VERSION.to_string());
    // FRONTRUN_RING_SLOTS, rounded up to a power of two.
    assert_eq!(field(out, "SIZE"), ring::ring_len(128).to_string());
    assert!(
        !Path::new(path).exists(),
        "the creator removes the file at exit"
    );
    assert_eq!(outcome.stderr, "");
}

#[test]
fn library_attaches_to_the_ring_named_by_the_environment() {
    let prog = c_program("ring_symbols", false, &[]);
    let outcome = run(
        Command::new(prog),
        Attach::Consumed {
            mutex_events: false,
        },
        64,
        Duration::from_secs(30),
    );
    assert!(outcome.status.success(), "{}", outcome.stderr);
    let out = &outcome.stdout;
    let path = field(out, "PATH");
    assert_eq!(field(out, "ENV"), path);
    assert_eq!(field(out, "CHILD"), path);
    assert_eq!(field(out, "OWN"), "0", "the ring belongs to the test");
}

#[test]
fn without_the_library_the_symbols_are_absent() {
    let prog = c_program("ring_symbols", false, &[]);
    let outcome = run(
        Command::new(prog),
        Attach::None,
        64,
        Duration::from_secs(30),
    );
    assert_eq!(outcome.stdout, "NOLIB\n");
}

#[test]
fn bad_ring_values_disable_the_library_with_one_line_and_change_nothing_else() {
    let prog = c_program("io_calls", false, &[]);
    let dir = scratch("bad_rings");
    let io_dir = scratch("bad_rings_io");
    let make = || {
        let mut cmd = Command::new(&prog);
        cmd.arg(&io_dir).arg("quiet");
        cmd
    };
    let plain = run(make(), Attach::None, 64, Duration::from_secs(30));

    let wrong_magic = dir.join("wrong_magic");
    std::fs::write(&wrong_magic, vec![0x5au8; ring::ring_len(64)]).unwrap();
    let wrong_size = dir.join("wrong_size");
    ring::create_ring_file(&wrong_size, 64).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wrong_size)
        .unwrap()
        .set_len(ring::ring_len(64) as u64 - 192)
        .unwrap();
    let cases = [
        (dir.join("missing"), "No such file"),
        (wrong_magic, "not a frontrun ring"),
        (wrong_size, "file size does not match"),
    ];
    for (path, reason) in cases {
        let mut cmd = make();
        cmd.env("LD_PRELOAD", common::preload_lib())
            .env(env::ENV_RING, &path);
        let out = run_keeping_env(cmd);
        assert_eq!(out.status.code(), plain.status.code());
        assert_eq!(String::from_utf8_lossy(&out.stdout), plain.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].starts_with(&format!("frontrun: FRONTRUN_RING={}: ", path.display()))
                && lines[0].contains(reason)
                && lines[0].contains("disabled"),
            "{}",
            lines[0]
        );
    }
}

/// `run` clears LD_PRELOAD and FRONTRUN_RING; these cases set their own.
fn run_keeping_env(mut cmd: Command) -> std::process::Output {
    cmd.output().expect("spawn")
}

#[test]
fn mutex_events_follow_the_consumer_request_or_frontrun_mutex() {
    let prog = c_program("mutex_stress", false, &[]);
    let count = |mutex_events: bool, env_on: bool| {
        let mut cmd = Command::new(&prog);
        cmd.args(["1", "10", "0"]);
        if env_on {
            cmd.env(env::ENV_MUTEX, "1");
        }
        let o = run(
            cmd,
            Attach::Consumed { mutex_events },
            1024,
            Duration::from_secs(30),
        );
        assert!(o.status.success());
        o.events
            .iter()
            .filter(|e| {
                matches!(
                    e.kind(),
                    Some(EventKind::MutexLock | EventKind::MutexUnlock | EventKind::MutexTryFailed)
                )
            })
            .count()
    };
    assert_eq!(count(false, false), 0);
    assert_eq!(count(true, false), 20);
    assert_eq!(count(false, true), 20);
}

const MUTEX_FROM_EXTENSION: &str = r#"
import ctypes, socket, sys, threading, time

lib = ctypes.CDLL(sys.argv[1])
lib.mutex_user_lock_address.restype = ctypes.c_void_p
for _ in range(3):
    lib.mutex_user_bump()
# Blocking calls release and retake the GIL.
time.sleep(0.01)
a, b = socket.socketpair()
a.sendall(b"x")
b.recv(1)
t = threading.Thread(target=time.sleep, args=(0.01,))
t.start()
t.join()
print(lib.mutex_user_lock_address())
"#;

#[test]
fn mutex_events_name_the_calling_library_and_skip_the_interpreter() {
    let lib = c_program("mutex_user", true, &[]);
    let mut cmd = Command::new(python());
    cmd.args(["-c", MUTEX_FROM_EXTENSION]).arg(&lib);
    let o = run(
        cmd,
        Attach::Consumed { mutex_events: true },
        1 << 16,
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", o.stderr);
    let address: u64 = o.stdout.trim().parse().unwrap();
    let mutex_events: Vec<_> = o
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.kind(),
                Some(EventKind::MutexLock | EventKind::MutexUnlock | EventKind::MutexTryFailed)
            )
        })
        .collect();
    let ours: Vec<_> = mutex_events.iter().filter(|e| e.addr == address).collect();
    assert_eq!(ours.len(), 12, "{ours:?}");
    for e in &ours {
        assert_eq!(e.origin(), "libmutex_user.so");
        assert_eq!(e.name(), format!("mutex:{address:#x}"));
    }
    for e in &mutex_events {
        let origin = e.origin();
        assert!(
            !origin.starts_with("libpython") && !origin.starts_with("python"),
            "interpreter mutex reached the ring: {e:?}"
        );
    }
}
