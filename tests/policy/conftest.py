"""Fixtures of the policy tests: operators with keys, requests, contexts, an HSM attestation key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from coffer.hsm import Hsm
from coffer.keyholder.facts import AdminQuorum, KeyholderFacts, WhitelistNotice
from coffer.policy import (
    Approval,
    ApprovalRequirement,
    AttestedFacts,
    CompiledPolicy,
    Decision,
    DecisionContext,
    MemorySignedHistory,
    Operator,
    OperatorKey,
    OperatorRegistry,
    RequestKind,
    Role,
    Route,
    SignedDecision,
    SignerGuard,
    WithdrawalRequest,
    attest_decision,
    default_policy,
    ensure_attestation_key,
    sign_approval,
    verify_approvals,
)
from coffer.testing import TokenHandle

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
NOW_S = int(NOW.timestamp())
DAY_S = 86400
BTC = 100_000_000

ROLES: dict[str, set[Role]] = {
    "ivan": {Role.INITIATOR},
    "bob": {Role.APPROVER},
    "carol": {Role.APPROVER},
    "dave": {Role.SECURITY_OFFICER},
    "erin": {Role.POLICY_ADMIN},
    "frank": {Role.POLICY_ADMIN},
    "gina": {Role.POLICY_ADMIN},
    "olga": {Role.INITIATOR, Role.APPROVER},
}


class World:
    """Operators with keys and helpers to build requests, approvals and attestations."""

    def __init__(self) -> None:
        self.keys = {name: OperatorKey(bytes([index + 1]) * 32) for index, name in enumerate(ROLES)}
        self.registry = OperatorRegistry(
            Operator(name, frozenset(roles), self.keys[name].public_key) for name, roles in ROLES.items())
        self.policy: CompiledPolicy = default_policy()

    def request(self, **overrides: Any) -> WithdrawalRequest:
        fields: dict[str, Any] = dict(
            kind=RequestKind.CLIENT_WITHDRAWAL, asset="BTC", amount_minor=500_000, destination="bcrt1qdestination",
            source_wallet="auto", account="acct1", fee_policy="normal", nonce="00" * 16,
            expires_at_s=NOW_S + 3600, initiator="client:acct1")
        fields.update(overrides)
        return WithdrawalRequest(**fields)

    def context(self, **overrides: Any) -> DecisionContext:
        fields: dict[str, Any] = dict(halted=False, account_frozen=False, whitelisted_at_s=NOW_S - 2 * DAY_S,
                                      hot_balance_minor=3 * BTC)
        fields.update(overrides)
        return DecisionContext(**fields)

    def approve(self, name: str, request: WithdrawalRequest, role: Role = Role.APPROVER,
                expires_at_s: int = NOW_S + 600) -> Approval:
        return sign_approval(self.keys[name], request=request, operator_id=name, role=role,
                             expires_at_s=expires_at_s)

    def tier2_approvals(self, request: WithdrawalRequest) -> tuple[Approval, ...]:
        return (self.approve("bob", request), self.approve("carol", request),
                self.approve("dave", request, Role.SECURITY_OFFICER))

    def decide(self, request: WithdrawalRequest, approvals: tuple[Approval, ...] = (), **context: Any) -> Decision:
        verified = verify_approvals(request, approvals, self.registry, now_s=NOW_S)
        return self.policy.decide(request, self.context(approvals=verified, **context), NOW)

    def facts(self, context: DecisionContext | None = None) -> AttestedFacts:
        context = context or self.context()
        return AttestedFacts(context.account_frozen, context.whitelisted_at_s, context.hot_balance_minor)


@pytest.fixture(scope="session")
def world() -> World:
    return World()


@pytest.fixture
def hsm(token: TokenHandle) -> Iterator[Hsm]:
    """A fresh token holding the coordinator's attestation key."""
    with token.open() as opened:
        ensure_attestation_key(opened)
        yield opened


class Coordinator:
    """An honest coordinator (decide, then have the HSM attest) and a dishonest one (attest anything)."""

    def __init__(self, world: World, hsm: Hsm) -> None:
        self.world = world
        self.hsm = hsm
        self.public_key = ensure_attestation_key(hsm)

    def attest(self, request: WithdrawalRequest, approvals: tuple[Approval, ...] = (), **context: Any
               ) -> SignedDecision:
        decision = self.world.decide(request, approvals, **context)
        assert decision.allowed, decision
        return attest_decision(self.hsm, request, decision, approvals, self.world.facts(self.world.context(**context)),
                               now_s=NOW_S)

    def attest_anything(self, request: WithdrawalRequest, approvals: tuple[Approval, ...] = (),
                        route: Route = Route.HOT, policy_hash: str | None = None,
                        facts: AttestedFacts | None = None) -> SignedDecision:
        """A compromised coordinator asking its HSM to sign a decision the policy never made."""
        forged = Decision(request.digest(), policy_hash or self.world.policy.hash, True, False, route,
                          ApprovalRequirement(), ApprovalRequirement(), ())
        return attest_decision(self.hsm, request, forged, approvals, facts or self.world.facts(), now_s=NOW_S)


@pytest.fixture
def coordinator(world: World, hsm: Hsm) -> Coordinator:
    return Coordinator(world, hsm)


class Signer:
    """A signer process stand-in: a guard and a signing function that counts its calls."""

    def __init__(self, guard: SignerGuard, history: MemorySignedHistory) -> None:
        self.guard = guard
        self.history = history
        self.signed: list[bytes] = []
        self.halted = False

    def sign(self, request: WithdrawalRequest, attestation: SignedDecision, now: datetime = NOW) -> bytes:
        from coffer.policy import guarded_sign

        def do_sign() -> bytes:
            self.signed.append(request.digest())
            return b"signature"

        return guarded_sign(self.guard, request, attestation, now=now, sign=do_sign)


def signer_facts(destination: str = "bcrt1qdestination") -> KeyholderFacts:
    """A signer's own facts store that saw the world's usual destination (for acct0..acct9) two days ago,
    by its own (fake) clock."""
    facts = KeyholderFacts(":memory:")
    facts.apply([WhitelistNotice(f"acct{index}", "BTC", destination) for index in range(10)],
                now_s=NOW_S - 2 * DAY_S, quorum=AdminQuorum(OperatorRegistry(()), 2))
    return facts


def make_signer(world: World, public_key: bytes, route: Route = Route.HOT) -> Signer:
    history = MemorySignedHistory()
    holder: dict[str, Signer] = {}
    guard = SignerGuard(signer_id=f"{route.value}-1", route=route, attestation_public_key=public_key,
                        operators=world.registry, policy=world.policy, history=history,
                        facts=signer_facts(), halted=lambda: holder["signer"].halted)
    signer = Signer(guard, history)
    holder["signer"] = signer
    return signer


@pytest.fixture
def hot_signer(world: World, coordinator: Coordinator) -> Signer:
    return make_signer(world, coordinator.public_key, Route.HOT)


@pytest.fixture
def cold_signer(world: World, coordinator: Coordinator) -> Signer:
    return make_signer(world, coordinator.public_key, Route.COLD)
