"""Solvency statements and the hash-chained public log they are appended to.

A statement per asset names the liabilities root and total, the reserves total and the digest
of the reserves document, at one height and block hash, and says whether reserves cover
liabilities. It is signed by an Ed25519 key through a `sign(message) -> 64 bytes` callable
(the FROST Ed25519 group key: the signature is made jointly, no key comes here). Each log entry
names the digest of the one before it and is signed as a whole, so history cannot be rewritten.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from coffer.invariant import invariant
from coffer.por.verify import (
    LOG_ENTRIES_MAX,
    STATEMENT_FORMAT,
    ZERO_HASH,
    PublishedRoot,
    canonical_json,
    log_entry_digest,
    log_entry_message,
    statement_message,
    tree_unit_scale,
    verify_log,
)

__all__ = ["Signer", "solvency_statement", "sign_statement", "PublicLog"]

Signer = Callable[[bytes], bytes]


def solvency_statement(chain: str, block_hash: str, liabilities: PublishedRoot,
                       reserves_document: Mapping[str, Any]) -> dict[str, Any]:
    """The statement for one asset; `solvent` is computed, never passed in."""
    invariant(reserves_document["asset"] == liabilities.asset, "reserves and liabilities of different assets")
    if liabilities.asset == "BTC":
        invariant(reserves_document["height"] == liabilities.height, "reserves and liabilities at different heights")
    # Both totals in the tree's unit: reserves rounded down (ETH: wei to gwei), never flattering.
    reserves_total = int(reserves_document["total"]) // tree_unit_scale(liabilities.asset)
    return {
        "format": STATEMENT_FORMAT, "asset": liabilities.asset, "chain": chain, "height": liabilities.height,
        "block_hash": block_hash, "liabilities_root": liabilities.root.hex(),
        "liabilities_total": liabilities.total, "leaf_count": liabilities.leaf_count,
        "reserves_total": reserves_total,
        "reserves_digest": hashlib.sha256(canonical_json(dict(reserves_document))).hexdigest(),
        "solvent": reserves_total >= liabilities.total,
    }


def _signed(sign: Signer, message: bytes) -> bytes:
    signature = sign(message)
    invariant(len(signature) == 64, "an Ed25519 signature is 64 bytes")
    return signature


def sign_statement(statement: Mapping[str, Any], sign: Signer) -> bytes:
    return _signed(sign, statement_message(statement))


class PublicLog:
    """An append-only JSON-lines file; each line is {seq, prev, statement, signature}."""

    def __init__(self, path: Path, public_key: bytes) -> None:
        self.path = path
        self.public_key = public_key

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return verify_log(self.path.read_text(encoding="utf-8").splitlines(), self.public_key)

    def append(self, statement: Mapping[str, Any], sign: Signer) -> dict[str, Any]:
        """Verify the chain so far (check before writing), then append one signed entry."""
        entries = self.entries()
        invariant(len(entries) < LOG_ENTRIES_MAX, "public log full")
        seq = len(entries)
        prev = log_entry_digest(entries[-1]) if entries else ZERO_HASH
        signature = _signed(sign, log_entry_message(seq, prev, statement))
        entry = {"seq": seq, "prev": prev, "statement": dict(statement), "signature": signature.hex()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n")
        invariant(len(self.entries()) == seq + 1, "log entry did not read back")  # and after
        return entry
