"""FROST for BIP-340 / Taproot, following the BIP-FROST signing draft (siv2r/bip-frost-signing 29467ac).

Differences from RFC 9591 that this ciphersuite carries into `SessionValues`:
- one nonce coefficient b for all signers: b = H("BIP0445/noncecoef", ids || aggnonce || x(Q) || m),
  where aggnonce = (sum D_i, sum E_i) and ids are the sorted 0-based indices (identifier - 1);
- R = R1 + b * R2 (G if that is infinity); the challenge is BIP-340's, over x-only R and Q;
- nonces are negated when R has odd y, the key when Q has odd y (BIP-340 even-y convention);
- tweaks (BIP-32 plain, BIP-341 x-only) change Q; the accumulators gacc / tacc carry them into the
  key factor and the final tweak term.
Nonce generation is the draft's NonceGen: hedged (fresh randomness XOR a hash of the secret share,
bound to the public share, the group key, and optionally the message), never deterministic.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from coffer.btc import schnorr
from coffer.btc.hashes import tagged_hash
from coffer.btc.taproot import tap_tweak
from coffer.mpc.errors import (
    DuplicateIdentifier,
    IdentityElement,
    InsufficientSigners,
    InvalidEncoding,
    InvalidIdentifier,
    InvalidKeyMaterial,
    InvalidNonceCommitment,
    InvalidParameters,
    InvalidSignature,
    InvalidTweak,
    MalformedInput,
)
from coffer.mpc.frost.ciphersuite import SessionValues, Tweak
from coffer.mpc.frost.keys import KeyPackage, PublicKeyPackage, lagrange_coefficient
from coffer.mpc.frost.round1 import SigningCommitments
from coffer.mpc.hazmat.group import SECP256K1, Element, Rng

__all__ = [
    "Secp256k1Taproot",
    "SECP256K1_TR",
    "TweakContext",
    "apply_tweaks",
    "nonce_generate",
    "nonce_aggregate",
    "session_from_aggnonce",
    "validate_signers_context",
    "bip340_verify",
    "taproot_tweak",
    "taproot_output_key",
    "bip32_tweak",
]

TAG_AUX: Final = "BIP0445/aux"
TAG_NONCE: Final = "BIP0445/nonce"
TAG_NONCE_COEFFICIENT: Final = "BIP0445/noncecoef"
TAG_DETERMINISTIC_NONCE: Final = "BIP0445/deterministic/nonce"
TAG_CHALLENGE: Final = "BIP0340/challenge"

_GROUP: Final = SECP256K1
_ORDER: Final = SECP256K1.order
_INFINITY_ENCODING: Final = bytes(33)


@dataclass(frozen=True, slots=True)
class TweakContext:
    """The tweaked key Q with its sign accumulator gacc and tweak accumulator tacc."""

    key: Element
    gacc: int
    tacc: int


def _apply_tweak(context: TweakContext, tweak: Tweak) -> TweakContext:
    if len(tweak.value) != 32:
        raise InvalidTweak("a tweak is 32 bytes")
    value = int.from_bytes(tweak.value, "big")
    if value >= _ORDER:
        raise InvalidTweak("the tweak value is out of range")
    negate = tweak.is_xonly and not _GROUP.has_even_y(context.key)
    sign = _ORDER - 1 if negate else 1
    key = _GROUP.add(_GROUP.mul(context.key, sign), _GROUP.base_mul(value))
    if _GROUP.is_identity(key):
        raise InvalidTweak("the tweaked key is the point at infinity")
    return TweakContext(key, sign * context.gacc % _ORDER, (value + sign * context.tacc) % _ORDER)


def apply_tweaks(group_key: Element, tweaks: Sequence[Tweak]) -> TweakContext:
    """Apply `tweaks` in order to the (plain) group key, as the draft's ApplyTweak does."""
    context = TweakContext(group_key, 1, 0)
    for tweak in tweaks:
        context = _apply_tweak(context, tweak)
    return context


def _nonce_hash(rand: bytes, pubshare: bytes, thresh_pk: bytes, index: int,
                message_prefixed: bytes, extra_in: bytes) -> int:
    data = (rand + len(pubshare).to_bytes(1, "big") + pubshare + len(thresh_pk).to_bytes(1, "big")
            + thresh_pk + message_prefixed + len(extra_in).to_bytes(4, "big") + extra_in
            + index.to_bytes(1, "big"))
    return int.from_bytes(tagged_hash(TAG_NONCE, data), "big") % _ORDER


def nonce_generate(rand: bytes, secshare: bytes | None, pubshare: bytes | None,
                   thresh_pk: bytes | None, message: bytes | None,
                   extra_in: bytes | None) -> tuple[int, int]:
    """The draft's NonceGen with its randomness `rand` passed in (32 fresh bytes in production)."""
    if len(rand) != 32:
        raise InvalidEncoding("nonce randomness is 32 bytes")
    if secshare is not None:
        if len(secshare) != 32:
            raise InvalidEncoding("a secret share is 32 bytes")
        mask = tagged_hash(TAG_AUX, rand)
        rand = bytes(a ^ b for a, b in zip(secshare, mask, strict=True))
    if message is None:
        message_prefixed = b"\x00"
    else:
        message_prefixed = b"\x01" + len(message).to_bytes(8, "big") + message
    values = tuple(
        _nonce_hash(rand, pubshare or b"", thresh_pk or b"", index, message_prefixed, extra_in or b"")
        for index in (0, 1))
    if 0 in values:
        raise IdentityElement("a zero nonce was derived (negligible probability)")
    return values[0], values[1]


def nonce_aggregate(commitments: Sequence[SigningCommitments]) -> bytes:
    """The draft's NonceAgg over parsed commitments: (sum D_i, sum E_i), infinity as 33 zero bytes."""
    out = b""
    for part in ("hiding", "binding"):
        total = _GROUP.sum(getattr(commitment, part) for commitment in commitments)
        out += _INFINITY_ENCODING if _GROUP.is_identity(total) else _GROUP.serialize_element(total)
    return out


def _parse_aggnonce_part(data: bytes) -> Element:
    if data == _INFINITY_ENCODING:
        return _GROUP.identity()
    return _GROUP.deserialize_element(data)


def _serialize_ids(identifiers: Sequence[int]) -> bytes:
    return b"".join((identifier - 1).to_bytes(4, "big") for identifier in sorted(identifiers))


def session_from_aggnonce(identifiers: Sequence[int], group_key: Element, aggnonce: bytes,
                          message: bytes, tweaks: Sequence[Tweak]) -> SessionValues:
    """The draft's GetSessionValues; a malformed aggnonce is the coordinator's fault."""
    tweak_context = apply_tweaks(group_key, tweaks)
    key = tweak_context.key
    try:
        if len(aggnonce) != 66:
            raise InvalidEncoding("an aggregate nonce is 66 bytes")
        first = _parse_aggnonce_part(aggnonce[:33])
        second = _parse_aggnonce_part(aggnonce[33:])
    except MalformedInput as error:
        raise InvalidNonceCommitment(f"bad aggregate nonce: {error}", sender=None) from None
    coefficient = int.from_bytes(tagged_hash(
        TAG_NONCE_COEFFICIENT, _serialize_ids(identifiers) + aggnonce + _GROUP.x_bytes(key) + message),
        "big") % _ORDER
    commitment = _GROUP.add(first, _GROUP.mul(second, coefficient))
    if _GROUP.is_identity(commitment):
        commitment = _GROUP.generator()
    challenge = int.from_bytes(tagged_hash(
        TAG_CHALLENGE, _GROUP.x_bytes(commitment) + _GROUP.x_bytes(key) + message), "big") % _ORDER
    key_sign = 1 if _GROUP.has_even_y(key) else _ORDER - 1
    return SessionValues(
        identifiers=tuple(sorted(identifiers)),
        binding_factors=dict.fromkeys(identifiers, coefficient),
        group_commitment=commitment,
        challenge=challenge,
        signing_key=key,
        nonce_factor=1 if _GROUP.has_even_y(commitment) else _ORDER - 1,
        key_factor=key_sign * tweak_context.gacc % _ORDER,
        tweak_term=challenge * key_sign * tweak_context.tacc % _ORDER,
    )


def validate_signers_context(max_signers: int, min_signers: int, identifiers: Sequence[int],
                             pubshares: Sequence[bytes], thresh_pk: bytes) -> tuple[Element, list[Element]]:
    """The draft's ValidateSignersCtx over 1-based identifiers; returns the parsed key and shares."""
    if not 1 <= min_signers <= max_signers:
        raise InvalidParameters("the threshold must be 1 <= t <= n")
    if not min_signers <= len(identifiers) <= max_signers:
        raise InsufficientSigners("the number of signers must be between t and n")
    if len(pubshares) != len(identifiers):
        raise InvalidParameters("the public shares and identifiers must have the same length")
    points = []
    for identifier, pubshare in zip(identifiers, pubshares, strict=True):
        if not 1 <= identifier <= max_signers:
            raise InvalidIdentifier(f"identifier {identifier} is out of range")
        try:
            points.append(_GROUP.deserialize_element(pubshare))
        except MalformedInput:
            raise InvalidKeyMaterial("invalid public share", identifier=identifier) from None
    if len(set(identifiers)) != len(identifiers):
        duplicate = next(i for i in identifiers if list(identifiers).count(i) > 1)
        raise DuplicateIdentifier("the signer set contains duplicates", identifier=duplicate)
    key = _GROUP.sum(_GROUP.mul(point, lagrange_coefficient(_GROUP, identifiers, identifier))
                     for identifier, point in zip(identifiers, points, strict=True))
    try:
        expected = _GROUP.deserialize_element(thresh_pk)
    except MalformedInput:
        raise InvalidKeyMaterial("invalid threshold public key") from None
    if key != expected:
        raise InvalidKeyMaterial("the provided key material is incorrect")
    return expected, points


def bip340_verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """BIP-340 Verify; raises InvalidSignature. `public_key` is the 32-byte x-only key."""
    try:
        schnorr.verify(public_key, message, signature)
    except schnorr.InvalidSchnorrSignature as exc:
        raise InvalidSignature(str(exc)) from None


def taproot_tweak(internal_key: Element, merkle_root: bytes = b"") -> Tweak:
    """The BIP-341 x-only tweak t = H_TapTweak(x(P) || merkle_root) (merkle_root empty: key path only)."""
    if len(merkle_root) not in (0, 32):
        raise InvalidTweak("a merkle root is 32 bytes")
    return Tweak(tap_tweak(_GROUP.x_bytes(internal_key), merkle_root), True)


def taproot_output_key(public: PublicKeyPackage, merkle_root: bytes = b"") -> tuple[bytes, tuple[Tweak, ...]]:
    """The P2TR output key (32-byte x-only) of the group key as internal key, and the tweaks to
    sign with for a key-path spend. `merkle_root` empty: no script path (BIP-341 key-path only)."""
    tweaks = (taproot_tweak(public.group_public_key, merkle_root),)
    return _GROUP.x_bytes(apply_tweaks(public.group_public_key, tweaks).key), tweaks


def bip32_tweak(public_key: Element, chain_code: bytes, index: int) -> tuple[Tweak, bytes]:
    """BIP-32 non-hardened CKDpub as a plain tweak: (I_L as tweak, child chain code I_R)."""
    if len(chain_code) != 32:
        raise InvalidTweak("a chain code is 32 bytes")
    if not 0 <= index < 2**31:
        raise InvalidTweak("only non-hardened indices can be derived from a public key")
    digest = hmac.new(chain_code, _GROUP.serialize_element(public_key) + index.to_bytes(4, "big"),
                      hashlib.sha512).digest()
    if int.from_bytes(digest[:32], "big") >= _ORDER:
        raise InvalidTweak("BIP-32 derivation gave an out-of-range tweak; use the next index")
    return Tweak(digest[:32], False), digest[32:]


class Secp256k1Taproot:
    """FROST(secp256k1, SHA-256) producing BIP-340 signatures, per the BIP-FROST signing draft."""

    name = "FROST(secp256k1, SHA-256, BIP-340)"
    context_string = b"BIP0445"
    group = SECP256K1
    signature_length = 64
    supports_tweaks = True

    def generate_nonces(self, key_package: KeyPackage, rng: Rng, extra: bytes = b"") -> tuple[int, int]:
        group_key = key_package.public.group_public_key
        return nonce_generate(
            rng(32), _GROUP.serialize_scalar(key_package.secret_share),
            _GROUP.serialize_element(key_package.verifying_share), _GROUP.x_bytes(group_key), None, extra or None)

    def signing_key(self, public: PublicKeyPackage, tweaks: Sequence[Tweak]) -> Element:
        return apply_tweaks(public.group_public_key, tweaks).key

    def session(self, public: PublicKeyPackage, commitments: Sequence[SigningCommitments],
                message: bytes, tweaks: Sequence[Tweak]) -> SessionValues:
        identifiers = [commitment.identifier for commitment in commitments]
        return session_from_aggnonce(identifiers, public.group_public_key, nonce_aggregate(commitments),
                                     message, tweaks)

    def encode_signature(self, group_commitment: Element, response: int) -> bytes:
        return _GROUP.x_bytes(group_commitment) + _GROUP.serialize_scalar(response)

    def verify(self, public_key: Element, message: bytes, signature: bytes) -> None:
        bip340_verify(_GROUP.x_bytes(public_key), message, signature)


SECP256K1_TR: Final = Secp256k1Taproot()
