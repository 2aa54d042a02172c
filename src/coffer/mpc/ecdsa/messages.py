"""Wire messages of DKLs23 signing (three rounds), each with `serialize()` and a strict `parse()`.

Header of every message: type (1 byte), version (1), sender (2), receiver (2, 0 = broadcast),
session id (32). `parse` refuses a different type, version, sender, receiver or session id,
truncated or trailing data, scalars not below the order and points off the curve, naming the
sender in `MalformedMessage`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from coffer.mpc.ecdsa import gf2
from coffer.mpc.ecdsa.base_ot import KAPPA
from coffer.mpc.ecdsa.curve import Point
from coffer.mpc.ecdsa.ot_extension import BATCH, COLUMN_BYTES, WIDTH, ExtensionMessage
from coffer.mpc.ecdsa.vole import ELL, AliceMessage
from coffer.mpc.ecdsa.wire import WIRE_VERSION, Reader, Writer

__all__ = ["SignRound1", "SignRound2", "SignRound3", "BROADCAST"]

BROADCAST: Final = 0
_ROUND1: Final = 0x21
_ROUND2: Final = 0x22
_ROUND3: Final = 0x23


def _header(kind: int, sender: int, receiver: int, session_id: bytes) -> Writer:
    return Writer().u8(kind).u8(WIRE_VERSION).u16(sender).u16(receiver).fixed(session_id)


def _read_header(data: bytes, kind: int, sender: int, receiver: int, session_id: bytes) -> Reader:
    reader = Reader(data, sender=sender)
    reader.expect(kind, reader.u8(), "message type")
    reader.expect(WIRE_VERSION, reader.u8(), "wire version")
    reader.expect(sender, reader.u16(), "sender")
    reader.expect(receiver, reader.u16(), "receiver")
    if reader.fixed(32) != session_id:
        raise reader.fail("wrong session id")
    return reader


@dataclass(frozen=True, slots=True)
class SignRound1:
    """Round 1, per peer: commitment to R_i and the VOLE message where the sender is Bob."""

    sender: int
    receiver: int
    session_id: bytes
    commitment: bytes
    extension: ExtensionMessage

    def serialize(self) -> bytes:
        return (_header(_ROUND1, self.sender, self.receiver, self.session_id)
                .fixed(self.commitment).fixed(self.extension.columns)
                .fixed(self.extension.check_x).fixed(self.extension.check_t).bytes())

    @classmethod
    def parse(cls, data: bytes, *, sender: int, receiver: int, session_id: bytes) -> SignRound1:
        reader = _read_header(data, _ROUND1, sender, receiver, session_id)
        commitment = reader.fixed(32)
        extension = ExtensionMessage(reader.fixed(KAPPA * COLUMN_BYTES), reader.fixed(gf2.FIELD_BYTES),
                                     reader.fixed(KAPPA * gf2.FIELD_BYTES))
        reader.finish()
        return cls(sender, receiver, session_id, commitment, extension)


@dataclass(frozen=True, slots=True)
class SignRound2:
    """Round 2, per peer: decommitment (R_i, salt), public share, psi, Gammas, VOLE answer."""

    sender: int
    receiver: int
    session_id: bytes
    nonce_point: Point
    salt: bytes
    public_share: Point
    psi: int
    gamma_u: Point
    gamma_v: Point
    vole: AliceMessage

    def serialize(self) -> bytes:
        writer = (_header(_ROUND2, self.sender, self.receiver, self.session_id)
                  .point(self.nonce_point).fixed(self.salt).point(self.public_share)
                  .scalar(self.psi).point(self.gamma_u).point(self.gamma_v))
        writer.scalars([value for row in self.vole.taus for value in row])
        return (writer.fixed(self.vole.check_r).scalars(self.vole.check_u)
                .scalars(self.vole.gammas).bytes())

    @classmethod
    def parse(cls, data: bytes, *, sender: int, receiver: int, session_id: bytes) -> SignRound2:
        reader = _read_header(data, _ROUND2, sender, receiver, session_id)
        nonce_point = reader.point()
        salt = reader.fixed(32)
        public_share = reader.point()
        psi = reader.scalar()
        gamma_u = reader.point()
        gamma_v = reader.point()
        flat = reader.scalars(BATCH * WIDTH)
        taus = [flat[j * WIDTH:(j + 1) * WIDTH] for j in range(BATCH)]
        vole = AliceMessage(taus, reader.fixed(32), reader.scalars(ELL), reader.scalars(ELL))
        reader.finish()
        return cls(sender, receiver, session_id, nonce_point, salt, public_share, psi,
                   gamma_u, gamma_v, vole)


@dataclass(frozen=True, slots=True)
class SignRound3:
    """Round 3, broadcast: the combined nonce point R (echo) and the shares u_i, w_i."""

    sender: int
    session_id: bytes
    nonce_point: Point
    u: int
    w: int

    def serialize(self) -> bytes:
        return (_header(_ROUND3, self.sender, BROADCAST, self.session_id)
                .point(self.nonce_point).scalar(self.u).scalar(self.w).bytes())

    @classmethod
    def parse(cls, data: bytes, *, sender: int, session_id: bytes) -> SignRound3:
        reader = _read_header(data, _ROUND3, sender, BROADCAST, session_id)
        nonce_point = reader.point()
        u = reader.scalar()
        w = reader.scalar()
        reader.finish()
        return cls(sender, session_id, nonce_point, u, w)
