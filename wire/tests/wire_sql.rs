//! The SQL classifier: statement categories, lexing traps, row keys.

use frontrun_wire::snapshot::{self, is_commit_order};
use frontrun_wire::sql::{classify_sql, Dialect, RowPolicy, SqlSession};
use frontrun_wire::{AccessKind, Classification, Fallback, RowValue};

fn classify_in(dialect: Dialect, sql: &str) -> Classification {
    let mut out = Classification::new();
    let mut session = SqlSession::new();
    classify_sql(
        sql.as_bytes(),
        dialect,
        &RowPolicy::heuristic(),
        &mut session,
        &mut out,
    );
    out
}

fn pg(sql: &str) -> Classification {
    classify_in(Dialect::Postgres, sql)
}

fn my(sql: &str) -> Classification {
    classify_in(Dialect::Mysql, sql)
}

/// `table:R`, `table:W`, `table#col=val:W`, sorted, for compact asserts.
fn summary(c: &Classification) -> Vec<String> {
    let mut v: Vec<String> = c
        .accesses()
        .iter()
        // Commit and snapshot ordering has its own tests.
        .filter(|a| !is_commit_order(a.table.as_bytes()))
        .map(|a| {
            let kind = match a.kind {
                AccessKind::Read => "R",
                AccessKind::Write => "W",
            };
            match &a.row {
                Some(r) => format!("{}#{}={}:{}", a.table, r.column, r.display, kind),
                None => format!("{}:{}", a.table, kind),
            }
        })
        .collect();
    v.sort();
    v
}

fn s(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|x| x.to_string()).collect();
    v.sort();
    v
}

#[test]
fn select_reads_every_table_in_from_and_join() {
    let c = pg("SELECT a.x, b.y FROM accounts a JOIN ledger b ON a.id = b.account_id LEFT JOIN users u USING (uid)");
    assert_eq!(summary(&c), s(&["accounts:R", "ledger:R", "users:R"]));
    assert_eq!(c.fallback(), None);
}

#[test]
fn comma_separated_from_list_reads_each_table() {
    let c = pg("select * from a, b as bb, public.c where a.x = b.y");
    assert_eq!(summary(&c), s(&["a:R", "b:R", "c:R"]));
}

#[test]
fn from_list_continues_after_a_subquery_item() {
    let c = pg("SELECT * FROM (SELECT x FROM inner_t) s, outer_t WHERE s.x = outer_t.x");
    assert_eq!(summary(&c), s(&["inner_t:R", "outer_t:R"]));
}

#[test]
fn parenthesised_joins_read_every_table() {
    let c = pg("SELECT * FROM (a JOIN b ON a.x = b.x) JOIN c ON c.y = a.y");
    assert_eq!(summary(&c), s(&["a:R", "b:R", "c:R"]));
    let c = pg(
        "SELECT * FROM t JOIN ((a JOIN b USING (k)) LEFT JOIN d ON true) ON true WHERE t.id = 1",
    );
    assert_eq!(summary(&c), s(&["a:R", "b:R", "d:R", "t:R"]));
    let c = my("SELECT * FROM (a, b) WHERE a.id = 1");
    assert_eq!(summary(&c), s(&["a:R", "b:R"]));
    // A set-returning function is not a parenthesised join.
    let c = pg("SELECT * FROM unnest(arr, brr) u JOIN t ON true");
    assert_eq!(summary(&c), s(&["t:R"]));
}

#[test]
fn update_with_id_equality_writes_one_row() {
    let c = pg("UPDATE accounts SET balance = balance - 10 WHERE id = 42");
    assert_eq!(summary(&c), s(&["accounts#id=42:W"]));
}

#[test]
fn row_key_survives_other_anded_conditions() {
    let c =
        pg("UPDATE accounts SET balance = 5 WHERE balance > 0 AND id = '7' AND (x = 1 OR y = 2)");
    assert_eq!(summary(&c), s(&["accounts#id=7:W"]));
}

#[test]
fn an_or_at_top_level_keeps_the_table_level() {
    let c = pg("UPDATE accounts SET balance = 5 WHERE id = 1 OR id = 2");
    assert_eq!(summary(&c), s(&["accounts:W"]));
}

#[test]
fn between_does_not_split_a_conjunct() {
    let c = pg("SELECT * FROM t WHERE x BETWEEN 1 AND id = 3");
    assert_eq!(summary(&c), s(&["t:R"]));
    let c = pg("SELECT * FROM t WHERE x BETWEEN 1 AND 5 AND id = 3");
    assert_eq!(summary(&c), s(&["t#id=3:R"]));
}

#[test]
fn select_for_update_is_a_row_write() {
    let c = pg("SELECT balance FROM accounts WHERE id = 1 FOR UPDATE");
    assert_eq!(summary(&c), s(&["accounts#id=1:W"]));
    let c = pg("SELECT balance FROM accounts WHERE id = 1 FOR NO KEY UPDATE");
    assert_eq!(summary(&c), s(&["accounts#id=1:W"]));
    let c = pg("SELECT balance FROM accounts WHERE id = 1 FOR SHARE");
    assert_eq!(summary(&c), s(&["accounts#id=1:R"]));
}

#[test]
fn delete_writes_its_table() {
    assert_eq!(
        summary(&pg("DELETE FROM sessions WHERE expires < now()")),
        s(&["sessions:W"])
    );
    assert_eq!(
        summary(&pg("DELETE FROM sessions WHERE session_id = 'ab'")),
        s(&["sessions#session_id=ab:W"])
    );
}

#[test]
fn insert_values_names_the_row_by_its_key_column() {
    let c = pg("INSERT INTO accounts (id, balance) VALUES (3, 100)");
    assert_eq!(summary(&c), s(&["accounts#id=3:W"]));
    let c = pg("INSERT INTO accounts (owner, balance) VALUES ('x', 100)");
    assert_eq!(summary(&c), s(&["accounts:W"]));
    let c = pg("INSERT INTO accounts (id, balance) VALUES (3, 100), (4, 5)");
    assert_eq!(summary(&c), s(&["accounts:W"]));
}

#[test]
fn insert_on_conflict_on_the_key_keeps_the_row_and_others_do_not() {
    let c = pg("INSERT INTO counters (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = counters.n + 1");
    assert_eq!(summary(&c), s(&["counters#id=1:W"]));
    let c = pg("INSERT INTO users (id, email) VALUES (1, 'a') ON CONFLICT (email) DO NOTHING");
    assert_eq!(summary(&c), s(&["users:W"]));
    let c = my("INSERT INTO counters (id, n) VALUES (1, 1) ON DUPLICATE KEY UPDATE n = n + 1");
    assert_eq!(summary(&c), s(&["counters:W"]));
    let c = my("REPLACE INTO counters (id, n) VALUES (1, 1)");
    assert_eq!(summary(&c), s(&["counters:W"]));
}

#[test]
fn insert_select_writes_target_and_reads_source() {
    let c = pg("INSERT INTO archive (id, v) SELECT id, v FROM live WHERE id = 3");
    assert_eq!(summary(&c), s(&["archive:W", "live:R"]));
}

#[test]
fn ctes_read_inner_tables_and_are_not_tables_themselves() {
    let c = pg("WITH recent AS (SELECT * FROM orders WHERE ts > now()) SELECT * FROM recent JOIN customers c ON c.id = recent.customer_id");
    assert_eq!(summary(&c), s(&["customers:R", "orders:R"]));
    let c = pg("WITH moved AS (DELETE FROM queue WHERE id = 1 RETURNING *) INSERT INTO done (id) SELECT id FROM moved");
    assert_eq!(summary(&c), s(&["done:W", "queue:W"]));
}

#[test]
fn subqueries_read_their_tables_and_functions_with_from_do_not() {
    let c =
        pg("SELECT extract(year FROM created) FROM events WHERE owner IN (SELECT id FROM users)");
    assert_eq!(summary(&c), s(&["events:R", "users:R"]));
    let c = pg("UPDATE accounts SET balance = (SELECT sum(x) FROM ledger) WHERE id = 1");
    assert_eq!(summary(&c), s(&["accounts#id=1:W", "ledger:R"]));
}

#[test]
fn setting_the_key_column_keeps_an_update_table_level() {
    let c = pg("UPDATE accounts SET id = 9 WHERE id = 1");
    assert_eq!(summary(&c), s(&["accounts:W"]));
}

#[test]
fn update_from_and_delete_using_stay_table_level() {
    let c = pg("UPDATE a SET x = b.x FROM b WHERE a.id = 1");
    assert_eq!(summary(&c), s(&["a:W", "b:R"]));
    let c = pg("DELETE FROM a USING b WHERE a.id = 1");
    assert_eq!(summary(&c), s(&["a:W", "b:R"]));
}

#[test]
fn mysql_multi_table_update_and_delete_write_every_table() {
    let c = my("UPDATE a JOIN b ON a.k = b.k SET a.x = b.x, b.y = 1 WHERE a.id = 1");
    assert_eq!(summary(&c), s(&["a:W", "b:W"]));
    let c = my("DELETE a, b FROM a JOIN b ON a.k = b.k WHERE a.id = 1");
    assert_eq!(summary(&c), s(&["a:W", "b:W"]));
}

#[test]
fn transaction_control_and_settings_conflict_with_nothing() {
    for q in [
        "BEGIN",
        "begin isolation level serializable",
        "START TRANSACTION",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT s1",
        "RELEASE SAVEPOINT s1",
        "ROLLBACK TO SAVEPOINT s1",
        "SET search_path TO public",
        "SHOW server_version",
        "RESET ALL",
        "DISCARD ALL",
        "SELECT 1",
        "SELECT version()",
        "select current_setting('server_version_num')",
        "",
        "  ;  ",
        "-- only a comment",
    ] {
        let c = pg(q);
        assert!(c.is_no_conflict(), "{q:?} gave {:?}", c);
    }
    for q in [
        "SET NAMES utf8mb4",
        "SET autocommit = 0",
        "USE test",
        "SHOW TABLES",
        "SELECT @@version",
    ] {
        assert!(my(q).is_no_conflict(), "{q:?}");
    }
}

#[test]
fn table_less_select_with_unknown_function_falls_back() {
    assert_eq!(
        pg("SELECT transfer_money(1, 2)").fallback(),
        Some(Fallback::Unrecognized)
    );
}

#[test]
fn sequences_and_advisory_locks_are_writes() {
    assert_eq!(
        summary(&pg("SELECT nextval('public.order_seq')")),
        s(&["order_seq:W"])
    );
    assert_eq!(
        summary(&pg("INSERT INTO t (id) VALUES (nextval('order_seq'))")),
        s(&["order_seq:W", "t:W"])
    );
    assert_eq!(
        summary(&pg("SELECT pg_advisory_xact_lock(42)")),
        s(&["<advisory locks>:W"])
    );
    assert_eq!(
        summary(&my("SELECT GET_LOCK('x', 10)")),
        s(&["<advisory locks>:W"])
    );
    assert_eq!(
        pg("SELECT nextval(some_column) FROM t").fallback(),
        Some(Fallback::Unrecognized)
    );
}

#[test]
fn unknown_statements_fall_back_and_are_never_silent() {
    for q in [
        "CALL transfer(1, 2)",
        "DO $$ BEGIN END $$",
        "EXECUTE p(1)",
        "VACUUM",
        "GRANT ALL ON t TO u",
        "DROP INDEX i",
        "garbage here",
        "SELECT * FROM",
        "SELECT (1",
    ] {
        let c = pg(q);
        assert_eq!(c.fallback(), Some(Fallback::Unrecognized), "{q:?}");
    }
}

#[test]
fn an_unreadable_write_target_falls_back_instead_of_vanishing() {
    let c = pg("INSERT INTO start (id) SELECT id FROM t");
    assert_eq!(c.fallback(), Some(Fallback::Unrecognized));
    let c = pg("UPDATE index SET x = 1");
    assert_eq!(c.fallback(), Some(Fallback::Unrecognized));
    let c = my("SELECT v INTO @v FROM t WHERE id = 1");
    assert_eq!(summary(&c), s(&["t#id=1:R"]));
    assert_eq!(c.fallback(), None);
    assert_eq!(
        pg("PREPARE TRANSACTION 'x'").fallback(),
        Some(Fallback::Unrecognized)
    );
    assert!(pg("PREPARE q AS SELECT * FROM t").is_no_conflict());
}

#[test]
fn ddl_writes_its_table() {
    assert_eq!(summary(&pg("CREATE TABLE IF NOT EXISTS public.accounts (id int primary key, owner int REFERENCES users(id))")), s(&["accounts:W", "users:R"]));
    assert_eq!(
        summary(&pg("DROP TABLE IF EXISTS a, b CASCADE")),
        s(&["a:W", "b:W"])
    );
    assert_eq!(
        summary(&pg("ALTER TABLE ONLY accounts ADD COLUMN note text")),
        s(&["accounts:W"])
    );
    assert_eq!(
        summary(&pg("TRUNCATE TABLE accounts, ledger RESTART IDENTITY")),
        s(&["accounts:W", "ledger:W"])
    );
    assert_eq!(
        summary(&pg(
            "CREATE UNIQUE INDEX CONCURRENTLY idx ON accounts (owner)"
        )),
        s(&["accounts:W"])
    );
    assert_eq!(
        summary(&pg("LOCK TABLE accounts IN EXCLUSIVE MODE")),
        s(&["accounts:W"])
    );
    assert_eq!(summary(&pg("COPY accounts FROM STDIN")), s(&["accounts:W"]));
    assert_eq!(summary(&pg("COPY accounts TO STDOUT")), s(&["accounts:R"]));
}

#[test]
fn mysql_lock_tables_writes_every_listed_table() {
    assert_eq!(
        summary(&my("LOCK TABLES t READ, u AS x WRITE")),
        s(&["t:W", "u:W"])
    );
    assert_eq!(my("UNLOCK TABLES").fallback(), Some(Fallback::Unrecognized));
}

#[test]
fn quoted_and_schema_qualified_names_map_to_one_table() {
    for q in [
        "SELECT * FROM accounts",
        "SELECT * FROM public.accounts",
        "SELECT * FROM \"Accounts\"",
        "SELECT * FROM \"public\".\"accounts\"",
        "select * from ACCOUNTS",
    ] {
        assert_eq!(summary(&pg(q)), s(&["accounts:R"]), "{q}");
    }
    assert_eq!(
        summary(&my("SELECT * FROM `test`.`accounts`")),
        s(&["accounts:R"])
    );
}

#[test]
fn keywords_and_semicolons_inside_literals_and_comments_are_ignored() {
    let c = pg("SELECT 'DELETE FROM x; UPDATE y' AS s, $q$ FROM z $q$ FROM t /* JOIN w; */ -- FROM v\n WHERE note = 'a''b;'");
    assert_eq!(summary(&c), s(&["t:R"]));
    assert_eq!(c.requests(), 1);
    let c = my("SELECT \"FROM x\" FROM t # JOIN w\n WHERE a = 'it\\'s ; FROM y'");
    assert_eq!(summary(&c), s(&["t:R"]));
}

#[test]
fn mysql_double_dash_needs_a_space_to_start_a_comment() {
    let c = my("SELECT a--b FROM t");
    assert_eq!(summary(&c), s(&["t:R"]));
}

#[test]
fn mysql_executable_comments_fall_back() {
    assert_eq!(
        my("SELECT 1 /*!50000 FROM t */").fallback(),
        Some(Fallback::Unrecognized)
    );
}

#[test]
fn unterminated_literals_fall_back() {
    assert_eq!(
        pg("SELECT * FROM t WHERE a = 'oops").fallback(),
        Some(Fallback::Unrecognized)
    );
    assert_eq!(
        pg("SELECT * FROM t /* open").fallback(),
        Some(Fallback::Unrecognized)
    );
}

#[test]
fn several_statements_in_one_string_are_all_classified() {
    let c = pg("BEGIN; UPDATE a SET x = 1 WHERE id = 1; SELECT * FROM b; COMMIT;");
    assert_eq!(c.requests(), 4);
    // The commit republishes the transaction's write.
    assert_eq!(summary(&c), s(&["a#id=1:W", "b:R"]));
    assert!(c.label().starts_with("UPDATE a SET"), "{}", c.label());
}

#[test]
fn commit_reports_the_writes_of_the_transaction() {
    let mut session = SqlSession::new();
    let policy = RowPolicy::heuristic();
    let mut out = Classification::new();
    classify_sql(b"BEGIN", Dialect::Postgres, &policy, &mut session, &mut out);
    assert!(session.in_transaction());
    classify_sql(
        b"UPDATE accounts SET balance = 1 WHERE id = 5",
        Dialect::Postgres,
        &policy,
        &mut session,
        &mut out,
    );
    classify_sql(
        b"SELECT * FROM other",
        Dialect::Postgres,
        &policy,
        &mut session,
        &mut out,
    );
    classify_sql(
        b"COMMIT",
        Dialect::Postgres,
        &policy,
        &mut session,
        &mut out,
    );
    assert_eq!(summary(&out), s(&["accounts#id=5:W"]));
    assert!(!session.in_transaction());
    classify_sql(b"BEGIN", Dialect::Postgres, &policy, &mut session, &mut out);
    classify_sql(
        b"DELETE FROM accounts",
        Dialect::Postgres,
        &policy,
        &mut session,
        &mut out,
    );
    classify_sql(
        b"ROLLBACK",
        Dialect::Postgres,
        &policy,
        &mut session,
        &mut out,
    );
    assert!(out.is_no_conflict());
}

#[test]
fn literal_spellings_of_one_key_value_give_one_row() {
    let digest = |q: &str| match pg(q).accesses()[0].row.map(|r| r.value) {
        Some(RowValue::Digest(d)) => d,
        other => panic!("{q}: {other:?}"),
    };
    let base = digest("SELECT * FROM t WHERE id = 5");
    for q in [
        "SELECT * FROM t WHERE id = '5'",
        "SELECT * FROM t WHERE id = '05'",
        "SELECT * FROM t WHERE id = 5.0",
        "SELECT * FROM t WHERE id = ' +5 '",
        "SELECT * FROM t WHERE 5 = id",
        "SELECT * FROM t WHERE t.id = 5::bigint",
        "SELECT * FROM public.t WHERE public.t.id = 5",
    ] {
        assert_eq!(digest(q), base, "{q}");
    }
    assert_ne!(digest("SELECT * FROM t WHERE id = 6"), base);
    let u1 = digest("SELECT * FROM t WHERE id = 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'");
    let u2 = digest("SELECT * FROM t WHERE id = '{a0eebc999c0b4ef8bb6d6bb9bd380a11}'");
    assert_eq!(u1, u2);
}

#[test]
fn placeholders_become_parameter_rows() {
    let c = pg("SELECT balance FROM accounts WHERE id = $2");
    assert_eq!(
        c.accesses()[0].row.map(|r| r.value),
        Some(RowValue::Param(2))
    );
    let c = my("UPDATE accounts SET balance = ? WHERE id = ?");
    assert_eq!(
        c.accesses()[0].row.map(|r| r.value),
        Some(RowValue::Param(2))
    );
}

#[test]
fn only_key_looking_columns_name_rows() {
    assert_eq!(
        summary(&pg("SELECT * FROM orders WHERE customer_id = 3")),
        s(&["orders:R"])
    );
    assert_eq!(
        summary(&pg("SELECT * FROM orders WHERE order_id = 3")),
        s(&["orders#order_id=3:R"])
    );
    assert_eq!(
        summary(&pg("SELECT * FROM categories WHERE category_id = 3")),
        s(&["categories#category_id=3:R"])
    );
    assert_eq!(
        summary(&pg("SELECT * FROM orders WHERE status = 'x'")),
        s(&["orders:R"])
    );
}

#[test]
fn declared_key_columns_replace_the_guess() {
    let mut policy = RowPolicy::heuristic();
    assert!(policy.declare("orders", "number"));
    let mut out = Classification::new();
    let mut session = SqlSession::new();
    classify_sql(
        b"SELECT * FROM orders WHERE number = 7",
        Dialect::Postgres,
        &policy,
        &mut session,
        &mut out,
    );
    assert_eq!(summary(&out), s(&["orders#number=7:R"]));
    classify_sql(
        b"SELECT * FROM orders WHERE id = 7",
        Dialect::Postgres,
        &policy,
        &mut session,
        &mut out,
    );
    assert_eq!(summary(&out), s(&["orders:R"]));
    let off = RowPolicy::off();
    classify_sql(
        b"SELECT * FROM accounts WHERE id = 7",
        Dialect::Postgres,
        &off,
        &mut session,
        &mut out,
    );
    assert_eq!(summary(&out), s(&["accounts:R"]));
}

#[test]
fn joins_and_unions_keep_reads_table_level() {
    assert_eq!(
        summary(&pg("SELECT * FROM a JOIN b ON a.id = b.id WHERE a.id = 1")),
        s(&["a:R", "b:R"])
    );
    assert_eq!(
        summary(&pg(
            "SELECT x FROM a WHERE id = 1 UNION SELECT x FROM a WHERE id = 2"
        )),
        s(&["a:R"])
    );
}

#[test]
fn too_many_tables_fall_back() {
    let c = pg("SELECT * FROM t1, t2, t3, t4, t5, t6, t7, t8, t9, t10");
    assert_eq!(c.fallback(), Some(Fallback::TooManyAccesses));
}

#[test]
fn over_long_statements_fall_back() {
    let long = format!("SELECT * FROM t WHERE x IN ({})", "1,".repeat(20_000) + "1");
    assert_eq!(pg(&long).fallback(), Some(Fallback::TooLong));
}

#[test]
fn labels_are_short_single_line_text() {
    let c = pg("SELECT   balance\n  FROM accounts\tWHERE id = $1");
    assert_eq!(c.label(), "SELECT balance FROM accounts WHERE id = $1");
    let long = format!("SELECT {} FROM t", "x, ".repeat(100));
    let c = pg(&long);
    assert!(
        c.label().len() <= 80 && c.label().ends_with("..."),
        "{}",
        c.label()
    );
}

fn run(session: &mut SqlSession, dialect: Dialect, sql: &str) -> Classification {
    let mut out = Classification::new();
    classify_sql(
        sql.as_bytes(),
        dialect,
        &RowPolicy::heuristic(),
        session,
        &mut out,
    );
    out
}

#[test]
fn mysql_autocommit_off_publishes_writes_at_each_commit() {
    let mut session = SqlSession::for_mysql();
    assert!(run(&mut session, Dialect::Mysql, "SET autocommit = 0").is_no_conflict());
    assert!(session.in_transaction());
    run(
        &mut session,
        Dialect::Mysql,
        "UPDATE t SET v = 1 WHERE id = 1",
    );
    assert_eq!(
        summary(&run(&mut session, Dialect::Mysql, "COMMIT")),
        s(&["t#id=1:W"])
    );
    // Still inside the next implicit transaction.
    assert!(session.in_transaction());
    run(&mut session, Dialect::Mysql, "DELETE FROM u WHERE id = 2");
    assert_eq!(
        summary(&run(
            &mut session,
            Dialect::Mysql,
            "SET @@session.autocommit = ON"
        )),
        s(&["u#id=2:W"])
    );
    assert!(!session.in_transaction());
}

#[test]
fn mysql_ddl_and_begin_commit_the_open_transaction() {
    let mut session = SqlSession::for_mysql();
    run(&mut session, Dialect::Mysql, "BEGIN");
    run(
        &mut session,
        Dialect::Mysql,
        "UPDATE t SET v = 1 WHERE id = 1",
    );
    assert_eq!(
        summary(&run(
            &mut session,
            Dialect::Mysql,
            "CREATE TABLE x (id int)"
        )),
        s(&["t#id=1:W", "x:W"])
    );
    run(&mut session, Dialect::Mysql, "BEGIN");
    run(
        &mut session,
        Dialect::Mysql,
        "UPDATE t SET v = 1 WHERE id = 2",
    );
    assert_eq!(
        summary(&run(&mut session, Dialect::Mysql, "BEGIN")),
        s(&["t#id=2:W"])
    );
}

#[test]
fn postgres_ignores_a_nested_begin_and_keeps_pending_writes() {
    let mut session = SqlSession::new();
    run(&mut session, Dialect::Postgres, "BEGIN");
    run(
        &mut session,
        Dialect::Postgres,
        "UPDATE t SET v = 1 WHERE id = 1",
    );
    assert!(run(&mut session, Dialect::Postgres, "BEGIN").is_no_conflict());
    assert_eq!(
        summary(&run(&mut session, Dialect::Postgres, "COMMIT")),
        s(&["t#id=1:W"])
    );
}

#[test]
fn commit_and_chain_keeps_a_transaction_open() {
    for dialect in [Dialect::Postgres, Dialect::Mysql] {
        let mut session = SqlSession::new();
        run(&mut session, dialect, "BEGIN");
        run(&mut session, dialect, "UPDATE t SET v = 1 WHERE id = 1");
        assert_eq!(
            summary(&run(&mut session, dialect, "COMMIT AND CHAIN")),
            s(&["t#id=1:W"])
        );
        assert!(session.in_transaction());
        run(&mut session, dialect, "UPDATE t SET v = 1 WHERE id = 2");
        assert_eq!(
            summary(&run(&mut session, dialect, "COMMIT AND NO CHAIN")),
            s(&["t#id=2:W"])
        );
        assert!(!session.in_transaction());
    }
}

#[test]
fn on_conflict_that_rewrites_the_key_stays_table_level() {
    let c = pg(
        "INSERT INTO t (id, v) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET id = excluded.id + 100",
    );
    assert_eq!(summary(&c), s(&["t:W"]));
}

#[test]
fn strings_that_mysql_would_cast_by_numeric_prefix_name_no_row() {
    for q in [
        "SELECT * FROM t WHERE id = '5 apples'",
        "SELECT * FROM t WHERE id = '5abc'",
        "SELECT * FROM t WHERE id = 1e3",
    ] {
        assert_eq!(summary(&my(q)), s(&["t:R"]), "{q}");
    }
    // A UUID starting with a digit is still a row.
    let c = pg("SELECT * FROM t WHERE id = '0eebc999-9c0b-4ef8-bb6d-6bb9bd380a11'");
    assert!(c.accesses()[0].row.is_some());
}

/// The commit-ordering accesses only, sorted: `snapshot:T` (a read of
/// `<commits:T>`) and `commit:T` (a write of it), `#row` for one row of it.
fn ordering(c: &Classification) -> Vec<String> {
    let mut v: Vec<String> = c
        .accesses()
        .iter()
        .filter(|a| is_commit_order(a.table.as_bytes()))
        .map(|a| {
            let t = a.table.as_str();
            let t = &t["<commits:".len()..t.len() - 1];
            let row = if a.row.is_some() { "#row" } else { "" };
            match a.kind {
                AccessKind::Read => format!("snapshot:{t}{row}"),
                AccessKind::Write => format!("commit:{t}{row}"),
            }
        })
        .collect();
    v.sort();
    v
}

/// Tables read after a snapshot are remembered process-wide; tests that
/// look at snapshot orderings take turns and start from no hints.
fn hints_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    snapshot::reset();
    guard
}

#[test]
fn every_commit_that_wrote_is_marked_and_read_only_ones_are_not() {
    let _hints = hints_lock();
    let mut session = SqlSession::new();
    assert_eq!(
        ordering(&run(
            &mut session,
            Dialect::Postgres,
            "UPDATE t SET v = 1 WHERE id = 1"
        )),
        ["commit:t#row"]
    );
    assert!(ordering(&run(&mut session, Dialect::Postgres, "SELECT * FROM t")).is_empty());
    run(&mut session, Dialect::Postgres, "BEGIN");
    assert!(ordering(&run(
        &mut session,
        Dialect::Postgres,
        "UPDATE t SET v = 1 WHERE id = 1"
    ))
    .is_empty());
    run(
        &mut session,
        Dialect::Postgres,
        "DELETE FROM u WHERE id = 3",
    );
    assert_eq!(
        ordering(&run(&mut session, Dialect::Postgres, "COMMIT")),
        ["commit:t#row", "commit:u#row"]
    );
    run(&mut session, Dialect::Postgres, "BEGIN");
    run(&mut session, Dialect::Postgres, "SELECT * FROM t");
    assert!(ordering(&run(&mut session, Dialect::Postgres, "COMMIT")).is_empty());
}

#[test]
fn postgres_read_committed_takes_no_transaction_snapshot() {
    let _hints = hints_lock();
    let mut session = SqlSession::new();
    run(&mut session, Dialect::Postgres, "BEGIN");
    assert!(ordering(&run(&mut session, Dialect::Postgres, "SELECT * FROM t")).is_empty());
    let mut session = SqlSession::new();
    run(
        &mut session,
        Dialect::Postgres,
        "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    );
    run(
        &mut session,
        Dialect::Postgres,
        "BEGIN ISOLATION LEVEL READ COMMITTED",
    );
    assert!(ordering(&run(&mut session, Dialect::Postgres, "SELECT * FROM t")).is_empty());
}

#[test]
fn repeatable_read_orders_the_snapshot_against_commits_to_its_own_tables() {
    let _hints = hints_lock();
    let mut session = SqlSession::new();
    run(
        &mut session,
        Dialect::Postgres,
        "BEGIN ISOLATION LEVEL REPEATABLE READ",
    );
    assert_eq!(
        ordering(&run(
            &mut session,
            Dialect::Postgres,
            "SELECT v FROM t JOIN t2 USING (id) WHERE id = 1"
        )),
        ["snapshot:t", "snapshot:t2"]
    );
    // Tables the snapshot statement touched are ordered already.
    assert!(ordering(&run(
        &mut session,
        Dialect::Postgres,
        "UPDATE t SET v = 1 WHERE id = 1"
    ))
    .is_empty());
    assert_eq!(
        ordering(&run(&mut session, Dialect::Postgres, "COMMIT")),
        ["commit:t#row"]
    );

    let mut session = SqlSession::new();
    run(
        &mut session,
        Dialect::Postgres,
        "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    );
    run(&mut session, Dialect::Postgres, "BEGIN");
    assert_eq!(
        ordering(&run(&mut session, Dialect::Postgres, "SELECT * FROM u")),
        ["snapshot:u"]
    );
    let mut session = SqlSession::new();
    run(&mut session, Dialect::Postgres, "BEGIN");
    run(
        &mut session,
        Dialect::Postgres,
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    );
    assert_eq!(
        ordering(&run(&mut session, Dialect::Postgres, "SELECT * FROM u")),
        ["snapshot:u"]
    );
}

#[test]
fn a_snapshot_of_one_row_is_ordered_against_commits_to_that_row_only() {
    let _hints = hints_lock();
    let snapshot = |sql: &str| {
        let mut session = SqlSession::new();
        run(
            &mut session,
            Dialect::Postgres,
            "BEGIN ISOLATION LEVEL REPEATABLE READ",
        );
        run(&mut session, Dialect::Postgres, sql)
    };
    let commit = |sql: &str| run(&mut SqlSession::new(), Dialect::Postgres, sql);
    let row_of = |c: &Classification, kind: AccessKind| {
        c.accesses()
            .iter()
            .find(|a| is_commit_order(a.table.as_bytes()) && a.kind == kind)
            .map(|a| (a.table, a.row.map(|r| r.value)))
    };
    let one = snapshot("SELECT v FROM t WHERE id = 1");
    let same = commit("UPDATE t SET v = 2 WHERE id = 1");
    let other = commit("UPDATE t SET v = 2 WHERE id = 2");
    let whole = snapshot("SELECT v FROM t");
    assert_eq!(
        row_of(&one, AccessKind::Read),
        row_of(&same, AccessKind::Write)
    );
    assert_ne!(
        row_of(&one, AccessKind::Read),
        row_of(&other, AccessKind::Write)
    );
    assert_eq!(row_of(&whole, AccessKind::Read).unwrap().1, None);
    // A later statement on another row of the table is read after the
    // snapshot: it becomes a hint like a table.
    let before = snapshot::generation();
    let mut session = SqlSession::new();
    run(
        &mut session,
        Dialect::Postgres,
        "BEGIN ISOLATION LEVEL REPEATABLE READ",
    );
    run(
        &mut session,
        Dialect::Postgres,
        "SELECT v FROM t WHERE id = 1",
    );
    assert!(ordering(&run(
        &mut session,
        Dialect::Postgres,
        "UPDATE t SET v = 3 WHERE id = 1"
    ))
    .is_empty());
    assert_eq!(snapshot::generation(), before);
    assert_eq!(
        ordering(&run(
            &mut session,
            Dialect::Postgres,
            "SELECT v FROM t WHERE id = 2"
        )),
        ["snapshot:t"]
    );
    assert_ne!(snapshot::generation(), before);
    snapshot::reset();
}

#[test]
fn a_commit_too_large_for_row_markers_marks_whole_tables() {
    let _hints = hints_lock();
    let mut session = SqlSession::new();
    run(&mut session, Dialect::Postgres, "BEGIN");
    for i in 0..5 {
        run(
            &mut session,
            Dialect::Postgres,
            &format!("UPDATE t SET v = 1 WHERE id = {i}"),
        );
    }
    let c = run(&mut session, Dialect::Postgres, "COMMIT");
    assert_eq!(ordering(&c), ["commit:t"]);
    assert_eq!(c.fallback(), None);
}

#[test]
fn a_table_read_after_the_snapshot_becomes_a_hint_for_every_later_snapshot() {
    let _hints = hints_lock();
    let before = snapshot::generation();
    let mut session = SqlSession::new();
    run(
        &mut session,
        Dialect::Postgres,
        "BEGIN ISOLATION LEVEL REPEATABLE READ",
    );
    // PostgreSQL: the first statement takes the snapshot, even a write.
    assert_eq!(
        ordering(&run(
            &mut session,
            Dialect::Postgres,
            "UPDATE t SET v = 1 WHERE id = 1"
        )),
        ["snapshot:t#row"]
    );
    assert_eq!(snapshot::generation(), before);
    // `late` was not ordered against the snapshot: it is at least ordered
    // here, and the generation tells the explorer to start again.
    assert_eq!(
        ordering(&run(&mut session, Dialect::Postgres, "SELECT * FROM late")),
        ["snapshot:late"]
    );
    let grown = snapshot::generation();
    assert_ne!(grown, before);
    assert!(ordering(&run(&mut session, Dialect::Postgres, "SELECT * FROM late")).is_empty());
    run(&mut session, Dialect::Postgres, "COMMIT");
    // Every later snapshot, in any session, is ordered against `late` too.
    let mut other = SqlSession::new();
    run(
        &mut other,
        Dialect::Postgres,
        "BEGIN ISOLATION LEVEL SERIALIZABLE",
    );
    assert_eq!(
        ordering(&run(&mut other, Dialect::Postgres, "SELECT * FROM t")),
        ["snapshot:late", "snapshot:t"]
    );
    assert!(ordering(&run(&mut other, Dialect::Postgres, "SELECT * FROM late")).is_empty());
    assert_eq!(snapshot::generation(), grown);
    snapshot::reset();
    let mut third = SqlSession::new();
    run(
        &mut third,
        Dialect::Postgres,
        "BEGIN ISOLATION LEVEL SERIALIZABLE",
    );
    assert_eq!(
        ordering(&run(&mut third, Dialect::Postgres, "SELECT * FROM t")),
        ["snapshot:t"]
    );
}

#[test]
fn too_many_hints_fall_back_to_the_coarse_key() {
    let _hints = hints_lock();
    let mut session = SqlSession::new();
    run(
        &mut session,
        Dialect::Postgres,
        "BEGIN ISOLATION LEVEL REPEATABLE READ",
    );
    run(&mut session, Dialect::Postgres, "SELECT * FROM t");
    for i in 0..=snapshot::MAX_HINTS {
        run(
            &mut session,
            Dialect::Postgres,
            &format!("SELECT * FROM late_{i}"),
        );
    }
    let mut other = SqlSession::new();
    run(
        &mut other,
        Dialect::Postgres,
        "BEGIN ISOLATION LEVEL REPEATABLE READ",
    );
    let c = run(&mut other, Dialect::Postgres, "SELECT * FROM t");
    assert!(c.fallback().is_some());
    snapshot::reset();
}

#[test]
fn mysql_transactions_snapshot_by_default_unless_read_committed() {
    let _hints = hints_lock();
    let mut session = SqlSession::for_mysql();
    run(&mut session, Dialect::Mysql, "SET AUTOCOMMIT = 0");
    assert_eq!(
        ordering(&run(
            &mut session,
            Dialect::Mysql,
            "SELECT v FROM t WHERE id = 1"
        )),
        ["snapshot:t#row"]
    );
    run(
        &mut session,
        Dialect::Mysql,
        "UPDATE t SET v = 2 WHERE id = 1",
    );
    assert_eq!(
        ordering(&run(&mut session, Dialect::Mysql, "COMMIT")),
        ["commit:t#row"]
    );
    // The next implicit transaction takes a new snapshot.
    assert_eq!(
        ordering(&run(
            &mut session,
            Dialect::Mysql,
            "SELECT v FROM t WHERE id = 1"
        )),
        ["snapshot:t#row"]
    );

    // MySQL: writes before the first consistent read do not take the
    // snapshot, so the read that does is ordered against its tables.
    let mut session = SqlSession::for_mysql();
    run(&mut session, Dialect::Mysql, "BEGIN");
    assert_eq!(
        ordering(&run(
            &mut session,
            Dialect::Mysql,
            "INSERT INTO log (id) VALUES (1)"
        )),
        ["snapshot:log#row"]
    );
    let before = snapshot::generation();
    assert_eq!(
        ordering(&run(&mut session, Dialect::Mysql, "SELECT * FROM t")),
        ["snapshot:t"]
    );
    assert_eq!(snapshot::generation(), before);

    let mut session = SqlSession::for_mysql();
    run(
        &mut session,
        Dialect::Mysql,
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    );
    run(&mut session, Dialect::Mysql, "START TRANSACTION");
    assert!(ordering(&run(&mut session, Dialect::Mysql, "SELECT v FROM t")).is_empty());
    let mut session = SqlSession::for_mysql();
    run(
        &mut session,
        Dialect::Mysql,
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    );
    run(
        &mut session,
        Dialect::Mysql,
        "START TRANSACTION WITH CONSISTENT SNAPSHOT",
    );
    // Asked for explicitly, the snapshot is taken at the start itself: the
    // first table read is already after it.
    assert_eq!(
        ordering(&run(&mut session, Dialect::Mysql, "SELECT v FROM t")),
        ["snapshot:t"]
    );
    assert_ne!(snapshot::generation(), before);
}

#[test]
fn mysql_set_transaction_isolation_applies_to_the_next_transaction_only() {
    let _hints = hints_lock();
    let mut session = SqlSession::for_mysql();
    run(
        &mut session,
        Dialect::Mysql,
        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
    );
    run(&mut session, Dialect::Mysql, "START TRANSACTION");
    assert!(ordering(&run(&mut session, Dialect::Mysql, "SELECT v FROM t")).is_empty());
    run(&mut session, Dialect::Mysql, "COMMIT");
    run(&mut session, Dialect::Mysql, "START TRANSACTION");
    assert_eq!(
        ordering(&run(&mut session, Dialect::Mysql, "SELECT v FROM t")),
        ["snapshot:t"]
    );
    run(&mut session, Dialect::Mysql, "COMMIT");
    // With autocommit off, before anything ran in the implicit transaction.
    run(&mut session, Dialect::Mysql, "SET autocommit = 0");
    run(
        &mut session,
        Dialect::Mysql,
        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
    );
    assert!(ordering(&run(&mut session, Dialect::Mysql, "SELECT v FROM t")).is_empty());
    // A global setting leaves this session's level alone.
    let mut session = SqlSession::for_mysql();
    run(
        &mut session,
        Dialect::Mysql,
        "SET GLOBAL TRANSACTION ISOLATION LEVEL READ COMMITTED",
    );
    run(&mut session, Dialect::Mysql, "BEGIN");
    assert_eq!(
        ordering(&run(&mut session, Dialect::Mysql, "SELECT v FROM t")),
        ["snapshot:t"]
    );
    let mut session = SqlSession::for_mysql();
    run(
        &mut session,
        Dialect::Mysql,
        "SET SESSION transaction_isolation = 'READ-COMMITTED'",
    );
    run(&mut session, Dialect::Mysql, "BEGIN");
    assert!(ordering(&run(&mut session, Dialect::Mysql, "SELECT v FROM t")).is_empty());
}
