//! The classifiers never touch the heap. The compiler holds the crate to
//! it (`#![no_std]`, and neither `alloc` nor `std` linked outside its own
//! unit tests, which the first test checks stays so); a counting allocator
//! then watches this thread while requests of every kind are classified, so
//! a future `extern crate alloc` would be caught at run time as well.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use frontrun_wire::keys::{engine_accesses, Resource, ResourceName, Scheme};
use frontrun_wire::mysql::MysqlConn;
use frontrun_wire::pg::PgConn;
use frontrun_wire::resp::RespConn;
use frontrun_wire::sql::{classify_sql, Dialect, RowPolicy, SqlSession};
use frontrun_wire::Classification;

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

/// Lines of the crate's sources that link `alloc` or `std`, other than the
/// one `extern crate std` of the unit tests (under `#[cfg(test)]`).
#[test]
fn the_crate_is_no_std_links_no_alloc_and_depends_on_nothing() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    assert!(
        lib.lines().any(|l| l.trim() == "#![no_std]"),
        "src/lib.rs must say #![no_std]"
    );
    let mut offending = Vec::new();
    let mut stack = vec![root.join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let l = line.trim();
                let links = l.starts_with("extern crate alloc")
                    || l.starts_with("use alloc::")
                    || l.starts_with("extern crate std")
                    || l.starts_with("use std::")
                    || l.contains(" std::")
                    || l.contains("alloc::");
                let test_only = i > 0 && lines[i - 1].trim() == "#[cfg(test)]";
                if links && !l.starts_with("//") && !test_only {
                    offending.push(format!("{}:{}: {l}", path.display(), i + 1));
                }
            }
        }
    }
    assert!(offending.is_empty(), "std or alloc used: {offending:#?}");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(
        !manifest.contains("dependencies]"),
        "frontrun-wire must depend on nothing"
    );
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
