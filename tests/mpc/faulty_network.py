"""Test-only fault injection between the coordinator and the co-signers (never production).

`FaultyClient` wraps a real `CosignerClient` (mutual TLS to a real co-signer process) and, for the
requests matching a rule, drops the request or its reply, sends it twice at once, delays it,
reorders two concurrent requests or swaps their replies, or kill -9's the co-signer just before or
just after the request. `NonceLog` watches every round-one commitment and every round-two share
that comes back, so a test can assert that no nonce was ever used twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coffer.mpc.errors import MpcError
from coffer.mpc.service import CosignerClient, CosignerUnavailable

DROP_REQUEST = "drop_request"
DROP_REPLY = "drop_reply"
DUPLICATE = "duplicate"
DELAY = "delay"
REORDER = "reorder"  # the first of two concurrent requests is held back until the second was answered
SWAP_REPLIES = "swap_replies"  # two concurrent requests get each other's reply
CRASH_BEFORE = "crash_before"
CRASH_AFTER = "crash_after"


class NonceLog:
    """Every commitment a co-signer handed out, and every one a signature share was made with."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.committed: dict[tuple[int, str], str] = {}  # (co-signer, commitment) -> session id
        self.sessions: dict[tuple[int, str], tuple[str, ...]] = {}  # (co-signer, session id) -> commitments
        self.signed: list[tuple[int, tuple[str, ...]]] = []
        self.problems: list[str] = []

    def commit_reply(self, cosigner: int, reply: dict[str, Any]) -> None:
        items = tuple(str(item) for item in reply.get("commitments") or ())
        session = str(reply.get("session_id"))
        with self._lock:
            for item in items:
                if (cosigner, item) in self.committed:
                    self.problems.append(f"co-signer {cosigner} committed to the same nonce twice")
                self.committed[(cosigner, item)] = session
            self.sessions[(cosigner, session)] = items

    def share_reply(self, cosigner: int, body: dict[str, Any]) -> None:
        with self._lock:
            items = self.sessions.get((cosigner, str(body.get("session_id"))))
            if items is None:
                self.problems.append(f"co-signer {cosigner} signed in a session it never committed to")
                return
            if any(used == (cosigner, items) for used in self.signed):
                self.problems.append(f"co-signer {cosigner} signed twice with one nonce")
            self.signed.append((cosigner, items))

    def check(self) -> None:
        with self._lock:
            assert not self.problems, self.problems
            assert len(self.signed) == len(set(self.signed))


@dataclass
class Fault:
    path: str
    action: str
    times: int = 1
    delay_s: float = 0.0
    hook: Callable[[], None] | None = None  # the crash: kill -9 the co-signer
    seen: list[dict[str, Any]] = field(default_factory=list)
    duplicate_errors: list[BaseException] = field(default_factory=list)
    duplicate_replies: list[dict[str, Any]] = field(default_factory=list)
    fired: int = 0
    _gate: threading.Condition = field(default_factory=threading.Condition)
    _waiting: list[dict[str, Any]] = field(default_factory=list)


class FaultyClient(CosignerClient):
    """A co-signer connection through a faulty network; rules fire in order, each `times` times."""

    def __init__(self, inner: CosignerClient, nonces: NonceLog) -> None:
        self.__dict__.update(inner.__dict__)
        self.faults: list[Fault] = []
        self.nonces = nonces
        self._rules_lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._rules_lock:
            self.faults.append(fault)
        return fault

    def _take(self, path: str) -> Fault | None:
        with self._rules_lock:
            for fault in self.faults:
                if fault.path == path and fault.fired < fault.times:
                    fault.fired += 1
                    return fault
        return None

    def _real(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = super().call(path, body)
        if path == "/v1/sign/commit":
            self.nonces.commit_reply(self.cosigner_id, reply)
        elif path == "/v1/sign/share":
            self.nonces.share_reply(self.cosigner_id, body)
        return reply

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        fault = self._take(path)
        if fault is None:
            return self._real(path, body)
        fault.seen.append(body)
        lost = CosignerUnavailable(self.cosigner_id, f"{fault.action} by the test network")
        if fault.action == DROP_REQUEST:
            raise lost
        if fault.action == DROP_REPLY:
            self._real(path, body)
            raise lost
        if fault.action == DELAY:
            time.sleep(fault.delay_s)
            return self._real(path, body)
        if fault.action == DUPLICATE:
            return self._duplicate(fault, path, body)
        if fault.action == CRASH_BEFORE:
            assert fault.hook is not None
            fault.hook()
            raise lost
        if fault.action == CRASH_AFTER:
            assert fault.hook is not None
            self._real(path, body)
            fault.hook()
            raise lost
        if fault.action == REORDER:
            return self._reorder(fault, path, body)
        if fault.action == SWAP_REPLIES:
            return self._swap(fault, path, body)
        raise AssertionError(f"unknown fault {fault.action}")

    def _duplicate(self, fault: Fault, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Both copies race to the co-signer; the caller gets whichever copy was answered."""
        results: list[dict[str, Any] | BaseException] = [{}, {}]

        def send(slot: int) -> None:
            try:
                results[slot] = self._real(path, body)
            except BaseException as error:
                results[slot] = error

        threads = [threading.Thread(target=send, args=(slot,)) for slot in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        replies = [r for r in results if isinstance(r, dict)]
        errors = [r for r in results if isinstance(r, BaseException)]
        fault.duplicate_errors += errors
        fault.duplicate_replies += replies
        if replies:
            return replies[0]
        error = errors[0]
        assert isinstance(error, BaseException)
        raise error

    def _reorder(self, fault: Fault, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with fault._gate:
            first = not fault._waiting
            fault._waiting.append(body)
            if first:  # hold it back until the later request went through
                fault._gate.wait_for(lambda: len(fault._waiting) > 2, timeout=20)
                return self._real(path, body)
        try:
            return self._real(path, body)
        finally:
            with fault._gate:
                fault._waiting.append({})
                fault._gate.notify_all()

    def _swap(self, fault: Fault, path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = self._real(path, body)
        with fault._gate:
            fault._waiting.append(reply)
            fault._gate.notify_all()
            fault._gate.wait_for(lambda: len(fault._waiting) >= 2, timeout=20)
            others = [r for r in fault._waiting if r is not reply]
        return others[0] if others else reply


def refused_copies(fault: Fault) -> list[MpcError]:
    """The copies the co-signer refused with a typed error (a replay, or a share already activated)."""
    return [e for e in fault.duplicate_errors if isinstance(e, MpcError)]
