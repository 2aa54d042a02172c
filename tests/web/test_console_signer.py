"""A security-key approval made in the console carries a withdrawal through a signer's own guard:
the signer pins the operators (with their WebAuthn credentials) and re-checks everything itself;
a forged security-key approval is refused even when a compromised coordinator's HSM attests it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from coffer.keyholder.facts import AdminQuorum, KeyholderFacts, WhitelistNotice
from coffer.pins import SignerPins
from coffer.policy import (
    MemorySignedHistory,
    PolicyRefused,
    SignerGuard,
    attest_decision,
    guarded_sign,
    parse_approval,
)
from coffer.policy.engine import epoch_s
from coffer.policy.roles import OperatorRegistry
from coffer.policy.service import PolicyService
from coffer.testing import TokenHandle
from tests.web.conftest import START, Web
from tests.web.console_world import SoftKey, build_console
from tests.web.test_console_api import _approve


def test_signer_guard_accepts_security_key_approval(web: Web, token: TokenHandle) -> None:
    """Console approval -> HSM attestation -> the signer's guard clears it; a forged one is refused."""
    world = build_console(web)
    approval = parse_approval(str(_approve(world, "ann", SoftKey())["approval"]).encode())
    forged = replace(approval, proof=approval.proof[:-1] + bytes([approval.proof[-1] ^ 1]))
    with token.open() as hsm:
        coordinator = PolicyService(web.engine, hsm=hsm, halted=lambda: False, hot_balance=lambda asset: 10**9)
        attested = coordinator.attest(world.request.digest_hex, now=START)
        decision = coordinator.decide(world.request.digest_hex, now=START)
        compromised = attest_decision(hsm, world.request, decision, (forged,), coordinator.facts(world.request),
                                      now_s=epoch_s(START))
        compiled = coordinator.active_policy()
        pins = SignerPins.from_json(SignerPins(
            coordinator.attestation_public_key(), tuple(coordinator.operators()), compiled.text, compiled.schema_text,
            b"\x02" * 32, "http://127.0.0.1:1/notice", 30).to_json())
    assert [("ann", "webauthn")] == [(a.operator_id, a.scheme) for a in attested.statement.approvals]

    def guard() -> SignerGuard:
        facts = KeyholderFacts(":memory:")  # the signer saw the entry three days ago, by its own (fake) clock
        facts.apply([WhitelistNotice("acct1", "BTC", "bcrt1qdestination")], now_s=epoch_s(START) - 3 * 86400,
                    quorum=AdminQuorum(OperatorRegistry(()), 2))
        return pins.guard(signer_id="signer-1", route=attested.statement.route, history=MemorySignedHistory(),
                          facts=facts, halted=lambda: False)

    assert b"signed" == guarded_sign(guard(), world.request, attested, now=START, sign=lambda: b"signed")
    with pytest.raises(PolicyRefused) as refused:
        guarded_sign(guard(), world.request, compromised, now=START, sign=lambda: b"signed")
    assert "approval.signature" == refused.value.rule
