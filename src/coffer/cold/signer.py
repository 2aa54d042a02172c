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
from coffer.cold.draw import REDRAWS_MAX, verify_draw
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
SECOND_WALLET_MESSAGE = ("a wallet is already registered; a second registration needs a governance action,"
                         " which this signer cannot verify yet, so it is refused")
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
            "CREATE TABLE IF NOT EXISTS headers (block_hash TEXT PRIMARY KEY, prev_hash TEXT NOT NULL,"
            " height INTEGER NOT NULL, chainwork TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS draw_answers (txid TEXT NOT NULL, attempt INTEGER NOT NULL,"
            " batch_id TEXT NOT NULL, tip_hash TEXT NOT NULL, PRIMARY KEY (txid, attempt));"
        )

    # -- the signer's own header chain and the draws it answered ---------------------------------------
    def known_header(self, block_hash: str, network: str) -> tuple[int, int] | None:
        """(height, chain work) of a header this signer accepted, or of its network's genesis."""
        from coffer.cold.tip import GENESIS, header_work

        genesis, bits, _ = GENESIS[network]
        if block_hash == genesis:
            return 0, header_work(bits)
        row = self._db.execute("SELECT height, chainwork FROM headers WHERE block_hash = ?", (block_hash,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1], 16))

    def best_work(self, network: str) -> int:
        from coffer.cold.tip import GENESIS, header_work

        row = self._db.execute("SELECT MAX(chainwork) FROM headers").fetchone()  # fixed-width hex sorts as numbers
        genesis_work = header_work(GENESIS[network][1])
        return genesis_work if row is None or row[0] is None else max(genesis_work, int(row[0], 16))

    def add_headers(self, rows: list[tuple[str, str, int, int]]) -> None:
        with self._lock:
            self._db.executemany("INSERT OR IGNORE INTO headers VALUES (?, ?, ?, ?)",
                                 [(h, p, height, f"{work:064x}") for h, p, height, work in rows])

    def answered(self, txid: str) -> dict[int, tuple[str, str]]:
        """attempt -> (batch id, tip) of every draw for `txid` this signer judged."""
        return {int(r[0]): (str(r[1]), str(r[2])) for r in self._db.execute(
            "SELECT attempt, batch_id, tip_hash FROM draw_answers WHERE txid = ?", (txid,))}

    def record_answer(self, txid: str, attempt: int, batch_id: str, tip_hash: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO draw_answers VALUES (?, ?, ?, ?)",
                             (txid, attempt, batch_id, tip_hash))

    def register(self, wallet: ColdWallet, at: dt.datetime) -> None:
        """Record the one wallet this signer serves; any other wallet is refused (a repeat is a no-op)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                others = self._db.execute("SELECT wallet_id FROM registrations WHERE wallet_id != ?",
                                          (wallet.wallet_id,)).fetchall()
                if others:
                    raise SignerRefused(SECOND_WALLET_MESSAGE, rule="register.second_wallet")
                self._db.execute("INSERT OR IGNORE INTO registrations VALUES (?, ?, ?, ?)",
                                 (wallet.wallet_id, wallet.descriptor(RECEIVE), wallet.network, at.isoformat()))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

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
        try:
            self._store.register(wallet, now)
        except SignerRefused as refused:
            self._store.record_refusal(None, refused.rule, str(refused), now)
            log.warning("cold.register_refused", signer=self.signer_id, rule=refused.rule,
                        wallet_id=wallet.wallet_id)
            raise SignerRefused(SECOND_WALLET_MESSAGE, rule=refused.rule, signer_id=self.signer_id) from None
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
        if not self._check_draw(bundle, txid, wallet):
            self._follow_tip(bundle, now)
            raise self._refuse(f"not nominated (nominees {list(bundle.draw.nominated)})", "draw.not_nominated")
        previous = self._store.previous_signature(bundle.batch_id, txid)
        if previous is not None:
            return previous  # the same batch again (a coordinator retry): same signatures, nothing new
        self._check_tip(bundle, now)
        self._store.record_answer(txid, bundle.draw.attempt, bundle.batch_id, bundle.draw.tip_hash)
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

    def _check_draw(self, bundle: SigningBundle, txid: str, wallet: ColdWallet) -> bool:
        """Whether this signer is nominated by a draw that recomputes from inputs this signer checks: its pinned signer set (one id per key of the
        registered wallet), the wallet's threshold, time-outs that name earlier nominees only (never this
        signer for an attempt it answered), one batch id and first tip per transaction."""
        draw = bundle.draw
        if draw.batch_id != bundle.batch_id or draw.unsigned_txid != txid:
            raise self._refuse("draw is for another batch or transaction", "draw.mismatch")
        if len(draw.timed_out) > REDRAWS_MAX or draw.attempt > REDRAWS_MAX:
            raise self._refuse(f"more than {REDRAWS_MAX} redraws", "draw.attempts")
        if draw.signer_ids != tuple(range(1, len(wallet.keys) + 1)) or draw.threshold != wallet.threshold:
            raise self._refuse("draw is not over the registered wallet's signers and threshold", "draw.signer_set")
        try:
            verify_draw(draw)
        except DrawMismatch as exc:
            raise self._refuse(str(exc), "draw.mismatch") from None
        answered = self._store.answered(txid)
        for attempt, silent in enumerate(draw.timed_out):
            if self.signer_id in silent and attempt in answered:
                raise self._refuse(f"attempt {attempt} says this signer timed out, but it answered",
                                   "draw.false_timeout")
        first = answered.get(0)
        if first is not None and first != (draw.batch_id, draw.tip_hash):
            raise self._refuse("this transaction was drawn before under another batch id or tip", "draw.rebatched")
        return self.signer_id in draw.nominated

    def _follow_tip(self, bundle: SigningBundle, now: dt.datetime) -> None:
        """A signer that is not nominated still keeps the headers it can verify: its own best moves on."""
        try:
            self._check_tip(bundle, now)
        except SignerRefused:
            return

    def _check_tip(self, bundle: SigningBundle, now: dt.datetime) -> None:
        """The draw's tip is a header chain with valid proof of work, linked to a header this signer knows,
        with no less work than its own best and not older than TIP_AGE_S_MAX by its own clock; the accepted
        headers become part of its own chain."""
        from coffer.cold.tip import TIP_AGE_S_MAX, check_headers, header_work

        tip = bundle.draw.tip_hash
        try:
            headers = check_headers(bundle.headers, network=self._network)
        except DrawMismatch as exc:
            raise self._refuse(str(exc), "draw.tip_invalid") from None
        if not headers or headers[-1].block_hash != tip:
            raise self._refuse("the headers do not end at the draw's tip", "draw.tip_mismatch")
        now_s = int(now.timestamp())
        if headers[-1].time < now_s - TIP_AGE_S_MAX:
            raise self._refuse(f"the draw's tip is older than {TIP_AGE_S_MAX} s by this signer's clock", "draw.tip_old")
        rows: list[tuple[str, str, int, int]] = []
        start = next((i for i, h in enumerate(headers) if self._store.known_header(h.prev_hash, self._network)),
                     None)
        if start is None:
            raise self._refuse("the draw's tip does not extend any header this signer knows", "draw.tip_unlinked")
        height, tip_work = self._store.known_header(headers[start].prev_hash, self._network) or (0, 0)
        for header in headers[start:]:
            height, tip_work = height + 1, tip_work + header_work(header.bits)
            rows.append((header.block_hash, header.prev_hash, height, tip_work))
        if tip_work < self._store.best_work(self._network):
            raise self._refuse("the draw's tip has less work than this signer's own best header", "draw.tip_stale")
        self._store.add_headers(rows)
