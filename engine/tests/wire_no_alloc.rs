//! The classifiers never touch the heap: a counting allocator watches this
//! thread while requests of every kind are classified.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use frontrun_engine::wire::keys::{engine_accesses, Resource, ResourceName, Scheme};
use frontrun_engine::wire::mysql::MysqlConn;
use frontrun_engine::wire::pg::PgConn;
use frontrun_engine::wire::resp::RespConn;
use frontrun_engine::wire::sql::{classify_sql, Dialect, RowPolicy, SqlSession};
use frontrun_engine::wire::Classification;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = WATCHING.try_with(|w| {
            if w.get() {
                let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
            }
        });
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many heap allocations this thread made in it.
fn allocations_during(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(0));
    WATCHING.with(|w| w.set(true));
    f();
    WATCHING.with(|w| w.set(false));
    ALLOCATIONS.with(|n| n.get())
}

fn pg_msg(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

#[test]
fn classifying_requests_makes_no_heap_allocation() {
    let query = pg_msg(b'Q', b"BEGIN; UPDATE accounts SET balance = 1 WHERE id = 7; WITH x AS (SELECT * FROM a) SELECT * FROM x JOIN b USING (k) FOR UPDATE; COMMIT\0");
    let mut extended = pg_msg(b'P', b"\0SELECT * FROM t WHERE id = $1\0\0\0");
    extended.extend(pg_msg(b'B', b"\0\0\0\0\0\x01\0\0\0\x017\0\0"));
    extended.extend(pg_msg(b'E', b"\0\0\0\0\0"));
    let resp = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nMULTI\r\nINCR n\r\nEXEC\r\n".to_vec();
    let mysql = {
        let sql = b"\x03INSERT INTO t (id, v) VALUES (1, 'x') ON DUPLICATE KEY UPDATE v = 'y'";
        let mut p = vec![sql.len() as u8, 0, 0, 0];
        p.extend_from_slice(sql);
        p
    };
    let mut pg = PgConn::default();
    let mut redis = RespConn::new();
    let mut my = MysqlConn::default();
    let mut out = Classification::new();
    let mut keys = 0usize;
    let mut name_len = 0usize;
    let n = allocations_during(|| {
        for _ in 0..100 {
            pg.on_send_into(&query, &mut out);
            pg.on_send_into(&extended, &mut out);
            for a in out.accesses() {
                keys += engine_accesses(
                    Resource::of(Scheme::Sql, "127.0.0.1:5432", a),
                    a.kind,
                    |_| {},
                );
                // Formatting into a fixed buffer, as a report would.
                let mut buf = [0u8; 128];
                let mut w = &mut buf[..];
                let _ = std::io::Write::write_fmt(
                    &mut w,
                    format_args!(
                        "{}",
                        ResourceName {
                            scheme: Scheme::Sql,
                            server: "",
                            access: a
                        }
                    ),
                );
                name_len += 128 - w.len();
            }
            redis.on_send_into(&resp, &mut out);
            my.on_send_into(&mysql, &mut out);
            let mut session = SqlSession::new();
            classify_sql(
                b"DELETE FROM t WHERE id = 'x'; TRUNCATE u",
                Dialect::Postgres,
                &RowPolicy::heuristic(),
                &mut session,
                &mut out,
            );
        }
    });
    assert!(keys > 0 && name_len > 0);
    assert_eq!(n, 0, "the classifiers allocated {n} times");
}
