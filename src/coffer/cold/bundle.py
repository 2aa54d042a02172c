"""The signing bundle a cold signer receives: the batch PSBT with everything needed to judge it
(each withdrawal's request document, its approvals and the HSM attestation, and the draw).
It travels as one canonical JSON document, online or beside an air-gapped PSBT file.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from coffer.canonical import canonical_digest, canonical_json
from coffer.cold.draw import Draw
from coffer.cold.errors import BundleInvalid

__all__ = ["ApprovedPayment", "SigningBundle", "BUNDLE_BYTES_MAX", "BUNDLE_PAYMENTS_MAX"]

BUNDLE_BYTES_MAX = 16_000_000
BUNDLE_PAYMENTS_MAX = 2_000


@dataclass(frozen=True, slots=True)
class ApprovedPayment:
    request: dict[str, Any]
    approvals: tuple[dict[str, Any], ...]
    attestation: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"request": self.request, "approvals": list(self.approvals), "attestation": self.attestation}


@dataclass(frozen=True, slots=True)
class SigningBundle:
    wallet_id: str
    batch_id: str
    psbt: bytes
    payments: tuple[ApprovedPayment, ...]
    draw: Draw
    headers: tuple[bytes, ...] = ()  # block headers up to the draw's tip, for the signer to check

    def as_dict(self) -> dict[str, Any]:
        return {"version": 1, "wallet_id": self.wallet_id, "batch_id": self.batch_id,
                "psbt": base64.b64encode(self.psbt).decode(), "payments": [p.as_dict() for p in self.payments],
                "draw": self.draw.as_dict(), "headers": [h.hex() for h in self.headers]}

    def to_json(self) -> bytes:
        return canonical_json(self.as_dict())

    @property
    def digest(self) -> str:
        return canonical_digest(self.as_dict(), tag="coffer/cold/bundle/v1").hex()

    @classmethod
    def from_json(cls, raw: bytes) -> SigningBundle:
        if len(raw) > BUNDLE_BYTES_MAX:
            raise BundleInvalid("bundle too large")
        try:
            data = json.loads(raw, object_pairs_hook=_no_duplicates)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BundleInvalid(f"bundle is not JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> SigningBundle:
        expected = {"version", "wallet_id", "batch_id", "psbt", "payments", "draw", "headers"}
        if not isinstance(data, dict) or set(data) != expected or data["version"] != 1:
            raise BundleInvalid("bundle fields are not exactly " + ", ".join(sorted(expected)))
        payments = data["payments"]
        if not isinstance(payments, list) or not 1 <= len(payments) <= BUNDLE_PAYMENTS_MAX:
            raise BundleInvalid("bundle must carry 1..2000 payments")
        parsed = []
        for item in payments:
            if not isinstance(item, dict) or set(item) != {"request", "approvals", "attestation"}:
                raise BundleInvalid("payment entry must have request, approvals, attestation")
            if not isinstance(item["request"], dict) or not isinstance(item["approvals"], list) \
                    or not isinstance(item["attestation"], dict):
                raise BundleInvalid("payment entry has wrong types")
            parsed.append(ApprovedPayment(item["request"], tuple(item["approvals"]), item["attestation"]))
        try:
            psbt = base64.b64decode(str(data["psbt"]), validate=True)
        except ValueError:
            raise BundleInvalid("psbt is not base64") from None
        if not isinstance(data["draw"], dict):
            raise BundleInvalid("draw must be an object")
        return cls(str(data["wallet_id"]), str(data["batch_id"]), psbt, tuple(parsed), Draw.from_dict(data["draw"]),
                   _headers(data["headers"]))


def _headers(value: Any) -> tuple[bytes, ...]:
    from coffer.cold.tip import HEADER_BYTES, HEADERS_MAX

    if not isinstance(value, list) or len(value) > HEADERS_MAX:
        raise BundleInvalid(f"headers must be a list of at most {HEADERS_MAX}")
    try:
        headers = tuple(bytes.fromhex(item) for item in value)
    except (TypeError, ValueError):
        raise BundleInvalid("headers must be hex") from None
    if any(len(header) != HEADER_BYTES for header in headers):
        raise BundleInvalid(f"a header is {HEADER_BYTES} bytes")
    return headers


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BundleInvalid(f"duplicate key {key!r}")
        result[key] = value
    return result
