//! PostgreSQL framing: startup family, simple and extended query, messages
//! split across sends, TLS detection.

use frontrun_wire::pg::{PgConn, PgPhase};
use frontrun_wire::snapshot::is_commit_order;
use frontrun_wire::sql::RowPolicy;
use frontrun_wire::{AccessKind, Classification, Fallback, RowValue};

fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn query(sql: &str) -> Vec<u8> {
    msg(b'Q', &cstr(sql))
}

fn startup() -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    body.extend(cstr("user"));
    body.extend(cstr("root"));
    body.extend(cstr("database"));
    body.extend(cstr("test"));
    body.push(0);
    let mut m = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    m.extend(body);
    m
}

fn ssl_request() -> Vec<u8> {
    let mut m = 8u32.to_be_bytes().to_vec();
    m.extend_from_slice(&80_877_103u32.to_be_bytes());
    m
}

fn parse(name: &str, sql: &str, types: &[u32]) -> Vec<u8> {
    let mut b = cstr(name);
    b.extend(cstr(sql));
    b.extend_from_slice(&(types.len() as i16).to_be_bytes());
    for t in types {
        b.extend_from_slice(&t.to_be_bytes());
    }
    msg(b'P', &b)
}

/// Bind with the given per-parameter format codes and values.
fn bind(stmt: &str, formats: &[i16], values: &[Option<&[u8]>]) -> Vec<u8> {
    let mut b = cstr("");
    b.extend(cstr(stmt));
    b.extend_from_slice(&(formats.len() as i16).to_be_bytes());
    for f in formats {
        b.extend_from_slice(&f.to_be_bytes());
    }
    b.extend_from_slice(&(values.len() as i16).to_be_bytes());
    for v in values {
        match v {
            Some(v) => {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v);
            }
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    b.extend_from_slice(&0i16.to_be_bytes());
    msg(b'B', &b)
}

fn execute() -> Vec<u8> {
    let mut b = cstr("");
    b.extend_from_slice(&0i32.to_be_bytes());
    msg(b'E', &b)
}

fn sync() -> Vec<u8> {
    msg(b'S', &[])
}

fn connected() -> PgConn {
    let mut c = PgConn::new(RowPolicy::heuristic());
    assert!(c.on_send(&startup()).is_no_conflict());
    assert_eq!(c.phase(), PgPhase::Plain);
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
fn the_startup_packet_conflicts_with_nothing() {
    let mut c = PgConn::default();
    let r = c.on_send(&startup());
    assert!(r.is_no_conflict());
    assert_eq!(r.requests(), 0);
    assert_eq!(c.phase(), PgPhase::Plain);
}

#[test]
fn a_simple_query_gives_its_tables() {
    let mut c = connected();
    let r = c.on_send(&query("UPDATE accounts SET balance = 1 WHERE id = 2"));
    assert_eq!(summary(&r), ["accounts#id=2:W"]);
    assert_eq!(r.requests(), 1);
    assert_eq!(r.label(), "UPDATE accounts SET balance = 1 WHERE id = 2");
}

#[test]
fn several_messages_in_one_send_are_all_read() {
    let mut c = connected();
    let mut buf = query("SELECT * FROM a");
    buf.extend(query("DELETE FROM b"));
    buf.extend(sync());
    let r = c.on_send(&buf);
    assert_eq!(summary(&r), ["a:R", "b:W"]);
    assert_eq!(r.requests(), 2);
}

#[test]
fn a_message_split_at_every_byte_is_classified_once_complete() {
    let whole = query("SELECT balance FROM accounts WHERE id = 9");
    for cut in 1..whole.len() {
        let mut c = connected();
        let first = c.on_send(&whole[..cut]);
        assert!(first.is_no_conflict(), "cut {cut}");
        assert_eq!(first.requests(), 0);
        let second = c.on_send(&whole[cut..]);
        assert_eq!(summary(&second), ["accounts#id=9:R"], "cut {cut}");
    }
}

#[test]
fn a_startup_packet_split_across_sends_is_understood() {
    let s = startup();
    let mut c = PgConn::default();
    c.on_send(&s[..3]);
    c.on_send(&s[3..10]);
    c.on_send(&s[10..]);
    assert_eq!(c.phase(), PgPhase::Plain);
    assert_eq!(summary(&c.on_send(&query("SELECT * FROM t"))), ["t:R"]);
}

#[test]
fn a_long_query_split_beyond_the_carry_falls_back() {
    let sql = format!("SELECT * FROM t WHERE x IN ({})", "1,".repeat(3000) + "1");
    let whole = query(&sql);
    let mut c = connected();
    let first = c.on_send(&whole[..1000]);
    assert_eq!(first.fallback(), Some(Fallback::TooLong));
    let second = c.on_send(&whole[1000..]);
    assert_eq!(second.requests(), 0);
    // The stream is still in step afterwards.
    assert_eq!(summary(&c.on_send(&query("SELECT * FROM u"))), ["u:R"]);
}

#[test]
fn a_long_query_in_one_send_is_classified_without_copying() {
    let sql = format!("SELECT * FROM t WHERE x IN ({})", "1,".repeat(3000) + "1");
    let mut c = connected();
    assert_eq!(summary(&c.on_send(&query(&sql))), ["t:R"]);
}

#[test]
fn parse_bind_execute_fills_the_row_from_a_text_parameter() {
    let mut c = connected();
    let mut buf = parse("", "UPDATE accounts SET balance = $1 WHERE id = $2", &[]);
    buf.extend(bind("", &[], &[Some(b"100"), Some(b"7")]));
    buf.extend(execute());
    buf.extend(sync());
    let r = c.on_send(&buf);
    assert_eq!(summary(&r), ["accounts#id=7:W"]);
    assert_eq!(r.requests(), 1);
    assert_eq!(r.label(), "UPDATE accounts SET balance = $1 WHERE id = $2");
}

#[test]
fn a_bound_parameter_names_the_same_row_as_the_literal() {
    let mut c = connected();
    let lit = c.on_send(&query("SELECT * FROM accounts WHERE id = 7"));
    let mut buf = parse("", "SELECT * FROM accounts WHERE id = $1", &[]);
    buf.extend(bind("", &[0], &[Some(b"7")]));
    buf.extend(execute());
    let bound = c.on_send(&buf);
    assert_eq!(
        lit.accesses()[0].row.unwrap().value,
        bound.accesses()[0].row.unwrap().value
    );
    assert!(matches!(
        bound.accesses()[0].row.unwrap().value,
        RowValue::Digest(_)
    ));
}

#[test]
fn parse_and_bind_may_come_in_separate_sends() {
    let mut c = connected();
    assert!(c
        .on_send(&parse("s1", "DELETE FROM jobs WHERE id = $1", &[]))
        .is_no_conflict());
    let mut buf = bind("s1", &[], &[Some(b"3")]);
    buf.extend(execute());
    assert_eq!(summary(&c.on_send(&buf)), ["jobs#id=3:W"]);
}

#[test]
fn binary_parameters_are_decoded_only_for_declared_types() {
    let mut c = connected();
    let mut buf = parse("", "SELECT * FROM t WHERE id = $1", &[23]);
    buf.extend(bind("", &[1], &[Some(&7i32.to_be_bytes())]));
    buf.extend(execute());
    let r = c.on_send(&buf);
    assert_eq!(summary(&r), ["t#id=7:R"]);

    let mut buf = parse("", "SELECT * FROM t WHERE id = $1", &[]);
    buf.extend(bind("", &[1], &[Some(&7i32.to_be_bytes())]));
    buf.extend(execute());
    assert_eq!(summary(&c.on_send(&buf)), ["t:R"]);
}

#[test]
fn a_null_parameter_leaves_the_access_table_level() {
    let mut c = connected();
    let mut buf = parse("", "SELECT * FROM t WHERE id = $1", &[]);
    buf.extend(bind("", &[], &[None]));
    buf.extend(execute());
    assert_eq!(summary(&c.on_send(&buf)), ["t:R"]);
}

#[test]
fn execute_of_an_unknown_statement_falls_back() {
    let mut c = connected();
    let mut buf = bind("never_parsed", &[], &[]);
    buf.extend(execute());
    let r = c.on_send(&buf);
    assert_eq!(r.fallback(), Some(Fallback::UnknownPrepared));
}

#[test]
fn an_ssl_request_answered_s_makes_every_later_send_fall_back() {
    let mut c = PgConn::default();
    assert!(c.on_send(&ssl_request()).is_no_conflict());
    assert_eq!(c.phase(), PgPhase::AwaitSsl);
    c.on_recv(b"S");
    assert!(c.is_encrypted());
    let r = c.on_send(&[0x17, 0x03, 0x03, 0x00, 0x10, 1, 2, 3]);
    assert_eq!(r.fallback(), Some(Fallback::Encrypted));
}

#[test]
fn tls_is_detected_from_the_client_hello_without_the_reply() {
    let mut c = PgConn::default();
    c.on_send(&ssl_request());
    let r = c.on_send(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
    assert_eq!(r.fallback(), Some(Fallback::Encrypted));
    assert!(c.is_encrypted());
}

#[test]
fn an_ssl_request_answered_n_continues_in_plaintext() {
    let mut c = PgConn::default();
    c.on_send(&ssl_request());
    c.on_recv(b"N");
    c.on_send(&startup());
    assert_eq!(c.phase(), PgPhase::Plain);
    assert_eq!(summary(&c.on_send(&query("SELECT * FROM t"))), ["t:R"]);
    // Same, when the caller does not feed replies.
    let mut c = PgConn::default();
    c.on_send(&ssl_request());
    c.on_send(&startup());
    assert_eq!(c.phase(), PgPhase::Plain);
}

#[test]
fn a_state_attached_mid_stream_reads_typed_messages() {
    let mut c = PgConn::default();
    assert_eq!(summary(&c.on_send(&query("SELECT * FROM t"))), ["t:R"]);
}

#[test]
fn garbage_desynchronises_the_stream_for_good() {
    let mut c = connected();
    let r = c.on_send(b"\x01\x02\x03\x04\x05\x06");
    assert_eq!(r.fallback(), Some(Fallback::Desynced));
    let r = c.on_send(&query("SELECT 1"));
    assert_eq!(r.fallback(), Some(Fallback::Desynced));
}

#[test]
fn the_last_request_is_kept_for_replies() {
    let mut c = connected();
    c.on_send(&query("UPDATE accounts SET balance = 0 WHERE id = 1"));
    c.on_send(&sync());
    assert_eq!(summary(c.last()), ["accounts#id=1:W"]);
    let reads: Vec<_> = c.last().reply_reads().collect();
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].kind, AccessKind::Read);
    assert_eq!(reads[0].row, c.last().accesses()[0].row);
}

#[test]
fn a_transaction_over_several_sends_republishes_its_writes_at_commit() {
    let mut c = connected();
    c.on_send(&query("BEGIN"));
    assert!(c.in_transaction());
    c.on_send(&query("UPDATE accounts SET balance = 0 WHERE id = 1"));
    let commit = c.on_send(&query("COMMIT"));
    assert_eq!(summary(&commit), ["accounts#id=1:W"]);
    assert_eq!(commit.label(), "COMMIT");
}

fn untyped(code: u32, extra: &[u8]) -> Vec<u8> {
    let mut m = ((8 + extra.len()) as u32).to_be_bytes().to_vec();
    m.extend_from_slice(&code.to_be_bytes());
    m.extend_from_slice(extra);
    m
}

#[test]
fn a_gssenc_request_answered_g_makes_the_stream_opaque() {
    let mut c = PgConn::default();
    assert!(c.on_send(&untyped(80_877_104, &[])).is_no_conflict());
    assert_eq!(c.phase(), PgPhase::AwaitGss);
    c.on_recv(b"G");
    assert_eq!(
        c.on_send(b"\x00\x00\x00\x10token").fallback(),
        Some(Fallback::Encrypted)
    );
}

#[test]
fn a_cancel_request_conflicts_with_nothing() {
    let mut c = PgConn::default();
    let r = c.on_send(&untyped(80_877_102, &[0, 0, 0, 1, 0, 0, 0, 2]));
    assert!(r.is_no_conflict());
    assert_eq!(c.phase(), PgPhase::Startup);
}

#[test]
fn an_evicted_prepared_statement_falls_back_instead_of_guessing() {
    let mut c = connected();
    c.on_send(&parse("first", "SELECT * FROM a WHERE id = $1", &[]));
    for i in 0..4 {
        c.on_send(&parse(&format!("other{i}"), "SELECT * FROM b", &[]));
    }
    let mut buf = bind("first", &[], &[Some(b"1")]);
    buf.extend(execute());
    assert_eq!(c.on_send(&buf).fallback(), Some(Fallback::UnknownPrepared));
    // The most recent ones are still known.
    let mut buf = bind("other3", &[], &[]);
    buf.extend(execute());
    assert_eq!(summary(&c.on_send(&buf)), ["b:R"]);
}

#[test]
fn a_function_call_message_falls_back() {
    let mut c = connected();
    let r = c.on_send(&msg(b'F', &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
    assert_eq!(r.fallback(), Some(Fallback::Unrecognized));
}

#[test]
fn one_send_classifies_a_bounded_amount_of_sql() {
    let mut c = connected();
    let filler = format!("SELECT * FROM t WHERE note <> '{}'", "x".repeat(10_000));
    let mut buf = Vec::new();
    for _ in 0..10 {
        buf.extend(query(&filler));
    }
    buf.extend(query("DELETE FROM late WHERE id = 1"));
    let r = c.on_send(&buf);
    assert_eq!(r.requests(), 11);
    assert_eq!(r.fallback(), Some(Fallback::TooLong));
    assert_eq!(summary(&r), ["t:R"]);
    // The budget is per send: the next one is classified again.
    assert_eq!(
        summary(&c.on_send(&query("DELETE FROM late WHERE id = 1"))),
        ["late#id=1:W"]
    );
}

#[test]
fn plaintext_from_the_tls_library_is_classified_after_the_handshake() {
    let mut conn = PgConn::default();
    assert!(conn.on_send(&ssl_request()).is_no_conflict());
    conn.on_recv(b"S");
    assert!(conn.is_encrypted());
    // The TLS handshake and anything else on the socket: ciphertext.
    assert_eq!(
        conn.on_send(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
            .fallback(),
        Some(Fallback::Encrypted)
    );
    conn.start_plaintext();
    assert!(!conn.is_encrypted());
    assert!(conn.on_send(&startup()).is_no_conflict());
    let c = conn.on_send(&query("UPDATE accounts SET v = 1 WHERE id = 3"));
    assert_eq!(c.fallback(), None);
    assert!(c
        .accesses()
        .iter()
        .any(|a| a.table.as_str() == "accounts" && a.kind == AccessKind::Write));
    // Once in plaintext, a second call changes nothing.
    conn.start_plaintext();
    assert_eq!(conn.on_send(&query("SELECT 1")).fallback(), None);
}

#[test]
fn writes_inside_a_transaction_hold_row_locks_until_it_ends() {
    let mut c = connected();
    let outside = c.on_send(&query("UPDATE accounts SET balance = 0 WHERE id = 1"));
    assert!(
        !outside.row_locks_taken(),
        "autocommit: the lock ends with the statement"
    );
    assert!(!c.on_send(&query("BEGIN")).ends_transaction());
    let locking = c.on_send(&query(
        "SELECT balance FROM accounts WHERE id = 1 FOR UPDATE",
    ));
    assert!(locking.row_locks_taken());
    assert_eq!(summary(&locking), ["accounts#id=1:W"]);
    let commit = c.on_send(&query("COMMIT"));
    assert!(commit.ends_transaction() && !commit.row_locks_taken());
    c.on_send(&query("BEGIN"));
    c.on_send(&query("DELETE FROM accounts WHERE id = 2"));
    assert!(c.on_send(&query("ROLLBACK")).ends_transaction());
    // COMMIT outside a transaction releases nothing.
    assert!(!c.on_send(&query("COMMIT")).ends_transaction());
}

#[test]
fn a_batch_that_ends_its_transaction_holds_no_row_lock() {
    let mut c = connected();
    let r = c.on_send(&query(
        "BEGIN; UPDATE accounts SET balance = 1 WHERE id = 7; COMMIT",
    ));
    assert!(r.ends_transaction());
    assert!(!r.row_locks_taken());
}
