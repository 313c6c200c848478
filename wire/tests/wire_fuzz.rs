//! Random and mutated buffers never panic any parser and never take long.

mod common;
use common::Rng;
use std::time::{Duration, Instant};

use frontrun_wire::keys::{engine_accesses, Resource, Scheme};
use frontrun_wire::mysql::MysqlConn;
use frontrun_wire::pg::PgConn;
use frontrun_wire::resp::RespConn;
use frontrun_wire::sql::{classify_sql, Dialect, RowPolicy, SqlSession};
use frontrun_wire::{Classification, MAX_ACCESSES};

/// Buffers per run; each is split into random pieces and fed in order.
const ROUNDS: usize = 60_000;

const SQL_SEEDS: &[&str] = &[
    "SELECT balance FROM accounts WHERE id = $1 FOR UPDATE",
    "UPDATE \"public\".\"accounts\" SET balance = balance - 10 WHERE id = '42' AND x BETWEEN 1 AND 2",
    "INSERT INTO t (id, v) VALUES (1, E'a\\'b') ON CONFLICT (id) DO UPDATE SET v = excluded.v RETURNING id",
    "WITH x AS MATERIALIZED (DELETE FROM q WHERE id = 1 RETURNING *) SELECT * FROM x JOIN y USING (id)",
    "BEGIN; SELECT $tag$ ; FROM $tag$ FROM a /* nested /* c */ */ -- x\n; COMMIT",
    "SELECT `a` FROM `db`.`t` WHERE `id` = ? # c\n AND b = \"s\\\"q\"",
    "CREATE TABLE IF NOT EXISTS t (id int primary key REFERENCES u(id)) ; DROP TABLE a, b",
    "COPY (SELECT * FROM t) TO STDOUT; LOCK TABLE x; TRUNCATE ONLY y; ALTER TABLE z RENAME TO w",
    "SELECT extract(year FROM ts), (SELECT max(id) FROM (SELECT * FROM deep) d) FROM e, LATERAL f(1) g",
];

fn pg_msg(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn pg_seed(rng: &mut Rng) -> Vec<u8> {
    let sql = SQL_SEEDS[rng.below(SQL_SEEDS.len())];
    let mut q = sql.as_bytes().to_vec();
    q.push(0);
    let mut v = Vec::new();
    match rng.below(3) {
        0 => {
            let mut s = 196_608u32.to_be_bytes().to_vec();
            s.extend_from_slice(b"user\0root\0\0");
            v.extend_from_slice(&((s.len() + 4) as u32).to_be_bytes());
            v.extend(s);
            v.extend(pg_msg(b'Q', &q));
        }
        1 => {
            let mut p = b"\0".to_vec();
            p.extend(&q);
            p.extend_from_slice(&[0, 1, 0, 0, 0, 23]);
            v.extend(pg_msg(b'P', &p));
            let mut b = b"\0\0".to_vec();
            b.extend_from_slice(&[
                0, 1, 0, 1, 0, 2, 0, 0, 0, 4, 0, 0, 0, 7, 0, 0, 0, 1, b'9', 0, 0,
            ]);
            v.extend(pg_msg(b'B', &b));
            v.extend(pg_msg(b'E', &[0, 0, 0, 0, 0]));
            v.extend(pg_msg(b'S', &[]));
        }
        _ => v.extend(pg_msg(b'Q', &q)),
    }
    v
}

fn mysql_seed(rng: &mut Rng) -> Vec<u8> {
    let sql = SQL_SEEDS[rng.below(SQL_SEEDS.len())].as_bytes();
    let mut v = Vec::new();
    let cmd = [0x03u8, 0x16, 0x17, 0x0e][rng.below(4)];
    let mut p = vec![cmd];
    if cmd == 0x17 {
        p.extend_from_slice(&[
            1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 8, 0, 5, 0, 0, 0, 0, 0, 0, 0,
        ]);
    } else {
        p.extend_from_slice(sql);
    }
    let n = p.len();
    v.extend_from_slice(&[n as u8, (n >> 8) as u8, (n >> 16) as u8, 0]);
    v.extend(p);
    v
}

fn resp_seed(rng: &mut Rng) -> Vec<u8> {
    let seeds: &[&[u8]] = &[
        b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
        b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n*1\r\n$4\r\nPING\r\n",
        b"MULTI\r\nINCR n\r\nEXEC\r\n",
        b"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n",
    ];
    seeds[rng.below(seeds.len())].to_vec()
}

fn mutate(rng: &mut Rng, buf: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(6) {
        match rng.below(6) {
            0 if !buf.is_empty() => {
                let i = rng.below(buf.len());
                buf[i] = rng.next() as u8;
            }
            1 => {
                let i = rng.below(buf.len() + 1);
                buf.insert(i, rng.next() as u8);
            }
            2 if !buf.is_empty() => {
                let i = rng.below(buf.len());
                buf.remove(i);
            }
            3 if !buf.is_empty() => {
                let i = rng.below(buf.len());
                let j = i + rng.below(buf.len() - i);
                let chunk = buf[i..j].to_vec();
                let at = rng.below(buf.len() + 1);
                buf.splice(at..at, chunk);
            }
            4 if !buf.is_empty() => {
                let i = rng.below(buf.len());
                buf[i] = *[
                    0u8, 0xff, b'\'', b'"', b'$', b'(', b')', b';', b'*', b'\r', b'\n',
                ]
                .get(rng.below(11))
                .unwrap();
            }
            _ => {
                let cut = rng.below(buf.len() + 1);
                buf.truncate(cut);
            }
        }
    }
}

fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    let n = rng.below(300);
    (0..n).map(|_| rng.next() as u8).collect()
}

/// Feeds `buf` split at random points; returns the slowest call.
fn feed<F: FnMut(&[u8]) -> Classification>(rng: &mut Rng, buf: &[u8], mut f: F) -> Duration {
    let mut slowest = Duration::ZERO;
    let mut i = 0;
    while i < buf.len() {
        let n = 1 + rng.below(buf.len() - i);
        let t = Instant::now();
        let c = f(&buf[i..i + n]);
        slowest = slowest.max(t.elapsed());
        assert!(c.accesses().len() <= MAX_ACCESSES);
        let _ = c.label();
        for a in c.accesses() {
            engine_accesses(Resource::of(Scheme::Sql, "s", a), a.kind, |_| {});
        }
        i += n;
    }
    slowest
}

#[test]
fn mutated_and_random_buffers_never_panic_nor_stall() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut slowest = Duration::ZERO;
    let start = Instant::now();
    let mut fed = 0usize;
    for round in 0..ROUNDS {
        let which = round % 4;
        let mut buf = match which {
            0 => pg_seed(&mut rng),
            1 => mysql_seed(&mut rng),
            2 => resp_seed(&mut rng),
            _ => SQL_SEEDS[rng.below(SQL_SEEDS.len())].as_bytes().to_vec(),
        };
        if rng.below(10) == 0 {
            buf = random_bytes(&mut rng);
        } else {
            mutate(&mut rng, &mut buf);
        }
        fed += buf.len();
        let s = match which {
            0 => {
                let mut c = PgConn::default();
                if rng.below(2) == 0 {
                    c.on_recv(&buf[..buf.len().min(1)]);
                }
                feed(&mut rng, &buf, |b| c.on_send(b))
            }
            1 => {
                let mut c = MysqlConn::default();
                c.on_recv(&buf);
                feed(&mut rng, &buf, |b| c.on_send(b))
            }
            2 => {
                let mut c = RespConn::new();
                feed(&mut rng, &buf, |b| c.on_send(b))
            }
            _ => {
                let dialect = if rng.below(2) == 0 {
                    Dialect::Postgres
                } else {
                    Dialect::Mysql
                };
                let mut session = SqlSession::new();
                let policy = RowPolicy::heuristic();
                let t = Instant::now();
                let mut out = Classification::new();
                classify_sql(&buf, dialect, &policy, &mut session, &mut out);
                t.elapsed()
            }
        };
        slowest = slowest.max(s);
    }
    println!(
        "fed {fed} bytes in {ROUNDS} buffers in {:?}; slowest call {:?}",
        start.elapsed(),
        slowest
    );
    // Generous for unoptimised builds on a loaded machine; a quadratic or
    // unbounded scan would blow well past it.
    assert!(
        slowest < Duration::from_millis(250),
        "slowest call took {slowest:?}"
    );
}

#[test]
fn adversarial_sql_stays_bounded() {
    let policy = RowPolicy::heuristic();
    let cases = [
        "(".repeat(16_000),
        "SELECT * FROM t WHERE ".to_string() + &"id = 1 AND ".repeat(1400),
        "'".repeat(16_000),
        "$a$".repeat(5000),
        "/*".repeat(8000),
        ";".repeat(16_000),
        "SELECT ".to_string() + &"a, ".repeat(5000) + "FROM t",
        "WITH ".to_string() + &"x AS (SELECT 1), ".repeat(900) + "y AS (SELECT 1) SELECT * FROM y",
    ];
    for sql in &cases {
        for dialect in [Dialect::Postgres, Dialect::Mysql] {
            let t = Instant::now();
            let mut out = Classification::new();
            classify_sql(
                sql.as_bytes(),
                dialect,
                &policy,
                &mut SqlSession::new(),
                &mut out,
            );
            let took = t.elapsed();
            assert!(
                took < Duration::from_millis(500),
                "{} bytes took {took:?}",
                sql.len()
            );
        }
    }
}
