//! The three protocol machines behave alike behind [`WireConn`], the face
//! the preload library drives them through: a request's classification,
//! the last request kept for its reply, and the encrypted and desynced
//! states.

use frontrun_wire::mysql::MysqlConn;
use frontrun_wire::pg::PgConn;
use frontrun_wire::resp::RespConn;
use frontrun_wire::{Fallback, WireConn};

fn pg_query(sql: &str) -> Vec<u8> {
    let mut m = vec![b'Q'];
    m.extend_from_slice(&((sql.len() + 5) as u32).to_be_bytes());
    m.extend_from_slice(sql.as_bytes());
    m.push(0);
    m
}

fn mysql_query(sql: &str) -> Vec<u8> {
    let n = sql.len() + 1;
    let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, 0, 0x03];
    v.extend_from_slice(sql.as_bytes());
    v
}

fn tables(c: &frontrun_wire::Classification) -> Vec<String> {
    c.accesses()
        .iter()
        .map(|a| a.table.to_string())
        .filter(|t| t == "accounts")
        .collect()
}

#[test]
fn a_request_and_its_reply_are_classified_alike_by_every_machine() {
    let machines: [(&str, Box<dyn WireConn>, Vec<u8>); 3] = [
        (
            "pg",
            Box::new(PgConn::default()),
            pg_query("SELECT * FROM accounts"),
        ),
        (
            "mysql",
            Box::new(MysqlConn::default()),
            mysql_query("SELECT * FROM accounts"),
        ),
        (
            "redis",
            Box::new(RespConn::new()),
            b"*2\r\n$3\r\nGET\r\n$8\r\naccounts\r\n".to_vec(),
        ),
    ];
    for (name, mut conn, request) in machines {
        let sent = conn.on_send(&request);
        assert!(sent.fallback().is_none(), "{name}: {sent:?}");
        assert!(!sent.accesses().is_empty(), "{name}");
        if name != "redis" {
            assert_eq!(tables(&sent), ["accounts"], "{name}");
        }
        // A reply neither changes nor forgets what it answers.
        conn.on_recv(b"whatever the server said");
        assert_eq!(
            conn.last().accesses(),
            sent.accesses(),
            "{name}: the last request"
        );
        assert!(!conn.is_encrypted() && !conn.reply_unmatched(), "{name}");
    }
}

#[test]
fn lost_framing_unmatches_replies_for_the_protocols_whose_replies_are_read() {
    let mut pg: Box<dyn WireConn> = Box::new(PgConn::default());
    pg.on_send(&pg_query("SELECT 1"));
    let r = pg.on_send(b"\x01\x02\x03\x04\x05\x06");
    assert_eq!(r.fallback(), Some(Fallback::Desynced));
    assert!(pg.reply_unmatched());

    // The RESP machine does not read replies: after a lost framing a reply
    // is still taken to answer the last command that completed, while
    // every later request falls back on its own.
    let mut redis: Box<dyn WireConn> = Box::new(RespConn::new());
    let get = redis.on_send(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n");
    let r = redis.on_send(b"*1\r\n#oops\r\n");
    assert_eq!(r.fallback(), Some(Fallback::Desynced));
    assert!(!redis.reply_unmatched());
    assert_eq!(redis.last().accesses(), get.accesses());
    let r = redis.on_send(b"*2\r\n$3\r\nGET\r\n$1\r\nb\r\n");
    assert_eq!(r.fallback(), Some(Fallback::Desynced));
}

#[test]
fn encryption_is_seen_and_start_plaintext_leaves_it() {
    let ssl_request = {
        let mut v = 8u32.to_be_bytes().to_vec();
        v.extend_from_slice(&80877103u32.to_be_bytes());
        v
    };
    let mut pg: Box<dyn WireConn> = Box::new(PgConn::default());
    pg.on_send(&ssl_request);
    pg.on_recv(b"S");
    assert!(pg.is_encrypted());
    pg.start_plaintext();
    assert!(!pg.is_encrypted());

    let mut redis: Box<dyn WireConn> = Box::new(RespConn::new());
    redis.on_send(&[0x16, 0x03, 0x01, 0, 5]);
    assert!(redis.is_encrypted());
    redis.start_plaintext();
    assert!(!redis.is_encrypted());
}
