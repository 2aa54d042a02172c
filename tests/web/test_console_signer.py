"""A security-key approval made in the console carries a withdrawal through a signer's own guard:
the signer pins the operators (with their WebAuthn credentials) and re-checks everything itself;
a forged security-key approval is refused even when a compromised coordinator's HSM attests it."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from coffer.pins import SignerPins
from coffer.policy import (
    Approval,
    MemorySignedHistory,
    PolicyRefused,
    SignedDecision,
    SignerGuard,
    attest_decision,
    guarded_sign,
    parse_approval,
)
from coffer.policy.engine import epoch_s
from coffer.policy.service import PolicyService
from coffer.policy.webauthn import WebAuthnAssertion
from coffer.testing import TokenHandle
from tests.web.conftest import START, Web
from tests.web.console_world import ConsoleWorld, SoftKey, build_console
from tests.web.test_console_api import _approve


def _attested(web: Web, token: TokenHandle, world: ConsoleWorld, forged: Approval
              ) -> tuple[SignerPins, SignedDecision, SignedDecision]:
    """(the signer's pins, the honest attestation, the compromised HSM's attestation of `forged`)."""
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
    return pins, attested, compromised


def _guard(pins: SignerPins, attested: SignedDecision) -> SignerGuard:
    return pins.guard(signer_id="signer-1", route=attested.statement.route, history=MemorySignedHistory(),
                      halted=lambda: False)


def test_signer_guard_accepts_security_key_approval(web: Web, token: TokenHandle) -> None:
    """Console approval -> HSM attestation -> the signer's guard clears it; a forged one is refused."""
    world = build_console(web)
    approval = parse_approval(str(_approve(world, "ann", SoftKey())["approval"]).encode())
    forged = replace(approval, proof=approval.proof[:-1] + bytes([approval.proof[-1] ^ 1]))
    pins, attested, compromised = _attested(web, token, world, forged)
    assert [("ann", "webauthn")] == [(a.operator_id, a.scheme) for a in attested.statement.approvals]
    assert b"signed" == guarded_sign(_guard(pins, attested), world.request, attested, now=START, sign=lambda: b"signed")
    with pytest.raises(PolicyRefused) as refused:
        guarded_sign(_guard(pins, attested), world.request, compromised, now=START, sign=lambda: b"signed")
    assert "approval.signature" == refused.value.rule


def test_security_key_approval_signed_with_another_key_is_refused_by_the_signer(web: Web,
                                                                                token: TokenHandle) -> None:
    """A compromised coordinator forges ann's security-key approval: a well-formed WebAuthn
    assertion over the right challenge, naming ann's credential, signed with its own P-256 key;
    its HSM attests the decision, and the signer's guard (ann's key pinned) refuses it with
    `approval.signature` and signs nothing."""
    world = build_console(web)
    honest = parse_approval(str(_approve(world, "ann", SoftKey())["approval"]).encode())
    genuine = WebAuthnAssertion.parse(honest.proof)
    attacker = ec.generate_private_key(ec.SECP256R1())
    signature = attacker.sign(genuine.authenticator_data + hashlib.sha256(genuine.client_data_json).digest(),
                              ec.ECDSA(hashes.SHA256()))
    forged = replace(honest, proof=replace(genuine, signature=signature).encode())
    pins, attested, compromised = _attested(web, token, world, forged)
    signed: list[bytes] = []
    with pytest.raises(PolicyRefused) as refused:
        guarded_sign(_guard(pins, attested), world.request, compromised, now=START,
                     sign=lambda: signed.append(b"signed") or b"signed")
    assert ("approval.signature", []) == (refused.value.rule, signed)
