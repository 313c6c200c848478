//! Which sockets get a protocol classifier, and what happens when the pool
//! of classifier states runs out: raw Redis commands from Python's socket
//! module, against the local Redis and a stand-in server on a free port.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{python, run, service_up, Attach, Outcome};
use frontrun_ring::{env, DbFallback, EventKind, EventRecord};

/// Opens N connections to PORT, sends `GET <key>` on each and reads the
/// reply, closes them all, then does it once more on a fresh connection.
/// With PORT 0 it first starts a server on a free port that answers every
/// command with a nil and prints that port.
const CLIENT: &str = r#"
import socket, sys, threading
n, port, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
if port == 0:
    srv = socket.socket()
    srv.bind(("127.0.0.1", int(sys.argv[4])))
    srv.listen(64)
    port = srv.getsockname()[1]
    def serve():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=answer, args=(conn,), daemon=True).start()
    def answer(conn):
        with conn:
            while conn.recv(1000):
                conn.sendall(b"$-1\r\n")
    threading.Thread(target=serve, daemon=True).start()
command = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)
def one(s):
    s.sendall(command)
    assert s.recv(100).startswith((b"$", b"-"))
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
for s in socks:
    one(s)
for s in socks:
    s.close()
with socket.create_connection(("127.0.0.1", port)) as s:
    one(s)
print("ok")
"#;

fn run_client(n: usize, port: u16, key: &str, extra: &[(&str, String)]) -> Outcome {
    let mut cmd = Command::new(python());
    cmd.args(["-c", CLIENT, &n.to_string(), &port.to_string(), key]);
    for (k, v) in extra {
        if *k == "listen" {
            cmd.arg(v);
        } else {
            cmd.env(k, v);
        }
    }
    let o = run(
        cmd,
        Attach::Consumed {
            mutex_events: false,
        },
        1 << 16,
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}\n{}", o.stdout, o.stderr);
    assert_eq!(o.lost, 0);
    o
}

/// The main thread's sends, in order.
fn sends(o: &Outcome) -> Vec<&EventRecord> {
    let main = o.events.iter().find(|e| e.pid != 0).map(|e| e.pid).unwrap();
    o.events
        .iter()
        .filter(|e| {
            e.tid == main
                && e.call()
                    .is_some_and(|c| c.name() == "sendto" || c.name() == "send")
        })
        .filter(|e| e.db().is_none_or(|d| !d.is_no_conflict()))
        .collect()
}

#[test]
fn connections_beyond_the_state_pool_fall_back_and_closing_frees_states() {
    if !service_up("127.0.0.1:6379", "Redis") {
        return;
    }
    // The library keeps 128 states (`db::POOL_SLOTS`); nothing else in
    // this program talks to a database.
    let pool = 128;
    let key = format!("pool_{}", std::process::id());
    let o = run_client(pool + 3, 6379, &key, &[]);
    let sends = sends(&o);
    assert_eq!(sends.len(), pool + 4, "one send per connection");
    let precise = format!("redis:localhost:6379/{key}");
    for (i, e) in sends.iter().enumerate() {
        let db = e
            .db()
            .unwrap_or_else(|| panic!("send {i} is not a protocol event: {e:?}"));
        if i < pool || i == pool + 3 {
            assert_eq!(e.name(), precise, "send {i}");
        } else {
            assert!(db.is_coarse(), "send {i}: {e:?}");
            assert_eq!(db.fallback, Some(DbFallback::NoState));
            assert_eq!(e.name(), "socket:localhost:6379");
        }
    }
}

#[test]
fn protocols_variable_maps_a_port_to_a_protocol_or_to_none() {
    if !service_up("127.0.0.1:6379", "Redis") {
        return;
    }
    // "none" for a well-known port: plain socket events as before.
    let o = run_client(1, 6379, "k", &[(env::ENV_PROTOCOLS, "6379=none".into())]);
    assert!(o
        .events
        .iter()
        .all(|e| e.kind() != Some(EventKind::DbAccess)));
    assert!(o
        .events
        .iter()
        .any(|e| e.kind() == Some(EventKind::Write) && e.name() == "socket:127.0.0.1:6379"));

    // An unknown port: plain events unless the variable names it.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let listen = ("listen", port.to_string());
    let o = run_client(1, 0, "k", std::slice::from_ref(&listen));
    assert!(o
        .events
        .iter()
        .all(|e| e.kind() != Some(EventKind::DbAccess)));
    let o = run_client(
        1,
        0,
        "k",
        &[listen, (env::ENV_PROTOCOLS, format!("{port}=redis"))],
    );
    let name = format!("redis:localhost:{port}/k");
    assert!(
        o.events.iter().any(
            |e| e.name() == name && e.db().is_some_and(|d| !d.is_reply() && d.label == "GET k")
        ),
        "no GET k on {name}"
    );
}
