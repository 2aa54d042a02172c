"""The coordinator's custody work on a timer, one coordinator at a time: approved withdrawals are
handed to their route as durable jobs, and the cold pipeline (deposits, batches, the draw,
signing, broadcast, confirmations) takes one step per tick.

Any number of coordinators may run this against one PostgreSQL: the leader (advisory lock and
fencing epoch, `coffer.pipeline.leader`) does the periodic work; dispatch jobs are rows claimed
with SKIP LOCKED. Every step is safe to repeat after a crash: dispatch finds an attestation made
before the crash and goes on, the cold pipeline resumes from its own rows.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coffer.errors import CofferError
from coffer.log import get_logger
from coffer.pipeline.leader import Leadership
from coffer.pipeline.queue import JobQueue
from coffer.policy.errors import PolicyRefused
from coffer.withdrawals import REQUEST_TTL_S, WithdrawalDesk

__all__ = ["CustodyPipeline", "TickResult", "DISPATCH_KIND", "DISPATCH_BATCH_MAX", "TICK_S_DEFAULT"]

DISPATCH_KIND = "withdrawal.dispatch"
DISPATCH_BATCH_MAX = 200
DISPATCH_LEASE_MS = 60_000
DISPATCH_RETRY_MS = 5_000
TICK_S_DEFAULT = 2.0
_log = get_logger("coffer.pipeline.custody")


@dataclass(frozen=True, slots=True)
class TickResult:
    leader: bool
    epoch: int | None = None
    dispatched: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    cold: dict[str, Any] = field(default_factory=dict)


def _ms(now: dt.datetime) -> int:
    return int(now.timestamp() * 1000)


class CustodyPipeline:
    """`tick()` does one round; `start()`/`stop()` run it on a thread (the app's background protocol)."""

    def __init__(self, coordinator: Any, desk: WithdrawalDesk, *, node: str,
                 clock: Callable[[], dt.datetime] | None = None, lease_ms: int = 10_000) -> None:
        self._c = coordinator
        self._desk = desk
        self._clock = clock or coordinator.now
        self.node = node
        self.queue = JobQueue(coordinator.engine)
        self.leadership = Leadership(coordinator.engine, "custody", node, lease_ms=lease_ms)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> TickResult:
        now = self._clock()
        epoch = self.leadership.acquire(now_ms=_ms(now))
        if epoch is None:
            return TickResult(leader=False)
        self._enqueue_dispatches(now)
        dispatched, refused, failed = self._run_dispatches(now)
        cold: dict[str, Any] = {}
        if self._has_cold_wallet():
            cold = self._c.cold.run_once(now=now)
        return TickResult(True, epoch, dispatched, refused, failed, cold)

    def _has_cold_wallet(self) -> bool:
        try:
            self._c.cold.wallet()
        except CofferError:
            return False
        return True

    def _enqueue_dispatches(self, now: dt.datetime) -> None:
        digests = self._c.policy.dispatchable(now=now, window_s=REQUEST_TTL_S, limit=DISPATCH_BATCH_MAX)
        if not digests:
            return
        with self._c.engine.begin() as conn:
            for digest in digests:
                self.queue.enqueue(conn, DISPATCH_KIND, f"dispatch:{digest}", {"request_digest": digest},
                                   now_ms=_ms(now))

    def _run_dispatches(self, now: dt.datetime) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        dispatched, refused, failed = [], [], []
        for job in self.queue.claim(self.node, [DISPATCH_KIND], now_ms=_ms(now), lease_ms=DISPATCH_LEASE_MS,
                                    limit=DISPATCH_BATCH_MAX):
            digest = str(job.payload["request_digest"])
            try:
                route = self._desk.dispatch(digest, now=now)
                outcome: dict[str, Any] = {"route": route.value}
                dispatched.append(digest)
            except PolicyRefused as refusal:
                # Final: closed, expired, or no longer allowed when attesting; the hold stays until
                # the request is cancelled or expires, and the state says refused.
                outcome = {"refused": refusal.rule}
                refused.append(digest)
            except CofferError as error:
                self.queue.fail(job, f"{type(error).__name__}: {error}", now_ms=_ms(now), retry_in_ms=DISPATCH_RETRY_MS)
                _log.warning("pipeline.dispatch_failed", request=digest, error=type(error).__name__)
                failed.append(digest)
                continue
            with self._c.engine.begin() as conn:
                self.queue.complete(conn, job, outcome, now_ms=_ms(now))
        return tuple(dispatched), tuple(refused), tuple(failed)

    def start(self, interval_s: float = TICK_S_DEFAULT) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception as error:  # noqa: BLE001 - one failed round must not stop the pipeline
                    _log.error("pipeline.tick_failed", error=type(error).__name__, detail=str(error)[:300])
                self._stop.wait(interval_s)

        self._thread = threading.Thread(target=loop, name="custody-pipeline", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        self.leadership.release()
