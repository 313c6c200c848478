"""Two threads, two connections, the same statements: run under
libfrontrun_io.so by preload/tests/database_requests_become_keyed_events.rs.

    python db_two_threads.py DRIVER TAG [tls]

DRIVER is psycopg2, psycopg (3, extended protocol), pymysql, mysqldb,
mysqldb-unix (through /run/mysqld/mysqld.sock) or redis. TAG makes the
table and key names unique, so runs against the same server do not meet:
tables acc_TAG, aud0_TAG, aud1_TAG, keys counter_TAG, other0_TAG,
other1_TAG. Prints "THREAD <i> <native thread id>" for each
worker, and exits non-zero if anything fails.
"""

import sys
import threading

driver = sys.argv[1]
tag = sys.argv[2]
tls = len(sys.argv) > 3 and sys.argv[3] == "tls"
ACC = f"acc_{tag}"
COUNTER = f"counter_{tag}"


def connect():
    if driver == "psycopg2":
        import psycopg2

        mode = "require" if tls else "disable"
        return psycopg2.connect(host="127.0.0.1", dbname="test", user="postgres", sslmode=mode)
    if driver == "psycopg":
        import psycopg

        mode = "require" if tls else "disable"
        return psycopg.connect(host="127.0.0.1", dbname="test", user="postgres", sslmode=mode)
    if driver == "pymysql":
        import pymysql

        return pymysql.connect(host="127.0.0.1", user="root", password="", database="test")
    if driver == "mysqldb":
        import MySQLdb

        return MySQLdb.connect(host="127.0.0.1", user="root", passwd="", db="test", ssl_mode="DISABLED")
    if driver == "mysqldb-unix":
        import MySQLdb

        return MySQLdb.connect(unix_socket="/run/mysqld/mysqld.sock", user="root", passwd="", db="test")
    if driver == "redis":
        import redis

        return redis.Redis(host="127.0.0.1", port=6379, single_connection_client=True)
    raise SystemExit(f"unknown driver {driver}")


def setup():
    conn = connect()
    if driver == "redis":
        conn.set(COUNTER, 0)
        conn.close()
        return
    cur = conn.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {ACC}")
    cur.execute(f"CREATE TABLE {ACC} (id int primary key, balance int)")
    cur.execute(f"INSERT INTO {ACC} VALUES (1, 100), (2, 100), (3, 100)")
    for i in range(2):
        cur.execute(f"DROP TABLE IF EXISTS aud{i}_{tag}")
        cur.execute(f"CREATE TABLE aud{i}_{tag} (id int primary key, note text)")
    conn.commit()
    conn.close()


def teardown():
    conn = connect()
    if driver == "redis":
        conn.delete(COUNTER)
    else:
        cur = conn.cursor()
        for table in (ACC, f"aud0_{tag}", f"aud1_{tag}"):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        conn.commit()
    conn.close()


barrier = threading.Barrier(2)
print_lock = threading.Lock()


def work(i):
    conn = connect()
    barrier.wait()
    if driver == "redis":
        value = int(conn.get(COUNTER))
        conn.set(COUNTER, value + 1)
        conn.incr(COUNTER)
        conn.get(f"other{i}_{tag}")
        conn.close()
    else:
        cur = conn.cursor()
        cur.execute(f"SELECT balance FROM {ACC} WHERE id = %s", (1,))
        (balance,) = cur.fetchone()
        cur.execute(f"UPDATE {ACC} SET balance = %s WHERE id = %s", (balance + 1, 1))
        cur.execute(f"SELECT balance FROM {ACC} WHERE id = %s", (2 + i,))
        assert cur.fetchone()[0] == 100
        cur.execute(f"SELECT note FROM aud{i}_{tag}")
        assert cur.fetchall() in ([], ())
        conn.commit()
        conn.close()
    with print_lock:
        print("THREAD", i, threading.get_native_id(), flush=True)


errors = []


def guarded(i):
    try:
        work(i)
    except BaseException as e:
        errors.append(repr(e))
        barrier.abort()


setup()
threads = [threading.Thread(target=guarded, args=(i,)) for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
teardown()
if errors:
    sys.exit("thread failed: " + "; ".join(errors))
print("DONE", flush=True)
