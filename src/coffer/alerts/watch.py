"""What the coordinator watches for alerts each round: the halt, the newest run of every check,
pipeline jobs stuck or dead, key holders not seen. Raising is idempotent (an open alert is counted,
not repeated) and a condition that clears is resolved."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Engine

from coffer.alerts.center import AlertCenter, deliver_webhooks
from coffer.log import get_logger
from coffer.pipeline.queue import JobQueue
from coffer.recon.scheduler import recent_runs

__all__ = ["AlertWatcher", "STUCK_AFTER_S", "UNSEEN_AFTER_S", "WATCH_INTERVAL_S"]

STUCK_AFTER_S = 600
UNSEEN_AFTER_S = 120
WATCH_INTERVAL_S = 5.0
_log = get_logger("coffer.alerts.watch")


class AlertWatcher:
    """`check(now)` raises and resolves; `start()`/`stop()` run it on a thread."""

    def __init__(self, engine: Engine, center: AlertCenter, *, halt: Any,
                 key_holders_seen: Callable[[], Mapping[str, str | None]] = dict,
                 webhook_secret: bytes | None = None, clock: Callable[[], dt.datetime] | None = None,
                 node: str = "coordinator") -> None:
        self._engine = engine
        self._center = center
        self._halt = halt
        self._seen = key_holders_seen
        self._webhook_secret = webhook_secret
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._node = node
        self._queue = JobQueue(engine)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self, now: dt.datetime) -> list[tuple[str, str]]:
        """Every condition that holds now, as (kind, subject); alerts raised for them, the rest resolved."""
        holding = self._halted() + self._failed_checks() + self._stuck_jobs(now) + self._unseen(now)
        for kind, subject, detail in holding:
            self._center.raise_alert(kind, subject, detail, now=now)
        current = {(kind, subject) for kind, subject, _ in holding}
        for alert in self._center.open_alerts():
            if (alert.kind, alert.subject) not in current:
                self._center.resolve(alert.kind, alert.subject, now=now)
        if self._webhook_secret is not None:
            deliver_webhooks(self._engine, self._webhook_secret, worker=self._node, now=now)
        return sorted(current)

    def _halted(self) -> list[tuple[str, str, str]]:
        state = self._halt.state()
        if not state.halted:
            return []
        halt = self._halt.halt(state.halt_id) if state.halt_id else None
        cause = getattr(halt, "cause", "unknown")
        return [("halt", str(state.halt_id), f"the exchange is halted: {cause}")]

    def _failed_checks(self) -> list[tuple[str, str, str]]:
        newest: dict[str, Any] = {}
        for run in recent_runs(self._engine, limit=50):
            newest.setdefault(run.job, run)
        return [("check_failed", job, f"the newest {job} run ({run.run_id}) ended {run.status}")
                for job, run in sorted(newest.items()) if run.status in ("error", "mismatch")]

    def _stuck_jobs(self, now: dt.datetime) -> list[tuple[str, str, str]]:
        stuck = self._queue.stuck(now_ms=int(now.timestamp() * 1000), older_than_ms=STUCK_AFTER_S * 1000)
        return [("job_stuck", f"{kind}:{job_id}", f"pipeline job {job_id} ({kind}) is {state} and untouched "
                 f"for over {STUCK_AFTER_S} s") for job_id, kind, state in stuck]

    def _unseen(self, now: dt.datetime) -> list[tuple[str, str, str]]:
        found = []
        for holder, seen in sorted(self._seen().items()):
            last = dt.datetime.fromisoformat(seen) if seen else None
            if last is None or (now - last).total_seconds() > UNSEEN_AFTER_S:
                found.append(("keyholder_unseen", holder, f"key holder {holder} last seen {seen or 'never'}"))
        return found

    def start(self, interval_s: float = WATCH_INTERVAL_S) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.check(self._clock())
                except Exception as error:  # noqa: BLE001 - a failed round is logged; the next one tries again
                    _log.error("alerts.watch_failed", error=type(error).__name__, detail=str(error)[:300])
                self._stop.wait(interval_s)

        self._thread = threading.Thread(target=loop, name="alert-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
