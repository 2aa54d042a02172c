"""A bare coordinator home for command-line tests: coffer.toml and a migrated SQLite database,
without the HSM token and certificates `coffer init` also makes (tests that need them call
coffer.home.init_home)."""

from __future__ import annotations

from pathlib import Path

from coffer.config import CONFIG_FILE
from coffer.db import make_engine, migrate, sqlite_url

__all__ = ["bare_home"]


def bare_home(home: Path, config_text: str = "") -> Path:
    """HOME with a configuration and a migrated database, as the CLI requires of a home."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    (home / CONFIG_FILE).write_text(config_text)
    engine = make_engine(sqlite_url(home / "coffer.db"))
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return home
