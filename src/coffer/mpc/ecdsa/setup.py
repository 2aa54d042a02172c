"""Per-peer OT setup of DKLs23: both base-OT directions and the zero-sharing seed, done once.

Two parties run `SetupSession` once (five messages each way, symmetric); each ends with a
`PeerSetup` that every later signing session with that peer reuses. A `PeerSetup` is discarded
for good after any abort of a session that used it (the selective-failure leakage of the OT
extension and of the base OT accumulates across aborts): using it again raises `SetupDiscarded`
and the two parties must run a fresh `SetupSession` (new nonce). A setup also refuses a session
id it has seen before.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import structlog

from coffer.mpc.ecdsa.base_ot import KAPPA, BaseOtReceiver, BaseOtSender, DlogProof
from coffer.mpc.ecdsa.curve import Rng, system_rng, tagged_hash
from coffer.mpc.ecdsa.errors import (
    EcdsaError,
    MalformedMessage,
    ProtocolAbort,
    SecretReuse,
    SessionStateError,
    SetupDiscarded,
    SignerSetError,
)
from coffer.mpc.ecdsa.vole import gadget_vector
from coffer.mpc.ecdsa.wire import WIRE_VERSION, Reader, Writer

__all__ = ["PeerSetup", "SetupSession", "SetupMessage", "IDENTIFIER_MAX", "setup_id_for"]

log = structlog.get_logger("coffer.mpc.ecdsa")

IDENTIFIER_MAX: Final = 0xFFFF
_SETUP_TYPE: Final = 0x10
_ROUNDS: Final = 5
SESSIONS_PER_SETUP_MAX: Final = 1 << 32
_HEADER_BYTES: Final = 1 + 1 + 1 + 2 + 2 + 32


def setup_id_for(key_id: bytes, first: int, second: int, nonce: bytes) -> bytes:
    """The setup id both parties compute: key id, the unordered pair, a fresh nonce."""
    low, high = sorted((first, second))
    return tagged_hash("setup/id", [key_id, low.to_bytes(2, "big"), high.to_bytes(2, "big"), nonce])


def direction_context(setup_id: bytes, bob: int, alice: int) -> bytes:
    """Context of the OT direction where `bob` is the OT-extension receiver."""
    return tagged_hash("setup/direction", [setup_id, bob.to_bytes(2, "big"), alice.to_bytes(2, "big")])


def check_identifier(value: int) -> None:
    if not 1 <= value <= IDENTIFIER_MAX:
        raise SignerSetError(f"identifier {value} out of range")


@dataclass(slots=True, eq=False)
class PeerSetup:
    """Reusable OT material between `me` and `peer` (secret; discarded after any abort)."""

    me: int
    peer: int
    setup_id: bytes
    _receiver_seeds: tuple[list[bytes], list[bytes]]  # me as OT-extension receiver (VOLE Bob)
    _sender_correlation: npt.NDArray[np.uint8]  # me as OT-extension sender (VOLE Alice)
    _sender_seeds: list[bytes]
    _zero_seed: bytes
    gadget_as_bob: list[int]
    gadget_as_alice: list[int]
    discarded: bool = False
    discard_reason: str = ""
    _sessions: set[bytes] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __repr__(self) -> str:
        state = "discarded" if self.discarded else "usable"
        return f"PeerSetup(me={self.me}, peer={self.peer}, {state}, <redacted>)"

    def discard(self, reason: str) -> None:
        """Makes this setup unusable for good (an abort happened); wipes its secrets; alerts."""
        with self._lock:
            if not self.discarded:
                log.warning("ecdsa.ot_setup_discarded", me=self.me, peer=self.peer,
                            setup_id=self.setup_id.hex(), reason=reason)
                self.discard_reason = reason
            self.discarded = True
            self._receiver_seeds = ([], [])
            self._sender_seeds = []
            self._sender_correlation = np.zeros(0, dtype=np.uint8)
            self._zero_seed = b""

    def require_usable(self) -> None:
        if self.discarded:
            raise SetupDiscarded(f"discarded after an abort ({self.discard_reason}); "
                                 "run a fresh base OT", counterparty=self.peer)

    def check_fresh(self, session_id: bytes) -> None:
        """Refuses a discarded setup and a session id this setup has served before."""
        self.require_usable()
        if session_id in self._sessions:
            raise SecretReuse(f"session id already used with participant {self.peer}")
        if len(self._sessions) >= SESSIONS_PER_SETUP_MAX:
            raise SetupDiscarded("setup exhausted", counterparty=self.peer)

    def claim(self, session_id: bytes) -> None:
        """Registers a session id (atomically with `check_fresh`)."""
        with self._lock:
            self.check_fresh(session_id)
            self._sessions.add(session_id)

    # Accessors used by the signing rounds; each refuses a discarded setup.
    def receiver_seeds(self) -> tuple[list[bytes], list[bytes]]:
        self.require_usable()
        return self._receiver_seeds

    def sender_material(self) -> tuple[npt.NDArray[np.uint8], list[bytes]]:
        self.require_usable()
        return self._sender_correlation, self._sender_seeds

    def zero_seed(self) -> bytes:
        self.require_usable()
        return self._zero_seed

    def context_as_bob(self) -> bytes:
        return direction_context(self.setup_id, self.me, self.peer)

    def context_as_alice(self) -> bytes:
        return direction_context(self.setup_id, self.peer, self.me)


@dataclass(frozen=True, slots=True)
class SetupMessage:
    """One message of the pairing protocol: round 1..5, from `sender` to `receiver`."""

    round_number: int
    sender: int
    receiver: int
    setup_id: bytes
    body: bytes

    def serialize(self) -> bytes:
        return (Writer().u8(_SETUP_TYPE).u8(WIRE_VERSION).u8(self.round_number).u16(self.sender)
                .u16(self.receiver).fixed(self.setup_id).fixed(self.body).bytes())

    @classmethod
    def parse(cls, data: bytes, *, sender: int, receiver: int, setup_id: bytes,
              round_number: int) -> SetupMessage:
        reader = Reader(data, sender=sender)
        reader.expect(_SETUP_TYPE, reader.u8(), "message type")
        reader.expect(WIRE_VERSION, reader.u8(), "wire version")
        reader.expect(round_number, reader.u8(), "setup round")
        reader.expect(sender, reader.u16(), "sender")
        reader.expect(receiver, reader.u16(), "receiver")
        if reader.fixed(32) != setup_id:
            raise reader.fail("wrong setup id")
        return cls(round_number, sender, receiver, setup_id, bytes(data[_HEADER_BYTES:]))


class _State(enum.Enum):
    NEW = 0
    RUNNING = 1
    DONE = 2
    FAILED = 3


class SetupSession:
    """The symmetric pairing protocol between `me` and `peer` (both run the same calls).

    `start()` gives message 1; `receive(bytes)` takes the peer's message k and returns ours k+1
    (None after the peer's message 5); then `result()` is the `PeerSetup`. Any failure marks the
    session failed: start over with a fresh nonce.
    """

    def __init__(self, *, me: int, peer: int, key_id: bytes, nonce: bytes,
                 rng: Rng = system_rng) -> None:
        check_identifier(me)
        check_identifier(peer)
        if me == peer:
            raise SignerSetError("a party cannot pair with itself")
        if len(nonce) < 16:
            raise SignerSetError("setup nonce must have at least 16 bytes")
        self.me = me
        self.peer = peer
        self.setup_id = setup_id_for(key_id, me, peer, nonce)
        self._rng = rng
        self._state = _State.NEW
        self._expected_round = 1
        correlation = np.unpackbits(np.frombuffer(rng(KAPPA // 8), dtype=np.uint8), bitorder="little")
        self._correlation = correlation
        self._ot_sender = BaseOtSender(direction_context(self.setup_id, me, peer), peer)
        self._ot_receiver = BaseOtReceiver(direction_context(self.setup_id, peer, me), peer,
                                           [int(bit) for bit in correlation.tolist()])
        self._zero_contribution = rng(32)
        self._peer_zero_commitment = b""
        self._zero_seed = b""
        self._result: PeerSetup | None = None

    def __repr__(self) -> str:
        return f"SetupSession(me={self.me}, peer={self.peer}, {self._state.name})"

    def _commit(self, who: int, contribution: bytes) -> bytes:
        return tagged_hash("zero/commit", [self.setup_id, who.to_bytes(2, "big"), contribution])

    def _message(self, round_number: int, body: bytes) -> bytes:
        return SetupMessage(round_number, self.me, self.peer, self.setup_id, body).serialize()

    def start(self) -> bytes:
        if self._state is not _State.NEW:
            raise SessionStateError("setup already started")
        self._state = _State.RUNNING
        point, proof = self._ot_sender.message1(self._rng)
        body = (Writer().point(point).point(proof.commitment).scalar(proof.response)
                .fixed(self._commit(self.me, self._zero_contribution)).bytes())
        return self._message(1, body)

    def receive(self, data: bytes) -> bytes | None:
        if self._state is not _State.RUNNING:
            raise SessionStateError("setup session is not running")
        round_number = self._expected_round
        try:
            SetupMessage.parse(data, sender=self.peer, receiver=self.me, setup_id=self.setup_id,
                               round_number=round_number)
            reader = Reader(data[_HEADER_BYTES:], sender=self.peer)
            reply = self._step(round_number, reader)
        except Exception as error:
            self._fail()
            if isinstance(error, EcdsaError):
                raise
            raise ProtocolAbort("setup failed", counterparties=[self.peer]) from error
        self._expected_round += 1
        if reply is None:
            return None
        return self._message(round_number + 1, reply)

    def _step(self, round_number: int, reader: Reader) -> bytes | None:
        if round_number == 1:
            point = reader.point()
            proof = DlogProof(reader.point(), reader.scalar())
            self._peer_zero_commitment = reader.fixed(32)
            reader.finish()
            points = self._ot_receiver.message2(point, proof, self._rng)
            writer = Writer()
            for item in points:
                writer.point(item)
            return writer.fixed(self._zero_contribution).bytes()
        if round_number == 2:
            points = [reader.point() for _ in range(KAPPA)]
            contribution = reader.fixed(32)
            reader.finish()
            if self._commit(self.peer, contribution) != self._peer_zero_commitment:
                raise MalformedMessage("zero-sharing seed does not match its commitment",
                                       sender=self.peer)
            pair = (self._zero_contribution, contribution) if self.me < self.peer else (
                contribution, self._zero_contribution)
            self._zero_seed = tagged_hash("zero/seed", [self.setup_id, *pair])
            return b"".join(self._ot_sender.message3(points))
        if round_number == 3:
            challenges = [reader.fixed(32) for _ in range(KAPPA)]
            reader.finish()
            return b"".join(self._ot_receiver.message4(challenges))
        if round_number == 4:
            responses = [reader.fixed(32) for _ in range(KAPPA)]
            reader.finish()
            return b"".join(a + b for a, b in self._ot_sender.message5(responses))
        openings = [(reader.fixed(32), reader.fixed(32)) for _ in range(KAPPA)]
        reader.finish()
        seeds = self._ot_receiver.finish(openings)
        pads0, pads1 = self._ot_sender.pads()
        self._result = PeerSetup(
            self.me, self.peer, self.setup_id, (pads0, pads1), self._correlation, seeds,
            self._zero_seed,
            gadget_vector(direction_context(self.setup_id, self.me, self.peer)),
            gadget_vector(direction_context(self.setup_id, self.peer, self.me)))
        self._state = _State.DONE
        self._wipe()  # the PeerSetup holds its own copies
        return None

    def _fail(self) -> None:
        self._state = _State.FAILED
        self._wipe()

    def _wipe(self) -> None:
        self._ot_sender.wipe()
        self._ot_receiver.wipe()
        self._zero_contribution = b""
        self._zero_seed = b""
        self._correlation = np.zeros(0, dtype=np.uint8)

    def result(self) -> PeerSetup:
        if self._state is not _State.DONE or self._result is None:
            raise SessionStateError("setup not finished")
        return self._result
