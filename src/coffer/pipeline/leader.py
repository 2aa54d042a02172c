"""Leadership of periodic work among several coordinators on one database, with a fencing epoch.

On PostgreSQL the leader holds a session advisory lock on a connection of its own: when its
process dies the server drops the connection and the lock with it, so a survivor takes over at
its next attempt. Each acquisition bumps the lease row's epoch; a periodic job's writes go through
`fenced`, which refuses them once a newer epoch exists, so a leader that stalled (a long GC pause,
a frozen VM) and lost the lock can never write over its successor. On SQLite (one coordinator)
the lease row with an expiry plays the lock's part.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from coffer.db import is_postgres
from coffer.pipeline.errors import JobInvalid, NotLeader
from coffer.pipeline.tables import leases

__all__ = ["Leadership", "LEASE_MS_DEFAULT"]

LEASE_MS_DEFAULT = 10_000


def _advisory_key(name: str) -> int:
    digest = hashlib.sha256(b"coffer.pipeline.leader\x00" + name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Leadership:
    """`acquire()` returns the epoch when this node leads `name` (else None); `fenced(conn, epoch)` guards writes."""

    def __init__(self, engine: Engine, name: str, node: str, *, lease_ms: int = LEASE_MS_DEFAULT) -> None:
        if not name or len(name) > 64 or not node or len(node) > 200 or lease_ms <= 0:
            raise JobInvalid("leadership needs a name (≤ 64), a node (≤ 200) and a positive lease")
        self._engine = engine
        self.name = name
        self.node = node
        self._lease_ms = lease_ms
        self._postgres = is_postgres(engine)
        self._lock_conn: Connection | None = None
        self.epoch: int | None = None

    def acquire(self, *, now_ms: int) -> int | None:
        """Lead, or keep leading; the epoch changes only when leadership changes hands."""
        if self._postgres and not self._hold_advisory_lock():
            self.epoch = None
            return None
        with self._engine.begin() as conn:
            if self._postgres:
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                conn.execute(pg_insert(leases).values(name=self.name, holder=None, epoch=0, lease_until_ms=0)
                             .on_conflict_do_nothing(index_elements=["name"]))
            else:
                conn.execute(leases.insert().prefix_with("OR IGNORE").values(
                    name=self.name, holder=None, epoch=0, lease_until_ms=0))
            row = conn.execute(sa.select(leases).where(leases.c.name == self.name).with_for_update()).one()
            ours = row.holder == self.node and self.epoch == int(row.epoch)
            if not ours and not self._postgres and int(row.lease_until_ms) >= now_ms:
                self.epoch = None
                return None  # SQLite: someone else's lease is still running
            epoch = int(row.epoch) if ours else int(row.epoch) + 1
            conn.execute(leases.update().where(leases.c.name == self.name).values(
                holder=self.node, epoch=epoch, lease_until_ms=now_ms + self._lease_ms))
        self.epoch = epoch
        return epoch

    def _hold_advisory_lock(self) -> bool:
        if self._lock_conn is not None:
            try:
                self._lock_conn.execute(sa.text("SELECT 1"))
                return True
            except sa.exc.DBAPIError:
                self._drop_lock_conn()
        conn = self._engine.connect()
        try:
            got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"),
                                    {"key": _advisory_key(self.name)}).scalar())
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._lock_conn = conn
        return True

    def _drop_lock_conn(self) -> None:
        if self._lock_conn is not None:
            try:
                self._lock_conn.invalidate()
            finally:
                self._lock_conn = None

    def fenced(self, conn: Connection, epoch: int) -> None:
        """In the caller's transaction: lock the lease row and refuse if `epoch` is no longer current."""
        current = conn.execute(sa.select(leases.c.epoch, leases.c.holder).where(leases.c.name == self.name)
                               .with_for_update()).one_or_none()
        if current is None or int(current.epoch) != epoch or current.holder != self.node:
            raise NotLeader(self.name, epoch)

    def release(self) -> None:
        """Give up leadership (a clean stop); a killed process releases by losing its connection."""
        if self._lock_conn is not None:
            try:
                self._lock_conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _advisory_key(self.name)})
                self._lock_conn.commit()
            finally:
                self._lock_conn.close()
                self._lock_conn = None
        else:
            with self._engine.begin() as conn:
                conn.execute(leases.update().where(leases.c.name == self.name, leases.c.holder == self.node)
                             .values(lease_until_ms=0))
        self.epoch = None
