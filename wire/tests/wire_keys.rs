//! The key mapping: sound (never misses a conflict of the table/row
//! relation), stable, and how often it over-reports.

mod common;
use common::Rng;
use std::collections::HashMap;

use frontrun_wire::keys::{
    bucket_key, bucket_of, coarse_key, engine_accesses, row_key, semantic_conflict, server_name,
    table_key, unix_server_name, EngineAccess, Resource, ResourceName, Scheme, ROW_BUCKETS,
};
use frontrun_wire::snapshot::is_commit_order;
use frontrun_wire::sql::{classify_sql, Dialect, RowPolicy, SqlSession};
use frontrun_wire::{fnv1a64, AccessKind, Classification};

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
    let table = TABLES[rng.below_u64(TABLES.len() as u64) as usize];
    let row = if rng.below_u64(4) == 0 {
        None
    } else {
        Some(fnv1a64(rng.below_u64(200).to_string().as_bytes()))
    };
    let kind = if rng.below_u64(2) == 0 {
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
fn keys_that_differ_in_one_byte_spread_over_the_buckets() {
    // Real keys are structured, not random: `user:a` and `user:A` differ
    // by 32 in one byte, consecutive ids in their last digit. Row writes on
    // two of them share a bucket (a spurious conflict) only about 1 time in
    // ROW_BUCKETS, as for random digests.
    let bucket = |k: &str| bucket_of(fnv1a64(k.as_bytes()));
    let mut same = 0;
    let mut pairs = 0;
    for c in b'a'..=b'z' {
        for prefix in ["user:", "session:", "k", "cart:42:"] {
            let lower = format!("{prefix}{}", c as char);
            let upper = format!("{prefix}{}", c.to_ascii_uppercase() as char);
            same += (bucket(&lower) == bucket(&upper)) as u32;
            pairs += 1;
        }
    }
    // 104 pairs, about 3 expected to share a bucket by chance.
    assert!(same <= 12, "{same} of {pairs} case pairs share a bucket");

    let mut load = vec![0u32; ROW_BUCKETS as usize];
    let ids = 32 * ROW_BUCKETS;
    for id in 0..ids {
        load[bucket_of(fnv1a64(id.to_string().as_bytes())) as usize] += 1;
    }
    let mean = (ids / ROW_BUCKETS) as u32;
    assert!(
        load.iter().all(|&n| n >= mean / 3 && n <= mean * 3),
        "consecutive ids load the buckets unevenly: {load:?}"
    );
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
    assert_eq!(expand(t, AccessKind::Read).len(), 2 + ROW_BUCKETS as usize);
    assert_eq!(expand(t, AccessKind::Write).len(), 2 + ROW_BUCKETS as usize);
    assert_eq!(expand(r, AccessKind::Read).len(), 3);
    assert_eq!(expand(r, AccessKind::Write).len(), 4);
}

#[test]
fn a_fallback_meets_every_precise_access_on_its_server_and_no_other() {
    let fallback = [EngineAccess {
        key: coarse_key("127.0.0.1:5432"),
        kind: AccessKind::Write,
    }];
    let other_server = [EngineAccess {
        key: coarse_key("127.0.0.1:5433"),
        kind: AccessKind::Write,
    }];
    let mut rng = Rng(7);
    for _ in 0..1000 {
        let (res, kind) = random_access(&mut rng);
        let precise = expand(res, kind);
        assert!(engine_conflict(&fallback, &precise));
        assert!(!engine_conflict(&other_server, &precise));
    }
    assert!(engine_conflict(&fallback, &fallback));
    assert_eq!(coarse_key("h:1"), fnv1a64(b"socket:h:1"));
}

#[test]
fn one_local_server_has_one_name_however_it_is_reached() {
    let names: Vec<String> = [
        "127.0.0.1:5432",
        "[::1]:5432",
        "[::ffff:127.0.0.1]:5432",
        "127.0.0.2:5432",
    ]
    .iter()
    .map(|a| server_name(&a.parse().unwrap()).as_str().to_string())
    .collect();
    assert!(names.iter().all(|n| n == "localhost:5432"), "{names:?}");
    assert_eq!(
        unix_server_name(b"/var/run/postgresql/.s.PGSQL.5432").as_str(),
        "localhost:5432"
    );
    assert_eq!(
        server_name(&"10.1.2.3:6379".parse().unwrap()).as_str(),
        "10.1.2.3:6379"
    );
    assert_eq!(
        server_name(&"[2001:db8::1]:3306".parse().unwrap()).as_str(),
        "[2001:db8::1]:3306"
    );
    assert_eq!(
        unix_server_name(b"/run/mysqld/mysqld.sock").as_str(),
        "unix:/run/mysqld/mysqld.sock"
    );
    assert_ne!(
        server_name(&"127.0.0.1:5433".parse().unwrap()),
        server_name(&"127.0.0.1:5432".parse().unwrap())
    );
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
    let mut r = frontrun_wire::resp::RespConn::new();
    let c = r.on_send(b"GET counter\r\n");
    let name = ResourceName {
        scheme: Scheme::Redis,
        server: "127.0.0.1:6379",
        access: &c.accesses()[0],
    };
    assert_eq!(name.to_string(), "redis:127.0.0.1:6379/counter");
    let short = ResourceName { server: "", ..name };
    assert_eq!(short.to_string(), "redis:counter");
    let c = classify("DELETE FROM accounts WHERE id = 3");
    let short = ResourceName {
        scheme: Scheme::Sql,
        server: "",
        access: &c.accesses()[0],
    };
    assert_eq!(short.to_string(), "sql:accounts#id=3");
}

/// Ground truth for the end-to-end test: what a generated statement does.
#[derive(Clone, Copy, Debug)]
struct Truth {
    table: usize,
    row: Option<u32>,
    kind: AccessKind,
}

fn truth_conflict(a: Truth, b: Truth) -> bool {
    a.table == b.table
        && (a.kind == AccessKind::Write || b.kind == AccessKind::Write)
        && match (a.row, b.row) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
}

/// A statement with the given effect, spelled in one of many ways.
fn spell(rng: &mut Rng, t: Truth) -> String {
    let names = [
        [
            "accounts",
            "ACCOUNTS",
            "\"accounts\"",
            "public.accounts",
            "\"public\".\"accounts\"",
        ],
        [
            "ledger",
            "Ledger",
            "\"ledger\"",
            "public.ledger",
            "PUBLIC.LEDGER",
        ],
    ];
    let table = names[t.table][rng.below_u64(5) as usize];
    let cond = |rng: &mut Rng, r: u32| -> String {
        let v = match rng.below_u64(6) {
            0 => format!("{r}"),
            1 => format!("'{r}'"),
            2 => format!("'0{r}'"),
            3 => format!("{r}::bigint"),
            4 => format!("' {r} '"),
            _ => format!("{r}.0"),
        };
        let eq = match rng.below_u64(3) {
            0 => format!("id = {v}"),
            1 => format!("{v} = id"),
            _ => format!("\"id\" = {v}"),
        };
        match rng.below_u64(3) {
            0 => eq,
            1 => format!("balance > 0 AND {eq}"),
            _ => format!("{eq} AND (note = 'a;b' OR note IS NULL) /* id = 999 */"),
        }
    };
    match (t.row, t.kind) {
        (Some(r), AccessKind::Read) => {
            format!("SELECT balance FROM {table} WHERE {}", cond(rng, r))
        }
        (None, AccessKind::Read) => match rng.below_u64(3) {
            0 => format!("SELECT count(*) FROM {table}"),
            1 => format!("SELECT * FROM {table} WHERE balance > 3"),
            _ => format!("SELECT * FROM {table} WHERE id = 1 OR id = 2"),
        },
        (Some(r), AccessKind::Write) => match rng.below_u64(4) {
            0 => format!(
                "UPDATE {table} SET balance = balance + 1 WHERE {}",
                cond(rng, r)
            ),
            1 => format!("DELETE FROM {table} WHERE {}", cond(rng, r)),
            2 => format!("INSERT INTO {table} (id, balance) VALUES ('{r}', 0)"),
            _ => format!("SELECT * FROM {table} WHERE {} FOR UPDATE", cond(rng, r)),
        },
        (None, AccessKind::Write) => match rng.below_u64(4) {
            0 => format!("UPDATE {table} SET balance = 0"),
            1 => format!("DELETE FROM {table} WHERE balance < 0"),
            2 => format!("TRUNCATE {table}"),
            _ => format!("INSERT INTO {table} (balance) VALUES (1)"),
        },
    }
}

#[test]
fn classified_statements_never_miss_a_conflict_between_their_effects() {
    let mut rng = Rng(0x0bad_cafe_dead_beef);
    let (mut checked, mut independent, mut spurious) = (0u64, 0u64, 0u64);
    let mut rows_seen = 0u64;
    for _ in 0..20_000 {
        let gen = |rng: &mut Rng| Truth {
            table: rng.below_u64(2) as usize,
            row: if rng.below_u64(3) == 0 {
                None
            } else {
                Some(rng.below_u64(40) as u32)
            },
            kind: if rng.below_u64(2) == 0 {
                AccessKind::Read
            } else {
                AccessKind::Write
            },
        };
        let (ta, tb) = (gen(&mut rng), gen(&mut rng));
        let (sa, sb) = (spell(&mut rng, ta), spell(&mut rng, tb));
        let (ka, kb) = (statement_keys(&sa), statement_keys(&sb));
        assert!(classify(&sa).fallback().is_none(), "{sa}");
        rows_seen += classify(&sa)
            .accesses()
            .iter()
            .any(|a| a.row.is_some() && !is_commit_order(a.table.as_bytes()))
            as u64;
        let truth = truth_conflict(ta, tb);
        let reported = engine_conflict(&ka, &kb);
        assert!(!truth || reported, "missed: {sa:?} vs {sb:?}");
        checked += 1;
        if !truth {
            independent += 1;
            spurious += reported as u64;
        }
    }
    println!(
        "{checked} statement pairs; over-report {spurious}/{independent} = {:.3}; {rows_seen} statements got a row key",
        spurious as f64 / independent as f64
    );
    // Over-reports come from same-bucket row writes only; most statements
    // must actually get their row.
    assert!(spurious * 10 < independent);
    assert!(rows_seen > 10_000);
}

fn snapshot_of(table: &str) -> Vec<EngineAccess> {
    let mut session = SqlSession::for_mysql();
    let mut out = Classification::new();
    let policy = RowPolicy::heuristic();
    classify_sql(b"BEGIN", Dialect::Mysql, &policy, &mut session, &mut out);
    classify_sql(
        format!("SELECT * FROM {table}").as_bytes(),
        Dialect::Mysql,
        &policy,
        &mut session,
        &mut out,
    );
    keys_of(&out)
}

#[test]
fn a_snapshot_meets_every_commit_to_its_tables_and_none_to_others() {
    let policy = RowPolicy::heuristic();
    let mut out = Classification::new();
    let mut commits = Vec::new();
    for i in 0..200 {
        let mut s = SqlSession::new();
        classify_sql(
            format!("UPDATE accounts SET v = 0 WHERE id = {i}").as_bytes(),
            Dialect::Postgres,
            &policy,
            &mut s,
            &mut out,
        );
        commits.push(keys_of(&out));
    }
    let snapshot = snapshot_of("accounts");
    assert!(commits.iter().all(|c| engine_conflict(&snapshot, c)));
    let unrelated = snapshot_of("unrelated");
    assert!(commits.iter().all(|c| !engine_conflict(&unrelated, c)));
    let mut meetings = 0;
    for i in 0..commits.len() {
        for j in i + 1..commits.len() {
            meetings += engine_conflict(&commits[i], &commits[j]) as usize;
        }
    }
    let pairs = commits.len() * (commits.len() - 1) / 2;
    println!("commits on distinct rows that conflict: {meetings}/{pairs}");
    assert!(meetings * 8 < pairs, "{meetings}/{pairs}");
}

#[test]
fn commits_to_different_tables_never_meet() {
    let policy = RowPolicy::heuristic();
    let mut out = Classification::new();
    let mut commits = Vec::new();
    for i in 0..100 {
        let mut s = SqlSession::new();
        classify_sql(
            format!("UPDATE table_{i} SET v = 0 WHERE id = 1").as_bytes(),
            Dialect::Postgres,
            &policy,
            &mut s,
            &mut out,
        );
        commits.push(keys_of(&out));
    }
    for i in 0..commits.len() {
        for j in i + 1..commits.len() {
            assert!(!engine_conflict(&commits[i], &commits[j]), "{i} {j}");
        }
    }
}

fn keys_of(c: &Classification) -> Vec<EngineAccess> {
    let mut v = Vec::new();
    for a in c.accesses() {
        engine_accesses(
            Resource::of(Scheme::Sql, "localhost:3306", a),
            a.kind,
            |e| v.push(e),
        );
    }
    v
}
