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


_REVISION_FILE = re.compile(r"(?P<branch>[a-z]+)_(?P<number>\d{4})_\w+\.py")


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
    """The newest revision of each branch, read from the file names (`<branch>_<NNNN>_<what>.py`,
    revision id `<branch>_<NNNN>`); an empty set, so a full upgrade, if a name breaks the convention."""
    newest: dict[str, tuple[int, str]] = {}
    for path in (_MIGRATIONS_DIR / "versions").glob("*.py"):
        found = _REVISION_FILE.fullmatch(path.name)
        if found is None:
            return frozenset()
        branch, number = found.group("branch"), int(found.group("number"))
        if number > newest.get(branch, (0, ""))[0]:
            newest[branch] = (number, f"{branch}_{found.group('number')}")
    return frozenset(revision for _, revision in newest.values())


def _recorded_heads(engine: Engine) -> frozenset[str]:
    """The revisions alembic recorded in this database (empty when it has never been migrated)."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return frozenset()
        rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        return frozenset(str(row) for row in rows)
