//! MySQL client packets: handshake, commands, prepared statements, split
//! packets, TLS.

use frontrun_wire::mysql::{MysqlConn, MysqlPhase};
use frontrun_wire::snapshot::is_commit_order;
use frontrun_wire::{AccessKind, Classification, Fallback};

fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    v.extend_from_slice(payload);
    v
}

fn command(cmd: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![cmd];
    p.extend_from_slice(body);
    packet(0, &p)
}

fn query(sql: &str) -> Vec<u8> {
    command(0x03, sql.as_bytes())
}

const CLIENT_PROTOCOL_41: u32 = 0x0200;
const CLIENT_SSL: u32 = 0x0800;
const CLIENT_QUERY_ATTRIBUTES: u32 = 1 << 27;

fn handshake_response(caps: u32) -> Vec<u8> {
    let mut p = caps.to_le_bytes().to_vec();
    p.extend_from_slice(&(1u32 << 24).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&[0u8; 23]);
    p.extend_from_slice(b"root\0");
    p.push(0);
    packet(1, &p)
}

fn connected(caps: u32) -> MysqlConn {
    let mut c = MysqlConn::default();
    assert!(c.on_send(&handshake_response(caps)).is_no_conflict());
    assert_eq!(c.phase(), MysqlPhase::Auth);
    // Auth switch answer from the client.
    assert!(c.on_send(&packet(3, b"scrambled")).is_no_conflict());
    c
}

fn summary(c: &Classification) -> Vec<String> {
    let mut v: Vec<String> = c
        .accesses()
        .iter()
        // Commit and snapshot ordering has its own tests.
        .filter(|a| !is_commit_order(a.table.as_bytes()))
        .map(|a| {
            let k = if a.kind == AccessKind::Read { "R" } else { "W" };
            match &a.row {
                Some(r) => format!("{}#{}={}:{}", a.table, r.column, r.display, k),
                None => format!("{}:{}", a.table, k),
            }
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_handshake_conflicts_with_nothing_and_commands_follow() {
    let mut c = connected(CLIENT_PROTOCOL_41);
    let r = c.on_send(&query("UPDATE accounts SET balance = 1 WHERE id = 4"));
    assert_eq!(c.phase(), MysqlPhase::Command);
    assert_eq!(summary(&r), ["accounts#id=4:W"]);
}

#[test]
fn connection_commands_conflict_with_nothing() {
    let mut c = connected(CLIENT_PROTOCOL_41);
    for cmd in [0x0e_u8, 0x02, 0x01] {
        assert!(c.on_send(&command(cmd, b"test")).is_no_conflict());
    }
}

#[test]
fn unknown_commands_fall_back() {
    let mut c = connected(CLIENT_PROTOCOL_41);
    assert_eq!(
        c.on_send(&command(0x42, b"")).fallback(),
        Some(Fallback::Unrecognized)
    );
}

#[test]
fn several_packets_in_one_send_are_all_read() {
    let mut c = connected(CLIENT_PROTOCOL_41);
    let mut buf = query("SELECT * FROM a");
    buf.extend(query("DELETE FROM b WHERE id = 2"));
    let r = c.on_send(&buf);
    assert_eq!(summary(&r), ["a:R", "b#id=2:W"]);
    assert_eq!(r.requests(), 2);
}

#[test]
fn a_packet_split_at_every_byte_is_classified_once_complete() {
    let whole = query("SELECT `balance` FROM `test`.`accounts` WHERE `id` = 3");
    for cut in 1..whole.len() {
        let mut c = connected(CLIENT_PROTOCOL_41);
        assert_eq!(c.on_send(&whole[..cut]).requests(), 0, "cut {cut}");
        assert_eq!(
            summary(&c.on_send(&whole[cut..])),
            ["accounts#id=3:R"],
            "cut {cut}"
        );
    }
}

#[test]
fn query_attributes_prefix_is_skipped() {
    let mut c = connected(CLIENT_PROTOCOL_41 | CLIENT_QUERY_ATTRIBUTES);
    let mut body = vec![0u8, 1u8];
    body.extend_from_slice(b"SELECT * FROM t");
    assert_eq!(summary(&c.on_send(&command(0x03, &body))), ["t:R"]);
}

#[test]
fn an_ssl_request_makes_the_stream_opaque() {
    let mut c = MysqlConn::default();
    let mut p = (CLIENT_PROTOCOL_41 | CLIENT_SSL).to_le_bytes().to_vec();
    p.extend_from_slice(&(1u32 << 24).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&[0u8; 23]);
    assert_eq!(p.len(), 32);
    c.on_send(&packet(1, &p));
    assert!(c.is_encrypted());
    assert_eq!(
        c.on_send(&[0x16, 3, 1, 0, 1, 0]).fallback(),
        Some(Fallback::Encrypted)
    );
}

#[test]
fn a_state_attached_after_authentication_reads_commands() {
    let mut c = MysqlConn::default();
    assert_eq!(summary(&c.on_send(&query("SELECT * FROM t"))), ["t:R"]);
}

fn prepare_ok(id: u32, params: u16) -> Vec<u8> {
    let mut p = vec![0u8];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p.extend_from_slice(&params.to_le_bytes());
    p.push(0);
    p.extend_from_slice(&0u16.to_le_bytes());
    packet(1, &p)
}

/// COM_STMT_EXECUTE with LONGLONG parameters, types sent.
fn execute(id: u32, values: &[i64]) -> Vec<u8> {
    let mut b = id.to_le_bytes().to_vec();
    b.push(0);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend(std::iter::repeat_n(0u8, values.len().div_ceil(8)));
    b.push(1);
    for _ in values {
        b.extend_from_slice(&[0x08, 0x00]);
    }
    for v in values {
        b.extend_from_slice(&v.to_le_bytes());
    }
    command(0x17, &b)
}

#[test]
fn prepared_statements_report_their_rows_once_the_id_is_known() {
    let mut c = connected(CLIENT_PROTOCOL_41);
    assert!(c
        .on_send(&command(
            0x16,
            b"UPDATE accounts SET balance = ? WHERE id = ?"
        ))
        .is_no_conflict());
    c.on_recv(&prepare_ok(5, 2));
    let r = c.on_send(&execute(5, &[100, 8]));
    assert_eq!(summary(&r), ["accounts#id=8:W"]);
    assert_eq!(r.label(), "UPDATE accounts SET balance = ? WHERE id = ?");
}

#[test]
fn execute_of_an_unknown_statement_falls_back() {
    let mut c = connected(CLIENT_PROTOCOL_41);
    c.on_send(&command(0x16, b"SELECT * FROM t WHERE id = ?"));
    // No reply fed: the id is unknown.
    let r = c.on_send(&execute(1, &[1]));
    assert_eq!(r.fallback(), Some(Fallback::UnknownPrepared));
}

#[test]
fn a_closed_statement_is_forgotten() {
    let mut c = connected(CLIENT_PROTOCOL_41);
    c.on_send(&command(0x16, b"SELECT * FROM t WHERE id = ?"));
    c.on_recv(&prepare_ok(2, 1));
    assert_eq!(summary(&c.on_send(&execute(2, &[3]))), ["t#id=3:R"]);
    c.on_send(&command(0x19, &2u32.to_le_bytes()));
    assert_eq!(
        c.on_send(&execute(2, &[3])).fallback(),
        Some(Fallback::UnknownPrepared)
    );
}

#[test]
fn mysql_transactions_republish_writes_at_commit() {
    let mut c = connected(CLIENT_PROTOCOL_41);
    c.on_send(&query("START TRANSACTION"));
    assert!(c.in_transaction());
    c.on_send(&query("INSERT INTO t (id, v) VALUES (1, 'x')"));
    assert_eq!(summary(&c.on_send(&query("COMMIT"))), ["t#id=1:W"]);
    assert!(!c.in_transaction());
}

#[test]
fn plaintext_inside_tls_is_read_after_start_plaintext() {
    let mut c = MysqlConn::default();
    let mut p = (CLIENT_PROTOCOL_41 | CLIENT_SSL).to_le_bytes().to_vec();
    p.extend_from_slice(&(1u32 << 24).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&[0u8; 23]);
    c.on_send(&packet(1, &p));
    assert!(c.is_encrypted());
    c.start_plaintext();
    // The full handshake response, then commands, inside the session.
    let mut full = handshake_response(CLIENT_PROTOCOL_41 | CLIENT_SSL);
    full[3] = 2;
    assert!(c.on_send(&full).is_no_conflict());
    assert!(c.on_send(&packet(4, b"scrambled")).is_no_conflict());
    assert_eq!(
        summary(&c.on_send(&query("UPDATE t SET v = 1 WHERE id = 1"))),
        ["t#id=1:W"]
    );
}

#[test]
fn mysql_row_locks_follow_autocommit_off_and_implicit_commits() {
    let mut c = connected(CLIENT_PROTOCOL_41);
    assert!(!c
        .on_send(&query("UPDATE t SET v = 1 WHERE id = 1"))
        .row_locks_taken());
    c.on_send(&query("SET autocommit = 0"));
    assert!(c
        .on_send(&query("UPDATE t SET v = 2 WHERE id = 1"))
        .row_locks_taken());
    // BEGIN commits the open transaction first.
    let begin = c.on_send(&query("BEGIN"));
    assert!(begin.ends_transaction());
    assert!(c
        .on_send(&query("SELECT v FROM t WHERE id = 1 FOR UPDATE"))
        .row_locks_taken());
    assert!(c.on_send(&query("COMMIT")).ends_transaction());
}
