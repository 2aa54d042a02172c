"""FROST round one (RFC 9591 §5.1): each signer makes a fresh nonce pair and publishes commitments.

Nonces are hedged (RFC 9591 §4.1: H3(32 fresh random bytes || secret share); BIP-FROST NonceGen for
Taproot), never deterministic. `SigningNonces` is single-use by construction: `sign` consumes it,
wiping its bytes, and a second use raises `NonceReuse`. It cannot be copied, pickled or compared
by value, and its repr shows no secret. There is deliberately no way to serialize it: a nonce
that survives a crash could be used twice, so a lost nonce is simply a new round.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from coffer.mpc.errors import IdentityElement, InvalidNonceCommitment, MalformedInput, NonceReuse
from coffer.mpc.frost.keys import KeyPackage, check_group
from coffer.mpc.hazmat.group import Element, Group, Rng, system_rng

if TYPE_CHECKING:
    from coffer.mpc.frost.ciphersuite import Ciphersuite

__all__ = ["SigningNonces", "SigningCommitments", "commit"]

_CONSTRUCTION_TOKEN = object()


@dataclass(frozen=True, slots=True)
class SigningCommitments:
    """A signer's public round-one message: its identifier and the commitments D = dG, E = eG."""

    identifier: int
    hiding: Element
    binding: Element

    def to_bytes(self, group: Group) -> bytes:
        """serialize(D) || serialize(E); the identifier travels with the authenticated sender."""
        return group.serialize_element(self.hiding) + group.serialize_element(self.binding)

    @classmethod
    def from_bytes(cls, group: Group, identifier: int, data: bytes) -> SigningCommitments:
        """Strict parse; any fault is blamed on `identifier`, the sender."""
        if len(data) != 2 * group.element_length:
            raise InvalidNonceCommitment(
                f"commitments must be {2 * group.element_length} bytes, got {len(data)}", sender=identifier)
        try:
            hiding = group.deserialize_element(data[: group.element_length])
            binding = group.deserialize_element(data[group.element_length:])
        except MalformedInput as error:
            raise InvalidNonceCommitment(f"bad commitment: {error}", sender=identifier) from None
        return cls(identifier, hiding, binding)


class SigningNonces:
    """A signer's secret nonce pair (d, e) for exactly one signature. Consumed by `sign`."""

    __slots__ = ("_secret", "_used", "_lock", "suite_name", "commitments")

    def __init__(self, token: object, suite_name: str, hiding: int, binding: int,
                 commitments: SigningCommitments) -> None:
        if token is not _CONSTRUCTION_TOKEN:
            raise TypeError("SigningNonces are made by round1.commit only")
        self._secret = bytearray(hiding.to_bytes(32, "big") + binding.to_bytes(32, "big"))
        self._used = False
        self._lock = threading.Lock()
        self.suite_name = suite_name
        self.commitments = commitments

    @property
    def identifier(self) -> int:
        return self.commitments.identifier

    @property
    def used(self) -> bool:
        return self._used

    def take(self) -> tuple[int, int]:
        """Return (d, e) once, wiping the stored bytes; any later call raises NonceReuse."""
        with self._lock:
            if self._used:
                raise NonceReuse(f"signing nonces of participant {self.identifier} were already used")
            self._used = True
            hiding = int.from_bytes(self._secret[:32], "big")
            binding = int.from_bytes(self._secret[32:], "big")
            for index in range(len(self._secret)):
                self._secret[index] = 0
        return hiding, binding

    def __repr__(self) -> str:
        state = "used" if self._used else "unused"
        return f"SigningNonces(identifier={self.identifier}, suite={self.suite_name}, <redacted>, {state})"

    def _refuse(self, *_: object) -> NoReturn:
        raise TypeError("SigningNonces are single-use and cannot be copied or serialized")

    __copy__ = _refuse
    __deepcopy__ = _refuse
    __reduce__ = _refuse
    __reduce_ex__ = _refuse
    __getstate__ = _refuse


def _make_nonces(suite: Ciphersuite, identifier: int, hiding: int, binding: int) -> SigningNonces:
    group = suite.group
    if hiding == 0 or binding == 0:
        raise IdentityElement("a zero nonce was derived (negligible probability); commit again")
    commitments = SigningCommitments(identifier, group.base_mul(hiding), group.base_mul(binding))
    return SigningNonces(_CONSTRUCTION_TOKEN, suite.name, hiding, binding, commitments)


def commit(suite: Ciphersuite, key_package: KeyPackage, rng: Rng = system_rng, *,
           extra: bytes = b"") -> tuple[SigningNonces, SigningCommitments]:
    """Round one: fresh hedged nonces and their public commitments for `key_package`'s holder.
    `extra` (RFC 9591 §4.1 allows more input): the message and session id when they are known."""
    check_group(key_package.group, suite.group)
    hiding, binding = suite.generate_nonces(key_package, rng, extra)
    nonces = _make_nonces(suite, key_package.identifier, hiding, binding)
    return nonces, nonces.commitments

