"""One MPC co-signer: the logic behind `coffer cosigner --id N` (the HTTP layer is in server.py).

It holds Shamir shares only sealed under its own HSM key and never sends one. For every signature
it derives the message itself (a Taproot spend's sighashes from the transaction, a publication
document's exact bytes, a refresh test message), checks the approvals, the HSM attestation and its
own policy evaluation (the policy part's `SignerGuard` with its own signed history) and the halt
state (fail closed), records the session id durably (never reused), and marks the session's
nonces used durably before a signature share leaves. Nonces live only in memory: a crash between
the rounds loses them, and the session can only fail.

Every request body is parsed strictly; a fault raises `ProtocolViolation(sender=None)` (the
coordinator). Faults of other co-signers' messages relayed by the coordinator name that co-signer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from coffer.btc.bip322_sign import p2tr_sighash
from coffer.errors import Refused
from coffer.keyholder.governance import GovernanceRefused
from coffer.keyholder.governance_store import GovernanceStore
from coffer.keyholder.lifecycle import KeyholderGovernance, ReshareTerms
from coffer.keyholder.officers import pin_officers
from coffer.log import get_logger
from coffer.mpc import frost
from coffer.mpc.dkg import chilldkg, ed25519, secp256k1_untweaked
from coffer.mpc.dkg import dealing as dkg_dealing
from coffer.mpc.dkg import refresh as dkg_refresh
from coffer.mpc.dkg import reshare as dkg_reshare
from coffer.mpc.dkg.bound import DkgProtocol
from coffer.mpc.dkg.errors import (
    FaultyCoordinatorError,
    FaultyParticipantOrCoordinatorError,
    UnknownFaultyParticipantOrCoordinatorError,
)
from coffer.mpc.dkg.protocol import ParticipantState1, ParticipantState2, SessionParams
from coffer.mpc.dkg.types import SecretShare
from coffer.mpc.errors import InvalidMessage, MalformedInput
from coffer.mpc.frost.keys import group_by_name
from coffer.mpc.service import messages as msg
from coffer.mpc.service.errors import (
    CosignerRefused,
    OpaqueMessageRefused,
    ProtocolViolation,
    SessionReplayed,
    SpendNotApproved,
    UnknownKey,
)
from coffer.mpc.service.store import CosignerStore, KeyRecord, ShareVault
from coffer.mpc.service.wire import Body, parse_body
from coffer.policy import (
    RequestKind,
    SignedDecision,
    SignerGuard,
    WithdrawalRequest,
    request_from_json,
    signed_decision_from_json,
)
from coffer.policy.errors import PolicyError

__all__ = ["Cosigner", "HaltGate", "SUITES", "SESSION_TTL_S", "SESSIONS_MAX"]

SESSION_TTL_S: Final = 60.0
SESSIONS_MAX: Final = 10_000
DKG_SESSIONS_MAX: Final = 16
log = get_logger("coffer.mpc.cosigner")


@dataclass(frozen=True, slots=True)
class _Suite:
    name: str
    frost: frost.Ciphersuite
    dkg: DkgProtocol


SUITES: Final[dict[str, _Suite]] = {
    "taproot": _Suite("taproot", frost.SECP256K1_TR, chilldkg),
    "ed25519": _Suite("ed25519", frost.ED25519, ed25519),
    # The threshold-ECDSA key (issue 8): DKG, refresh and re-share run here today; its signing
    # (DKLs23, coffer.mpc.ecdsa) plugs in as a new signing kind. Until then only refresh tests
    # (a Schnorr signature proving the new shares combine) are signed with it.
    "ecdsa": _Suite("ecdsa", frost.SECP256K1, secp256k1_untweaked),
}


class HaltGate(Protocol):
    def require_clear(self) -> None: ...


@dataclass(slots=True)
class _Session:
    record: KeyRecord
    key_package: frost.KeyPackage = field(repr=False)
    signers: tuple[int, ...]
    messages: tuple[bytes, ...]
    tweaks: tuple[frost.Tweak, ...]
    nonces: list[frost.SigningNonces] = field(repr=False)
    kind: str
    created: float


@dataclass(slots=True)
class _DkgRun:
    key_id: str
    suite: _Suite
    params: SessionParams
    state1: ParticipantState1 | None = None
    state2: ParticipantState2 | None = None
    investigation: UnknownFaultyParticipantOrCoordinatorError | None = None


@dataclass(slots=True)
class _Dealing:
    kind: str  # "refresh" or "reshare"
    key_id: str
    version: int
    suite: _Suite
    session: dkg_refresh.RefreshSession | dkg_reshare.ReshareSession
    digest: bytes | None = None
    new_version: int | None = None
    receiving: bool = False
    terms: ReshareTerms | None = None  # a re-share's verified governance terms


def _now_s(now: dt.datetime) -> str:
    return now.isoformat()


def _suite(body: Body, name: str = "suite") -> _Suite:
    value = body.string(name)
    if value not in SUITES:
        raise body.fault(f"unknown suite {value!r}")
    return SUITES[value]


class Cosigner:
    """The co-signer's state machine. Thread-safe; every public method takes raw request bytes."""

    def __init__(self, cosigner_id: int, store: CosignerStore, vault: ShareVault, *, guard: SignerGuard,
                 halt: HaltGate, network: str = "regtest", attestation_public_key: bytes,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 rng: Callable[[int], bytes] = secrets.token_bytes,
                 governance: KeyholderGovernance | None = None) -> None:
        self.cosigner_id = cosigner_id
        self._store = store
        # The governance record lives beside the store, in the co-signer's own directory.
        self.governance = governance or KeyholderGovernance(
            GovernanceStore.open(store.path.parent), f"cosigner-{cosigner_id}", clock)
        pin_officers(halt, self.governance)
        self._vault = vault
        self._guard = guard
        self._halt = halt
        self._network = network
        self._attestation_key = attestation_public_key
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self._hostkey_lock = threading.Lock()
        self._clear_lock = threading.Lock()
        self._sessions: dict[bytes, _Session] = {}
        self._dkg: dict[bytes, _DkgRun] = {}
        self._dealings: dict[bytes, _Dealing] = {}
        self._publics: dict[tuple[str, int], frost.PublicKeyPackage] = {}
        # What each signature cost, read through /v1/status: requests passed by the policy guard,
        # requests recorded cleared durably, shares unsealed by the HSM (one per session, no cache).
        self._counters = {"guard_checks": 0, "durable_records": 0, "unseals": 0}

    def __repr__(self) -> str:
        return f"Cosigner(id={self.cosigner_id})"

    # -- keys -----------------------------------------------------------------------------------
    def _host_key(self, suite: _Suite) -> tuple[bytearray, bytes]:
        """(host secret key, host public key) for `suite`, made and sealed on first use."""
        with self._hostkey_lock:
            found = self._store.host_key(suite.name)
            if found is None:
                secret = bytearray(self._rng(32))
                public = suite.dkg.hostpubkey_gen(bytes(secret))
                self._store.put_host_key(suite.name, self._vault.seal_host_key(suite.name, secret), public)
                return secret, public
        sealed, public = found
        return self._vault.open_host_key(suite.name, sealed), public

    def _public(self, record: KeyRecord) -> frost.PublicKeyPackage:
        cached = self._publics.get((record.key_id, record.version))
        if cached is None:
            cached = frost.PublicKeyPackage.from_bytes(record.public_package)
            self._publics[(record.key_id, record.version)] = cached
        return cached

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counters[name] += amount

    def _key_package(self, record: KeyRecord) -> frost.KeyPackage:
        """The share unsealed by the HSM for this use only (never cached between sessions)."""
        self._count("unseals")
        return self._unseal(record)

    def _unseal(self, record: KeyRecord) -> frost.KeyPackage:
        sealed = self._store.sealed_share(record.key_id, record.version)
        plain = self._vault.open_share(record.key_id, record.version, record.identifier, sealed)
        try:
            public = self._public(record)
            return frost.KeyPackage(record.identifier, public.group.deserialize_scalar(bytes(plain)), public)
        finally:
            for index in range(len(plain)):
                plain[index] = 0

    def _seal_and_store(self, key_id: str, version: int, suite: _Suite, status: str, session: bytes,
                        key_package: frost.KeyPackage) -> None:
        group = key_package.public.group
        secret = bytearray(group.serialize_scalar(key_package.secret_share))
        try:
            sealed = self._vault.seal_share(key_id, version, key_package.identifier, secret)
        finally:
            for index in range(len(secret)):
                secret[index] = 0
        record = KeyRecord(key_id, version, suite.name, status, key_package.identifier,
                           key_package.public.to_bytes(), session)
        self._store.put_share(record, sealed, _now_s(self._clock()))

    def status(self, data: bytes) -> dict[str, Any]:
        parse_body(data, sender=None, fields=())
        keys = [{"key_id": r.key_id, "version": r.version, "suite": r.suite, "status": r.status,
                 "identifier": r.identifier, "public_package": r.public_package.hex(),
                 "revoked": sorted(self._store.revoked(r.key_id))} for r in self._store.keys()]
        try:
            self._halt.require_clear()
            clear = True
        except Exception:  # any failure to know the state counts as not clear
            clear = False
        with self._lock:
            counters = dict(self._counters)
        return {"cosigner_id": self.cosigner_id, "keys": keys, "halt_clear": clear, "counters": counters}

    def hostkey(self, data: bytes) -> dict[str, Any]:
        body = parse_body(data, sender=None, fields=("suite",))
        secret, public = self._host_key(_suite(body))
        _wipe(secret)
        return {"hostpubkey": public.hex()}

    def governance_apply(self, data: bytes) -> dict[str, Any]:
        """Apply a membership action (officers, administrators) the administrators signed."""
        body = parse_body(data, sender=None, fields=("action",))
        with self._governed():
            action = self.governance.apply_membership(body.raw("action"))
        pins = self.governance.store.pins()
        log.info("mpc.cosigner.governance_applied", cosigner=self.cosigner_id, kind=action.kind.value)
        return {"applied": action.digest().hex(), "officers": sorted(pins.officer_keys()),
                "administrators": [a.admin_id for a in pins.administrators]}

    # -- distributed key generation -----------------------------------------------------------------
    def dkg_step1(self, data: bytes) -> dict[str, Any]:
        body = parse_body(data, sender=None, fields=("dkg_session", "key_id", "suite", "threshold", "hostpubkeys"),
                          optional=("action",))
        session = body.hexbytes("dkg_session", length=32)
        key_id, suite = body.string("key_id"), _suite(body)
        hostpubkeys = tuple(body.hexlist("hostpubkeys", items_max=frost.PARTICIPANTS_MAX))
        threshold = body.integer("threshold", minimum=1, maximum=max(1, len(hostpubkeys)))
        if self._store.keys() and any(r.key_id == key_id for r in self._store.keys()):
            raise CosignerRefused(f"key {key_id!r} exists already", rule="dkg.key_exists", cosigner=self.cosigner_id)
        secret, public = self._host_key(suite)
        try:
            if public not in hostpubkeys:
                raise CosignerRefused("this co-signer's host key is not in the session", rule="dkg.not_participant",
                                      cosigner=self.cosigner_id)
            with self._governed():
                self.governance.authorize_dkg(body.value.get("action"), key_id=key_id, suite=suite.name,
                                              threshold=threshold, hostpubkeys=hostpubkeys, own_hostpubkey=public)
            params = SessionParams(hostpubkeys, threshold)
            state1, pmsg1 = suite.dkg.participant_step1(bytes(secret), params, self._rng(32))
        finally:
            _wipe(secret)
        with self._lock:
            if len(self._dkg) >= DKG_SESSIONS_MAX or session in self._dkg:
                raise SessionReplayed("DKG session id in use, or too many DKG sessions", cosigner=self.cosigner_id)
            self._dkg[session] = _DkgRun(key_id, suite, params, state1=state1)
        return {"pmsg1": pmsg1.hex()}

    def _dkg_run(self, body: Body) -> tuple[bytes, _DkgRun]:
        session = body.hexbytes("dkg_session", length=32)
        with self._lock:
            run = self._dkg.get(session)
        if run is None:
            raise UnknownKey("no such DKG session (expired or this co-signer restarted)")
        return session, run

    def dkg_step2(self, data: bytes) -> dict[str, Any]:
        body = parse_body(data, sender=None, fields=("dkg_session", "cmsg1"))
        session, run = self._dkg_run(body)
        if run.state1 is None:
            raise SessionReplayed("DKG step 2 was already run", cosigner=self.cosigner_id)
        secret, _ = self._host_key(run.suite)
        state1, run.state1 = run.state1, None  # single use (participant_step2's rule)
        try:
            run.state2, pmsg2 = run.suite.dkg.participant_step2(bytes(secret), state1, body.hexbytes("cmsg1"),
                                                                 self._rng(32))
        except UnknownFaultyParticipantOrCoordinatorError as error:
            run.investigation = error  # kept for /v1/dkg/investigate, which names the culprit
            raise CosignerRefused("received an invalid share; investigation needed", rule="dkg.investigate",
                                  cosigner=self.cosigner_id) from None
        finally:
            _wipe(secret)
        return {"pmsg2": pmsg2.hex()}

    def dkg_investigate(self, data: bytes) -> dict[str, Any]:
        """Name who sent this co-signer a bad share, from the coordinator's investigation message."""
        body = parse_body(data, sender=None, fields=("dkg_session", "cinv"))
        session, run = self._dkg_run(body)
        if run.investigation is None:
            raise CosignerRefused("nothing to investigate", rule="dkg.no_investigation", cosigner=self.cosigner_id)
        with self._lock:
            self._dkg.pop(session, None)
        try:
            run.suite.dkg.participant_investigate(run.investigation, body.hexbytes("cinv"))
        except FaultyParticipantOrCoordinatorError as error:
            return {"culprit": error.culprit}
        except FaultyCoordinatorError:
            return {"culprit": None}
        raise CosignerRefused("investigation named nobody", rule="dkg.no_culprit", cosigner=self.cosigner_id)

    def dkg_finalize(self, data: bytes) -> dict[str, Any]:
        body = parse_body(data, sender=None, fields=("dkg_session", "cmsg2"))
        session, run = self._dkg_run(body)
        if run.state2 is None:
            raise SessionReplayed("DKG finalize without step 2", cosigner=self.cosigner_id)
        output, _recovery = run.suite.dkg.participant_finalize(run.state2, body.hexbytes("cmsg2"))
        with self._lock:
            self._dkg.pop(session, None)
        share = output.secret_share
        if share is None:
            raise CosignerRefused("DKG gave no share", rule="dkg.no_share", cosigner=self.cosigner_id)
        public = frost.PublicKeyPackage.from_encoded(group_by_name(output.suite), output.threshold,
                                                     output.group_public_key, output.public_shares)
        package = frost.KeyPackage(share.identifier, share.value, public)
        self._seal_and_store(run.key_id, 1, run.suite, "active", session, package)
        self.governance.pin_dkg(run.key_id, run.params.t, run.params.hostpubkeys)
        log.info("mpc.cosigner.dkg_done", cosigner=self.cosigner_id, key_id=run.key_id, identifier=share.identifier)
        return {"identifier": share.identifier, "public_package": public.to_bytes().hex()}

    # -- signing --------------------------------------------------------------------------------
    def sign_commit(self, data: bytes) -> dict[str, Any]:
        """Round one: derive and check what is to be signed, open the session, commit to nonces."""
        body = parse_body(data, sender=None, fields=("key_id", "version", "signers", "coordinator_nonce", "kind",
                                                     "payload"))
        key_id, version, kind = body.string("key_id"), body.integer("version", minimum=1), body.string("kind")
        signers = tuple(sorted(body.intlist("signers")))
        nonce = body.hexbytes("coordinator_nonce", length=32)
        record = self._store.key(key_id, version, status="pending" if kind == "refresh_test" else "active")
        suite = SUITES[record.suite]
        public = self._public(record)
        self._check_signers(record, public, signers)
        messages, tweaks = self._derive(kind, body, record, suite, public)
        session_id = msg.session_id(key_id, version, signers, msg.messages_digest(kind, messages), nonce)
        now = self._clock()
        with self._lock:
            self._expire_sessions()
            if len(self._sessions) >= SESSIONS_MAX:
                raise CosignerRefused("too many open sessions", rule="session.limit", cosigner=self.cosigner_id)
        self._store.open_session(session_id, key_id, version, _now_s(now))  # durable replay cache
        package = self._key_package(record)
        nonces, commitments = [], []
        for index, message in enumerate(messages):
            extra = session_id + index.to_bytes(4, "big") + hashlib.sha256(message).digest()
            nonce_pair, commitment = frost.commit(suite.frost, package, extra=extra)
            nonces.append(nonce_pair)
            commitments.append(commitment.to_bytes(public.group).hex())
        with self._lock:
            self._sessions[session_id] = _Session(record, package, signers, messages, tweaks, nonces, kind,
                                                  time.monotonic())
        return {"session_id": session_id.hex(), "commitments": commitments}

    def _check_signers(self, record: KeyRecord, public: frost.PublicKeyPackage, signers: tuple[int, ...]) -> None:
        revoked = self._store.revoked(record.key_id) & set(signers)
        if revoked:
            raise CosignerRefused(f"signer set names revoked co-signer(s) {sorted(revoked)}", rule="cosigner.revoked",
                                  cosigner=self.cosigner_id, culprits=tuple(sorted(revoked)))
        if record.identifier not in signers:
            raise CosignerRefused("this co-signer is not in the signer set", rule="session.not_member",
                                  cosigner=self.cosigner_id)
        unknown = [identifier for identifier in signers if identifier not in public.identifiers]
        if unknown:
            raise CosignerRefused(f"unknown identifiers {unknown}", rule="session.signers", cosigner=self.cosigner_id)
        if not public.min_signers <= len(signers) <= public.max_signers:
            raise CosignerRefused(f"{len(signers)} signers, threshold {public.min_signers}",
                                  rule="session.too_few_signers", cosigner=self.cosigner_id)

    def _derive(self, kind: str, body: Body, record: KeyRecord, suite: _Suite, public: frost.PublicKeyPackage
                ) -> tuple[tuple[bytes, ...], tuple[frost.Tweak, ...]]:
        if kind == "taproot_spend" and suite.name == "taproot":
            return self._derive_spend(body.child("payload", fields=("tx", "prevouts", "approvals")), public)
        if kind == "publication" and suite.name == "ed25519":
            return self._derive_publication(body.child("payload", fields=("document", "attestation")))
        if kind == "reserves_proof" and suite.name == "taproot":
            return self._derive_reserves_proof(body.child("payload", fields=("message",)), public)
        if kind == "refresh_test":
            body.child("payload", fields=())
            return (msg.refresh_test_message(record.session, public.group.serialize_element(
                public.group_public_key)),), ()
        raise OpaqueMessageRefused(f"this co-signer derives what it signs; {kind!r} is not a kind it accepts "
                                   f"for a {suite.name} key", cosigner=self.cosigner_id)

    def _derive_reserves_proof(self, payload: Body, public: frost.PublicKeyPackage
                               ) -> tuple[tuple[bytes, ...], tuple[frost.Tweak, ...]]:
        """Proof of reserves: the BIP-322 digest for this key's own P2TR address over the reserves
        challenge, derived here. Only that challenge format is accepted; a BIP-322 signature spends a
        virtual output, so no coin can move with it."""
        message = payload.hexbytes("message", length_max=512)
        if not msg.RESERVES_CHALLENGE.fullmatch(message):
            raise OpaqueMessageRefused("not a proof-of-reserves challenge", cosigner=self.cosigner_id)
        output_key, tweaks = msg.taproot_key(public)
        return (p2tr_sighash(output_key, message),), tweaks

    def _derive_publication(self, payload: Body) -> tuple[tuple[bytes, ...], tuple[frost.Tweak, ...]]:
        document = payload.hexbytes("document", length_max=msg.PUBLICATION_BYTES_MAX)
        prefix = msg.check_publication(document)
        msg.verify_publication_attestation(document, payload.hexbytes("attestation", length=64),
                                           self._attestation_key)
        if prefix != msg.HALT_PREFIX:  # a halt or resume notice is published precisely during a halt
            self._require_clear()
        return (document,), ()

    def _derive_spend(self, payload: Body, public: frost.PublicKeyPackage
                      ) -> tuple[tuple[bytes, ...], tuple[frost.Tweak, ...]]:
        raw_tx = payload.hexbytes("tx")
        prevouts = [msg.Prevout(p.integer("amount_sats", minimum=1, maximum=21 * 10**14),
                                p.hexbytes("script_pubkey", length_max=80))
                    for p in payload.objects("prevouts", fields=("amount_sats", "script_pubkey"),
                                             items_max=msg.TX_INPUTS_MAX)]
        approvals = [self._approval(item) for item in payload.objects("approvals", fields=("request", "decision"),
                                                                      items_max=msg.TX_OUTPUTS_MAX)]
        if not approvals:
            raise SpendNotApproved("a spend needs at least one approved request", cosigner=self.cosigner_id)
        output_key, tweaks = msg.taproot_key(public)
        payments = [(msg.address_script(request.destination, self._network), request.amount_minor)
                    for request, _ in approvals]
        check = msg.check_taproot_spend(raw_tx, prevouts, msg.p2tr_script(output_key), payments)
        self._require_clear()
        with self._clear_lock:  # check-then-record must not interleave with another session's
            fresh = []
            for request, decision in approvals:
                cleared_for = self._store.cleared_txid(request.digest())
                if cleared_for is None:
                    fresh.append((request, decision))
                elif cleared_for != check.txid:
                    raise CosignerRefused("this request was already signed in another transaction",
                                          rule="request.already_signed", cosigner=self.cosigner_id)
            if fresh:
                try:
                    self._guard.check_batch(fresh, now=self._clock())
                except (PolicyError, Refused) as refusal:
                    raise CosignerRefused(str(refusal), rule=getattr(refusal, "rule", "policy"),
                                          cosigner=self.cosigner_id) from None
                self._count("guard_checks", len(fresh))
                self._store.record_cleared([r.digest() for r, _ in fresh], check.txid, _now_s(self._clock()))
                self._count("durable_records", len(fresh))
                log.info("mpc.cosigner.spend_cleared", cosigner=self.cosigner_id, txid=check.txid,
                         requests=[r.digest_hex for r, _ in fresh], inputs=len(check.messages))
        return check.messages, tweaks

    def _approval(self, item: Body) -> tuple[WithdrawalRequest, SignedDecision]:
        try:
            request = request_from_json(item.raw("request"))
            decision = signed_decision_from_json(item.raw("decision"))
        except PolicyError as error:
            raise item.fault(f"approval does not parse: {error}") from None
        if request.asset != "BTC" or request.source_wallet not in ("hot", "auto") or request.kind not in (
                RequestKind.CLIENT_WITHDRAWAL, RequestKind.SWEEP):
            raise SpendNotApproved("request is not a hot-wallet BTC payment", rule="spend.request_kind",
                                   cosigner=self.cosigner_id)
        return request, decision

    def _require_clear(self) -> None:
        try:
            self._halt.require_clear()
        except Exception as error:  # any failure to know the halt state refuses: fail closed
            raise CosignerRefused(str(error) or type(error).__name__, rule="halt", cosigner=self.cosigner_id) from None

    def _expire_sessions(self) -> None:
        limit = time.monotonic() - SESSION_TTL_S
        for session_id in [s for s, session in self._sessions.items() if session.created < limit]:
            self._sessions.pop(session_id)

    def sign_share(self, data: bytes) -> dict[str, Any]:
        """Round two: check the relayed commitments, mark the nonces used durably, then sign."""
        body = parse_body(data, sender=None, fields=("session_id", "commitments"))
        session_id = body.hexbytes("session_id", length=32)
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            raise SessionReplayed("unknown session, already signed, expired, or lost in a restart",
                                  cosigner=self.cosigner_id)
        public = session.key_package.public
        relayed = body.by_identifier("commitments")
        if set(relayed) != set(session.signers):
            raise ProtocolViolation("commitments are not from exactly the session's signers", sender=None)
        per_message: list[list[frost.SigningCommitments]] = [[] for _ in session.messages]
        for identifier, items in sorted(relayed.items()):
            if not isinstance(items, list) or len(items) != len(session.messages):
                raise ProtocolViolation("one commitment per message is needed", sender=identifier)
            for index, item in enumerate(items):
                if not isinstance(item, str) or len(item) > 4 * public.group.element_length:
                    raise ProtocolViolation("commitment must be hex", sender=identifier)
                try:
                    per_message[index].append(
                        frost.SigningCommitments.from_bytes(public.group, identifier, bytes.fromhex(item)))
                except ValueError:
                    raise ProtocolViolation("commitment must be hex", sender=identifier) from None
                except InvalidMessage as error:  # names the participant whose commitment it is
                    raise ProtocolViolation(f"bad commitment: {error}", sender=identifier) from None
        if session.kind == "taproot_spend":
            self._require_clear()
        self._store.use_session(session_id)  # durable before any share exists
        shares = []
        for index, message in enumerate(session.messages):
            package = frost.SigningPackage.create(per_message[index], message, session.tweaks)
            share = frost.sign(SUITES[session.record.suite].frost,
                               session.key_package, session.nonces[index], package, message=message,
                               tweaks=session.tweaks)
            shares.append(share.to_bytes(public.group).hex())
        return {"shares": shares}

    # -- refresh and re-share -----------------------------------------------------------------------
    def _holders(self, body: Body, name: str) -> tuple[dkg_dealing.Holder, ...]:
        return tuple(dkg_dealing.Holder(h.integer("identifier", minimum=1, maximum=255), h.hexbytes("hostpubkey"))
                     for h in body.objects(name, fields=("identifier", "hostpubkey"),
                                           items_max=frost.PARTICIPANTS_MAX))

    def refresh_deal(self, data: bytes) -> dict[str, Any]:
        body = parse_body(data, sender=None, fields=("session", "key_id", "version", "holders"), optional=("action",))
        session_bytes = body.hexbytes("session", length=32)
        record = self._store.key(body.string("key_id"), body.integer("version", minimum=1))
        suite, public = SUITES[record.suite], self._public(record)
        holders = self._holders(body, "holders")
        self._refuse_revoked(record.key_id, [h.identifier for h in holders])
        with self._governed():
            self.governance.authorize_refresh(body.value.get("action"), key_id=record.key_id,
                                              holders=[(h.identifier, h.hostpubkey) for h in holders])
        session = dkg_refresh.RefreshSession(
            session_bytes, public.min_signers, public.group.serialize_element(public.group_public_key), holders,
            {i: public.group.serialize_element(public.verifying_share(i)) for i in public.identifiers})
        secret, _ = self._host_key(suite)
        try:
            dealing = dkg_refresh.refresh_deal(suite.dkg.suite, session, bytes(secret), self._rng(32))
        finally:
            _wipe(secret)
        self._remember_dealing(session_bytes, _Dealing("refresh", record.key_id, record.version, suite, session))
        return {"dealing": dealing.hex()}

    def reshare_deal(self, data: bytes) -> dict[str, Any]:
        """A dealer's dealing (dealers only); every new holder also calls it with `deal` false."""
        body = parse_body(data, sender=None, fields=("session", "key_id", "version", "dealers", "new_threshold",
                                                     "new_holders", "deal"), optional=("action",))
        session_bytes = body.hexbytes("session", length=32)
        record = self._store.key(body.string("key_id"), body.integer("version", minimum=1))
        suite, public = SUITES[record.suite], self._public(record)
        dealers, new_holders = self._holders(body, "dealers"), self._holders(body, "new_holders")
        self._refuse_revoked(record.key_id, [h.identifier for h in (*dealers, *new_holders)])
        new_threshold = body.integer("new_threshold", minimum=1, maximum=255)
        with self._governed():
            terms = self.governance.authorize_reshare(
                body.value.get("action"), key_id=record.key_id, new_threshold=new_threshold,
                dealers=[(h.identifier, h.hostpubkey) for h in dealers],
                new_holders=[(h.identifier, h.hostpubkey) for h in new_holders])
        session = dkg_reshare.ReshareSession(
            session_bytes, public.group.serialize_element(public.group_public_key), public.min_signers,
            {i: public.group.serialize_element(public.verifying_share(i)) for i in public.identifiers},
            dealers, new_threshold, new_holders)
        out: dict[str, Any] = {"dealing": None}
        if body.raw("deal") is True:
            secret, _ = self._host_key(suite)
            package = self._key_package(record)
            try:
                out["dealing"] = dkg_reshare.reshare_deal(
                    suite.dkg.suite, session, bytes(secret), SecretShare(package.identifier, package.secret_share),
                    self._rng(32)).hex()
            finally:
                _wipe(secret)
        self._remember_dealing(session_bytes, _Dealing("reshare", record.key_id, record.version, suite, session,
                                                       terms=terms))
        return out

    @contextlib.contextmanager
    def _governed(self) -> Iterator[None]:
        """A governance refusal, as this co-signer's refusal naming the rule."""
        try:
            yield
        except GovernanceRefused as refused:
            log.warning("mpc.cosigner.governance_refused", cosigner=self.cosigner_id, rule=refused.rule)
            raise CosignerRefused(str(refused), rule=refused.rule, cosigner=self.cosigner_id) from None

    def _refuse_revoked(self, key_id: str, identifiers: list[int]) -> None:
        revoked = self._store.revoked(key_id) & set(identifiers)
        if revoked:
            raise CosignerRefused(f"session names revoked co-signer(s) {sorted(revoked)}", rule="cosigner.revoked",
                                  cosigner=self.cosigner_id, culprits=tuple(sorted(revoked)))

    def _remember_dealing(self, session: bytes, dealing: _Dealing) -> None:
        with self._lock:
            if session in self._dealings or len(self._dealings) >= DKG_SESSIONS_MAX:
                raise SessionReplayed("dealing session id in use, or too many open", cosigner=self.cosigner_id)
            self._dealings[session] = dealing

    def dealing_receive(self, data: bytes) -> dict[str, Any]:
        """Check every relayed dealing (a bad one names its dealer), store the new share as pending."""
        body = parse_body(data, sender=None, fields=("session", "dealings"))
        session_bytes = body.hexbytes("session", length=32)
        with self._lock:
            run = self._dealings.get(session_bytes)
            if run is None or run.new_version is not None or run.receiving:
                raise SessionReplayed("unknown or finished dealing session", cosigner=self.cosigner_id)
            run.receiving = True  # a concurrent copy of this request is refused, not run twice
        dealings = {}
        for identifier, value in body.by_identifier("dealings").items():
            if not isinstance(value, str) or len(value) > 2 * 65536:
                raise ProtocolViolation("dealing must be hex", sender=identifier)
            try:
                dealings[identifier] = bytes.fromhex(value)
            except ValueError:
                raise ProtocolViolation("dealing must be hex", sender=identifier) from None
        suite = run.suite
        secret, _ = self._host_key(suite)
        try:
            if isinstance(run.session, dkg_refresh.RefreshSession):
                package = self._key_package(self._store.key(run.key_id, run.version))
                output = dkg_refresh.refresh_receive(suite.dkg.suite, run.session, bytes(secret),
                                                     SecretShare(package.identifier, package.secret_share), dealings)
                digest = dkg_refresh.transcript_digest(suite.dkg.suite, run.session, dealings)
            else:
                output = dkg_reshare.reshare_receive(suite.dkg.suite, run.session, bytes(secret), dealings)
                digest = dkg_reshare.transcript_digest(suite.dkg.suite, run.session, dealings)
            ack = dkg_dealing.ack_sign(suite.dkg.suite, bytes(secret), digest, self._rng(32))
        finally:
            _wipe(secret)
        share = output.secret_share
        if share is None:
            raise CosignerRefused("no share for this co-signer", rule="dealing.no_share", cosigner=self.cosigner_id)
        public = frost.PublicKeyPackage.from_encoded(group_by_name(output.suite), output.threshold,
                                                     output.group_public_key, output.public_shares)
        new_version = run.version + 1
        self._seal_and_store(run.key_id, new_version, suite, "pending", session_bytes,
                             frost.KeyPackage(share.identifier, share.value, public))
        run.digest, run.new_version = digest, new_version
        return {"ack": ack.hex(), "version": new_version, "public_package": public.to_bytes().hex()}

    def dealing_confirm(self, data: bytes) -> dict[str, Any]:
        """Activate the new share once every ack and the test signatures verify; delete the old one."""
        body = parse_body(data, sender=None, fields=("session", "acks", "test_signatures", "revoked"))
        session_bytes = body.hexbytes("session", length=32)
        with self._lock:
            run = self._dealings.get(session_bytes)
        if run is None or run.new_version is None or run.digest is None:
            raise SessionReplayed("unknown or unfinished dealing session", cosigner=self.cosigner_id)
        recipients = (run.session.holders if isinstance(run.session, dkg_refresh.RefreshSession)
                      else run.session.new_holders)
        acks = {}
        for identifier, value in body.by_identifier("acks").items():
            try:
                acks[identifier] = bytes.fromhex(value) if isinstance(value, str) else b""
            except ValueError:
                raise ProtocolViolation("ack must be hex", sender=identifier) from None
        dkg_dealing.acks_verify(run.suite.dkg.suite, recipients, run.digest, acks)
        record = self._store.key(run.key_id, run.new_version, status="pending")
        if record.session != session_bytes:  # a later dealing session replaced this one's pending share
            raise SessionReplayed("the pending share belongs to another dealing session", cosigner=self.cosigner_id)
        public = self._public(record)
        message = msg.refresh_test_message(session_bytes, public.group.serialize_element(public.group_public_key))
        signatures = body.hexlist("test_signatures", items_max=16)
        if not signatures:
            raise CosignerRefused("no test signature with the new shares", rule="dealing.untested",
                                  cosigner=self.cosigner_id)
        for signature in signatures:
            run.suite.frost.verify(run.suite.frost.signing_key(public, ()), message, signature)
        revoked = body.intlist("revoked", minimum=1, maximum=255) if body.raw("revoked") else []
        with self._governed():
            if run.terms is None and revoked:
                raise GovernanceRefused("a refresh revokes nobody", rule="governance.content")
            if run.terms is not None and tuple(sorted(revoked)) != run.terms.revoke:
                raise GovernanceRefused("the revocations differ from the re-share action", rule="governance.content")
        now = _now_s(self._clock())
        if revoked:
            self._store.revoke(run.key_id, revoked, now)
        self._store.activate(run.key_id, run.new_version, now)
        if run.terms is not None:
            self.governance.confirm_reshare(run.key_id, run.terms, revoked)
        with self._lock:
            self._dealings.pop(session_bytes, None)
        log.info("mpc.cosigner.key_rotated_shares", cosigner=self.cosigner_id, key_id=run.key_id,
                 version=run.new_version, kind=run.kind)
        return {"key_id": run.key_id, "version": run.new_version}


def _wipe(secret: bytearray) -> None:
    for index in range(len(secret)):
        secret[index] = 0


# Errors a handler may raise that mean "bad input or refused", never a crash of the co-signer.
EXPECTED_ERRORS: Final = (CosignerRefused, InvalidMessage, MalformedInput, UnknownKey, PolicyError, Refused)
