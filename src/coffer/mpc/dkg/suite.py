"""The group-specific half of the DKG: encodings, hashes, Schnorr proofs, ECDH, the VSS tweak.

The protocol code (`protocol.py`, `refresh.py`, `reshare.py`) is written once over `DkgSuite`.
Two suites exist:

* `SECP256K1_CHILLDKG` reproduces ChillDKG (BlockstreamResearch/bip-frost-dkg, revision a918968)
  byte for byte: BIP-340 tagged SHA-256 hashes under the prefix "BIP DKG/", 33-byte compressed
  elements (33 zero bytes for the identity inside VSS commitments), BIP-340 Schnorr signatures
  for proofs of possession and CertEq, libsecp256k1-style ECDH (SHA-256 of the compressed shared
  point), and the Taproot tweak that gives the threshold key an unspendable script path.
* `ED25519_DKG` is the same SimplPedPop + proof of possession + EncPedPop + CertEq design over the
  prime-order subgroup of edwards25519 (Coffer's own instantiation, no published vectors):
  tags under "COFFER DKG ed25519 v1/", scalars derived by wide reduction of a tagged SHA-512,
  Schnorr signatures (R || s, challenge = tagged SHA-512 of R || A || m reduced mod l), and
  ephemeral-static ECDH on edwards25519 itself (not X25519): shared = k * P with P strictly
  parsed (canonical, prime-order subgroup, not the identity), pad input = SHA-256(shared). No
  Taproot tweak.
* `SECP256K1_UNTWEAKED` is ChillDKG over secp256k1 without the Taproot tweak and under its own
  tags ("COFFER DKG secp256k1 untweaked v1/"), for the threshold ECDSA key.

Everything here is pure. Nothing here may log or put into an error a scalar it was given.
"""

from __future__ import annotations

import hashlib
from typing import Final

from coffer.btc import schnorr
from coffer.btc.hashes import tagged_hash
from coffer.btc.taproot import tap_tweak
from coffer.invariant import invariant
from coffer.mpc.dkg.errors import HostSeckeyError, InvalidArgument
from coffer.mpc.errors import MalformedInput
from coffer.mpc.hazmat.group import ED25519, SECP256K1, Ed25519Group, Element, Group, Secp256k1Group

__all__ = ["DkgSuite", "Secp256k1ChillSuite", "Secp256k1UntweakedSuite", "Ed25519DkgSuite",
           "SECP256K1_CHILLDKG", "SECP256K1_UNTWEAKED", "ED25519_DKG",
           "SIGNATURE_LENGTH", "SCALAR_LENGTH"]

SIGNATURE_LENGTH: Final = 64
SCALAR_LENGTH: Final = 32


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


class DkgSuite:
    """What the generic DKG needs from a group. Elements are `coffer.mpc.hazmat.group.Element`.

    The group operations delegate to `group`; a suite adds its hashes, encodings, Schnorr
    proofs, key exchange and VSS tweak.
    """

    name: str
    tag_prefix: str
    element_length: int
    certeq_prefix_length: int
    host_signature_tag: str
    order: int
    group: Group

    def __init__(self, group: Group) -> None:
        self.group = group
        self.order = group.order

    # -- hashing -------------------------------------------------------------------------------

    def tagged_hash(self, tag: str, message: bytes) -> bytes:
        """32 bytes, domain-separated under this suite's tag prefix."""
        return tagged_hash(self.tag_prefix + tag, message)

    def scalar_from_hash_checked(self, tag: str, message: bytes) -> int:
        raise NotImplementedError

    def scalar_from_hash_wrapping(self, tag: str, message: bytes) -> int:
        raise NotImplementedError

    # -- scalars -------------------------------------------------------------------------------

    def encode_scalar(self, scalar: int) -> bytes:
        return self.group.serialize_scalar(scalar)

    def decode_scalar(self, data: bytes) -> int:
        """Strict: exactly 32 bytes and below the order (raises MalformedInput)."""
        return self.group.deserialize_scalar(data)

    def host_secret_scalar(self, hostseckey: bytes) -> int:
        """The scalar behind a 32-byte host secret key (raises HostSeckeyError)."""
        raise NotImplementedError

    # -- elements ------------------------------------------------------------------------------

    def identity(self) -> Element:
        return self.group.identity()

    def is_identity(self, element: Element) -> bool:
        return self.group.is_identity(element)

    def add(self, left: Element, right: Element) -> Element:
        return self.group.add(left, right)

    def sub(self, left: Element, right: Element) -> Element:
        return self.group.sub(left, right)

    def sum(self, elements: list[Element]) -> Element:
        return self.group.sum(elements)

    def mul(self, element: Element, scalar: int) -> Element:
        return self.group.mul(element, scalar % self.order)

    def base_mul(self, scalar: int) -> Element:
        return self.group.base_mul(scalar % self.order)

    def encode(self, element: Element) -> bytes:
        """Fixed-length encoding that also covers the identity (inside VSS commitments)."""
        raise NotImplementedError

    def decode(self, data: bytes) -> Element:
        """Strict inverse of `encode`; the identity is allowed (raises MalformedInput)."""
        raise NotImplementedError

    def decode_point(self, data: bytes) -> Element:
        """Strict parse of an element that must not be the identity (raises MalformedInput)."""
        return self.group.deserialize_element(data)

    # -- signatures and key exchange -----------------------------------------------------------

    def sign(self, message: bytes, secret: int, aux_rand: bytes, tag_prefix: str) -> bytes:
        raise NotImplementedError

    def verify(self, message: bytes, public: Element, signature: bytes, tag_prefix: str) -> bool:
        raise NotImplementedError

    def ecdh(self, secret: int, their_public: bytes) -> bytes:
        """32 bytes shared with the owner of `their_public` (raises MalformedInput if invalid)."""
        point = self.group.deserialize_element(their_public)
        shared = self.group.mul(point, secret % self.order)
        return hashlib.sha256(self.group.serialize_element(shared)).digest()

    def vss_tweak(self, commitment_to_secret: Element) -> int:
        """The scalar added to every share (0: no tweak)."""
        return 0

    # -- helpers shared by every suite ---------------------------------------------------------

    def pubkey_gen(self, hostseckey: bytes) -> bytes:
        if len(hostseckey) != 32:
            raise InvalidArgument("a host secret key is 32 bytes")
        return self.encode(self.base_mul(self.host_secret_scalar(hostseckey)))

    def reduce(self, value: int) -> int:
        return value % self.order


class Secp256k1ChillSuite(DkgSuite):
    """ChillDKG exactly as the BIP draft specifies it, over libsecp256k1."""

    name = "secp256k1"
    tag_prefix = "BIP DKG/"
    element_length = 33
    certeq_prefix_length = 33
    host_signature_tag = "BIP0340"
    _identity_wire = bytes(33)
    group: Secp256k1Group

    def __init__(self, group: Secp256k1Group = SECP256K1) -> None:
        super().__init__(group)

    def scalar_from_hash_checked(self, tag: str, message: bytes) -> int:
        value = int.from_bytes(self.tagged_hash(tag, message), "big")
        # Probability below 2^-127; the BIP raises here too.
        invariant(value < self.order, "tagged hash exceeded the secp256k1 order")
        return value

    def scalar_from_hash_wrapping(self, tag: str, message: bytes) -> int:
        return int.from_bytes(self.tagged_hash(tag, message), "big") % self.order

    def host_secret_scalar(self, hostseckey: bytes) -> int:
        if len(hostseckey) != 32:
            raise InvalidArgument("a host secret key is 32 bytes")
        value = int.from_bytes(hostseckey, "big")
        if not 1 <= value < self.order:
            raise HostSeckeyError("host secret key out of range")
        return value

    def encode(self, element: Element) -> bytes:
        if self.group.is_identity(element):
            return self._identity_wire
        return self.group.serialize_element(element)

    def decode(self, data: bytes) -> Element:
        if bytes(data) == self._identity_wire:
            return self.group.identity()
        return self.group.deserialize_element(data)

    def sign(self, message: bytes, secret: int, aux_rand: bytes, tag_prefix: str) -> bytes:
        """BIP-340 signing with a configurable tag prefix (ChillDKG's proofs of possession)."""
        return schnorr.sign(message, secret, aux_rand, tag_prefix=tag_prefix)

    def verify(self, message: bytes, public: Element, signature: bytes, tag_prefix: str) -> bool:
        """BIP-340 verification against the x-only form of `public`."""
        if len(signature) != 64 or self.group.is_identity(public):
            return False
        try:
            schnorr.verify(self.group.x_bytes(public), message, signature, tag_prefix=tag_prefix)
        except schnorr.InvalidSchnorrSignature:
            return False
        return True

    def vss_tweak(self, commitment_to_secret: Element) -> int:
        # BIP-341's recommended unspendable script path: tweak = TapTweak(xonly(P)) with no
        # script tree, so no participant can hide a script path in the threshold key.
        value = int.from_bytes(tap_tweak(self.group.x_bytes(commitment_to_secret)), "big")
        invariant(value < self.order, "TapTweak exceeded the secp256k1 order")
        return value


class Ed25519DkgSuite(DkgSuite):
    """SimplPedPop + proofs of possession + EncPedPop + CertEq over Ed25519 (Coffer-defined)."""

    name = "ed25519"
    tag_prefix = "COFFER DKG ed25519 v1/"
    element_length = 32
    certeq_prefix_length = 64
    host_signature_tag = "COFFER DKG ed25519 v1/host signature"
    group: Ed25519Group

    def __init__(self, group: Ed25519Group = ED25519) -> None:
        super().__init__(group)

    def _wide(self, full_tag: str, message: bytes) -> int:
        """A scalar by wide reduction of SHA-512(SHA-256(tag) || SHA-256(tag) || message)."""
        tag_hash = hashlib.sha256(full_tag.encode()).digest()
        digest = hashlib.sha512(tag_hash + tag_hash + message).digest()
        return int.from_bytes(digest, "little") % self.order

    def scalar_from_hash_checked(self, tag: str, message: bytes) -> int:
        return self._wide(self.tag_prefix + tag, message)

    def scalar_from_hash_wrapping(self, tag: str, message: bytes) -> int:
        return self._wide(self.tag_prefix + tag, message)

    def host_secret_scalar(self, hostseckey: bytes) -> int:
        # A random 32-byte string is usually not below l, so the key is derived, not parsed.
        if len(hostseckey) != 32:
            raise InvalidArgument("a host secret key is 32 bytes")
        value = self._wide(self.tag_prefix + "host secret key", hostseckey)
        if value == 0:
            raise HostSeckeyError("host secret key derives to zero")
        return value

    def encode(self, element: Element) -> bytes:
        return element.encoding

    def decode(self, data: bytes) -> Element:
        if bytes(data) == self.group.identity().encoding:
            return self.group.identity()
        return self.group.deserialize_element(data)

    def sign(self, message: bytes, secret: int, aux_rand: bytes, tag_prefix: str) -> bytes:
        invariant(1 <= secret < self.order, "signing key out of range")
        invariant(len(aux_rand) == 32, "aux_rand is 32 bytes")
        public = self.group.serialize_element(self.group.base_mul(secret))
        masked = _xor(secret.to_bytes(32, "little"), tagged_hash(tag_prefix + "/aux", aux_rand))
        k = self._wide(tag_prefix + "/nonce", masked + public + message)
        invariant(k != 0, "Schnorr nonce is zero")
        nonce = self.group.serialize_element(self.group.base_mul(k))
        challenge = self._wide(tag_prefix + "/challenge", nonce + public + message)
        return nonce + self.group.serialize_scalar((k + challenge * secret) % self.order)

    def verify(self, message: bytes, public: Element, signature: bytes, tag_prefix: str) -> bool:
        if len(signature) != 64 or self.group.is_identity(public):
            return False
        try:
            nonce = self.group.deserialize_element(signature[:32])
            s = self.group.deserialize_scalar(signature[32:])
        except MalformedInput:
            return False
        challenge = self._wide(tag_prefix + "/challenge", signature[:32] + public.encoding + message)
        expected = self.group.add(nonce, self.group.mul(public, challenge))
        return self.group.base_mul(s) == expected


class Secp256k1UntweakedSuite(Secp256k1ChillSuite):
    """ChillDKG's design over secp256k1 without the Taproot tweak, for keys that are not Taproot
    keys (the threshold ECDSA key). Its own tags keep its transcripts apart from ChillDKG's."""

    tag_prefix = "COFFER DKG secp256k1 untweaked v1/"
    certeq_prefix_length = 64
    host_signature_tag = "COFFER DKG secp256k1 untweaked v1/host signature"

    def vss_tweak(self, commitment_to_secret: Element) -> int:
        return 0


SECP256K1_CHILLDKG: Final = Secp256k1ChillSuite()
SECP256K1_UNTWEAKED: Final = Secp256k1UntweakedSuite()
ED25519_DKG: Final = Ed25519DkgSuite()
