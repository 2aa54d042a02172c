"""`SignerProbe`: asks each signer's health endpoint now and then, so the console can show when
it was last seen. Runs in its own thread, one signer at a time, each call bounded by the
client's own timeout; a signer that does not answer is shown as not seen since."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from coffer.log import get_logger

__all__ = ["SignerProbe", "HealthClient", "PROBE_INTERVAL_S"]

PROBE_INTERVAL_S = 30.0
_log = get_logger("coffer.web.console.probe")


class HealthClient(Protocol):
    def health(self) -> dict[str, Any]: ...


def _now() -> datetime:
    return datetime.now(UTC)


class SignerProbe:
    """Last time each signer answered its health check (in memory; a restart starts unknown)."""

    def __init__(self, clients: Mapping[str, HealthClient], *, clock: Callable[[], datetime] = _now) -> None:
        self._clients = dict(clients)
        self._clock = clock
        self._seen: dict[str, str] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def last_seen(self, signer_id: str) -> str | None:
        with self._lock:
            return self._seen.get(signer_id)

    def last_error(self, signer_id: str) -> str | None:
        with self._lock:
            return self._errors.get(signer_id)

    def probe_once(self) -> None:
        for signer_id, client in self._clients.items():
            try:
                client.health()
            except Exception as exc:  # an unreachable signer is a state to show, not a crash
                with self._lock:
                    self._errors[signer_id] = type(exc).__name__
                continue
            with self._lock:
                self._seen[signer_id] = self._clock().isoformat(timespec="seconds")
                self._errors.pop(signer_id, None)

    def start(self, interval_s: float = PROBE_INTERVAL_S) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                self.probe_once()
                self._stop.wait(interval_s)

        self._stop.clear()
        self._thread = threading.Thread(target=loop, name="signer-probe", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
