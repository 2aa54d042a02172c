"""What an Ethereum co-signer signs: an `EthSpend`, from which it derives the EIP-1559 digest itself.

An `EthSpend` is a plain ether transfer (no calldata, 21,000 gas) from the hot address (path ())
or from one deposit address (path (index,)) of a threshold ECDSA key. The co-signers never get a
digest from the coordinator: each one rebuilds the transaction from these fields, checks them
against the approved request (or, for a deposit sweep, that the destination is the key's own hot
address) and bounds, and hashes it (`digest()`). Pure functions; no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from eth_utils.address import to_checksum_address

from coffer.chain.ethereum import Eip1559Tx
from coffer.eth.errors import EthSpendInvalid

__all__ = ["EthSpend", "WITHDRAWAL", "DEPOSIT_SWEEP", "KINDS", "TRANSFER_GAS", "MAX_FEE_WEI_MAX",
           "VALUE_WEI_MAX", "DEPOSIT_INDEX_MAX", "normalise_address"]

WITHDRAWAL: Final = "withdrawal"
DEPOSIT_SWEEP: Final = "deposit_sweep"
KINDS: Final = (WITHDRAWAL, DEPOSIT_SWEEP)
TRANSFER_GAS: Final = 21_000
MAX_FEE_WEI_MAX: Final = 1_000 * 10**9  # 1,000 gwei: above this a co-signer refuses the fee
VALUE_WEI_MAX: Final = 10**30
NONCE_MAX: Final = 2**63 - 1
CHAIN_ID_MAX: Final = 2**63 - 1
DEPOSIT_INDEX_MAX: Final = 2**31 - 1
_ADDRESS: Final = re.compile(r"^0x[0-9a-fA-F]{40}$")
_FIELDS: Final = ("kind", "chain_id", "nonce", "max_priority_fee_wei", "max_fee_wei", "gas", "to", "value_wei",
                  "path")


def normalise_address(text: str) -> str:
    """The EIP-55 checksummed spelling; a wrong mixed-case checksum is refused."""
    if not isinstance(text, str) or not _ADDRESS.fullmatch(text):
        raise EthSpendInvalid("not a 0x-prefixed 20-byte hex address", rule="eth.address")
    checksummed = str(to_checksum_address(text))
    body = text[2:]
    if body != body.lower() and body != body.upper() and text != checksummed:
        raise EthSpendInvalid("address checksum (EIP-55) does not match", rule="eth.address")
    return checksummed


def _int(data: dict[str, Any], name: str, minimum: int, maximum: int) -> int:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise EthSpendInvalid(f"{name} must be an integer in {minimum}..{maximum}")
    return value


@dataclass(frozen=True, slots=True)
class EthSpend:
    """A plain ether transfer, as the coordinator proposes it and every co-signer re-derives it."""

    kind: str
    chain_id: int
    nonce: int
    max_priority_fee_wei: int
    max_fee_wei: int
    gas: int
    to: str  # EIP-55
    value_wei: int
    path: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise EthSpendInvalid(f"unknown spend kind {self.kind!r}", rule="eth.kind")
        object.__setattr__(self, "to", normalise_address(self.to))
        if self.gas != TRANSFER_GAS:
            raise EthSpendInvalid(f"a plain transfer uses exactly {TRANSFER_GAS} gas", rule="eth.gas")
        if not 0 < self.max_fee_wei <= MAX_FEE_WEI_MAX:
            raise EthSpendInvalid("max fee out of bounds", rule="eth.fee")
        if not 0 <= self.max_priority_fee_wei <= self.max_fee_wei:
            raise EthSpendInvalid("priority fee above the max fee", rule="eth.fee")
        if not 0 < self.value_wei <= VALUE_WEI_MAX:
            raise EthSpendInvalid("value out of bounds", rule="eth.value")
        if not 0 <= self.nonce <= NONCE_MAX or not 0 < self.chain_id <= CHAIN_ID_MAX:
            raise EthSpendInvalid("nonce or chain id out of range")
        if self.kind == WITHDRAWAL and self.path != ():
            raise EthSpendInvalid("withdrawals are paid from the hot address only", rule="eth.path")
        if self.kind == DEPOSIT_SWEEP and (len(self.path) != 1 or not 0 <= self.path[0] <= DEPOSIT_INDEX_MAX):
            raise EthSpendInvalid("a deposit sweep names one non-hardened deposit index", rule="eth.path")

    def tx(self) -> Eip1559Tx:
        return Eip1559Tx(chain_id=self.chain_id, nonce=self.nonce, max_priority_fee_wei=self.max_priority_fee_wei,
                         max_fee_wei=self.max_fee_wei, gas=self.gas, to=bytes.fromhex(self.to[2:]),
                         value_wei=self.value_wei)

    def digest(self) -> bytes:
        """keccak256(0x02 || rlp(fields)): what the key signs, derived here, never received."""
        return self.tx().signing_hash()

    @property
    def max_cost_wei(self) -> int:
        return self.value_wei + self.gas * self.max_fee_wei

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "chain_id": self.chain_id, "nonce": self.nonce,
                "max_priority_fee_wei": self.max_priority_fee_wei, "max_fee_wei": self.max_fee_wei,
                "gas": self.gas, "to": self.to, "value_wei": self.value_wei, "path": list(self.path)}

    @classmethod
    def from_json(cls, data: Any) -> EthSpend:
        """Strict: exactly the known fields, integers in range, a checksummed or single-case address."""
        if not isinstance(data, dict) or set(data) != set(_FIELDS):
            raise EthSpendInvalid(f"a spend has exactly the fields {list(_FIELDS)}")
        path = data["path"]
        if not isinstance(path, list) or len(path) > 1 or any(
                isinstance(i, bool) or not isinstance(i, int) for i in path):
            raise EthSpendInvalid("path must be a list of at most one integer", rule="eth.path")
        if not isinstance(data["kind"], str):
            raise EthSpendInvalid("kind must be a string", rule="eth.kind")
        return cls(data["kind"], _int(data, "chain_id", 1, CHAIN_ID_MAX), _int(data, "nonce", 0, NONCE_MAX),
                   _int(data, "max_priority_fee_wei", 0, MAX_FEE_WEI_MAX),
                   _int(data, "max_fee_wei", 1, MAX_FEE_WEI_MAX), _int(data, "gas", 1, 10**7),
                   data["to"] if isinstance(data["to"], str) else "", _int(data, "value_wei", 1, VALUE_WEI_MAX),
                   tuple(path))
