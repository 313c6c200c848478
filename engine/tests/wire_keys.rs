//! The key mapping: sound (never misses a conflict of the table/row
//! relation), stable, and how often it over-reports.

use std::collections::HashMap;

use frontrun_engine::wire::keys::{
    bucket_key, engine_accesses, row_key, semantic_conflict, table_key, EngineAccess, Resource,
    ResourceName, Scheme, ROW_BUCKETS,
};
use frontrun_engine::wire::sql::{classify_sql, Dialect, RowPolicy, SqlSession};
use frontrun_engine::wire::{fnv1a64, AccessKind, Classification};

/// xorshift64*: deterministic pseudo-random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn expand(res: Resource<'_>, kind: AccessKind) -> Vec<EngineAccess> {
    let mut v = Vec::new();
    engine_accesses(res, kind, |a| v.push(a));
    v
}

fn engine_conflict(a: &[EngineAccess], b: &[EngineAccess]) -> bool {
    let mut by_key: HashMap<u64, Vec<AccessKind>> = HashMap::new();
    for x in a {
        by_key.entry(x.key).or_default().push(x.kind);
    }
    b.iter().any(|y| {
        by_key.get(&y.key).is_some_and(|kinds| {
            kinds
                .iter()
                .any(|k| *k == AccessKind::Write || y.kind == AccessKind::Write)
        })
    })
}

const TABLES: [&[u8]; 3] = [b"accounts", b"ledger", b"users"];

fn random_access(rng: &mut Rng) -> (Resource<'static>, AccessKind) {
    let table = TABLES[rng.below(TABLES.len() as u64) as usize];
    let row = if rng.below(4) == 0 {
        None
    } else {
        Some(fnv1a64(rng.below(200).to_string().as_bytes()))
    };
    let kind = if rng.below(2) == 0 {
        AccessKind::Read
    } else {
        AccessKind::Write
    };
    (
        Resource {
            scheme: Scheme::Sql,
            server: "127.0.0.1:5432",
            table,
            row,
        },
        kind,
    )
}

#[test]
fn the_key_mapping_never_misses_a_conflict_and_rarely_adds_one() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut semantic, mut reported, mut spurious, mut independent) = (0u64, 0u64, 0u64, 0u64);
    let mut distinct_row_writes = 0u64;
    let mut spurious_row_writes = 0u64;
    for _ in 0..200_000 {
        let a = random_access(&mut rng);
        let b = random_access(&mut rng);
        let sem = semantic_conflict((&a.0, a.1), (&b.0, b.1));
        let eng = engine_conflict(&expand(a.0, a.1), &expand(b.0, b.1));
        assert!(!sem || eng, "missed conflict between {a:?} and {b:?}");
        semantic += sem as u64;
        reported += eng as u64;
        if !sem {
            independent += 1;
            spurious += eng as u64;
        }
        if let (Some(x), Some(y)) = (a.0.row, b.0.row) {
            if a.0.table == b.0.table
                && x != y
                && a.1 == AccessKind::Write
                && b.1 == AccessKind::Write
            {
                distinct_row_writes += 1;
                spurious_row_writes += eng as u64;
            }
        }
    }
    let rate = spurious as f64 / independent as f64;
    let rw_rate = spurious_row_writes as f64 / distinct_row_writes as f64;
    println!(
        "pairs: semantic conflicts {semantic}, reported {reported}; \
         over-report {spurious}/{independent} independent pairs = {:.4}; \
         row-write/row-write on distinct rows: {spurious_row_writes}/{distinct_row_writes} = {:.4}",
        rate, rw_rate
    );
    // The only over-report is same-bucket row writes: about 1/B of those.
    let expected = 1.0 / ROW_BUCKETS as f64;
    assert!(
        rw_rate > expected / 3.0 && rw_rate < expected * 3.0,
        "{rw_rate}"
    );
    assert!(spurious <= spurious_row_writes);
}

#[test]
fn row_reads_of_different_rows_and_row_writes_are_exactly_independent() {
    let row = |table: &'static [u8], r: &str| Resource {
        scheme: Scheme::Sql,
        server: "s",
        table,
        row: Some(fnv1a64(r.as_bytes())),
    };
    for i in 0..500 {
        let a = expand(row(b"t", &i.to_string()), AccessKind::Read);
        let b = expand(row(b"t", &(i + 1).to_string()), AccessKind::Write);
        assert!(!engine_conflict(&a, &b));
    }
}

#[test]
fn access_counts_match_the_documented_scheme() {
    let t = Resource {
        scheme: Scheme::Sql,
        server: "s",
        table: b"t",
        row: None,
    };
    let r = Resource { row: Some(7), ..t };
    assert_eq!(expand(t, AccessKind::Read).len(), 1 + ROW_BUCKETS as usize);
    assert_eq!(expand(t, AccessKind::Write).len(), 1 + ROW_BUCKETS as usize);
    assert_eq!(expand(r, AccessKind::Read).len(), 2);
    assert_eq!(expand(r, AccessKind::Write).len(), 3);
}

#[test]
fn keys_are_fnv1a_of_the_documented_strings() {
    assert_eq!(
        table_key(Scheme::Sql, "127.0.0.1:5432", b"accounts"),
        fnv1a64(b"sql:127.0.0.1:5432/accounts")
    );
    assert_eq!(
        bucket_key(Scheme::Sql, "h:1", b"t", 5),
        fnv1a64(b"sql:h:1/t#bucket=5")
    );
    assert_eq!(
        row_key(Scheme::Redis, "h:1", b"", 0xab),
        fnv1a64(b"redis:h:1/#row=00000000000000ab")
    );
    // FNV-1a 64 reference values.
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
}

fn classify(sql: &str) -> Classification {
    let mut out = Classification::new();
    classify_sql(
        sql.as_bytes(),
        Dialect::Postgres,
        &RowPolicy::heuristic(),
        &mut SqlSession::new(),
        &mut out,
    );
    out
}

fn statement_keys(sql: &str) -> Vec<EngineAccess> {
    let c = classify(sql);
    let mut v = Vec::new();
    for a in c.accesses() {
        engine_accesses(
            Resource::of(Scheme::Sql, "127.0.0.1:5432", a),
            a.kind,
            |e| v.push(e),
        );
    }
    v
}

#[test]
fn statements_on_different_rows_are_independent_and_on_the_same_row_conflict() {
    let a = statement_keys("UPDATE accounts SET balance = balance - 1 WHERE id = 1");
    let b = statement_keys("SELECT balance FROM accounts WHERE id = 2");
    let c = statement_keys("SELECT balance FROM public.accounts WHERE id = '1'");
    let d = statement_keys("SELECT sum(balance) FROM accounts");
    let e = statement_keys("TRUNCATE accounts");
    let f = statement_keys("SELECT * FROM ledger WHERE id = 1");
    assert!(!engine_conflict(&a, &b));
    assert!(engine_conflict(&a, &c));
    assert!(engine_conflict(&a, &d));
    assert!(engine_conflict(&b, &e));
    assert!(!engine_conflict(&b, &d));
    assert!(!engine_conflict(&a, &f));
}

#[test]
fn resource_names_read_well_in_reports() {
    let c = classify("SELECT balance FROM accounts WHERE id = 1");
    let name = ResourceName {
        scheme: Scheme::Sql,
        server: "127.0.0.1:5432",
        access: &c.accesses()[0],
    };
    assert_eq!(name.to_string(), "sql:127.0.0.1:5432/accounts#id=1");
    let c = classify("SELECT balance FROM accounts");
    let name = ResourceName {
        scheme: Scheme::Sql,
        server: "127.0.0.1:5432",
        access: &c.accesses()[0],
    };
    assert_eq!(name.to_string(), "sql:127.0.0.1:5432/accounts");
    let mut r = frontrun_engine::wire::resp::RespConn::new();
    let c = r.on_send(b"GET counter\r\n");
    let name = ResourceName {
        scheme: Scheme::Redis,
        server: "127.0.0.1:6379",
        access: &c.accesses()[0],
    };
    assert_eq!(name.to_string(), "redis:127.0.0.1:6379/counter");
}
