"""Reserves: custody addresses with their balances at the snapshot height and proofs of control.

Pure: the addresses, balances (as the chain reports them at the height) and the BIP-322
signatures come in; the reserves document comes out. Signers sign `reserves_challenge(...)`,
which binds the asset, chain, height and block hash, so an old proof cannot be replayed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from embit.script import address_to_scriptpubkey

from coffer.por.errors import ReservesError
from coffer.por.verify import RESERVES_FORMAT, reserves_challenge, verify_reserves_document

__all__ = ["ReserveEntry", "KeyProof", "ControlProof", "build_reserves_document", "reserves_challenge"]

KINDS = ("cold", "hot", "deposit")


@dataclass(frozen=True, slots=True)
class ControlProof:
    """A BIP-322 signature over the challenge for one address, by a named signer (or signer set)."""

    signer: str
    signature: str


@dataclass(frozen=True, slots=True)
class KeyProof:
    """One cold signer's own key proven by a P2WPKH BIP-322 signature (each signer signs)."""

    signer: str
    address: str
    signature: str


@dataclass(frozen=True, slots=True)
class ReserveEntry:
    """One custody address, its balance at the snapshot height and its key descriptor."""

    address: str
    balance: int
    kind: str
    descriptor: str | None = None
    proofs: tuple[ControlProof, ...] = field(default_factory=tuple)


def build_reserves_document(asset: str, chain: str, height: int, block_hash: str, entries: Sequence[ReserveEntry], *,
                            descriptors: Sequence[str] = (), key_proofs: Sequence[KeyProof] = ()) -> dict[str, Any]:
    """The public reserves document; checked by the stand-alone verifier before it is returned."""
    rows: list[dict[str, Any]] = []
    for entry in entries:
        if entry.kind not in KINDS:
            raise ReservesError(f"{entry.address}: kind must be one of {KINDS}")
        if not 0 <= entry.balance < (1 << 64 if asset == "BTC" else 1 << 256):
            raise ReservesError(f"{entry.address}: balance out of range")
        if not entry.proofs:
            raise ReservesError(f"{entry.address}: no proof of control")
        script = address_to_scriptpubkey(entry.address).data.hex() if asset == "BTC" else ""
        rows.append({"address": entry.address, "descriptor": entry.descriptor or f"addr({entry.address})",
                     "script_pubkey": script, "balance": entry.balance, "kind": entry.kind,
                     "proofs": [{"signer": p.signer, "signature": p.signature} for p in entry.proofs]})
    document = {
        "format": RESERVES_FORMAT, "asset": asset, "chain": chain, "height": height, "block_hash": block_hash,
        "challenge": reserves_challenge(asset, chain, height, block_hash).decode(),
        "descriptors": list(descriptors), "entries": rows,
        "key_proofs": [{"signer": k.signer, "address": k.address, "signature": k.signature} for k in key_proofs],
        "total": sum(row["balance"] for row in rows),
    }
    verify_reserves_document(document)  # check before publishing what a client will check after
    return document


def entries_by_address(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {entry["address"]: entry for entry in document["entries"]}
