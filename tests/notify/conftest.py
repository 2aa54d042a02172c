"""Fixtures of the notify tests: gpg clients, a stoppable SMTP server, the notify part on a database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pysequoia as sq
import pytest
from sqlalchemy.engine import Engine

from coffer.db import make_engine, migrate
from coffer.notify import NotifyParts, open_notify
from tests.notify.helpers import Gpg, SmtpServer

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def team_key() -> sq.Tsk:
    """The security team's key pair; its secret half stays in the test (the team's machine)."""
    return sq.Tsk.generate("Security Team <team@example.com>")


@pytest.fixture(scope="session")
def client_gpg(tmp_path_factory: pytest.TempPathFactory, team_key: sq.Tsk) -> Iterator[Gpg]:
    """One gpg home with good client keys (ed25519 + cv25519) that knows the team's public key."""
    with Gpg(tmp_path_factory.mktemp("gnupg-client") / "home") as gpg:
        gpg.generate("Alice <alice@example.com>")
        gpg.generate("Bob <bob@example.com>")
        gpg.run("--import", input_bytes=str(team_key.extract_certificate()).encode())
        yield gpg


def _parts(engine: Engine, team_key: sq.Tsk) -> NotifyParts:
    addresses = {"alice": "alice@example.com", "bob": "bob@example.com"}
    parts = open_notify(engine, address_of=addresses.__getitem__, team_address="team@example.com")
    parts.keys.add_team_key(str(team_key.extract_certificate()).encode(), name="team", by="test", now=NOW)
    return parts


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database (most notify tests; the storage-heavy ones also run on PostgreSQL)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'notify.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def notify(sqlite_engine: Engine, team_key: sq.Tsk) -> NotifyParts:
    """The notify part on SQLite with one team key registered."""
    return _parts(sqlite_engine, team_key)


@pytest.fixture
def notify_any(engine: Engine, team_key: sq.Tsk) -> NotifyParts:
    """The notify part on SQLite and on PostgreSQL."""
    return _parts(engine, team_key)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def activate(parts: NotifyParts, gpg: Gpg, client_id: str, uid: str, now: datetime = NOW) -> str:
    """Submit the client's key, decrypt the challenge with gpg, confirm it; returns the fingerprint."""
    parts.key_service.submit(client_id, gpg.export(uid), now=now)
    challenge = [item for item in parts.outbox.items(client_id=client_id) if item.event == "key_challenge"][-1]
    code = next(line.strip() for line in gpg.decrypt(challenge.body).splitlines() if line.startswith("    "))
    return parts.key_service.confirm(client_id, code, now=now)

