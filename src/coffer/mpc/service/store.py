"""A co-signer's own state: sealed shares and host keys, the session replay cache, revocations.

Secrets (Shamir shares, DKG host secret keys) are stored only as AES-256-GCM ciphertext made by
the co-signer's own HSM key; the associated data binds co-signer id, key id and version, so a
sealed share cannot be swapped between keys, versions or co-signers. Plaintext lives in
`bytearray`s that the caller wipes. The SQLite file runs with `synchronous=FULL`: a commit is on
disk before the call returns, which is what makes "nonce used" durable before a share leaves.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from coffer.hsm import Hsm, KeyKind
from coffer.mpc.service.errors import SessionReplayed, UnknownKey

__all__ = ["ShareVault", "CosignerStore", "KeyRecord", "SHARE_KEK_LABEL"]

SHARE_KEK_LABEL: Final = "cosigner-share-kek"
GROUP_COMMIT_MAX: Final = 256
_SHARE_AAD: Final = b"coffer/cosigner/share/v1\x00"
_HOSTKEY_AAD: Final = b"coffer/cosigner/hostkey/v1\x00"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS host_keys (suite TEXT PRIMARY KEY, sealed BLOB NOT NULL, public_key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS shares (key_id TEXT NOT NULL, version INTEGER NOT NULL, suite TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'retired')), identifier INTEGER NOT NULL,
  public_package BLOB NOT NULL, sealed BLOB, session BLOB NOT NULL, at TEXT NOT NULL,
  PRIMARY KEY (key_id, version));
CREATE TABLE IF NOT EXISTS sessions (session_id BLOB PRIMARY KEY, key_id TEXT NOT NULL, version INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('committed', 'used')), at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cleared (request_digest BLOB PRIMARY KEY, txid TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revoked (key_id TEXT NOT NULL, identifier INTEGER NOT NULL, at TEXT NOT NULL,
  PRIMARY KEY (key_id, identifier));
CREATE TABLE IF NOT EXISTS refusals (id INTEGER PRIMARY KEY, rule TEXT NOT NULL, detail TEXT NOT NULL, at TEXT NOT NULL);
"""


class ShareVault:
    """Seals and opens secrets with the co-signer's HSM AES key (created on first use)."""

    def __init__(self, hsm: Hsm, cosigner_id: int, *, label: str = SHARE_KEK_LABEL) -> None:
        self._hsm = hsm
        self._cosigner_id = cosigner_id
        self._label = label
        if not hsm.has_key(label):
            hsm.generate_key(label, KeyKind.AES256)

    def __repr__(self) -> str:
        return f"ShareVault(cosigner={self._cosigner_id})"

    def _share_aad(self, key_id: str, version: int, identifier: int) -> bytes:
        key = key_id.encode()
        return (_SHARE_AAD + self._cosigner_id.to_bytes(2, "big") + len(key).to_bytes(2, "big") + key
                + version.to_bytes(4, "big") + identifier.to_bytes(2, "big"))

    def seal_share(self, key_id: str, version: int, identifier: int, secret: bytes | bytearray) -> bytes:
        return self._hsm.encrypt(self._label, bytes(secret), self._share_aad(key_id, version, identifier))

    def open_share(self, key_id: str, version: int, identifier: int, sealed: bytes) -> bytearray:
        return self._hsm.decrypt(self._label, sealed, self._share_aad(key_id, version, identifier))

    def seal_host_key(self, suite: str, secret: bytes | bytearray) -> bytes:
        return self._hsm.encrypt(self._label, bytes(secret), self._hostkey_aad(suite))

    def open_host_key(self, suite: str, sealed: bytes) -> bytearray:
        return self._hsm.decrypt(self._label, sealed, self._hostkey_aad(suite))

    def _hostkey_aad(self, suite: str) -> bytes:
        return _HOSTKEY_AAD + self._cosigner_id.to_bytes(2, "big") + suite.encode()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """Public facts of one key version held by this co-signer (the sealed share stays in the store)."""

    key_id: str
    version: int
    suite: str
    status: str
    identifier: int
    public_package: bytes
    session: bytes


@dataclass(slots=True, eq=False)
class _SessionWrite:
    """One replay-cache write: a new session id ("open") or the durable "nonces used" mark ("use")."""

    kind: str
    session_id: bytes
    key_id: str = ""
    version: int = 0
    at: str = ""
    outcome: bool | None = None


class _GroupCommit:
    """Batches concurrent replay-cache writes into one transaction.

    A batch holding any "use" mark commits with synchronous=FULL (one fsync for all of its
    writes) and every caller waits until that commit returned; a batch of new session ids only
    commits with synchronous=NORMAL (durable with the next full commit). Session ids that arrive
    while a commit is on its way to disk wait and go together in the next one, instead of taking
    the write lock one at a time between fsyncs.
    """

    def __init__(self, commit: Callable[[list[_SessionWrite]], list[bool]]) -> None:
        self._commit = commit
        self._condition = threading.Condition()
        self._pending: list[_SessionWrite] = []
        self._busy = False

    def submit(self, item: _SessionWrite) -> bool:
        with self._condition:
            self._pending.append(item)
            while item.outcome is None:
                if not self._busy:
                    batch, self._pending = self._pending[:GROUP_COMMIT_MAX], self._pending[GROUP_COMMIT_MAX:]
                    self._busy = True
                    self._condition.release()
                    outcome = [False] * len(batch)  # a failed commit refuses every write in it
                    try:
                        outcome = self._commit(batch)
                    finally:
                        self._condition.acquire()
                        self._busy = False
                        for done, result in zip(batch, outcome, strict=True):
                            done.outcome = result
                        self._condition.notify_all()
                else:
                    self._condition.wait()
            return item.outcome


class CosignerStore:
    """The co-signer's own SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._sessions = _GroupCommit(self._write_sessions)
        # Reads go through their own connection: in WAL mode they never wait for a writer's fsync.
        self._read_lock = threading.Lock()
        self._reader = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._reader.close()
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- host keys ------------------------------------------------------------------------------
    def host_key(self, suite: str) -> tuple[bytes, bytes] | None:
        with self._read_lock:
            row = self._reader.execute("SELECT sealed, public_key FROM host_keys WHERE suite = ?", (suite,)).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def put_host_key(self, suite: str, sealed: bytes, public_key: bytes) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO host_keys VALUES (?, ?, ?)", (suite, sealed, public_key))

    # -- shares ---------------------------------------------------------------------------------
    def put_share(self, record: KeyRecord, sealed: bytes, at: str) -> None:
        """Store a share; a new pending share replaces the pending one of an abandoned dealing session
        (never an active or retired share), so a failed refresh or re-share does not block the next."""
        with self._transaction() as db:
            if record.status == "pending":
                db.execute("DELETE FROM shares WHERE key_id = ? AND version = ? AND status = 'pending'",
                           (record.key_id, record.version))
            db.execute("INSERT INTO shares VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (record.key_id, record.version, record.suite, record.status, record.identifier,
                        record.public_package, sealed, record.session, at))

    def key(self, key_id: str, version: int | None = None, *, status: str | None = "active") -> KeyRecord:
        query = "SELECT key_id, version, suite, status, identifier, public_package, session FROM shares WHERE key_id = ?"
        args: list[object] = [key_id]
        if version is not None:
            query += " AND version = ?"
            args.append(version)
        if status is not None:
            query += " AND status = ?"
            args.append(status)
        with self._read_lock:
            row = self._reader.execute(query + " ORDER BY version DESC LIMIT 1", args).fetchone()
        if row is None:
            raise UnknownKey(f"no {status or ''} key {key_id!r} version {version}")
        return KeyRecord(row[0], int(row[1]), row[2], row[3], int(row[4]), bytes(row[5]), bytes(row[6]))

    def keys(self) -> list[KeyRecord]:
        with self._read_lock:
            rows = self._reader.execute("SELECT key_id, version, suite, status, identifier, public_package, session"
                                    " FROM shares ORDER BY key_id, version").fetchall()
        return [KeyRecord(r[0], int(r[1]), r[2], r[3], int(r[4]), bytes(r[5]), bytes(r[6])) for r in rows]

    def sealed_share(self, key_id: str, version: int) -> bytes:
        with self._read_lock:
            row = self._reader.execute("SELECT sealed FROM shares WHERE key_id = ? AND version = ?",
                                   (key_id, version)).fetchone()
        if row is None or row[0] is None:
            raise UnknownKey(f"no share of key {key_id!r} version {version}")
        return bytes(row[0])

    def activate(self, key_id: str, version: int, at: str) -> None:
        """Make `version` active and delete every older share of the key (ciphertext overwritten)."""
        with self._transaction() as db:
            updated = db.execute("UPDATE shares SET status = 'active' WHERE key_id = ? AND version = ?"
                                 " AND status = 'pending'", (key_id, version)).rowcount
            if updated != 1:
                raise UnknownKey(f"no pending version {version} of key {key_id!r}")
            db.execute("UPDATE shares SET status = 'retired', sealed = NULL WHERE key_id = ? AND version < ?",
                       (key_id, version))
        self._vacuum()

    def retire(self, key_id: str, at: str) -> None:
        """Delete every share of the key (this co-signer was revoked from it)."""
        with self._transaction() as db:
            db.execute("UPDATE shares SET status = 'retired', sealed = NULL WHERE key_id = ?", (key_id,))
        self._vacuum()

    def _vacuum(self) -> None:
        # Deleted ciphertext must not linger in free pages or the WAL.
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.execute("VACUUM")

    # -- sessions -------------------------------------------------------------------------------
    def open_session(self, session_id: bytes, key_id: str, version: int, at: str) -> None:
        """Record a new session id in the replay cache; a second time raises SessionReplayed.

        Written without its own fsync: it becomes durable with the next durable commit (at the
        latest `use_session` of any session, which syncs the whole write-ahead log). A session id
        lost in a crash before that had no nonce used and none left (nonces live in memory only).
        Concurrent callers share one transaction (group commit).
        """
        if not self._sessions.submit(_SessionWrite("open", session_id, key_id, version, at)):
            raise SessionReplayed("session id seen before")

    def use_session(self, session_id: bytes) -> None:
        """Durably mark the session's nonces used; raises SessionReplayed unless it was fresh.

        Concurrent callers share one fsync (group commit): each waits until the transaction that
        holds its update is on disk.
        """
        if not self._sessions.submit(_SessionWrite("use", session_id)):
            raise SessionReplayed("session unknown or its nonces already used")

    def _write_sessions(self, writes: list[_SessionWrite]) -> list[bool]:
        """One transaction for a batch, in arrival order; synchronous=FULL if it marks any nonce used."""
        durable = any(write.kind == "use" for write in writes)
        with self._lock:
            if not durable:
                self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    outcome = [self._write_session(write) for write in writes]
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            finally:
                if not durable:
                    self._db.execute("PRAGMA synchronous=FULL")
        return outcome

    def _write_session(self, write: _SessionWrite) -> bool:
        if write.kind == "open":
            # OR IGNORE: a session id already present (the primary key) is a replay, refused below.
            return self._db.execute("INSERT OR IGNORE INTO sessions VALUES (?, ?, ?, 'committed', ?)",
                                    (write.session_id, write.key_id, write.version, write.at)).rowcount == 1
        return self._db.execute("UPDATE sessions SET state = 'used' WHERE session_id = ? AND state = 'committed'",
                                (write.session_id,)).rowcount == 1

    # -- cleared requests, revocations, refusals --------------------------------------------------
    def cleared_txid(self, request_digest: bytes) -> str | None:
        with self._read_lock:
            row = self._reader.execute("SELECT txid FROM cleared WHERE request_digest = ?", (request_digest,)).fetchone()
        return None if row is None else str(row[0])

    def record_cleared(self, request_digests: list[bytes], txid: str, at: str) -> None:
        with self._transaction() as db:
            for digest in request_digests:
                db.execute("INSERT OR IGNORE INTO cleared VALUES (?, ?, ?)", (digest, txid, at))

    def revoke(self, key_id: str, identifiers: list[int], at: str) -> None:
        with self._transaction() as db:
            for identifier in identifiers:
                db.execute("INSERT OR IGNORE INTO revoked VALUES (?, ?, ?)", (key_id, identifier, at))

    def revoked(self, key_id: str) -> set[int]:
        with self._read_lock:
            rows = self._reader.execute("SELECT identifier FROM revoked WHERE key_id = ?", (key_id,)).fetchall()
        return {int(row[0]) for row in rows}

    def record_refusal(self, rule: str, detail: str, at: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO refusals (rule, detail, at) VALUES (?, ?, ?)", (rule, detail[:500], at))

    def refusals(self) -> list[tuple[str, str]]:
        with self._read_lock:
            return [(r[0], r[1]) for r in self._reader.execute("SELECT rule, detail FROM refusals ORDER BY id")]
