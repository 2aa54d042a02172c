"""The verifiable random quorum draw.

seed = SHA-256(tag || chain tip hash at sealing || batch id || unsigned txid). The m nominees
are drawn from the n signers by a Fisher-Yates shuffle driven by SHA-256(seed || counter) with
rejection sampling, so anyone with the public inputs can re-run the draw and get the same set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from coffer.cold.errors import DrawMismatch

__all__ = ["DRAW_TAG", "Draw", "draw_quorum", "verify_draw"]

DRAW_TAG = b"coffer/cold/quorum-draw/v1"
ATTEMPT_MAX = 16


@dataclass(frozen=True, slots=True)
class Draw:
    batch_id: str
    tip_hash: str  # hex, as shown by getbestblockhash
    unsigned_txid: str
    signer_ids: tuple[int, ...]  # the candidates, in any order
    threshold: int
    attempt: int  # 0 for the first draw; a redraw (a nominee did not answer) increments it
    excluded: tuple[int, ...]  # signers excluded from this attempt, with the reason recorded elsewhere
    seed: str
    nominated: tuple[int, ...]

    def as_dict(self) -> dict[str, object]:
        return {"batch_id": self.batch_id, "tip_hash": self.tip_hash, "unsigned_txid": self.unsigned_txid,
                "signer_ids": list(self.signer_ids), "threshold": self.threshold, "attempt": self.attempt,
                "excluded": list(self.excluded), "seed": self.seed, "nominated": list(self.nominated)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Draw:
        try:
            return cls(str(data["batch_id"]), str(data["tip_hash"]), str(data["unsigned_txid"]),
                       tuple(int(x) for x in data["signer_ids"]),  # type: ignore[attr-defined]
                       int(data["threshold"]), int(data["attempt"]),  # type: ignore[call-overload]
                       tuple(int(x) for x in data["excluded"]),  # type: ignore[attr-defined]
                       str(data["seed"]), tuple(int(x) for x in data["nominated"]))  # type: ignore[attr-defined]
        except (KeyError, TypeError, ValueError) as exc:
            raise DrawMismatch(f"malformed draw: {exc}") from None


def _seed(batch_id: str, tip_hash: str, unsigned_txid: str, attempt: int) -> bytes:
    parts = [DRAW_TAG, bytes.fromhex(tip_hash), batch_id.encode(), bytes.fromhex(unsigned_txid),
             attempt.to_bytes(4, "big")]
    return hashlib.sha256(b"".join(len(p).to_bytes(2, "big") + p for p in parts)).digest()


def _uniform(seed: bytes, counter: list[int], bound: int) -> int:
    limit = (1 << 64) - ((1 << 64) % bound)
    while True:
        block = hashlib.sha256(seed + counter[0].to_bytes(8, "big")).digest()
        counter[0] += 1
        value = int.from_bytes(block[:8], "big")
        if value < limit:
            return value % bound


def draw_quorum(*, batch_id: str, tip_hash: str, unsigned_txid: str, signer_ids: tuple[int, ...],
                threshold: int, attempt: int = 0, excluded: tuple[int, ...] = ()) -> Draw:
    if attempt < 0 or attempt > ATTEMPT_MAX:
        raise DrawMismatch(f"attempt must be 0..{ATTEMPT_MAX}")
    if len(set(signer_ids)) != len(signer_ids):
        raise DrawMismatch("duplicate signer ids")
    candidates = sorted(set(signer_ids) - set(excluded))
    if len(candidates) < threshold or threshold < 1:
        raise DrawMismatch(f"only {len(candidates)} candidates for a quorum of {threshold}")
    seed = _seed(batch_id, tip_hash, unsigned_txid, attempt)
    counter = [0]
    pool = list(candidates)
    for i in range(len(pool) - 1, 0, -1):
        j = _uniform(seed, counter, i + 1)
        pool[i], pool[j] = pool[j], pool[i]
    return Draw(batch_id, tip_hash, unsigned_txid, tuple(sorted(signer_ids)), threshold, attempt,
                tuple(sorted(excluded)), seed.hex(), tuple(sorted(pool[:threshold])))


def verify_draw(draw: Draw) -> None:
    """Recompute the draw from its public inputs; raise DrawMismatch when anything differs."""
    again = draw_quorum(batch_id=draw.batch_id, tip_hash=draw.tip_hash, unsigned_txid=draw.unsigned_txid,
                        signer_ids=draw.signer_ids, threshold=draw.threshold, attempt=draw.attempt,
                        excluded=draw.excluded)
    if again != draw:
        raise DrawMismatch(f"draw for batch {draw.batch_id} does not recompute")
