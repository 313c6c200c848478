"""SQLAlchemy Core over psycopg2 with the engine made in ``setup()``, so its
pool fills inside the workers: QueuePool (connections made lazily, kept)
and NullPool (a connection per checkout).

Workers on different rows are not tested here: with SQLAlchemy traced (the
default), its shared caches and pool state are real races between the
workers and the search does not finish within the budget of these tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Scenario = Callable[[str], dict[str, Any]]


@pytest.mark.parametrize("pool", ["queuepool", "nullpool"])
def test_a_lost_update_through_the_pool_is_found_with_its_row(scenario: Scenario, pool: str) -> None:
    r = scenario(f"sqlalchemy:{pool}_row")
    assert not r["holds"]
    assert "lost update on sql:acct_" in r["explanation"]
