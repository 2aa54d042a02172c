"""Ledger fixtures: a ledger on each database with the house accounts and two clients open.

`engine` here shadows the project-wide fixture with the same contract (a migrated engine, once
on SQLite and once on PostgreSQL) but copies a database migrated once per session instead of
migrating every test's database: PostgreSQL's `CREATE DATABASE ... TEMPLATE` and a file copy.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coffer.db import make_engine, migrate
from coffer.ledger import Ledger
from coffer.testing import PostgresServer

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def _postgres_template(postgres_server: PostgresServer) -> str:
    name = f"ledger_template_{uuid.uuid4().hex[:8]}"
    engine = make_engine(postgres_server.create_database(name))
    migrate(engine)
    engine.dispose()
    return name


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ledger-template") / "coffer.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated engine, once on SQLite and once on PostgreSQL (copied from a migrated template)."""
    if request.param == "sqlite":
        path = tmp_path / "coffer.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        engine = make_engine(f"sqlite:///{path}")
        yield engine
        engine.dispose()
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    template = request.getfixturevalue("_postgres_template")
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    finally:
        admin.dispose()
    engine = make_engine(server.url(name))
    yield engine
    engine.dispose()
    server.drop_database(name)


@pytest.fixture
def ledger(engine: Engine) -> Ledger:
    """A ledger (SQLite and PostgreSQL) with company, custody (cold, hot), world, alice and bob open."""
    ledger = Ledger(engine)
    ledger.open_house_accounts(["BTC", "ETH"], at=T0)
    ledger.open_client("alice", ["BTC", "ETH"], at=T0)
    ledger.open_client("bob", ["BTC", "ETH"], at=T0)
    return ledger
