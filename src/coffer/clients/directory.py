"""Client identities: sign-in with a password (argon2id) and a TOTP code (RFC 6238, pyotp).

A TOTP code is accepted once: the last used time step is stored and a code for the same or an
earlier step is refused (no replay). Unknown clients cost the same argon2 work as known ones.
Renewing the second factor is two steps: `begin_totp_change` (with the current code) gives a
new secret; `confirm_totp_change` (with a code of the new secret) makes it the active one.
"""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import dataclass
from datetime import datetime

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.engine import Engine

from coffer.audit import AuditLog
from coffer.clients.errors import BadClientData, ClientExists, SignInRefused, TwoFactorRefused
from coffer.clients.seal import SecretSeal, open_secret, seal_secret
from coffer.clients.tables import clients

__all__ = ["ClientDirectory", "Enrollment", "Client", "CLIENT_ID_PATTERN", "PASSWORD_CHARS_MIN",
           "PASSWORD_CHARS_MAX", "TOTP_WINDOW_STEPS"]

CLIENT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")  # the policy's account pattern
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,188}\.[A-Za-z]{2,24}$")
PASSWORD_CHARS_MIN = 12
PASSWORD_CHARS_MAX = 256
TOTP_WINDOW_STEPS = 1  # accept the previous and the next 30-s step for clock drift
TOTP_STEP_S = 30
_CODE = re.compile(r"^[0-9]{6}$")


@dataclass(frozen=True, slots=True)
class Enrollment:
    """A TOTP secret to put in the client's authenticator app. Redacted repr."""

    client_id: str
    secret: str
    provisioning_uri: str

    def __repr__(self) -> str:
        return f"Enrollment(client_id={self.client_id!r}, secret=<redacted>)"


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    email: str
    created_at_s: int


def _hasher() -> PasswordHasher:
    # argon2id, RFC 9106 "second recommended" (64 MiB, t=3, p=4) as shipped by argon2-cffi.
    return PasswordHasher()


class ClientDirectory:
    """Client sign-in and second factor over the coordinator's database."""

    def __init__(self, engine: Engine, *, audit: AuditLog | None = None, issuer: str = "Coffer",
                 hasher: PasswordHasher | None = None, seal: SecretSeal | None = None) -> None:
        self._engine = engine
        self._seal = seal
        self._audit = audit or AuditLog(engine)
        self._issuer = issuer
        self._hasher = hasher or _hasher()
        self._dummy: str | None = None

    def _dummy_hash(self) -> str:
        """A hash to verify against for unknown clients, so they cost the same work (made on first use)."""
        if self._dummy is None:
            self._dummy = self._hasher.hash("coffer-dummy-password-for-timing")
        return self._dummy

    def register(self, client_id: str, email: str, password: str, *, now: datetime,
                 totp_secret: str | None = None) -> Enrollment:
        """Create a client; returns the TOTP enrollment to show once."""
        if not CLIENT_ID_PATTERN.fullmatch(client_id):
            raise BadClientData("client id: lowercase letters, digits, . _ -; 1..64 characters")
        if not _EMAIL.fullmatch(email):
            raise BadClientData("not a valid mail address")
        if not PASSWORD_CHARS_MIN <= len(password) <= PASSWORD_CHARS_MAX:
            raise BadClientData(f"password must be {PASSWORD_CHARS_MIN}..{PASSWORD_CHARS_MAX} characters")
        secret = totp_secret or pyotp.random_base32()
        with self._engine.begin() as conn:
            if conn.execute(sa.select(clients.c.client_id).where(clients.c.client_id == client_id)).first():
                raise ClientExists(f"client {client_id} exists")
            conn.execute(clients.insert().values(
                client_id=client_id, email=email, password_hash=self._hasher.hash(password),
                totp_secret=seal_secret(self._seal, client_id, "totp_secret", secret),
                totp_pending_secret=None, totp_last_step=0, created_at_s=int(now.timestamp()), disabled=False))
            self._audit.append("clients", "clients.registered", {"client_id": client_id}, at=now, connection=conn)
        return self._enrollment(client_id, email, secret)

    def _enrollment(self, client_id: str, email: str, secret: str) -> Enrollment:
        uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=self._issuer)
        return Enrollment(client_id, secret, uri)

    def client(self, client_id: str) -> Client:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(clients).where(clients.c.client_id == client_id)).first()
        if row is None:
            raise BadClientData(f"no client {client_id}")
        return Client(row.client_id, row.email, int(row.created_at_s))

    def email(self, client_id: str) -> str:
        """The client's mail address (the notifier's `address_of`)."""
        return self.client(client_id).email

    def authenticate(self, client_id: str, password: str, code: str, *, now: datetime) -> Client:
        """Password and TOTP; SignInRefused on any failure without saying which."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(clients).where(clients.c.client_id == client_id)).first()
        stored = self._dummy_hash() if row is None else str(row.password_hash)
        try:
            self._hasher.verify(stored, password[:PASSWORD_CHARS_MAX])
            password_ok = row is not None and not row.disabled
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            password_ok = False
        if not password_ok:
            raise SignInRefused("wrong client id, password or two-factor code")
        try:
            self.verify_totp(client_id, code, now=now)
        except TwoFactorRefused:
            raise SignInRefused("wrong client id, password or two-factor code") from None
        return Client(row.client_id, row.email, int(row.created_at_s))  # type: ignore[union-attr]

    def verify_totp(self, client_id: str, code: str, *, now: datetime, pending: bool = False) -> None:
        """Accept a 6-digit code once (its step must be newer than the last accepted one)."""
        code = code.strip().replace(" ", "")
        if not _CODE.fullmatch(code):
            raise TwoFactorRefused("the two-factor code must be 6 digits")
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(clients).where(clients.c.client_id == client_id)).first()
            column = "totp_pending_secret" if pending else "totp_secret"
            stored = None if row is None else getattr(row, column)
            if row is None or stored is None:
                raise TwoFactorRefused("wrong two-factor code")
            step = self._matching_step(open_secret(self._seal, client_id, column, str(stored)), code, now)
            if step is None or step <= int(row.totp_last_step):
                raise TwoFactorRefused("wrong or already used two-factor code")
            result = conn.execute(clients.update().where(clients.c.client_id == client_id,
                                                         clients.c.totp_last_step == row.totp_last_step)
                                  .values(totp_last_step=step))
            if result.rowcount != 1:
                raise TwoFactorRefused("wrong or already used two-factor code")

    @staticmethod
    def _matching_step(secret: str, code: str, now: datetime) -> int | None:
        totp = pyotp.TOTP(secret)
        current = int(now.timestamp()) // TOTP_STEP_S
        for step in range(current - TOTP_WINDOW_STEPS, current + TOTP_WINDOW_STEPS + 1):
            if hmac.compare_digest(totp.at(step * TOTP_STEP_S), code):
                return step
        return None

    def begin_totp_change(self, client_id: str, code: str, *, now: datetime) -> Enrollment:
        """With a valid current code, draw a new secret (pending until confirmed)."""
        self.verify_totp(client_id, code, now=now)
        secret = pyotp.random_base32()
        with self._engine.begin() as conn:
            conn.execute(clients.update().where(clients.c.client_id == client_id)
                         .values(totp_pending_secret=seal_secret(self._seal, client_id, "totp_pending_secret", secret)))
        return self._enrollment(client_id, self.email(client_id), secret)

    def confirm_totp_change(self, client_id: str, code: str, *, now: datetime) -> None:
        """A code of the new secret makes it the active one."""
        self.verify_totp(client_id, code, now=now, pending=True)
        with self._engine.begin() as conn:
            stored = conn.execute(sa.select(clients.c.totp_pending_secret)
                                  .where(clients.c.client_id == client_id)).scalar()
            if stored is None:
                raise TwoFactorRefused("no two-factor change is pending")
            secret = open_secret(self._seal, client_id, "totp_pending_secret", str(stored))
            conn.execute(clients.update().where(clients.c.client_id == client_id)
                         .values(totp_secret=seal_secret(self._seal, client_id, "totp_secret", secret),
                                 totp_pending_secret=None))
            self._audit.append(f"client:{client_id}", "clients.two_factor_changed", {"client_id": client_id},
                               at=now, connection=conn)


def current_code(secret: str, *, at: float | None = None) -> str:
    """The TOTP code for `secret` at `at` (tests and the demo play the authenticator app)."""
    return str(pyotp.TOTP(secret).at(time.time() if at is None else at))
