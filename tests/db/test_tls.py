"""Statements sent through TLS (``sslmode=require``, the OpenSSL copy bundled
in psycopg2-binary and in psycopg's binary package): the plaintext is read
from OpenSSL's ``SSL_write``/``SSL_read``, so races are explained with their
table and row, independent work needs one execution, and the ciphertext on
the socket adds no conflict of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dbexplain import interleaving

Scenario = Callable[[str], dict[str, Any]]

DRIVERS = ["psycopg2+tls", "psycopg+tls"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_lost_update_over_tls_is_explained_with_its_table_and_row(scenario: Scenario, driver: str) -> None:
    r = scenario(f"{driver}:lost_update")
    assert not r["holds"]
    assert r["reproduced"] == [10, 10]
    assert "lost update on sql:acct_" in r["explanation"]
    steps = interleaving(r["explanation"])
    assert sum("[read sql:acct_" in ln and "#id=1]" in ln for ln in steps) == 2, steps
    # The ciphertext under the statements is not reported as well.
    assert "socket:localhost:5432" not in r["explanation"]


@pytest.mark.parametrize(
    "kind", ["rows", "tables", "rows_connect_in_worker", "txn_repeatable_read_tables", "txn_serializable_rows"]
)
@pytest.mark.parametrize("driver", DRIVERS)
def test_independent_work_over_tls_needs_one_execution(scenario: Scenario, driver: str, kind: str) -> None:
    r = scenario(f"{driver}:{kind}")
    assert r["holds"]
    assert r["executions"] == 1


@pytest.mark.parametrize("kind", ["lost_update_connect_in_worker", "txn_repeatable_read_row", "late_read"])
def test_same_row_races_over_tls_are_still_found(scenario: Scenario, kind: str) -> None:
    r = scenario(f"psycopg2+tls:{kind}")
    assert not r["holds"]
    assert "sql:acct_" in r["explanation"] or "sql:other_" in r["explanation"]


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("tls", "encrypted by a TLS library other than OpenSSL, or GSS"),
        ("garbage", "a protocol it could not follow"),
    ],
)
def test_statements_that_cannot_be_read_are_named_in_the_result(scenario: Scenario, kind: str, why: str) -> None:
    r = scenario(f"opaque:{kind}")
    assert r["holds"]
    # Counted as writes to the whole server: the two workers are ordered
    # both ways.
    assert r["executions"] >= 2
    assert r["unseen"] == [f"localhost:5432: {why}"]


def test_statements_read_through_openssl_are_not_reported_unseen(scenario: Scenario) -> None:
    assert scenario("psycopg2+tls:rows")["unseen"] == []
