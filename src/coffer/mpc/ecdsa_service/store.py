"""The ECDSA co-signer's own state: sealed host key and shares, the durable session marks.

Secrets (the DKG host secret key, Shamir shares) are stored only as AES-256-GCM ciphertext made by
the co-signer's own HSM key; the associated data binds co-signer id, key id and version. The SQLite
file runs with `synchronous=FULL`, so `mark_used` is on disk before the round's output is returned:
a session id is used once, and a crash can only make a session fail, never replay it.
OT setups (`PeerSetup`) are never stored: they live in the process's memory only.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from coffer.hsm import Hsm, KeyKind
from coffer.mpc.service.errors import SessionReplayed, UnknownKey

__all__ = ["EcdsaVault", "EcdsaStore", "EcdsaKeyRecord", "SHARE_KEK_LABEL"]

SHARE_KEK_LABEL: Final = "ecdsa-share-kek"
_SHARE_AAD: Final = b"coffer/ecdsa-cosigner/share/v1\x00"
_HOSTKEY_AAD: Final = b"coffer/ecdsa-cosigner/hostkey/v1\x00"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS host_key (id INTEGER PRIMARY KEY CHECK (id = 1), sealed BLOB NOT NULL,
  public_key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS shares (key_id TEXT NOT NULL, version INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'retired')), identifier INTEGER NOT NULL,
  threshold INTEGER NOT NULL, group_public_key BLOB NOT NULL, public_shares TEXT NOT NULL,
  members TEXT NOT NULL, sealed BLOB, at TEXT NOT NULL, PRIMARY KEY (key_id, version));
CREATE TABLE IF NOT EXISTS sessions (session_id BLOB PRIMARY KEY, key_id TEXT NOT NULL,
  round INTEGER NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cleared (request_digest BLOB PRIMARY KEY, tx_digest BLOB NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revoked (key_id TEXT NOT NULL, identifier INTEGER NOT NULL, at TEXT NOT NULL,
  PRIMARY KEY (key_id, identifier));
"""


class EcdsaVault:
    """Seals and opens secrets with the co-signer's HSM AES key (made on first use)."""

    def __init__(self, hsm: Hsm, cosigner_id: int, *, label: str = SHARE_KEK_LABEL) -> None:
        self._hsm = hsm
        self._cosigner_id = cosigner_id
        self._label = label
        if not hsm.has_key(label):
            hsm.generate_key(label, KeyKind.AES256)

    def __repr__(self) -> str:
        return f"EcdsaVault(cosigner={self._cosigner_id})"

    def _aad(self, key_id: str, version: int) -> bytes:
        key = key_id.encode()
        return (_SHARE_AAD + self._cosigner_id.to_bytes(2, "big") + len(key).to_bytes(2, "big") + key
                + version.to_bytes(4, "big"))

    def seal_share(self, key_id: str, version: int, secret: bytes | bytearray) -> bytes:
        return self._hsm.encrypt(self._label, bytes(secret), self._aad(key_id, version))

    def open_share(self, key_id: str, version: int, sealed: bytes) -> bytearray:
        return self._hsm.decrypt(self._label, sealed, self._aad(key_id, version))

    def seal_host_key(self, secret: bytes | bytearray) -> bytes:
        return self._hsm.encrypt(self._label, bytes(secret), _HOSTKEY_AAD + self._cosigner_id.to_bytes(2, "big"))

    def open_host_key(self, sealed: bytes) -> bytearray:
        return self._hsm.decrypt(self._label, sealed, _HOSTKEY_AAD + self._cosigner_id.to_bytes(2, "big"))


@dataclass(frozen=True, slots=True)
class EcdsaKeyRecord:
    """Public facts of one key version this co-signer holds a share of."""

    key_id: str
    version: int
    status: str
    identifier: int
    threshold: int
    group_public_key: bytes
    public_shares: dict[int, bytes]
    members: dict[int, bytes]  # identifier -> DKG host public key (the pairwise channel keys)


class EcdsaStore:
    """SQLite with synchronous=FULL; one connection guarded by a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        # Rounds 2 and 3 reuse round 1's secrets, whose single use the fsync'd round-1 mark already
        # guarantees; their marks go through a connection that survives a process crash (WAL,
        # synchronous=NORMAL) without waiting for the disk.
        self._progress = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._progress.execute("PRAGMA synchronous=NORMAL")
        self._progress.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._progress.close()
            self._db.close()

    # -- host key ----------------------------------------------------------------------------------
    def host_key(self) -> tuple[bytes, bytes] | None:
        with self._lock:
            row = self._db.execute("SELECT sealed, public_key FROM host_key WHERE id = 1").fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def put_host_key(self, sealed: bytes, public_key: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT INTO host_key (id, sealed, public_key) VALUES (1, ?, ?)", (sealed, public_key))

    # -- shares -----------------------------------------------------------------------------------
    def put_share(self, record: EcdsaKeyRecord, sealed: bytes, at: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO shares VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.key_id, record.version, record.status, record.identifier, record.threshold,
                 record.group_public_key, json.dumps({str(k): v.hex() for k, v in record.public_shares.items()}),
                 json.dumps({str(k): v.hex() for k, v in record.members.items()}), sealed, at))

    def keys(self) -> list[EcdsaKeyRecord]:
        with self._lock:
            rows = self._db.execute("SELECT key_id, version, status, identifier, threshold, group_public_key, "
                                    "public_shares, members FROM shares ORDER BY key_id, version").fetchall()
        return [_record(row) for row in rows]

    def key(self, key_id: str, version: int | None = None, *, status: str = "active") -> EcdsaKeyRecord:
        """The key version in `status` (the newest one when `version` is None)."""
        query = ("SELECT key_id, version, status, identifier, threshold, group_public_key, public_shares, members "
                 "FROM shares WHERE key_id = ? AND status = ?")
        args: tuple[object, ...] = (key_id, status)
        if version is not None:
            query += " AND version = ?"
            args += (version,)
        with self._lock:
            row = self._db.execute(query + " ORDER BY version DESC LIMIT 1", args).fetchone()
        if row is None:
            raise UnknownKey(f"no {status} ECDSA key {key_id!r}" + (f" version {version}" if version else ""))
        return _record(row)

    def sealed_share(self, key_id: str, version: int) -> bytes:
        with self._lock:
            row = self._db.execute("SELECT sealed FROM shares WHERE key_id = ? AND version = ?",
                                   (key_id, version)).fetchone()
        if row is None or row[0] is None:
            raise UnknownKey(f"no share of {key_id!r} version {version}")
        return bytes(row[0])

    def activate(self, key_id: str, version: int, revoked: list[int], at: str) -> None:
        """The new version becomes active, older ones are retired and their sealed shares deleted."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("UPDATE shares SET status = 'retired', sealed = NULL WHERE key_id = ? AND version < ?",
                                 (key_id, version))
                self._db.execute("UPDATE shares SET status = 'active' WHERE key_id = ? AND version = ?",
                                 (key_id, version))
                for identifier in revoked:
                    self._db.execute("INSERT OR IGNORE INTO revoked VALUES (?, ?, ?)", (key_id, identifier, at))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def revoked(self, key_id: str) -> set[int]:
        with self._lock:
            rows = self._db.execute("SELECT identifier FROM revoked WHERE key_id = ?", (key_id,)).fetchall()
        return {int(row[0]) for row in rows}

    # -- sessions ---------------------------------------------------------------------------------
    def open_session(self, session_id: bytes, key_id: str, at: str, *, cosigner: int, round_number: int = 0,
                     cleared: tuple[bytes, bytes] | None = None) -> None:
        """Durable replay cache: a session id is accepted once, ever (optionally with its first round
        used, and with the request it clears, in the same fsync'd transaction)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)", (session_id, key_id, round_number, at))
                if cleared is not None:
                    self._db.execute("INSERT OR IGNORE INTO cleared VALUES (?, ?, ?)", (*cleared, at))
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                raise SessionReplayed("session id seen before", cosigner=cosigner) from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def mark_used(self, session_id: bytes, round_number: int, *, cosigner: int) -> None:
        """Records that round `round_number` (>= 2) ran (before its output leaves); see `__init__`."""
        with self._lock:
            cursor = self._progress.execute("UPDATE sessions SET round = ? WHERE session_id = ? AND round < ?",
                                      (round_number, session_id, round_number))
        if cursor.rowcount != 1:
            raise SessionReplayed(f"round {round_number} of this session was already run", cosigner=cosigner)

    def session_round(self, session_id: bytes) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT round FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
        return None if row is None else int(row[0])

    # -- requests already cleared -------------------------------------------------------------------
    def cleared(self, request_digest: bytes) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT tx_digest FROM cleared WHERE request_digest = ?",
                                   (request_digest,)).fetchone()
        return None if row is None else bytes(row[0])

    def record_cleared(self, request_digest: bytes, tx_digest: bytes, at: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO cleared VALUES (?, ?, ?)", (request_digest, tx_digest, at))


def _record(row: tuple[object, ...]) -> EcdsaKeyRecord:
    shares = json.loads(str(row[6]))
    members = json.loads(str(row[7]))
    return EcdsaKeyRecord(str(row[0]), int(str(row[1])), str(row[2]), int(str(row[3])), int(str(row[4])),
                          bytes(row[5]),  # type: ignore[call-overload]
                          {int(k): bytes.fromhex(v) for k, v in shares.items()},
                          {int(k): bytes.fromhex(v) for k, v in members.items()})
