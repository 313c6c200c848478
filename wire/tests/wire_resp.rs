//! Redis RESP framing and the command table.

use frontrun_wire::resp::{key_digest, RespConn};
use frontrun_wire::{AccessKind, Classification, Fallback, RowValue};

fn cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend(format!("${}\r\n", a.len()).into_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// `key:R` / `key:W`, `*:R` for the whole keyspace, sorted.
fn summary(c: &Classification) -> Vec<String> {
    let mut v: Vec<String> = c
        .accesses()
        .iter()
        .map(|a| {
            let k = if a.kind == AccessKind::Read { "R" } else { "W" };
            match &a.row {
                Some(r) => format!("{}:{}", r.display, k),
                None => format!("*:{k}"),
            }
        })
        .collect();
    v.sort();
    v
}

fn one(args: &[&[u8]]) -> Classification {
    RespConn::new().on_send(&cmd(args))
}

#[test]
fn reads_and_writes_follow_the_command_table() {
    let cases: &[(&[&[u8]], &[&str])] = &[
        (&[b"GET", b"k"], &["k:R"]),
        (&[b"SET", b"k", b"v"], &["k:W"]),
        (&[b"SETNX", b"k", b"v"], &["k:W"]),
        (&[b"SETEX", b"k", b"10", b"v"], &["k:W"]),
        (&[b"GETSET", b"k", b"v"], &["k:W"]),
        (&[b"INCR", b"n"], &["n:W"]),
        (&[b"INCRBY", b"n", b"5"], &["n:W"]),
        (&[b"DECR", b"n"], &["n:W"]),
        (&[b"DEL", b"a", b"b"], &["a:W", "b:W"]),
        (&[b"EXISTS", b"a", b"b"], &["a:R", "b:R"]),
        (&[b"EXPIRE", b"k", b"5"], &["k:W"]),
        (&[b"MGET", b"a", b"b", b"c"], &["a:R", "b:R", "c:R"]),
        (&[b"MSET", b"a", b"1", b"b", b"2"], &["a:W", "b:W"]),
        (&[b"HGET", b"h", b"f"], &["h:R"]),
        (&[b"HSET", b"h", b"f", b"v"], &["h:W"]),
        (&[b"HINCRBY", b"h", b"f", b"1"], &["h:W"]),
        (&[b"HGETALL", b"h"], &["h:R"]),
        (&[b"LPUSH", b"l", b"x"], &["l:W"]),
        (&[b"RPUSH", b"l", b"x"], &["l:W"]),
        (&[b"LPOP", b"l"], &["l:W"]),
        (&[b"RPOP", b"l"], &["l:W"]),
        (&[b"LRANGE", b"l", b"0", b"-1"], &["l:R"]),
        (&[b"LLEN", b"l"], &["l:R"]),
        (&[b"SADD", b"s", b"m"], &["s:W"]),
        (&[b"SREM", b"s", b"m"], &["s:W"]),
        (&[b"SMEMBERS", b"s"], &["s:R"]),
        (&[b"SISMEMBER", b"s", b"m"], &["s:R"]),
        (&[b"ZADD", b"z", b"1", b"m"], &["z:W"]),
        (&[b"ZRANGE", b"z", b"0", b"-1"], &["z:R"]),
        (&[b"ZINCRBY", b"z", b"1", b"m"], &["z:W"]),
        (&[b"WATCH", b"k"], &["k:R"]),
        (&[b"RENAME", b"a", b"b"], &["a:W", "b:W"]),
        (&[b"BLPOP", b"a", b"b", b"0"], &["a:W", "b:W"]),
        (&[b"KEYS", b"*"], &["*:R"]),
        (&[b"FLUSHDB"], &["*:W"]),
        (&[b"set", b"lower", b"v"], &["lower:W"]),
    ];
    for (args, want) in cases {
        let got = summary(&one(args));
        assert_eq!(
            got,
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{:?}",
            String::from_utf8_lossy(args[0])
        );
    }
}

#[test]
fn connection_commands_conflict_with_nothing() {
    for args in [
        &[&b"PING"[..]][..],
        &[b"SELECT", b"1"],
        &[b"AUTH", b"pw"],
        &[b"HELLO", b"3"],
        &[b"CLIENT", b"SETNAME", b"x"],
        &[b"INFO"],
    ] {
        let r = one(args);
        assert!(r.is_no_conflict(), "{:?}", String::from_utf8_lossy(args[0]));
        assert_eq!(r.requests(), 1);
    }
}

#[test]
fn unknown_commands_fall_back() {
    assert_eq!(
        one(&[b"SCRIPT", b"FLUSH"]).fallback(),
        Some(Fallback::Unrecognized)
    );
    assert_eq!(
        one(&[b"NOSUCHCOMMAND"]).fallback(),
        Some(Fallback::Unrecognized)
    );
}

#[test]
fn key_digests_are_over_the_raw_key_bytes() {
    let r = one(&[b"GET", b"user:\x00\xff"]);
    assert_eq!(
        r.accesses()[0].row.unwrap().value,
        RowValue::Digest(key_digest(b"user:\x00\xff"))
    );
}

#[test]
fn a_pipeline_reports_every_command() {
    let mut buf = cmd(&[b"GET", b"a"]);
    buf.extend(cmd(&[b"SET", b"b", b"1"]));
    buf.extend(cmd(&[b"PING"]));
    let r = RespConn::new().on_send(&buf);
    assert_eq!(summary(&r), ["a:R", "b:W"]);
    assert_eq!(r.requests(), 3);
    assert_eq!(r.label(), "GET a");
}

#[test]
fn classifying_into_a_kept_buffer_matches_the_returned_result() {
    let mut buf = cmd(&[b"GET", b"a"]);
    buf.extend(cmd(&[b"DEL", b"b", b"c"]));
    let returned = RespConn::new().on_send(&buf);
    let mut kept = Classification::new();
    kept.push(returned.accesses()[0]);
    RespConn::new().on_send_into(&buf, &mut kept);
    assert_eq!(summary(&kept), summary(&returned));
    assert_eq!(kept.requests(), 2);
    assert_eq!(kept.label(), returned.label());
}

#[test]
fn a_command_split_at_every_byte_is_reported_once_complete() {
    let whole = cmd(&[b"SET", b"counter", b"42"]);
    for cut in 1..whole.len() {
        let mut c = RespConn::new();
        let a = c.on_send(&whole[..cut]);
        assert_eq!(a.requests(), 0, "cut {cut}");
        let b = c.on_send(&whole[cut..]);
        assert_eq!(summary(&b), ["counter:W"], "cut {cut}");
    }
}

#[test]
fn a_command_fed_one_byte_at_a_time_is_reported_once() {
    let whole = cmd(&[b"HSET", b"h", b"f", b"v"]);
    let mut c = RespConn::new();
    let mut total = 0;
    for b in &whole {
        let r = c.on_send(std::slice::from_ref(b));
        total += r.requests();
        if r.requests() > 0 {
            assert_eq!(summary(&r), ["h:W"]);
        }
    }
    assert_eq!(total, 1);
}

#[test]
fn huge_values_are_skipped_not_scanned() {
    let value = vec![b'x'; 10 << 20];
    let r = RespConn::new().on_send(&cmd(&[b"SET", b"big", &value]));
    assert_eq!(summary(&r), ["big:W"]);
}

#[test]
fn inline_commands_are_understood() {
    let mut c = RespConn::new();
    let r = c.on_send(b"GET foo\r\nINCR n\r\nPING\r\n");
    assert_eq!(summary(&r), ["foo:R", "n:W"]);
    assert_eq!(r.requests(), 3);
    assert_eq!(
        c.on_send(b"GET \"quoted key\"\r\n").fallback(),
        Some(Fallback::Unrecognized)
    );
}

#[test]
fn multi_exec_reports_queued_commands_and_watched_keys_at_exec() {
    let mut c = RespConn::new();
    assert_eq!(summary(&c.on_send(&cmd(&[b"WATCH", b"w"]))), ["w:R"]);
    assert!(c.on_send(&cmd(&[b"MULTI"])).is_no_conflict());
    assert!(c.in_multi());
    assert!(c.on_send(&cmd(&[b"INCR", b"a"])).is_no_conflict());
    assert!(c.on_send(&cmd(&[b"GET", b"b"])).is_no_conflict());
    let exec = c.on_send(&cmd(&[b"EXEC"]));
    assert_eq!(summary(&exec), ["a:W", "b:R", "w:R"]);
    assert!(!c.in_multi());
    // DISCARD drops the queue.
    c.on_send(&cmd(&[b"MULTI"]));
    c.on_send(&cmd(&[b"SET", b"x", b"1"]));
    c.on_send(&cmd(&[b"DISCARD"]));
    assert!(c.on_send(&cmd(&[b"EXEC"])).is_no_conflict());
}

#[test]
fn too_many_keys_fall_back() {
    let keys: Vec<Vec<u8>> = (0..20).map(|i| format!("k{i}").into_bytes()).collect();
    let mut args: Vec<&[u8]> = vec![b"MGET"];
    args.extend(keys.iter().map(|k| k.as_slice()));
    assert_eq!(one(&args).fallback(), Some(Fallback::TooManyAccesses));
}

#[test]
fn broken_framing_desynchronises_for_good() {
    let mut c = RespConn::new();
    assert_eq!(
        c.on_send(b"*1\r\n#oops\r\n").fallback(),
        Some(Fallback::Desynced)
    );
    assert_eq!(
        c.on_send(&cmd(&[b"GET", b"a"])).fallback(),
        Some(Fallback::Desynced)
    );
}

#[test]
fn tls_at_the_start_of_the_stream_falls_back() {
    let mut c = RespConn::new();
    assert_eq!(
        c.on_send(&[0x16, 0x03, 0x01, 0, 5]).fallback(),
        Some(Fallback::Encrypted)
    );
    assert!(c.is_encrypted());
}

#[test]
fn the_last_command_is_kept_for_replies() {
    let mut c = RespConn::new();
    c.on_send(&cmd(&[b"GET", b"a"]));
    c.on_send(b"*2\r\n$3\r\nGE");
    assert_eq!(summary(c.last()), ["a:R"]);
}

#[test]
fn very_long_keys_are_hashed_by_a_bounded_prefix() {
    let mut a = vec![b'k'; 10_000];
    let mut b = a.clone();
    a.push(b'1');
    b.push(b'2');
    let ra = one(&[b"GET", &a]);
    let rb = one(&[b"SET", &b, b"v"]);
    let (da, db) = (
        ra.accesses()[0].row.unwrap().value,
        rb.accesses()[0].row.unwrap().value,
    );
    // Merged: a safe over-report, and the same digest the helper gives.
    assert_eq!(da, db);
    assert_eq!(da, RowValue::Digest(key_digest(&a)));
    let short = one(&[b"GET", b"k"]);
    assert_ne!(short.accesses()[0].row.unwrap().value, da);
}

#[test]
fn scripts_write_the_keys_they_declare_and_nothing_else() {
    let script: &[u8] = b"return redis.call('INCR', KEYS[1])";
    let c = one(&[b"EVAL", script, b"2", b"a", b"b", b"argv1"]);
    assert_eq!(summary(&c), ["a:W", "b:W"]);
    assert_eq!(c.fallback(), None);
    assert_eq!(c.label(), "EVAL a");
    let c = one(&[b"EVALSHA", b"0123abcd", b"1", b"k", b"x", b"y"]);
    assert_eq!(summary(&c), ["k:W"]);
    let c = one(&[b"FCALL", b"myfunc", b"1", b"k"]);
    assert_eq!(summary(&c), ["k:W"]);
    let c = one(&[b"EVAL_RO", script, b"1", b"k"]);
    assert_eq!(summary(&c), ["k:R"]);
    let c = one(&[b"FCALL_RO", b"f", b"1", b"k", b"arg"]);
    assert_eq!(summary(&c), ["k:R"]);
    // No keys: conflicts with nothing (the script may only touch ARGV).
    let c = one(&[b"EVAL", script, b"0", b"arg"]);
    assert!(c.is_no_conflict());
    // A key count that is not a number is not understood.
    let c = one(&[b"EVAL", script, b"x", b"k"]);
    assert_eq!(c.fallback(), Some(Fallback::Unrecognized));
    // More keys than kept: fall back rather than drop some.
    let many: Vec<Vec<u8>> = (0..20).map(|i| format!("k{i}").into_bytes()).collect();
    let mut args: Vec<&[u8]> = vec![b"EVAL", script, b"20"];
    args.extend(many.iter().map(|k| k.as_slice()));
    assert_eq!(one(&args).fallback(), Some(Fallback::TooManyAccesses));
    assert_eq!(
        one(&[b"SCRIPT", b"LOAD", script]).fallback(),
        Some(Fallback::Unrecognized)
    );
}

#[test]
fn script_keys_are_found_when_the_command_is_split_anywhere() {
    let bytes = cmd(&[
        b"EVAL",
        b"return 1",
        b"6",
        b"a",
        b"bb",
        b"c",
        b"d",
        b"e",
        b"f",
        b"arg",
    ]);
    let whole = summary(&RespConn::new().on_send(&bytes));
    assert_eq!(whole.len(), 6);
    for cut in 1..bytes.len() {
        let mut conn = RespConn::new();
        let mut got = summary(&conn.on_send(&bytes[..cut]));
        got.extend(summary(&conn.on_send(&bytes[cut..])));
        got.sort();
        assert_eq!(got, whole, "cut at {cut}");
    }
}

#[test]
fn a_script_inside_multi_is_reported_at_exec() {
    let mut conn = RespConn::new();
    assert!(conn.on_send(&cmd(&[b"MULTI"])).is_no_conflict());
    assert!(conn
        .on_send(&cmd(&[b"EVAL", b"return 1", b"1", b"k"]))
        .is_no_conflict());
    assert_eq!(summary(&conn.on_send(&cmd(&[b"EXEC"]))), ["k:W"]);
}
