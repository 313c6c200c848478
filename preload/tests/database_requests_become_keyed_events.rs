//! Database drivers under the library: each statement or command becomes
//! `DbAccess` events naming the tables, rows and keys it touches, with the
//! engine keys `wire::keys` gives, so two workers conflict only when they
//! touch the same data.
//!
//! Runs `tests/preload/db_two_threads.py` (two threads, two connections,
//! the same statements, each thread also touching a row and a table of its
//! own) against the local PostgreSQL, MariaDB and Redis, with psycopg2 and
//! psycopg 3 (libpq; psycopg 3 uses the extended protocol), mysqlclient
//! (libmariadb, a C driver), PyMySQL and redis-py (pure Python, through the
//! socket module), all from `scripts/requirements-dev.txt`. A server that
//! is down or a driver that is missing skips the test with a reason, unless
//! FRONTRUN_REQUIRE_SERVICES=1, which makes it fail.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::Duration;

use common::{python, run, service_up, services_required, Attach, Outcome};
use frontrun_ring::{Call, DbFallback, EventKind, EventRecord};
use frontrun_wire::keys::{coarse_key, EngineAccess};
use frontrun_wire::{AccessKind, Fallback};

/// Run the script with `driver`; `None` when the test is skipped.
fn run_driver(driver: &str, module: &str, addr: &str, what: &str, tls: bool) -> Option<Run> {
    if addr.starts_with('/') {
        if !std::path::Path::new(addr).exists() {
            assert!(
                !services_required(),
                "{what} has no socket at {addr} and FRONTRUN_REQUIRE_SERVICES=1"
            );
            eprintln!("skipped: {what} has no socket at {addr}");
            return None;
        }
    } else if !service_up(addr, what) {
        return None;
    }
    let py = python();
    let imports = Command::new(&py)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if !imports {
        assert!(
            !services_required(),
            "{} cannot import {module} (scripts/setup installs it) while FRONTRUN_REQUIRE_SERVICES=1",
            py.display()
        );
        eprintln!("skipped: {} cannot import {module}", py.display());
        return None;
    }
    let script = common::workspace()
        .join("tests")
        .join("preload")
        .join("db_two_threads.py");
    let tag = format!(
        "{}{}_{}",
        driver.replace('-', "_"),
        if tls { "_tls" } else { "" },
        std::process::id()
    );
    let mut cmd = Command::new(&py);
    cmd.arg(script).arg(driver).arg(&tag);
    if tls {
        cmd.arg("tls");
    }
    let o = run(
        cmd,
        Attach::Consumed {
            mutex_events: false,
        },
        1 << 16,
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}\n{}", o.stdout, o.stderr);
    assert_eq!(o.lost, 0);
    let mut tids = HashMap::new();
    for line in o.stdout.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f[0] == "THREAD" {
            tids.insert(f[1].parse::<usize>().unwrap(), f[2].parse::<u32>().unwrap());
        }
    }
    assert_eq!(tids.len(), 2, "{}\n{}", o.stdout, o.stderr);
    Some(Run {
        tids: [tids[&0], tids[&1]],
        o,
        tag,
    })
}

struct Run {
    o: Outcome,
    tids: [u32; 2],
    /// Suffix of this run's table and key names.
    tag: String,
}

fn keys(e: &EventRecord) -> Vec<EngineAccess> {
    let mut v = Vec::new();
    let n = e
        .db()
        .expect("a DbAccess event")
        .engine_accesses(|a| v.push(a));
    assert_eq!(n, v.len());
    v
}

/// Whether two accesses' keys conflict: a shared key, one side writing.
fn conflict(a: &[EngineAccess], b: &[EngineAccess]) -> bool {
    a.iter().any(|x| {
        b.iter()
            .any(|y| x.key == y.key && (x.kind == AccessKind::Write || y.kind == AccessKind::Write))
    })
}

impl Run {
    /// This thread's protocol events, oldest first.
    fn db_events(&self, thread: usize) -> Vec<&EventRecord> {
        self.o
            .events
            .iter()
            .filter(|e| e.kind() == Some(EventKind::DbAccess) && e.tid == self.tids[thread])
            .collect()
    }

    /// The first request (not reply) event of `thread` on resource `name`
    /// with access `kind` and a label starting with `label`.
    fn request(&self, thread: usize, name: &str, kind: AccessKind, label: &str) -> &EventRecord {
        self.db_events(thread)
            .into_iter()
            .find(|e| {
                let db = e.db().unwrap();
                !db.is_reply()
                    && db.kind == Some(kind)
                    && e.name() == name
                    && db.label.starts_with(label)
            })
            .unwrap_or_else(|| {
                panic!(
                    "thread {thread}: no {kind:?} of {name} by {label:?}; its events:\n{}",
                    self.describe(thread)
                )
            })
    }

    /// The first reply event of `thread` after `after` (a receive that
    /// failed, `EAGAIN` on a non-blocking socket, carries nothing).
    fn reply_after(&self, thread: usize, after: &EventRecord) -> &EventRecord {
        self.db_events(thread)
            .into_iter()
            .find(|e| {
                let db = e.db().unwrap();
                e.seq > after.seq && db.is_reply() && !db.is_no_conflict()
            })
            .expect("a receive after the request")
    }

    fn describe(&self, thread: usize) -> String {
        self.db_events(thread)
            .iter()
            .map(|e| {
                let db = e.db().unwrap();
                format!(
                    "  {} {:?} reply={} coarse={} none={} {:?}\n",
                    e.name(),
                    db.kind,
                    db.is_reply(),
                    db.is_coarse(),
                    db.is_no_conflict(),
                    db.label
                )
            })
            .collect()
    }

    /// No raw Write/Read event names the database socket: every byte is
    /// described once, by protocol events.
    /// Waiting for the server still names the connection, from both
    /// threads, so the scheduler can tell a worker waits on it.
    fn assert_waits_name_the_socket(&self, raw: &str) {
        for tid in self.tids {
            assert!(
                self.o.events.iter().any(|e| e.tid == tid
                    && e.kind() == Some(EventKind::BlockEnter)
                    && e.name() == raw),
                "thread {tid} never waited on {raw}"
            );
        }
    }

    fn assert_no_raw_events(&self, raw: &str) {
        for e in &self.o.events {
            if matches!(e.kind(), Some(EventKind::Write | EventKind::Read)) {
                assert_ne!(e.name(), raw, "{e:?}");
            }
        }
    }
}

/// The SQL statements of the script, on `server`. `placeholders`: the
/// driver sends `$n` (extended protocol) rather than literal values.
fn check_sql(r: &Run, server: &str, raw: &str, placeholders: bool) {
    let tag = &r.tag;
    let row1 = format!("sql:{server}/acc_{tag}#id=1");
    let (select_label, update_label) = if placeholders {
        (
            format!("SELECT balance FROM acc_{tag} WHERE id = $1"),
            format!("UPDATE acc_{tag} SET balance = $1 WHERE id = $2"),
        )
    } else {
        (
            format!("SELECT balance FROM acc_{tag} WHERE id = 1"),
            // The value depends on which thread updated first.
            format!("UPDATE acc_{tag} SET balance = "),
        )
    };
    let select_any = format!("SELECT balance FROM acc_{tag} WHERE id = ");
    let (select_label, update_label) = (select_label.as_str(), update_label.as_str());
    let mut selects = Vec::new();
    let mut updates = Vec::new();
    let mut own_rows = Vec::new();
    let mut own_tables = Vec::new();
    for i in 0..2 {
        let select = r.request(i, &row1, AccessKind::Read, select_label);
        let update = r.request(i, &row1, AccessKind::Write, update_label);
        assert!(select.seq < update.seq, "the read comes before the write");
        // The reply to the SELECT reads what the SELECT read, not the socket.
        let reply = r.reply_after(i, select);
        assert_eq!(reply.name(), row1);
        assert_eq!(reply.db().unwrap().kind, Some(AccessKind::Read));
        assert_eq!(
            keys(reply),
            keys(select),
            "the reply reads the SELECT's keys"
        );
        // Every precise access reads the server's coarse key first, where a
        // fallback would meet it.
        assert_eq!(
            keys(select)[0],
            EngineAccess {
                key: coarse_key(server),
                kind: AccessKind::Read
            }
        );
        own_rows.push(r.request(
            i,
            &format!("sql:{server}/acc_{tag}#id={}", 2 + i),
            AccessKind::Read,
            &select_any,
        ));
        own_tables.push(r.request(
            i,
            &format!("sql:{server}/aud{i}_{tag}"),
            AccessKind::Read,
            "SELECT note FROM aud",
        ));
        selects.push(select);
        updates.push(update);
    }
    // Same row from both threads: the same engine keys, and each thread's
    // read conflicts with the other's write.
    assert_eq!(keys(updates[0]), keys(updates[1]));
    assert_eq!(keys(selects[0]), keys(selects[1]));
    assert!(conflict(&keys(selects[1]), &keys(updates[0])));
    assert!(conflict(&keys(selects[0]), &keys(updates[1])));
    // A different row: its own row key, no conflict with the write of row 1.
    let (a, b) = (keys(own_rows[0]), keys(own_rows[1]));
    assert_ne!(a, b);
    assert_ne!(a.last(), keys(selects[0]).last());
    assert!(!conflict(&a, &keys(updates[1])));
    assert!(!conflict(&b, &keys(updates[0])));
    // Unrelated tables: nothing shared but the coarse key (read by both).
    let coarse = coarse_key(server);
    let ta: HashSet<u64> = keys(own_tables[0]).iter().map(|k| k.key).collect();
    let tb: HashSet<u64> = keys(own_tables[1]).iter().map(|k| k.key).collect();
    let shared: Vec<_> = ta.intersection(&tb).collect();
    assert_eq!(shared, vec![&coarse]);
    r.assert_no_raw_events(raw);
    r.assert_waits_name_the_socket(raw);
}

#[test]
fn psycopg2_rows_and_tables_become_keys() {
    let Some(r) = run_driver(
        "psycopg2",
        "psycopg2",
        "127.0.0.1:5432",
        "PostgreSQL",
        false,
    ) else {
        return;
    };
    check_sql(&r, "localhost:5432", "socket:127.0.0.1:5432", false);
    // psycopg2 opens each transaction with BEGIN, which conflicts with
    // nothing; the COMMIT publishes the transaction's write.
    for i in 0..2 {
        let events = r.db_events(i);
        let begin = events
            .iter()
            .find(|e| e.db().unwrap().label == "BEGIN" && !e.db().unwrap().is_reply())
            .expect("a BEGIN");
        assert!(begin.db().unwrap().is_no_conflict());
        assert!(keys(begin).is_empty());
        r.request(
            i,
            &format!("sql:localhost:5432/acc_{}#id=1", r.tag),
            AccessKind::Write,
            "COMMIT",
        );
    }
}

#[test]
fn psycopg3_extended_protocol_binds_parameters_into_row_keys() {
    let Some(r) = run_driver("psycopg", "psycopg", "127.0.0.1:5432", "PostgreSQL", false) else {
        return;
    };
    check_sql(&r, "localhost:5432", "socket:127.0.0.1:5432", true);
}

/// With TLS on, the statements are read from OpenSSL's plaintext calls
/// (here the copy bundled in the driver's wheel): the same keys as without
/// TLS, and nothing from the ciphertext underneath.
fn check_tls(module: &str, placeholders: bool) {
    let Some(r) = run_driver(module, module, "127.0.0.1:5432", "PostgreSQL", true) else {
        return;
    };
    check_sql(&r, "localhost:5432", "socket:127.0.0.1:5432", placeholders);
    for i in 0..2 {
        let events = r.db_events(i);
        assert!(
            events.iter().all(|e| {
                e.db().unwrap().fallback != Some(DbFallback::Wire(Fallback::Encrypted))
            }),
            "ciphertext reported:\n{}",
            r.describe(i)
        );
        assert!(
            events
                .iter()
                .any(|e| e.call() == Some(Call::SslWrite) && e.name().starts_with("sql:")),
            "no statement from SSL_write:\n{}",
            r.describe(i)
        );
    }
}

#[test]
fn postgres_over_tls_is_read_from_the_plaintext_of_openssl() {
    check_tls("psycopg2", false);
}

#[test]
fn psycopg3_over_tls_is_read_from_the_plaintext_of_openssl() {
    // libpq 18 gives its sessions a BIO that SSL_get_fd cannot read: the
    // descriptor is learned from the handshake.
    check_tls("psycopg", true);
}

#[test]
fn mysqlclient_rows_and_tables_become_keys() {
    let Some(r) = run_driver("mysqldb", "MySQLdb", "127.0.0.1:3306", "MariaDB", false) else {
        return;
    };
    check_sql(&r, "localhost:3306", "socket:127.0.0.1:3306", false);
}

#[test]
fn mysqlclient_over_the_unix_socket_names_the_server_by_its_path() {
    let path = "/run/mysqld/mysqld.sock";
    let Some(r) = run_driver("mysqldb-unix", "MySQLdb", path, "MariaDB", false) else {
        return;
    };
    check_sql(
        &r,
        "unix:/run/mysqld/mysqld.sock",
        "socket:unix:/run/mysqld/mysqld.sock",
        false,
    );
}

#[test]
fn pymysql_rows_and_tables_become_keys() {
    let Some(r) = run_driver("pymysql", "pymysql", "127.0.0.1:3306", "MariaDB", false) else {
        return;
    };
    check_sql(&r, "localhost:3306", "socket:127.0.0.1:3306", false);
}

#[test]
fn redis_commands_read_and_write_their_keys() {
    let Some(r) = run_driver("redis", "redis", "127.0.0.1:6379", "Redis", false) else {
        return;
    };
    let tag = &r.tag;
    let counter = format!("redis:localhost:6379/counter_{tag}");
    let counter = counter.as_str();
    let mut gets = Vec::new();
    let mut sets = Vec::new();
    let mut incrs = Vec::new();
    let mut others = Vec::new();
    for i in 0..2 {
        let get = r.request(i, counter, AccessKind::Read, "GET counter_");
        let set = r.request(i, counter, AccessKind::Write, "SET counter_");
        let incr = r.request(i, counter, AccessKind::Write, "INCR");
        assert!(get.seq < set.seq && set.seq < incr.seq);
        let reply = r.reply_after(i, get);
        assert_eq!(reply.name(), counter);
        assert_eq!(keys(reply), keys(get));
        others.push(r.request(
            i,
            &format!("redis:localhost:6379/other{i}_{tag}"),
            AccessKind::Read,
            "GET other",
        ));
        gets.push(get);
        sets.push(set);
        incrs.push(incr);
    }
    assert_eq!(keys(sets[0]), keys(sets[1]));
    assert_eq!(keys(incrs[0]), keys(sets[1]));
    assert!(conflict(&keys(gets[0]), &keys(sets[1])));
    assert!(conflict(&keys(gets[1]), &keys(incrs[0])));
    let (a, b) = (keys(others[0]), keys(others[1]));
    assert_ne!(a.last(), b.last());
    assert_ne!(a.last(), keys(gets[0]).last());
    r.assert_no_raw_events("socket:127.0.0.1:6379");
    r.assert_waits_name_the_socket("socket:127.0.0.1:6379");
}
