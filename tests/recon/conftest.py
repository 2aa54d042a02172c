"""Fixtures of the reconciliation tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from coffer.db import make_engine, migrate


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite engine (the embedded default) for tests whose logic does not depend on the store."""
    engine = make_engine(f"sqlite:///{tmp_path / 'coffer.db'}")
    migrate(engine)
    yield engine
    engine.dispose()
