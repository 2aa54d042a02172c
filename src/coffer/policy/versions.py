"""Policy set changes: a new version takes effect only with k-of-n policy-admin signatures.

The proposer's own signature never counts toward the quorum (a policy admin's change needs OTHER
admins); each admin counts once; every signature is over the version number and policy hash.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from coffer.canonical import canonical_digest
from coffer.policy.errors import PolicyQuorumRefused, UnknownOperator
from coffer.policy.roles import OperatorKey, OperatorRegistry, Role

__all__ = ["PolicyProposal", "AdminSignature", "activation_message", "sign_activation", "check_quorum",
           "ADMIN_QUORUM_DEFAULT"]

ACTIVATION_TAG = "coffer/policy-activation/v1"
ADMIN_QUORUM_DEFAULT = 2


@dataclass(frozen=True, slots=True)
class PolicyProposal:
    version: int
    policy_hash: str
    proposed_by: str


@dataclass(frozen=True, slots=True)
class AdminSignature:
    operator_id: str
    signature: bytes


def activation_message(version: int, policy_hash: str) -> bytes:
    return canonical_digest({"version": version, "policy_hash": policy_hash}, tag=ACTIVATION_TAG)


def sign_activation(key: OperatorKey, proposal: PolicyProposal, operator_id: str) -> AdminSignature:
    return AdminSignature(operator_id, key.sign(activation_message(proposal.version, proposal.policy_hash)))


def check_quorum(proposal: PolicyProposal, signatures: Iterable[AdminSignature], registry: OperatorRegistry,
                 *, quorum: int = ADMIN_QUORUM_DEFAULT) -> tuple[str, ...]:
    """Return the admins who count toward the quorum; raise PolicyQuorumRefused when too few."""
    if quorum < 1:
        raise PolicyQuorumRefused("the admin quorum must be at least 1", rule="policy.quorum")
    try:
        proposer = registry.get(proposal.proposed_by)
    except UnknownOperator:
        raise PolicyQuorumRefused("the proposer is not a registered operator", rule="policy.proposer") from None
    if not proposer.has(Role.POLICY_ADMIN):
        raise PolicyQuorumRefused("the proposer is not a policy admin", rule="policy.proposer")
    message = activation_message(proposal.version, proposal.policy_hash)
    counted: list[str] = []
    for item in signatures:
        if item.operator_id == proposal.proposed_by or item.operator_id in counted:
            continue
        if item.operator_id not in registry:
            continue
        operator = registry.get(item.operator_id)
        if not operator.has(Role.POLICY_ADMIN):
            continue
        try:
            nacl.signing.VerifyKey(operator.ed25519_public_key).verify(message, item.signature)
        except (nacl.exceptions.BadSignatureError, ValueError):
            continue
        counted.append(item.operator_id)
    if len(counted) < quorum:
        raise PolicyQuorumRefused(
            f"needs {quorum} other policy admins, has {len(counted)}", rule="policy.quorum")
    return tuple(counted)
