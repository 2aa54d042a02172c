"""Errors of the policy part.

Every refusal is a `PolicyRefused` (a `coffer.errors.Refused`) whose `rule` names the rule that
refused, e.g. ``PolicyRefused(rule="velocity.client")``. Messages never carry key material.
"""

from __future__ import annotations

from coffer.errors import CofferError, Refused

__all__ = [
    "PolicyError", "PolicyRefused", "ApprovalRefused", "SegregationOfDuties", "ApprovalsMissing",
    "AttestationRefused", "AlreadySigned", "PolicyQuorumRefused", "MalformedPolicy",
    "MalformedDocument", "UnknownOperator", "CheckpointInvalid", "FactRefused",
]


class PolicyError(CofferError):
    """Something in the policy part failed."""


class PolicyRefused(Refused):
    """A rule refused; `rule` names it (a Cedar policy `@id` or a fixed check such as `halt`)."""

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message, rule=rule)


class ApprovalRefused(PolicyRefused):
    """An approval is not valid for this request (wrong request, expired, bad signature, role)."""


class SegregationOfDuties(PolicyRefused):
    """One person would hold two conflicting roles on one request (e.g. approve their own)."""


class ApprovalsMissing(PolicyRefused):
    """The policy asks for more approvals than are present; `rule` names the tier."""


class AttestationRefused(PolicyRefused):
    """The HSM attestation of a decision is forged, mismatched, expired or for another policy."""


class AlreadySigned(PolicyRefused):
    """This signer already signed that request; it never signs one twice."""


class PolicyQuorumRefused(PolicyRefused):
    """A policy set change lacks the policy-admin quorum."""


class FactRefused(PolicyRefused):
    """A key holder refused a notice about a fact (an unsigned unfreeze, a forged client signature)."""


class UnknownOperator(PolicyRefused):
    """No operator with that id or key is registered."""


class MalformedPolicy(PolicyError):
    """A policy set or schema does not parse or validate; names the line and column."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 policy_id: str | None = None) -> None:
        where = ""
        if line is not None:
            where = f"line {line}" + (f", column {column}" if column is not None else "")
            if policy_id:
                where += f" (policy {policy_id})"
            where += ": "
        super().__init__(where + message)
        self.line = line
        self.column = column
        self.policy_id = policy_id


class MalformedDocument(PolicyError):
    """A request, approval or attestation document does not parse; names the field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class CheckpointInvalid(PolicyError):
    """An audit checkpoint's HSM signature does not verify, or the chain does not reach it."""
