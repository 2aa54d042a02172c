"""A client's OpenPGP key in the security centre: submit, prove it decrypts, replace, remove.

A submitted key is only `pending`: Coffer mails a one-time code encrypted to it, and the key
becomes `active` when the client enters the code (so the client proved they hold the secret
key). Replacing an active key (also by a renewed copy of itself, e.g. with a later expiry) or removing it needs the second factor, which the caller has
verified (`second_factor_ok=True`); the holder of the old key is told. A refused key changes
nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from coffer.audit import AuditLog
from coffer.notify import tables as t
from coffer.notify.errors import ChallengeRefused, NoActiveKey, NotifyError
from coffer.notify.notifier import Notifier
from coffer.notify.pgp import CheckedKey, check_public_key
from coffer.notify.store import KeyStore, StoredKey

__all__ = ["KeyService", "KeySubmission", "KeyStatus", "TwoFactorRequired", "CHALLENGE_TTL_S",
           "CHALLENGE_ATTEMPTS_MAX", "normalise_code"]

CHALLENGE_TTL_S = 3600
CHALLENGE_ATTEMPTS_MAX = 5
CHALLENGE_BYTES = 10  # 80 bits, 16 base32 characters


class TwoFactorRequired(NotifyError):
    """Replacing or removing an active key needs a verified second factor."""


@dataclass(frozen=True, slots=True)
class KeySubmission:
    fingerprint: str
    user_ids: tuple[str, ...]
    expires_at: datetime | None
    algorithms: tuple[str, ...]
    replacing: str | None  # fingerprint of the active key it will replace
    challenge_expires_at_s: int


@dataclass(frozen=True, slots=True)
class KeyStatus:
    active: StoredKey | None
    pending: StoredKey | None


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())[:64]


def _code_hash(client_id: str, code: str) -> str:
    return hashlib.sha256(f"coffer/key-challenge/v1\x00{client_id}\x00{normalise_code(code)}".encode()).hexdigest()


def _new_code(rng: Callable[[int], bytes]) -> str:
    raw = base64.b32encode(rng(CHALLENGE_BYTES)).decode()
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def _utc(at_s: int) -> str:
    return datetime.fromtimestamp(at_s, UTC).strftime("%Y-%m-%d %H:%M")


class KeyService:
    """The security centre's key operations. The challenge code exists only inside the encrypted mail."""

    def __init__(self, keys: KeyStore, notifier: Notifier, *, audit: AuditLog | None = None,
                 rng: Callable[[int], bytes] = os.urandom) -> None:
        self._keys = keys
        self._engine = keys.engine
        self._notifier = notifier
        self._audit = audit or AuditLog(keys.engine)
        self._rng = rng

    def status(self, client_id: str) -> KeyStatus:
        return KeyStatus(self._keys.active(client_id), self._keys.pending(client_id))

    def submit(self, client_id: str, data: bytes, *, now: datetime, second_factor_ok: bool = False) -> KeySubmission:
        """Check the key and mail it a challenge; it stays pending until `confirm`."""
        checked = check_public_key(data, now=now)
        active = self._keys.active(client_id)
        if active is not None and not second_factor_ok:
            raise TwoFactorRequired("replacing your active key needs your two-factor code")
        at = int(now.timestamp())
        code = _new_code(self._rng)
        expires = at + CHALLENGE_TTL_S
        with self._engine.begin() as conn:
            conn.execute(t.client_keys.delete().where(t.client_keys.c.client_id == client_id,
                                                      t.client_keys.c.state == "pending"))
            conn.execute(t.client_keys.insert().values(
                client_id=client_id, state="pending", fingerprint=checked.fingerprint, armored=checked.armored,
                created_at_s=at, challenge_sha256=_code_hash(client_id, code), challenge_expires_at_s=expires,
                challenge_attempts=0))
            self._audit.append(f"client:{client_id}", "notify.key_submitted",
                               {"client_id": client_id, "fingerprint": checked.fingerprint,
                                "replacing": None if active is None else active.fingerprint}, at=now, connection=conn)
            self._notifier.send(client_id, "key_challenge",
                                {"fingerprint": checked.fingerprint, "code": code, "expires_at": _utc(expires)},
                                recipients=[checked.armored], now=now, connection=conn)
            if active is not None:
                self._notifier.send(client_id, "key_replacement_started", {"fingerprint": checked.fingerprint},
                                    recipients=[active.armored], now=now, connection=conn)
        return self._submission(checked, active, expires)

    @staticmethod
    def _submission(checked: CheckedKey, active: StoredKey | None, expires: int) -> KeySubmission:
        return KeySubmission(checked.fingerprint, checked.user_ids, checked.expires_at, checked.algorithms,
                             None if active is None else active.fingerprint, expires)

    def confirm(self, client_id: str, code: str, *, now: datetime) -> str:
        """Activate the pending key if `code` is its challenge; returns the fingerprint."""
        at = int(now.timestamp())
        with self._engine.begin() as conn:
            pending = self._keys.pending(client_id, connection=conn)
            if pending is None or pending.challenge_sha256 is None:
                raise ChallengeRefused("there is no key waiting for confirmation")
            if pending.challenge_expires_at_s is None or pending.challenge_expires_at_s <= at:
                raise ChallengeRefused("the code has expired: submit the key again")
            if pending.challenge_attempts >= CHALLENGE_ATTEMPTS_MAX:
                raise ChallengeRefused("too many wrong codes: submit the key again")
            if not hmac.compare_digest(pending.challenge_sha256, _code_hash(client_id, code)):
                conn.execute(t.client_keys.update().where(t.client_keys.c.client_id == client_id,
                                                          t.client_keys.c.state == "pending")
                             .values(challenge_attempts=t.client_keys.c.challenge_attempts + 1))
                wrong = True
            else:
                wrong = False
                self._activate(conn, client_id, pending, now)
        if wrong:
            raise ChallengeRefused("wrong code")
        return pending.fingerprint

    def _activate(self, conn: sa.Connection, client_id: str, pending: StoredKey, now: datetime) -> None:
        previous = self._keys.active(client_id, connection=conn)
        conn.execute(t.client_keys.delete().where(t.client_keys.c.client_id == client_id,
                                                  t.client_keys.c.state == "active"))
        conn.execute(t.client_keys.update().where(t.client_keys.c.client_id == client_id,
                                                  t.client_keys.c.state == "pending")
                     .values(state="active", activated_at_s=int(now.timestamp()), challenge_sha256=None,
                             challenge_expires_at_s=None))
        self._audit.append(f"client:{client_id}", "notify.key_activated",
                           {"client_id": client_id, "fingerprint": pending.fingerprint,
                            "replaced": None if previous is None else previous.fingerprint}, at=now, connection=conn)
        self._notifier.send(client_id, "key_activated", {"fingerprint": pending.fingerprint},
                            recipients=[pending.armored], now=now, connection=conn)

    def cancel_pending(self, client_id: str, *, now: datetime) -> None:
        with self._engine.begin() as conn:
            conn.execute(t.client_keys.delete().where(t.client_keys.c.client_id == client_id,
                                                      t.client_keys.c.state == "pending"))

    def remove(self, client_id: str, *, now: datetime, second_factor_ok: bool) -> str:
        """Remove the active key (and any pending one); the last mail to it says so."""
        if not second_factor_ok:
            raise TwoFactorRequired("removing your key needs your two-factor code")
        with self._engine.begin() as conn:
            active = self._keys.active(client_id, connection=conn)
            if active is None:
                raise NoActiveKey("there is no active key to remove")
            self._notifier.send(client_id, "key_removed", {"fingerprint": active.fingerprint},
                                recipients=[active.armored], now=now, connection=conn)
            conn.execute(t.client_keys.delete().where(t.client_keys.c.client_id == client_id))
            self._audit.append(f"client:{client_id}", "notify.key_removed",
                               {"client_id": client_id, "fingerprint": active.fingerprint}, at=now, connection=conn)
        return active.fingerprint
