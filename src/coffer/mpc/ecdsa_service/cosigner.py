"""One threshold-ECDSA (DKLs23) co-signer: the logic behind `coffer ecdsa-cosigner --id N`.

It holds its Shamir share of each ECDSA key only sealed under its own HSM key, unseals it per
session and never sends, logs or formats it. Its OT setups with each peer (`PeerSetup`) live in
memory only: a restart or any abort means a fresh pairing. Before a signing session produces
anything, it derives the EIP-1559 digest itself from the proposed `EthSpend`, checks it against
the approved request (HSM attestation, operator approvals, its own policy evaluation with its own
history through `SignerGuard`) or, for a deposit sweep, that the money goes to the key's own hot
address, and that no halt is in force (fail closed). It never signs a digest it was handed.
Every round's "used" mark is on disk before the round's output is returned (`EcdsaStore`).

Messages to and from other co-signers are relayed by the coordinator, sealed end to end
(`PairChannel`). Any abort names the suspected co-signer and discards the OT setups involved.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol

import coincurve

from coffer.errors import Refused
from coffer.eth.errors import EthSpendInvalid
from coffer.eth.spend import DEPOSIT_SWEEP, EthSpend, normalise_address
from coffer.keyholder.governance import GovernanceRefused
from coffer.keyholder.governance_store import GovernanceStore
from coffer.keyholder.lifecycle import KeyholderGovernance, ReshareTerms
from coffer.keyholder.officers import pin_officers
from coffer.log import get_logger
from coffer.mpc.dkg import dealing as dkg_dealing
from coffer.mpc.dkg import reshare as dkg_reshare
from coffer.mpc.dkg import secp256k1_untweaked as untweaked
from coffer.mpc.dkg.protocol import ParticipantState1, ParticipantState2, SessionParams
from coffer.mpc.dkg.types import SecretShare
from coffer.mpc.ecdsa import (
    EcdsaError,
    KeyShare,
    MalformedMessage,
    PeerSetup,
    ProtocolAbort,
    SessionStateError,
    SetupDiscarded,
    SetupSession,
    SignerSetError,
    SigningSession,
    default_chain_code,
    derive,
    ethereum_address,
    key_share_from_dkg,
)
from coffer.mpc.ecdsa_service.channel import PairChannel
from coffer.mpc.ecdsa_service.store import EcdsaKeyRecord, EcdsaStore, EcdsaVault
from coffer.mpc.errors import MpcError
from coffer.mpc.service.errors import (
    CosignerRefused,
    OpaqueMessageRefused,
    ProtocolViolation,
    SessionReplayed,
    SpendNotApproved,
    UnknownKey,
)
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

__all__ = ["EcdsaCosigner", "HaltGate", "SESSION_TTL_S", "SESSIONS_MAX", "DKG_PROTOCOL"]

SESSION_TTL_S: Final = 60.0
SESSIONS_MAX: Final = 1_000
PAIRINGS_MAX: Final = 64
DKG_SESSIONS_MAX: Final = 16
DKG_PROTOCOL: Final = untweaked
# Aborts blamed on one peer before this co-signer refuses to pair with it again for a while: each
# abort may leak a little through selective failure, so a peer cannot make us retry without bound.
ABORTS_PER_PEER_MAX: Final = 3
ABORT_WINDOW_S: Final = 600.0
log = get_logger("coffer.mpc.ecdsa_service")


class HaltGate(Protocol):
    def require_clear(self) -> None: ...


@dataclass(slots=True)
class _Signing:
    key_id: str
    session: SigningSession
    channels: dict[int, PairChannel]
    created: float


@dataclass(slots=True)
class _Pairing:
    setup_id: bytes
    session: SetupSession
    channel: PairChannel


@dataclass(slots=True)
class _DkgRun:
    key_id: str
    params: SessionParams
    state1: ParticipantState1 | None = None
    state2: ParticipantState2 | None = None


@dataclass(slots=True)
class _Reshare:
    key_id: str
    version: int
    session: dkg_reshare.ReshareSession
    digest: bytes | None = None
    terms: ReshareTerms | None = None


DKG_SUITE_NAME: Final = "dkls23"  # the suite a DKG action names for this engine's keys


def reshare_test_digest(session: bytes, group_public_key: bytes, version: int) -> bytes:
    """What the new shares of a re-share sign before they replace the old ones (never a money digest:
    the domain tag keeps it apart from every EIP-1559 hash)."""
    return hashlib.sha256(b"coffer/ecdsa-cosigner/reshare-test/v1\x00" + session + group_public_key
                          + version.to_bytes(4, "big")).digest()


def spend_key(spend: EthSpend) -> bytes:
    return spend.digest()


def _wipe(secret: bytearray) -> None:
    for index in range(len(secret)):
        secret[index] = 0


class EcdsaCosigner:
    """The co-signer's state machine. Thread-safe; every public method takes the raw request body."""

    def __init__(self, cosigner_id: int, store: EcdsaStore, vault: EcdsaVault, *, guard: SignerGuard,
                 halt: HaltGate, chain_ids: frozenset[int] | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 rng: Callable[[int], bytes] = secrets.token_bytes,
                 governance: KeyholderGovernance | None = None) -> None:
        self.cosigner_id = cosigner_id
        # One governance record per co-signer: its directory, above this engine's ecdsa/ store.
        directory = store.path.parent
        if directory.name == "ecdsa":
            directory = directory.parent
        self.governance = governance or KeyholderGovernance(
            GovernanceStore.open(directory), f"cosigner-{cosigner_id}", clock)
        pin_officers(halt, self.governance)
        self._chain_ids = chain_ids  # None: any chain (only when provisioning pinned none)
        self._store = store
        self._vault = vault
        self._guard = guard
        self._halt = halt
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self._setups: dict[tuple[str, int], PeerSetup] = {}
        self._pairings: dict[tuple[str, int], _Pairing] = {}
        self._sessions: dict[bytes, _Signing] = {}
        self._dkg: dict[bytes, _DkgRun] = {}
        self._reshares: dict[bytes, _Reshare] = {}
        self._channels: dict[tuple[str, int, int, bytes], PairChannel] = {}
        self._aborts: dict[tuple[str, int], list[float]] = {}  # (key id, peer) -> monotonic times
        self._clearing: dict[bytes, tuple[bytes, bytes]] = {}  # digest -> (request digest, digest)
        self._session_digests: dict[bytes, bytes] = {}  # session id -> digest, until round 1's mark

    def __repr__(self) -> str:
        return f"EcdsaCosigner(id={self.cosigner_id})"

    def _refused(self, message: str, rule: str, culprits: tuple[int, ...] = ()) -> CosignerRefused:
        return CosignerRefused(message, rule=rule, cosigner=self.cosigner_id, culprits=culprits)

    @contextlib.contextmanager
    def _governed(self) -> Iterator[None]:
        """A governance refusal, as this co-signer's refusal naming the rule."""
        try:
            yield
        except GovernanceRefused as refused:
            log.warning("ecdsa.cosigner.governance_refused", cosigner=self.cosigner_id, rule=refused.rule)
            raise self._refused(str(refused), refused.rule) from None

    # -- keys ---------------------------------------------------------------------------------------
    def _host_key(self) -> tuple[bytearray, bytes]:
        found = self._store.host_key()
        if found is None:
            secret = bytearray(self._rng(32))
            while not 1 <= int.from_bytes(secret, "big") < DKG_PROTOCOL.suite.order:
                secret = bytearray(self._rng(32))
            public = DKG_PROTOCOL.hostpubkey_gen(bytes(secret))
            self._store.put_host_key(self._vault.seal_host_key(secret), public)
            return secret, public
        sealed, public = found
        return self._vault.open_host_key(sealed), public

    def _channel(self, record: EcdsaKeyRecord, peer: int) -> PairChannel:
        """The sealed channel to `peer` (kept in memory, like the OT setups; never stored)."""
        if peer not in record.members or peer == record.identifier:
            raise self._refused(f"participant {peer} is not a peer in key {record.key_id!r}", "session.signers")
        cache_key = (record.key_id, record.identifier, peer, record.members[peer])
        with self._lock:
            cached = self._channels.get(cache_key)
        if cached is not None:
            return cached
        secret, _ = self._host_key()
        try:
            channel = PairChannel(secret, record.members[peer], key_id=record.key_id, me=record.identifier, peer=peer)
        finally:
            _wipe(secret)
        with self._lock:
            self._channels[cache_key] = channel
        return channel

    def _key_share(self, record: EcdsaKeyRecord) -> KeyShare:
        plain = self._vault.open_share(record.key_id, record.version, self._store.sealed_share(record.key_id,
                                                                                                 record.version))
        try:
            return KeyShare(record.key_id.encode(), record.identifier, record.threshold, record.group_public_key,
                            int.from_bytes(plain, "big"))
        finally:
            _wipe(plain)

    def status(self, data: bytes) -> dict[str, Any]:
        """Keys (public facts), OT setups (usable or discarded, never their secrets), open sessions."""
        parse_body(data, sender=None, fields=())
        keys = [{"key_id": r.key_id, "version": r.version, "status": r.status, "identifier": r.identifier,
                 "threshold": r.threshold, "group_public_key": r.group_public_key.hex(),
                 "revoked": sorted(self._store.revoked(r.key_id))} for r in self._store.keys()]
        with self._lock:
            setups = [{"key_id": k, "peer": p, "usable": not s.discarded, "reason": s.discard_reason}
                      for (k, p), s in sorted(self._setups.items())]
            sessions = len(self._sessions)
        return {"cosigner_id": self.cosigner_id, "keys": keys, "setups": setups, "sessions": sessions}

    def hostkey(self, data: bytes) -> dict[str, Any]:
        parse_body(data, sender=None, fields=())
        secret, public = self._host_key()
        _wipe(secret)
        return {"hostpubkey": public.hex()}

    # -- distributed key generation (ChillDKG design, untweaked secp256k1) -----------------------------
    def dkg_step1(self, data: bytes) -> dict[str, Any]:
        body = parse_body(data, sender=None, fields=("dkg_session", "key_id", "threshold", "hostpubkeys"),
                          optional=("action",))
        session = body.hexbytes("dkg_session", length=32)
        key_id = body.string("key_id")
        hostpubkeys = tuple(body.hexlist("hostpubkeys", length=33, items_max=255))
        threshold = body.integer("threshold", minimum=2, maximum=max(2, len(hostpubkeys)))
        if any(r.key_id == key_id for r in self._store.keys()):
            raise self._refused(f"key {key_id!r} exists already", "dkg.key_exists")
        secret, public = self._host_key()
        try:
            if public not in hostpubkeys:
                raise self._refused("this co-signer's host key is not in the session", "dkg.not_participant")
            with self._governed():
                self.governance.authorize_dkg(body.value.get("action"), key_id=key_id, suite=DKG_SUITE_NAME,
                                              threshold=threshold, hostpubkeys=hostpubkeys, own_hostpubkey=public)
            params = SessionParams(hostpubkeys, threshold)
            state1, pmsg1 = DKG_PROTOCOL.participant_step1(bytes(secret), params, self._rng(32))
        finally:
            _wipe(secret)
        with self._lock:
            if len(self._dkg) >= DKG_SESSIONS_MAX or session in self._dkg:
                raise SessionReplayed("DKG session id in use, or too many", cosigner=self.cosigner_id)
            self._dkg[session] = _DkgRun(key_id, params, state1=state1)
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
        _, run = self._dkg_run(body)
        if run.state1 is None:
            raise SessionReplayed("DKG step 2 was already run", cosigner=self.cosigner_id)
        state1, run.state1 = run.state1, None
        secret, _ = self._host_key()
        try:
            run.state2, pmsg2 = DKG_PROTOCOL.participant_step2(bytes(secret), state1, body.hexbytes("cmsg1"),
                                                               self._rng(32))
        finally:
            _wipe(secret)
        return {"pmsg2": pmsg2.hex()}

    def dkg_finalize(self, data: bytes) -> dict[str, Any]:
        body = parse_body(data, sender=None, fields=("dkg_session", "cmsg2"))
        session, run = self._dkg_run(body)
        if run.state2 is None:
            raise SessionReplayed("DKG finalize without step 2", cosigner=self.cosigner_id)
        output, _recovery = DKG_PROTOCOL.participant_finalize(run.state2, body.hexbytes("cmsg2"))
        with self._lock:
            self._dkg.pop(session, None)
        share = key_share_from_dkg(output, run.key_id.encode())
        members = {index + 1: key for index, key in enumerate(run.params.hostpubkeys)}
        self._seal_and_store(EcdsaKeyRecord(run.key_id, 1, "active", share.identifier, share.threshold,
                                            share.public_key, dict(output.public_shares), members), share)
        self.governance.pin_dkg(run.key_id, run.params.t, run.params.hostpubkeys)
        log.info("ecdsa.cosigner.dkg_done", cosigner=self.cosigner_id, key_id=run.key_id,
                 identifier=share.identifier)
        return {"identifier": share.identifier, "group_public_key": share.public_key.hex(),
                "address": ethereum_address(share.public_key)}

    def _seal_and_store(self, record: EcdsaKeyRecord, share: KeyShare) -> None:
        secret = bytearray(share.secret_share.to_bytes(32, "big"))
        try:
            sealed = self._vault.seal_share(record.key_id, record.version, secret)
        finally:
            _wipe(secret)
        self._store.put_share(record, sealed, self._clock().isoformat())

    # -- pairing: one fresh OT setup per pair, relayed and sealed --------------------------------------
    def pair_start(self, data: bytes) -> dict[str, Any]:
        """Start a fresh pairing with `peer` (replaces any setup with it, usable or not)."""
        body = parse_body(data, sender=None, fields=("key_id", "peer", "nonce"))
        record = self._store.key(body.string("key_id"))
        peer = body.integer("peer", minimum=1, maximum=255)
        self._refuse_revoked(record, [peer])
        self._refuse_rate(record.key_id, peer)
        channel = self._channel(record, peer)
        session = SetupSession(me=record.identifier, peer=peer, key_id=record.key_id.encode(),
                               nonce=body.hexbytes("nonce", length=32), rng=self._rng)
        first = session.start()
        with self._lock:
            if len(self._pairings) >= PAIRINGS_MAX:
                raise self._refused("too many pairings in progress", "pair.limit")
            old = self._setups.pop((record.key_id, peer), None)
            self._pairings[(record.key_id, peer)] = _Pairing(session.setup_id, session, channel)
        if old is not None:
            old.discard("replaced by a fresh pairing")
        return {"setup_id": session.setup_id.hex(), "message": channel.seal("pair", session.setup_id, 1, first).hex()}

    def pair_step(self, data: bytes) -> dict[str, Any]:
        """Take the peer's pairing message `round`; answer with ours, or finish the setup."""
        body = parse_body(data, sender=None, fields=("key_id", "peer", "round", "message"))
        key_id, peer = body.string("key_id"), body.integer("peer", minimum=1, maximum=255)
        round_number = body.integer("round", minimum=1, maximum=5)
        with self._lock:
            pairing = self._pairings.get((key_id, peer))
        if pairing is None:
            raise SessionReplayed("no pairing in progress with this peer", cosigner=self.cosigner_id)
        try:
            plain = pairing.channel.open("pair", pairing.setup_id, round_number, body.hexbytes("message"))
            reply = pairing.session.receive(plain)
        except (EcdsaError, ProtocolViolation) as error:
            self._note_abort(key_id, error)
            with self._lock:
                self._pairings.pop((key_id, peer), None)
            raise self._translate(error) from None
        if reply is not None:
            return {"done": False, "message": pairing.channel.seal("pair", pairing.setup_id, round_number + 1,
                                                                   reply).hex()}
        setup = pairing.session.result()
        with self._lock:
            self._pairings.pop((key_id, peer), None)
            self._setups[(key_id, peer)] = setup
        log.info("ecdsa.cosigner.paired", cosigner=self.cosigner_id, key_id=key_id, peer=peer)
        return {"done": True, "message": None}

    def _note_abort(self, key_id: str, error: Exception) -> None:
        """Counts an abort against the peer(s) it blames (a parse failure, a failed check)."""
        suspects: tuple[int, ...] = ()
        if isinstance(error, ProtocolAbort):
            suspects = error.counterparties
        elif isinstance(error, MalformedMessage | ProtocolViolation) and error.sender is not None:
            suspects = (error.sender,)
        now = time.monotonic()
        with self._lock:
            for peer in suspects:
                times = [t for t in self._aborts.get((key_id, peer), []) if t > now - ABORT_WINDOW_S]
                self._aborts[(key_id, peer)] = [*times, now]
        if suspects:
            log.warning("ecdsa.cosigner.abort_blamed", cosigner=self.cosigner_id, key_id=key_id,
                        suspects=list(suspects), error=type(error).__name__)

    def _refuse_rate(self, key_id: str, peer: int) -> None:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._aborts.get((key_id, peer), []) if t > now - ABORT_WINDOW_S]
        if len(recent) >= ABORTS_PER_PEER_MAX:
            raise self._refused(f"{len(recent)} aborts blamed on participant {peer} in the last "
                                f"{ABORT_WINDOW_S:.0f} s: no new pairing with it for now", "pair.rate_limited", (peer,))

    # -- signing ----------------------------------------------------------------------------------
    def sign_round1(self, data: bytes) -> dict[str, Any]:
        """Derive and check what is signed, open the session (durably), return sealed round-1 messages."""
        body = parse_body(data, sender=None, fields=("key_id", "version", "signers", "nonce", "spend", "approvals"),
                          optional=("digest", "reshare_test"))
        if body.has("digest"):
            raise OpaqueMessageRefused("a co-signer derives the digest from the spend; it signs no given digest",
                                       cosigner=self.cosigner_id)
        if body.has("reshare_test"):
            record, digest = self._reshare_test(body)
        else:
            record = self._store.key(body.string("key_id"), body.integer("version", minimum=1))
        signers = tuple(sorted(body.intlist("signers")))
        self._check_signers(record, signers)
        if not body.has("reshare_test"):
            try:
                spend = EthSpend.from_json(body.raw("spend"))
            except EthSpendInvalid as error:
                raise self._refused(str(error), error.rule) from None
            digest = spend.digest()
        approvals = body.objects("approvals", fields=("request", "decision"), items_max=1)
        peers = [p for p in signers if p != record.identifier]
        with self._lock:
            self._expire()
            setups = {p: self._setups.get((record.key_id, p)) for p in peers}
            if len(self._sessions) >= SESSIONS_MAX:
                raise self._refused("too many open sessions", "session.limit")
        missing = tuple(p for p, s in setups.items() if s is None or s.discarded)
        if missing:
            raise self._refused("no usable OT setup with these peers: pair first", "ot.setup_missing", missing)
        tweak = 0 if body.has("reshare_test") else self._clear_spend(record, spend, approvals)
        channels = {p: self._channel(record, p) for p in peers}
        try:
            session = SigningSession(key=self._key_share(record), signers=signers, digest=digest,
                                     nonce=body.hexbytes("nonce", length=32),
                                     setups={p: s for p, s in setups.items() if s is not None}, tweak=tweak,
                                     rng=self._rng, mark_used=self._mark_used)
        except EcdsaError as error:
            raise self._translate(error) from None
        if self._store.session_round(session.session_id) is not None:  # the durable insert is in round 1's mark
            raise SessionReplayed("session id seen before", cosigner=self.cosigner_id)
        with self._lock:
            self._session_digests[session.session_id] = digest
        signing = _Signing(record.key_id, session, channels, time.monotonic())
        out = self._run(signing, session.round1)
        with self._lock:
            self._sessions[session.session_id] = signing
        return {"session_id": session.session_id.hex(), "digest": digest.hex(),
                "messages": self._seal(signing, 1, out)}

    def _mark_used(self, session_id: bytes, round_number: int) -> None:
        """Durable before the round's output is returned: round 1 opens the session id (once, ever)."""
        if round_number == 1:
            with self._lock:
                cleared = self._clearing.pop(self._session_digests.pop(session_id, b""), None)
            self._store.open_session(session_id, "", self._clock().isoformat(), cosigner=self.cosigner_id,
                                     round_number=1, cleared=cleared)
        else:
            self._store.mark_used(session_id, round_number, cosigner=self.cosigner_id)

    def _check_signers(self, record: EcdsaKeyRecord, signers: tuple[int, ...]) -> None:
        self._refuse_revoked(record, list(signers))
        if record.identifier not in signers:
            raise self._refused("this co-signer is not in the signer set", "session.not_member")
        unknown = [s for s in signers if s not in record.public_shares]
        if unknown:
            raise self._refused(f"unknown identifiers {unknown}", "session.signers")
        if len(signers) < record.threshold:
            raise self._refused(f"{len(signers)} signers, threshold {record.threshold}", "session.too_few_signers")

    def _refuse_revoked(self, record: EcdsaKeyRecord, identifiers: list[int]) -> None:
        revoked = self._store.revoked(record.key_id) & set(identifiers)
        if revoked:
            raise self._refused(f"names revoked co-signer(s) {sorted(revoked)}", "cosigner.revoked",
                                tuple(sorted(revoked)))

    def _require_clear(self) -> None:
        try:
            self._halt.require_clear()
        except Exception as error:  # not knowing the halt state refuses too: fail closed
            raise self._refused(str(error) or type(error).__name__, "halt") from None

    def _clear_spend(self, record: EcdsaKeyRecord, spend: EthSpend, approvals: list[Body]) -> int:
        """Checks the spend against what was approved; returns the tweak of the paying address."""
        self._require_clear()
        if self._chain_ids is not None and spend.chain_id not in self._chain_ids:
            raise SpendNotApproved(f"chain id {spend.chain_id} is not pinned by this co-signer",
                                   rule="spend.chain_id", cosigner=self.cosigner_id)
        group_key = record.group_public_key
        if spend.kind == DEPOSIT_SWEEP:
            if approvals:
                raise SpendNotApproved("a deposit sweep carries no withdrawal request", cosigner=self.cosigner_id)
            if spend.to != ethereum_address(group_key):
                raise SpendNotApproved("a deposit sweep must pay this key's own hot address",
                                       rule="sweep.destination", cosigner=self.cosigner_id)
            derivation = derive(group_key, default_chain_code(group_key, record.key_id.encode()), spend.path)
            log.info("ecdsa.cosigner.sweep_cleared", cosigner=self.cosigner_id, index=spend.path[0],
                     value_wei=spend.value_wei)
            return derivation.tweak
        if len(approvals) != 1:
            raise SpendNotApproved("a withdrawal needs exactly one approved request", cosigner=self.cosigner_id)
        request, decision = self._approval(approvals[0])
        try:
            destination = normalise_address(request.destination)
        except EthSpendInvalid:
            raise SpendNotApproved("the request's destination is not an Ethereum address",
                                   rule="spend.destination", cosigner=self.cosigner_id) from None
        if destination != spend.to or request.amount_minor != spend.value_wei:
            raise SpendNotApproved("the transaction does not pay what the request approved",
                                   rule="spend.mismatch", cosigner=self.cosigner_id)
        digest = spend.digest()
        cleared_for = self._store.cleared(request.digest())
        with self._lock:
            pending = self._clearing.get(digest)
        if cleared_for is None and pending == (request.digest(), digest):
            pass  # cleared by the guard for this very transaction; its round 1 has not run yet
        elif cleared_for is None:
            try:
                self._guard.check(request, decision, now=self._clock())
            except (PolicyError, Refused) as refusal:
                raise self._refused(str(refusal), getattr(refusal, "rule", "policy")) from None
            with self._lock:  # written with round 1's durable mark (one fsync for both)
                self._clearing[spend_key(spend)] = (request.digest(), digest)
        elif cleared_for != digest:
            raise self._refused("this request was already signed in another transaction", "request.already_signed")
        log.info("ecdsa.cosigner.withdrawal_cleared", cosigner=self.cosigner_id, request=request.digest_hex,
                 value_wei=spend.value_wei)
        return 0

    def _approval(self, item: Body) -> tuple[WithdrawalRequest, SignedDecision]:
        try:
            request = request_from_json(item.raw("request"))
            decision = signed_decision_from_json(item.raw("decision"))
        except PolicyError as error:
            raise item.fault(f"approval does not parse: {error}") from None
        if request.asset != "ETH" or request.source_wallet not in ("hot", "auto") or request.kind not in (
                RequestKind.CLIENT_WITHDRAWAL, RequestKind.SWEEP):
            raise SpendNotApproved("request is not a hot-wallet ETH payment", rule="spend.request_kind",
                                   cosigner=self.cosigner_id)
        return request, decision

    def _expire(self) -> None:
        limit = time.monotonic() - SESSION_TTL_S
        for session_id in [s for s, signing in self._sessions.items() if signing.created < limit]:
            self._sessions.pop(session_id).session.abort("expired")

    def _seal(self, signing: _Signing, round_number: int, out: dict[int, bytes]) -> dict[str, str]:
        context = signing.session.session_id
        return {str(peer): signing.channels[peer].seal("sign", context, round_number, message).hex()
                for peer, message in out.items()}

    def _take(self, body: Body) -> _Signing:
        session_id = body.hexbytes("session_id", length=32)
        with self._lock:
            signing = self._sessions.get(session_id)
        if signing is None:
            raise SessionReplayed("unknown session (finished, aborted, expired, or lost in a restart)",
                                  cosigner=self.cosigner_id)
        try:
            self._require_clear()  # a halt that started mid-session stops it before the next output
        except CosignerRefused:
            signing.session.abort("halt")
            with self._lock:
                self._sessions.pop(session_id, None)
            raise
        return signing

    def _inbox(self, signing: _Signing, body: Body, round_number: int) -> dict[int, bytes]:
        relayed = body.by_identifier("messages")
        inbox = {}
        for sender, value in relayed.items():
            channel = signing.channels.get(sender)
            if channel is None or not isinstance(value, str):
                raise ProtocolViolation("message from a party outside the session", sender=sender)
            try:
                sealed = bytes.fromhex(value)
            except ValueError:
                raise ProtocolViolation("message must be hex", sender=sender) from None
            inbox[sender] = channel.open("sign", signing.session.session_id, round_number, sealed)
        return inbox

    def _run(self, signing: _Signing, step: Callable[[], Any]) -> Any:
        """Runs one round; any failure ends the session, discards its OT setups and names the suspect."""
        try:
            return step()
        except (EcdsaError, MpcError) as error:
            signing.session.abort(type(error).__name__)
            self._note_abort(signing.key_id, error)
            with self._lock:
                self._sessions.pop(signing.session.session_id, None)
            log.warning("ecdsa.cosigner.session_aborted", cosigner=self.cosigner_id, error=type(error).__name__)
            raise self._translate(error) from None

    def sign_round2(self, data: bytes) -> dict[str, Any]:
        body = parse_body(data, sender=None, fields=("session_id", "messages"))
        signing = self._take(body)
        out = self._run(signing, lambda: signing.session.round2(self._inbox(signing, body, 1)))
        return {"messages": self._seal(signing, 2, out)}

    def sign_round3(self, data: bytes) -> dict[str, Any]:
        """Round three: the checks of Protocol 3.6, then this signer's (R, u_i, w_i) broadcast."""
        body = parse_body(data, sender=None, fields=("session_id", "messages"))
        signing = self._take(body)
        broadcast = self._run(signing, lambda: signing.session.round3(self._inbox(signing, body, 2)))
        with self._lock:
            self._sessions.pop(signing.session.session_id, None)
        return {"broadcast": bytes(broadcast).hex()}

    def sign_abort(self, data: bytes) -> dict[str, Any]:
        """The coordinator reports an abort elsewhere in the session: end it and discard its setups."""
        body = parse_body(data, sender=None, fields=("session_id", "reason"))
        session_id = body.hexbytes("session_id", length=32)
        with self._lock:
            signing = self._sessions.pop(session_id, None)
        if signing is not None:
            signing.session.abort("abort reported: " + body.string("reason")[:64])
        return {"aborted": signing is not None}

    def _translate(self, error: Exception) -> Exception:
        if isinstance(error, MalformedMessage):
            return ProtocolViolation(str(error), sender=error.sender)
        if isinstance(error, ProtocolAbort):
            return self._refused(str(error), "ecdsa.abort." + type(error).__name__, error.counterparties)
        if isinstance(error, SetupDiscarded):
            return self._refused(str(error), "ot.setup_discarded", (error.counterparty,))
        if isinstance(error, SessionStateError):
            return SessionReplayed(str(error), cosigner=self.cosigner_id)
        if isinstance(error, SignerSetError):
            return self._refused(str(error), "session.signers")
        return error

    # -- re-share (revocation): same key, new shares for the kept co-signers ---------------------------
    def _holders(self, body: Body, name: str) -> tuple[dkg_dealing.Holder, ...]:
        return tuple(dkg_dealing.Holder(h.integer("identifier", minimum=1, maximum=255), h.hexbytes("hostpubkey"))
                     for h in body.objects(name, fields=("identifier", "hostpubkey"), items_max=255))

    def reshare_deal(self, data: bytes) -> dict[str, Any]:
        """Open a re-share; a dealer (`deal` true) also returns its dealing of lambda_i * s_i."""
        body = parse_body(data, sender=None, fields=("session", "key_id", "version", "dealers", "new_threshold",
                                                     "new_holders", "deal"), optional=("action",))
        session_bytes = body.hexbytes("session", length=32)
        record = self._store.key(body.string("key_id"), body.integer("version", minimum=1))
        dealers, new_holders = self._holders(body, "dealers"), self._holders(body, "new_holders")
        self._refuse_revoked(record, [h.identifier for h in (*dealers, *new_holders)])
        for holder in (*dealers, *new_holders):
            if record.members.get(holder.identifier) != holder.hostpubkey:
                raise self._refused("a holder's host key differs from the key's member list", "reshare.holders",
                                    (holder.identifier,))
        new_threshold = body.integer("new_threshold", minimum=1, maximum=255)  # below 2: governance.threshold
        with self._governed():
            terms = self.governance.authorize_reshare(
                body.value.get("action"), key_id=record.key_id, new_threshold=new_threshold,
                dealers=[(h.identifier, h.hostpubkey) for h in dealers],
                new_holders=[(h.identifier, h.hostpubkey) for h in new_holders])
        session = dkg_reshare.ReshareSession(session_bytes, record.group_public_key, record.threshold,
                                             dict(record.public_shares), dealers, new_threshold, new_holders)
        out: dict[str, Any] = {"dealing": None}
        if body.raw("deal") is True:
            secret, _ = self._host_key()
            share = self._key_share(record)
            try:
                out["dealing"] = dkg_reshare.reshare_deal(
                    DKG_PROTOCOL.suite, session, bytes(secret), SecretShare(share.identifier, share.secret_share),
                    self._rng(32)).hex()
            finally:
                _wipe(secret)
        with self._lock:
            if session_bytes in self._reshares or len(self._reshares) >= DKG_SESSIONS_MAX:
                raise SessionReplayed("re-share session id in use, or too many", cosigner=self.cosigner_id)
            self._reshares[session_bytes] = _Reshare(record.key_id, record.version, session, terms=terms)
        return out

    def reshare_receive(self, data: bytes) -> dict[str, Any]:
        """Check every dealing (a bad one names its dealer); keep the new share as pending; ack."""
        body = parse_body(data, sender=None, fields=("session", "dealings"))
        session_bytes = body.hexbytes("session", length=32)
        with self._lock:
            run = self._reshares.get(session_bytes)
        if run is None or run.digest is not None:
            raise SessionReplayed("unknown or finished re-share session", cosigner=self.cosigner_id)
        dealings = {}
        for identifier, value in body.by_identifier("dealings").items():
            try:
                dealings[identifier] = bytes.fromhex(value) if isinstance(value, str) else b""
            except ValueError:
                raise ProtocolViolation("dealing must be hex", sender=identifier) from None
        secret, _ = self._host_key()
        try:
            output = dkg_reshare.reshare_receive(DKG_PROTOCOL.suite, run.session, bytes(secret), dealings)
            digest = dkg_reshare.transcript_digest(DKG_PROTOCOL.suite, run.session, dealings)
            ack = dkg_dealing.ack_sign(DKG_PROTOCOL.suite, bytes(secret), digest, self._rng(32))
        finally:
            _wipe(secret)
        share = key_share_from_dkg(output, run.key_id.encode())
        if share.public_key != self._store.key(run.key_id, run.version).group_public_key:
            raise self._refused("re-share changed the group key", "reshare.group_key")
        members = {h.identifier: h.hostpubkey for h in run.session.new_holders}
        self._seal_and_store(EcdsaKeyRecord(run.key_id, run.version + 1, "pending", share.identifier,
                                            share.threshold, share.public_key, dict(output.public_shares), members),
                             share)
        run.digest = digest
        return {"ack": ack.hex(), "version": run.version + 1}

    def _reshare_test(self, body: Body) -> tuple[EcdsaKeyRecord, bytes]:
        """The pending new shares sign a message this co-signer derives from the re-share itself."""
        if body.raw("spend") is not None or body.raw("approvals") != []:
            raise body.fault("a re-share test signs no spend")
        session_bytes = body.hexbytes("reshare_test", length=32)
        with self._lock:
            run = self._reshares.get(session_bytes)
        if run is None or run.digest is None or body.integer("version", minimum=1) != run.version + 1:
            raise SessionReplayed("no received re-share for this test", cosigner=self.cosigner_id)
        record = self._store.key(run.key_id, run.version + 1, status="pending")
        return record, reshare_test_digest(session_bytes, record.group_public_key, record.version)

    def reshare_confirm(self, data: bytes) -> dict[str, Any]:
        """Every new holder acknowledged the transcript and the new shares made a valid test signature:
        activate them (the old share is deleted), record the revocations."""
        body = parse_body(data, sender=None, fields=("session", "acks", "revoked", "test_signature"))
        session_bytes = body.hexbytes("session", length=32)
        with self._lock:
            run = self._reshares.get(session_bytes)
        if run is None or run.digest is None:
            raise SessionReplayed("unknown or unfinished re-share session", cosigner=self.cosigner_id)
        acks = {}
        for identifier, value in body.by_identifier("acks").items():
            try:
                acks[identifier] = bytes.fromhex(value) if isinstance(value, str) else b""
            except ValueError:
                raise ProtocolViolation("ack must be hex", sender=identifier) from None
        dkg_dealing.acks_verify(DKG_PROTOCOL.suite, run.session.new_holders, run.digest, acks)
        group_key = self._store.key(run.key_id, run.version + 1, status="pending").group_public_key
        signature = body.hexbytes("test_signature", length=64)
        try:
            valid = coincurve.PublicKey(group_key).verify(
                bytes(coincurve.ecdsa.cdata_to_der(coincurve.ecdsa.deserialize_compact(signature))),
                reshare_test_digest(session_bytes, group_key, run.version + 1), hasher=None)
        except ValueError:
            valid = False
        if not valid:
            raise self._refused("the new shares' test signature does not verify", "reshare.untested")
        revoked = body.intlist("revoked", minimum=1, maximum=255) if body.raw("revoked") else []
        with self._governed():
            if run.terms is None or tuple(sorted(revoked)) != run.terms.revoke:
                raise GovernanceRefused("the revocations differ from the re-share action", rule="governance.content")
        self._store.activate(run.key_id, run.version + 1, revoked, self._clock().isoformat())
        self.governance.confirm_reshare(run.key_id, run.terms, revoked)
        with self._lock:
            self._reshares.pop(session_bytes, None)
            for key, setup in list(self._setups.items()):
                if key[0] == run.key_id and key[1] in revoked:
                    setup.discard("peer revoked")
                    del self._setups[key]
        log.info("ecdsa.cosigner.reshared", cosigner=self.cosigner_id, key_id=run.key_id, version=run.version + 1,
                 revoked=revoked)
        return {"key_id": run.key_id, "version": run.version + 1}
