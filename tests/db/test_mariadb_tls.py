"""Statements sent to MariaDB through TLS, against a private server with
TLS on (the machine's MariaDB has it off): mysqlclient's libmariadb and
PyMySQL (Python's ``ssl`` module) both encrypt with OpenSSL, whose
plaintext calls the preload library reads, so the statements, tables and
rows are seen as without TLS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dbexplain import interleaving

Scenario = Callable[[str], dict[str, Any]]

DRIVERS = ["mysqlclient+tls", "pymysql+tls"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_lost_update_over_tls_to_mariadb_is_explained_with_its_table_and_row(
    scenario: Scenario, mariadb_tls: int, driver: str
) -> None:
    r = scenario(f"{driver}:lost_update")
    assert not r["holds"]
    assert r["reproduced"] == [10, 10]
    assert "lost update on sql:acct_" in r["explanation"]
    steps = interleaving(r["explanation"])
    assert sum("[read sql:acct_" in ln and "#id=1]" in ln for ln in steps) == 2, steps
    assert f"socket:localhost:{mariadb_tls}" not in r["explanation"]
    assert r["unseen"] == []


@pytest.mark.parametrize("kind", ["rows", "tables", "rows_connect_in_worker"])
@pytest.mark.parametrize("driver", DRIVERS)
def test_independent_work_over_tls_to_mariadb_needs_one_execution(
    scenario: Scenario, mariadb_tls: int, driver: str, kind: str
) -> None:
    r = scenario(f"{driver}:{kind}")
    assert r["holds"]
    assert r["executions"] == 1
    assert r["unseen"] == []
