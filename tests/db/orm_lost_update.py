"""An ORM lost update through SQLAlchemy and psycopg 3, run under the
preload library by ``test_orm_races.py``: each worker loads the row, adds
one in Python and commits. psycopg 3 waits for the server by polling, which
used to hide a worker blocked by the other's transaction; the race was then
missed and a session left idle in its transaction.

    python orm_lost_update.py TAG   (prints one RESULT line of JSON)
"""

from __future__ import annotations

import json
import sys

import frontrun
import sqlalchemy as sa
from sqlalchemy.orm import Session, declarative_base

TAG = sys.argv[1]
Base = declarative_base()


class Account(Base):  # type: ignore[misc, valid-type]
    __tablename__ = f"orm_acct_{TAG}"
    id = sa.Column(sa.Integer, primary_key=True)
    balance = sa.Column(sa.Integer)


engine = sa.create_engine(
    "postgresql+psycopg://postgres@127.0.0.1/test?sslmode=disable&application_name=frontrun-orm-" + TAG,
    poolclass=sa.pool.NullPool,
)


def setup() -> None:
    with Session(engine) as s:
        s.query(Account).delete()
        s.add(Account(id=1, balance=0))
        s.commit()


def deposit(_: None) -> None:
    with Session(engine) as s:
        account = s.get(Account, 1)
        account.balance = account.balance + 1
        s.commit()


def both_deposits_kept(_: None) -> bool:
    with Session(engine) as s:
        return s.get(Account, 1).balance == 2


Base.metadata.create_all(engine)
try:
    result = frontrun.explore_dpor(setup, [deposit, deposit], both_deposits_kept, total_timeout=60)
    with engine.connect() as c:
        idle = c.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"
                " AND state LIKE 'idle in transaction%'"
            ),
            {"app": "frontrun-orm-" + TAG},
        ).scalar()
finally:
    Base.metadata.drop_all(engine)
print(
    "RESULT "
    + json.dumps(
        {
            "verdict": result.verdict,
            "executions": result.num_explored,
            "inconclusive": result.inconclusive,
            "explanation": result.explanation,
            "idle_in_transaction": idle,
        }
    ),
    flush=True,
)
