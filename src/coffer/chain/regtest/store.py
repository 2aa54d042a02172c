"""The node's own durable record: every block the kernel accepted, the invalidated set, settings.

SQLite in the data directory. The kernel keeps its own block files and chainstate; this store
exists so that invalidateblock/reconsiderblock can rebuild a fresh kernel chainstate from the
blocks (libbitcoinkernel has no invalidate call) and so that reads need no kernel round trip.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BlockStore", "StoredHeader"]


@dataclass(frozen=True, slots=True)
class StoredHeader:
    hash: bytes
    prev: bytes
    height: int
    header: bytes
    tx_count: int
    size: int


class BlockStore:
    """Raw blocks by hash, in arrival order; the caller serialises access with its own lock."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS blocks (seq INTEGER PRIMARY KEY AUTOINCREMENT, hash BLOB UNIQUE NOT NULL,
              prev BLOB NOT NULL, height INTEGER NOT NULL, tx_count INTEGER NOT NULL, raw BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS invalid (hash BLOB PRIMARY KEY);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """
        )

    def close(self) -> None:
        self._db.close()

    def add(self, block_hash: bytes, prev: bytes, height: int, tx_count: int, raw: bytes) -> None:
        self._db.execute("INSERT OR IGNORE INTO blocks (hash, prev, height, tx_count, raw) VALUES (?,?,?,?,?)",
                         (block_hash, prev, height, tx_count, raw))

    def remove(self, block_hash: bytes) -> None:
        self._db.execute("DELETE FROM blocks WHERE hash = ?", (block_hash,))

    def raw(self, block_hash: bytes) -> bytes | None:
        row = self._db.execute("SELECT raw FROM blocks WHERE hash = ?", (block_hash,)).fetchone()
        return None if row is None else bytes(row[0])

    def headers(self) -> list[StoredHeader]:
        rows = self._db.execute(
            "SELECT hash, prev, height, substr(raw, 1, 80), tx_count, length(raw) FROM blocks ORDER BY seq")
        return [StoredHeader(bytes(h), bytes(p), ht, bytes(hd), n, sz) for h, p, ht, hd, n, sz in rows]

    def invalid(self) -> set[bytes]:
        return {bytes(row[0]) for row in self._db.execute("SELECT hash FROM invalid")}

    def set_invalid(self, block_hash: bytes, invalid: bool) -> None:
        if invalid:
            self._db.execute("INSERT OR IGNORE INTO invalid (hash) VALUES (?)", (block_hash,))
        else:
            self._db.execute("DELETE FROM invalid WHERE hash = ?", (block_hash,))

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
