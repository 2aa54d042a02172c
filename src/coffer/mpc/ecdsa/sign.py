"""DKLs23 threshold ECDSA signing (eprint 2023/765, Protocol 3.6): three rounds, t-of-n.

Message flow for signer i with peers j (every message is bytes; see `messages.py`):

    round1()             -> {j: SignRound1}   commit(R_i); VOLE where i is Bob (random chi_ij)
    round2({j: round1})  -> {j: SignRound2}   open R_i, pk_i, psi_ij = phi_i - chi_ij,
                                              VOLE answer where i is Alice with (r_i, sk_i),
                                              Gamma^u = c_u*G, Gamma^v = c_v*G
    round3({j: round2})  -> SignRound3        checks; broadcast u_i, w_i and R
    finalize({j: round3}) -> Signature        s = sum(u) / sum(w), verified, low-S, recovery id

sk_i = lambda_i * share_i + zeta_i (+ tweak for the lowest identifier of the signer set), with
zeta_i a zero-sharing, so sum(sk_i) = sk + tweak. Every check of Protocol 3.6 is made: each
decommitment, each VOLE consistency check, chi_ij*R_j - Gamma^u = d_u*G and
chi_ij*pk_j - Gamma^v = d_v*G per peer, sum(pk_j) = the (tweaked) group key, agreement on R, and
the final signature against the key. Any failure aborts the session, names the counterparty
where it can, and discards every OT setup the session used (fresh base OT needed).

Per-session secrets (r_i, phi_i, sk_i, the VOLE states) exist only inside one `SigningSession`;
each round runs once, and `mark_used(session_id, round)` is called before a round's output is
returned, so the service persists "used" before anything leaves the process.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import coincurve

from coffer.mpc.dkg.types import KeyShareOutput
from coffer.mpc.ecdsa import vole
from coffer.mpc.ecdsa.curve import (
    IdentityResult,
    Point,
    Q,
    Rng,
    add,
    base_mul,
    mul,
    point_bytes,
    point_from_bytes,
    point_x,
    point_y_is_odd,
    random_nonzero_scalar,
    system_rng,
    tagged_hash,
)
from coffer.mpc.ecdsa.errors import (
    CommitmentMismatch,
    InvalidTweak,
    MalformedMessage,
    MultiplicationCheckFailure,
    ProtocolAbort,
    PublicShareMismatch,
    SecretReuse,
    SessionStateError,
    SignatureInvalid,
    SignerSetError,
    TranscriptMismatch,
)
from coffer.mpc.ecdsa.messages import SignRound1, SignRound2, SignRound3
from coffer.mpc.ecdsa.setup import PeerSetup, check_identifier
from coffer.mpc.ecdsa.zero_share import zero_share

__all__ = ["KeyShare", "Signature", "SigningSession", "session_id_for", "lagrange_at_zero",
           "key_share_from_dkg", "SIGNERS_MAX", "HALF_ORDER"]

SIGNERS_MAX: Final = 32
HALF_ORDER: Final = Q // 2
MarkUsed = Callable[[bytes, int], None]


@dataclass(frozen=True, slots=True)
class KeyShare:
    """One participant's Shamir share (identifier, scalar) of an ECDSA key, with public data."""

    key_id: bytes
    identifier: int
    threshold: int
    public_key: bytes  # compressed SEC1 group key (33 bytes)
    secret_share: int = field(repr=False)

    def __post_init__(self) -> None:
        check_identifier(self.identifier)
        if not 1 <= self.secret_share < Q:
            raise SignerSetError("share out of range")
        if self.threshold < 2:
            raise SignerSetError("threshold below 2")
        point_from_bytes(self.public_key)

    def __repr__(self) -> str:
        return f"KeyShare(identifier={self.identifier}, threshold={self.threshold}, <redacted>)"


def key_share_from_dkg(output: KeyShareOutput, key_id: bytes) -> KeyShare:
    """A `KeyShare` from the DKG / refresh / re-share layer (`coffer.mpc.dkg`, secp256k1 suite).

    Checks that the secret share matches this party's public share from the same output.
    """
    share = output.secret_share
    if share is None:
        raise SignerSetError("DKG output holds no secret share")
    if output.suite != "secp256k1":
        raise SignerSetError(f"DKG output is for {output.suite}, not secp256k1")
    expected = output.public_shares.get(share.identifier)
    if not 1 <= share.value < Q or expected is None or point_bytes(base_mul(share.value)) != expected:
        raise SignerSetError("secret share does not match its public share")
    return KeyShare(key_id, share.identifier, output.threshold, output.group_public_key, share.value)


@dataclass(frozen=True, slots=True)
class Signature:
    """A verified, low-S ECDSA signature over a 32-byte digest, with its recovery id (0..3)."""

    r: int
    s: int
    recovery_id: int

    def to_compact(self) -> bytes:
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big")

    def to_recoverable(self) -> bytes:
        """r || s || recovery id (65 bytes), as coincurve and eth-keys take it."""
        return self.to_compact() + bytes([self.recovery_id])

    def to_der(self) -> bytes:
        return bytes(coincurve.ecdsa.cdata_to_der(coincurve.ecdsa.deserialize_compact(self.to_compact())))


def lagrange_at_zero(identifier: int, signers: Sequence[int]) -> int:
    numerator, denominator = 1, 1
    for other in signers:
        if other != identifier:
            numerator = numerator * other % Q
            denominator = denominator * (other - identifier) % Q
    return numerator * pow(denominator, -1, Q) % Q


def session_id_for(key_id: bytes, public_key: bytes, signers: Sequence[int], digest: bytes,
                   tweak: int, nonce: bytes) -> bytes:
    """Binds key id, (tweaked) key, signer set, message digest, tweak and a fresh nonce."""
    signer_bytes = b"".join(s.to_bytes(2, "big") for s in sorted(signers))
    return tagged_hash("sign/sid", [key_id, public_key, signer_bytes, digest,
                                    tweak.to_bytes(32, "big"), nonce])


def tweaked_key(public_key: bytes, tweak: int) -> Point:
    if not 0 <= tweak < Q:
        raise InvalidTweak("tweak not below the group order")
    key = point_from_bytes(public_key)
    if tweak == 0:
        return key
    try:
        return add([key, base_mul(tweak)])
    except IdentityResult as error:
        raise InvalidTweak("tweaked key is the identity") from error


class _State(enum.Enum):
    NEW = 0
    ROUND1 = 1
    ROUND2 = 2
    ROUND3 = 3
    DONE = 4
    ABORTED = 5


def _commitment(session_id: bytes, sender: int, point: Point, salt: bytes) -> bytes:
    return tagged_hash("sign/commit", [session_id, sender.to_bytes(2, "big"), point_bytes(point), salt])


class SigningSession:
    """One signer's side of one DKLs23 signing session (single use, in memory only)."""

    def __init__(self, *, key: KeyShare, signers: Sequence[int], digest: bytes, nonce: bytes,
                 setups: Mapping[int, PeerSetup], tweak: int = 0, rng: Rng = system_rng,
                 mark_used: MarkUsed | None = None) -> None:
        self._check_signers(key, signers)
        if len(digest) != 32:
            raise SignerSetError("digest must be 32 bytes")
        if len(nonce) < 16:
            raise SignerSetError("session nonce must have at least 16 bytes")
        self.me = key.identifier
        self.signers = tuple(sorted(signers))
        self.peers = tuple(s for s in self.signers if s != self.me)
        self.digest = digest
        self.public_key = tweaked_key(key.public_key, tweak)
        self.session_id = session_id_for(key.key_id, point_bytes(self.public_key), self.signers,
                                         digest, tweak, nonce)
        missing = [peer for peer in self.peers if peer not in setups]
        if missing:
            raise SignerSetError(f"no OT setup with participants {missing}")
        self._setups = {peer: setups[peer] for peer in self.peers}
        for peer, setup in self._setups.items():
            if setup.me != self.me or setup.peer != peer:
                raise SignerSetError(f"OT setup for participant {peer} belongs to another pair")
            setup.require_usable()
        self._key = key
        self._tweak = tweak
        self._rng = rng
        self._mark_used = mark_used or (lambda session_id, round_number: None)
        self._state = _State.NEW
        self._lock = threading.RLock()  # abort() may run inside a failing round
        self._wipe()

    def __repr__(self) -> str:
        return f"SigningSession(me={self.me}, signers={self.signers}, {self._state.name})"

    @staticmethod
    def _check_signers(key: KeyShare, signers: Sequence[int]) -> None:
        for signer in signers:
            check_identifier(signer)
        if len(set(signers)) != len(signers):
            raise SignerSetError("duplicate identifier in the signer set")
        if len(signers) < key.threshold:
            raise SignerSetError(f"{len(signers)} signers, threshold is {key.threshold}")
        if len(signers) > SIGNERS_MAX:
            raise SignerSetError("too many signers")
        if key.identifier not in signers:
            raise SignerSetError("this party is not in the signer set")

    def _wipe(self) -> None:
        self._nonce_share = 0
        self._phi = 0
        self._additive_share = 0
        self._salt = b""
        self._nonce_point: Point | None = None
        self._bob: dict[int, vole.BobState] = {}
        self._alice_outputs: dict[int, list[int]] = {}
        self._commitments: dict[int, bytes] = {}
        self._u = 0
        self._w = 0
        self._combined: Point | None = None

    # -- state handling --------------------------------------------------------------------
    def _advance(self, expected: _State, following: _State) -> None:
        if self._state is _State.ABORTED:
            raise SessionStateError("session aborted")
        if self._state is not expected:
            raise SecretReuse(f"round out of order or repeated (state {self._state.name})")
        self._state = following

    def abort(self, reason: str) -> None:
        """Ends the session (e.g. another signer reported an abort) and discards its setups."""
        with self._lock:
            if self._state is _State.ABORTED:
                return
            self._state = _State.ABORTED
            self._wipe()
            for setup in self._setups.values():
                setup.discard(reason)

    def _run(self, step: Callable[[], object]) -> object:
        """Runs a round; any failure (a check, bad input, the used-marker store) aborts it all.

        Every round first re-checks every setup, so an abort in a parallel session with the same
        peer (which discards the shared setup) stops this session too.
        """
        try:
            for setup in self._setups.values():
                setup.require_usable()
            return step()
        except IdentityResult as error:
            self.abort("identity point")
            raise ProtocolAbort("a point became the identity", counterparties=self.peers) from error
        except Exception as error:
            self.abort(type(error).__name__)
            raise

    def _collect(self, messages: Mapping[int, bytes]) -> None:
        for sender in messages:
            if sender not in self.peers:
                raise MalformedMessage("not a peer of this session", sender=sender)
        for peer in self.peers:
            if peer not in messages:
                raise MalformedMessage("message missing", sender=peer)

    # -- round 1 -----------------------------------------------------------------------------
    def round1(self) -> dict[int, bytes]:
        """Samples r_i, phi_i; returns one message per peer."""
        with self._lock:
            if self._state is _State.NEW:
                for setup in self._setups.values():  # refused without discarding anything
                    setup.check_fresh(self.session_id)
            self._advance(_State.NEW, _State.ROUND1)
            return self._run(self._round1)  # type: ignore[return-value]

    def _round1(self) -> dict[int, bytes]:
        for setup in self._setups.values():
            setup.claim(self.session_id)
        self._nonce_share = random_nonzero_scalar(self._rng)
        self._phi = random_nonzero_scalar(self._rng)
        self._nonce_point = base_mul(self._nonce_share)
        self._salt = self._rng(32)
        seeds = {peer: setup.zero_seed() for peer, setup in self._setups.items()}
        share = lagrange_at_zero(self.me, self.signers) * self._key.secret_share
        share += zero_share(self.me, seeds, self.session_id)
        if self.me == self.signers[0]:
            share += self._tweak
        self._additive_share = share % Q
        commitment = _commitment(self.session_id, self.me, self._nonce_point, self._salt)
        out = {}
        for peer, setup in self._setups.items():
            seeds0, seeds1 = setup.receiver_seeds()
            context = self._vole_context(setup.context_as_bob())
            message, state = vole.bob_start(context, seeds0, seeds1, setup.gadget_as_bob, self._rng)
            self._bob[peer] = state
            out[peer] = SignRound1(self.me, peer, self.session_id, commitment, message).serialize()
        self._mark_used(self.session_id, 1)
        return out

    def _vole_context(self, direction: bytes) -> bytes:
        return tagged_hash("sign/vole", [direction, self.session_id])

    # -- round 2 -----------------------------------------------------------------------------
    def round2(self, messages: Mapping[int, bytes]) -> dict[int, bytes]:
        """Takes every peer's round-1 message; returns one message per peer."""
        with self._lock:
            self._advance(_State.ROUND1, _State.ROUND2)
            return self._run(lambda: self._round2(messages))  # type: ignore[return-value]

    def _round2(self, messages: Mapping[int, bytes]) -> dict[int, bytes]:
        self._collect(messages)
        parsed = {peer: SignRound1.parse(messages[peer], sender=peer, receiver=self.me,
                                         session_id=self.session_id) for peer in self.peers}
        assert self._nonce_point is not None
        public_share = base_mul(self._additive_share)
        out = {}
        for peer, message in parsed.items():
            setup = self._setups[peer]
            self._commitments[peer] = message.commitment
            correlation, seeds = setup.sender_material()
            answer, outputs = vole.alice_respond(
                self._vole_context(setup.context_as_alice()), correlation, seeds,
                setup.gadget_as_alice, [self._nonce_share, self._additive_share],
                message.extension, peer, self._rng)
            self._alice_outputs[peer] = outputs
            psi = (self._phi - self._bob[peer].b) % Q
            out[peer] = SignRound2(self.me, peer, self.session_id, self._nonce_point, self._salt,
                                   public_share, psi, base_mul(outputs[0]), base_mul(outputs[1]),
                                   answer).serialize()
        self._mark_used(self.session_id, 2)
        return out

    # -- round 3 -----------------------------------------------------------------------------
    def round3(self, messages: Mapping[int, bytes]) -> bytes:
        """Takes every peer's round-2 message, runs every check, returns the broadcast."""
        with self._lock:
            self._advance(_State.ROUND2, _State.ROUND3)
            return self._run(lambda: self._round3(messages))  # type: ignore[return-value]

    def _round3(self, messages: Mapping[int, bytes]) -> bytes:
        self._collect(messages)
        parsed = {peer: SignRound2.parse(messages[peer], sender=peer, receiver=self.me,
                                         session_id=self.session_id) for peer in self.peers}
        assert self._nonce_point is not None
        phi, r_i, sk_i = self._phi, self._nonce_share, self._additive_share
        sum_u, sum_v = 0, 0
        for peer, message in parsed.items():
            if _commitment(self.session_id, peer, message.nonce_point, message.salt) != self._commitments[peer]:
                raise CommitmentMismatch("decommitment does not match", counterparties=[peer])
            setup = self._setups[peer]
            state = self._bob[peer]
            d_u, d_v = vole.bob_finish(self._vole_context(setup.context_as_bob()), state,
                                       setup.gadget_as_bob, message.vole, peer)
            self._check_gamma(peer, state.b, message.nonce_point, message.gamma_u, d_u)
            self._check_gamma(peer, state.b, message.public_share, message.gamma_v, d_v)
            c_u, c_v = self._alice_outputs[peer]
            sum_u += d_u + c_u + message.psi * r_i
            sum_v += d_v + c_v + message.psi * sk_i
        shares = [base_mul(sk_i)] + [parsed[peer].public_share for peer in self.peers]
        if point_bytes(add(shares)) != point_bytes(self.public_key):
            raise PublicShareMismatch("public shares do not sum to the key", counterparties=self.peers)
        combined = add([self._nonce_point] + [parsed[peer].nonce_point for peer in self.peers])
        r = point_x(combined) % Q
        if r == 0:
            raise ProtocolAbort("nonce point has x = 0 mod q", counterparties=self.peers)
        digest = int.from_bytes(self.digest, "big") % Q
        u_share = (r * (sk_i * phi + sum_v) + digest * phi) % Q
        w_share = (r_i * phi + sum_u) % Q
        self._u, self._w, self._combined = u_share, w_share, combined
        self._nonce_share = self._phi = self._additive_share = 0
        self._bob.clear()
        self._alice_outputs.clear()
        self._mark_used(self.session_id, 3)
        return SignRound3(self.me, self.session_id, combined, u_share, w_share).serialize()

    def _check_gamma(self, peer: int, chi: int, point: Point, gamma: Point, share: int) -> None:
        expected = [gamma, base_mul(share)] if share else [gamma]
        try:
            matches = point_bytes(mul(point, chi)) == point_bytes(add(expected))
        except IdentityResult:
            matches = False
        if not matches:
            raise MultiplicationCheckFailure("Gamma check failed", counterparties=[peer])

    # -- output ------------------------------------------------------------------------------
    def finalize(self, messages: Mapping[int, bytes]) -> Signature:
        """Takes every peer's round-3 broadcast; returns the verified low-S signature."""
        with self._lock:
            self._advance(_State.ROUND3, _State.DONE)
            return self._run(lambda: self._finalize(messages))  # type: ignore[return-value]

    def _finalize(self, messages: Mapping[int, bytes]) -> Signature:
        self._collect(messages)
        parsed = {peer: SignRound3.parse(messages[peer], sender=peer, session_id=self.session_id)
                  for peer in self.peers}
        assert self._combined is not None
        for peer, message in parsed.items():
            if point_bytes(message.nonce_point) != point_bytes(self._combined):
                raise TranscriptMismatch("different nonce point R", counterparties=[peer])
        u = (self._u + sum(m.u for m in parsed.values())) % Q
        w = (self._w + sum(m.w for m in parsed.values())) % Q
        if w == 0:
            raise SignatureInvalid("w sums to zero", counterparties=self.peers)
        signature = finish_signature(self._combined, u * pow(w, -1, Q) % Q, self.digest,
                                     self.public_key, self.peers)
        self._wipe()
        return signature


def finish_signature(nonce_point: Point, s: int, digest: bytes, public_key: Point,
                     peers: Sequence[int]) -> Signature:
    """Low-S normalisation, recovery id, and verification (ECDSA and recovery) before release."""
    x = point_x(nonce_point)
    r = x % Q
    recovery_id = (1 if point_y_is_odd(nonce_point) else 0) | (2 if x >= Q else 0)
    if s > HALF_ORDER:
        s = Q - s
        recovery_id ^= 1
    if s == 0:
        raise SignatureInvalid("s is zero", counterparties=peers)
    signature = Signature(r, s, recovery_id)
    der = signature.to_der()
    if not public_key.verify(der, digest, hasher=None):
        raise SignatureInvalid("combined signature does not verify", counterparties=peers)
    recovered = coincurve.PublicKey.from_signature_and_message(
        signature.to_recoverable(), digest, hasher=None)
    if point_bytes(recovered) != point_bytes(public_key):
        raise SignatureInvalid("recovery id does not recover the key", counterparties=peers)
    return signature
