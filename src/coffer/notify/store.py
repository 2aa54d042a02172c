"""Storage of public OpenPGP keys: each client's active and pending key, and the security team's keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from coffer.audit import AuditLog
from coffer.notify import tables as t
from coffer.notify.errors import KeyRejected, NotifyError
from coffer.notify.pgp import check_public_key

__all__ = ["KeyStore", "StoredKey", "TeamKey", "TEAM_KEYS_MAX"]

TEAM_KEYS_MAX = 32
_TEAM_NAME_CHARS_MAX = 64


@dataclass(frozen=True, slots=True)
class StoredKey:
    client_id: str
    state: str  # pending | active
    fingerprint: str
    armored: str
    created_at_s: int
    activated_at_s: int | None
    challenge_sha256: str | None
    challenge_expires_at_s: int | None
    challenge_attempts: int

    def __repr__(self) -> str:
        return f"StoredKey(client_id={self.client_id!r}, state={self.state!r}, fingerprint={self.fingerprint!r})"


@dataclass(frozen=True, slots=True)
class TeamKey:
    fingerprint: str
    name: str
    armored: str
    added_at_s: int


def _stored(row: Any) -> StoredKey:
    return StoredKey(row.client_id, row.state, row.fingerprint, row.armored, int(row.created_at_s),
                     None if row.activated_at_s is None else int(row.activated_at_s), row.challenge_sha256,
                     None if row.challenge_expires_at_s is None else int(row.challenge_expires_at_s),
                     int(row.challenge_attempts))


class KeyStore:
    """Public keys only. Parts read them through this class, never through the tables."""

    def __init__(self, engine: Engine, *, audit: AuditLog | None = None) -> None:
        self._engine = engine
        self._audit = audit or AuditLog(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    def key(self, client_id: str, state: str, *, connection: Connection | None = None) -> StoredKey | None:
        query = sa.select(t.client_keys).where(t.client_keys.c.client_id == client_id, t.client_keys.c.state == state)
        if connection is not None:
            row = connection.execute(query).first()
        else:
            with self._engine.connect() as conn:
                row = conn.execute(query).first()
        return None if row is None else _stored(row)

    def active(self, client_id: str, *, connection: Connection | None = None) -> StoredKey | None:
        """The client's confirmed key: every mail to them is encrypted to it."""
        return self.key(client_id, "active", connection=connection)

    def pending(self, client_id: str, *, connection: Connection | None = None) -> StoredKey | None:
        return self.key(client_id, "pending", connection=connection)

    # -- the security team's keys ----------------------------------------------------------
    def add_team_key(self, data: bytes, *, name: str, by: str, now: datetime) -> TeamKey:
        """Register a team member's public key (checked like a client's key)."""
        if not name or len(name) > _TEAM_NAME_CHARS_MAX:
            raise NotifyError("team key name must be 1..64 characters")
        checked = check_public_key(data, now=now)
        with self._engine.begin() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(t.team_keys)).scalar_one()
            if int(count) >= TEAM_KEYS_MAX:
                raise KeyRejected("too_many", f"at most {TEAM_KEYS_MAX} team keys")
            exists = conn.execute(sa.select(t.team_keys.c.fingerprint)
                                  .where(t.team_keys.c.fingerprint == checked.fingerprint)).first()
            if exists is not None:
                raise KeyRejected("duplicate", "this team key is already registered")
            at = int(now.timestamp())
            conn.execute(t.team_keys.insert().values(fingerprint=checked.fingerprint, name=name,
                                                     armored=checked.armored, added_at_s=at, added_by=by))
            self._audit.append(by, "notify.team_key_added", {"fingerprint": checked.fingerprint, "name": name},
                               at=now, connection=conn)
        return TeamKey(checked.fingerprint, name, checked.armored, at)

    def remove_team_key(self, fingerprint: str, *, by: str, now: datetime) -> None:
        with self._engine.begin() as conn:
            result = conn.execute(t.team_keys.delete().where(t.team_keys.c.fingerprint == fingerprint.lower()))
            if result.rowcount != 1:
                raise NotifyError(f"no team key {fingerprint}")
            self._audit.append(by, "notify.team_key_removed", {"fingerprint": fingerprint.lower()},
                               at=now, connection=conn)

    def team_keys(self) -> list[TeamKey]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.team_keys).order_by(t.team_keys.c.name)).all()
        return [TeamKey(row.fingerprint, row.name, row.armored, int(row.added_at_s)) for row in rows]
