"""The verifiable random quorum draw.

seed = SHA-256(tag || chain tip hash at sealing || batch id || unsigned txid). The m nominees
are drawn from the n signers by a Fisher-Yates shuffle driven by SHA-256(seed || counter) with
rejection sampling, so anyone with the public inputs can re-run the draw and get the same set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from coffer.cold.errors import DrawMismatch

__all__ = ["DRAW_TAG", "Draw", "draw_quorum", "verify_draw", "audit_draws", "REDRAWS_MAX"]

DRAW_TAG = b"coffer/cold/quorum-draw/v1"
REDRAWS_MAX = 3  # after the first draw, at most this many redraws, each after a recorded time-out


@dataclass(frozen=True, slots=True)
class Draw:
    batch_id: str
    tip_hash: str  # hex, as shown by getbestblockhash
    unsigned_txid: str
    signer_ids: tuple[int, ...]  # the candidates, in any order
    threshold: int
    attempt: int  # 0 for the first draw; each redraw after a time-out increments it
    excluded: tuple[int, ...]  # every signer that timed out in an earlier attempt (nobody else)
    seed: str
    nominated: tuple[int, ...]
    timed_out: tuple[tuple[int, ...], ...] = ()  # per earlier attempt: its nominees that did not answer

    def as_dict(self) -> dict[str, object]:
        return {"batch_id": self.batch_id, "tip_hash": self.tip_hash, "unsigned_txid": self.unsigned_txid,
                "signer_ids": list(self.signer_ids), "threshold": self.threshold, "attempt": self.attempt,
                "excluded": list(self.excluded), "seed": self.seed, "nominated": list(self.nominated),
                "timed_out": [list(ids) for ids in self.timed_out]}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Draw:
        try:
            timed_out = tuple(tuple(int(x) for x in ids) for ids in data.get("timed_out", []))  # type: ignore[attr-defined]
            return cls(str(data["batch_id"]), str(data["tip_hash"]), str(data["unsigned_txid"]),
                       tuple(int(x) for x in data["signer_ids"]),  # type: ignore[attr-defined]
                       int(data["threshold"]), int(data["attempt"]),  # type: ignore[call-overload]
                       tuple(int(x) for x in data["excluded"]),  # type: ignore[attr-defined]
                       str(data["seed"]), tuple(int(x) for x in data["nominated"]),  # type: ignore[attr-defined]
                       timed_out)
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


def _nominate(seed: bytes, candidates: list[int], threshold: int) -> tuple[int, ...]:
    counter = [0]
    pool = list(candidates)
    for i in range(len(pool) - 1, 0, -1):
        j = _uniform(seed, counter, i + 1)
        pool[i], pool[j] = pool[j], pool[i]
    return tuple(sorted(pool[:threshold]))


def draw_quorum(*, batch_id: str, tip_hash: str, unsigned_txid: str, signer_ids: tuple[int, ...],
                threshold: int, timed_out: tuple[tuple[int, ...], ...] = ()) -> Draw:
    """The draw after `timed_out` (one entry per earlier attempt: which of its nominees did not answer).

    Each time-out must name nominees of that very attempt, so the coordinator can only ever exclude a
    signer the draw itself picked, and at most REDRAWS_MAX times."""
    if len(timed_out) > REDRAWS_MAX:
        raise DrawMismatch(f"at most {REDRAWS_MAX} redraws")
    if len(set(signer_ids)) != len(signer_ids):
        raise DrawMismatch("duplicate signer ids")
    excluded: set[int] = set()
    nominated: tuple[int, ...] = ()
    seed = b""
    for attempt in range(len(timed_out) + 1):
        candidates = sorted(set(signer_ids) - excluded)
        if len(candidates) < threshold or threshold < 1:
            raise DrawMismatch(f"only {len(candidates)} candidates for a quorum of {threshold}")
        seed = _seed(batch_id, tip_hash, unsigned_txid, attempt)
        nominated = _nominate(seed, candidates, threshold)
        if attempt < len(timed_out):
            silent = set(timed_out[attempt])
            if not silent or not silent <= set(nominated) or len(silent) != len(timed_out[attempt]):
                raise DrawMismatch(f"attempt {attempt}: a time-out may only name that attempt's nominees")
            excluded |= silent
    return Draw(batch_id, tip_hash, unsigned_txid, tuple(sorted(signer_ids)), threshold, len(timed_out),
                tuple(sorted(excluded)), seed.hex(), nominated, tuple(tuple(sorted(ids)) for ids in timed_out))


def verify_draw(draw: Draw) -> None:
    """Recompute the draw, every earlier attempt included, from its public inputs; raise DrawMismatch."""
    again = draw_quorum(batch_id=draw.batch_id, tip_hash=draw.tip_hash, unsigned_txid=draw.unsigned_txid,
                        signer_ids=draw.signer_ids, threshold=draw.threshold, timed_out=draw.timed_out)
    if again != draw:
        raise DrawMismatch(f"draw for batch {draw.batch_id} does not recompute")


def audit_draws(draws: list[Draw], *, batch_id: str, unsigned_txid: str, tip_hash: str,
                signer_ids: tuple[int, ...], threshold: int) -> None:
    """Question a batch's whole draw record: each attempt recomputes, attempts run 0..k with nothing
    skipped, each one's time-outs extend the one before, and batch id, transaction, tip, signer set and
    threshold are the sealed batch's. Raises DrawMismatch naming the first thing that does not hold."""
    if not draws:
        raise DrawMismatch(f"no draw recorded for {batch_id}")
    for index, draw in enumerate(draws):
        where = f"attempt {draw.attempt}"
        if draw.attempt != index:
            raise DrawMismatch(f"{where}: attempts are not 0..{len(draws) - 1} in order")
        if (draw.batch_id, draw.unsigned_txid, draw.tip_hash) != (batch_id, unsigned_txid, tip_hash):
            raise DrawMismatch(f"{where}: batch id, transaction or tip differ from the sealed batch")
        if draw.signer_ids != tuple(sorted(signer_ids)) or draw.threshold != threshold:
            raise DrawMismatch(f"{where}: not over the wallet's signers and threshold")
        if index and draw.timed_out[:-1] != draws[index - 1].timed_out:
            raise DrawMismatch(f"{where}: its time-outs rewrite an earlier attempt's")
        verify_draw(draw)
