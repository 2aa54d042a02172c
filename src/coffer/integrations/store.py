"""The exchange's API integrations: keys made, rotated and revoked by operators (each action in
the audit chain), secrets sealed under the coordinator's HSM, requests authenticated by HMAC with
a replay record, and idempotency records so a retried request has the first one's answer.

A secret is shown once, when it is made; the database holds it only sealed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coffer.audit import AuditLog
from coffer.clients.seal import SecretSeal
from coffer.integrations.errors import (
    AuthenticationFailed,
    IdempotencyConflict,
    IntegrationError,
    IntegrationNotFound,
)
from coffer.integrations.hmac_auth import SKEW_S_MAX, verify_request
from coffer.integrations.tables import api_keys, idempotency, seen_signatures

__all__ = ["IntegrationStore", "Integration", "NewKey", "Replay", "NAME_CHARS_MAX", "IDEMPOTENCY_KEY_CHARS_MAX",
           "LAST_USED_RESOLUTION_S", "SECRET_BYTES", "PENDING"]

NAME_CHARS_MAX = 100
IDEMPOTENCY_KEY_CHARS_MAX = 100
LAST_USED_RESOLUTION_S = 60
SECRET_BYTES = 32
KEY_PREFIX = "ck_"
PENDING = 0  # an idempotency record whose work was begun and not yet answered


@dataclass(frozen=True, slots=True)
class Integration:
    key_id: str
    name: str
    state: str
    created_by: str
    created_s: int
    expires_s: int | None
    replaced_by: str | None
    last_used_s: int | None


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key as made: the only time its secret is seen (the repr hides it)."""

    key_id: str
    secret: str

    def __repr__(self) -> str:
        return f"NewKey(key_id={self.key_id!r}, secret=<redacted>)"


@dataclass(frozen=True, slots=True)
class Replay:
    """The stored answer to an earlier request with the same idempotency key (status 0: still pending)."""

    status: int
    body: dict[str, Any]


def _aad(key_id: str) -> bytes:
    return f"coffer/integrations/secret/v1\x00{key_id}".encode()


def _integration(row: Any) -> Integration:
    return Integration(str(row.key_id), str(row.name), str(row.state), str(row.created_by), int(row.created_s),
                       None if row.expires_s is None else int(row.expires_s), row.replaced_by,
                       None if row.last_used_s is None else int(row.last_used_s))


class IntegrationStore:
    def __init__(self, engine: Engine, seal: SecretSeal, audit: AuditLog) -> None:
        self._engine = engine
        self._seal = seal
        self._audit = audit

    def create(self, name: str, *, by: str, now: datetime) -> NewKey:
        """A new API key for integration `name`, made by operator `by`."""
        if not name or len(name) > NAME_CHARS_MAX or not name.isprintable():
            raise IntegrationError(f"integration name must be 1..{NAME_CHARS_MAX} printable characters")
        key_id = KEY_PREFIX + secrets.token_hex(12)
        secret = secrets.token_bytes(SECRET_BYTES)
        sealed = base64.b64encode(self._seal.seal(secret, _aad(key_id))).decode()
        with self._engine.begin() as conn:
            conn.execute(api_keys.insert().values(key_id=key_id, name=name, secret_sealed=sealed, state="active",
                                                  created_by=by, created_s=int(now.timestamp())))
            self._audit.append(by, "integration.created", {"key_id": key_id, "name": name}, at=now, connection=conn)
        return NewKey(key_id, secret.hex())

    def rotate(self, key_id: str, *, by: str, now: datetime, grace_s: int = 0) -> NewKey:
        """A new key for the same integration; the old one stops working after `grace_s`."""
        if not 0 <= grace_s <= 7 * 24 * 3600:
            raise IntegrationError("rotation grace must be 0..7 days")
        old = self.get(key_id)
        if old.state != "active" or old.replaced_by is not None:
            raise IntegrationError(f"{key_id} is revoked or already rotated")
        new = self.create(old.name, by=by, now=now)
        with self._engine.begin() as conn:
            conn.execute(api_keys.update().where(api_keys.c.key_id == key_id).values(
                replaced_by=new.key_id, expires_s=int(now.timestamp()) + grace_s))
            self._audit.append(by, "integration.rotated", {"key_id": key_id, "new_key_id": new.key_id,
                                                          "grace_s": grace_s}, at=now, connection=conn)
        return new

    def revoke(self, key_id: str, *, by: str, now: datetime) -> None:
        self.get(key_id)
        with self._engine.begin() as conn:
            conn.execute(api_keys.update().where(api_keys.c.key_id == key_id).values(state="revoked",
                                                                                     revoked_by=by))
            self._audit.append(by, "integration.revoked", {"key_id": key_id}, at=now, connection=conn)

    def get(self, key_id: str) -> Integration:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).one_or_none()
        if row is None:
            raise IntegrationNotFound(f"no integration {key_id!r}")
        return _integration(row)

    def list(self) -> list[Integration]:
        with self._engine.connect() as conn:
            return [_integration(r) for r in conn.execute(sa.select(api_keys).order_by(api_keys.c.created_s))]

    def authenticate(self, key_id: str | None, *, timestamp_s: int, nonce: str, method: str, path: str, body: bytes,
                     signature: str | None, now: datetime) -> Integration:
        """The integration that signed this request, or AuthenticationFailed naming the rule."""
        now_s = int(now.timestamp())
        if not key_id or len(key_id) > 40:
            raise AuthenticationFailed("API key missing", rule="auth.key")
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).one_or_none()
        if row is None or row.state != "active" or (row.expires_s is not None and row.expires_s <= now_s):
            raise AuthenticationFailed("API key unknown, revoked or expired", rule="auth.key")
        secret = self._seal.open(base64.b64decode(row.secret_sealed), _aad(key_id))
        verify_request(secret, timestamp_s=timestamp_s, nonce=nonce, method=method, path=path, body=body, signature=signature,
                       now_s=now_s)
        self._remember(key_id, str(signature).lower(), now_s, row.last_used_s)
        return _integration(row)

    def _remember(self, key_id: str, signature: str, now_s: int, last_used_s: int | None) -> None:
        with self._engine.begin() as conn:
            try:
                conn.execute(seen_signatures.insert().values(signature=signature, key_id=key_id, at_s=now_s))
            except sa.exc.IntegrityError:
                raise AuthenticationFailed("request replayed", rule="auth.replay") from None
            conn.execute(seen_signatures.delete().where(seen_signatures.c.at_s < now_s - 2 * SKEW_S_MAX))
            if last_used_s is None or now_s - last_used_s >= LAST_USED_RESOLUTION_S:
                conn.execute(api_keys.update().where(api_keys.c.key_id == key_id).values(last_used_s=now_s))

    def secret_for_feed(self, key_id: str) -> bytes:
        """The secret that signs feed pages to this integration (used only to compute the HMAC)."""
        with self._engine.connect() as conn:
            sealed = conn.execute(sa.select(api_keys.c.secret_sealed).where(api_keys.c.key_id == key_id)).scalar()
        if sealed is None:
            raise IntegrationNotFound(f"no integration {key_id!r}")
        return self._seal.open(base64.b64decode(sealed), _aad(key_id))

    def replay(self, key_id: str, idempotency_key: str, body: bytes) -> Replay | None:
        """The stored answer for this idempotency key, or None; the same key with another body is a conflict."""
        if not idempotency_key or len(idempotency_key) > IDEMPOTENCY_KEY_CHARS_MAX or not idempotency_key.isprintable():
            raise IntegrationError(f"Idempotency-Key must be 1..{IDEMPOTENCY_KEY_CHARS_MAX} printable characters")
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(idempotency).where(idempotency.c.key_id == key_id,
                                                            idempotency.c.idempotency_key == idempotency_key)
                               ).one_or_none()
        if row is None:
            return None
        if row.body_sha256 != hashlib.sha256(body).hexdigest():
            raise IdempotencyConflict("this Idempotency-Key was used with a different body")
        return Replay(int(row.status), json.loads(row.response))

    def begin(self, key_id: str, idempotency_key: str, body: bytes, pending: dict[str, Any], *,
              now: datetime) -> Replay:
        """Write down what this key is about to do (status 0, `pending`) before doing it, so a retry
        after a crash or an outage resumes the same work instead of starting another; if the key is
        already there, its record is the answer."""
        try:
            with self._engine.begin() as conn:
                conn.execute(idempotency.insert().values(
                    key_id=key_id, idempotency_key=idempotency_key, body_sha256=hashlib.sha256(body).hexdigest(),
                    status=PENDING, response=json.dumps(pending, sort_keys=True), at_s=int(now.timestamp())))
        except sa.exc.IntegrityError:
            stored = self.replay(key_id, idempotency_key, body)
            if stored is not None:
                return stored
            raise
        return Replay(PENDING, pending)

    def finish(self, key_id: str, idempotency_key: str, status: int, response: dict[str, Any]) -> Replay:
        """The final answer for a key begun with `begin`."""
        with self._engine.begin() as conn:
            conn.execute(idempotency.update().where(
                idempotency.c.key_id == key_id, idempotency.c.idempotency_key == idempotency_key,
                idempotency.c.status == PENDING).values(status=status, response=json.dumps(response, sort_keys=True)))
        return Replay(status, response)
