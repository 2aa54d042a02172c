"""A key holder's own facts: when IT first saw each whitelist entry and client key, by its own
clock, in its own durable store, and which accounts it holds frozen.

The coordinator only relays notices ("this destination was whitelisted", "freeze this account");
a notice never carries a time, so nothing can be back-dated: a whitelist entry's time lock starts
when this key holder first saw it. A whitelist entry signed by a client key that this key holder
pinned (first saw) at least one full time lock ago may carry the policy's shorter lock; an unsigned
entry, or one signed by a key still inside its own lock, waits the full lock. A freeze takes
effect at once from any notice; lifting it needs a quorum of the pinned administrators.

It must never accept a time from outside, and never forget a fact once stored.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing

from coffer.canonical import canonical_digest
from coffer.errors import InvariantViolation
from coffer.policy._strict import expect_hex, expect_int, expect_str, parse_canonical_object
from coffer.policy.errors import FactRefused, MalformedDocument
from coffer.policy.request import ASSETS
from coffer.policy.roles import OperatorKey, OperatorRegistry, Role
from coffer.policy.versions import AdminSignature

__all__ = ["WhitelistNotice", "ClientKeyNotice", "FreezeNotice", "UnfreezeAction", "Notice", "WhitelistFact",
           "KeyholderFacts", "AdminQuorum", "QuorumVerifier", "parse_notices", "notices_json",
           "whitelist_entry_message", "sign_whitelist_entry", "client_key_message", "sign_client_key",
           "unfreeze_message", "sign_unfreeze", "NOTICES_MAX", "FACTS_BYTES_MAX", "UNFREEZE_TTL_S_MAX"]

NOTICES_MAX = 1000
FACTS_BYTES_MAX = 512 * 1024
UNFREEZE_TTL_S_MAX = 7 * 24 * 3600
WHITELIST_ENTRY_TAG = "coffer/whitelist-entry/v1"
CLIENT_KEY_TAG = "coffer/client-key/v1"
UNFREEZE_TAG = "coffer/governance/unfreeze/v1"
_ACCOUNT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_DESTINATION = re.compile(r"^[A-Za-z0-9:._-]{1,128}$")


@dataclass(frozen=True, slots=True)
class WhitelistNotice:
    """`destination` was whitelisted for (account, asset); optionally signed by the client's own key."""

    account: str
    asset: str
    destination: str
    client_public_key: bytes | None = None
    client_signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class ClientKeyNotice:
    """A client enrolled an Ed25519 key; a further key must be endorsed by a key already pinned."""

    account: str
    public_key: bytes
    endorsed_by: bytes | None = None
    endorsement: bytes | None = None


@dataclass(frozen=True, slots=True)
class FreezeNotice:
    account: str


@dataclass(frozen=True, slots=True)
class UnfreezeAction:
    """Lift a freeze: signed by a quorum of administrators over account, nonce and expiry."""

    account: str
    nonce: str
    expires_at_s: int
    signatures: tuple[AdminSignature, ...]


Notice = WhitelistNotice | ClientKeyNotice | FreezeNotice | UnfreezeAction


@dataclass(frozen=True, slots=True)
class WhitelistFact:
    """What this key holder knows of one entry: first seen, and when it pinned the signing client key."""

    first_seen_s: int
    client_key_first_seen_s: int | None


def whitelist_entry_message(account: str, asset: str, destination: str) -> bytes:
    return canonical_digest({"account": account, "asset": asset, "destination": destination},
                            tag=WHITELIST_ENTRY_TAG)


def sign_whitelist_entry(key: OperatorKey, account: str, asset: str, destination: str) -> WhitelistNotice:
    """Done on the client's own device: the entry, signed by the client's key."""
    signature = key.sign(whitelist_entry_message(account, asset, destination))
    return WhitelistNotice(account, asset, destination, key.public_key, signature)


def client_key_message(account: str, public_key: bytes) -> bytes:
    return canonical_digest({"account": account, "public_key": public_key.hex()}, tag=CLIENT_KEY_TAG)


def sign_client_key(endorser: OperatorKey, account: str, public_key: bytes) -> ClientKeyNotice:
    """A pinned client key endorses the client's next key."""
    return ClientKeyNotice(account, public_key, endorser.public_key,
                           endorser.sign(client_key_message(account, public_key)))


def unfreeze_message(account: str, nonce: str, expires_at_s: int) -> bytes:
    return canonical_digest({"action": "unfreeze", "account": account, "nonce": nonce,
                             "expires_at_s": expires_at_s}, tag=UNFREEZE_TAG)


def sign_unfreeze(key: OperatorKey, operator_id: str, account: str, nonce: str, expires_at_s: int) -> AdminSignature:
    return AdminSignature(operator_id, key.sign(unfreeze_message(account, nonce, expires_at_s)))


def _verify_ed25519(public_key: bytes, message: bytes, signature: bytes, *, rule: str) -> None:
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError, TypeError):
        raise FactRefused("the signature does not verify", rule=rule) from None


class QuorumVerifier:
    """Counts the administrators who signed `message`; raises FactRefused below the quorum."""

    def count(self, message: bytes, signatures: Sequence[AdminSignature]) -> tuple[str, ...]:
        raise NotImplementedError


class AdminQuorum(QuorumVerifier):
    """The administrators this key holder pinned (policy admins), k of them distinct.

    Until the governance module is on main this is the governance quorum every key holder pins.
    """

    def __init__(self, registry: OperatorRegistry, quorum: int) -> None:
        if quorum < 2:
            raise FactRefused("the administrator quorum must be at least 2", rule="governance.quorum")
        self._registry = registry
        self._quorum = quorum

    def count(self, message: bytes, signatures: Sequence[AdminSignature]) -> tuple[str, ...]:
        counted: list[str] = []
        for item in signatures:
            if item.operator_id in counted or item.operator_id not in self._registry:
                continue
            operator = self._registry.get(item.operator_id)
            if not operator.has(Role.POLICY_ADMIN):
                continue
            try:
                _verify_ed25519(operator.ed25519_public_key, message, item.signature, rule="governance.signature")
            except FactRefused:
                continue
            counted.append(item.operator_id)
        if len(counted) < self._quorum:
            raise FactRefused(f"needs {self._quorum} administrators, has {len(counted)}", rule="governance.quorum")
        return tuple(counted)


class KeyholderFacts:
    """The key holder's own SQLite file of facts (never the coordinator's database)."""

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS whitelist (account TEXT NOT NULL, asset TEXT NOT NULL,"
            " destination TEXT NOT NULL, first_seen_s INTEGER NOT NULL, client_key TEXT,"
            " PRIMARY KEY (account, asset, destination));"
            "CREATE TABLE IF NOT EXISTS client_keys (account TEXT NOT NULL, public_key TEXT NOT NULL,"
            " first_seen_s INTEGER NOT NULL, PRIMARY KEY (account, public_key));"
            "CREATE TABLE IF NOT EXISTS frozen (account TEXT PRIMARY KEY, frozen_at_s INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS unfreezes (nonce TEXT PRIMARY KEY, account TEXT NOT NULL,"
            " at_s INTEGER NOT NULL, signed_by TEXT NOT NULL);")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- reading ---------------------------------------------------------------------------------
    def whitelist(self, account: str, asset: str, destination: str) -> WhitelistFact | None:
        with self._lock:
            row = self._db.execute(
                "SELECT w.first_seen_s, k.first_seen_s FROM whitelist w LEFT JOIN client_keys k"
                " ON k.account = w.account AND k.public_key = w.client_key"
                " WHERE w.account = ? AND w.asset = ? AND w.destination = ?", (account, asset, destination)).fetchone()
        return None if row is None else WhitelistFact(int(row[0]), None if row[1] is None else int(row[1]))

    def frozen(self, account: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM frozen WHERE account = ?", (account,)).fetchone() is not None

    def client_key_seen_at(self, account: str, public_key: bytes) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT first_seen_s FROM client_keys WHERE account = ? AND public_key = ?",
                                   (account, public_key.hex())).fetchone()
        return None if row is None else int(row[0])

    # -- notices ---------------------------------------------------------------------------------
    def apply(self, notices: Sequence[Notice], *, now_s: int, quorum: QuorumVerifier) -> list[dict[str, Any]]:
        """Record each notice by this key holder's clock; a refused one raises and records nothing after it."""
        results = []
        for notice in notices:
            if isinstance(notice, WhitelistNotice):
                results.append(self._whitelist(notice, now_s))
            elif isinstance(notice, ClientKeyNotice):
                results.append(self._client_key(notice, now_s))
            elif isinstance(notice, FreezeNotice):
                self.freeze(notice.account, now_s=now_s)
                results.append({"kind": "freeze", "account": notice.account, "frozen": True})
            else:
                results.append(self._unfreeze(notice, now_s, quorum))
        return results

    def freeze(self, account: str, *, now_s: int) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO frozen VALUES (?, ?)", (account, now_s))

    def _whitelist(self, notice: WhitelistNotice, now_s: int) -> dict[str, Any]:
        key_hex = None
        if notice.client_public_key is not None and notice.client_signature is not None:
            if self.client_key_seen_at(notice.account, notice.client_public_key) is None:
                raise FactRefused("the entry is signed by a client key this key holder never saw enrolled",
                                  rule="whitelist.client_key_unknown")
            _verify_ed25519(notice.client_public_key,
                            whitelist_entry_message(notice.account, notice.asset, notice.destination),
                            notice.client_signature, rule="whitelist.client_signature")
            key_hex = notice.client_public_key.hex()
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO whitelist VALUES (?, ?, ?, ?, ?)",
                             (notice.account, notice.asset, notice.destination, now_s, key_hex))
            if key_hex is not None:  # a signature may come later; the first sighting keeps its time
                self._db.execute("UPDATE whitelist SET client_key = ? WHERE account = ? AND asset = ?"
                                 " AND destination = ? AND client_key IS NULL",
                                 (key_hex, notice.account, notice.asset, notice.destination))
        fact = self.whitelist(notice.account, notice.asset, notice.destination)
        if fact is None:
            raise InvariantViolation("a whitelist entry just written is not there")
        return {"kind": "whitelist", "account": notice.account, "asset": notice.asset,
                "destination": notice.destination, "first_seen_s": fact.first_seen_s,
                "client_signed": fact.client_key_first_seen_s is not None}

    def _client_key(self, notice: ClientKeyNotice, now_s: int) -> dict[str, Any]:
        with self._lock:
            known = [bytes.fromhex(r[0]) for r in self._db.execute(
                "SELECT public_key FROM client_keys WHERE account = ?", (notice.account,))]
        if known and notice.public_key not in known:
            if notice.endorsed_by is None or notice.endorsement is None or notice.endorsed_by not in known:
                raise FactRefused("a further client key must be endorsed by a key already pinned",
                                  rule="client_key.not_endorsed")
            _verify_ed25519(notice.endorsed_by, client_key_message(notice.account, notice.public_key),
                            notice.endorsement, rule="client_key.endorsement")
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO client_keys VALUES (?, ?, ?)",
                             (notice.account, notice.public_key.hex(), now_s))
        seen = self.client_key_seen_at(notice.account, notice.public_key)
        return {"kind": "client_key", "account": notice.account, "first_seen_s": seen}

    def _unfreeze(self, action: UnfreezeAction, now_s: int, quorum: QuorumVerifier) -> dict[str, Any]:
        if action.expires_at_s <= now_s:
            raise FactRefused("the unfreeze action expired", rule="unfreeze.expired")
        if action.expires_at_s > now_s + UNFREEZE_TTL_S_MAX:
            raise FactRefused("the unfreeze action lives too long", rule="unfreeze.expiry_too_far")
        counted = quorum.count(unfreeze_message(action.account, action.nonce, action.expires_at_s), action.signatures)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self._db.execute("SELECT 1 FROM unfreezes WHERE nonce = ?", (action.nonce,)).fetchone():
                    raise FactRefused("this unfreeze action was already used", rule="unfreeze.replayed")
                self._db.execute("INSERT INTO unfreezes VALUES (?, ?, ?, ?)",
                                 (action.nonce, action.account, now_s, ",".join(counted)))
                self._db.execute("DELETE FROM frozen WHERE account = ?", (action.account,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return {"kind": "unfreeze", "account": action.account, "frozen": False, "signed_by": list(counted)}


# -- the wire form ---------------------------------------------------------------------------------
def _key(doc: dict[str, Any], field: str) -> bytes:
    return expect_hex(doc, field, length_bytes=32)


def _optional_pair(doc: dict[str, Any], key_field: str, signature_field: str) -> tuple[bytes | None, bytes | None]:
    if doc.get(key_field) is None and doc.get(signature_field) is None:
        return None, None
    return _key(doc, key_field), expect_hex(doc, signature_field, length_bytes=64)


def _account(doc: dict[str, Any]) -> str:
    return expect_str(doc, "account", chars_max=64, pattern=_ACCOUNT)


def _parse_notice(doc: Any) -> Notice:
    if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str):
        raise MalformedDocument("each notice is an object with a kind", field="notices")
    kind = doc["kind"]
    fields = {"whitelist": {"kind", "account", "asset", "destination", "client_public_key", "client_signature"},
              "client_key": {"kind", "account", "public_key", "endorsed_by", "endorsement"},
              "freeze": {"kind", "account"},
              "unfreeze": {"kind", "account", "nonce", "expires_at_s", "signatures"}}.get(kind)
    if fields is None or set(doc) != fields:
        raise MalformedDocument(f"unknown notice kind or fields: {str(kind)[:32]}", field="notices")
    if kind == "whitelist":
        if doc["asset"] not in ASSETS:
            raise MalformedDocument("unknown asset", field="asset")
        public, signature = _optional_pair(doc, "client_public_key", "client_signature")
        return WhitelistNotice(_account(doc), str(doc["asset"]),
                               expect_str(doc, "destination", chars_max=128, pattern=_DESTINATION), public, signature)
    if kind == "client_key":
        endorser, endorsement = _optional_pair(doc, "endorsed_by", "endorsement")
        return ClientKeyNotice(_account(doc), _key(doc, "public_key"), endorser, endorsement)
    if kind == "freeze":
        return FreezeNotice(_account(doc))
    signatures = doc["signatures"]
    if not isinstance(signatures, list) or len(signatures) > 16:
        raise MalformedDocument("at most 16 signatures", field="signatures")
    parsed = tuple(AdminSignature(expect_str(s, "operator_id", chars_max=64), expect_hex(s, "signature", length_bytes=64))
                   for s in signatures if isinstance(s, dict))
    if len(parsed) != len(signatures):
        raise MalformedDocument("each signature is an object", field="signatures")
    return UnfreezeAction(_account(doc), expect_hex(doc, "nonce", length_bytes=16).hex(),
                          expect_int(doc, "expires_at_s", minimum=0, maximum=1 << 40), parsed)


def parse_notices(data: bytes) -> list[Notice]:
    """Parse a notices document strictly: {"notices": [...]}, at most NOTICES_MAX."""
    doc = parse_canonical_object(data, fields=frozenset({"notices"}), bytes_max=FACTS_BYTES_MAX, what="notices")
    notices = doc["notices"]
    if not isinstance(notices, list) or not 1 <= len(notices) <= NOTICES_MAX:
        raise MalformedDocument(f"1..{NOTICES_MAX} notices", field="notices")
    return [_parse_notice(item) for item in notices]


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def notice_json(notice: Notice) -> dict[str, Any]:
    if isinstance(notice, WhitelistNotice):
        return {"kind": "whitelist", "account": notice.account, "asset": notice.asset,
                "destination": notice.destination, "client_public_key": _hex(notice.client_public_key),
                "client_signature": _hex(notice.client_signature)}
    if isinstance(notice, ClientKeyNotice):
        return {"kind": "client_key", "account": notice.account, "public_key": notice.public_key.hex(),
                "endorsed_by": _hex(notice.endorsed_by), "endorsement": _hex(notice.endorsement)}
    if isinstance(notice, FreezeNotice):
        return {"kind": "freeze", "account": notice.account}
    return {"kind": "unfreeze", "account": notice.account, "nonce": notice.nonce, "expires_at_s": notice.expires_at_s,
            "signatures": [{"operator_id": s.operator_id, "signature": s.signature.hex()} for s in notice.signatures]}


def notices_json(notices: Sequence[Notice]) -> dict[str, Any]:
    return {"notices": [notice_json(n) for n in notices]}


def receive_notices(facts: KeyholderFacts, data: bytes, *, now_s: int, quorum: QuorumVerifier,
                    on_event: Callable[[str, dict[str, object]], None] | None = None) -> dict[str, Any]:
    """The key holder's handler of a notices document: parse, record by its own clock, report."""
    observed = facts.apply(parse_notices(data), now_s=now_s, quorum=quorum)
    if on_event is not None:
        for item in observed:
            on_event("keyholder.fact_observed", dict(item))
    return {"observed": observed, "now_s": now_s}
