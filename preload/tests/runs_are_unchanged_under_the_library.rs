//! A program behaves the same with and without the library: same exit code,
//! same output, whether or not a consumer is attached.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{c_program, python, run, scratch, service_up, Attach, Outcome};

const MODES: [Attach; 3] = [
    Attach::None,
    Attach::PreloadOnly,
    Attach::Consumed { mutex_events: true },
];

fn describe(o: &Outcome) -> (Option<i32>, String, String) {
    (o.status.code(), o.stdout.clone(), o.stderr.clone())
}

/// Run the command made by `make` in every mode and compare. Returns the
/// consumed run's outcome so the caller can check events were recorded.
fn same_in_every_mode(mut make: impl FnMut() -> Command) -> Outcome {
    let mut runs: Vec<Outcome> = MODES
        .iter()
        .map(|mode| run(make(), *mode, 1 << 16, Duration::from_secs(120)))
        .collect();
    let plain = describe(&runs[0]);
    for (mode, outcome) in ["LD_PRELOAD only", "with a consumer"]
        .iter()
        .zip(&runs[1..])
    {
        assert_eq!(describe(outcome), plain, "differs {mode}");
    }
    assert_eq!(runs[2].lost, 0);
    runs.pop().unwrap()
}

#[test]
fn c_program_doing_socket_and_file_io() {
    let prog = c_program("io_calls", false, &[]);
    let dir = scratch("unchanged_c");
    let consumed = same_in_every_mode(|| {
        let mut cmd = Command::new(&prog);
        cmd.arg(&dir).arg("quiet");
        cmd
    });
    assert_eq!(consumed.status.code(), Some(7));
    assert!(consumed.stdout.contains("DATA recv hello"));
    assert!(
        !consumed.events.is_empty(),
        "the consumed run recorded nothing"
    );
}

const SOCKETS_AND_THREADS: &str = r#"
import socket, sys, threading

srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen()
port = srv.getsockname()[1]

def serve():
    for _ in range(3):
        conn, _ = srv.accept()
        with conn:
            conn.sendall(conn.recv(100).upper())

server = threading.Thread(target=serve)
server.start()
replies, lock = [], threading.Lock()

def client(i):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"hello {i}".encode())
        reply = s.recv(100).decode()
    with lock:
        replies.append(reply)

clients = [threading.Thread(target=client, args=(i,)) for i in range(3)]
for t in clients:
    t.start()
for t in clients + [server]:
    t.join()
print(sorted(replies))

a, b = socket.socketpair()
a.sendall(b"pair")
print(b.recv(10))

total = 0
def add():
    global total
    for _ in range(10000):
        with lock:
            total += 1
adders = [threading.Thread(target=add) for _ in range(4)]
for t in adders:
    t.start()
for t in adders:
    t.join()
print(total)
print("done", file=sys.stderr)
sys.exit(3)
"#;

const SUBPROCESS_AND_FILES: &str = r#"
import os, subprocess, sys, tempfile

r = subprocess.run(["sh", "-c", "echo out; echo err >&2; exit 4"], capture_output=True, text=True)
print(r.returncode, r.stdout.strip(), r.stderr.strip())
r = subprocess.run(
    [sys.executable, "-c", "import os; print('child', os.environ.get('X'))"],
    capture_output=True, text=True, env={**os.environ, "X": "1"},
)
print(r.returncode, r.stdout.strip())
p = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
print(p.communicate(b"through cat")[0])
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "f")
    with open(path, "w") as f:
        f.write("line\n" * 1000)
    with open(path) as f:
        print(len(f.read()))
sys.exit(5)
"#;

#[test]
fn python_script_using_sockets_and_threads() {
    let py = python();
    let consumed = same_in_every_mode(|| {
        let mut cmd = Command::new(&py);
        cmd.args(["-c", SOCKETS_AND_THREADS]);
        cmd
    });
    assert_eq!(consumed.status.code(), Some(3), "{}", consumed.stderr);
    assert!(consumed.stdout.contains("HELLO 2"));
    assert!(consumed
        .events
        .iter()
        .any(|e| e.name().starts_with("socket:127.0.0.1:")));
}

#[test]
fn python_script_using_subprocess_and_files() {
    let py = python();
    let consumed = same_in_every_mode(|| {
        let mut cmd = Command::new(&py);
        cmd.args(["-c", SUBPROCESS_AND_FILES]);
        cmd
    });
    assert_eq!(consumed.status.code(), Some(5), "{}", consumed.stderr);
    assert!(consumed.stdout.contains("4 out err"));
    assert!(consumed.stdout.contains("0 child 1"));
    // The Python child attached to the same ring and reported under its
    // own pid.
    let pids: std::collections::HashSet<u32> = consumed.events.iter().map(|e| e.pid).collect();
    assert!(pids.len() >= 2, "events from one process only: {pids:?}");
}

#[test]
fn psql_select_1() {
    if !service_up("127.0.0.1:5432", "PostgreSQL") {
        return;
    }
    let consumed = same_in_every_mode(|| {
        let mut cmd = Command::new("psql");
        cmd.args(["-h", "127.0.0.1", "-d", "test", "-c", "select 1"]);
        cmd
    });
    assert!(consumed.status.success(), "{}", consumed.stderr);
    assert!(consumed
        .events
        .iter()
        .any(|e| e.name() == "socket:127.0.0.1:5432"));
}

const DATABASES: &str = r#"
import os, sys
import psycopg2, MySQLdb, pymysql, redis

tag = f"unchanged_{os.environ['TAG']}"
pg = psycopg2.connect(host="127.0.0.1", dbname="test", user="postgres", sslmode="disable")
cur = pg.cursor()
cur.execute(f"CREATE TABLE {tag} (id int primary key, v text)")
cur.execute(f"INSERT INTO {tag} VALUES (%s, %s), (%s, %s)", (1, "a", 2, "b"))
cur.execute(f"SELECT v FROM {tag} WHERE id = %s", (2,))
print("pg", cur.fetchone())
cur.execute(f"DROP TABLE {tag}")
pg.commit()
pg.close()

for name, connect in [
    ("mysqlclient", lambda: MySQLdb.connect(host="127.0.0.1", user="root", passwd="", db="test", ssl_mode="DISABLED")),
    ("pymysql", lambda: pymysql.connect(host="127.0.0.1", user="root", password="", database="test")),
]:
    my = connect()
    cur = my.cursor()
    cur.execute(f"CREATE TABLE {tag} (id int primary key, v text)")
    cur.execute(f"INSERT INTO {tag} VALUES (1, 'x'), (2, 'y')")
    cur.execute(f"SELECT v FROM {tag} WHERE id = 1")
    print(name, cur.fetchone())
    cur.execute(f"DROP TABLE {tag}")
    my.commit()
    my.close()

r = redis.Redis(host="127.0.0.1", port=6379)
r.set(tag, 41)
print("redis", r.incr(tag), r.get(tag))
r.delete(tag)
sys.exit(6)
"#;

#[test]
fn python_script_using_three_databases() {
    for (addr, what) in [
        ("127.0.0.1:5432", "PostgreSQL"),
        ("127.0.0.1:3306", "MariaDB"),
        ("127.0.0.1:6379", "Redis"),
    ] {
        if !service_up(addr, what) {
            return;
        }
    }
    let py = python();
    let imports = Command::new(&py)
        .args(["-c", "import psycopg2, MySQLdb, pymysql, redis"])
        .status()
        .is_ok_and(|s| s.success());
    if !imports {
        assert!(
            !common::services_required(),
            "{} lacks a database driver of scripts/requirements-dev.txt",
            py.display()
        );
        eprintln!("skipped: {} lacks a database driver", py.display());
        return;
    }
    let mut run_number = 0;
    let consumed = same_in_every_mode(|| {
        // Each run its own table and key names, so the runs cannot meet.
        run_number += 1;
        let mut cmd = Command::new(&py);
        cmd.args(["-c", DATABASES])
            .env("TAG", format!("{}_{run_number}", std::process::id()));
        cmd
    });
    assert_eq!(consumed.status.code(), Some(6), "{}", consumed.stderr);
    assert!(consumed.stdout.contains("pg ('b',)"), "{}", consumed.stdout);
    assert!(consumed.stdout.contains("redis 42 b'42'"));
    for scheme in [
        "sql:localhost:5432/",
        "sql:localhost:3306/",
        "redis:localhost:6379/",
    ] {
        assert!(
            consumed.events.iter().any(|e| e.name().starts_with(scheme)),
            "no {scheme} event"
        );
    }
}
