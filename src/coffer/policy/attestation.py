"""The HSM attestation of a decision: what was decided, under which policy, with which approvals.

The coordinator's HSM signs (P-256 ECDSA, non-extractable key) a statement holding the request
digest, the policy hash, the route, the approvals themselves, the state facts the decision used
that a signer cannot see itself (whitelisting time, freeze, hot balance), the decision time and
an expiry. P-256 because every PKCS#11 HSM offers it (FIPS 186) and SoftHSM2 signs it fastest;
signatures are made low-S and high-S ones are refused, so each statement has one signature.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from coffer.canonical import canonical_digest, canonical_json
from coffer.hsm import Hsm, KeyKind, normalize_low_s
from coffer.policy._strict import expect_bool, expect_hex, expect_int, parse_canonical_object
from coffer.policy.approval import APPROVALS_MAX, Approval, parse_approval
from coffer.policy.engine import Decision, Route
from coffer.policy.errors import AttestationRefused, MalformedDocument, PolicyError
from coffer.policy.request import WithdrawalRequest

__all__ = ["AttestedFacts", "DecisionStatement", "SignedDecision", "attest_decision", "verify_attestation",
           "parse_signed_decision", "signed_decision_from_json", "ensure_attestation_key", "ATTESTATION_KEY_LABEL", "ATTESTATION_TTL_S",
           "P256_ORDER", "attestation_key_id"]

ATTESTATION_KEY_LABEL = "coffer-decision-attestation"
ATTESTATION_TTL_S = 15 * 60
ATTESTATION_TAG = "coffer/decision-attestation/v1"
DOCUMENT_TYPE = "coffer.decision-attestation.v1"
SIGNED_BYTES_MAX = 64 * 1024
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_STATEMENT_FIELDS = frozenset({"type", "request_digest", "policy_hash", "route", "approvals", "facts",
                               "decided_at_s", "expires_at_s"})
_FACT_FIELDS = frozenset({"account_frozen", "whitelisted_at_s", "hot_balance_minor"})


@dataclass(frozen=True, slots=True)
class AttestedFacts:
    """State the coordinator decided on that a signer cannot observe itself."""

    account_frozen: bool
    whitelisted_at_s: int | None
    hot_balance_minor: int

    def to_json(self) -> dict[str, Any]:
        return {"account_frozen": self.account_frozen, "whitelisted_at_s": self.whitelisted_at_s,
                "hot_balance_minor": self.hot_balance_minor}


@dataclass(frozen=True, slots=True)
class DecisionStatement:
    request_digest: bytes
    policy_hash: str
    route: Route
    approvals: tuple[Approval, ...]
    facts: AttestedFacts
    decided_at_s: int
    expires_at_s: int

    def to_json(self) -> dict[str, Any]:
        return {"type": DOCUMENT_TYPE, "request_digest": self.request_digest.hex(),
                "policy_hash": self.policy_hash, "route": self.route.value,
                "approvals": [_approval_json(a) for a in self.approvals], "facts": self.facts.to_json(),
                "decided_at_s": self.decided_at_s, "expires_at_s": self.expires_at_s}

    def digest(self) -> bytes:
        return canonical_digest(self.to_json(), tag=ATTESTATION_TAG)


def _approval_json(approval: Approval) -> dict[str, Any]:
    return dict(approval._fields())


@dataclass(frozen=True, slots=True)
class SignedDecision:
    statement: DecisionStatement
    signature: bytes  # raw r||s, low-S, P-256

    def to_json(self) -> dict[str, Any]:
        return {"statement": self.statement.to_json(), "signature": self.signature.hex()}

    def encode(self) -> bytes:
        return canonical_json(self.to_json())


def attestation_key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


def ensure_attestation_key(hsm: Hsm, label: str = ATTESTATION_KEY_LABEL) -> bytes:
    """Create the non-extractable P-256 attestation key if missing; return its compressed public key."""
    if not hsm.has_key(label):
        hsm.generate_key(label, KeyKind.P256)
    return hsm.public_key(label)


def attest_decision(hsm: Hsm, request: WithdrawalRequest, decision: Decision, approvals: tuple[Approval, ...],
                    facts: AttestedFacts, *, now_s: int, ttl_s: int = ATTESTATION_TTL_S,
                    label: str = ATTESTATION_KEY_LABEL) -> SignedDecision:
    """Have the HSM sign an allowed decision. Refuses a decision that is not allowed."""
    if not decision.allowed:
        rule = decision.refusing_rules[0] if decision.refusing_rules else (
            decision.reasons[0] if decision.reasons else "policy.not_allowed")
        raise AttestationRefused("the HSM attests allowed decisions only", rule=rule)
    if decision.request_digest != request.digest():
        raise PolicyError("decision is for another request")
    if len(approvals) > APPROVALS_MAX:
        raise PolicyError("too many approvals")
    expires = min(now_s + ttl_s, request.expires_at_s)
    statement = DecisionStatement(decision.request_digest, decision.policy_hash, decision.route,
                                  tuple(approvals), facts, now_s, expires)
    signature = normalize_low_s(hsm.sign(label, statement.digest()), P256_ORDER)
    return SignedDecision(statement, signature)


def verify_attestation(signed: SignedDecision, public_key: bytes) -> DecisionStatement:
    """Check the HSM signature against the pinned public key; raise AttestationRefused."""
    signature = signed.signature
    if len(signature) != 64:
        raise AttestationRefused("attestation signature must be 64 bytes", rule="attestation.signature")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (0 < r < P256_ORDER and 0 < s <= P256_ORDER // 2):
        raise AttestationRefused("attestation signature out of range or not low-S", rule="attestation.signature")
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)
        key.verify(utils.encode_dss_signature(r, s), signed.statement.digest(),
                   ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except (InvalidSignature, ValueError):
        raise AttestationRefused("attestation does not verify under the pinned HSM key",
                                 rule="attestation.signature") from None
    return signed.statement


def _parse_facts(value: Any) -> AttestedFacts:
    if not isinstance(value, dict) or frozenset(value) != _FACT_FIELDS:
        raise MalformedDocument("must hold exactly the attested facts", field="facts")
    whitelisted = value["whitelisted_at_s"]
    if whitelisted is not None:
        whitelisted = expect_int(value, "whitelisted_at_s", minimum=0, maximum=1 << 40)
    return AttestedFacts(expect_bool(value, "account_frozen"), whitelisted,
                         expect_int(value, "hot_balance_minor", minimum=0, maximum=(1 << 128) - 1))


def _parse_statement(value: Any) -> DecisionStatement:
    if not isinstance(value, dict):
        raise MalformedDocument("must be an object", field="statement")
    doc = parse_canonical_object(canonical_json(value), fields=_STATEMENT_FIELDS, bytes_max=SIGNED_BYTES_MAX,
                                 what="statement")
    if doc["type"] != DOCUMENT_TYPE:
        raise MalformedDocument("unknown document type", field="type")
    if doc["route"] not in ("hot", "cold"):
        raise MalformedDocument("must be hot or cold", field="route")
    approvals = doc["approvals"]
    if not isinstance(approvals, list) or len(approvals) > APPROVALS_MAX:
        raise MalformedDocument(f"must be a list of at most {APPROVALS_MAX}", field="approvals")
    parsed = tuple(parse_approval(canonical_json(item)) if isinstance(item, dict) else _bad_approval()
                   for item in approvals)
    policy_hash = expect_hex(doc, "policy_hash", length_bytes=32).hex()
    return DecisionStatement(expect_hex(doc, "request_digest", length_bytes=32), policy_hash, Route(doc["route"]),
                             parsed, _parse_facts(doc["facts"]),
                             expect_int(doc, "decided_at_s", minimum=0, maximum=1 << 40),
                             expect_int(doc, "expires_at_s", minimum=0, maximum=1 << 40))


def _bad_approval() -> Approval:
    raise MalformedDocument("each approval must be an object", field="approvals")


def signed_decision_from_json(value: Any) -> SignedDecision:
    """Parse an attestation embedded as a JSON object in another document (e.g. a signing bundle)."""
    if not isinstance(value, dict):
        raise MalformedDocument("an attestation must be a JSON object")
    try:
        data = canonical_json(value)
    except Exception:  # a float or other value without canonical form
        raise MalformedDocument("attestation has no canonical encoding") from None
    return parse_signed_decision(data)


def parse_signed_decision(data: bytes) -> SignedDecision:
    """Parse an attestation document strictly (it still has to be verified)."""
    doc = parse_canonical_object(data, fields=frozenset({"statement", "signature"}), bytes_max=SIGNED_BYTES_MAX,
                                 what="attestation")
    return SignedDecision(_parse_statement(doc["statement"]), expect_hex(doc, "signature", length_bytes=64))
