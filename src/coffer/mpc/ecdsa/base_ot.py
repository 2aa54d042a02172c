"""Base OT: the Verified Simplest OT of DKLs18 (eprint 2018/499, Protocol 7), batched.

Used only to seed the OT extension: the OT-extension receiver plays the base-OT *sender* (it gets
both pads of each of the KAPPA OTs) and the OT-extension sender plays the base-OT *receiver* with
its secret correlation bits as choices.

Every check of the paper is performed, and the flaws reported as "Devious Transfer" (2024) are
closed: the sender proves knowledge of b (Schnorr proof bound to the setup id and the point);
every received point is parsed strictly (on the curve, never the identity), A_k = B is refused
(b(A_k - B) would be the identity); each pad is hashed with the setup id, the OT index, B and A_k,
so no two OTs share a pad; the verification rounds (challenge, response, opening) are all checked
on both sides. Any failure raises `BaseOtFailure`: a receiver's abort can reveal a choice bit, so
the caller must throw the whole setup away (and never retry it).

hazmat: used by `coffer.mpc.ecdsa.setup` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from coffer.mpc.ecdsa.curve import (
    IdentityResult,
    Point,
    Q,
    Rng,
    add,
    base_mul,
    hash_to_scalars,
    mul,
    point_bytes,
    random_nonzero_scalar,
    sub,
    tagged_hash,
)
from coffer.mpc.ecdsa.errors import BaseOtFailure

__all__ = ["KAPPA", "DlogProof", "BaseOtSender", "BaseOtReceiver", "prove_dlog", "verify_dlog"]

KAPPA: Final = 256  # number of base OTs = computational security parameter


@dataclass(frozen=True, slots=True)
class DlogProof:
    """Schnorr proof of knowledge of b with B = b*G, bound to a context."""

    commitment: Point
    response: int


def prove_dlog(context: bytes, secret: int, public: Point, rng: Rng) -> DlogProof:
    nonce = random_nonzero_scalar(rng)
    commitment = base_mul(nonce)
    (challenge,) = hash_to_scalars(
        "dlog", [context, point_bytes(public), point_bytes(commitment)], 1)
    return DlogProof(commitment, (nonce + challenge * secret) % Q)


def verify_dlog(context: bytes, public: Point, proof: DlogProof) -> bool:
    (challenge,) = hash_to_scalars(
        "dlog", [context, point_bytes(public), point_bytes(proof.commitment)], 1)
    try:
        expected = add([proof.commitment, mul(public, challenge)])
        return point_bytes(base_mul(proof.response)) == point_bytes(expected)
    except IdentityResult:
        return False


def _pad(context: bytes, index: int, sender_point: Point, receiver_point: Point,
         shared: Point) -> bytes:
    return tagged_hash("vsot/pad", [context, index.to_bytes(2, "big"), point_bytes(sender_point),
                                    point_bytes(receiver_point), point_bytes(shared)])


def _h(context: bytes, index: int, data: bytes) -> bytes:
    return tagged_hash("vsot/verify", [context, index.to_bytes(2, "big"), data])


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


@dataclass(slots=True)
class BaseOtSender:
    """Base-OT sender (the OT-extension receiver): ends with both pads of every OT."""

    context: bytes
    counterparty: int
    _secret: int = 0
    public: Point | None = None
    _pads0: list[bytes] = field(default_factory=list)
    _pads1: list[bytes] = field(default_factory=list)
    _challenges: list[bytes] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"BaseOtSender(counterparty={self.counterparty}, <redacted>)"

    def message1(self, rng: Rng) -> tuple[Point, DlogProof]:
        self._secret = random_nonzero_scalar(rng)
        self.public = base_mul(self._secret)
        return self.public, prove_dlog(self.context, self._secret, self.public, rng)

    def message3(self, receiver_points: list[Point]) -> list[bytes]:
        """Pads from the receiver's points, and the verification challenges xi_k."""
        if self.public is None or len(receiver_points) != KAPPA:
            raise BaseOtFailure("base OT points missing", counterparties=[self.counterparty])
        shifted = mul(self.public, self._secret)  # b*B, so b*(A - B) = b*A - b*B
        for index, point in enumerate(receiver_points):
            if point_bytes(point) == point_bytes(self.public):
                raise BaseOtFailure("base OT point equals the sender's", counterparties=[self.counterparty])
            try:
                shared0 = mul(point, self._secret)
                shared1 = sub(shared0, shifted)
            except IdentityResult as error:
                raise BaseOtFailure("base OT point gives the identity",
                                    counterparties=[self.counterparty]) from error
            pad0 = _pad(self.context, index, self.public, point, shared0)
            pad1 = _pad(self.context, index, self.public, point, shared1)
            self._pads0.append(pad0)
            self._pads1.append(pad1)
            challenge = _xor(_h(self.context, index, _h(self.context, index, pad0)),
                             _h(self.context, index, _h(self.context, index, pad1)))
            self._challenges.append(challenge)
        self._secret = 0
        return list(self._challenges)

    def message5(self, responses: list[bytes]) -> list[tuple[bytes, bytes]]:
        """Checks each response rho'_k = H(H(pad0_k)) and opens (H(pad0_k), H(pad1_k))."""
        if len(responses) != KAPPA or len(self._pads0) != KAPPA:
            raise BaseOtFailure("base OT responses missing", counterparties=[self.counterparty])
        openings = []
        for index, response in enumerate(responses):
            hashed0 = _h(self.context, index, self._pads0[index])
            if _h(self.context, index, hashed0) != response:
                raise BaseOtFailure("base OT verification response is wrong",
                                    counterparties=[self.counterparty])
            openings.append((hashed0, _h(self.context, index, self._pads1[index])))
        return openings

    def pads(self) -> tuple[list[bytes], list[bytes]]:
        return list(self._pads0), list(self._pads1)

    def wipe(self) -> None:
        self._secret = 0
        self._pads0.clear()
        self._pads1.clear()


@dataclass(slots=True)
class BaseOtReceiver:
    """Base-OT receiver (the OT-extension sender) with secret choice bits: ends with one pad each."""

    context: bytes
    counterparty: int
    choices: list[int]
    _sender_point: Point | None = None
    _pads: list[bytes] = field(default_factory=list)
    _challenges: list[bytes] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"BaseOtReceiver(counterparty={self.counterparty}, <redacted>)"

    def message2(self, sender_point: Point, proof: DlogProof, rng: Rng) -> list[Point]:
        if len(self.choices) != KAPPA:
            raise ValueError("wrong number of choice bits")
        if not verify_dlog(self.context, sender_point, proof):
            raise BaseOtFailure("base OT proof of knowledge does not verify",
                                counterparties=[self.counterparty])
        self._sender_point = sender_point
        points = []
        for index, choice in enumerate(self.choices):
            secret = random_nonzero_scalar(rng)
            own = base_mul(secret)
            point = add([own, sender_point]) if choice else own
            self._pads.append(_pad(self.context, index, sender_point, point,
                                   mul(sender_point, secret)))
            points.append(point)
        return points

    def message4(self, challenges: list[bytes]) -> list[bytes]:
        if len(challenges) != KAPPA or len(self._pads) != KAPPA:
            raise BaseOtFailure("base OT challenges missing", counterparties=[self.counterparty])
        self._challenges = list(challenges)
        responses = []
        for index, (pad, choice) in enumerate(zip(self._pads, self.choices, strict=True)):
            response = _h(self.context, index, _h(self.context, index, pad))
            responses.append(_xor(response, challenges[index]) if choice else response)
        return responses

    def finish(self, openings: list[tuple[bytes, bytes]]) -> list[bytes]:
        """Checks the sender's openings against our pad and its challenge; returns our pads."""
        if len(openings) != KAPPA or len(self._challenges) != KAPPA:
            raise BaseOtFailure("base OT openings missing", counterparties=[self.counterparty])
        for index, (hashed0, hashed1) in enumerate(openings):
            own = _h(self.context, index, self._pads[index])
            if own != (hashed1 if self.choices[index] else hashed0):
                raise BaseOtFailure("base OT opening does not match our pad",
                                    counterparties=[self.counterparty])
            combined = _xor(_h(self.context, index, hashed0), _h(self.context, index, hashed1))
            if combined != self._challenges[index]:
                raise BaseOtFailure("base OT opening does not match its challenge",
                                    counterparties=[self.counterparty])
        return list(self._pads)

    def wipe(self) -> None:
        self._pads.clear()
        self.choices = []
