"""Approvals and initiators: the common checks, and another approval scheme plugging in."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

import pytest

from coffer.policy import (
    Approval,
    ApprovalRefused,
    Operator,
    OperatorRegistry,
    RequestKind,
    Role,
    SegregationOfDuties,
    approval_message,
    check_initiator,
    default_verifiers,
    verify_approvals,
)
from coffer.policy.approval import APPROVAL_TTL_S_MAX

from .conftest import NOW_S, ROLES, World


class KeyedHashVerifier:
    """A stand-in for a WebAuthn verifier: the proof is a keyed hash of approval_message()."""

    scheme = "test-keyed-hash"

    def verify_proof(self, approval: Approval, operator: Operator) -> None:
        key = operator.key_for(self.scheme)
        expected = hmac.new(key or b"", approval_message(approval), hashlib.sha256).digest()
        if key is None or not hmac.compare_digest(expected, approval.proof):
            raise ApprovalRefused("keyed hash does not match", rule="approval.signature")


def test_another_scheme_plugs_in(world: World) -> None:
    """An approval made with a second kind of credential verifies through its own ApprovalVerifier."""
    secret = b"k" * 32
    operators = [Operator(name, frozenset(roles), world.keys[name].public_key,
                          (("test-keyed-hash", secret),) if name == "bob" else ()) for name, roles in ROLES.items()]
    registry = OperatorRegistry(operators)
    request = world.request(amount_minor=5_000_000)
    unsigned = Approval(request.digest(), "bob", Role.APPROVER, NOW_S + 600, "test-keyed-hash", b"")
    approval = dataclasses.replace(unsigned, proof=hmac.new(secret, approval_message(unsigned), hashlib.sha256).digest())
    verifiers = dict(default_verifiers(), **{"test-keyed-hash": KeyedHashVerifier()})
    verified = verify_approvals(request, [approval], registry, now_s=NOW_S, verifiers=verifiers)
    assert ("bob", Role.APPROVER) == (verified[0].operator_id, verified[0].role)
    with pytest.raises(ApprovalRefused) as caught:
        verify_approvals(request, [approval], registry, now_s=NOW_S)
    assert "approval.scheme" == caught.value.rule
    bad = dataclasses.replace(approval, proof=b"\x00" * 32)
    with pytest.raises(ApprovalRefused):
        verify_approvals(request, [bad], registry, now_s=NOW_S, verifiers=verifiers)


def test_same_operator_twice_refused(world: World) -> None:
    """One operator cannot fill two approval slots, even under two roles."""
    request = world.request(amount_minor=5_000_000)
    with pytest.raises(SegregationOfDuties) as caught:
        verify_approvals(request, [world.approve("bob", request), world.approve("bob", request, expires_at_s=NOW_S + 9)],
                         world.registry, now_s=NOW_S)
    assert "sod.duplicate_approver" == caught.value.rule


def test_approval_expiry_too_far_refused(world: World) -> None:
    """An approval that would stay valid for longer than allowed is refused."""
    request = world.request()
    approval = world.approve("bob", request, expires_at_s=NOW_S + APPROVAL_TTL_S_MAX + 1)
    with pytest.raises(ApprovalRefused) as caught:
        verify_approvals(request, [approval], world.registry, now_s=NOW_S)
    assert "approval.expiry_too_far" == caught.value.rule


def test_unknown_operator_refused(world: World) -> None:
    """An approval in the name of an operator nobody registered is refused."""
    request = world.request()
    approval = dataclasses.replace(world.approve("bob", request), operator_id="zed")
    with pytest.raises(ApprovalRefused) as caught:
        verify_approvals(request, [approval], world.registry, now_s=NOW_S)
    assert "approval.unknown_operator" == caught.value.rule


def test_client_cannot_start_another_clients_withdrawal(world: World) -> None:
    """A client initiator must be the account holder."""
    with pytest.raises(SegregationOfDuties) as caught:
        check_initiator(world.request(initiator="client:acct2"), world.registry)
    assert "sod.initiator" == caught.value.rule


def test_company_request_needs_an_initiator_operator(world: World) -> None:
    """A refill started by an approver (who lacks the initiator role) is refused."""
    refill = world.request(kind=RequestKind.REFILL, account="company", source_wallet="cold", initiator="bob")
    with pytest.raises(SegregationOfDuties) as caught:
        check_initiator(refill, world.registry)
    assert "sod.initiator" == caught.value.rule
    check_initiator(dataclasses.replace(refill, initiator="ivan"), world.registry)


def test_operator_key_repr_is_redacted(world: World) -> None:
    """An operator's key never shows its seed in a repr."""
    key = world.keys["bob"]
    assert key.seed_hex() not in repr(key)
