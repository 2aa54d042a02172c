"""Operators, their roles and their registered public keys.

An operator is a person; each holds an Ed25519 signing key whose public key is registered here
(and may later register other kinds of credential, e.g. a WebAuthn key, under another scheme).
Clients are not operators: they are identified by their account.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import nacl.signing

from coffer.policy.errors import PolicyError, UnknownOperator

__all__ = ["Role", "Operator", "OperatorRegistry", "OperatorKey", "generate_operator_key",
           "OPERATOR_ID_PATTERN", "ED25519_SCHEME", "COMPANY_ACCOUNT", "client_principal"]

OPERATOR_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
ED25519_SCHEME = "ed25519"
COMPANY_ACCOUNT = "company"
OPERATORS_MAX = 10_000


class Role(enum.Enum):
    INITIATOR = "initiator"
    APPROVER = "approver"
    SECURITY_OFFICER = "security_officer"
    POLICY_ADMIN = "policy_admin"


def client_principal(account: str) -> str:
    """The initiator id of a withdrawal a client asked for itself."""
    return f"client:{account}"


@dataclass(frozen=True, slots=True)
class Operator:
    """One operator: id, roles, and public keys by scheme (`ed25519` always present)."""

    operator_id: str
    roles: frozenset[Role]
    ed25519_public_key: bytes
    other_keys: tuple[tuple[str, bytes], ...] = field(default=())

    def __post_init__(self) -> None:
        if not OPERATOR_ID_PATTERN.fullmatch(self.operator_id):
            raise PolicyError(f"operator id {self.operator_id!r} is not allowed")
        if len(self.ed25519_public_key) != 32:
            raise PolicyError("an Ed25519 public key is 32 bytes")
        if not self.roles:
            raise PolicyError(f"operator {self.operator_id} has no role")

    def has(self, role: Role) -> bool:
        return role in self.roles

    def key_for(self, scheme: str) -> bytes | None:
        if scheme == ED25519_SCHEME:
            return self.ed25519_public_key
        for name, key in self.other_keys:
            if name == scheme:
                return key
        return None


class OperatorRegistry:
    """An immutable view of registered operators, looked up by id."""

    __slots__ = ("_by_id",)

    def __init__(self, operators: Iterable[Operator]) -> None:
        by_id: dict[str, Operator] = {}
        keys: set[bytes] = set()
        for operator in operators:
            if operator.operator_id in by_id:
                raise PolicyError(f"operator {operator.operator_id} registered twice")
            if operator.ed25519_public_key in keys:
                raise PolicyError(f"operator {operator.operator_id} reuses another operator's key")
            by_id[operator.operator_id] = operator
            keys.add(operator.ed25519_public_key)
        if len(by_id) > OPERATORS_MAX:
            raise PolicyError("too many operators")
        self._by_id: Mapping[str, Operator] = by_id

    def get(self, operator_id: str) -> Operator:
        operator = self._by_id.get(operator_id)
        if operator is None:
            raise UnknownOperator(f"no operator {operator_id!r}", rule="operator.unknown")
        return operator

    def __contains__(self, operator_id: object) -> bool:
        return operator_id in self._by_id

    def __iter__(self) -> Iterator[Operator]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def with_roles(self, role: Role) -> tuple[Operator, ...]:
        return tuple(op for op in self._by_id.values() if role in op.roles)


class OperatorKey:
    """An operator's Ed25519 signing key (held by the operator, never by Coffer's services)."""

    __slots__ = ("_signing",)

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise PolicyError("an Ed25519 seed is 32 bytes")
        self._signing = nacl.signing.SigningKey(bytes(seed))

    def __repr__(self) -> str:
        return f"OperatorKey(public={self.public_key.hex()[:16]}..., seed=<redacted>)"

    @property
    def public_key(self) -> bytes:
        return bytes(self._signing.verify_key)

    def sign(self, message: bytes) -> bytes:
        return bytes(self._signing.sign(message).signature)

    def seed_hex(self) -> str:
        """For writing the operator's own key file only."""
        return bytes(self._signing).hex()


def generate_operator_key() -> OperatorKey:
    return OperatorKey(bytes(nacl.signing.SigningKey.generate()))
