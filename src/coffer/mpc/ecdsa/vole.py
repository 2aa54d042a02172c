"""Random VOLE of DKLs23 (Functionality 3.5) by the multiplication of DKLs19 (Protocol 1).

Bob (the OT-extension receiver) gets a random scalar b = <g, beta> from random choice bits beta
and a vector d; Alice inputs a = (a_1, a_2) and gets c with c_k + d_k = a_k * b.

Two messages, Bob -> Alice (the extension matrix and its KOS check) and Alice -> Bob (the
corrections tau, the check values and the adjustments gamma = a - a~). The check of DKLs19
(chi~ * z~ + chi^ * z^ against beta_j * u - r_j, one pair of challenges per input) is made
non-interactive as in DKLs23 §5.1: the challenges are a hash of the session context, Bob's
message and Alice's corrections tau (so Alice fixes every correlation before she learns them),
and Alice sends only a hash of r. A failure raises `MultiplicationCheckFailure` naming Alice.

hazmat: used by `coffer.mpc.ecdsa.sign` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from coffer.mpc.ecdsa.curve import Q, Rng, hash_to_scalars, random_scalar, tagged_hash
from coffer.mpc.ecdsa.errors import MultiplicationCheckFailure
from coffer.mpc.ecdsa.ot_extension import (
    BATCH,
    WIDTH,
    ExtensionMessage,
    ReceiverExtension,
    correlate,
    receiver_extend,
    receiver_output,
    sender_extend,
)

__all__ = ["ELL", "AliceMessage", "BobState", "bob_start", "alice_respond", "bob_finish", "gadget_vector"]

ELL: Final = 2  # Alice's inputs per VOLE in DKLs23 signing: (r_j, sk_j)


@dataclass(frozen=True, slots=True)
class AliceMessage:
    """Alice -> Bob: OT corrections (BATCH x WIDTH), hash of r, u (ELL) and gamma (ELL)."""

    taus: list[list[int]]
    check_r: bytes
    check_u: list[int]
    gammas: list[int]


@dataclass(slots=True)
class BobState:
    """Bob's secret between his message and Alice's answer."""

    b: int
    extension: ReceiverExtension
    transcript: bytes

    def __repr__(self) -> str:
        return "BobState(<redacted>)"


def gadget_vector(context: bytes) -> list[int]:
    """The public gadget vector g (BATCH random scalars) of the DKLs19 encoding."""
    return [hash_to_scalars("vole/gadget", [context, j.to_bytes(2, "big")], 1)[0]
            for j in range(BATCH)]


def _message_digest(message: ExtensionMessage) -> bytes:
    return tagged_hash("vole/bob", [message.columns, message.check_x, message.check_t])


def _taus_bytes(taus: list[list[int]]) -> bytes:
    return b"".join(value.to_bytes(32, "big") for row in taus for value in row)


def _challenges(context: bytes, transcript: bytes, taus: list[list[int]]) -> list[int]:
    return hash_to_scalars("vole/chi", [context, transcript, _taus_bytes(taus)], 2 * ELL)


def _check_hash(context: bytes, rows: list[list[int]]) -> bytes:
    return tagged_hash("vole/r", [context, b"".join(v.to_bytes(32, "big") for row in rows for v in row)])


def bob_start(context: bytes, seeds0: list[bytes], seeds1: list[bytes], gadget: list[int],
              rng: Rng) -> tuple[ExtensionMessage, BobState]:
    choices = np.unpackbits(np.frombuffer(rng(BATCH // 8), dtype=np.uint8), bitorder="little")
    b = sum(g for g, bit in zip(gadget, choices.tolist(), strict=True) if bit) % Q
    message, keep = receiver_extend(context, seeds0, seeds1, choices, rng)
    return message, BobState(b, keep, _message_digest(message))


def alice_respond(context: bytes, correlation: np.ndarray, seeds: list[bytes], gadget: list[int],
                  inputs: list[int], message: ExtensionMessage, counterparty: int,
                  rng: Rng) -> tuple[AliceMessage, list[int]]:
    """Alice's answer for inputs a (ELL scalars) and her output c (ELL scalars)."""
    pads0, pads1 = sender_extend(context, correlation, seeds, message, counterparty)
    pads = [random_scalar(rng) for _ in range(2 * ELL)]  # a~_1, a~_2, a^_1, a^_2
    z_alice, taus = correlate(pads0, pads1, pads)
    chis = _challenges(context, _message_digest(message), taus)
    rows = [[(chis[k] * z[k] + chis[ELL + k] * z[ELL + k]) % Q for z in z_alice] for k in range(ELL)]
    check_u = [(chis[k] * pads[k] + chis[ELL + k] * pads[ELL + k]) % Q for k in range(ELL)]
    gammas = [(inputs[k] - pads[k]) % Q for k in range(ELL)]
    outputs = [sum(g * z[k] for g, z in zip(gadget, z_alice, strict=True)) % Q for k in range(ELL)]
    return AliceMessage(taus, _check_hash(context, rows), check_u, gammas), outputs


def bob_finish(context: bytes, state: BobState, gadget: list[int], message: AliceMessage,
               counterparty: int) -> list[int]:
    """Checks Alice's answer and returns Bob's output d (ELL scalars)."""
    if len(message.taus) != BATCH or any(len(row) != WIDTH for row in message.taus):
        raise MultiplicationCheckFailure("VOLE corrections have wrong dimensions",
                                         counterparties=[counterparty])
    z_bob = receiver_output(state.extension, message.taus)
    chis = _challenges(context, state.transcript, message.taus)
    choices = state.extension.choices.tolist()
    rows = [[((message.check_u[k] if bit else 0) - chis[k] * z[k] - chis[ELL + k] * z[ELL + k]) % Q
             for bit, z in zip(choices, z_bob, strict=True)] for k in range(ELL)]
    if _check_hash(context, rows) != message.check_r:
        raise MultiplicationCheckFailure("VOLE consistency check failed",
                                         counterparties=[counterparty])
    return [(sum(g * z[k] for g, z in zip(gadget, z_bob, strict=True)) + message.gammas[k] * state.b) % Q
            for k in range(ELL)]
