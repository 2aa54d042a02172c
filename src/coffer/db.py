"""Database engines and schema migrations, one schema for SQLite (default) and PostgreSQL.

Each part keeps its tables in its own module on the shared `metadata` and its own Alembic
migration branch (branch label = part name) under `coffer/migrations/versions`; `migrate`
upgrades every head. Parts never read each other's tables: they call each other's functions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

__all__ = ["metadata", "make_engine", "migrate", "sqlite_url", "is_postgres"]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url` (sqlite:///path or postgresql+psycopg://...), with safe settings."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, echo=echo, connect_args={"timeout": 10, "check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    return sa.create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=10)


_REVISION = re.compile(r'^revision = "([\w.-]+)"$', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision = (?:"([\w.-]+)"|None)$', re.MULTILINE)


def alembic_config(engine: Engine) -> AlembicConfig:
    from alembic.config import Config  # heavy (about a second) and needed only when a migration runs

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to every branch head. Idempotent; cheap when already there (a start-up of
    `coffer serve` must not load every migration, and with them the Ethereum stack)."""
    if _recorded_heads(engine) == expected_heads():
        return
    from alembic import command  # heavy; a database already at every head never needs it

    command.upgrade(alembic_config(engine), "heads")


def expected_heads() -> frozenset[str]:
    """The head of each branch, read as text from the migration files (`revision = "…"`,
    `down_revision = "…"` or None), without importing them; an empty set, so a full upgrade, for a
    file this reading does not understand (a merge revision, say)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision, parent = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or parent is None:
            return frozenset()
        revisions.add(revision.group(1))
        if parent.group(1) is not None:
            parents.add(parent.group(1))
    return frozenset(revisions - parents)


def _recorded_heads(engine: Engine) -> frozenset[str]:
    """The revisions alembic recorded in this database (empty when it has never been migrated)."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return frozenset()
        rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        return frozenset(str(row) for row in rows)
