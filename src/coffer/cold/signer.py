"""One cold signer: its own seed (sealed in its own token), its own registrations and history.

Before signing a batch it checks, itself: every input and change output is from a descriptor it
registered; the external outputs are exactly the approved requests; each request's approvals,
HSM attestation and its own policy evaluation pass (the `RequestGuard`); it was nominated by a
draw that recomputes for this very transaction; no halt is in force (the `HaltGuard`, which fails
closed); and no request in the batch was signed before. Otherwise it refuses, naming the rule.
The signer never signs an opaque digest.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import coincurve

from coffer.btc.bip322_sign import RESERVES_CHALLENGE, p2wsh_sighash
from coffer.canonical import canonical_json
from coffer.cold.bundle import ApprovedPayment, SigningBundle
from coffer.cold.descriptor import RECEIVE, ColdWallet
from coffer.cold.draw import verify_draw
from coffer.cold.errors import DrawMismatch, NotRegistered, SignerRefused
from coffer.cold.keystore import SeedVault
from coffer.cold.psbt import (
    FEE_RATE_SAT_VB_MAX,
    address_script,
    check_inputs,
    classify_outputs,
    estimate_vsize,
    parse_psbt,
    payments_match,
    serialize_psbt,
)
from coffer.log import get_logger

__all__ = ["RequestGuard", "HaltGuard", "ApprovedOutput", "ColdSigner", "SignerStore", "REGISTRATION_ADDRESSES"]

REGISTRATION_ADDRESSES = 5
log = get_logger("coffer.cold.signer")


@dataclass(frozen=True, slots=True)
class ApprovedOutput:
    request_id: str
    address: str
    amount_sats: int


class RequestGuard(Protocol):
    """The policy part's judgement of the payments in a batch.

    `describe` only parses a payment's request document (no side effect). `clear` verifies every
    payment (attestation, approvals, this signer's own policy evaluation and history) and records
    them as signed, all or nothing; it raises SignerRefused naming the rule.
    """

    def describe(self, payment: ApprovedPayment) -> ApprovedOutput: ...

    def clear(self, payments: tuple[ApprovedPayment, ...], now: dt.datetime) -> None: ...


class HaltGuard(Protocol):
    def ensure_not_halted(self, now: dt.datetime) -> None: ...


class SignerStore:
    """The signer's own small database: registrations, what it signed, what it refused."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS registrations (wallet_id TEXT PRIMARY KEY, descriptor TEXT NOT NULL,"
            " network TEXT NOT NULL, at TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS signed_requests (request_id TEXT PRIMARY KEY, batch_id TEXT NOT NULL,"
            " txid TEXT NOT NULL, at TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS signed_batches (batch_id TEXT NOT NULL, txid TEXT NOT NULL,"
            " psbt BLOB NOT NULL, at TEXT NOT NULL, PRIMARY KEY (batch_id, txid));"
            "CREATE TABLE IF NOT EXISTS refusals (id INTEGER PRIMARY KEY, batch_id TEXT, rule TEXT NOT NULL,"
            " detail TEXT NOT NULL, at TEXT NOT NULL);"
        )

    def register(self, wallet: ColdWallet, at: dt.datetime) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO registrations VALUES (?, ?, ?, ?)",
                             (wallet.wallet_id, wallet.descriptor(RECEIVE), wallet.network, at.isoformat()))

    def wallet(self, wallet_id: str) -> ColdWallet:
        row = self._db.execute("SELECT descriptor, network FROM registrations WHERE wallet_id = ?",
                               (wallet_id,)).fetchone()
        if row is None:
            raise NotRegistered(f"wallet {wallet_id[:16]}… is not registered with this signer")
        return ColdWallet.from_descriptor(row[0], row[1])

    def signed_before(self, request_ids: list[str]) -> list[tuple[str, str, str]]:
        marks = ",".join("?" * len(request_ids))
        return list(self._db.execute(
            f"SELECT request_id, batch_id, txid FROM signed_requests WHERE request_id IN ({marks})",  # noqa: S608
            request_ids))

    def previous_signature(self, batch_id: str, txid: str) -> bytes | None:
        row = self._db.execute("SELECT psbt FROM signed_batches WHERE batch_id = ? AND txid = ?",
                               (batch_id, txid)).fetchone()
        return None if row is None else bytes(row[0])

    def record_signed(self, batch_id: str, txid: str, request_ids: list[str], psbt: bytes, at: dt.datetime) -> None:
        """Durable before the signature leaves the signer."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for request_id in request_ids:
                    self._db.execute("INSERT INTO signed_requests VALUES (?, ?, ?, ?)",
                                     (request_id, batch_id, txid, at.isoformat()))
                self._db.execute("INSERT INTO signed_batches VALUES (?, ?, ?, ?)", (batch_id, txid, psbt, at.isoformat()))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def record_refusal(self, batch_id: str | None, rule: str, detail: str, at: dt.datetime) -> None:
        with self._lock:
            self._db.execute("INSERT INTO refusals (batch_id, rule, detail, at) VALUES (?, ?, ?, ?)",
                             (batch_id, rule, detail[:500], at.isoformat()))

    def refusals(self) -> list[tuple[str | None, str, str]]:
        return [(r[0], r[1], r[2]) for r in self._db.execute("SELECT batch_id, rule, detail FROM refusals ORDER BY id")]


class ColdSigner:
    """The signing logic of one signer process (used online over HTTP and offline on files)."""

    def __init__(self, signer_id: int, vault: SeedVault, store: SignerStore, *, network: str,
                 request_guard: RequestGuard, halt_guard: HaltGuard) -> None:
        self.signer_id = signer_id
        self._vault = vault
        self._store = store
        self._network = network
        self._request_guard = request_guard
        self._halt_guard = halt_guard
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ColdSigner(id={self.signer_id})"

    def export_key(self) -> dict[str, Any]:
        key = self._vault.account_key()
        return {"signer_id": self.signer_id, "fingerprint": key.fingerprint, "path": key.path, "xpub": key.xpub,
                "identity_pubkey": self._vault.identity_public_key().hex()}

    def register(self, descriptor: str, first_addresses: list[str], now: dt.datetime) -> dict[str, Any]:
        """Check the descriptor holds our key and yields the shown addresses; sign the registration."""
        wallet = ColdWallet.from_descriptor(descriptor, self._network)
        mine = self._vault.account_key()
        if mine not in wallet.keys:
            raise SignerRefused("descriptor does not hold this signer's key", rule="register.key_missing",
                                signer_id=self.signer_id)
        ours = [wallet.address(RECEIVE, i) for i in range(REGISTRATION_ADDRESSES)]
        if list(first_addresses) != ours:
            raise SignerRefused("first addresses do not match the descriptor", rule="register.addresses",
                                signer_id=self.signer_id)
        self._store.register(wallet, now)
        statement = canonical_json({"wallet_id": wallet.wallet_id, "descriptor": descriptor,
                                    "first_addresses": ours, "signer_id": self.signer_id})
        signature = self._vault.sign_identity(b"coffer/cold/registration/v1\x00" + statement)
        log.info("cold.registered", signer=self.signer_id, wallet_id=wallet.wallet_id)
        return {"wallet_id": wallet.wallet_id, "signer_id": self.signer_id, "signature": signature.hex(),
                "identity_pubkey": self._vault.identity_public_key().hex()}

    def sign(self, bundle: SigningBundle, now: dt.datetime) -> bytes:
        """Judge the bundle and return the PSBT with this signer's partial signatures."""
        try:
            with self._lock:
                return self._sign(bundle, now)
        except SignerRefused as refused:
            self._store.record_refusal(bundle.batch_id, refused.rule, str(refused), now)
            log.warning("cold.sign_refused", signer=self.signer_id, batch=bundle.batch_id, rule=refused.rule)
            raise

    def _refuse(self, message: str, rule: str) -> SignerRefused:
        return SignerRefused(message, rule=rule, signer_id=self.signer_id)

    def _sign(self, bundle: SigningBundle, now: dt.datetime) -> bytes:
        self._halt_guard.ensure_not_halted(now)
        wallet = self._store.wallet(bundle.wallet_id)
        psbt = parse_psbt(bundle.psbt)
        txid = psbt.tx.txid().hex()
        self._check_draw(bundle, txid)
        previous = self._store.previous_signature(bundle.batch_id, txid)
        if previous is not None:
            return previous  # the same batch again (a coordinator retry): same signatures, nothing new
        key = self._vault.account_key()
        total_in = check_inputs(psbt, wallet, key.fingerprint, key.path, signer_id=self.signer_id)
        external, change_total = classify_outputs(psbt, wallet, key.fingerprint, key.path, signer_id=self.signer_id)
        approved = [self._request_guard.describe(payment) for payment in bundle.payments]
        request_ids = [a.request_id for a in approved]
        if len(set(request_ids)) != len(request_ids):
            raise self._refuse("a request appears twice in the batch", "bundle.duplicate_request")
        wanted = [(address_script(a.address, self._network), a.amount_sats) for a in approved]
        if not payments_match(external, wanted):
            raise self._refuse("external outputs are not exactly the approved requests", "outputs.not_approved")
        fee = total_in - sum(amount for _, amount in external) - change_total
        vsize = estimate_vsize(len(psbt.inputs), [len(s) for s, _ in external] + [34], wallet.threshold,
                               len(wallet.keys))
        if fee < 0 or fee > FEE_RATE_SAT_VB_MAX * vsize:
            raise self._refuse(f"fee {fee} sats is outside 0..{FEE_RATE_SAT_VB_MAX * vsize}", "fee.excessive")
        again = self._store.signed_before(request_ids)
        if again:
            raise self._refuse(f"request {again[0][0]} was already signed in batch {again[0][1]}",
                               "request.already_signed")
        self._request_guard.clear(bundle.payments, now)  # last check: it records the requests as signed
        with self._vault.root() as root:
            signatures = psbt.sign_with(root)
        if signatures != len(psbt.inputs):
            raise self._refuse("could not sign every input", "input.not_ours")
        for inp in psbt.inputs:  # hand back only what the coordinator needs
            inp.bip32_derivations = {k: v for k, v in inp.bip32_derivations.items() if k in inp.partial_sigs}
        signed = serialize_psbt(psbt)
        self._store.record_signed(bundle.batch_id, txid, request_ids, signed, now)
        log.info("cold.signed", signer=self.signer_id, batch=bundle.batch_id, txid=txid, requests=len(request_ids))
        return signed

    def prove_control(self, wallet_id: str, branch: int, index: int, message: bytes) -> dict[str, str]:
        """A BIP-322 signature share for one cold address over a proof-of-reserves challenge.

        Only the challenge format is signed (never an arbitrary message), for an address re-derived
        here from a registered descriptor. A BIP-322 signature spends a virtual output: no coin moves.
        """
        if not RESERVES_CHALLENGE.fullmatch(message):
            raise self._refuse("not a proof-of-reserves challenge", "prove.message")
        wallet = self._store.wallet(wallet_id)
        if branch not in (0, 1) or not 0 <= index < 2**31:
            raise self._refuse("no such address", "prove.path")
        witness_script = wallet.witness_script(branch, index)
        digest = p2wsh_sighash(witness_script, message)
        key = self._vault.account_key()
        with self._vault.root() as root:
            child = root.derive(f"m/{key.path}/{branch}/{index}")
            private = coincurve.PrivateKey(bytes(child.key.secret))
            public = private.public_key.format(compressed=True)
            signature = private.sign(digest, hasher=None)
        log.info("cold.proved_control", signer=self.signer_id, branch=branch, index=index)
        return {"pubkey": public.hex(), "signature": signature.hex(), "address": wallet.address(branch, index)}

    def _check_draw(self, bundle: SigningBundle, txid: str) -> None:
        draw = bundle.draw
        if draw.batch_id != bundle.batch_id or draw.unsigned_txid != txid:
            raise self._refuse("draw is for another batch or transaction", "draw.mismatch")
        try:
            verify_draw(draw)
        except DrawMismatch as exc:
            raise self._refuse(str(exc), "draw.mismatch") from None
        if self.signer_id not in draw.nominated:
            raise self._refuse(f"not nominated (nominees {list(draw.nominated)})", "draw.not_nominated")
