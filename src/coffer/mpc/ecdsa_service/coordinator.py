"""The coordinator's side of threshold ECDSA: DKG, pairing, 2-of-3 signing, re-share; no share, ever.

`EcdsaCoordinator` drives the co-signer processes over mutual TLS (`CosignerClient`). It relays
their sealed messages (it can read none of them), combines the round-three broadcasts into the
signature and verifies it before releasing it: ECDSA verification by libsecp256k1 (coincurve)
against the (tweaked) key, low S, the recovery id, and `eth_account` recovering the paying address
from the signed raw transaction. Any failure aborts the session on every co-signer (which discard
their OT setups with the peers of the session), names the suspect and forgets the pairs involved;
the next session pairs afresh. Co-signer ids are the Shamir identifiers (the DKG runs over 1..n).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import coincurve
from eth_account import Account

from coffer.eth.spend import EthSpend
from coffer.keyholder.governance import ActionKind, SignedAction
from coffer.keyholder.lifecycle import Approver, dkg_content, keyholder_name, reshare_content
from coffer.keyholder.limits import restore_recursion_limit
from coffer.layout import KeyholderKind, coordinator_tls, keyholder_directories
from coffer.log import get_logger
from coffer.mpc.dkg.errors import DkgError
from coffer.mpc.dkg.protocol import SessionParams
from coffer.mpc.ecdsa import (
    Derivation,
    EcdsaError,
    Signature,
    SignRound3,
    default_chain_code,
    derive,
    ethereum_address,
)
from coffer.mpc.ecdsa.curve import Q, point_bytes
from coffer.mpc.ecdsa.sign import finish_signature, tweaked_key
from coffer.mpc.ecdsa_service.cosigner import DKG_PROTOCOL, DKG_SUITE_NAME, reshare_test_digest
from coffer.mpc.ecdsa_service.errors import KeyDisagreement, PairingFailed, SignatureRejected, SigningAborted
from coffer.mpc.errors import InsufficientSigners, InvalidMessage
from coffer.mpc.service.client import CosignerClient
from coffer.mpc.service.errors import (
    CosignerRefused,
    CosignerRevoked,
    CosignerUnavailable,
    ProtocolViolation,
    QuorumUnavailable,
    ServiceError,
    UnknownKey,
)
from coffer.policy import SignedDecision, WithdrawalRequest

restore_recursion_limit()  # importing eth_account (py_ecc) raised it to 100,000

__all__ = ["EcdsaCoordinator", "EcdsaKey", "SignedTransaction", "PAIR_ROUNDS"]

PAIR_ROUNDS: Final = 5
FANOUT_WORKERS: Final = 16
log = get_logger("coffer.mpc.ecdsa_service.coordinator")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EcdsaKey:
    """Public facts of one threshold ECDSA key, as every active co-signer reports them."""

    key_id: str
    version: int
    threshold: int
    group_public_key: bytes
    cosigners: tuple[int, ...]  # active holders (co-signer id = Shamir identifier)
    revoked: tuple[int, ...]

    @property
    def address(self) -> str:
        return ethereum_address(self.group_public_key)

    @property
    def chain_code(self) -> bytes:
        return default_chain_code(self.group_public_key, self.key_id.encode())

    def derive(self, index: int) -> Derivation:
        """The deposit key at non-hardened `index` (public derivation; no co-signer involved)."""
        return derive(self.group_public_key, self.chain_code, (index,))

    def deposit_address(self, index: int) -> str:
        return ethereum_address(self.derive(index).public_key)


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """A verified, signed EIP-1559 transaction ready to broadcast."""

    raw: bytes
    tx_hash: str
    sender: str
    signature: Signature
    signers: tuple[int, ...]


class EcdsaCoordinator:
    """Talks to the ECDSA co-signers (`clients`: co-signer id -> client). Thread-safe for reads."""

    def __init__(self, clients: Mapping[int, CosignerClient], *,
                 rng: Callable[[int], bytes] = secrets.token_bytes, approve: Approver | None = None) -> None:
        """`approve` obtains the administrators' signed action for a DKG or re-share (see MpcCoordinator)."""
        self._approve = approve
        self._clients = dict(clients)
        self._rng = rng
        self._keys: dict[str, EcdsaKey] = {}
        self._paired: set[tuple[str, int, int]] = set()
        self._pairing_lock = threading.RLock()  # one pairing at a time: a second would replace the first
        self._pool = ThreadPoolExecutor(max_workers=FANOUT_WORKERS, thread_name_prefix="ecdsa-fanout")

    def __repr__(self) -> str:
        return f"EcdsaCoordinator(cosigners={sorted(self._clients)})"

    @classmethod
    def from_home(cls, home: Path) -> EcdsaCoordinator:
        """The coordinator for the co-signers of HOME (the port files of the co-signer directories
        it can read) with the coordinator's TLS certificate from HOME/tls/coordinator."""
        tls = coordinator_tls(home)
        clients = {}
        for cosigner, directory in keyholder_directories(home, KeyholderKind.COSIGNER):
            port_file = directory / "port"
            if port_file.exists():
                clients[cosigner] = CosignerClient(cosigner, int(port_file.read_text()), tls, batching=False)
        return cls(clients)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        for client in self._clients.values():
            client.close()

    # -- plumbing -----------------------------------------------------------------------------------
    def _call(self, cosigner: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
        client = self._clients.get(cosigner)
        if client is None:
            raise QuorumUnavailable(f"no connection to co-signer {cosigner}")
        return client.call(path, body)

    def _call_all(self, cosigners: Sequence[int], path: str, body: Callable[[int], dict[str, Any]],
                  partial: dict[int, dict[str, Any]] | None = None) -> dict[int, dict[str, Any]]:
        """Calls every co-signer in parallel; raises the first failure (by co-signer id), after
        copying the replies that did succeed into `partial`."""
        futures = {c: self._pool.submit(self._call, c, path, body(c)) for c in cosigners}
        results: dict[int, dict[str, Any]] = {}
        failures: dict[int, Exception] = {}
        for cosigner, future in futures.items():
            try:
                results[cosigner] = future.result()
            except Exception as error:  # collected, re-raised below in a fixed order
                failures[cosigner] = error
        if failures:
            if partial is not None:
                partial.update(results)
            raise failures[min(failures)]
        return results

    # -- keys ----------------------------------------------------------------------------------------
    def _action(self, kind: ActionKind, key_id: str, cosigners: Sequence[int], content: dict[str, Any],
                given: SignedAction | None) -> dict[str, Any]:
        if given is not None:
            return {"action": given.to_json()}
        if self._approve is None:
            return {}  # the co-signers refuse with governance.missing
        return {"action": self._approve(kind, key_id, [keyholder_name(c) for c in cosigners], content).to_json()}

    def create_key(self, key_id: str, threshold: int = 2, cosigners: Sequence[int] | None = None, *,
                   action: SignedAction | None = None) -> EcdsaKey:
        """A fresh t-of-n ECDSA key by DKG among the co-signers (ChillDKG design, untweaked secp256k1).

        `cosigners` must be 1..n (the co-signer ids become the Shamir identifiers).
        """
        chosen = sorted(cosigners if cosigners is not None else self._clients)
        if chosen != list(range(1, len(chosen) + 1)) or not 2 <= threshold <= len(chosen):
            raise InsufficientSigners(f"a key needs co-signers 1..n and 2 <= t <= n (got {chosen}, t={threshold})")
        hostkeys = self._call_all(chosen, "/v1/ecdsa/hostkey", lambda c: {})
        hostpubkeys = tuple(_hex(hostkeys[c], "hostpubkey", c) for c in chosen)
        params = SessionParams(hostpubkeys, threshold)
        session = self._rng(32)
        signed = self._action(ActionKind.DKG, key_id, chosen, dkg_content(
            DKG_SUITE_NAME, threshold, list(zip(chosen, hostpubkeys, strict=True))), action)
        replies = self._call_all(chosen, "/v1/ecdsa/dkg/step1", lambda c: {
            "dkg_session": session.hex(), "key_id": key_id, "threshold": threshold,
            "hostpubkeys": [h.hex() for h in hostpubkeys], **signed})
        try:
            state, cmsg1 = DKG_PROTOCOL.coordinator_step1([_hex(replies[c], "pmsg1", c) for c in chosen], params)
            replies = self._call_all(chosen, "/v1/ecdsa/dkg/step2", lambda c: {"dkg_session": session.hex(),
                                                                               "cmsg1": cmsg1.hex()})
            cmsg2, output, _recovery = DKG_PROTOCOL.coordinator_finalize(
                state, [_hex(replies[c], "pmsg2", c) for c in chosen])
        except DkgError as error:
            raise SigningAborted(str(error), rule="dkg.failed",
                                 culprits=[p + 1 for p in getattr(error, "participants", ()) or ()]) from None
        replies = self._call_all(chosen, "/v1/ecdsa/dkg/finalize", lambda c: {"dkg_session": session.hex(),
                                                                              "cmsg2": cmsg2.hex()})
        for cosigner in chosen:
            if _hex(replies[cosigner], "group_public_key", cosigner) != output.group_public_key or \
                    replies[cosigner].get("identifier") != cosigner:
                raise ProtocolViolation("co-signer finished the DKG with another key", sender=cosigner)
        key = EcdsaKey(key_id, 1, threshold, output.group_public_key, tuple(chosen), ())
        self._keys[key_id] = key
        log.info("ecdsa.key_created", key_id=key_id, threshold=threshold, cosigners=chosen, address=key.address)
        return key

    def key(self, key_id: str, *, refresh: bool = False) -> EcdsaKey:
        """The key's public facts: cached, else from the reachable co-signers' status (must agree)."""
        if key_id in self._keys and not refresh:
            return self._keys[key_id]
        facts: dict[tuple[int, int, bytes], list[int]] = {}
        revoked: set[int] = set()
        for cosigner in sorted(self._clients):
            try:
                status = self._call(cosigner, "/v1/ecdsa/status", {})
            except ServiceError:
                continue
            for entry in status.get("keys", []):
                if entry.get("key_id") == key_id and entry.get("status") == "active":
                    fact = (int(entry["version"]), int(entry["threshold"]), bytes.fromhex(entry["group_public_key"]))
                    facts.setdefault(fact, []).append(cosigner)
                    revoked |= set(entry.get("revoked", []))
        if not facts:
            raise UnknownKey(f"no co-signer holds ECDSA key {key_id!r}")
        newest = max(facts, key=lambda f: f[0])
        if len({f[2] for f in facts}) != 1:
            raise KeyDisagreement(f"co-signers disagree on the group key of {key_id!r}")
        holders = tuple(c for c in sorted(facts[newest]) if c not in revoked)
        key = EcdsaKey(key_id, newest[0], newest[1], newest[2], holders, tuple(sorted(revoked)))
        self._keys[key_id] = key
        return key

    # -- pairing -------------------------------------------------------------------------------------
    def pair(self, key_id: str, first: int, second: int) -> None:
        """A fresh pairing (base OT both ways + zero-sharing seed) between two co-signers."""
        low, high = sorted((first, second))
        self._paired.discard((key_id, low, high))
        nonce = self._rng(32).hex()
        try:
            started = self._call_all([low, high], "/v1/ecdsa/pair/start",
                                     lambda c: {"key_id": key_id, "peer": high if c == low else low, "nonce": nonce})
            messages = {c: started[c]["message"] for c in (low, high)}
            for round_number in range(1, PAIR_ROUNDS + 1):
                bodies = {c: {"key_id": key_id, "peer": high if c == low else low, "round": round_number,
                              "message": messages[high if c == low else low]} for c in (low, high)}
                replies = self._call_all([low, high], "/v1/ecdsa/pair/step", bodies.__getitem__)
                messages = {c: replies[c]["message"] for c in (low, high)}
                if all(replies[c]["done"] for c in (low, high)):
                    break
            else:
                raise ProtocolViolation("pairing did not finish", sender=None)
        except (ServiceError, InvalidMessage) as error:
            raise _aborted(error, PairingFailed) from None
        self._paired.add((key_id, low, high))
        log.info("ecdsa.paired", key_id=key_id, pair=[low, high])

    def _ensure_paired(self, key_id: str, signers: Sequence[int]) -> None:
        with self._pairing_lock:
            for index, first in enumerate(signers):
                for second in signers[index + 1:]:
                    if (key_id, first, second) not in self._paired:
                        self.pair(key_id, first, second)

    def _forget_pairs(self, key_id: str, cosigners: Sequence[int]) -> None:
        for entry in [p for p in self._paired if p[0] == key_id and (p[1] in cosigners or p[2] in cosigners)]:
            self._paired.discard(entry)

    # -- signing -------------------------------------------------------------------------------------
    def sign_spend(self, key_id: str, spend: EthSpend,
                   approvals: Sequence[tuple[WithdrawalRequest, SignedDecision]] = (), *,
                   signers: Sequence[int] | None = None) -> SignedTransaction:
        """Have `signers` (default: the first t holders) sign `spend`; verify; return the raw tx.

        Each co-signer derives the digest from `spend` and checks it against `approvals` (a
        withdrawal) or its own hot address (a deposit sweep) before it produces anything.
        """
        key = self.key(key_id)
        chosen = self._signers(key, signers)
        self._ensure_paired(key_id, chosen)
        try:
            return self._sign_once(key, spend, approvals, chosen)
        except SigningAborted as error:
            if error.rule not in ("ot.setup_missing", "ot.setup_discarded"):
                raise
            # A co-signer restarted (its setups are in memory only) or discarded one: pair afresh, once.
            self._forget_pairs(key_id, error.culprits or chosen)
            self._ensure_paired(key_id, chosen)
            return self._sign_once(key, spend, approvals, chosen)

    def _signers(self, key: EcdsaKey, signers: Sequence[int] | None) -> list[int]:
        chosen = sorted(signers) if signers is not None else list(key.cosigners[:key.threshold])
        for cosigner in chosen:
            if cosigner in key.revoked:
                raise CosignerRevoked(cosigner)
        if len(set(chosen)) != len(chosen) or len(chosen) < key.threshold:
            raise InsufficientSigners(f"{len(chosen)} signers, threshold {key.threshold}")
        return chosen

    def _sign_once(self, key: EcdsaKey, spend: EthSpend, approvals: Sequence[tuple[WithdrawalRequest,
                   SignedDecision]], signers: list[int]) -> SignedTransaction:
        tweak = derive(key.group_public_key, key.chain_code, spend.path).tweak if spend.path else 0
        public_key = tweaked_key(key.group_public_key, tweak)
        expected_sender = ethereum_address(point_bytes(public_key))
        digest = spend.digest()
        signature = self._session(key.key_id, signers, {
            "key_id": key.key_id, "version": key.version, "signers": signers, "nonce": self._rng(32).hex(),
            "spend": spend.to_json(),
            "approvals": [{"request": r.to_json(), "decision": d.to_json()} for r, d in approvals]},
            digest, public_key)
        raw = spend.tx().raw(signature.recovery_id & 1, signature.r, signature.s)
        _verify(signature, digest, public_key, raw, expected_sender)
        from eth_utils.crypto import keccak

        log.info("ecdsa.signed", key_id=key.key_id, signers=signers, sender=expected_sender, kind=spend.kind)
        return SignedTransaction(raw, "0x" + bytes(keccak(raw)).hex(), expected_sender, signature, tuple(signers))

    def _session(self, key_id: str, signers: list[int], body: dict[str, Any], digest: bytes,
                 public_key: coincurve.PublicKey) -> Signature:
        """Three rounds with `signers`; the combined signature, verified. Any failure aborts everywhere."""
        session_id: str | None = None
        opened: set[str] = set()
        try:
            first = self._fanout(signers, "/v1/ecdsa/sign/round1", lambda c: body, opened)
            session_ids = {reply.get("session_id") for reply in first.values()}
            if len(session_ids) != 1 or any(bytes.fromhex(r["digest"]) != digest for r in first.values()):
                raise SigningAborted("co-signers derived different sessions or digests", rule="session.mismatch",
                                     culprits=signers)
            session_id = str(first[signers[0]]["session_id"])
            second = self._fanout(signers, "/v1/ecdsa/sign/round2", lambda c: {
                "session_id": session_id, "messages": _relay(first, c)}, opened)
            third = self._fanout(signers, "/v1/ecdsa/sign/round3", lambda c: {
                "session_id": session_id, "messages": _relay(second, c)}, opened)
            return self._combine(bytes.fromhex(session_id), third, signers, digest, public_key)
        except Exception:
            self._abort(key_id, signers, opened)
            raise

    def _fanout(self, signers: list[int], path: str, body: Callable[[int], dict[str, Any]],
                opened: set[str]) -> dict[int, dict[str, Any]]:
        """One round to every signer; `opened` collects the session ids any co-signer reported."""
        partial: dict[int, dict[str, Any]] = {}
        try:
            replies = self._call_all(signers, path, body, partial)
        except (ServiceError, InvalidMessage) as error:
            opened.update(str(r["session_id"]) for r in partial.values() if isinstance(r.get("session_id"), str))
            raise _aborted(error, SigningAborted) from None
        opened.update(str(r["session_id"]) for r in replies.values() if isinstance(r.get("session_id"), str))
        return replies

    def _abort(self, key_id: str, signers: list[int], session_ids: set[str]) -> None:
        """Tell every co-signer the session is over (they discard its OT setups); forget the pairs."""
        self._forget_pairs(key_id, signers)
        for sid in sorted(session_ids):
            for cosigner in signers:
                try:
                    self._call(cosigner, "/v1/ecdsa/sign/abort", {"session_id": sid, "reason": "aborted"})
                except Exception:  # a dead co-signer has nothing left to abort
                    log.info("ecdsa.abort_not_delivered", cosigner=cosigner)
        log.warning("ecdsa.session_aborted", key_id=key_id, signers=signers)

    def _combine(self, session_id: bytes, third: dict[int, dict[str, Any]], signers: list[int], digest: bytes,
                 public_key: coincurve.PublicKey) -> Signature:
        parsed = {}
        for cosigner in signers:
            try:
                parsed[cosigner] = SignRound3.parse(_hex(third[cosigner], "broadcast", cosigner), sender=cosigner,
                                                    session_id=session_id)
            except EcdsaError as error:
                raise SigningAborted(str(error), rule="ecdsa.malformed", culprits=[cosigner]) from None
        nonce_points = {point_bytes(m.nonce_point) for m in parsed.values()}
        if len(nonce_points) != 1:
            raise SigningAborted("co-signers disagree on R", rule="ecdsa.abort.TranscriptMismatch", culprits=signers)
        u = sum(m.u for m in parsed.values()) % Q
        w = sum(m.w for m in parsed.values()) % Q
        if w == 0:
            raise SigningAborted("w sums to zero", rule="ecdsa.abort.SignatureInvalid", culprits=signers)
        try:
            return finish_signature(parsed[signers[0]].nonce_point, u * pow(w, -1, Q) % Q, digest, public_key,
                                    signers)
        except EcdsaError as error:
            raise SignatureRejected(str(error)) from None

    # -- re-share: revoke co-signers ---------------------------------------------------------------------
    def reshare(self, key_id: str, *, revoke: Sequence[int], new_threshold: int | None = None,
                action: SignedAction | None = None) -> EcdsaKey:
        """Same key, new shares for the holders minus `revoke`; those co-signers are refused from now on."""
        key = self.key(key_id, refresh=True)
        kept = [c for c in key.cosigners if c not in revoke]
        threshold = new_threshold or key.threshold
        if len(kept) < threshold:
            raise InsufficientSigners(f"{len(kept)} co-signers left, threshold {threshold}")
        hostkeys = self._call_all(kept, "/v1/ecdsa/hostkey", lambda c: {})
        holders = [{"identifier": c, "hostpubkey": hostkeys[c]["hostpubkey"]} for c in kept]
        dealers = holders[:key.threshold]
        session = self._rng(32).hex()
        revoked = sorted(set(key.revoked) | set(revoke))

        def pairs(items: list[dict[str, Any]]) -> list[tuple[int, bytes]]:
            return [(int(h["identifier"]), bytes.fromhex(str(h["hostpubkey"]))) for h in items]

        signed = self._action(ActionKind.RESHARE, key_id, kept, reshare_content(
            pairs(dealers), pairs(holders), threshold, revoked, minority_threshold=2 * threshold <= len(kept)), action)
        dealt = self._call_all(kept, "/v1/ecdsa/reshare/deal", lambda c: {
            "session": session, "key_id": key_id, "version": key.version, "dealers": dealers,
            "new_threshold": threshold, "new_holders": holders, "deal": any(d["identifier"] == c for d in dealers),
            **signed})
        dealings = {str(d["identifier"]): dealt[d["identifier"]]["dealing"] for d in dealers}
        received = self._call_all(kept, "/v1/ecdsa/reshare/receive", lambda c: {"session": session,
                                                                                "dealings": dealings})
        acks = {str(c): received[c]["ack"] for c in kept}
        testers = kept[:threshold]  # the new shares sign a test message before the old ones go
        self._ensure_paired(key_id, testers)
        group_key = tweaked_key(key.group_public_key, 0)
        test = self._session(key_id, testers, {
            "key_id": key_id, "version": key.version + 1, "signers": testers, "nonce": self._rng(32).hex(),
            "spend": None, "approvals": [], "reshare_test": session},
            reshare_test_digest(bytes.fromhex(session), key.group_public_key, key.version + 1), group_key)
        self._call_all(kept, "/v1/ecdsa/reshare/confirm", lambda c: {
            "session": session, "acks": acks, "revoked": revoked, "test_signature": test.to_compact().hex()})
        self._forget_pairs(key_id, list(revoke))
        self._keys.pop(key_id, None)
        new = EcdsaKey(key_id, key.version + 1, threshold, key.group_public_key, tuple(kept), tuple(revoked))
        self._keys[key_id] = new
        log.info("ecdsa.reshared", key_id=key_id, version=new.version, revoked=revoked)
        return new


def _relay(replies: Mapping[int, Mapping[str, Any]], receiver: int) -> dict[str, Any]:
    """The sealed messages addressed to `receiver`, keyed by sender."""
    out = {}
    for sender, reply in replies.items():
        if sender == receiver:
            continue
        messages = reply.get("messages")
        if not isinstance(messages, dict) or str(receiver) not in messages:
            raise SigningAborted("a co-signer's reply lacks a message for a peer", rule="ecdsa.malformed",
                                 culprits=[sender])
        out[str(sender)] = messages[str(receiver)]
    return out


def _hex(reply: Mapping[str, Any], name: str, cosigner: int) -> bytes:
    value = reply.get(name)
    try:
        if not isinstance(value, str):
            raise ValueError
        return bytes.fromhex(value)
    except ValueError:
        raise ProtocolViolation(f"reply field {name} must be hex", sender=cosigner) from None


def _aborted(error: Exception, kind: type[SigningAborted]) -> SigningAborted:
    """The co-signer's refusal as an abort naming the suspects."""
    if isinstance(error, CosignerRefused):
        culprits = error.culprits or (() if error.cosigner is None else ())
        return kind(str(error), rule=error.rule, culprits=culprits, reporter=error.cosigner)
    if isinstance(error, CosignerUnavailable):
        return kind(str(error), rule="cosigner.unavailable", culprits=[error.cosigner], reporter=None)
    if isinstance(error, InvalidMessage):
        sender = error.sender
        return kind(str(error), rule="message.invalid", culprits=[] if sender is None else [sender])
    return kind(str(error), rule=getattr(error, "rule", type(error).__name__))


def _verify(signature: Signature, digest: bytes, public_key: coincurve.PublicKey, raw: bytes, sender: str) -> None:
    """libsecp256k1 verification, low S, and eth-account recovering the sender from the raw tx."""
    if signature.s > Q // 2:
        raise SignatureRejected("high S")
    if not coincurve.PublicKey(point_bytes(public_key)).verify(signature.to_der(), digest, hasher=None):
        raise SignatureRejected("signature does not verify")
    if Account.recover_transaction(raw) != sender:
        raise SignatureRejected("ecrecover does not give the paying address")
