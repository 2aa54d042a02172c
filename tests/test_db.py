"""Schema migrations: a migrated database is recognised without loading a single migration."""

from __future__ import annotations

from pathlib import Path

import alembic.command
import pytest

from coffer.db import _recorded_heads, expected_heads, make_engine, migrate, sqlite_url


def test_every_branch_head_is_recorded_after_migrating(tmp_path: Path) -> None:
    """The heads read as text from the migration files are exactly the ones alembic records, so the
    fast path (skip the upgrade) is taken only for a database that is at every head."""
    engine = make_engine(sqlite_url(tmp_path / "coffer.db"))
    try:
        assert frozenset() == _recorded_heads(engine)
        migrate(engine)
        assert expected_heads() == _recorded_heads(engine)
        assert {"ledger_0002", "clients_0002", "eth_0001"} <= expected_heads()
    finally:
        engine.dispose()


def test_migrated_database_opens_without_running_alembic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening a database that is at every head does not run alembic (which would load every migration,
    and with them the Ethereum stack)."""
    engine = make_engine(sqlite_url(tmp_path / "coffer.db"))
    try:
        migrate(engine)

        def refuse(*_: object) -> None:
            raise AssertionError("alembic ran for a database already at every head")

        monkeypatch.setattr(alembic.command, "upgrade", refuse)
        migrate(engine)
        assert expected_heads() == _recorded_heads(engine)
    finally:
        engine.dispose()
