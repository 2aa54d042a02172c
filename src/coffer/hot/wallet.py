"""The Bitcoin hot wallet: a Taproot key-path address of the co-signers' FROST group key.

Small approved withdrawals are paid at once ("accelerated"): the coordinator builds a transaction
from the hot coins with change back to the hot address, stores it, has the co-signers sign it
jointly (each derives and checks the sighashes itself), stores the signed transaction, then
broadcasts it; `settle` follows confirmations and settles the ledger (custody account "hot").
Every state change is committed before its effect, so a crash never pays twice: `resume` picks
up a payment where it stopped, and a request is paid by one transaction only.
Refills from cold are ledger REFILL transfers (`record_refill`). No key is held here.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from embit.script import Script, Witness
from embit.transaction import Transaction, TransactionInput, TransactionOutput
from sqlalchemy.engine import Engine

from coffer.audit import AuditLog
from coffer.chain import BitcoinChain, BroadcastRejected, Utxo
from coffer.hot.errors import HotPaymentRefused, InsufficientHotFunds
from coffer.hot.tables import hot_payments
from coffer.ledger import AccountKey, Kind, Ledger, Transfer, credit, debit
from coffer.log import get_logger
from coffer.mpc.service.coordinator import MpcCoordinator
from coffer.mpc.service.messages import Prevout, address_script, p2tr_address, p2tr_script
from coffer.policy import RequestKind, SignedDecision, WithdrawalRequest

__all__ = ["HotWallet", "HotPayment", "HOT_ACCOUNT", "DUST_SATS", "taproot_vsize"]

HOT_ACCOUNT: Final = "hot"
DUST_SATS: Final = 330
FEE_TARGET_BLOCKS: Final = 2
log = get_logger("coffer.hot.wallet")


@dataclass(frozen=True, slots=True)
class HotPayment:
    request_digest: str
    txid: str
    amount_sats: int
    fee_sats: int
    status: str


def taproot_vsize(inputs: int, output_scripts: Sequence[int]) -> int:
    """Virtual size of a transaction with `inputs` key-path P2TR inputs and the given output scripts."""
    base = 4 + 1 + 41 * inputs + 1 + sum(8 + 1 + length for length in output_scripts) + 4
    witness = 2 + inputs * (1 + 1 + 64)
    return math.ceil((4 * base + witness) / 4)


def _now(now: dt.datetime) -> str:
    return now.isoformat()


class HotWallet:
    """The hot wallet of one FROST key (`key_id`, suite "taproot") on one chain."""

    def __init__(self, engine: Engine, chain: BitcoinChain, ledger: Ledger, mpc: MpcCoordinator, *,
                 key_id: str = "hot-btc", network: str = "regtest", confirmations: int = 1,
                 audit: AuditLog | None = None) -> None:
        self._engine = engine
        self._chain = chain
        self._ledger = ledger
        self._mpc = mpc
        self.key_id = key_id
        self._network = network
        self._confirmations = confirmations
        self._audit = audit or AuditLog(engine)

    # -- the address ------------------------------------------------------------------------------
    def output_key(self, key_id: str | None = None) -> bytes:
        return self._mpc.key(key_id or self.key_id).taproot_output_key()

    def address(self, key_id: str | None = None) -> str:
        """The P2TR (bech32m) address: the group key tweaked for a key-path-only spend."""
        return p2tr_address(self.output_key(key_id), self._network)

    def script_pubkey(self, key_id: str | None = None) -> bytes:
        return p2tr_script(self.output_key(key_id))

    def coins(self) -> list[Utxo]:
        """Confirmed coins not reserved by a payment still in flight."""
        reserved: set[tuple[str, int]] = set()
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(hot_payments.c.prevouts).where(hot_payments.c.status != "confirmed"))
            for row in rows:
                reserved.update((p["txid"], p["vout"]) for p in json.loads(row.prevouts))
        return [u for u in self._chain.unspent([self.script_pubkey()]) if (u.txid, u.vout) not in reserved]

    def balance_sats(self) -> int:
        return sum(u.amount_sats for u in self._chain.unspent([self.script_pubkey()]))

    # -- paying -----------------------------------------------------------------------------------
    def pay(self, request: WithdrawalRequest, decision: SignedDecision, *, client_id: str | None,
            now: dt.datetime) -> HotPayment:
        """Pay an approved request now; the same request again returns the same payment."""
        existing = self._payment(request.digest_hex)
        if existing is not None:
            return self._resume(existing, request, decision, now)
        self._check_request(request)
        unsigned, prevouts, fee = self._build(request)
        txid = Transaction.parse(unsigned).txid().hex()
        with self._engine.begin() as conn:
            conn.execute(hot_payments.insert().values(
                request_digest=request.digest_hex, key_id=self.key_id, kind=request.kind.value, client_id=client_id,
                destination=request.destination, amount_sats=request.amount_minor, fee_sats=fee, status="built",
                unsigned_tx=unsigned.hex(), prevouts=json.dumps(prevouts), signed_tx=None, txid=txid,
                created_at=_now(now), updated_at=_now(now)))
            self._audit.append("hot.wallet", "hot.payment_built", {"request_digest": request.digest_hex,
                               "txid": txid, "amount_sats": request.amount_minor, "fee_sats": fee}, at=now,
                               connection=conn)
        row = self._payment(request.digest_hex)
        assert row is not None
        return self._resume(row, request, decision, now)

    def dispatch(self, request: WithdrawalRequest, decision: SignedDecision, now: dt.datetime) -> HotPayment:
        """`WithdrawalDesk(hot_dispatch=...)` entry point: pay a hot-routed BTC request now; a
        client withdrawal settles against the client's held funds (client id = request.account)."""
        client_id = request.account if request.kind is RequestKind.CLIENT_WITHDRAWAL else None
        return self.pay(request, decision, client_id=client_id, now=now)

    def _check_request(self, request: WithdrawalRequest) -> None:
        if request.asset != "BTC" or request.source_wallet not in ("hot", "auto"):
            raise HotPaymentRefused("the hot wallet pays BTC requests routed to it only")
        if request.kind not in (RequestKind.CLIENT_WITHDRAWAL, RequestKind.SWEEP):
            raise HotPaymentRefused(f"the hot wallet does not pay {request.kind.value} requests")
        address_script(request.destination, self._network)

    def _build(self, request: WithdrawalRequest) -> tuple[bytes, list[dict[str, Any]], int]:
        own = self.script_pubkey()
        destination = address_script(request.destination, self._network)
        rate = max(1, self._chain.estimate_fee(FEE_TARGET_BLOCKS).sat_per_vb_ceil)
        coins = sorted(self.coins(), key=lambda u: (-u.amount_sats, u.txid, u.vout))
        if request.kind is RequestKind.SWEEP:  # everything, no change; the request names the net amount
            chosen, change = coins, 0
            fee = sum(u.amount_sats for u in chosen) - request.amount_minor
            if not chosen or fee < taproot_vsize(len(chosen), [len(destination)]):
                raise InsufficientHotFunds("a sweep must leave at least 1 sat/vB for the fee")
        else:
            chosen, total, fee = [], 0, 0
            for coin in coins:
                chosen.append(coin)
                total += coin.amount_sats
                fee = rate * taproot_vsize(len(chosen), [len(destination), len(own)])
                if total >= request.amount_minor + fee + DUST_SATS:
                    break
            else:
                raise InsufficientHotFunds(f"hot coins cannot pay {request.amount_minor} sats plus the fee")
            change = total - request.amount_minor - fee
        outputs = [TransactionOutput(request.amount_minor, Script(destination))]
        if change:
            outputs.append(TransactionOutput(change, Script(own)))
        tx = Transaction(version=2, vin=[TransactionInput(bytes.fromhex(u.txid), u.vout, sequence=0xFFFFFFFD)
                                         for u in chosen], vout=outputs, locktime=0)
        prevouts = [{"txid": u.txid, "vout": u.vout, "amount_sats": u.amount_sats, "script_pubkey": own.hex()}
                    for u in chosen]
        return bytes(tx.serialize()), prevouts, fee

    def _resume(self, row: Any, request: WithdrawalRequest, decision: SignedDecision, now: dt.datetime) -> HotPayment:
        if row.status == "built":
            unsigned = bytes.fromhex(row.unsigned_tx)
            prevouts = [Prevout(p["amount_sats"], bytes.fromhex(p["script_pubkey"])) for p in json.loads(row.prevouts)]
            signatures = self._mpc.sign_taproot_spend(row.key_id, unsigned, prevouts, [(request, decision)],
                                                      network=self._network)
            tx = Transaction.parse(unsigned)
            for vin, signature in zip(tx.vin, signatures, strict=True):
                vin.witness = Witness([signature])
            self._update(row.request_digest, now, status="signed", signed_tx=bytes(tx.serialize()).hex())
            row = self._payment(row.request_digest)
        if row.status == "signed":
            try:
                self._chain.broadcast(bytes.fromhex(row.signed_tx))
            except BroadcastRejected as error:
                if self._chain.confirmations(row.txid) == 0 and "already" not in str(error).lower():
                    raise
            self._update(row.request_digest, now, status="broadcast")
            log.info("hot.payment_broadcast", txid=row.txid, amount_sats=int(row.amount_sats))
            row = self._payment(row.request_digest)
        return HotPayment(row.request_digest, row.txid, int(row.amount_sats), int(row.fee_sats), row.status)

    def _payment(self, request_digest: str) -> Any:
        with self._engine.connect() as conn:
            return conn.execute(sa.select(hot_payments).where(hot_payments.c.request_digest == request_digest)).first()

    def _update(self, request_digest: str, now: dt.datetime, **values: Any) -> None:
        with self._engine.begin() as conn:
            conn.execute(hot_payments.update().where(hot_payments.c.request_digest == request_digest)
                         .values(updated_at=_now(now), **values))

    # -- confirmations and the ledger -------------------------------------------------------------
    def settle(self, now: dt.datetime) -> list[str]:
        """Settle every broadcast payment with enough confirmations; returns their txids."""
        with self._engine.connect() as conn:
            rows = list(conn.execute(sa.select(hot_payments).where(hot_payments.c.status == "broadcast")))
        settled = []
        for row in rows:
            confirmations = self._chain.confirmations(row.txid)
            if confirmations < self._confirmations:
                continue
            self._settle(row, self._chain.tip().height - confirmations + 1, now)
            settled.append(str(row.txid))
        return settled

    def _settle(self, row: Any, height: int, now: dt.datetime) -> None:
        custody = AccountKey.custody(HOT_ACCOUNT, "BTC")
        meta = {"txid": row.txid, "request_digest": row.request_digest}
        transfers = []
        if row.client_id is not None:
            transfers.append(Transfer(
                idempotency_key=f"hot-settle:{row.request_digest}", kind=Kind.WITHDRAWAL_SETTLE,
                postings=(debit(AccountKey.held(row.client_id, "BTC"), int(row.amount_sats)),
                          credit(custody, int(row.amount_sats))), at=now, metadata=meta))
        if int(row.fee_sats):
            transfers.append(Transfer(
                idempotency_key=f"hot-fee:{row.request_digest}", kind=Kind.NETWORK_FEE,
                postings=(debit(AccountKey.company("operating", "BTC"), int(row.fee_sats)),
                          credit(custody, int(row.fee_sats))), at=now, metadata=meta))
        if transfers:
            self._ledger.apply_many(transfers, actor="hot.wallet")
        with self._engine.begin() as conn:
            conn.execute(hot_payments.update().where(hot_payments.c.request_digest == row.request_digest)
                         .values(status="confirmed", confirmed_height=height, updated_at=_now(now)))
            self._audit.append("hot.wallet", "hot.payment_confirmed", {"txid": row.txid, "height": height}, at=now,
                               connection=conn)

    def record_refill(self, txid: str, amount_sats: int, *, now: dt.datetime, source: str = "cold") -> None:
        """A confirmed refill from `source` custody to the hot wallet: a ledger REFILL transfer."""
        self._ledger.apply(Transfer(
            idempotency_key=f"hot-refill:{txid}", kind=Kind.REFILL,
            postings=(debit(AccountKey.custody(HOT_ACCOUNT, "BTC"), amount_sats),
                      credit(AccountKey.custody(source, "BTC"), amount_sats)),
            at=now, metadata={"txid": txid, "source": source}), actor="hot.wallet")

    def cancel(self, request_digest: str, *, now: dt.datetime) -> None:
        """Drop a payment that was built but never signed, releasing its coins. The co-signers may
        have cleared the request for that transaction already: pay it again with a new request."""
        with self._engine.begin() as conn:
            deleted = conn.execute(hot_payments.delete().where(
                (hot_payments.c.request_digest == request_digest) & (hot_payments.c.status == "built"))).rowcount
            if deleted != 1:
                raise HotPaymentRefused("only a payment that was built and never signed can be cancelled")
            self._audit.append("hot.wallet", "hot.payment_cancelled", {"request_digest": request_digest}, at=now,
                               connection=conn)

    def payment(self, request_digest: str) -> HotPayment | None:
        row = self._payment(request_digest)
        if row is None:
            return None
        return HotPayment(row.request_digest, row.txid, int(row.amount_sats), int(row.fee_sats), row.status)
