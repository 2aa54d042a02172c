"""A key holder's own governance record: the pins of its ceremony, every action it applied (so
none applies twice), the host keys and threshold each of its keys was created or re-shared with
by a verified action, and the halts it saw that no officer quorum has resumed yet.

One SQLite file in the key holder's own directory (`governance.db`); the coordinator never writes
it. Each acceptance is one transaction: verify, check, record, change the pins, or nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from coffer.keyholder.governance import (
    ActionKind,
    GovernanceAction,
    GovernancePins,
    GovernanceRefused,
    SignedAction,
    apply,
    require,
    verify,
)

__all__ = ["GovernanceStore", "GOVERNANCE_FILE", "PinnedKey", "HALTS_UNRESOLVED_MAX"]

GOVERNANCE_FILE: Final = "governance.db"
HALTS_UNRESOLVED_MAX: Final = 64
BUSY_TIMEOUT_S: Final = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pins (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS applied (digest TEXT PRIMARY KEY, kind TEXT NOT NULL, key_id TEXT);
CREATE TABLE IF NOT EXISTS pinned_keys (key_id TEXT PRIMARY KEY, threshold INTEGER NOT NULL, holders TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS unresolved_halts (halt_id TEXT PRIMARY KEY);
"""

PinnedKey = tuple[int, dict[int, bytes]]  # (threshold, identifier -> host public key)


class GovernanceStore:
    """The governance record of one key holder (thread-safe; several processes may share it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
        self._db.executescript(_SCHEMA)

    @classmethod
    def open(cls, directory: Path) -> GovernanceStore:
        return cls(directory / GOVERNANCE_FILE)

    @classmethod
    def provision(cls, directory: Path, pins: GovernancePins) -> None:
        """Pin the ceremony's governance set; a second, different provisioning is refused."""
        directory.mkdir(parents=True, exist_ok=True)
        store = cls.open(directory)
        try:
            with store._lock:
                row = store._db.execute("SELECT body FROM pins WHERE id = 1").fetchone()
                body = json.dumps(pins.to_json(), sort_keys=True)
                if row is not None and row[0] != body:
                    raise GovernanceRefused("governance is pinned already; change it by an action",
                                            rule="governance.pinned")
                store._db.execute("INSERT OR IGNORE INTO pins (id, body) VALUES (1, ?)", (body,))
        finally:
            store.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def pins(self) -> GovernancePins:
        with self._lock:
            row = self._db.execute("SELECT body FROM pins WHERE id = 1").fetchone()
        if row is None:
            raise GovernanceRefused("no governance pinned: run the set-up ceremony", rule="governance.unpinned")
        return GovernancePins.from_json(json.loads(row[0]))

    def accept(self, signed: SignedAction, kind: ActionKind, *, keyholder: str, key_id: str | None, now_s: int,
               check: Callable[[GovernanceAction], None] = lambda _action: None) -> GovernanceAction:
        """Verify `signed` for `kind` here, run `check` on it, record it and apply it; or refuse."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT body FROM pins WHERE id = 1").fetchone()
                if row is None:
                    raise GovernanceRefused("no governance pinned", rule="governance.unpinned")
                pins = GovernancePins.from_json(json.loads(row[0]))
                digest = signed.action.digest().hex()
                used = {digest} if self._db.execute("SELECT 1 FROM applied WHERE digest = ?",
                                                    (digest,)).fetchone() else set()
                verify(signed, pins, now_s=now_s, used=used)
                require(signed.action, kind, keyholder=keyholder, key_id=key_id)
                check(signed.action)
                changed = apply(pins, signed.action)
                self._db.execute("INSERT INTO applied (digest, kind, key_id) VALUES (?, ?, ?)",
                                 (digest, kind.value, key_id))
                if changed != pins:
                    self._db.execute("UPDATE pins SET body = ? WHERE id = 1",
                                     (json.dumps(changed.to_json(), sort_keys=True),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return signed.action

    # -- keys' host keys ------------------------------------------------------------------------
    def pinned_key(self, key_id: str) -> PinnedKey | None:
        with self._lock:
            row = self._db.execute("SELECT threshold, holders FROM pinned_keys WHERE key_id = ?",
                                   (key_id,)).fetchone()
        if row is None:
            return None
        return int(row[0]), {int(i): bytes.fromhex(h) for i, h in json.loads(row[1]).items()}

    def pin_key(self, key_id: str, threshold: int, holders: Mapping[int, bytes]) -> None:
        body = json.dumps({str(i): h.hex() for i, h in sorted(holders.items())})
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO pinned_keys (key_id, threshold, holders) VALUES (?, ?, ?)",
                             (key_id, threshold, body))

    # -- halts no officer quorum has resumed yet -------------------------------------------------
    def unresolved_halts(self) -> frozenset[str]:
        with self._lock:
            return frozenset(r[0] for r in self._db.execute("SELECT halt_id FROM unresolved_halts"))

    def note_halt(self, halt_id: str) -> None:
        with self._lock:
            count = self._db.execute("SELECT count(*) FROM unresolved_halts").fetchone()[0]
            if count < HALTS_UNRESOLVED_MAX:  # past the bound, the halts seen stay in force anyway
                self._db.execute("INSERT OR IGNORE INTO unresolved_halts (halt_id) VALUES (?)", (halt_id,))

    def resolve_halt(self, halt_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM unresolved_halts WHERE halt_id = ?", (halt_id,))
