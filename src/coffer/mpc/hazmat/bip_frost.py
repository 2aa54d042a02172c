"""The BIP-FROST signing draft's own API (siv2r/bip-frost-signing 29467ac), over Coffer's FROST core.

HAZMAT: for the draft's test vectors and for interoperability checks only. It takes the draft's
0-based participant ids (Coffer's identifier = id + 1), raw bytes and caller-held secret nonces, so
none of the safety of `coffer.mpc.frost` (nonces that cannot be used twice, checked key packages)
applies. Errors are Coffer's typed errors; an error naming a participant names its 1-based
identifier.

`deterministic_sign` is here only so the draft's det_sign vectors can be checked. It must never be
used by a service: deterministic FROST nonces are safe only if the signer commits last and never
signs the same (message, aggothernonce) context twice with different other inputs; a replayed
or crafted session can make it reveal its share. Coffer's services use hedged nonces only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from coffer.btc.hashes import tagged_hash
from coffer.mpc.errors import (
    InvalidIdentifier,
    InvalidKeyMaterial,
    InvalidNonceCommitment,
    InvalidParameters,
    InvalidScalar,
    InvalidSignatureShare,
    InvalidTweak,
    NonceReuse,
)
from coffer.mpc.frost.aggregate import aggregate_with_session, verify_share_with_session
from coffer.mpc.frost.ciphersuite import SessionValues, Tweak
from coffer.mpc.frost.round1 import SigningCommitments
from coffer.mpc.frost.round2 import SignatureShare, sign_with_session
from coffer.mpc.frost.taproot import (
    SECP256K1_TR,
    TAG_AUX,
    TAG_DETERMINISTIC_NONCE,
    apply_tweaks,
    nonce_aggregate,
    nonce_generate,
    session_from_aggnonce,
    validate_signers_context,
)
from coffer.mpc.hazmat.group import SECP256K1, Element

__all__ = [
    "SignersContext",
    "SessionContext",
    "nonce_gen_internal",
    "nonce_agg",
    "sign",
    "partial_sig_verify",
    "partial_sig_agg",
    "deterministic_sign",
]

_GROUP = SECP256K1


@dataclass(frozen=True, slots=True)
class SignersContext:
    """The draft's SignersContext: n, t, 0-based ids of this session's signers, their pubshares."""

    n: int
    t: int
    ids: tuple[int, ...]
    pubshares: tuple[bytes, ...]
    thresh_pk: bytes

    @property
    def identifiers(self) -> list[int]:
        return [participant_id + 1 for participant_id in self.ids]

    def validate(self) -> tuple[Element, list[Element]]:
        return validate_signers_context(self.n, self.t, self.identifiers, self.pubshares, self.thresh_pk)


@dataclass(frozen=True, slots=True)
class SessionContext:
    """The draft's SessionContext."""

    aggnonce: bytes
    signers: SignersContext
    tweaks: tuple[bytes, ...]
    is_xonly: tuple[bool, ...]
    msg: bytes


def _tweaks(tweaks: Sequence[bytes], is_xonly: Sequence[bool]) -> list[Tweak]:
    if len(tweaks) != len(is_xonly):
        raise InvalidTweak("the tweaks and is_xonly arrays must have the same length")
    return [Tweak(bytes(value), mode) for value, mode in zip(tweaks, is_xonly, strict=True)]


def _session(context: SessionContext) -> tuple[SessionValues, list[Element]]:
    group_key, pubshares = context.signers.validate()
    tweaks = _tweaks(context.tweaks, context.is_xonly)
    session = session_from_aggnonce(context.signers.identifiers, group_key, context.aggnonce, context.msg, tweaks)
    return session, pubshares


def nonce_gen_internal(rand_: bytes, secshare: bytes | None, pubshare: bytes | None,
                       thresh_pk: bytes | None, msg: bytes | None,
                       extra_in: bytes | None) -> tuple[bytearray, bytes]:
    """(secnonce, pubnonce) from fixed randomness, as the draft's NonceGenInternal."""
    first, second = nonce_generate(rand_, secshare, pubshare, thresh_pk, msg, extra_in)
    pubnonce = _GROUP.serialize_element(_GROUP.base_mul(first)) + _GROUP.serialize_element(_GROUP.base_mul(second))
    return bytearray(first.to_bytes(32, "big") + second.to_bytes(32, "big")), pubnonce


def nonce_agg(pubnonces: Sequence[bytes], identifiers: Sequence[int] | None = None) -> bytes:
    """The draft's NonceAgg; a bad pubnonce at position i blames identifiers[i] (default i + 1)."""
    if identifiers is None:
        identifiers = range(1, len(pubnonces) + 1)
    parsed = [SigningCommitments.from_bytes(_GROUP, identifier, pubnonce)
              for identifier, pubnonce in zip(identifiers, pubnonces, strict=True)]
    return nonce_aggregate(parsed)


def _take_secnonce(secnonce: bytearray) -> tuple[int, int]:
    first = int.from_bytes(secnonce[:32], "big")
    second = int.from_bytes(secnonce[32:64], "big")
    if len(secnonce) != 64 or not 0 < first < _GROUP.order:
        # An all-zero secnonce is what signing leaves behind: this one was used already.
        raise NonceReuse("the first secret nonce is out of range (already used?)")
    if not 0 < second < _GROUP.order:
        raise InvalidScalar("the second secret nonce is out of range")
    secnonce[:] = bytes(len(secnonce))
    return first, second


def sign(secnonce: bytearray, secshare: bytes, my_id: int, context: SessionContext) -> bytes:
    """The draft's Sign: a 32-byte partial signature; wipes `secnonce`."""
    session, _ = _session(context)
    first, second = _take_secnonce(secnonce)
    share = int.from_bytes(secshare, "big")
    if len(secshare) != 32 or not 0 < share < _GROUP.order:
        raise InvalidScalar("the signer's secret share is out of range")
    if _GROUP.serialize_element(_GROUP.base_mul(share)) not in context.signers.pubshares:
        raise InvalidKeyMaterial("the signer's public share is not in the list of public shares")
    if my_id not in context.signers.ids:
        raise InvalidIdentifier("the signer's id is not in the signer set")
    result = sign_with_session(SECP256K1_TR, session, my_id + 1, share, first, second)
    return _GROUP.serialize_scalar(result.value)


def partial_sig_verify(psig: bytes, pubnonces: Sequence[bytes], signers: SignersContext,
                       tweaks: Sequence[bytes], is_xonly: Sequence[bool], msg: bytes, index: int) -> None:
    """The draft's PartialSigVerify, raising InvalidSignatureShare instead of returning False."""
    signers.validate()
    if len(pubnonces) != len(signers.ids):
        raise InvalidParameters("the pubnonces and ids arrays must have the same length")
    _tweaks(tweaks, is_xonly)
    aggnonce = nonce_agg(pubnonces, signers.identifiers)
    context = SessionContext(aggnonce, signers, tuple(tweaks), tuple(is_xonly), msg)
    session, pubshare_points = _session(context)
    identifier = signers.ids[index] + 1
    value = int.from_bytes(psig, "big")
    if len(psig) != 32 or value >= _GROUP.order:
        raise InvalidSignatureShare("partial signature out of range", culprits=(identifier,))
    commitment = SigningCommitments.from_bytes(_GROUP, identifier, pubnonces[index])
    if not verify_share_with_session(SECP256K1_TR, session, commitment, pubshare_points[index],
                                     SignatureShare(identifier, value)):
        raise InvalidSignatureShare(culprits=(identifier,))


def partial_sig_agg(psigs: Sequence[bytes], context: SessionContext) -> bytes:
    """The draft's PartialSigAgg: the 64-byte BIP-340 signature (not verified here)."""
    session, _ = _session(context)
    identifiers = context.signers.identifiers
    if len(psigs) != len(identifiers):
        raise InvalidParameters("the psigs and ids arrays must have the same length")
    shares = {}
    for identifier, psig in zip(identifiers, psigs, strict=True):
        value = int.from_bytes(psig, "big")
        if len(psig) != 32 or value >= _GROUP.order:
            raise InvalidSignatureShare("partial signature out of range", culprits=(identifier,))
        shares[identifier] = SignatureShare(identifier, value)
    return aggregate_with_session(SECP256K1_TR, session, shares)


def _deterministic_nonce(secshare: bytes, my_id: int, ids: Sequence[int], aggothernonce: bytes,
                         tweaked_key: bytes, msg: bytes, index: int) -> int:
    serialized_ids = b"".join(i.to_bytes(4, "big") for i in sorted(ids))
    data = (secshare + my_id.to_bytes(4, "big") + len(ids).to_bytes(4, "big") + serialized_ids
            + aggothernonce + tweaked_key + len(msg).to_bytes(8, "big") + msg + index.to_bytes(1, "big"))
    return int.from_bytes(tagged_hash(TAG_DETERMINISTIC_NONCE, data), "big") % _GROUP.order


def deterministic_sign(secshare: bytes, my_id: int, aggothernonce: bytes | None, signers: SignersContext,
                       tweaks: Sequence[bytes], is_xonly: Sequence[bool], msg: bytes,
                       rand: bytes | None) -> tuple[bytes, bytes]:
    """The draft's DeterministicSign, for its vectors only (see the module docstring)."""
    if rand is not None:
        mask = tagged_hash(TAG_AUX, rand)
        keyed = bytes(a ^ b for a, b in zip(secshare, mask, strict=True))
    else:
        keyed = bytes(secshare)
    group_key, _ = signers.validate()
    tweaked_key = _GROUP.x_bytes(apply_tweaks(group_key, _tweaks(tweaks, is_xonly)).key)
    other = aggothernonce if aggothernonce is not None else b""
    first, second = (_deterministic_nonce(keyed, my_id, signers.ids, other, tweaked_key, msg, index)
                     for index in (0, 1))
    if first == 0 or second == 0:
        raise InvalidScalar("a zero deterministic nonce (negligible probability)")
    pubnonce = _GROUP.serialize_element(_GROUP.base_mul(first)) + _GROUP.serialize_element(_GROUP.base_mul(second))
    if aggothernonce is None:
        aggnonce = pubnonce
    else:
        try:
            aggnonce = nonce_agg([pubnonce, aggothernonce])
        except InvalidNonceCommitment as error:
            raise InvalidNonceCommitment(f"bad aggothernonce: {error}", sender=None) from None
    secnonce = bytearray(first.to_bytes(32, "big") + second.to_bytes(32, "big"))
    context = SessionContext(aggnonce, signers, tuple(tweaks), tuple(is_xonly), msg)
    return pubnonce, sign(secnonce, secshare, my_id, context)
