//! psycopg2 (libpq inside) used from two threads on two connections: the
//! library sees libpq's traffic to `127.0.0.1:5432` and attributes each
//! connection's events to the thread that used it.
//!
//! Needs the local PostgreSQL and Python (the repository's `.venv` from
//! `scripts/setup`, `FRONTRUN_TEST_PYTHON`, or `python3`); psycopg2-binary is
//! installed under target/ with pip when that Python lacks it. A server that
//! is down, or a driver that cannot be had, skips the test, unless
//! FRONTRUN_REQUIRE_SERVICES=1, which makes it fail.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{python, run, service_up, services_required, Attach};
use frontrun_ring::{Call, EventKind};

const TWO_THREADS: &str = r#"
import sys
import threading
import psycopg2

barrier = threading.Barrier(2)
print_lock = threading.Lock()

def work(i):
    conn = psycopg2.connect(host="127.0.0.1", dbname="test", user="postgres")
    barrier.wait()
    cur = conn.cursor()
    for n in range(5):
        cur.execute("select %s + %s", (i, n))
        assert cur.fetchone()[0] == i + n
    with print_lock:
        print("THREAD", i, threading.get_native_id(), conn.fileno(), flush=True)
    barrier.wait()
    conn.close()

errors = []

def guarded(i):
    try:
        work(i)
    except BaseException as e:
        errors.append(repr(e))
        barrier.abort()

threads = [threading.Thread(target=guarded, args=(i,)) for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    sys.exit("thread failed: " + "; ".join(errors))
"#;

/// Make psycopg2 importable: `Some(None)` when `py` has it already,
/// `Some(Some(dir))` after installing psycopg2-binary into `dir` (once, with
/// pip, for a fresh checkout where `scripts/setup` has not run yet), `None`
/// when neither works.
fn psycopg2_path(py: &Path) -> Option<Option<PathBuf>> {
    let imports = |dir: Option<&Path>| {
        let mut cmd = Command::new(py);
        cmd.args(["-c", "import psycopg2"]);
        if let Some(dir) = dir {
            cmd.env("PYTHONPATH", dir);
        }
        cmd.status().is_ok_and(|s| s.success())
    };
    if imports(None) {
        return Some(None);
    }
    let dir = common::workspace()
        .join("target")
        .join("preload-tests")
        .join("python-deps");
    if !imports(Some(&dir)) {
        let installed = Command::new(py)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg("--target")
            .arg(&dir)
            .arg("psycopg2-binary")
            .status()
            .is_ok_and(|s| s.success());
        if !installed || !imports(Some(&dir)) {
            return None;
        }
    }
    Some(Some(dir))
}

#[test]
fn two_threads_on_two_connections_are_told_apart() {
    if !service_up("127.0.0.1:5432", "PostgreSQL") {
        return;
    }
    let py = python();
    let Some(pythonpath) = psycopg2_path(&py) else {
        assert!(
            !services_required(),
            "{} cannot import psycopg2, and installing psycopg2-binary failed, \
             while FRONTRUN_REQUIRE_SERVICES=1",
            py.display()
        );
        eprintln!("skipped: {} cannot import psycopg2", py.display());
        return;
    };
    let mut cmd = Command::new(&py);
    cmd.args(["-c", TWO_THREADS]);
    if let Some(dir) = pythonpath {
        cmd.env("PYTHONPATH", dir);
    }
    let o = run(
        cmd,
        Attach::Consumed {
            mutex_events: false,
        },
        1 << 16,
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", o.stderr);
    assert_eq!(o.lost, 0);

    // thread index -> (native thread id, connection descriptor)
    let mut threads = HashMap::new();
    for line in o.stdout.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f[0] == "THREAD" {
            threads.insert(
                f[1].to_string(),
                (f[2].parse::<u32>().unwrap(), f[3].parse::<i32>().unwrap()),
            );
        }
    }
    assert_eq!(
        threads.len(),
        2,
        "stdout: {}\nstderr: {}",
        o.stdout,
        o.stderr
    );
    let (tid0, fd0) = threads["0"];
    let (tid1, fd1) = threads["1"];
    assert_ne!(tid0, tid1);
    assert_ne!(fd0, fd1, "both connections are open at once");

    // Connect, close and blocking events name the socket; what goes over
    // it is described by protocol events (here, with libpq's default
    // sslmode, read from OpenSSL's plaintext calls), never by raw
    // Write/Read events.
    for (tid, fd) in [(tid0, fd0), (tid1, fd1)] {
        // (The descriptor numbers are reused by files before and after.)
        let mine: Vec<_> = o
            .events
            .iter()
            .filter(|e| e.fd == fd && (e.db().is_some() || e.name().starts_with("socket:")))
            .collect();
        assert!(
            mine.iter().any(|e| e.kind() == Some(EventKind::Connect)
                && e.tid == tid
                && e.name() == "socket:127.0.0.1:5432"),
            "no connect on fd {fd} from thread {tid}"
        );
        for e in &mine {
            assert!(
                !matches!(e.kind(), Some(EventKind::Write | EventKind::Read)),
                "a raw event on a database socket: {e:?}"
            );
            if e.kind() == Some(EventKind::DbAccess) {
                // The queries' sends and receives on this connection all
                // come from its own thread.
                assert_eq!(e.tid, tid, "{e:?}");
            }
        }
        let sends = mine
            .iter()
            .filter(|e| {
                e.kind() == Some(EventKind::DbAccess)
                    && matches!(e.call(), Some(Call::Send | Call::SslWrite))
                    && e.result > 0
            })
            .count();
        assert!(sends >= 5, "only {sends} sends on fd {fd}");
        let replies = mine
            .iter()
            .filter(|e| e.db().is_some_and(|d| d.is_reply()))
            .count();
        assert!(replies >= 5, "only {replies} receives on fd {fd}");
    }
}
