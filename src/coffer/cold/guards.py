"""The cold signer's bridge to the policy part: the `SignerGuard` that every signer runs itself.

A payment's `request` is the canonical withdrawal request document and its `attestation` the
HSM-signed decision (with the approvals inside). The guard pins the attestation key, the
operators' keys and the policy hash, and keeps this signer's own history of what it signed.
"""

from __future__ import annotations

import datetime as dt

from coffer.cold.bundle import ApprovedPayment
from coffer.cold.errors import BundleInvalid, SignerRefused
from coffer.cold.signer import ApprovedOutput
from coffer.policy import SignerGuard
from coffer.policy.attestation import signed_decision_from_json
from coffer.policy.errors import PolicyError, PolicyRefused
from coffer.policy.request import WithdrawalRequest, request_from_json

__all__ = ["PolicyRequestGuard", "payment_for"]


def payment_for(request: WithdrawalRequest, attestation_json: dict[str, object]) -> ApprovedPayment:
    """The bundle entry for an attested request (the approvals travel inside the attestation)."""
    return ApprovedPayment(request.to_json(), (), attestation_json)


class PolicyRequestGuard:
    def __init__(self, guard: SignerGuard, *, asset: str = "BTC") -> None:
        self._guard = guard
        self._asset = asset

    def _request(self, payment: ApprovedPayment) -> WithdrawalRequest:
        try:
            request = request_from_json(payment.request)
        except PolicyError as exc:
            raise BundleInvalid(f"request document: {exc}") from None
        if request.asset != self._asset:
            raise SignerRefused(f"a cold signer signs {self._asset} only", rule="request.asset")
        return request

    def describe(self, payment: ApprovedPayment) -> ApprovedOutput:
        request = self._request(payment)
        return ApprovedOutput(request.digest_hex, request.destination, request.amount_minor)

    def clear(self, payments: tuple[ApprovedPayment, ...], now: dt.datetime) -> None:
        items = []
        for payment in payments:
            try:
                items.append((self._request(payment), signed_decision_from_json(payment.attestation)))
            except PolicyError as exc:
                raise SignerRefused(f"attestation: {exc}", rule="attestation.malformed") from None
        try:
            self._guard.check_batch(items, now=now)
        except PolicyRefused as refused:
            raise SignerRefused(str(refused), rule=refused.rule) from None
