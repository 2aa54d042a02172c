"""Wire types of the DKG (ChillDKG layout), each with a strict parser and a serializer.

Layouts, with E the element length (33 secp256k1, 32 Ed25519), scalars 32 bytes, signatures 64:

* ParticipantMsg1: commitment (t*E, identity allowed) | pop (64) | pubnonce (E) | enc_shares (n*32)
* CoordinatorMsg1: coms_to_secrets (n*E) | sum_coms_to_nonconst_terms ((t-1)*E) | pops (n*64)
  | pubnonces (n*E) | enc_secshares (n*32)
* ParticipantMsg2: signature (64);  CoordinatorMsg2: certificate (n*64)
* CoordinatorInvestigationMsg: enc_partial_secshares (n*32) | partial_pubshares (n*E)

Parsers refuse a wrong total length, out-of-range scalars and invalid elements by raising
`coffer.mpc.errors.MalformedInput`; the protocol steps turn that into an error naming the
sender. Public nonces and proofs of possession are kept as bytes here and checked by the
protocol step, which knows whom to blame. `parse(serialize(x)) == x` for every type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from coffer.btc.reader import ByteReader
from coffer.mpc.dkg.suite import SCALAR_LENGTH, SIGNATURE_LENGTH, DkgSuite
from coffer.mpc.errors import InvalidEncoding
from coffer.mpc.hazmat.group import Element

__all__ = ["ParticipantMsg1", "CoordinatorMsg1", "CoordinatorInvestigationMsg",
           "encode_elements", "decode_elements", "decode_scalars", "encode_scalars", "split", "MessageReader"]


def split(data: bytes, size: int, count: int) -> list[bytes]:
    return [data[i * size:(i + 1) * size] for i in range(count)]


def encode_elements(suite: DkgSuite, elements: Sequence[Element]) -> bytes:
    return b"".join(suite.encode(element) for element in elements)


def decode_elements(suite: DkgSuite, data: bytes, count: int) -> tuple[Element, ...]:
    return tuple(suite.decode(chunk) for chunk in split(data, suite.element_length, count))


def encode_scalars(suite: DkgSuite, scalars: Sequence[int]) -> bytes:
    return b"".join(suite.encode_scalar(scalar) for scalar in scalars)


def decode_scalars(suite: DkgSuite, data: bytes, count: int) -> tuple[int, ...]:
    return tuple(suite.decode_scalar(chunk) for chunk in split(data, SCALAR_LENGTH, count))


class MessageReader(ByteReader):
    """Reads a message of exactly `expected` bytes field by field (raises InvalidEncoding)."""

    __slots__ = ("suite",)

    def __init__(self, suite: DkgSuite, data: bytes, expected: int, what: str) -> None:
        if len(data) != expected:
            raise InvalidEncoding(f"{what} must be {expected} bytes, got {len(data)}")
        super().__init__(data, error=InvalidEncoding)
        self.suite = suite

    def elements(self, count: int) -> tuple[Element, ...]:
        return decode_elements(self.suite, self.take(self.suite.element_length * count), count)

    def scalars(self, count: int) -> tuple[int, ...]:
        return decode_scalars(self.suite, self.take(SCALAR_LENGTH * count), count)

    def chunks(self, size: int, count: int) -> tuple[bytes, ...]:
        return tuple(split(self.take(size * count), size, count))


@dataclass(frozen=True, slots=True)
class ParticipantMsg1:
    commitment: tuple[Element, ...]
    pop: bytes
    pubnonce: bytes
    enc_shares: tuple[int, ...]

    @staticmethod
    def length(suite: DkgSuite, t: int, n: int) -> int:
        return suite.element_length * (t + 1) + SIGNATURE_LENGTH + SCALAR_LENGTH * n

    @staticmethod
    def parse(suite: DkgSuite, data: bytes, *, t: int, n: int) -> ParticipantMsg1:
        reader = MessageReader(suite, data, ParticipantMsg1.length(suite, t, n), "participant message 1")
        commitment = reader.elements(t)
        pop, pubnonce = reader.take(SIGNATURE_LENGTH), reader.take(suite.element_length)
        return ParticipantMsg1(commitment, pop, pubnonce, reader.scalars(n))

    def serialize(self, suite: DkgSuite) -> bytes:
        return (encode_elements(suite, self.commitment) + self.pop + self.pubnonce
                + encode_scalars(suite, self.enc_shares))


@dataclass(frozen=True, slots=True)
class CoordinatorMsg1:
    coms_to_secrets: tuple[Element, ...]
    sum_coms_to_nonconst_terms: tuple[Element, ...]
    pops: tuple[bytes, ...]
    pubnonces: tuple[bytes, ...]
    enc_secshares: tuple[int, ...]

    @staticmethod
    def length(suite: DkgSuite, t: int, n: int) -> int:
        return suite.element_length * (2 * n + t - 1) + (SIGNATURE_LENGTH + SCALAR_LENGTH) * n

    @staticmethod
    def parse(suite: DkgSuite, data: bytes, *, t: int, n: int) -> CoordinatorMsg1:
        reader = MessageReader(suite, data, CoordinatorMsg1.length(suite, t, n), "coordinator message 1")
        coms_to_secrets, nonconst = reader.elements(n), reader.elements(t - 1)
        pops, pubnonces = reader.chunks(SIGNATURE_LENGTH, n), reader.chunks(suite.element_length, n)
        enc_secshares = reader.scalars(n)
        return CoordinatorMsg1(coms_to_secrets, nonconst, pops, pubnonces, enc_secshares)

    def serialize(self, suite: DkgSuite) -> bytes:
        return (encode_elements(suite, self.coms_to_secrets)
                + encode_elements(suite, self.sum_coms_to_nonconst_terms)
                + b"".join(self.pops) + b"".join(self.pubnonces)
                + encode_scalars(suite, self.enc_secshares))


@dataclass(frozen=True, slots=True)
class CoordinatorInvestigationMsg:
    enc_partial_secshares: tuple[int, ...]
    partial_pubshares: tuple[Element, ...]

    @staticmethod
    def length(suite: DkgSuite, n: int) -> int:
        return (SCALAR_LENGTH + suite.element_length) * n

    @staticmethod
    def parse(suite: DkgSuite, data: bytes, *, n: int) -> CoordinatorInvestigationMsg:
        reader = MessageReader(suite, data, CoordinatorInvestigationMsg.length(suite, n), "investigation message")
        shares = reader.scalars(n)
        return CoordinatorInvestigationMsg(shares, reader.elements(n))

    def serialize(self, suite: DkgSuite) -> bytes:
        return encode_scalars(suite, self.enc_partial_secshares) + encode_elements(
            suite, self.partial_pubshares)
