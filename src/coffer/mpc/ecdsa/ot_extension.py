"""OT extension: KOS (eprint 2015/546, Fig. 10, revised with the SoftSpokenOT analysis).

KAPPA base OTs are extended to BATCH correlated OTs of WIDTH scalars each ("forced reuse" of
DKLs23: one batch of the receiver's choices serves all of the sender's correlations).

- The receiver adds PAD_BITS random choice bits (l' = l + PAD_BITS), the check field is
  GF(2^208), and the receiver's check values are the universal hash of every column
  (chunk1*chi1 + chunk2*chi2 + chunk3) as in the revised Fig. 10; the sender verifies each column
  against its correlation bit. The challenges chi are derived by Fiat-Shamir from the setup's
  context and the receiver's whole matrix u (DKLs23 p. 30), so they are fixed after u.
- Each output row is hashed with the session context and its index (a tweakable hash), so pads
  of different sessions and rows are independent; the first BATCH rows are used, the padding
  rows are discarded.
- A failed check raises `OtConsistencyFailure` naming the receiver. Whether the check passes
  depends on the sender's secret correlation, so the caller must discard the setup for good.

hazmat: used by `coffer.mpc.ecdsa.vole` only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from coffer.mpc.ecdsa import gf2
from coffer.mpc.ecdsa.base_ot import KAPPA
from coffer.mpc.ecdsa.curve import DOMAIN, Q, Rng, tagged_hash
from coffer.mpc.ecdsa.errors import OtConsistencyFailure

__all__ = [
    "BATCH",
    "PAD_BITS",
    "EXTENDED",
    "WIDTH",
    "ExtensionMessage",
    "ReceiverExtension",
    "receiver_extend",
    "sender_extend",
    "COLUMN_BYTES",
]

STATISTICAL_SECURITY: Final = 80
BATCH: Final = 256 + 2 * STATISTICAL_SECURITY  # DKLs19 encoding length: kappa + 2s = 416
PAD_BITS: Final = gf2.FIELD_BITS  # 208 = 128 + 80: the KOS padding l' - l
EXTENDED: Final = BATCH + PAD_BITS  # 624 = 3 chunks of the check field
WIDTH: Final = 4  # 2 * ell scalars per OT (ell = 2 for DKLs23 signing)
COLUMN_BYTES: Final = EXTENDED // 8

Bits = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class ExtensionMessage:
    """Receiver -> sender: the matrix u (KAPPA columns) and the check values."""

    columns: bytes  # KAPPA * COLUMN_BYTES
    check_x: bytes  # FIELD_BYTES
    check_t: bytes  # KAPPA * FIELD_BYTES


@dataclass(slots=True)
class ReceiverExtension:
    """What the receiver keeps between its message and the sender's answer (secret)."""

    choices: Bits  # the BATCH real choice bits
    row_pads: list[list[int]]  # H(j, T_j): WIDTH scalars per row

    def __repr__(self) -> str:
        return "ReceiverExtension(<redacted>)"


def _prg(context: bytes, index: int, seed: bytes) -> bytes:
    hasher = hashlib.shake_256()
    hasher.update(DOMAIN + b"ote/prg" + len(context).to_bytes(4, "big") + context)
    hasher.update(index.to_bytes(2, "big") + seed)
    return hasher.digest(COLUMN_BYTES)


def _expand(context: bytes, seeds: list[bytes]) -> Bits:
    raw = np.frombuffer(b"".join(_prg(context, i, s) for i, s in enumerate(seeds)), dtype=np.uint8)
    return np.unpackbits(raw.reshape(KAPPA, COLUMN_BYTES), axis=1, bitorder="little")


def _challenges(context: bytes, columns: bytes) -> npt.NDArray[np.uint64]:
    """The check's universal hash, keyed by Fiat-Shamir challenges fixed after the matrix u."""
    digest = tagged_hash("ote/chi", [context, columns], 2 * gf2.FIELD_BYTES)
    first = int.from_bytes(digest[:gf2.FIELD_BYTES], "little")
    second = int.from_bytes(digest[gf2.FIELD_BYTES:], "little")
    return gf2.hash_tables(first, second)


def _row_pads(context: bytes, rows: Bits) -> list[list[int]]:
    """H(context, j, row_j) as WIDTH scalars per row (48 bytes each, bias below 2^-128)."""
    prefix = hashlib.shake_256()
    tag = DOMAIN + b"ote/row"
    prefix.update(len(tag).to_bytes(4, "big") + tag + len(context).to_bytes(4, "big") + context)
    pads = []
    for j in range(BATCH):
        hasher = prefix.copy()
        hasher.update(j.to_bytes(2, "big") + rows[j].tobytes())
        output = hasher.digest(48 * WIDTH)
        pads.append([int.from_bytes(output[48 * k:48 * k + 48], "big") % Q for k in range(WIDTH)])
    return pads


def receiver_extend(context: bytes, seeds0: list[bytes], seeds1: list[bytes], choices: Bits,
                    rng: Rng) -> tuple[ExtensionMessage, ReceiverExtension]:
    """The receiver's single message for BATCH choice bits, and what it keeps."""
    if len(choices) != BATCH or len(seeds0) != KAPPA or len(seeds1) != KAPPA:
        raise ValueError("wrong dimensions for OT extension")
    padding = np.unpackbits(np.frombuffer(rng(PAD_BITS // 8), dtype=np.uint8), bitorder="little")
    extended = np.concatenate([choices.astype(np.uint8), padding])
    t0 = _expand(context, seeds0)
    t1 = _expand(context, seeds1)
    packed_u = np.packbits(t0 ^ t1 ^ extended, axis=1, bitorder="little")
    columns = packed_u.tobytes()
    matrix = _challenges(context, columns)
    check_x = gf2.hash_columns(np.packbits(extended, bitorder="little")[None, :], matrix).tobytes()
    check_t = gf2.hash_columns(np.packbits(t0, axis=1, bitorder="little"), matrix).tobytes()
    rows = np.packbits(t0.T[:BATCH], axis=1, bitorder="little")
    message = ExtensionMessage(columns, check_x, check_t)
    return message, ReceiverExtension(choices.astype(np.uint8), _row_pads(context, rows))


def sender_extend(context: bytes, correlation: Bits, seeds: list[bytes], message: ExtensionMessage,
                  counterparty: int) -> tuple[list[list[int]], list[list[int]]]:
    """Checks the receiver's message (KOS) and returns the sender's two pads per row."""
    if (len(message.columns) != KAPPA * COLUMN_BYTES or len(message.check_x) != gf2.FIELD_BYTES
            or len(message.check_t) != KAPPA * gf2.FIELD_BYTES):
        raise OtConsistencyFailure("OT extension message has wrong dimensions",
                                   counterparties=[counterparty])
    columns_u = np.unpackbits(np.frombuffer(message.columns, dtype=np.uint8)
                              .reshape(KAPPA, COLUMN_BYTES), axis=1, bitorder="little")
    q = _expand(context, seeds) ^ (columns_u * correlation[:, None].astype(np.uint8))
    matrix = _challenges(context, message.columns)
    check_x = np.frombuffer(message.check_x, dtype=np.uint8)
    check_t = np.frombuffer(message.check_t, dtype=np.uint8).reshape(KAPPA, gf2.FIELD_BYTES)
    expected = check_t ^ (correlation[:, None].astype(np.uint8) * check_x[None, :])
    if not np.array_equal(gf2.hash_columns(np.packbits(q, axis=1, bitorder="little"), matrix), expected):
        raise OtConsistencyFailure("OT extension consistency check failed",
                                   counterparties=[counterparty])
    rows = np.packbits(q.T[:BATCH], axis=1, bitorder="little")
    delta = np.packbits(correlation.astype(np.uint8), bitorder="little")
    return _row_pads(context, rows), _row_pads(context, rows ^ delta[None, :])


def correlate(pads0: list[list[int]], pads1: list[list[int]],
              correlations: list[int]) -> tuple[list[list[int]], list[list[int]]]:
    """Sender's correlated-OT step: outputs z_A = pad0 and tau = pad1 - pad0 + alpha."""
    taus = [[(p1 - p0 + alpha) % Q for p0, p1, alpha in zip(row0, row1, correlations, strict=True)]
            for row0, row1 in zip(pads0, pads1, strict=True)]
    return pads0, taus


def receiver_output(keep: ReceiverExtension, taus: list[list[int]]) -> list[list[int]]:
    """Receiver's correlated-OT output: z_B = x_j * tau_j - H(T_j), so z_A + z_B = x_j * alpha."""
    outputs = []
    for choice, pads, tau_row in zip(keep.choices.tolist(), keep.row_pads, taus, strict=True):
        if choice:
            outputs.append([(t - p) % Q for t, p in zip(tau_row, pads, strict=True)])
        else:
            outputs.append([(-p) % Q for p in pads])
    return outputs
