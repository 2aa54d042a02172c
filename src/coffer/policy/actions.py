"""Operator actions carried with the acting person's own signature: enrolling and revoking operators and
their security keys (a quorum of policy administrators), starting a company transfer (the initiator),
whitelisting a company destination (a security officer).

Each message is a tagged digest of exactly what is being done, with an expiry, so a signature can be
used for that one action only, and only briefly. The coordinator checks them before it acts; the key
holders check their own pins (governance actions, once the governance module is on main).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from coffer.canonical import canonical_digest
from coffer.policy.errors import PolicyQuorumRefused, SegregationOfDuties, UnknownOperator
from coffer.policy.request import WithdrawalRequest
from coffer.policy.roles import Operator, OperatorKey, OperatorRegistry, Role

__all__ = ["AdminAction", "ActionSignature", "enrolment_message", "revocation_message", "initiation_message",
           "sign_action", "count_admins", "verify_initiation", "ACTION_TTL_S_MAX"]

ACTION_TAG = "coffer/operator-action/v1"
ACTION_TTL_S_MAX = 3600


@dataclass(frozen=True, slots=True)
class ActionSignature:
    operator_id: str
    signature: bytes


@dataclass(frozen=True, slots=True)
class AdminAction:
    """What the administrators sign: the message and until when it may be used."""

    message: bytes
    expires_at_s: int


def _message(fields: dict[str, object]) -> bytes:
    return canonical_digest(fields, tag=ACTION_TAG)


def enrolment_message(operator: Operator, expires_at_s: int) -> bytes:
    return _message({"action": "operator.enrol", "operator_id": operator.operator_id,
                     "roles": sorted(r.value for r in operator.roles),
                     "ed25519_public_key": operator.ed25519_public_key.hex(), "expires_at_s": expires_at_s})


def revocation_message(operator_id: str, what: str, expires_at_s: int) -> bytes:
    """`what`: "operator" (the operator and every credential) or a credential scheme (e.g. "webauthn")."""
    return _message({"action": "operator.revoke", "operator_id": operator_id, "what": what,
                     "expires_at_s": expires_at_s})


def initiation_message(request: WithdrawalRequest) -> bytes:
    return _message({"action": "request.initiate", "request_digest": request.digest_hex,
                     "initiator": request.initiator})


def sign_action(key: OperatorKey, operator_id: str, message: bytes) -> ActionSignature:
    """Done on the operator's own machine with the operator's own key file."""
    return ActionSignature(operator_id, key.sign(message))


def _verifies(operator: Operator, message: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(operator.ed25519_public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


def count_admins(action: AdminAction, signatures: Sequence[ActionSignature], registry: OperatorRegistry, *,
                 quorum: int, now_s: int) -> tuple[str, ...]:
    """The distinct policy administrators whose signature over the action verifies; raise below `quorum`."""
    if action.expires_at_s <= now_s or action.expires_at_s > now_s + ACTION_TTL_S_MAX:
        raise PolicyQuorumRefused("the action expired or lives too long", rule="action.expiry")
    counted: list[str] = []
    for item in signatures:
        if item.operator_id in counted or item.operator_id not in registry:
            continue
        operator = registry.get(item.operator_id)
        if operator.has(Role.POLICY_ADMIN) and _verifies(operator, action.message, item.signature):
            counted.append(item.operator_id)
    if len(counted) < max(2, quorum):
        raise PolicyQuorumRefused(f"needs {max(2, quorum)} policy administrators, has {len(counted)}",
                                  rule="action.quorum")
    return tuple(counted)


def verify_initiation(request: WithdrawalRequest, signature: bytes, registry: OperatorRegistry) -> None:
    """The initiator operator signed this very request with its own key."""
    try:
        operator = registry.get(request.initiator)
    except UnknownOperator:
        raise SegregationOfDuties(f"no operator {request.initiator!r}", rule="sod.initiator") from None
    if not operator.has(Role.INITIATOR) or not _verifies(operator, initiation_message(request), signature):
        raise SegregationOfDuties(f"the request does not carry {request.initiator}'s own signature",
                                  rule="request.initiator_signature")
