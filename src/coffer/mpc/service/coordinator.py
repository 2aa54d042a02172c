"""The coordinator's side of the MPC co-signers: it holds no share and no nonce, ever.

It relays DKG, refresh and re-share messages between the co-signers (shares travel encrypted to
their recipients inside the protocol messages), opens signing sessions with t..n co-signers,
aggregates the signature shares and verifies every signature before releasing it; a bad share
names its co-signer (`InvalidSignatureShare.culprits` holds co-signer ids). Revoked co-signers
are refused here as well as by the co-signers themselves.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coffer.btc.bip322_sign import assemble_p2tr, p2tr_sighash
from coffer.keyholder.governance import ActionKind, SignedAction
from coffer.keyholder.lifecycle import Approver, dkg_content, keyholder_name, refresh_content, reshare_content
from coffer.log import get_logger
from coffer.mpc import frost
from coffer.mpc.dkg import refresh as dkg_refresh
from coffer.mpc.dkg import reshare as dkg_reshare
from coffer.mpc.dkg.dealing import Holder
from coffer.mpc.dkg.errors import DkgError
from coffer.mpc.dkg.protocol import SessionParams
from coffer.mpc.errors import (
    InsufficientSigners,
    InvalidMessage,
    InvalidSignatureShare,
    MalformedInput,
    MpcError,
)
from coffer.mpc.frost.keys import group_by_name
from coffer.mpc.service import messages as msg
from coffer.mpc.service.client import CosignerClient
from coffer.mpc.service.cosigner import SUITES
from coffer.mpc.service.errors import (
    CosignerRefused,
    CosignerRevoked,
    CosignerUnavailable,
    ProtocolViolation,
    QuorumUnavailable,
    UnknownKey,
)
from coffer.mpc.service.tables import mpc_keys
from coffer.policy import SignedDecision, WithdrawalRequest

__all__ = ["MpcCoordinator", "MpcKey", "Member"]

log = get_logger("coffer.mpc.coordinator")
FANOUT_WORKERS: Final = 64
KEY_CACHE_S: Final = 5.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Member:
    identifier: int
    cosigner: int
    hostpubkey: bytes


@dataclass(frozen=True, slots=True)
class MpcKey:
    """The public facts of one threshold key, as the coordinator keeps them."""

    key_id: str
    suite: str  # "taproot" | "ed25519"
    version: int
    public: frost.PublicKeyPackage
    members: tuple[Member, ...]
    revoked: tuple[int, ...]  # co-signer ids
    status: str

    @property
    def threshold(self) -> int:
        return self.public.min_signers

    @property
    def group_public_key(self) -> bytes:
        return self.public.group.serialize_element(self.public.group_public_key)

    def member(self, cosigner: int) -> Member:
        for member in self.members:
            if member.cosigner == cosigner:
                return member
        raise CosignerRevoked(cosigner) if cosigner in self.revoked else UnknownKey(
            f"co-signer {cosigner} holds no share of {self.key_id!r}")

    def cosigner_of(self, identifier: int) -> int:
        return next(m.cosigner for m in self.members if m.identifier == identifier)

    def taproot_output_key(self) -> bytes:
        return msg.taproot_key(self.public)[0]

    def publication_public_key(self) -> bytes:
        """The 32-byte Ed25519 public key (RFC 8032 encoding), for an "ed25519" key."""
        if self.suite != "ed25519":
            raise UnknownKey(f"{self.key_id!r} is not an Ed25519 key")
        return self.group_public_key


def load_key(engine: Engine, key_id: str) -> MpcKey:
    """A key's public facts as its DKG recorded them (raises UnknownKey)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(mpc_keys).where(mpc_keys.c.key_id == key_id)).first()
    if row is None:
        raise UnknownKey(f"no key {key_id!r}")
    members = tuple(Member(int(i), int(m["cosigner"]), bytes.fromhex(m["hostpubkey"]))
                    for i, m in sorted(json.loads(row.members).items(), key=lambda item: int(item[0])))
    return MpcKey(row.key_id, row.suite, int(row.version), frost.PublicKeyPackage.from_bytes(
        bytes.fromhex(row.public_package)), members, tuple(json.loads(row.revoked)), row.status)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class MpcCoordinator:
    """Runs DKG, signing, refresh and re-share sessions with the co-signers over mutual TLS."""

    def __init__(self, engine: Engine, clients: Mapping[int, CosignerClient], *,
                 rng: Callable[[int], bytes] = secrets.token_bytes, approve: Approver | None = None) -> None:
        """`approve` obtains the administrators' signed action for a DKG, refresh or re-share; the
        coordinator carries it to the co-signers, which refuse any lifecycle step without one."""
        self._engine = engine
        self._approve = approve
        self._clients = dict(clients)
        self._rng = rng
        self._pool = ThreadPoolExecutor(max_workers=FANOUT_WORKERS, thread_name_prefix="mpc-fanout")
        self._cache: dict[str, tuple[float, MpcKey]] = {}
        self._cache_lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for client in self._clients.values():
            client.close()

    # -- fan-out ----------------------------------------------------------------------------------
    def _fanout(self, calls: Mapping[int, Callable[[], T]]) -> dict[int, T]:
        """Run one call per co-signer in parallel; raise the first error in co-signer order."""
        ordered = sorted(calls)
        # The last call runs in this thread: one hand-off to the pool fewer per round.
        futures = {cosigner: self._pool.submit(calls[cosigner]) for cosigner in ordered[:-1]}
        inline: dict[int, T] = {}
        inline_error: BaseException | None = None
        if ordered:
            try:
                inline[ordered[-1]] = calls[ordered[-1]]()
            except BaseException as error:  # collect every answer before raising
                inline_error = error
        results: dict[int, T] = {}
        first: BaseException | None = None
        for cosigner in ordered:
            try:
                if cosigner in futures:
                    results[cosigner] = futures[cosigner].result()
                elif inline_error is not None:
                    raise inline_error
                else:
                    results[cosigner] = inline[cosigner]
            except BaseException as error:  # collect every answer before raising
                first = first or error
        if first is not None:
            raise first
        return results

    def _client(self, cosigner: int) -> CosignerClient:
        try:
            return self._clients[cosigner]
        except KeyError:
            raise QuorumUnavailable(f"no connection to co-signer {cosigner}") from None

    def _call_all(self, cosigners: Sequence[int], path: str, body: Callable[[int], dict[str, Any]]
                  ) -> dict[int, dict[str, Any]]:
        def call(cosigner: int) -> Callable[[], dict[str, Any]]:
            client = self._client(cosigner)
            return lambda: client.call(path, body(cosigner))

        return self._fanout({cosigner: call(cosigner) for cosigner in cosigners})

    # -- the key directory -----------------------------------------------------------------------
    def key(self, key_id: str) -> MpcKey:
        """The key's public facts, cached for KEY_CACHE_S (another coordinator may change them)."""
        with self._cache_lock:
            cached = self._cache.get(key_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        key = self._load(key_id)
        with self._cache_lock:
            self._cache[key_id] = (time.monotonic() + KEY_CACHE_S, key)
        return key

    def _load(self, key_id: str) -> MpcKey:
        return load_key(self._engine, key_id)

    def keys(self) -> list[MpcKey]:
        with self._engine.connect() as conn:
            ids = [r.key_id for r in conn.execute(sa.select(mpc_keys.c.key_id).order_by(mpc_keys.c.key_id))]
        return [self.key(key_id) for key_id in ids]

    def _save(self, key: MpcKey, *, insert: bool) -> None:
        values = dict(suite=key.suite, version=key.version, threshold=key.threshold,
                      group_public_key=key.group_public_key.hex(), public_package=key.public.to_bytes().hex(),
                      members=json.dumps({str(m.identifier): {"cosigner": m.cosigner, "hostpubkey": m.hostpubkey.hex()}
                                          for m in key.members}),
                      revoked=json.dumps(sorted(key.revoked)), status=key.status, updated_at=_now())
        with self._cache_lock:
            self._cache.pop(key.key_id, None)
        with self._engine.begin() as conn:
            if insert:
                conn.execute(mpc_keys.insert().values(key_id=key.key_id, created_at=_now(), **values))
            else:
                conn.execute(mpc_keys.update().where(mpc_keys.c.key_id == key.key_id).values(**values))

    def retire(self, key_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(key_id, None)
        with self._engine.begin() as conn:
            conn.execute(mpc_keys.update().where(mpc_keys.c.key_id == key_id).values(status="retired",
                                                                                        updated_at=_now()))

    # -- distributed key generation -----------------------------------------------------------------
    def _action(self, kind: ActionKind, key_id: str, cosigners: Sequence[int], content: dict[str, Any],
                given: SignedAction | None) -> dict[str, Any] | None:
        if given is not None:
            return given.to_json()
        if self._approve is None:
            return None  # the co-signers refuse with governance.missing
        return self._approve(kind, key_id, [keyholder_name(c) for c in cosigners], content).to_json()

    def dkg(self, key_id: str, suite: str, threshold: int, cosigners: Sequence[int] | None = None,
            *, revoked: Sequence[int] = (), action: SignedAction | None = None) -> MpcKey:
        """A fresh t-of-n key among `cosigners` (default: every configured one not revoked)."""
        if suite not in SUITES:
            raise UnknownKey(f"unknown suite {suite!r}")
        chosen = sorted(cosigners if cosigners is not None else (c for c in self._clients if c not in revoked))
        for cosigner in chosen:
            if cosigner in revoked:
                raise CosignerRevoked(cosigner)
        if len(set(chosen)) != len(chosen) or not 2 <= threshold <= len(chosen):
            raise InsufficientSigners(f"threshold {threshold} of {len(chosen)} co-signers (at least 2)")
        hostkeys = self._call_all(chosen, "/v1/hostkey", lambda c: {"suite": suite})
        hostpubkeys = tuple(_hex_field(hostkeys[c], "hostpubkey", c) for c in chosen)
        dkg = SUITES[suite].dkg
        params = SessionParams(hostpubkeys, threshold)
        session = self._rng(32)
        by_index = {index: cosigner for index, cosigner in enumerate(chosen)}
        signed = self._action(ActionKind.DKG, key_id, chosen,
                              dkg_content(suite, threshold, list(zip(chosen, hostpubkeys, strict=True))), action)
        replies = self._call_all(chosen, "/v1/dkg/step1", lambda c: {
            "dkg_session": session.hex(), "key_id": key_id, "suite": suite, "threshold": threshold,
            "hostpubkeys": [h.hex() for h in hostpubkeys], **({} if signed is None else {"action": signed})})
        pmsgs1 = [_hex_field(replies[c], "pmsg1", c) for c in chosen]
        try:
            state, cmsg1 = dkg.coordinator_step1(pmsgs1, params)
            replies = self._step2(chosen, session, cmsg1, pmsgs1, params, suite, by_index)
            cmsg2, output, _recovery = dkg.coordinator_finalize(
                state, [_hex_field(replies[c], "pmsg2", c) for c in chosen])
        except DkgError as error:
            raise _blame_dkg(error, by_index) from None
        replies = self._call_all(chosen, "/v1/dkg/finalize", lambda c: {"dkg_session": session.hex(),
                                                                          "cmsg2": cmsg2.hex()})
        public = frost.PublicKeyPackage.from_encoded(group_by_name(output.suite), output.threshold,
                                                     output.group_public_key, output.public_shares)
        for index, cosigner in by_index.items():
            if _hex_field(replies[cosigner], "public_package", cosigner) != public.to_bytes() or \
                    replies[cosigner].get("identifier") != index + 1:
                raise ProtocolViolation("co-signer finished the DKG with another key", sender=cosigner)
        members = tuple(Member(index + 1, cosigner, hostpubkeys[index]) for index, cosigner in by_index.items())
        key = MpcKey(key_id, suite, 1, public, members, tuple(sorted(revoked)), "active")
        self._save(key, insert=True)
        log.info("mpc.dkg_done", key_id=key_id, suite=suite, threshold=threshold, cosigners=chosen)
        return key

    def _step2(self, chosen: Sequence[int], session: bytes, cmsg1: bytes, pmsgs1: Sequence[bytes],
               params: SessionParams, suite: str, by_index: Mapping[int, int]) -> dict[int, dict[str, Any]]:
        """DKG round two; if a co-signer got a bad share, run the investigation that names its sender."""
        try:
            return self._call_all(chosen, "/v1/dkg/step2", lambda c: {"dkg_session": session.hex(),
                                                                        "cmsg1": cmsg1.hex()})
        except CosignerRefused as refused:
            if refused.rule != "dkg.investigate" or refused.cosigner is None:
                raise
            victim = refused.cosigner
        cinvs = SUITES[suite].dkg.coordinator_investigate(pmsgs1, params)
        index = chosen.index(victim)
        reply = self._client(victim).call("/v1/dkg/investigate", {"dkg_session": session.hex(),
                                                                   "cinv": cinvs[index].hex()})
        culprit = reply.get("culprit")
        if isinstance(culprit, int) and (culprit - 1) in by_index:
            cosigner = by_index[culprit - 1]
            raise CosignerRefused(f"co-signer {victim} received an invalid share from co-signer {cosigner}",
                                  rule="dkg.faulty_participant", cosigner=cosigner, culprits=(cosigner,))
        raise CosignerRefused(f"co-signer {victim} blames the coordinator's relay", rule="dkg.faulty_coordinator")

    # -- signing --------------------------------------------------------------------------------
    def _signers(self, key: MpcKey, cosigners: Sequence[int] | None) -> list[int]:
        if cosigners is None:
            chosen = [m.cosigner for m in key.members][: key.threshold]
        else:
            chosen = list(cosigners)
        for cosigner in chosen:
            if cosigner in key.revoked:
                raise CosignerRevoked(cosigner)
        if len(set(chosen)) != len(chosen):
            raise InsufficientSigners("a co-signer is listed twice")
        if len(chosen) < key.threshold:
            raise InsufficientSigners(f"{len(chosen)} co-signers, the threshold is {key.threshold}")
        return chosen

    def sign_session(self, key: MpcKey, kind: str, payload: dict[str, Any], messages: Sequence[bytes],
                     tweaks: Sequence[frost.Tweak] = (), *, cosigners: Sequence[int] | None = None,
                     version: int | None = None, public: frost.PublicKeyPackage | None = None) -> list[bytes]:
        """One signature per message, each verified before it is returned. With no `cosigners` given,
        a co-signer that cannot be reached is left out and a fresh session runs with the next quorum
        of members (never the same nonces twice); given `cosigners`, exactly those sign."""
        if cosigners is not None:
            return self._sign_once(key, kind, payload, messages, tweaks, cosigners, version, public)
        unreachable: list[int] = []
        while True:  # bounded: each pass leaves out one more member, and _signers refuses fewer than t
            chosen = [m.cosigner for m in key.members if m.cosigner not in unreachable][: key.threshold]
            try:
                return self._sign_once(key, kind, payload, messages, tweaks, chosen, version, public)
            except CosignerUnavailable as error:
                unreachable.append(error.cosigner)
                if error.cosigner not in chosen or len(key.members) - len(unreachable) < key.threshold:
                    raise
                log.warning("mpc.quorum_changed", key_id=key.key_id, unreachable=list(unreachable))

    def _sign_once(self, key: MpcKey, kind: str, payload: dict[str, Any], messages: Sequence[bytes],
                   tweaks: Sequence[frost.Tweak], cosigners: Sequence[int], version: int | None,
                   public: frost.PublicKeyPackage | None) -> list[bytes]:
        """One two-round session with exactly `cosigners`."""
        chosen = self._signers(key, cosigners)
        public = public or key.public
        version = version or key.version
        suite = SUITES[key.suite].frost
        identifiers = {cosigner: key.member(cosigner).identifier for cosigner in chosen}
        nonce = self._rng(32)
        expected = msg.session_id(key.key_id, version, list(identifiers.values()),
                                  msg.messages_digest(kind, messages), nonce)
        commit_body = {"key_id": key.key_id, "version": version, "signers": sorted(identifiers.values()),
                       "coordinator_nonce": nonce.hex(), "kind": kind, "payload": payload}
        replies = self._call_all(chosen, "/v1/sign/commit", lambda c: commit_body)
        commitments = {c: self._parse_commitments(replies[c], c, identifiers[c], expected, len(messages), public)
                       for c in chosen}
        relay = {str(identifiers[c]): [x.to_bytes(public.group).hex() for x in commitments[c]] for c in chosen}
        replies = self._call_all(chosen, "/v1/sign/share", lambda c: {"session_id": expected.hex(),
                                                                        "commitments": relay})
        signatures = []
        for index, message in enumerate(messages):
            package = frost.SigningPackage.create([commitments[c][index] for c in chosen], message, tweaks)
            shares = {identifiers[c]: self._parse_share(replies[c], c, identifiers[c], index, len(messages), public)
                      for c in chosen}
            try:
                signature = frost.aggregate(suite, public, package, shares)
            except InvalidSignatureShare as error:
                culprits = tuple(key.cosigner_of(i) for i in error.culprits)
                log.warning("mpc.bad_signature_share", key_id=key.key_id, culprits=culprits)
                raise InvalidSignatureShare("bad signature share from co-signer(s)", culprits=culprits) from None
            signatures.append(signature)  # `aggregate` verified it under the (tweaked) group key
        return signatures

    @staticmethod
    def _parse_commitments(reply: dict[str, Any], cosigner: int, identifier: int, expected: bytes, count: int,
                           public: frost.PublicKeyPackage) -> list[frost.SigningCommitments]:
        if set(reply) != {"session_id", "commitments"} or reply["session_id"] != expected.hex():
            raise ProtocolViolation("round-one reply for another session", sender=cosigner)
        items = reply["commitments"]
        if not isinstance(items, list) or len(items) != count:
            raise ProtocolViolation("one commitment per message is needed", sender=cosigner)
        try:
            return [frost.SigningCommitments.from_bytes(public.group, identifier, bytes.fromhex(item))
                    for item in items]
        except (TypeError, ValueError):
            raise ProtocolViolation("commitment must be hex", sender=cosigner) from None
        except (MalformedInput, InvalidMessage) as error:
            raise ProtocolViolation(f"bad commitment: {error}", sender=cosigner) from None

    @staticmethod
    def _parse_share(reply: dict[str, Any], cosigner: int, identifier: int, index: int, count: int,
                     public: frost.PublicKeyPackage) -> frost.SignatureShare:
        items = reply.get("shares")
        if set(reply) != {"shares"} or not isinstance(items, list) or len(items) != count:
            raise ProtocolViolation("round-two reply must hold one share per message", sender=cosigner)
        try:
            data = bytes.fromhex(items[index])
        except (TypeError, ValueError):
            raise ProtocolViolation("share must be hex", sender=cosigner) from None
        try:
            return frost.SignatureShare.from_bytes(public.group, identifier, data)
        except InvalidSignatureShare:
            raise InvalidSignatureShare("malformed signature share", culprits=(cosigner,)) from None

    def sign_taproot_spend(self, key_id: str, raw_tx: bytes, prevouts: Sequence[msg.Prevout],
                           approvals: Sequence[tuple[WithdrawalRequest, SignedDecision]], *,
                           cosigners: Sequence[int] | None = None, network: str = "regtest") -> list[bytes]:
        """BIP-340 signatures (one per input) for a key-path spend of the key's P2TR output."""
        key = self.key(key_id)
        output_key, tweaks = msg.taproot_key(key.public)
        payments = [(msg.address_script(r.destination, network), r.amount_minor) for r, _ in approvals]
        check = msg.check_taproot_spend(raw_tx, prevouts, msg.p2tr_script(output_key), payments)
        payload = {"tx": raw_tx.hex(),
                   "prevouts": [{"amount_sats": p.amount_sats, "script_pubkey": p.script_pubkey.hex()}
                                for p in prevouts],
                   "approvals": [{"request": r.to_json(), "decision": d.to_json()} for r, d in approvals]}
        return self.sign_session(key, "taproot_spend", payload, check.messages, tweaks, cosigners=cosigners)

    def prove_reserves(self, key_id: str, message: bytes, *, cosigners: Sequence[int] | None = None) -> str:
        """A BIP-322 proof of control of the key's P2TR address over a proof-of-reserves challenge
        (full format), signed jointly; verified before it is returned."""
        key = self.key(key_id)
        output_key, tweaks = msg.taproot_key(key.public)
        digest = p2tr_sighash(output_key, message)  # what each co-signer derives for itself
        signature = self.sign_session(key, "reserves_proof", {"message": message.hex()}, [digest], tweaks,
                                      cosigners=cosigners)[0]
        return assemble_p2tr(output_key, message, signature, full=True)

    def sign_publication(self, key_id: str, document: bytes, attestation: bytes, *,
                         cosigners: Sequence[int] | None = None) -> bytes:
        """An Ed25519 signature on a publication document (PoR statement, halt/resume event)."""
        msg.check_publication(document)
        key = self.key(key_id)
        payload = {"document": document.hex(), "attestation": attestation.hex()}
        return self.sign_session(key, "publication", payload, [document], cosigners=cosigners)[0]

    # -- refresh, re-share ------------------------------------------------------------------------
    def refresh(self, key_id: str, *, action: SignedAction | None = None) -> MpcKey:
        """New shares of the same key for every member; old shares deleted after a test signature."""
        key = self.key(key_id)
        session = self._rng(32)
        holders = [{"identifier": m.identifier, "hostpubkey": m.hostpubkey.hex()} for m in key.members]
        cosigners = [m.cosigner for m in key.members]
        signed = self._action(ActionKind.REFRESH, key_id, cosigners,
                              refresh_content([(m.identifier, m.hostpubkey) for m in key.members]), action)
        replies = self._call_all(cosigners, "/v1/refresh/deal", lambda c: {
            "session": session.hex(), "key_id": key_id, "version": key.version, "holders": holders,
            **({} if signed is None else {"action": signed})})
        dealings = {key.member(c).identifier: _hex_field(replies[c], "dealing", c) for c in cosigners}
        dkg_suite = SUITES[key.suite].dkg.suite
        refresh_session = dkg_refresh.RefreshSession(
            session, key.threshold, key.group_public_key, tuple(Holder(m.identifier, m.hostpubkey) for m in key.members),
            {i: key.public.group.serialize_element(key.public.verifying_share(i)) for i in key.public.identifiers})
        try:
            observed = dkg_refresh.refresh_observe(dkg_suite, refresh_session, dealings)
        except DkgError as error:
            raise _blame_dkg(error, {m.identifier - 1: m.cosigner for m in key.members}) from None
        return self._finish_dealing(key, session, cosigners, dealings, observed.public_shares, key.threshold,
                                    key.members, revoked=())

    def reshare(self, key_id: str, *, revoke: Sequence[int] = (), new_threshold: int | None = None,
                action: SignedAction | None = None) -> MpcKey:
        """Move the key to the members minus `revoke` (co-signer ids); they are refused from then on."""
        key = self.key(key_id)
        for cosigner in revoke:
            key.member(cosigner)
        keep = tuple(m for m in key.members if m.cosigner not in revoke)
        threshold = new_threshold or min(key.threshold, len(keep))
        if len(keep) < key.threshold or not 1 <= threshold <= len(keep):
            raise InsufficientSigners(f"{len(keep)} remaining co-signers cannot re-share a {key.threshold}-of-n key "
                                      f"to threshold {threshold}")
        dealers = keep[: key.threshold]
        session = self._rng(32)

        def holders(members: Sequence[Member]) -> list[dict[str, Any]]:
            return [{"identifier": m.identifier, "hostpubkey": m.hostpubkey.hex()} for m in members]

        cosigners = [m.cosigner for m in keep]
        signed = self._action(ActionKind.RESHARE, key_id, cosigners, reshare_content(
            [(m.identifier, m.hostpubkey) for m in dealers], [(m.identifier, m.hostpubkey) for m in keep], threshold,
            [key.member(c).identifier for c in revoke], minority_threshold=2 * threshold <= len(keep)), action)
        replies = self._call_all(cosigners, "/v1/reshare/deal", lambda c: {
            "session": session.hex(), "key_id": key_id, "version": key.version, "dealers": holders(dealers),
            "new_threshold": threshold, "new_holders": holders(keep), "deal": any(d.cosigner == c for d in dealers),
            **({} if signed is None else {"action": signed})})
        dealings = {d.identifier: _hex_field(replies[d.cosigner], "dealing", d.cosigner) for d in dealers}
        reshare_session = dkg_reshare.ReshareSession(
            session, key.group_public_key, key.threshold,
            {i: key.public.group.serialize_element(key.public.verifying_share(i)) for i in key.public.identifiers},
            tuple(Holder(m.identifier, m.hostpubkey) for m in dealers), threshold,
            tuple(Holder(m.identifier, m.hostpubkey) for m in keep))
        try:
            observed = dkg_reshare.reshare_observe(SUITES[key.suite].dkg.suite, reshare_session, dealings)
        except DkgError as error:
            raise _blame_dkg(error, {m.identifier - 1: m.cosigner for m in key.members}) from None
        revoked_identifiers = tuple(key.member(c).identifier for c in revoke)
        result = self._finish_dealing(key, session, cosigners, dealings, observed.public_shares, threshold, keep,
                                      revoked=revoked_identifiers)
        updated = MpcKey(result.key_id, result.suite, result.version, result.public, keep,
                         tuple(sorted({*key.revoked, *revoke})), "active")
        self._save(updated, insert=False)
        log.info("mpc.reshared", key_id=key_id, revoked=list(revoke), threshold=threshold, version=updated.version)
        return updated

    def _finish_dealing(self, key: MpcKey, session: bytes, cosigners: Sequence[int], dealings: Mapping[int, bytes],
                        public_shares: Mapping[int, bytes], threshold: int, members: Sequence[Member], *,
                        revoked: Sequence[int]) -> MpcKey:
        relay = {str(identifier): dealing.hex() for identifier, dealing in dealings.items()}
        replies = self._call_all(cosigners, "/v1/dealing/receive", lambda c: {"session": session.hex(),
                                                                                "dealings": relay})
        public = frost.PublicKeyPackage.from_encoded(key.public.group, threshold, key.group_public_key,
                                                     dict(public_shares))
        for cosigner in cosigners:
            if _hex_field(replies[cosigner], "public_package", cosigner) != public.to_bytes():
                raise ProtocolViolation("co-signer derived other public shares", sender=cosigner)
        new_version = key.version + 1
        pending = MpcKey(key.key_id, key.suite, new_version, public, tuple(members), key.revoked, "active")
        message = msg.refresh_test_message(session, key.group_public_key)
        signatures = []
        for window in _covering_windows([m.cosigner for m in members], threshold):
            signatures += self.sign_session(pending, "refresh_test", {}, [message], cosigners=window,
                                            version=new_version, public=public)
        acks = {str(key.member(c).identifier): _hex_field(replies[c], "ack", c).hex() for c in cosigners}
        self._call_all(cosigners, "/v1/dealing/confirm", lambda c: {
            "session": session.hex(), "acks": acks, "test_signatures": [s.hex() for s in signatures],
            "revoked": list(revoked)})
        self._save(pending, insert=False)
        log.info("mpc.shares_renewed", key_id=key.key_id, version=new_version)
        return pending

    def resync(self, key_id: str) -> MpcKey:
        """After a crash between the co-signers' confirmation and this directory's update: adopt the
        newest version that every co-signer holding it reports with the same public package."""
        key = self._load(key_id)
        reports: dict[int, dict[str, Any]] = {}
        for member in key.members:
            reply = self._client(member.cosigner).call("/v1/status", {})
            for entry in reply.get("keys", []):
                if entry.get("key_id") == key_id and entry.get("status") == "active":
                    reports[member.cosigner] = entry
        versions = {int(entry["version"]) for entry in reports.values()}
        newest = max(versions, default=key.version)
        if newest <= key.version:
            return key
        holders = {c: e for c, e in reports.items() if int(e["version"]) == newest}
        packages = {str(e["public_package"]) for e in holders.values()}
        if len(packages) != 1:
            raise ProtocolViolation(f"co-signers disagree on version {newest} of {key_id!r}", sender=None)
        public = frost.PublicKeyPackage.from_bytes(bytes.fromhex(packages.pop()))
        if public.group.serialize_element(public.group_public_key) != key.group_public_key:
            raise ProtocolViolation("co-signers report another group key", sender=None)
        members = tuple(m for m in key.members if m.cosigner in holders
                        and int(holders[m.cosigner]["identifier"]) == m.identifier)
        # A participant that crashed before its confirmation keeps only its old share (the others
        # deleted theirs): it is left out, and revoked below, as long as t holders remain.
        if len(members) != len(holders) or not {m.identifier for m in members} <= set(public.identifiers) \
                or len(members) < public.min_signers:
            raise ProtocolViolation("the holders of the new version are not its participants", sender=None)
        revoked = tuple(sorted({*key.revoked, *(m.cosigner for m in key.members if m not in members)}))
        updated = MpcKey(key.key_id, key.suite, newest, public, members, revoked, key.status)
        self._save(updated, insert=False)
        log.warning("mpc.key_resynced", key_id=key_id, version=newest, revoked=list(revoked))
        return updated

    # -- status ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"keys": [], "cosigners": {}}
        for key in self.keys():
            out["keys"].append({"key_id": key.key_id, "suite": key.suite, "version": key.version,
                                "threshold": key.threshold, "n": len(key.members),
                                "group_public_key": key.group_public_key.hex(), "revoked": list(key.revoked),
                                "status": key.status})
        for cosigner, client in sorted(self._clients.items()):
            try:
                reply = client.call("/v1/status", {})
                out["cosigners"][cosigner] = {"up": True, "keys": len(reply.get("keys", []))}
            except MpcError as error:
                out["cosigners"][cosigner] = {"up": False, "error": type(error).__name__}
        return out


def _covering_windows(cosigners: Sequence[int], threshold: int) -> list[list[int]]:
    """Signer sets of size `threshold` that together include every co-signer."""
    ordered = list(cosigners)
    windows, start = [], 0
    while start < len(ordered):
        window = ordered[start: start + threshold]
        if len(window) < threshold:
            window = ordered[-threshold:]
        windows.append(window)
        start += threshold
    return windows


def _hex_field(reply: dict[str, Any], name: str, cosigner: int) -> bytes:
    value = reply.get(name)
    if not isinstance(value, str) or len(value) > 2 * 1024 * 1024:
        raise ProtocolViolation(f"reply field {name} missing or not hex", sender=cosigner)
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ProtocolViolation(f"reply field {name} is not hex", sender=cosigner) from None


def _blame_dkg(error: DkgError, by_index: Mapping[int, int]) -> Exception:
    """Translate a DKG blame (Shamir identifier = index + 1) into the co-signer it names."""
    culprit = getattr(error, "culprit", None)
    if isinstance(culprit, int) and (culprit - 1) in by_index:
        cosigner = by_index[culprit - 1]
        return CosignerRefused(f"DKG blames co-signer {cosigner}: {error}", rule="dkg.faulty_participant",
                               cosigner=cosigner, culprits=(cosigner,))
    return error
