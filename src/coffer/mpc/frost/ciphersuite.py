"""The ciphersuite interface FROST is written against, and the two RFC 9591 ciphersuites.

A ciphersuite fixes the group, the hash functions H1..H5 with their versioned context string, how
nonces are generated, how the per-session public values (binding factors, group commitment R,
challenge c) are derived, and how a signature is encoded and verified. The generic rounds
(`round1`, `round2`, `aggregate`) only see a `SessionValues`, so the same code signs for
FROST(Ed25519, SHA-512), FROST(secp256k1, SHA-256) and BIP-340/Taproot (`taproot.py`).

`SessionValues` carries three factors that are 1, 1, 0 for RFC 9591 and carry the BIP-340 parity
and tweak handling for Taproot:

    z_i = nonce_factor * (d_i + rho_i * e_i) + c * lambda_i * key_factor * s_i
    z   = sum(z_i) + tweak_term
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from coffer.mpc.errors import (
    IdentityElement,
    InvalidParameters,
    InvalidSignature,
    MalformedInput,
)
from coffer.mpc.frost.keys import KeyPackage, PublicKeyPackage
from coffer.mpc.frost.round1 import SigningCommitments
from coffer.mpc.hazmat.group import ED25519, SECP256K1, Element, Group, Rng
from coffer.mpc.hazmat.hashing import expand_message_xmd

__all__ = [
    "Tweak",
    "SessionValues",
    "Ciphersuite",
    "Rfc9591Ciphersuite",
    "Ed25519Sha512",
    "Secp256k1Sha256",
    "encode_group_commitment_list",
]


@dataclass(frozen=True, slots=True)
class Tweak:
    """A BIP-32 style plain tweak (is_xonly False) or a BIP-341 x-only tweak (is_xonly True)."""

    value: bytes
    is_xonly: bool


@dataclass(frozen=True, slots=True)
class SessionValues:
    """Everything public a signer and the aggregator derive for one signing session."""

    identifiers: tuple[int, ...]
    binding_factors: Mapping[int, int]
    group_commitment: Element
    challenge: int
    signing_key: Element
    nonce_factor: int = 1
    key_factor: int = 1
    tweak_term: int = 0


class Ciphersuite(Protocol):
    """What the generic FROST rounds need from a ciphersuite."""

    @property
    def name(self) -> str: ...

    @property
    def context_string(self) -> bytes: ...

    @property
    def group(self) -> Group: ...

    @property
    def signature_length(self) -> int: ...

    @property
    def supports_tweaks(self) -> bool: ...

    def generate_nonces(self, key_package: KeyPackage, rng: Rng, extra: bytes = b"") -> tuple[int, int]:
        """Two fresh hedged nonces (hiding d, binding e) for `key_package`'s holder; `extra` (the
        message and session id at signing time) goes into the hash too, so a repeating RNG alone
        never repeats a nonce across messages."""
        ...

    def session(self, public: PublicKeyPackage, commitments: Sequence[SigningCommitments],
                message: bytes, tweaks: Sequence[Tweak]) -> SessionValues:
        """The session's public values; `commitments` is sorted by identifier and checked."""
        ...

    def signing_key(self, public: PublicKeyPackage, tweaks: Sequence[Tweak]) -> Element:
        """The key the final signature verifies under (the tweaked key for Taproot)."""
        ...

    def encode_signature(self, group_commitment: Element, response: int) -> bytes: ...

    def verify(self, public_key: Element, message: bytes, signature: bytes) -> None:
        """Raise InvalidSignature unless `signature` is valid for `message` under `public_key`."""
        ...


def encode_group_commitment_list(group: Group, commitments: Sequence[SigningCommitments]) -> bytes:
    """RFC 9591 §4.3: identifier || D || E for each signer, in identifier order."""
    out = bytearray()
    for commitment in commitments:
        out += group.serialize_scalar(commitment.identifier)
        out += group.serialize_element(commitment.hiding)
        out += group.serialize_element(commitment.binding)
    return bytes(out)


class Rfc9591Ciphersuite:
    """The generic part of an RFC 9591 ciphersuite; subclasses define the group and H1..H5."""

    name: str
    context_string: bytes
    group: Group
    signature_length: int
    supports_tweaks = False

    def h1(self, message: bytes) -> int:
        raise NotImplementedError

    def h2(self, message: bytes) -> int:
        raise NotImplementedError

    def h3(self, message: bytes) -> int:
        raise NotImplementedError

    def h4(self, message: bytes) -> bytes:
        raise NotImplementedError

    def h5(self, message: bytes) -> bytes:
        raise NotImplementedError

    def nonce_generate(self, secret: int, random_bytes: bytes, extra: bytes = b"") -> int:
        """RFC 9591 §4.1: H3(random_bytes || SerializeScalar(secret)), with optional extra input
        appended (length-prefixed) as the RFC allows; without it, exactly the RFC's value."""
        suffix = len(extra).to_bytes(8, "big") + extra if extra else b""
        return self.h3(random_bytes + self.group.serialize_scalar(secret) + suffix)

    def generate_nonces(self, key_package: KeyPackage, rng: Rng, extra: bytes = b"") -> tuple[int, int]:
        hiding = self.nonce_generate(key_package.secret_share, rng(32), extra)
        binding = self.nonce_generate(key_package.secret_share, rng(32), extra)
        return hiding, binding

    def binding_factor_prefix(self, public_key: Element, commitments: Sequence[SigningCommitments],
                              message: bytes) -> bytes:
        """RFC 9591 §4.4: SerializeElement(PK) || H4(msg) || H5(encoded commitment list)."""
        group = self.group
        encoded = encode_group_commitment_list(group, commitments)
        return group.serialize_element(public_key) + self.h4(message) + self.h5(encoded)

    def binding_factors(self, public_key: Element, commitments: Sequence[SigningCommitments],
                        message: bytes) -> dict[int, int]:
        prefix = self.binding_factor_prefix(public_key, commitments, message)
        return {commitment.identifier: self.h1(prefix + self.group.serialize_scalar(commitment.identifier))
                for commitment in commitments}

    def group_commitment(self, commitments: Sequence[SigningCommitments],
                         binding_factors: Mapping[int, int]) -> Element:
        """RFC 9591 §4.5: sum of D_i + rho_i * E_i; the identity aborts the session."""
        group = self.group
        terms: list[Element] = []
        for commitment in commitments:
            terms.append(commitment.hiding)
            terms.append(group.mul(commitment.binding, binding_factors[commitment.identifier]))
        result = group.sum(terms)
        if group.is_identity(result):
            raise IdentityElement("the group commitment is the identity")
        return result

    def compute_challenge(self, group_commitment: Element, public_key: Element, message: bytes) -> int:
        """RFC 9591 §4.6: H2(SerializeElement(R) || SerializeElement(PK) || msg)."""
        group = self.group
        return self.h2(group.serialize_element(group_commitment) + group.serialize_element(public_key) + message)

    def signing_key(self, public: PublicKeyPackage, tweaks: Sequence[Tweak]) -> Element:
        if tweaks:
            raise InvalidParameters(f"{self.name} does not support tweaks")
        return public.group_public_key

    def session(self, public: PublicKeyPackage, commitments: Sequence[SigningCommitments],
                message: bytes, tweaks: Sequence[Tweak]) -> SessionValues:
        public_key = self.signing_key(public, tweaks)
        binding_factors = self.binding_factors(public_key, commitments, message)
        group_commitment = self.group_commitment(commitments, binding_factors)
        challenge = self.compute_challenge(group_commitment, public_key, message)
        return SessionValues(
            identifiers=tuple(commitment.identifier for commitment in commitments),
            binding_factors=binding_factors, group_commitment=group_commitment,
            challenge=challenge, signing_key=public_key)

    def encode_signature(self, group_commitment: Element, response: int) -> bytes:
        return self.group.serialize_element(group_commitment) + self.group.serialize_scalar(response)

    def decode_signature(self, signature: bytes) -> tuple[Element, int]:
        group = self.group
        if len(signature) != self.signature_length:
            raise InvalidSignature(f"a {self.name} signature is {self.signature_length} bytes")
        try:
            commitment = group.deserialize_element(signature[: group.element_length])
            response = group.deserialize_scalar(signature[group.element_length:])
        except MalformedInput as error:
            raise InvalidSignature(f"malformed signature: {error}") from None
        return commitment, response

    def verify(self, public_key: Element, message: bytes, signature: bytes) -> None:
        """RFC 9591 §6 verification (cofactored for Ed25519: both sides times the cofactor)."""
        group = self.group
        if group.is_identity(public_key):
            raise InvalidSignature("the public key is the identity")
        commitment, response = self.decode_signature(signature)
        challenge = self.compute_challenge(commitment, public_key, message)
        left = group.base_mul(response)
        right = group.add(commitment, group.mul(public_key, challenge))
        cofactor = self.cofactor
        if group.mul(left, cofactor) != group.mul(right, cofactor):
            raise InvalidSignature(f"{self.name} signature does not verify")

    cofactor: int = 1


class Ed25519Sha512(Rfc9591Ciphersuite):
    """FROST(Ed25519, SHA-512), RFC 9591 §6.1: signatures are plain RFC 8032 Ed25519 signatures."""

    name = "FROST(Ed25519, SHA-512)"
    context_string = b"FROST-ED25519-SHA512-v1"
    group = ED25519
    signature_length = 64
    cofactor = 8

    def _wide(self, data: bytes) -> int:
        return int.from_bytes(hashlib.sha512(data).digest(), "little") % self.group.order

    def h1(self, message: bytes) -> int:
        return self._wide(self.context_string + b"rho" + message)

    def h2(self, message: bytes) -> int:
        # No context string: the challenge is RFC 8032's, so any Ed25519 verifier accepts.
        return self._wide(message)

    def h3(self, message: bytes) -> int:
        return self._wide(self.context_string + b"nonce" + message)

    def h4(self, message: bytes) -> bytes:
        return hashlib.sha512(self.context_string + b"msg" + message).digest()

    def h5(self, message: bytes) -> bytes:
        return hashlib.sha512(self.context_string + b"com" + message).digest()


class Secp256k1Sha256(Rfc9591Ciphersuite):
    """FROST(secp256k1, SHA-256), RFC 9591 §6.5: 65-byte signatures (compressed R || z)."""

    name = "FROST(secp256k1, SHA-256)"
    context_string = b"FROST-secp256k1-SHA256-v1"
    group = SECP256K1
    signature_length = 65

    def _hash_to_field(self, message: bytes, tag: bytes) -> int:
        uniform = expand_message_xmd(message, self.context_string + tag, 48, "sha256")
        return int.from_bytes(uniform, "big") % self.group.order

    def h1(self, message: bytes) -> int:
        return self._hash_to_field(message, b"rho")

    def h2(self, message: bytes) -> int:
        return self._hash_to_field(message, b"chal")

    def h3(self, message: bytes) -> int:
        return self._hash_to_field(message, b"nonce")

    def h4(self, message: bytes) -> bytes:
        return hashlib.sha256(self.context_string + b"msg" + message).digest()

    def h5(self, message: bytes) -> bytes:
        return hashlib.sha256(self.context_string + b"com" + message).digest()


ED25519_SHA512: Final = Ed25519Sha512()
SECP256K1_SHA256: Final = Secp256k1Sha256()
