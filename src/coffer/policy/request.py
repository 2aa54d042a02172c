"""The canonical withdrawal request document: one encoding, one digest.

Client withdrawals and the company's own hot-float moves (refill cold -> hot, sweep hot -> cold)
are the same kind of document and go through the same policy and approvals.
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from coffer.canonical import canonical_digest, canonical_json
from coffer.policy._strict import (
    expect_hex,
    expect_int,
    expect_str,
    parse_canonical_object,
)
from coffer.policy.errors import MalformedDocument

__all__ = ["RequestKind", "WithdrawalRequest", "parse_request", "new_nonce", "ASSETS",
           "REQUEST_BYTES_MAX", "SOURCE_WALLETS", "request_from_json", "REQUEST_DIGEST_TAG", "AMOUNT_MINOR_MAX"]

REQUEST_BYTES_MAX = 4096
REQUEST_DIGEST_TAG = "coffer/withdrawal-request/v1"
DOCUMENT_TYPE = "coffer.withdrawal-request.v1"
AMOUNT_MINOR_MAX = (1 << 128) - 1
EPOCH_S_MAX = (1 << 40)
NONCE_BYTES = 16
# asset -> minor units per policy unit. Cedar's Long is 64-bit, so ether is judged in gwei.
ASSETS: dict[str, int] = {"BTC": 1, "ETH": 10**9}
SOURCE_WALLETS = ("auto", "hot", "cold")
FEE_POLICIES = ("economy", "normal", "priority")
_DESTINATION = re.compile(r"^[A-Za-z0-9:._-]{1,128}$")
_ACCOUNT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_INITIATOR = re.compile(r"^(client:)?[a-z0-9][a-z0-9._-]{0,63}$")
_FIELDS = frozenset({"type", "kind", "asset", "amount_minor", "destination", "source_wallet", "account",
                     "fee_policy", "nonce", "expires_at_s", "initiator"})


class RequestKind(enum.Enum):
    CLIENT_WITHDRAWAL = "client_withdrawal"
    REFILL = "refill"
    SWEEP = "sweep"


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


@dataclass(frozen=True, slots=True)
class WithdrawalRequest:
    """A request to move `amount_minor` of `asset` out of `source_wallet` to `destination`."""

    kind: RequestKind
    asset: str
    amount_minor: int
    destination: str
    source_wallet: str
    account: str
    fee_policy: str
    nonce: str
    expires_at_s: int
    initiator: str
    _digest: bytes = field(init=False, repr=False, compare=False, default=b"")

    def __post_init__(self) -> None:
        # Building a request goes through the same checks as parsing one; the digest is computed once.
        fields = self._fields()
        _validate(fields)
        object.__setattr__(self, "_digest", canonical_digest(fields, tag=REQUEST_DIGEST_TAG))

    def _fields(self) -> dict[str, Any]:
        return {"type": DOCUMENT_TYPE, "kind": self.kind.value, "asset": self.asset,
                "amount_minor": self.amount_minor, "destination": self.destination,
                "source_wallet": self.source_wallet, "account": self.account,
                "fee_policy": self.fee_policy, "nonce": self.nonce, "expires_at_s": self.expires_at_s,
                "initiator": self.initiator}

    def to_json(self) -> dict[str, Any]:
        """The document as a JSON object (for embedding in other documents)."""
        return self._fields()

    def encode(self) -> bytes:
        return canonical_json(self._fields())

    def digest(self) -> bytes:
        return self._digest

    @property
    def digest_hex(self) -> str:
        return self.digest().hex()


def _one_of(doc: dict[str, Any], field: str, options: tuple[str, ...]) -> None:
    value = doc[field]
    if not isinstance(value, str) or value not in options:
        raise MalformedDocument("must be one of " + ", ".join(options), field=field)


def _validate(doc: dict[str, Any]) -> None:
    if not isinstance(doc["type"], str) or doc["type"] != DOCUMENT_TYPE:
        raise MalformedDocument("unknown document type", field="type")
    _one_of(doc, "kind", tuple(k.value for k in RequestKind))
    _one_of(doc, "asset", tuple(ASSETS))
    expect_int(doc, "amount_minor", minimum=1, maximum=AMOUNT_MINOR_MAX)
    expect_str(doc, "destination", chars_max=128, pattern=_DESTINATION)
    _one_of(doc, "source_wallet", SOURCE_WALLETS)
    expect_str(doc, "account", chars_max=64, pattern=_ACCOUNT)
    _one_of(doc, "fee_policy", FEE_POLICIES)
    expect_hex(doc, "nonce", length_bytes=NONCE_BYTES)
    expect_int(doc, "expires_at_s", minimum=0, maximum=EPOCH_S_MAX)
    expect_str(doc, "initiator", chars_max=71, pattern=_INITIATOR)


def request_from_json(value: Any) -> WithdrawalRequest:
    """Parse a request embedded as a JSON object in another document."""
    if not isinstance(value, dict):
        raise MalformedDocument("a request must be a JSON object")
    try:
        data = canonical_json(value)
    except Exception:  # a float or other value without canonical form
        raise MalformedDocument("request has no canonical encoding") from None
    return parse_request(data)


def parse_request(data: bytes) -> WithdrawalRequest:
    """Parse a request document strictly; `parse_request(r.encode()) == r`."""
    doc = parse_canonical_object(data, fields=_FIELDS, bytes_max=REQUEST_BYTES_MAX, what="request")
    _validate(doc)
    return WithdrawalRequest(
        kind=RequestKind(doc["kind"]), asset=doc["asset"], amount_minor=doc["amount_minor"],
        destination=doc["destination"], source_wallet=doc["source_wallet"], account=doc["account"],
        fee_policy=doc["fee_policy"], nonce=doc["nonce"], expires_at_s=doc["expires_at_s"],
        initiator=doc["initiator"])
