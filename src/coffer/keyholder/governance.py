"""The governance quorum: every lifecycle change a key holder acts on is an action signed by k of
the administrators it pinned at its ceremony.

An action names its kind, its exact content, its scope (a key id and the key holders it is for),
a domain (the deployment), a fresh nonce and a time after which it is void. k distinct pinned
administrators sign the digest of its canonical encoding. A key holder verifies the signatures
itself (`verify`), checks the kind and scope against what it is asked to do (`require`), records
the action's digest so it can never be applied twice, and only then acts. Administrator and
officer sets change only by actions signed by the current quorum (`apply`).

Pure: no I/O, no clock (the caller passes `now_s`). The coordinator only carries these messages;
it holds no administrator key, so it can make none.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import nacl.exceptions
import nacl.signing

from coffer.canonical import NotCanonical, canonical_digest, canonical_json
from coffer.errors import Refused

__all__ = [
    "ActionKind", "Scope", "GovernanceAction", "AdminSignature", "SignedAction", "Administrator", "Officer",
    "GovernancePins", "GovernanceRefused", "verify", "require", "apply", "sign", "new_action", "fingerprint",
    "ADMINS_MAX", "ADMIN_THRESHOLD_MIN", "ACTION_LIFETIME_S_MAX", "ACTION_BYTES_MAX", "OFFICERS_MAX",
    "KEYHOLDERS_MAX", "ACTION_TAG",
]

ACTION_TAG: Final = "coffer/governance/action/v1"
ADMINS_MAX: Final = 16
ADMIN_THRESHOLD_MIN: Final = 2
OFFICERS_MAX: Final = 64
OFFICER_QUORUM_MIN: Final = 2
KEYHOLDERS_MAX: Final = 255
ACTION_LIFETIME_S_MAX: Final = 7 * 24 * 3600
ACTION_BYTES_MAX: Final = 256 * 1024
ID_CHARS_MAX: Final = 64
NONCE_HEX_CHARS: Final = 32


class GovernanceRefused(Refused):
    """A governance action that does not verify, or is not for what it is used for; `rule` names why."""


class ActionKind(enum.StrEnum):
    DKG = "dkg"
    REFRESH = "refresh"
    RESHARE = "reshare"
    KEY_RETIRE = "key_retire"
    COLD_WALLET_REGISTER = "cold_wallet_register"
    OPERATOR_ENROL = "operator_enrol"
    OPERATOR_REVOKE = "operator_revoke"
    OFFICER_ENROL = "officer_enrol"
    OFFICER_REVOKE = "officer_revoke"
    ADMINISTRATOR_ENROL = "administrator_enrol"
    ADMINISTRATOR_REVOKE = "administrator_revoke"
    SECURITY_KEY_ENROL = "security_key_enrol"
    SECURITY_KEY_REVOKE = "security_key_revoke"
    SIGNER_PIN_UPDATE = "signer_pin_update"
    POLICY_ACTIVATION = "policy_activation"


# The content fields of the kinds whose content this module interprets; the content of the other
# kinds is interpreted by the part that acts on it (it is signed exactly all the same).
CONTENT_FIELDS: Final[Mapping[ActionKind, frozenset[str]]] = {
    ActionKind.DKG: frozenset({"suite", "threshold", "members"}),
    ActionKind.REFRESH: frozenset({"holders"}),
    ActionKind.RESHARE: frozenset({"dealers", "new_holders", "new_threshold", "revoke", "minority_threshold"}),
    ActionKind.KEY_RETIRE: frozenset(),
    ActionKind.OFFICER_ENROL: frozenset({"officer_id", "public_key", "quorum"}),
    ActionKind.OFFICER_REVOKE: frozenset({"officer_id", "quorum"}),
    ActionKind.ADMINISTRATOR_ENROL: frozenset({"admin_id", "public_key", "threshold"}),
    ActionKind.ADMINISTRATOR_REVOKE: frozenset({"admin_id", "threshold"}),
    ActionKind.POLICY_ACTIVATION: frozenset({"version", "policy_hash"}),
}
KEYED_KINDS: Final = frozenset({ActionKind.DKG, ActionKind.REFRESH, ActionKind.RESHARE, ActionKind.KEY_RETIRE})


def _refuse(message: str, rule: str) -> GovernanceRefused:
    return GovernanceRefused(message, rule=rule)


def _identifier(value: object, what: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= ID_CHARS_MAX or not value.isprintable():
        raise _refuse(f"{what} must be 1..{ID_CHARS_MAX} printable characters", "governance.malformed")
    return value


def _key32(value: object, what: str) -> bytes:
    try:
        key = bytes.fromhex(value) if isinstance(value, str) else b""
        if len(key) != 32:
            raise ValueError
        nacl.signing.VerifyKey(key)
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        raise _refuse(f"{what} must be a 32-byte Ed25519 public key in hex", "governance.malformed") from None
    return key


def _integer(value: object, what: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise _refuse(f"{what} must be an integer in {minimum}..{maximum}", "governance.malformed")
    return value


def fingerprint(public_key: bytes) -> str:
    """A short, human-comparable fingerprint of a public key (shown to administrators)."""
    digest = hashlib.sha256(public_key).hexdigest()[:20]
    return ":".join(digest[i:i + 4] for i in range(0, len(digest), 4))


@dataclass(frozen=True, slots=True)
class Scope:
    """What an action is for: one key (or none) and the key holders that may act on it."""

    key_id: str | None
    keyholders: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "keyholders": list(self.keyholders)}

    @classmethod
    def from_json(cls, data: object) -> Scope:
        if not isinstance(data, dict) or set(data) != {"key_id", "keyholders"}:
            raise _refuse("scope must have exactly key_id and keyholders", "governance.malformed")
        key_id = None if data["key_id"] is None else _identifier(data["key_id"], "scope key_id")
        holders = data["keyholders"]
        if not isinstance(holders, list) or not 1 <= len(holders) <= KEYHOLDERS_MAX:
            raise _refuse(f"scope names 1..{KEYHOLDERS_MAX} key holders", "governance.malformed")
        names = tuple(_identifier(h, "key holder") for h in holders)
        if list(names) != sorted(set(names)):
            raise _refuse("scope key holders must be sorted and distinct", "governance.malformed")
        return cls(key_id, names)


@dataclass(frozen=True, slots=True)
class GovernanceAction:
    """One lifecycle change, exactly as the administrators sign it."""

    domain: str
    kind: ActionKind
    scope: Scope
    content: Mapping[str, Any] = field(hash=False)
    nonce: str
    not_after_s: int

    def to_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "kind": self.kind.value, "scope": self.scope.to_json(),
                "content": dict(self.content), "nonce": self.nonce, "not_after_s": self.not_after_s}

    def digest(self) -> bytes:
        return canonical_digest(self.to_json(), tag=ACTION_TAG)

    @classmethod
    def from_json(cls, data: object) -> GovernanceAction:
        fields = {"domain", "kind", "scope", "content", "nonce", "not_after_s"}
        if not isinstance(data, dict) or set(data) != fields:
            raise _refuse(f"an action has exactly the fields {sorted(fields)}", "governance.malformed")
        try:
            kind = ActionKind(data["kind"])
        except ValueError:
            raise _refuse("unknown action kind", "governance.kind") from None
        content = data["content"]
        if not isinstance(content, dict):
            raise _refuse("content must be an object", "governance.malformed")
        expected = CONTENT_FIELDS.get(kind)
        if expected is not None and set(content) != expected:
            raise _refuse(f"{kind.value} content has exactly the fields {sorted(expected)}", "governance.content")
        nonce = data["nonce"]
        if not isinstance(nonce, str) or len(nonce) != NONCE_HEX_CHARS or not _is_hex(nonce):
            raise _refuse(f"nonce must be {NONCE_HEX_CHARS} hex characters", "governance.malformed")
        action = cls(_identifier(data["domain"], "domain"), kind, Scope.from_json(data["scope"]), content, nonce,
                     _integer(data["not_after_s"], "not_after_s", 0, 2**40))
        if kind in KEYED_KINDS and action.scope.key_id is None:
            raise _refuse(f"a {kind.value} action names its key", "governance.scope")
        try:
            canonical_json(action.to_json())
        except NotCanonical as error:
            raise _refuse(str(error), "governance.malformed") from None
        return action


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


@dataclass(frozen=True, slots=True)
class AdminSignature:
    admin_id: str
    signature: bytes

    def __repr__(self) -> str:
        return f"AdminSignature(admin_id={self.admin_id!r})"


@dataclass(frozen=True, slots=True)
class SignedAction:
    action: GovernanceAction
    signatures: tuple[AdminSignature, ...]

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action.to_json(),
                "signatures": [{"admin_id": s.admin_id, "signature": s.signature.hex()} for s in self.signatures]}

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, data: object) -> SignedAction:
        if not isinstance(data, dict) or set(data) != {"action", "signatures"}:
            raise _refuse("a signed action has exactly action and signatures", "governance.malformed")
        items = data["signatures"]
        if not isinstance(items, list) or len(items) > ADMINS_MAX:
            raise _refuse(f"at most {ADMINS_MAX} signatures", "governance.malformed")
        signatures = []
        for item in items:
            if not isinstance(item, dict) or set(item) != {"admin_id", "signature"}:
                raise _refuse("a signature has exactly admin_id and signature", "governance.malformed")
            raw = item["signature"]
            if not isinstance(raw, str) or len(raw) != 128 or not _is_hex(raw):
                raise _refuse("a signature is 64 bytes in hex", "governance.malformed")
            signatures.append(AdminSignature(_identifier(item["admin_id"], "admin_id"), bytes.fromhex(raw)))
        return cls(GovernanceAction.from_json(data["action"]), tuple(signatures))

    @classmethod
    def decode(cls, raw: bytes) -> SignedAction:
        if len(raw) > ACTION_BYTES_MAX:
            raise _refuse("signed action too large", "governance.malformed")
        try:
            return cls.from_json(json.loads(raw))
        except (ValueError, RecursionError):
            raise _refuse("signed action is not JSON", "governance.malformed") from None


@dataclass(frozen=True, slots=True)
class Administrator:
    admin_id: str
    public_key: bytes


@dataclass(frozen=True, slots=True)
class Officer:
    officer_id: str
    public_key: bytes


@dataclass(frozen=True, slots=True)
class GovernancePins:
    """What a key holder pins at its ceremony and changes only by verified actions."""

    domain: str
    administrators: tuple[Administrator, ...]
    threshold: int
    officers: tuple[Officer, ...]
    officer_quorum: int
    revoked_admins: tuple[Administrator, ...] = ()

    def __post_init__(self) -> None:
        _check_set([a.admin_id for a in self.administrators], [a.public_key for a in self.administrators],
                   self.threshold, ADMINS_MAX, ADMIN_THRESHOLD_MIN, "administrator")
        _check_set([o.officer_id for o in self.officers], [o.public_key for o in self.officers],
                   self.officer_quorum, OFFICERS_MAX, OFFICER_QUORUM_MIN, "officer")

    def admin(self, admin_id: str) -> Administrator | None:
        return next((a for a in self.administrators if a.admin_id == admin_id), None)

    def officer_keys(self) -> dict[str, bytes]:
        return {o.officer_id: o.public_key for o in self.officers}

    def to_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "threshold": self.threshold, "officer_quorum": self.officer_quorum,
                "administrators": [{"admin_id": a.admin_id, "public_key": a.public_key.hex()}
                                   for a in self.administrators],
                "revoked_admins": [{"admin_id": a.admin_id, "public_key": a.public_key.hex()}
                                   for a in self.revoked_admins],
                "officers": [{"officer_id": o.officer_id, "public_key": o.public_key.hex()} for o in self.officers]}

    @classmethod
    def from_json(cls, data: object) -> GovernancePins:
        fields = {"domain", "threshold", "officer_quorum", "administrators", "revoked_admins", "officers"}
        if not isinstance(data, dict) or set(data) != fields:
            raise _refuse(f"governance pins have exactly {sorted(fields)}", "governance.malformed")
        return cls(_identifier(data["domain"], "domain"), _admins(data["administrators"]),
                   _integer(data["threshold"], "threshold", 0, ADMINS_MAX), _officers(data["officers"]),
                   _integer(data["officer_quorum"], "officer_quorum", 0, OFFICERS_MAX),
                   _admins(data["revoked_admins"], allow_empty=True))


def _admins(items: object, *, allow_empty: bool = False) -> tuple[Administrator, ...]:
    if not isinstance(items, list) or not (allow_empty or items) or len(items) > 4 * ADMINS_MAX \
            or not all(isinstance(i, dict) for i in items):
        raise _refuse("administrators must be a list of objects", "governance.malformed")
    return tuple(Administrator(_identifier(i.get("admin_id"), "admin_id"), _key32(i.get("public_key"), "key"))
                 for i in items)


def _officers(items: object) -> tuple[Officer, ...]:
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise _refuse("officers must be a non-empty list of objects", "governance.malformed")
    return tuple(Officer(_identifier(i.get("officer_id"), "officer_id"), _key32(i.get("public_key"), "key"))
                 for i in items)


def _check_set(ids: Sequence[str], keys: Sequence[bytes], threshold: int, size_max: int, threshold_min: int,
               what: str) -> None:
    if not 1 <= len(ids) <= size_max:
        raise _refuse(f"1..{size_max} {what}s", "governance.set")
    if len(set(ids)) != len(ids) or len(set(keys)) != len(keys):
        raise _refuse(f"{what} ids and keys must be distinct", "governance.set")
    if not threshold_min <= threshold <= len(ids):
        raise _refuse(f"the {what} threshold must be {threshold_min}..{len(ids)}, not {threshold}",
                      "governance.threshold")


def new_action(domain: str, kind: ActionKind, *, key_id: str | None, keyholders: Sequence[str],
               content: Mapping[str, Any], nonce: bytes, not_after_s: int) -> GovernanceAction:
    """Build an action (the proposer's side); `nonce` is 16 fresh random bytes."""
    data = {"domain": domain, "kind": kind.value,
            "scope": {"key_id": key_id, "keyholders": sorted(set(keyholders))}, "content": dict(content),
            "nonce": nonce.hex(), "not_after_s": not_after_s}
    return GovernanceAction.from_json(json.loads(canonical_json(data)))


def sign(signed: SignedAction, admin_id: str, key: nacl.signing.SigningKey) -> SignedAction:
    """Add one administrator's signature over the action's digest (an administrator's own step)."""
    signature = key.sign(signed.action.digest()).signature
    others = tuple(s for s in signed.signatures if s.admin_id != admin_id)
    return replace(signed, signatures=(*others, AdminSignature(admin_id, signature)))


def verify(signed: SignedAction, pins: GovernancePins, *, now_s: int, used: Container[str] = ()) -> None:
    """Raise GovernanceRefused unless k distinct pinned administrators signed this fresh action."""
    action = signed.action
    if action.domain != pins.domain:
        raise _refuse(f"action is for domain {action.domain!r}", "governance.domain")
    if action.not_after_s < now_s:
        raise _refuse("action has expired", "governance.expired")
    if action.not_after_s > now_s + ACTION_LIFETIME_S_MAX:
        raise _refuse("action is valid for too long", "governance.expired")
    digest = action.digest()
    if digest.hex() in used:
        raise _refuse("action was applied already", "governance.replay")
    revoked = {a.admin_id for a in pins.revoked_admins} | {a.public_key for a in pins.revoked_admins}
    ids = [s.admin_id for s in signed.signatures]
    if len(set(ids)) != len(ids):
        raise _refuse("an administrator signed twice", "governance.duplicate_admin")
    counted = 0
    for item in signed.signatures:
        admin = pins.admin(item.admin_id)
        if item.admin_id in revoked or (admin is not None and admin.public_key in revoked):
            raise _refuse(f"administrator {item.admin_id!r} was revoked", "governance.revoked_admin")
        if admin is None:
            raise _refuse(f"administrator {item.admin_id!r} is not pinned", "governance.unknown_admin")
        try:
            nacl.signing.VerifyKey(admin.public_key).verify(digest, item.signature)
        except (nacl.exceptions.BadSignatureError, ValueError):
            raise _refuse(f"administrator {item.admin_id!r}'s signature does not verify",
                          "governance.bad_signature") from None
        counted += 1
    if counted < pins.threshold:
        raise _refuse(f"needs {pins.threshold} administrators, has {counted}", "governance.quorum")


def require(action: GovernanceAction, kind: ActionKind, *, keyholder: str, key_id: str | None) -> None:
    """Raise GovernanceRefused unless the action is of `kind`, for `key_id` and names `keyholder`."""
    if action.kind != kind:
        raise _refuse(f"a {kind.value} needs a {kind.value} action, not {action.kind.value}", "governance.kind")
    if action.scope.key_id != key_id:
        raise _refuse(f"action is for key {action.scope.key_id!r}, not {key_id!r}", "governance.scope")
    if keyholder not in action.scope.keyholders:
        raise _refuse(f"action is not for key holder {keyholder!r}", "governance.scope")


def apply(pins: GovernancePins, action: GovernanceAction) -> GovernancePins:
    """The pins after a verified action: administrator and officer sets change; others keep them."""
    content = action.content
    if action.kind is ActionKind.ADMINISTRATOR_ENROL:
        admin = Administrator(_identifier(content["admin_id"], "admin_id"), _key32(content["public_key"], "key"))
        if admin.admin_id in {a.admin_id for a in pins.revoked_admins}:
            raise _refuse("a revoked administrator id is never reused", "governance.revoked_admin")
        return replace(pins, administrators=(*pins.administrators, admin),
                       threshold=_integer(content["threshold"], "threshold", 0, ADMINS_MAX))
    if action.kind is ActionKind.ADMINISTRATOR_REVOKE:
        gone = pins.admin(_identifier(content["admin_id"], "admin_id"))
        if gone is None:
            raise _refuse("no such administrator", "governance.content")
        return replace(pins, administrators=tuple(a for a in pins.administrators if a != gone),
                       revoked_admins=(*pins.revoked_admins, gone),
                       threshold=_integer(content["threshold"], "threshold", 0, ADMINS_MAX))
    if action.kind is ActionKind.OFFICER_ENROL:
        officer = Officer(_identifier(content["officer_id"], "officer_id"), _key32(content["public_key"], "key"))
        return replace(pins, officers=(*pins.officers, officer),
                       officer_quorum=_integer(content["quorum"], "quorum", 0, OFFICERS_MAX))
    if action.kind is ActionKind.OFFICER_REVOKE:
        officer_id = _identifier(content["officer_id"], "officer_id")
        if officer_id not in pins.officer_keys():
            raise _refuse("no such officer", "governance.content")
        return replace(pins, officers=tuple(o for o in pins.officers if o.officer_id != officer_id),
                       officer_quorum=_integer(content["quorum"], "quorum", 0, OFFICERS_MAX))
    return pins
