//! Client bytes captured from real clients (psql and psycopg2 over libpq,
//! psycopg 3, PyMySQL, redis-cli, the MariaDB client) talking to local
//! servers, fed back exactly as each `send` carried them.

use frontrun_wire::mysql::MysqlConn;
use frontrun_wire::pg::PgConn;
use frontrun_wire::resp::RespConn;
use frontrun_wire::snapshot::is_commit_order;
use frontrun_wire::{AccessKind, Classification, Fallback};

fn summary(c: &Classification) -> Vec<String> {
    let mut v: Vec<String> = c
        .accesses()
        .iter()
        // Commit and snapshot ordering has its own tests.
        .filter(|a| !is_commit_order(a.table.as_bytes()))
        .map(|a| {
            let k = if a.kind == AccessKind::Read { "R" } else { "W" };
            match &a.row {
                Some(r) if a.table.is_empty() => format!("{}:{}", r.display, k),
                Some(r) => format!("{}#{}={}:{}", a.table, r.column, r.display, k),
                None => format!("{}:{}", a.table, k),
            }
        })
        .collect();
    v.sort();
    v
}

fn client_sends(capture: &[(&str, &'static [u8])]) -> Vec<&'static [u8]> {
    capture
        .iter()
        .filter(|(who, _)| *who == "c")
        .map(|(_, b)| *b)
        .collect()
}

const PSQL_PLAINTEXT: &[(&str, &[u8])] = &[
    ("c", b"\x00\x00\x007\x00\x03\x00\x00user\x00root\x00database\x00test\x00application_name\x00psql\x00\x00"),
    ("c", b"Q\x00\x00\x00LCREATE TABLE IF NOT EXISTS wire_probe (id int primary key, balance int)\x00"),
    ("c", b"Q\x00\x00\x00TINSERT INTO wire_probe (id, balance) VALUES (1, 10) ON CONFLICT (id) DO NOTHING\x00"),
    ("c", b"Q\x00\x00\x00\nBEGIN\x00"),
    ("c", b"Q\x00\x00\x00=UPDATE wire_probe SET balance = balance - 1 WHERE id = 1\x00"),
    ("c", b"Q\x00\x00\x000SELECT balance FROM wire_probe WHERE id = 1\x00"),
    ("c", b"Q\x00\x00\x00\x0bCOMMIT\x00"),
    ("c", b"X\x00\x00\x00\x04"),
];

const PSQL_PREFER_TLS: &[(&str, &[u8])] = &[
    ("c", b"\x00\x00\x00\x08\x04\xd2\x16/"),
    ("s", b"S"),
    ("c", b"\x16\x03\x01\x01 \x01\x00\x01\x1c\x03\x03\x99\xcd>j&\xa8\x82\xd6\xf6_\xd7\x0f\x16\xc5\xde\xea\xaa\xaa\xcf\xdfQ\x8f\x0c\xbb3\xa8'\x1d\x03$A\xe7 \xdbs\xa6X"),
    ("s", b"\x16\x03\x03\x00X\x02\x00\x00T\x03\x03\xcf!\xadt\xe5\x9aa\x11\xbe\x1d\x8c\x02\x1ee\xb8\x91\xc2\xa2\x11\x16z\xbb\x8c^\x07\x9e\x09\xe2\xc8\xa83\x9c \xdbs\xa6X"),
];

const REDIS_CLI: &[(&str, &[u8])] = &[
    ("c", b"*2\r\n$7\r\nCOMMAND\r\n$4\r\nDOCS\r\n"),
    ("c", b"*3\r\n$3\r\nSET\r\n$10\r\nwire:probe\r\n$1\r\n1\r\n"),
    ("c", b"*2\r\n$4\r\nINCR\r\n$10\r\nwire:probe\r\n"),
    ("c", b"*2\r\n$3\r\nGET\r\n$10\r\nwire:probe\r\n"),
    ("c", b"*1\r\n$5\r\nMULTI\r\n"),
    ("c", b"*2\r\n$4\r\nINCR\r\n$10\r\nwire:probe\r\n"),
    ("c", b"*1\r\n$4\r\nEXEC\r\n"),
];

const MARIADB_CLIENT: &[(&str, &[u8])] = &[
    ("c", b"\xc0\x00\x00\x01\x8c\xa2\xbf\x00\x00\x00\x10\x00!\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00root\x00\x00test\x00mysql_native_password\x00~\x03_os\x05Linux\x0c_client_name\nlibmariadb\x04_pid\x042035\x0f_client_version\x063.3.20\x09_platform\x06x86_64\x0cprogram_name\x05mysql\x0c_server_host\x09127.0.0.1"),
    ("c", b"B\x00\x00\x00\x03CREATE TABLE IF NOT EXISTS wire_probe (id int primary key, v int)"),
    ("c", b"&\x00\x00\x00\x03REPLACE INTO wire_probe VALUES (1, 1)"),
    ("c", b"-\x00\x00\x00\x03UPDATE wire_probe SET v = v + 1 WHERE id = 1"),
    ("c", b"&\x00\x00\x00\x03SELECT v FROM wire_probe WHERE id = 1"),
    ("c", b"\x01\x00\x00\x00\x01"),
];

/// psycopg 3 with `sslmode=disable`: parameters bound server-side, as
/// binary int2 values with declared types.
const PSYCOPG3_EXTENDED: &[(&str, &[u8])] = &[
    ("c", b"\x00\x00\x00!\x00\x03\x00\x00user\x00root\x00database\x00test\x00\x00"),
    ("c", b"Q\x00\x00\x00\nBEGIN\x00"),
    ("c", b"P\x00\x00\x00J\x00UPDATE wire_probe SET balance = balance + $1 WHERE id = $2\x00\x00\x02\x00\x00\x00\x15\x00\x00\x00\x15B\x00\x00\x00\x1e\x00\x00\x00\x02\x00\x01\x00\x01\x00\x02\x00\x00\x00\x02\x00\x05\x00\x00\x00\x02\x00\x01\x00\x01\x00\x00D\x00\x00\x00\x06P\x00E\x00\x00\x00\x09\x00\x00\x00\x00\x00S\x00\x00\x00\x04"),
    ("c", b"P\x00\x00\x008\x00SELECT balance FROM wire_probe WHERE id = $1\x00\x00\x01\x00\x00\x00\x15B\x00\x00\x00\x16\x00\x00\x00\x01\x00\x01\x00\x01\x00\x00\x00\x02\x00\x01\x00\x01\x00\x00D\x00\x00\x00\x06P\x00E\x00\x00\x00\x09\x00\x00\x00\x00\x00S\x00\x00\x00\x04"),
    ("c", b"P\x00\x00\x008\x00SELECT balance FROM wire_probe WHERE id = $1\x00\x00\x01\x00\x00\x00\x15B\x00\x00\x00\x16\x00\x00\x00\x01\x00\x01\x00\x01\x00\x00\x00\x02\x00\x01\x00\x01\x00\x00D\x00\x00\x00\x06P\x00E\x00\x00\x00\x09\x00\x00\x00\x00\x00S\x00\x00\x00\x04"),
    ("c", b"Q\x00\x00\x00\x0bCOMMIT\x00"),
    ("c", b"X\x00\x00\x00\x04"),
];

/// psycopg2 with `sslmode=disable`: BEGIN, values interpolated client-side.
const PSYCOPG2: &[(&str, &[u8])] = &[
    (
        "c",
        b"\x00\x00\x00!\x00\x03\x00\x00user\x00root\x00database\x00test\x00\x00",
    ),
    ("c", b"Q\x00\x00\x00\nBEGIN\x00"),
    (
        "c",
        b"Q\x00\x00\x000SELECT balance FROM wire_probe WHERE id = 1\x00",
    ),
    (
        "c",
        b"Q\x00\x00\x004UPDATE wire_probe SET balance = 15 WHERE id = 1\x00",
    ),
    ("c", b"Q\x00\x00\x00\x0bCOMMIT\x00"),
    ("c", b"X\x00\x00\x00\x04"),
];

/// PyMySQL: `SET AUTOCOMMIT = 0`, then implicit transactions.
const PYMYSQL: &[(&str, &[u8])] = &[
    ("c", b"w\x00\x00\x01\x0d\xa2:\x00\xff\xff\xff\x00-\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00root\x00\x00test\x00mysql_native_password\x005\x0c_client_name\x07pymysql\x0f_client_version\x051.2.4\x04_pid\x043331"),
    ("c", b"\x12\x00\x00\x00\x03SET NAMES utf8mb4"),
    ("c", b"\x13\x00\x00\x00\x03SET AUTOCOMMIT = 0"),
    ("c", b"&\x00\x00\x00\x03SELECT v FROM wire_probe WHERE id = 1"),
    ("c", b")\x00\x00\x00\x03UPDATE wire_probe SET v = 3 WHERE id = 1"),
    ("c", b"\x07\x00\x00\x00\x03COMMIT"),
    ("c", b"\x01\x00\x00\x00\x01"),
];

#[test]
fn a_psql_session_without_tls_is_classified_statement_by_statement() {
    let mut conn = PgConn::default();
    let expected: &[&[&str]] = &[
        &[],
        &["wire_probe:W"],
        &["wire_probe#id=1:W"],
        &[],
        &["wire_probe#id=1:W"],
        &["wire_probe#id=1:R"],
        &["wire_probe#id=1:W"],
        &[],
    ];
    let sends = client_sends(PSQL_PLAINTEXT);
    assert_eq!(sends.len(), expected.len());
    for (bytes, want) in sends.iter().zip(expected) {
        let got = conn.on_send(bytes);
        assert_eq!(got.fallback(), None, "{}", got.label());
        assert_eq!(
            summary(&got),
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{}",
            got.label()
        );
    }
    assert!(!conn.in_transaction());
}

#[test]
fn a_psql_session_with_default_sslmode_turns_opaque() {
    // With the server's one-byte answer fed in.
    let mut conn = PgConn::default();
    for (who, bytes) in PSQL_PREFER_TLS {
        match *who {
            "c" => {
                let _ = conn.on_send(bytes);
            }
            _ => conn.on_recv(bytes),
        }
    }
    assert!(conn.is_encrypted());
    // And from the client bytes alone.
    let mut conn = PgConn::default();
    let sends = client_sends(PSQL_PREFER_TLS);
    assert!(conn.on_send(sends[0]).is_no_conflict());
    assert_eq!(conn.on_send(sends[1]).fallback(), Some(Fallback::Encrypted));
}

#[test]
fn a_redis_cli_session_is_classified_command_by_command() {
    let mut conn = RespConn::new();
    let expected: &[&[&str]] = &[
        &[],
        &["wire:probe:W"],
        &["wire:probe:W"],
        &["wire:probe:R"],
        &[],
        &[],
        &["wire:probe:W"],
    ];
    let sends = client_sends(REDIS_CLI);
    assert_eq!(sends.len(), expected.len());
    for (bytes, want) in sends.iter().zip(expected) {
        let got = conn.on_send(bytes);
        assert_eq!(got.fallback(), None, "{}", got.label());
        assert_eq!(got.requests(), 1);
        assert_eq!(
            summary(&got),
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{}",
            got.label()
        );
    }
}

#[test]
fn a_mariadb_client_session_is_classified_statement_by_statement() {
    let mut conn = MysqlConn::default();
    let expected: &[&[&str]] = &[
        &[],
        &["wire_probe:W"],
        &["wire_probe:W"],
        &["wire_probe#id=1:W"],
        &["wire_probe#id=1:R"],
        &[],
    ];
    let sends = client_sends(MARIADB_CLIENT);
    assert_eq!(sends.len(), expected.len());
    for (bytes, want) in sends.iter().zip(expected) {
        let got = conn.on_send(bytes);
        assert_eq!(got.fallback(), None, "{}", got.label());
        assert_eq!(
            summary(&got),
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{}",
            got.label()
        );
    }
}

#[test]
fn a_psycopg3_session_binds_rows_through_the_extended_protocol() {
    let mut conn = PgConn::default();
    let expected: &[&[&str]] = &[
        &[],
        &[],
        &["wire_probe#id=1:W"],
        &["wire_probe#id=1:R"],
        &["wire_probe#id=1:R"],
        &["wire_probe#id=1:W"],
        &[],
    ];
    let sends = client_sends(PSYCOPG3_EXTENDED);
    assert_eq!(sends.len(), expected.len());
    for (bytes, want) in sends.iter().zip(expected) {
        let got = conn.on_send(bytes);
        assert_eq!(got.fallback(), None, "{}", got.label());
        assert_eq!(
            summary(&got),
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{}",
            got.label()
        );
    }
}

fn replay(
    mut send: impl FnMut(&[u8]) -> Classification,
    capture: &[(&str, &'static [u8])],
    expected: &[&[&str]],
) {
    let sends = client_sends(capture);
    assert_eq!(sends.len(), expected.len());
    for (bytes, want) in sends.iter().zip(expected) {
        let got = send(bytes);
        assert_eq!(got.fallback(), None, "{}", got.label());
        assert_eq!(
            summary(&got),
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{}",
            got.label()
        );
    }
}

#[test]
fn a_psycopg2_read_modify_write_gives_row_keys_and_republishes_at_commit() {
    let mut conn = PgConn::default();
    replay(
        |b| conn.on_send(b),
        PSYCOPG2,
        &[
            &[],
            &[],
            &["wire_probe#id=1:R"],
            &["wire_probe#id=1:W"],
            &["wire_probe#id=1:W"],
            &[],
        ],
    );
}

#[test]
fn a_pymysql_session_with_autocommit_off_republishes_at_commit() {
    let mut conn = MysqlConn::default();
    replay(
        |b| conn.on_send(b),
        PYMYSQL,
        &[
            &[],
            &[],
            &[],
            &["wire_probe#id=1:R"],
            &["wire_probe#id=1:W"],
            &["wire_probe#id=1:W"],
            &[],
        ],
    );
}
