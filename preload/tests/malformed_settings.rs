//! A malformed entry of `FRONTRUN_PROTOCOLS` is named and skipped; the
//! entries after it still apply.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{python, run, service_up, Attach};
use frontrun_ring::{env, EventKind};

const PING: &str = r#"
import socket
with socket.create_connection(("127.0.0.1", 6379)) as s:
    s.sendall(b"*1\r\n$4\r\nPING\r\n")
    assert s.recv(100).startswith(b"+PONG")
"#;

#[test]
fn a_port_0_entry_is_refused_and_does_not_end_the_list() {
    if !service_up("127.0.0.1:6379", "Redis") {
        return;
    }
    let mut cmd = Command::new(python());
    cmd.args(["-c", PING])
        .env(env::ENV_PROTOCOLS, "0=none,6379=none");
    let o = run(
        cmd,
        Attach::Consumed {
            mutex_events: false,
        },
        1 << 12,
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", o.stderr);
    let complaints: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.starts_with("frontrun:"))
        .collect();
    assert_eq!(complaints.len(), 1, "{}", o.stderr);
    assert!(complaints[0].contains("FRONTRUN_PROTOCOLS") && complaints[0].contains("\"0=none\""));
    // 6379=none applied: plain socket events, no protocol events.
    assert!(o
        .events
        .iter()
        .all(|e| e.kind() != Some(EventKind::DbAccess)));
    assert!(o
        .events
        .iter()
        .any(|e| e.kind() == Some(EventKind::Write) && e.name() == "socket:127.0.0.1:6379"));
}
