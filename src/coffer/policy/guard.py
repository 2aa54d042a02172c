"""The signer's guard: what every cold signer and MPC co-signer runs before it signs anything.

It trusts nothing the coordinator says. It pins the HSM attestation key, the operators' keys and
the policy hash; it verifies the attestation and every approval itself, re-evaluates the policy
with its OWN record of what it has already signed (velocity) and the halt state it knows, and
never passes the same request twice. It must never sign on a refusal: every refusal raises.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

from coffer.policy.approval import (
    ApprovalVerifier,
    VerifiedApproval,
    check_initiator,
    default_verifiers,
    verify_approvals,
)
from coffer.policy.attestation import AttestedFacts, SignedDecision, verify_attestation
from coffer.policy.engine import CompiledPolicy, DecisionContext, PastTransfer, Route, epoch_s
from coffer.policy.errors import (
    AlreadySigned,
    ApprovalsMissing,
    AttestationRefused,
    PolicyError,
    PolicyQuorumRefused,
    PolicyRefused,
)
from coffer.policy.request import RequestKind, WithdrawalRequest
from coffer.policy.roles import OperatorRegistry
from coffer.policy.versions import ADMIN_QUORUM_DEFAULT, AdminSignature, PolicyProposal, check_quorum

__all__ = ["SignerGuard", "Clearance", "SignedHistory", "MemorySignedHistory", "SqliteSignedHistory",
           "SignerFacts", "OwnWhitelistFact", "guarded_sign", "HISTORY_WINDOW_S"]

HISTORY_WINDOW_S = 8 * 24 * 3600  # the guard reads back this much history for velocity
BATCH_MAX = 10_000
CLOCK_SKEW_S_MAX = 300
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Clearance:
    """Proof, for this signer's own log, that the guard passed a request."""

    request_digest: bytes
    route: Route
    policy_hash: str
    approvers: tuple[str, ...]
    at_s: int


class OwnWhitelistFact(Protocol):
    @property
    def first_seen_s(self) -> int: ...

    @property
    def client_key_first_seen_s(self) -> int | None: ...


class SignerFacts(Protocol):
    """The key holder's own record of whitelist entries and freezes (coffer.keyholder.facts)."""

    def whitelist(self, account: str, asset: str, destination: str) -> OwnWhitelistFact | None: ...

    def frozen(self, account: str) -> bool: ...

    def freeze(self, account: str, *, now_s: int) -> None: ...


class SignedHistory(Protocol):
    """A signer's own record of what it signed. `record` must refuse a digest it already holds."""

    def transfers_since(self, since_s: int) -> list[PastTransfer]: ...

    def contains(self, request_digest: bytes) -> bool: ...

    def record(self, request_digest: bytes, transfer: PastTransfer) -> None: ...

    def record_many(self, items: Sequence[tuple[bytes, PastTransfer]]) -> None:
        """All or nothing."""
        ...


class MemorySignedHistory:
    """In-memory history, for tests and for co-signers that keep their state elsewhere."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[bytes, PastTransfer] = {}

    def transfers_since(self, since_s: int) -> list[PastTransfer]:
        with self._lock:
            return [t for t in self._items.values() if t.at_s > since_s]

    def contains(self, request_digest: bytes) -> bool:
        with self._lock:
            return request_digest in self._items

    def record(self, request_digest: bytes, transfer: PastTransfer) -> None:
        with self._lock:
            if request_digest in self._items:
                raise AlreadySigned("this signer already signed that request", rule="guard.already_signed")
            self._items[request_digest] = transfer

    def record_many(self, items: Sequence[tuple[bytes, PastTransfer]]) -> None:
        with self._lock:
            digests = [digest for digest, _ in items]
            if len(set(digests)) != len(digests) or any(digest in self._items for digest in digests):
                raise AlreadySigned("this signer already signed that request", rule="guard.already_signed")
            self._items.update(items)


class SqliteSignedHistory:
    """A signer's own small SQLite file (not the coordinator's database)."""

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS signed (request_digest BLOB PRIMARY KEY, at_s INTEGER NOT NULL,"
            " account TEXT NOT NULL, asset TEXT NOT NULL, amount_minor TEXT NOT NULL, route TEXT NOT NULL,"
            " kind TEXT NOT NULL)")
        self._conn.execute("CREATE INDEX IF NOT EXISTS signed_at ON signed (at_s)")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def transfers_since(self, since_s: int) -> list[PastTransfer]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT at_s, account, asset, amount_minor, route, kind FROM signed WHERE at_s > ?", (since_s,)
            ).fetchall()
        return [PastTransfer(int(at), account, asset, int(amount), Route(route), RequestKind(kind))
                for at, account, asset, amount, route, kind in rows]

    def contains(self, request_digest: bytes) -> bool:
        with self._lock:
            row = self._conn.execute("SELECT 1 FROM signed WHERE request_digest = ?", (request_digest,)).fetchone()
        return row is not None

    def record(self, request_digest: bytes, transfer: PastTransfer) -> None:
        self.record_many([(request_digest, transfer)])

    def record_many(self, items: Sequence[tuple[bytes, PastTransfer]]) -> None:
        rows = [(digest, transfer.at_s, transfer.account, transfer.asset, str(transfer.amount_minor),
                 transfer.route.value, transfer.kind.value) for digest, transfer in items]
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany("INSERT INTO signed VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._conn.execute("ROLLBACK")
                raise AlreadySigned("this signer already signed that request", rule="guard.already_signed") from None


class SignerGuard:
    """Pins keys and the policy; `check` passes a request at most once, or raises PolicyRefused."""

    def __init__(self, *, signer_id: str, route: Route, attestation_public_key: bytes,
                 operators: OperatorRegistry, policy: CompiledPolicy, history: SignedHistory,
                 facts: SignerFacts, halted: Callable[[], bool], verifiers: Mapping[str, ApprovalVerifier] | None = None,
                 on_event: Callable[[str, dict[str, object]], None] | None = None, policy_version: int = 1,
                 admin_quorum: int = ADMIN_QUORUM_DEFAULT) -> None:
        self.signer_id = signer_id
        self.policy_version = policy_version
        self._admin_quorum = admin_quorum
        self.route = route
        self._attestation_key = bytes(attestation_public_key)
        self._operators = operators
        self._policy = policy
        self._history = history
        self._facts = facts
        self._halted = halted
        self._verifiers = default_verifiers() if verifiers is None else verifiers
        self._on_event = on_event
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SignerGuard(signer={self.signer_id!r}, route={self.route.value}, policy={self._policy.hash[:16]})"

    @property
    def policy_hash(self) -> str:
        return self._policy.hash

    def adopt_policy(self, policy: CompiledPolicy, proposal: PolicyProposal, signatures: Sequence[AdminSignature]
                     ) -> tuple[str, ...]:
        """Switch to a newer policy set, checking the policy-admin quorum itself (never the coordinator's word)."""
        with self._lock:
            if proposal.policy_hash != policy.hash:
                raise PolicyQuorumRefused("the signatures are for another policy text", rule="policy.hash_mismatch")
            if proposal.version <= self.policy_version:
                raise PolicyQuorumRefused("not newer than the pinned policy", rule="policy.version")
            counted = check_quorum(proposal, signatures, self._operators, quorum=self._admin_quorum)
            self._policy = policy
            self.policy_version = proposal.version
            self._emit("guard.policy_adopted", {"version": proposal.version, "policy_hash": policy.hash,
                                                "signed_by": list(counted)})
            return counted

    def receive_notices(self, data: bytes, *, now: datetime) -> dict[str, object]:
        """Record relayed notices (whitelist entries, client keys, freezes, quorum-signed unfreezes) by this
        key holder's own clock; the coordinator gives no time. Raises on a refused notice."""
        from coffer.keyholder.facts import AdminQuorum, KeyholderFacts, receive_notices

        if not isinstance(self._facts, KeyholderFacts):
            raise PolicyError("this guard's facts store takes no notices")
        with self._lock:
            quorum = AdminQuorum(self._operators, max(2, self._admin_quorum))
            return receive_notices(self._facts, data, now_s=epoch_s(now), quorum=quorum, on_event=self._on_event)

    def check(self, request: WithdrawalRequest, signed: SignedDecision, *, now: datetime) -> Clearance:
        """Verify everything and record the request as signed. Call right before signing; raise = don't sign."""
        return self.check_batch([(request, signed)], now=now)[0]

    def check_batch(self, items: Sequence[tuple[WithdrawalRequest, SignedDecision]], *, now: datetime
                    ) -> tuple[Clearance, ...]:
        """Check a batch (e.g. one cold PSBT) all-or-nothing: each item counts toward the velocity of the
        next, and the batch is recorded only when every item passes."""
        if len(items) > BATCH_MAX:
            raise PolicyRefused(f"more than {BATCH_MAX} requests in one batch", rule="guard.batch_size")
        with self._lock:  # one check at a time, so two halves of a split can't both see the old velocity
            pending: list[tuple[bytes, PastTransfer]] = []
            clearances: list[Clearance] = []
            for request, signed in items:
                try:
                    clearance, transfer = self._verify(request, signed, now, pending)
                except PolicyRefused as refusal:
                    self._emit("guard.refused", {"request_digest": request.digest_hex, "rule": refusal.rule})
                    raise
                pending.append((clearance.request_digest, transfer))
                clearances.append(clearance)
            self._history.record_many(pending)
            for clearance in clearances:
                self._emit("guard.cleared", {"request_digest": clearance.request_digest.hex(),
                                             "route": clearance.route.value})
            return tuple(clearances)

    def _verify(self, request: WithdrawalRequest, signed: SignedDecision, now: datetime,
                pending: Sequence[tuple[bytes, PastTransfer]]) -> tuple[Clearance, PastTransfer]:
        now_s = epoch_s(now)
        if self._halted():
            raise PolicyRefused("the halt switch is on", rule="halt")
        statement = verify_attestation(signed, self._attestation_key)
        digest = request.digest()
        if statement.request_digest != digest:
            raise AttestationRefused("the attestation is for another request (was the request changed?)",
                                     rule="attestation.request_mismatch")
        if statement.policy_hash != self._policy.hash:
            raise AttestationRefused("the attestation names another policy set", rule="attestation.policy_mismatch")
        if statement.expires_at_s <= now_s:
            raise AttestationRefused("the attestation expired", rule="attestation.expired")
        if statement.decided_at_s > now_s + CLOCK_SKEW_S_MAX:
            raise AttestationRefused("the attestation is from the future", rule="attestation.time")
        if statement.route is not self.route:
            raise AttestationRefused(f"this signer signs {self.route.value} only", rule="attestation.route")
        check_initiator(request, self._operators)
        verified = verify_approvals(request, statement.approvals, self._operators, now_s=now_s,
                                    verifiers=self._verifiers)
        if self._history.contains(digest) or any(digest == item for item, _ in pending):
            raise AlreadySigned("this signer already signed that request", rule="guard.already_signed")
        past = self._history.transfers_since(now_s - HISTORY_WINDOW_S) + [transfer for _, transfer in pending]
        context = self._own_context(request, statement.facts, now_s, past, verified)
        decision = self._policy.decide(request, context, now)
        if decision.refused:
            rule = decision.refusing_rules[0]
            raise PolicyRefused(f"the policy refuses ({', '.join(decision.refusing_rules)})", rule=rule)
        if not decision.allowed:
            rule = decision.pending_rules[0] if decision.pending_rules else "approvals"
            raise ApprovalsMissing(
                f"needs {decision.required_approvals}, has {decision.present_approvals}", rule=rule)
        if decision.route is not statement.route:
            raise AttestationRefused("the policy routes this request elsewhere", rule="attestation.route")
        transfer = PastTransfer(now_s, request.account, request.asset, request.amount_minor, decision.route,
                                request.kind)
        clearance = Clearance(digest, decision.route, self._policy.hash, tuple(v.operator_id for v in verified),
                              now_s)
        return clearance, transfer

    def _own_context(self, request: WithdrawalRequest, attested: AttestedFacts, now_s: int,
                     past: list[PastTransfer], verified: tuple[VerifiedApproval, ...]) -> DecisionContext:
        """The decision context from this key holder's own facts: whitelist age by its own first sighting,
        freezes it holds (an attested freeze is one more notice, kept). Only the hot balance is taken from
        the attestation: it steers moves between the exchange's own wallets, never money out."""
        if attested.account_frozen:
            self._facts.freeze(request.account, now_s=now_s)
        fact = self._facts.whitelist(request.account, request.asset, request.destination)
        return DecisionContext(halted=False, account_frozen=self._facts.frozen(request.account),
                               whitelisted_at_s=None if fact is None else fact.first_seen_s,
                               hot_balance_minor=attested.hot_balance_minor, history=past, approvals=verified,
                               client_key_at_s=None if fact is None else fact.client_key_first_seen_s)

    def _emit(self, event: str, payload: dict[str, object]) -> None:
        if self._on_event is not None:
            self._on_event(event, payload)


def guarded_sign(guard: SignerGuard, request: WithdrawalRequest, signed: SignedDecision, *, now: datetime,
                 sign: Callable[[], T]) -> T:
    """Run `sign` only if the guard clears the request; the guard's refusal propagates untouched."""
    guard.check(request, signed, now=now)
    result = sign()
    if result is None:
        raise PolicyError("the signing function returned nothing")
    return result
