"""Writing a snapshot directory: everything public, plus each client's private proof elsewhere.

Public (the snapshot directory): `snapshot.json` (roots, totals, leaf counts), per asset
`liabilities-<A>.txt` (BitMEX tree format), `reserves-<A>.json`, `reserves-<A>.yaml` (BitMEX,
bitcoin only) and `statement-<A>.json`, and `log.jsonl` (the public log so far).
Private (`proofs_dir`, delivered through each client's security centre): `<A>/<account>.bin`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coffer.por.bitmex import reserves_yaml, write_liabilities_file
from coffer.por.errors import PorError
from coffer.por.liabilities import (
    PARTS_DEFAULT,
    Liability,
    LiabilityTree,
    RandomBytes,
    build_liabilities_tree,
)
from coffer.por.statement import PublicLog, Signer, sign_statement, solvency_statement
from coffer.por.verify import serialize_inclusion_proof

__all__ = ["BitmexReservesOptions", "SnapshotResult", "publish_snapshot"]


@dataclass(frozen=True, slots=True)
class BitmexReservesOptions:
    """What BitMEX's reserves YAML needs beyond the reserves document."""

    threshold: int
    signer_count: int
    key_strings: tuple[str, ...]
    uncompressed_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    directory: Path
    trees: Mapping[str, LiabilityTree]
    statements: Mapping[str, Mapping[str, Any]]


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, sort_keys=True, indent=1) + "\n", encoding="utf-8")


def publish_snapshot(directory: Path, *, chain: str, height: int, block_hash: str,
                     liabilities: Mapping[str, Sequence[Liability] | Sequence[tuple[int, int]]],
                     nonces: Mapping[int, bytes], reserves: Mapping[str, Mapping[str, Any]], sign: Signer,
                     public_key: bytes, log_path: Path, proofs_dir: Path | None = None,
                     bitmex: BitmexReservesOptions | None = None, parts: int = PARTS_DEFAULT,
                     rng: RandomBytes = os.urandom) -> SnapshotResult:
    """Build every tree, sign every statement, append them to the log and write the directory."""
    if set(liabilities) != set(reserves):
        raise PorError("each asset needs both liabilities and reserves")
    directory.mkdir(parents=True, exist_ok=False)
    log = PublicLog(log_path, public_key)
    trees: dict[str, LiabilityTree] = {}
    statements: dict[str, Mapping[str, Any]] = {}
    assets: dict[str, Any] = {}
    for asset in sorted(liabilities):
        document = reserves[asset]
        if asset == "BTC" and (document["height"], document["block_hash"], document["chain"]) != (height, block_hash, chain):
            raise PorError(f"{asset}: reserves are for another snapshot")
        tree = build_liabilities_tree(asset, height, liabilities[asset], nonces, parts=parts, rng=rng)
        statement = solvency_statement(chain, block_hash, tree.published_root(), document)
        _write_json(directory / f"statement-{asset}.json",
                    {"statement": statement, "signature": sign_statement(statement, sign).hex()})
        log.append(statement, sign)
        write_liabilities_file(tree, directory / f"liabilities-{asset}.txt")
        _write_json(directory / f"reserves-{asset}.json", document)
        if asset == "BTC" and bitmex is not None:
            (directory / "reserves-BTC.yaml").write_text(reserves_yaml(
                document, threshold=bitmex.threshold, signer_count=bitmex.signer_count,
                uncompressed_keys=bitmex.uncompressed_keys, key_strings=bitmex.key_strings), encoding="utf-8")
        if proofs_dir is not None:
            _write_proofs(tree, liabilities[asset], proofs_dir / asset)
        assets[asset] = {"liabilities_root": tree.root.hex(), "liabilities_total": tree.total,
                         "leaf_count": tree.leaf_count}
        trees[asset], statements[asset] = tree, statement
    _write_json(directory / "snapshot.json", {"format": "coffer-por-snapshot/1", "chain": chain, "height": height,
                                              "block_hash": block_hash, "assets": assets})
    (directory / "log.jsonl").write_bytes(log_path.read_bytes())
    return SnapshotResult(directory, trees, statements)


def _write_proofs(tree: LiabilityTree, items: Sequence[Liability] | Sequence[tuple[int, int]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for item in items:
        account = item.account_number if isinstance(item, Liability) else int(item[0])
        (out / f"{account}.bin").write_bytes(serialize_inclusion_proof(tree.proof_for(account)))
