"""The Ethereum hot wallet: the address of the co-signers' threshold ECDSA key, and per-client
deposit addresses derived from it by public, non-hardened tweaks (no new key generation).

* `pay` an approved hot-routed ETH request (`dispatch` has the WithdrawalDesk's hot_dispatch
  signature): build the EIP-1559 transfer, store it, have the co-signers sign it (each derives and
  checks the digest itself), store the signed transaction, broadcast it. Every state change is
  committed before its effect; the same request again resumes the same payment, so a crash never
  pays twice.
* `scan_deposits`: transfers to deposit addresses are credited to their client (ledger DEPOSIT)
  once they have `confirmations`, like Bitcoin.
* `sweep_deposits`: credited funds above `sweep_min_wei` move from each deposit address to the
  hot address (a deposit sweep, which the co-signers sign only towards their own hot address).
* `settle`: confirmed withdrawals and sweeps settle the ledger (WITHDRAWAL_SETTLE / SWEEP, and the
  gas actually paid as NETWORK_FEE). Custody accounts: "eth-hot" and "eth-deposits".
No key, share or nonce is ever held here.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coffer.audit import AuditLog
from coffer.chain import BroadcastRejected, EthereumChain
from coffer.eth.errors import EthPaymentRefused, InsufficientEthFunds
from coffer.eth.spend import (
    DEPOSIT_INDEX_MAX,
    DEPOSIT_SWEEP,
    MAX_FEE_WEI_MAX,
    TRANSFER_GAS,
    WITHDRAWAL,
    EthSpend,
)
from coffer.eth.spend import normalise_address as _normalise
from coffer.eth.tables import eth_deposit_addresses, eth_deposits, eth_payments, eth_scan
from coffer.ledger import AccountKey, Kind, Ledger, Transfer, credit, debit
from coffer.log import get_logger
from coffer.policy import RequestKind, SignedDecision, WithdrawalRequest

if TYPE_CHECKING:  # the coordinator imports coffer.eth.spend: no import cycle at run time
    from coffer.mpc.ecdsa_service.coordinator import EcdsaCoordinator

__all__ = ["EthHotWallet", "EthPayment", "EthDeposit", "HOT_CUSTODY", "DEPOSIT_CUSTODY", "SWEEP_MIN_WEI",
           "SCAN_BLOCKS_MAX"]

HOT_CUSTODY: Final = "eth-hot"
DEPOSIT_CUSTODY: Final = "eth-deposits"
SWEEP_MIN_WEI: Final = 10**15
SCAN_BLOCKS_MAX: Final = 10_000
log = get_logger("coffer.eth.wallet")


@dataclass(frozen=True, slots=True)
class EthPayment:
    payment_id: str
    kind: str
    sender: str
    destination: str
    value_wei: int
    tx_hash: str | None
    fee_wei: int | None
    status: str


@dataclass(frozen=True, slots=True)
class EthDeposit:
    tx_hash: str
    client_id: str
    address: str
    amount_wei: int
    block_number: int


def _now(now: dt.datetime) -> str:
    return now.isoformat()


def _payment(row: Any) -> EthPayment:
    return EthPayment(row.payment_id, row.kind, row.sender, row.destination, int(row.value_wei), row.tx_hash,
                      None if row.fee_wei is None else int(row.fee_wei), row.status)


class EthHotWallet:
    """The hot wallet of one threshold ECDSA key (`key_id`) on one Ethereum chain."""

    def __init__(self, engine: Engine, chain: EthereumChain, ledger: Ledger, ecdsa: EcdsaCoordinator, *,
                 key_id: str = "hot-eth", confirmations: int = 3, sweep_min_wei: int = SWEEP_MIN_WEI,
                 audit: AuditLog | None = None) -> None:
        self._engine = engine
        self._chain = chain
        self._ledger = ledger
        self._ecdsa = ecdsa
        self.key_id = key_id
        self.confirmations = confirmations
        self.sweep_min_wei = sweep_min_wei
        self._audit = audit or AuditLog(engine)
        self._accounts_open = False
        self._build_lock = threading.Lock()

    def open_ledger_accounts(self, now: dt.datetime) -> None:
        """Open the custody and company accounts the wallet posts to (idempotent, once per instance)."""
        if not self._accounts_open:
            self._ledger.open_accounts([AccountKey.custody(HOT_CUSTODY, "ETH"),
                                        AccountKey.custody(DEPOSIT_CUSTODY, "ETH"),
                                        AccountKey.company("operating", "ETH")], at=now)
            self._accounts_open = True

    # -- addresses -----------------------------------------------------------------------------------
    def address(self) -> str:
        """The hot address: keccak of the untweaked group key (EIP-55)."""
        return self._ecdsa.key(self.key_id).address

    def deposit_address(self, client_id: str, *, now: dt.datetime) -> str:
        """The client's own deposit address (assigned once, durably; the next free index)."""
        with self._engine.begin() as conn:
            found = conn.execute(sa.select(eth_deposit_addresses.c.address).where(
                eth_deposit_addresses.c.key_id == self.key_id,
                eth_deposit_addresses.c.client_id == client_id)).scalar()
            if found is not None:
                return str(found)
            used = conn.execute(sa.select(sa.func.max(eth_deposit_addresses.c.derivation_index)).where(
                eth_deposit_addresses.c.key_id == self.key_id)).scalar()
            index = 0 if used is None else int(used) + 1
            key = self._ecdsa.key(self.key_id)
            while True:  # an index whose tweak is invalid (probability ~2^-127) is skipped
                if index > DEPOSIT_INDEX_MAX:
                    raise EthPaymentRefused("deposit indices exhausted")
                try:
                    address = key.deposit_address(index)
                    break
                except Exception:  # InvalidTweak: use the next index
                    index += 1
            conn.execute(eth_deposit_addresses.insert().values(key_id=self.key_id, client_id=client_id,
                                                               derivation_index=index, address=address,
                                                               created_at=_now(now)))
            self._audit.append("eth.wallet", "eth.deposit_address_assigned",
                               {"client_id": client_id, "index": index, "address": address}, at=now,
                               connection=conn)
        return address

    def _deposit_addresses(self) -> dict[str, tuple[str, int]]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(eth_deposit_addresses).where(eth_deposit_addresses.c.key_id == self.key_id))
            return {row.address: (row.client_id, int(row.derivation_index)) for row in rows}

    # -- paying ----------------------------------------------------------------------------------------
    def dispatch(self, request: WithdrawalRequest, signed: SignedDecision, now: dt.datetime) -> EthPayment:
        """The WithdrawalDesk's `hot_dispatch` for ETH requests."""
        client = request.account if request.kind is RequestKind.CLIENT_WITHDRAWAL else None
        return self.pay(request, signed, client_id=client, now=now)

    def pay(self, request: WithdrawalRequest, decision: SignedDecision, *, client_id: str | None,
            now: dt.datetime) -> EthPayment:
        """Pay an approved request from the hot address; the same request again resumes its payment."""
        existing = self._row(request.digest_hex)
        if existing is None:
            self._check_request(request)
            with self._build_lock:  # nonces are allocated one payment at a time (and unique in the table)
                spend = self._build(WITHDRAWAL, self.address(), request.destination, request.amount_minor, ())
                self._insert(request.digest_hex, spend, client_id, self.address(), now)
            existing = self._row(request.digest_hex)
        assert existing is not None
        return self._resume(existing, [(request, decision)], now)

    def _check_request(self, request: WithdrawalRequest) -> None:
        if request.asset != "ETH" or request.source_wallet not in ("hot", "auto"):
            raise EthPaymentRefused("the Ethereum hot wallet pays ETH requests routed to it only")
        if request.kind not in (RequestKind.CLIENT_WITHDRAWAL, RequestKind.SWEEP):
            raise EthPaymentRefused(f"the hot wallet does not pay {request.kind.value} requests")
        _normalise(request.destination)

    def _next_nonce(self, sender: str) -> int:
        """The chain's pending nonce, or past our own payments from `sender` not yet broadcast."""
        nonce = self._chain.nonce(sender)
        with self._engine.connect() as conn:
            highest = conn.execute(sa.select(sa.func.max(eth_payments.c.nonce)).where(
                eth_payments.c.sender == sender, eth_payments.c.status.in_(("built", "signed")))).scalar()
        if highest is not None:
            nonce = max(nonce, int(highest) + 1)
        return nonce

    def _build(self, kind: str, sender: str, destination: str, value_wei: int, path: tuple[int, ...]) -> EthSpend:
        fees = self._chain.fee_estimate()
        max_fee = min(fees.max_fee_wei, MAX_FEE_WEI_MAX)
        priority = min(fees.max_priority_fee_wei, max_fee)
        spend = EthSpend(kind, self._chain.chain_id(), self._next_nonce(sender), priority, max_fee, TRANSFER_GAS,
                         destination, value_wei, path)
        if self._chain.balance_wei(sender) < spend.max_cost_wei:
            raise InsufficientEthFunds(f"{sender} cannot pay {value_wei} wei plus up to "
                                       f"{TRANSFER_GAS * max_fee} wei of gas")
        return spend

    def _insert(self, payment_id: str, spend: EthSpend, client_id: str | None, sender: str, now: dt.datetime) -> None:
        with self._engine.begin() as conn:
            conn.execute(eth_payments.insert().values(
                payment_id=payment_id, key_id=self.key_id, kind=spend.kind, client_id=client_id, sender=sender,
                nonce=spend.nonce, destination=spend.to, value_wei=str(spend.value_wei), spend=json.dumps(spend.to_json()),
                status="built", raw_tx=None, tx_hash=None, fee_wei=None, confirmed_block=None,
                created_at=_now(now), updated_at=_now(now)))
            self._audit.append("eth.wallet", "eth.payment_built", {
                "payment_id": payment_id, "kind": spend.kind, "sender": sender, "destination": spend.to,
                "value_wei": str(spend.value_wei), "nonce": spend.nonce}, at=now, connection=conn)

    def _resume(self, row: Any, approvals: list[tuple[WithdrawalRequest, SignedDecision]],
                now: dt.datetime) -> EthPayment:
        if row.status == "built":
            spend = EthSpend.from_json(json.loads(row.spend))
            signed = self._ecdsa.sign_spend(self.key_id, spend, approvals)
            if signed.sender != row.sender:
                raise EthPaymentRefused("the signature is for another address")  # never broadcast it
            self._update(row.payment_id, now, status="signed", raw_tx=signed.raw.hex(), tx_hash=signed.tx_hash)
            row = self._row(row.payment_id)
        if row.status == "signed":
            try:
                self._chain.send_raw_transaction(bytes.fromhex(row.raw_tx))
            except BroadcastRejected as error:
                if self._chain.receipt(row.tx_hash) is None and "already" not in str(error).lower() \
                        and "known" not in str(error).lower():
                    raise
            self._update(row.payment_id, now, status="broadcast")
            log.info("eth.payment_broadcast", payment=row.payment_id, tx_hash=row.tx_hash, kind=row.kind)
            row = self._row(row.payment_id)
        return _payment(row)

    def resume_all(self, now: dt.datetime) -> list[EthPayment]:
        """After a restart: finish deposit sweeps that were built or signed (withdrawals resume via `pay`)."""
        with self._engine.connect() as conn:
            rows = list(conn.execute(sa.select(eth_payments).where(
                eth_payments.c.key_id == self.key_id, eth_payments.c.kind == DEPOSIT_SWEEP,
                eth_payments.c.status.in_(("built", "signed")))))
        return [self._resume(row, [], now) for row in rows]

    def _row(self, payment_id: str) -> Any:
        with self._engine.connect() as conn:
            return conn.execute(sa.select(eth_payments).where(eth_payments.c.payment_id == payment_id)).first()

    def _update(self, payment_id: str, now: dt.datetime, **values: Any) -> None:
        with self._engine.begin() as conn:
            conn.execute(eth_payments.update().where(eth_payments.c.payment_id == payment_id)
                         .values(updated_at=_now(now), **values))

    def payment(self, payment_id: str) -> EthPayment | None:
        row = self._row(payment_id)
        return None if row is None else _payment(row)

    # -- deposits --------------------------------------------------------------------------------------
    def _transfers_in_block(self, height: int) -> list[tuple[str, str, int]]:
        """(tx hash, to, value) of every transaction in block `height`.

        The EthereumChain interface has no block listing yet, so this reads the web3 handle that
        both implementations (EmbeddedEthereum, JsonRpcEthereum) carry.
        """
        w3 = getattr(self._chain, "w3", None)
        if w3 is None:
            raise EthPaymentRefused("this chain backend cannot list block transactions")
        block = w3.eth.get_block(height, full_transactions=True)
        out = []
        for tx in block["transactions"]:
            if tx.get("to") is None:
                continue
            tx_hash = tx["hash"].hex() if isinstance(tx["hash"], bytes | bytearray) else str(tx["hash"])
            out.append(("0x" + tx_hash.removeprefix("0x"), str(tx["to"]), int(tx["value"])))
        return out

    def scan_deposits(self, now: dt.datetime) -> list[EthDeposit]:
        """Credit every transfer to a deposit address that has `confirmations` (once each)."""
        addresses = self._deposit_addresses()
        safe_height = self._chain.block_number() - self.confirmations + 1
        with self._engine.connect() as conn:
            cursor = conn.execute(sa.select(eth_scan.c.height).where(eth_scan.c.key_id == self.key_id)).scalar()
        start = 0 if cursor is None else int(cursor) + 1
        end = min(safe_height, start + SCAN_BLOCKS_MAX - 1)
        credited = []
        for height in range(start, end + 1):
            for tx_hash, to, value in self._transfers_in_block(height):
                found = addresses.get(_normalise(to))
                if found is None or value <= 0:
                    continue
                receipt = self._chain.receipt(tx_hash)
                if receipt is None or receipt.status != 1:
                    continue
                deposit = EthDeposit(tx_hash, found[0], _normalise(to), value, height)
                if self._credit(deposit, now):
                    credited.append(deposit)
        if end >= start:
            with self._engine.begin() as conn:
                if cursor is None:
                    conn.execute(eth_scan.insert().values(key_id=self.key_id, height=end))
                else:
                    conn.execute(eth_scan.update().where(eth_scan.c.key_id == self.key_id).values(height=end))
        return credited

    def _credit(self, deposit: EthDeposit, now: dt.datetime) -> bool:
        with self._engine.begin() as conn:
            if conn.execute(sa.select(eth_deposits.c.tx_hash).where(eth_deposits.c.tx_hash == deposit.tx_hash)).first():
                return False
            conn.execute(eth_deposits.insert().values(
                tx_hash=deposit.tx_hash, key_id=self.key_id, address=deposit.address, client_id=deposit.client_id,
                amount_wei=str(deposit.amount_wei), block_number=deposit.block_number, credited_at=_now(now)))
        # The ledger's idempotency key makes a repeat after a crash between the two commits harmless.
        self.open_ledger_accounts(now)
        self._ledger.apply(Transfer(
            idempotency_key=f"eth-deposit:{deposit.tx_hash}", kind=Kind.DEPOSIT,
            postings=(debit(AccountKey.custody(DEPOSIT_CUSTODY, "ETH"), deposit.amount_wei),
                      credit(AccountKey.available(deposit.client_id, "ETH"), deposit.amount_wei)),
            at=now, metadata={"tx_hash": deposit.tx_hash, "address": deposit.address}), actor="eth.wallet")
        log.info("eth.deposit_credited", client=deposit.client_id, tx_hash=deposit.tx_hash,
                 amount_wei=str(deposit.amount_wei))
        return True

    def credited_wei(self, client_id: str) -> int:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(eth_deposits.c.amount_wei).where(eth_deposits.c.client_id == client_id))
            return sum(int(row.amount_wei) for row in rows)

    # -- sweeps of deposit addresses to the hot address -----------------------------------------------------
    def sweep_deposits(self, now: dt.datetime) -> list[EthPayment]:
        """Move credited funds above `sweep_min_wei` from each deposit address to the hot address."""
        hot = self.address()
        swept = []
        for address, (client_id, index) in sorted(self._deposit_addresses().items()):
            sweepable = min(self._chain.balance_wei(address), self._unswept_credit(address))
            if sweepable < self.sweep_min_wei or self._sweep_in_flight(address):
                continue
            fees = self._chain.fee_estimate()
            max_fee = min(fees.max_fee_wei, MAX_FEE_WEI_MAX)
            value = sweepable - TRANSFER_GAS * max_fee
            if value <= 0:
                continue
            with self._build_lock:
                spend = EthSpend(DEPOSIT_SWEEP, self._chain.chain_id(), self._next_nonce(address),
                                 min(fees.max_priority_fee_wei, max_fee), max_fee, TRANSFER_GAS, hot, value, (index,))
                payment_id = f"sweep:{address}:{spend.nonce}"
                self._insert(payment_id, spend, client_id, address, now)
            row = self._row(payment_id)
            swept.append(self._resume(row, [], now))
        return swept

    def _unswept_credit(self, address: str) -> int:
        """Credited deposits minus what sweeps took out (value and gas) of `address`."""
        with self._engine.connect() as conn:
            credited = sum(int(r.amount_wei) for r in conn.execute(
                sa.select(eth_deposits.c.amount_wei).where(eth_deposits.c.address == address)))
            spent = sum(int(r.value_wei) + int(r.fee_wei or 0) for r in conn.execute(
                sa.select(eth_payments.c.value_wei, eth_payments.c.fee_wei).where(
                    eth_payments.c.sender == address, eth_payments.c.status == "confirmed")))
        return credited - spent

    def _sweep_in_flight(self, address: str) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(sa.select(eth_payments.c.payment_id).where(
                eth_payments.c.sender == address,
                eth_payments.c.status.not_in(("confirmed", "failed")))).first() is not None

    # -- confirmations and the ledger -------------------------------------------------------------------------
    def settle(self, now: dt.datetime) -> list[str]:
        """Settle every broadcast payment with enough confirmations; returns their tx hashes."""
        with self._engine.connect() as conn:
            rows = list(conn.execute(sa.select(eth_payments).where(eth_payments.c.key_id == self.key_id,
                                                                   eth_payments.c.status == "broadcast")))
        settled = []
        for row in rows:
            receipt = self._chain.receipt(row.tx_hash)
            if receipt is None or self._chain.confirmations(row.tx_hash) < self.confirmations:
                continue
            if receipt.status != 1:
                self._update(row.payment_id, now, status="failed", fee_wei=str(receipt.fee_wei))
                log.error("eth.payment_reverted", payment=row.payment_id, tx_hash=row.tx_hash)
                continue
            self._settle(row, receipt.fee_wei, receipt.block_number, now)
            settled.append(str(row.tx_hash))
        return settled

    def _settle(self, row: Any, fee_wei: int, block: int, now: dt.datetime) -> None:
        value = int(row.value_wei)
        meta = {"tx_hash": row.tx_hash, "payment_id": row.payment_id}
        if row.kind == WITHDRAWAL:
            source = AccountKey.custody(HOT_CUSTODY, "ETH")
            transfers = []
            if row.client_id is not None:
                transfers.append(Transfer(
                    idempotency_key=f"eth-settle:{row.payment_id}", kind=Kind.WITHDRAWAL_SETTLE,
                    postings=(debit(AccountKey.held(row.client_id, "ETH"), value), credit(source, value)),
                    at=now, metadata=meta))
        else:
            source = AccountKey.custody(DEPOSIT_CUSTODY, "ETH")
            transfers = [Transfer(
                idempotency_key=f"eth-sweep:{row.payment_id}", kind=Kind.SWEEP,
                postings=(debit(AccountKey.custody(HOT_CUSTODY, "ETH"), value), credit(source, value)),
                at=now, metadata=meta)]
        if fee_wei:
            transfers.append(Transfer(
                idempotency_key=f"eth-fee:{row.payment_id}", kind=Kind.NETWORK_FEE,
                postings=(debit(AccountKey.company("operating", "ETH"), fee_wei), credit(source, fee_wei)),
                at=now, metadata=meta))
        if transfers:
            self.open_ledger_accounts(now)
            self._ledger.apply_many(transfers, actor="eth.wallet")
        with self._engine.begin() as conn:
            conn.execute(eth_payments.update().where(eth_payments.c.payment_id == row.payment_id).values(
                status="confirmed", fee_wei=str(fee_wei), confirmed_block=block, updated_at=_now(now)))
            self._audit.append("eth.wallet", "eth.payment_confirmed", {
                "payment_id": row.payment_id, "tx_hash": row.tx_hash, "block": block, "fee_wei": str(fee_wei)},
                at=now, connection=conn)

    def record_funding(self, tx_hash: str, amount_wei: int, *, now: dt.datetime) -> None:
        """A confirmed company transfer into the hot address (e.g. a refill): ledger COMPANY_DEPOSIT."""
        self.open_ledger_accounts(now)
        self._ledger.apply(Transfer(
            idempotency_key=f"eth-funding:{tx_hash}", kind=Kind.COMPANY_DEPOSIT,
            postings=(debit(AccountKey.custody(HOT_CUSTODY, "ETH"), amount_wei),
                      credit(AccountKey.company("operating", "ETH"), amount_wei)),
            at=now, metadata={"tx_hash": tx_hash}), actor="eth.wallet")
