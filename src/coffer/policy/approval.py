"""Approvals: an operator's signature bound to one request digest, one role and an expiry.

The checks common to every kind of approval (bound to this request, not expired, the operator
holds the role, never the initiator, one approval per operator) live in `verify_approvals`;
proving the operator's consent is the job of an `ApprovalVerifier` per scheme. Ed25519 is built
in; a WebAuthn verifier plugs in the same way: its challenge is `approval_message(approval)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import nacl.exceptions
import nacl.signing

from coffer.canonical import canonical_digest, canonical_json
from coffer.policy._strict import (
    expect_hex,
    expect_int,
    expect_str,
    parse_canonical_object,
)
from coffer.policy.errors import (
    ApprovalRefused,
    MalformedDocument,
    SegregationOfDuties,
    UnknownOperator,
)
from coffer.policy.request import WithdrawalRequest
from coffer.policy.roles import (
    ED25519_SCHEME,
    OPERATOR_ID_PATTERN,
    Operator,
    OperatorKey,
    OperatorRegistry,
    Role,
)

__all__ = ["Approval", "VerifiedApproval", "ApprovalVerifier", "Ed25519ApprovalVerifier",
           "approval_message", "sign_approval", "verify_approvals", "parse_approval",
           "APPROVAL_ROLES", "APPROVALS_MAX", "APPROVAL_TTL_S_MAX", "default_verifiers", "check_initiator"]

APPROVAL_TAG = "coffer/approval/v1"
DOCUMENT_TYPE = "coffer.approval.v1"
APPROVAL_BYTES_MAX = 8192
APPROVALS_MAX = 16
APPROVAL_TTL_S_MAX = 7 * 24 * 3600
PROOF_BYTES_MAX = 4096
APPROVAL_ROLES = (Role.APPROVER, Role.SECURITY_OFFICER)
_SCHEME = re.compile(r"^[a-z0-9-]{1,32}$")
_FIELDS = frozenset({"type", "request_digest", "operator_id", "role", "expires_at_s", "scheme", "proof"})


@dataclass(frozen=True, slots=True)
class Approval:
    """`operator_id` approves request `request_digest` in capacity `role` until `expires_at_s`."""

    request_digest: bytes
    operator_id: str
    role: Role
    expires_at_s: int
    scheme: str
    proof: bytes  # Ed25519: the 64-byte signature over approval_message(); other schemes: their own

    def _fields(self) -> dict[str, Any]:
        return {"type": DOCUMENT_TYPE, "request_digest": self.request_digest.hex(),
                "operator_id": self.operator_id, "role": self.role.value,
                "expires_at_s": self.expires_at_s, "scheme": self.scheme, "proof": self.proof.hex()}

    def encode(self) -> bytes:
        return canonical_json(self._fields())

    def digest(self) -> bytes:
        return canonical_digest(self._fields(), tag=APPROVAL_TAG + "/document")


def approval_message(approval: Approval) -> bytes:
    """The 32-byte digest an approver's device signs: domain tag, request, operator, role, expiry."""
    return canonical_digest({"request_digest": approval.request_digest.hex(),
                             "operator_id": approval.operator_id, "role": approval.role.value,
                             "expires_at_s": approval.expires_at_s, "scheme": approval.scheme},
                            tag=APPROVAL_TAG)


def sign_approval(key: OperatorKey, *, request: WithdrawalRequest, operator_id: str, role: Role,
                  expires_at_s: int) -> Approval:
    """Make an Ed25519 approval of `request` (done on the operator's own machine)."""
    unsigned = Approval(request.digest(), operator_id, role, expires_at_s, ED25519_SCHEME, b"")
    signature = key.sign(approval_message(unsigned))
    return Approval(unsigned.request_digest, operator_id, role, expires_at_s, ED25519_SCHEME, signature)


def parse_approval(data: bytes) -> Approval:
    doc = parse_canonical_object(data, fields=_FIELDS, bytes_max=APPROVAL_BYTES_MAX, what="approval")
    if doc["type"] != DOCUMENT_TYPE:
        raise MalformedDocument("unknown document type", field="type")
    digest = expect_hex(doc, "request_digest", length_bytes=32)
    operator_id = expect_str(doc, "operator_id", chars_max=64, pattern=OPERATOR_ID_PATTERN)
    role_value = doc["role"]
    if role_value not in {r.value for r in APPROVAL_ROLES}:
        raise MalformedDocument("must be approver or security_officer", field="role")
    expires = expect_int(doc, "expires_at_s", minimum=0, maximum=1 << 40)
    scheme = expect_str(doc, "scheme", chars_max=32, pattern=_SCHEME)
    proof_hex = doc["proof"]
    if not isinstance(proof_hex, str) or len(proof_hex) > 2 * PROOF_BYTES_MAX or len(proof_hex) % 2:
        raise MalformedDocument("must be hex", field="proof")
    proof = expect_hex(doc, "proof", length_bytes=len(proof_hex) // 2)
    return Approval(digest, operator_id, Role(role_value), expires, scheme, proof)


@dataclass(frozen=True, slots=True)
class VerifiedApproval:
    """An approval that passed every check for one request at one time."""

    operator_id: str
    role: Role
    approval_digest: bytes


@runtime_checkable
class ApprovalVerifier(Protocol):
    """Proves that the operator consented; one per scheme. Raises ApprovalRefused, never returns False."""

    @property
    def scheme(self) -> str: ...

    def verify_proof(self, approval: Approval, operator: Operator) -> None: ...


class Ed25519ApprovalVerifier:
    """The operator's registered Ed25519 key signed approval_message(approval)."""

    @property
    def scheme(self) -> str:
        return ED25519_SCHEME

    def verify_proof(self, approval: Approval, operator: Operator) -> None:
        if len(approval.proof) != 64:
            raise ApprovalRefused("an Ed25519 approval signature is 64 bytes", rule="approval.signature")
        try:
            nacl.signing.VerifyKey(operator.ed25519_public_key).verify(approval_message(approval), approval.proof)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
            raise ApprovalRefused(f"signature of {operator.operator_id} does not verify",
                                  rule="approval.signature") from None


def default_verifiers() -> Mapping[str, ApprovalVerifier]:
    from coffer.policy.webauthn import WEBAUTHN_SCHEME, WebAuthnApprovalVerifier  # issue 12: security keys

    return {ED25519_SCHEME: Ed25519ApprovalVerifier(), WEBAUTHN_SCHEME: WebAuthnApprovalVerifier()}


def _verify_one(approval: Approval, request: WithdrawalRequest, digest: bytes, registry: OperatorRegistry,
                now_s: int, verifiers: Mapping[str, ApprovalVerifier]) -> VerifiedApproval:
    if approval.request_digest != digest:
        raise ApprovalRefused(f"approval by {approval.operator_id} is for another request",
                              rule="approval.request_mismatch")
    if approval.expires_at_s <= now_s:
        raise ApprovalRefused(f"approval by {approval.operator_id} expired", rule="approval.expired")
    if approval.expires_at_s > now_s + APPROVAL_TTL_S_MAX:
        raise ApprovalRefused("approval lives longer than allowed", rule="approval.expiry_too_far")
    if approval.operator_id == request.initiator:
        raise SegregationOfDuties(f"{approval.operator_id} initiated this request and cannot approve it",
                                  rule="sod.self_approval")
    try:
        operator = registry.get(approval.operator_id)
    except UnknownOperator:
        raise ApprovalRefused(f"no operator {approval.operator_id!r}", rule="approval.unknown_operator") from None
    if approval.role not in APPROVAL_ROLES or not operator.has(approval.role):
        raise ApprovalRefused(f"{operator.operator_id} does not hold the {approval.role.value} role",
                              rule="approval.role")
    verifier = verifiers.get(approval.scheme)
    if verifier is None or operator.key_for(approval.scheme) is None:
        raise ApprovalRefused(f"no verifier or key for scheme {approval.scheme!r}", rule="approval.scheme")
    verifier.verify_proof(approval, operator)
    return VerifiedApproval(operator.operator_id, approval.role, approval.digest())


def verify_approvals(request: WithdrawalRequest, approvals: Iterable[Approval], registry: OperatorRegistry,
                     *, now_s: int, verifiers: Mapping[str, ApprovalVerifier] | None = None
                     ) -> tuple[VerifiedApproval, ...]:
    """Verify every approval for `request`; raise on the first bad one. One approval per operator."""
    verifiers = default_verifiers() if verifiers is None else verifiers
    digest = request.digest()
    approvals = tuple(approvals)
    if len(approvals) > APPROVALS_MAX:
        raise ApprovalRefused("too many approvals", rule="approval.count")
    verified: list[VerifiedApproval] = []
    seen: set[str] = set()
    for approval in approvals:
        item = _verify_one(approval, request, digest, registry, now_s, verifiers)
        if item.operator_id in seen:
            raise SegregationOfDuties(f"{item.operator_id} approved twice", rule="sod.duplicate_approver")
        seen.add(item.operator_id)
        verified.append(item)
    return tuple(verified)


def check_initiator(request: WithdrawalRequest, registry: OperatorRegistry) -> None:
    """A client starts only its own withdrawals; anything else is started by an initiator operator."""
    if request.initiator.startswith("client:"):
        if request.initiator != f"client:{request.account}" or request.kind.value != "client_withdrawal":
            raise SegregationOfDuties("a client may only start withdrawals from its own account",
                                      rule="sod.initiator")
        return
    try:
        operator = registry.get(request.initiator)
    except UnknownOperator:
        raise SegregationOfDuties(f"no operator {request.initiator!r}", rule="sod.initiator") from None
    if not operator.has(Role.INITIATOR):
        raise SegregationOfDuties(f"{operator.operator_id} does not hold the initiator role",
                                  rule="sod.initiator")
