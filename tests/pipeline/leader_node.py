"""A coordinator stand-in for the leadership test: every 50 ms it tries to lead "recon" and, when
it leads, appends a fenced heartbeat row with its epoch.

Run: python leader_node.py DATABASE_URL NODE_NAME
"""

from __future__ import annotations

import sys
import time

import sqlalchemy as sa

from coffer.db import make_engine
from coffer.pipeline import Leadership, NotLeader

BEATS = sa.Table("test_beats", sa.MetaData(), sa.Column("node", sa.String(50)), sa.Column("epoch", sa.BigInteger()),
                 sa.Column("at_ms", sa.BigInteger()))


def main() -> None:
    url, node = sys.argv[1], sys.argv[2]
    engine = make_engine(url)
    leadership = Leadership(engine, "recon", node, lease_ms=1_000)
    while True:
        now_ms = int(time.time() * 1000)
        epoch = leadership.acquire(now_ms=now_ms)
        if epoch is not None:
            try:
                with engine.begin() as conn:
                    leadership.fenced(conn, epoch)
                    conn.execute(BEATS.insert().values(node=node, epoch=epoch, at_ms=now_ms))
            except NotLeader:
                pass
        time.sleep(0.05)


if __name__ == "__main__":
    main()
