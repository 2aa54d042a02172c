"""The coordinator's side of cold custody: the wallet ceremony, deposit addresses and credits,
batched withdrawals, the quorum draw, combining, broadcasting and settling.

It holds no key: signing is asked of the nominated signers through `SignerClient`s. Every state
change is committed before its effect (a batch is stored sealed before any signer is asked, and
stored with its final transaction before it is broadcast), so a crash at any point loses nothing
and pays nothing twice: on restart `run_once` picks up each batch where it stopped.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from embit.transaction import Transaction
from sqlalchemy.engine import Engine

from coffer.audit import AuditLog
from coffer.btc.bip322_sign import assemble_p2wsh_multisig
from coffer.chain import BitcoinChain, BroadcastRejected, ChainError
from coffer.cold.bundle import ApprovedPayment, SigningBundle
from coffer.cold.descriptor import CHANGE, RECEIVE, ColdWallet, KeyOrigin
from coffer.cold.draw import REDRAWS_MAX, Draw, draw_quorum
from coffer.cold.errors import ColdError, SignerRefused
from coffer.cold.psbt import (
    Payment,
    Utxo,
    build_batch_psbt,
    combine_partial_signatures,
    finalize,
    parse_psbt,
)
from coffer.cold.signer import REGISTRATION_ADDRESSES
from coffer.cold.tables import (
    cold_addresses,
    cold_batches,
    cold_deposits,
    cold_draws,
    cold_signers,
    cold_wallets,
    cold_withdrawals,
)
from coffer.invariant import invariant
from coffer.ledger import AccountKey, Kind, Ledger, Transfer, credit, debit
from coffer.log import get_logger
from coffer.por.reserves import ControlProof, ReserveEntry
from coffer.por.verify import reserves_challenge

__all__ = ["SignerClient", "ColdCustody", "CreditedDeposit", "SignerUnavailable", "WALLET_ACCOUNT",
           "GAP_LIMIT", "BATCH_MAX"]

WALLET_ACCOUNT = "cold"
GAP_LIMIT = 1000  # unused receive addresses handed out ahead of the highest funded one, at most
BATCH_MAX = 1000
REDRAW_MAX = REDRAWS_MAX + 1  # draws in all: the first and the bounded redraws
COMPANY_OWNER_PREFIX = "company:"  # deposit-address owner for company capital, e.g. company:operating
REORG_WATCH_BLOCKS = 100  # credited deposits mined this close to the tip are checked for a reorg each scan
log = get_logger("coffer.cold.custody")


class SignerUnavailable(ColdError):
    """A signer did not answer in time."""


class SignerClient(Protocol):
    """How the coordinator talks to one signer (HTTP with mutual TLS, or in-process in tests)."""

    signer_id: int

    def export_key(self) -> dict[str, Any]: ...

    def register(self, descriptor: str, first_addresses: list[str]) -> dict[str, Any]: ...

    def sign(self, bundle: SigningBundle) -> bytes: ...


@dataclass(frozen=True, slots=True)
class CreditedDeposit:
    client_id: str
    address: str
    txid: str
    vout: int
    amount_sats: int
    credited_height: int


def _now_s(now: dt.datetime) -> str:
    return now.isoformat()


class ColdCustody:
    def __init__(self, engine: Engine, chain: BitcoinChain | Callable[[], BitcoinChain], ledger: Ledger,
                 signers: Mapping[int, SignerClient], *,
                 confirmations: int = 3, network: str = "regtest", halted: Callable[[], bool] = lambda: False,
                 audit: AuditLog | None = None, batch_max: int = BATCH_MAX) -> None:
        self._engine = engine
        self._chain_source = chain
        self._ledger = ledger
        self._signers = dict(signers)
        self._confirmations = confirmations
        self._network = network
        self._halted = halted
        self._audit = audit or AuditLog(engine)
        self._batch_max = batch_max

    @property
    def _chain(self) -> BitcoinChain:
        """The chain, opened on first use (reading batches and draws needs no chain)."""
        if callable(self._chain_source) and not isinstance(self._chain_source, BitcoinChain):
            self._chain_source = self._chain_source()
        return self._chain_source

    # -- the wallet ceremony ---------------------------------------------------------------------
    def setup(self, threshold: int, *, now: dt.datetime) -> ColdWallet:
        """Collect each signer's key, build the descriptor, have every signer check and register it."""
        exported = {sid: client.export_key() for sid, client in sorted(self._signers.items())}
        keys = tuple(KeyOrigin(e["fingerprint"], e["path"], e["xpub"]) for e in exported.values())
        wallet = ColdWallet(threshold, keys, self._network)
        first = [wallet.address(RECEIVE, i) for i in range(REGISTRATION_ADDRESSES)]
        registrations = {sid: client.register(wallet.descriptor(RECEIVE), first)
                         for sid, client in sorted(self._signers.items())}
        with self._engine.begin() as conn:
            conn.execute(cold_wallets.insert().values(
                wallet_id=wallet.wallet_id, name=WALLET_ACCOUNT, descriptor=wallet.descriptor(RECEIVE),
                change_descriptor=wallet.descriptor(CHANGE), threshold=threshold, signers=len(keys),
                network=self._network, bsms=wallet.bsms_record(), next_receive_index=0, next_change_index=0,
                created_at=_now_s(now)))
            for sid, export in exported.items():
                conn.execute(cold_signers.insert().values(
                    signer_id=sid, wallet_id=wallet.wallet_id, fingerprint=export["fingerprint"],
                    xpub=export["xpub"], identity_pubkey=export["identity_pubkey"],
                    registration_signature=registrations[sid]["signature"], last_seen=_now_s(now)))
            self._audit.append("coordinator", "cold.wallet_created",
                               {"wallet_id": wallet.wallet_id, "descriptor": wallet.descriptor(RECEIVE),
                                "threshold": threshold, "signers": sorted(exported)}, at=now, connection=conn)
        return wallet

    def wallet(self) -> ColdWallet:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(cold_wallets).where(cold_wallets.c.name == WALLET_ACCOUNT)).first()
        if row is None:
            raise ColdError("no cold wallet: run the ceremony (coffer cold setup)")
        return ColdWallet.from_descriptor(row.descriptor, row.network)

    def bsms(self) -> str:
        with self._engine.connect() as conn:
            return str(conn.execute(sa.select(cold_wallets.c.bsms)).scalar_one())

    # -- deposit addresses -----------------------------------------------------------------------
    def deposit_address(self, client_id: str, *, now: dt.datetime) -> str:
        """The client's own deposit address (one per client, from the receive branch).

        An owner `company:<account>` gets the company's deposit address for its own capital, credited
        to the company book, never to a client."""
        wallet = self.wallet()
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(cold_addresses.c.address).where(cold_addresses.c.client_id == client_id)).first()
            if row is not None:
                return str(row.address)
            query = sa.select(cold_wallets.c.next_receive_index).where(cold_wallets.c.wallet_id == wallet.wallet_id)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            index = int(conn.execute(query).scalar_one())
            funded = conn.execute(sa.select(sa.func.count()).select_from(cold_deposits)).scalar_one()
            if index - int(funded) >= GAP_LIMIT:
                raise ColdError(f"gap limit {GAP_LIMIT} reached: too many unused deposit addresses")
            address = wallet.address(RECEIVE, index)
            conn.execute(cold_wallets.update().where(cold_wallets.c.wallet_id == wallet.wallet_id)
                         .values(next_receive_index=index + 1))
            conn.execute(cold_addresses.insert().values(
                script_hex=wallet.script_pubkey(RECEIVE, index).hex(), wallet_id=wallet.wallet_id, branch=RECEIVE,
                idx=index, address=address, client_id=client_id, created_at=_now_s(now)))
        return address

    def custody_scripts(self) -> dict[bytes, tuple[int, int]]:
        """Every script of the cold wallet handed out so far (deposit and change) -> (branch, index)."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(cold_addresses.c.script_hex, cold_addresses.c.branch, cold_addresses.c.idx))
            return {bytes.fromhex(r.script_hex): (int(r.branch), int(r.idx)) for r in rows}

    # -- deposits --------------------------------------------------------------------------------
    def scan_deposits(self, *, now: dt.datetime) -> list[CreditedDeposit]:
        """Record new deposits and credit those with enough confirmations (never before)."""
        tip = self._chain.tip().height
        with self._engine.connect() as conn:
            owners = {r.script_hex: (r.client_id, r.address) for r in conn.execute(
                sa.select(cold_addresses).where(cold_addresses.c.client_id.is_not(None)))}
            known = {(r.txid, r.vout): r.status for r in conn.execute(sa.select(cold_deposits))}
        if not owners:
            return []
        credited: list[CreditedDeposit] = []
        for utxo in self._chain.unspent([bytes.fromhex(s) for s in owners]):
            client_id, address = owners[utxo.script_pubkey.hex()]
            status = known.get((utxo.txid, utxo.vout))
            if status is None:
                with self._engine.begin() as conn:
                    conn.execute(cold_deposits.insert().values(
                        txid=utxo.txid, vout=utxo.vout, client_id=client_id, address=address,
                        amount_sats=utxo.amount_sats, height=utxo.height, status="pending", seen_at=_now_s(now)))
                status = "pending"
            depth = tip - utxo.height + 1
            if status == "pending" and depth >= self._confirmations:
                credited.append(self._credit(client_id, address, utxo.txid, utxo.vout, utxo.amount_sats, tip, now))
        self._forget_vanished_pending(now)
        self._watch_credited(tip, now)
        return credited

    def _credit(self, client_id: str, address: str, txid: str, vout: int, amount: int, tip: int,
                now: dt.datetime) -> CreditedDeposit:
        custody = AccountKey.custody(WALLET_ACCOUNT, "BTC")
        if client_id.startswith(COMPANY_OWNER_PREFIX):  # the company's own capital, in the company book
            kind, owner = Kind.COMPANY_DEPOSIT, AccountKey.company(client_id[len(COMPANY_OWNER_PREFIX):], "BTC")
        else:
            kind, owner = Kind.DEPOSIT, AccountKey.available(client_id, "BTC")
        transfer = Transfer(
            idempotency_key=f"cold-deposit:{txid}:{vout}", kind=kind,
            postings=(debit(custody, amount), credit(owner, amount)),
            at=now, metadata={"txid": txid, "vout": vout, "address": address})
        self._ledger.apply(transfer, actor="cold.deposits")
        with self._engine.begin() as conn:
            conn.execute(cold_deposits.update().where(
                (cold_deposits.c.txid == txid) & (cold_deposits.c.vout == vout)).values(
                status="credited", credited_height=tip))
            self._audit.append("cold.deposits", "cold.deposit_credited",
                               {"client_id": client_id, "txid": txid, "vout": vout, "amount_sats": amount,
                                "height": tip}, at=now, connection=conn)
        log.info("cold.deposit_credited", client=client_id, txid=txid, amount_sats=amount)
        return CreditedDeposit(client_id, address, txid, vout, amount, tip)

    def _forget_vanished_pending(self, now: dt.datetime) -> None:
        """A pending deposit whose transaction left the chain (a reorg) is dropped, never credited."""
        with self._engine.connect() as conn:
            pending = list(conn.execute(sa.select(cold_deposits).where(cold_deposits.c.status == "pending")))
        for row in pending:
            if self._chain.confirmations(row.txid) == 0:
                with self._engine.begin() as conn:
                    conn.execute(cold_deposits.delete().where(
                        (cold_deposits.c.txid == row.txid) & (cold_deposits.c.vout == row.vout)
                        & (cold_deposits.c.status == "pending")))
                    self._audit.append("cold.deposits", "cold.deposit_reorged",
                                       {"txid": row.txid, "vout": row.vout, "client_id": row.client_id},
                                       at=now, connection=conn)

    def _watch_credited(self, tip: int, now: dt.datetime) -> None:
        """A credited deposit whose transaction left the chain (a reorg deeper than the confirmations)
        cannot be undone here: the credit stands, the deposit is marked `reorged` and an alert raised
        once, and the on-chain check reports the shortfall. If it is mined again it is `credited` again."""
        with self._engine.connect() as conn:
            rows = list(conn.execute(sa.select(cold_deposits).where(
                cold_deposits.c.status.in_(["credited", "reorged"])
                & (cold_deposits.c.height >= tip - REORG_WATCH_BLOCKS))))
        for row in rows:
            on_chain = self._chain.confirmations(row.txid) > 0
            if on_chain == (row.status == "credited"):
                continue
            status, event = ("credited", "cold.deposit_remined") if on_chain else \
                ("reorged", "cold.deposit_reorged_after_credit")
            with self._engine.begin() as conn:
                conn.execute(cold_deposits.update().where(
                    (cold_deposits.c.txid == row.txid) & (cold_deposits.c.vout == row.vout)).values(status=status))
                self._audit.append("cold.deposits", event,
                                   {"txid": row.txid, "vout": row.vout, "client_id": row.client_id,
                                    "amount_sats": int(row.amount_sats), "tip": tip}, at=now, connection=conn)
            if not on_chain:
                log.error("cold.deposit_reorged_after_credit", client=row.client_id, txid=row.txid,
                          amount_sats=int(row.amount_sats))

    def deposits(self) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(cold_deposits).order_by(cold_deposits.c.seen_at))]

    # -- withdrawals -----------------------------------------------------------------------------
    def enqueue(self, request_id: str, client_id: str | None, destination: str, amount_sats: int,
                payment: ApprovedPayment, *, now: dt.datetime) -> None:
        """Queue an approved, attested withdrawal (the client's hold is already in the ledger)."""
        with self._engine.begin() as conn:
            exists = conn.execute(sa.select(cold_withdrawals.c.request_id)
                                  .where(cold_withdrawals.c.request_id == request_id)).first()
            if exists is not None:
                return
            conn.execute(cold_withdrawals.insert().values(
                request_id=request_id, client_id=client_id, destination=destination, amount_sats=amount_sats,
                payment=json.dumps(payment.as_dict(), sort_keys=True), status="queued", created_at=_now_s(now)))
            self._audit.append("cold.pipeline", "cold.withdrawal_queued",
                               {"request_id": request_id, "client_id": client_id, "destination": destination,
                                "amount_sats": amount_sats}, at=now, connection=conn)

    def withdrawal_state(self, request_id: str) -> tuple[str, str | None, str | None] | None:
        """(withdrawal status, batch id, batch status) of a queued withdrawal, or None if never queued."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(cold_withdrawals.c.status, cold_withdrawals.c.batch_id)
                               .where(cold_withdrawals.c.request_id == request_id)).one_or_none()
            if row is None:
                return None
            batch_status = None
            if row.batch_id is not None:
                batch_status = conn.execute(sa.select(cold_batches.c.status).where(
                    cold_batches.c.batch_id == row.batch_id)).scalar()
        return str(row.status), row.batch_id, None if batch_status is None else str(batch_status)

    def cancel_queued(self, request_id: str, *, by: str, now: dt.datetime) -> bool:
        """Take a withdrawal out of the queue if no batch has it yet; False when it is too late."""
        with self._engine.begin() as conn:
            taken = conn.execute(cold_withdrawals.update().where(
                cold_withdrawals.c.request_id == request_id, cold_withdrawals.c.status == "queued")
                .values(status="cancelled")).rowcount
            if taken == 1:
                self._audit.append(by, "cold.withdrawal_cancelled", {"request_id": request_id}, at=now,
                                   connection=conn)
        return taken == 1

    def _cold_utxos(self, wallet: ColdWallet) -> list[Utxo]:
        scripts = self.custody_scripts()
        tip = self._chain.tip().height
        with self._engine.connect() as conn:
            reserved: set[tuple[str, int]] = set()
            for row in conn.execute(sa.select(cold_batches.c.inputs).where(
                    cold_batches.c.status.in_(["sealed", "signed", "broadcast"]))):
                reserved.update((i[0], i[1]) for i in json.loads(row.inputs))
        coins = []
        for utxo in self._chain.unspent(scripts):
            if (utxo.txid, utxo.vout) in reserved or tip - utxo.height + 1 < self._confirmations:
                continue
            branch, index = scripts[utxo.script_pubkey]
            coins.append(Utxo(utxo.txid, utxo.vout, utxo.amount_sats, branch, index))
        return coins

    def seal_batch(self, *, now: dt.datetime) -> str | None:
        """Put queued withdrawals into one PSBT and store it sealed. Returns the batch id."""
        if self._halted():
            return None
        wallet = self.wallet()
        with self._engine.connect() as conn:
            queued = list(conn.execute(sa.select(cold_withdrawals).where(cold_withdrawals.c.status == "queued")
                                       .order_by(cold_withdrawals.c.created_at).limit(self._batch_max)))
            change_index = int(conn.execute(sa.select(cold_wallets.c.next_change_index)).scalar_one())
        if not queued:
            return None
        fee_rate = max(1, self._chain.estimate_fee(6).sat_per_vb_ceil)
        plan = build_batch_psbt(wallet, self._cold_utxos(wallet),
                                [Payment(r.destination, int(r.amount_sats)) for r in queued],
                                fee_rate_sat_vb=fee_rate, change_index=change_index)
        batch_id = f"batch-{now.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
        tip = self._chain.tip()
        unsigned_txid = plan.psbt.tx.txid().hex()
        with self._engine.begin() as conn:
            conn.execute(cold_batches.insert().values(
                batch_id=batch_id, wallet_id=wallet.wallet_id, status="sealed", psbt=plan.psbt.serialize(),
                unsigned_txid=unsigned_txid, tip_hash=tip.hash, fee_sats=plan.fee_sats, change_sats=plan.change_sats,
                change_index=plan.change_index, inputs=json.dumps([[u.txid, u.vout] for u in plan.inputs]),
                created_at=_now_s(now)))
            if plan.change_index is not None:
                conn.execute(cold_wallets.update().values(next_change_index=change_index + 1))
                conn.execute(cold_addresses.insert().values(
                    script_hex=wallet.script_pubkey(CHANGE, change_index).hex(), wallet_id=wallet.wallet_id,
                    branch=CHANGE, idx=change_index, address=wallet.address(CHANGE, change_index), client_id=None,
                    created_at=_now_s(now)))
            moved = conn.execute(cold_withdrawals.update().where(
                cold_withdrawals.c.request_id.in_([r.request_id for r in queued]),
                cold_withdrawals.c.status == "queued").values(status="batched", batch_id=batch_id)).rowcount
            if moved != len(queued):
                # A withdrawal was cancelled (or batched by another coordinator) since we read the
                # queue: roll the whole batch back rather than pay anything not still queued.
                raise ColdError(f"queue changed while sealing ({moved} of {len(queued)} still queued)")
            self._audit.append("cold.pipeline", "cold.batch_sealed",
                               {"batch_id": batch_id, "unsigned_txid": unsigned_txid, "tip_hash": tip.hash,
                                "requests": [r.request_id for r in queued], "fee_sats": plan.fee_sats},
                               at=now, connection=conn)
        return batch_id

    def _draw(self, batch: Any, timed_out: tuple[tuple[int, ...], ...], reason: str, now: dt.datetime) -> Draw:
        draw = draw_quorum(batch_id=batch.batch_id, tip_hash=batch.tip_hash, unsigned_txid=batch.unsigned_txid,
                           signer_ids=tuple(sorted(self._signers)), threshold=self.wallet().threshold,
                           timed_out=timed_out)
        with self._engine.begin() as conn:
            conn.execute(cold_draws.insert().values(batch_id=batch.batch_id, attempt=draw.attempt,
                                                    draw=json.dumps(draw.as_dict()), reason=reason, at=_now_s(now)))
            conn.execute(cold_batches.update().where(cold_batches.c.batch_id == batch.batch_id)
                         .values(draw=json.dumps(draw.as_dict())))
            self._audit.append("cold.pipeline", "cold.quorum_drawn", {**draw.as_dict(), "reason": reason},
                               at=now, connection=conn)
        return draw

    def _headers(self, tip_hash: str) -> tuple[bytes, ...]:
        """The headers up to the draw's tip (at most HEADERS_MAX), for each signer to check it itself."""
        from coffer.cold.tip import HEADERS_MAX

        height = self._chain.block(tip_hash).height
        return tuple(self._chain.raw_block(self._chain.block_hash(h))[:80]
                     for h in range(max(1, height - HEADERS_MAX + 1), height + 1))

    def _bundle(self, batch: Any, draw: Draw) -> SigningBundle:
        with self._engine.connect() as conn:
            rows = list(conn.execute(sa.select(cold_withdrawals.c.payment).where(
                cold_withdrawals.c.batch_id == batch.batch_id).order_by(cold_withdrawals.c.created_at)))
        payments = tuple(ApprovedPayment(p["request"], tuple(p["approvals"]), p["attestation"])
                         for p in (json.loads(r.payment) for r in rows))
        return SigningBundle(batch.wallet_id, batch.batch_id, bytes(batch.psbt), payments, draw,
                             self._headers(draw.tip_hash))

    def sign_batch(self, batch_id: str, *, now: dt.datetime) -> bytes:
        """Ask the drawn quorum; if a nominee does not answer, redraw without it (recorded)."""
        if self._halted():
            raise SignerRefused("a halt is in force", rule="halt")
        batch = self._batch(batch_id)
        invariant(batch.status == "sealed", f"batch {batch_id} is {batch.status}, not sealed")
        earlier = self.draws(batch_id)
        timed_out: tuple[tuple[int, ...], ...] = earlier[-1].timed_out if earlier else ()
        reason = "first draw"
        for attempt in range(len(earlier) - 1 if earlier else 0, REDRAW_MAX):
            if earlier and attempt == earlier[-1].attempt:
                draw = earlier[-1]  # resumed after a restart: the recorded nominees, never a new draw
            else:
                draw = self._draw(batch, timed_out, reason, now)
            bundle = self._bundle(batch, draw)
            signed, silent = [], []
            with ThreadPoolExecutor(max_workers=len(draw.nominated)) as pool:  # ask the nominees at once
                futures = {signer_id: pool.submit(self._signers[signer_id].sign, bundle)
                           for signer_id in draw.nominated}
            for signer_id, future in futures.items():
                try:
                    signed.append(parse_psbt(future.result()))
                except SignerUnavailable:
                    silent.append(signer_id)
            if not silent:
                raw = finalize(combine_partial_signatures(parse_psbt(bytes(batch.psbt)), signed))
                self._store_final(batch_id, raw, now)
                return raw
            timed_out = (*timed_out, tuple(sorted(silent)))
            reason = f"signers {silent} did not answer in time"
            log.warning("cold.redraw", batch=batch_id, silent=silent)
        raise SignerUnavailable(f"batch {batch_id}: no quorum answered after {REDRAW_MAX} draws")

    def prepare_offline(self, batch_id: str, *, now: dt.datetime) -> SigningBundle:
        """For air-gapped signers: draw the quorum (recorded, or the one already recorded) and return the
        bundle to carry to each nominee with the PSBT."""
        if self._halted():
            raise SignerRefused("a halt is in force", rule="halt")
        batch = self._batch(batch_id)
        if batch.status != "sealed":
            raise ColdError(f"batch {batch_id} is {batch.status}, not sealed")
        earlier = self.draws(batch_id)
        draw = earlier[-1] if earlier else self._draw(batch, (), "offline signing", now)
        return self._bundle(batch, draw)

    def submit_signatures(self, batch_id: str, signed: list[bytes], *, now: dt.datetime) -> bytes:
        """Combine partial signatures brought back from offline signers; finalise and store the transaction."""
        batch = self._batch(batch_id)
        if batch.status != "sealed":
            raise ColdError(f"batch {batch_id} is {batch.status}, not sealed")
        raw = finalize(combine_partial_signatures(parse_psbt(bytes(batch.psbt)), [parse_psbt(s) for s in signed]))
        self._store_final(batch_id, raw, now)
        return raw

    def _store_final(self, batch_id: str, raw: bytes, now: dt.datetime) -> None:

        txid = Transaction.parse(raw).txid().hex()
        with self._engine.begin() as conn:
            conn.execute(cold_batches.update().where(cold_batches.c.batch_id == batch_id).values(
                status="signed", raw_tx=raw, txid=txid))
            self._audit.append("cold.pipeline", "cold.batch_signed", {"batch_id": batch_id, "txid": txid},
                               at=now, connection=conn)

    def broadcast_batch(self, batch_id: str, *, now: dt.datetime) -> str:
        """Broadcast the stored final transaction (again, after a crash: the same bytes)."""
        if self._halted():
            raise SignerRefused("a halt is in force", rule="halt")
        batch = self._batch(batch_id)
        invariant(batch.raw_tx is not None, f"batch {batch_id} has no final transaction")
        # The ledger moves before the transaction leaves (idempotent): once broadcast it cannot be
        # recalled, and until it is mined the chain still holds the inputs (reported as in flight).
        self._settle_ledger(batch, now)
        try:
            self._chain.broadcast(bytes(batch.raw_tx))
        except BroadcastRejected as exc:
            if "already" not in str(exc) and self._chain.confirmations(batch.txid) == 0:
                try:
                    self._chain.tx_status(batch.txid)
                except ChainError:
                    raise exc from None
        with self._engine.begin() as conn:
            conn.execute(cold_batches.update().where(cold_batches.c.batch_id == batch_id).values(status="broadcast"))
            self._audit.append("cold.pipeline", "cold.batch_broadcast", {"batch_id": batch_id, "txid": batch.txid},
                               at=now, connection=conn)
        return str(batch.txid)

    def follow_confirmations(self, *, now: dt.datetime) -> list[str]:
        """Settle the ledger for every broadcast batch with enough confirmations."""
        with self._engine.connect() as conn:
            batches = list(conn.execute(sa.select(cold_batches).where(cold_batches.c.status == "broadcast")))
        settled = []
        for batch in batches:
            confirmations = self._chain.confirmations(batch.txid)
            if confirmations < self._confirmations:
                continue
            height = self._chain.tip().height - confirmations + 1
            self._settle(batch, height, now)
            settled.append(str(batch.batch_id))
        return settled

    def _settle(self, batch: Any, height: int, now: dt.datetime) -> None:
        self._settle_ledger(batch, now)  # already done at broadcast; repeating it is a no-op
        with self._engine.begin() as conn:
            conn.execute(cold_batches.update().where(cold_batches.c.batch_id == batch.batch_id).values(
                status="confirmed", confirmed_height=height))
            conn.execute(cold_withdrawals.update().where(cold_withdrawals.c.batch_id == batch.batch_id)
                         .values(status="settled"))
            self._audit.append("cold.pipeline", "cold.batch_confirmed",
                               {"batch_id": batch.batch_id, "txid": batch.txid, "height": height}, at=now,
                               connection=conn)

    def _settle_ledger(self, batch: Any, now: dt.datetime) -> None:
        with self._engine.connect() as conn:
            rows = list(conn.execute(sa.select(cold_withdrawals).where(cold_withdrawals.c.batch_id == batch.batch_id)))
        custody = AccountKey.custody(WALLET_ACCOUNT, "BTC")
        transfers = []
        for row in rows:
            if row.client_id is None:
                continue
            transfers.append(Transfer(
                idempotency_key=f"cold-settle:{row.request_id}", kind=Kind.WITHDRAWAL_SETTLE,
                postings=(debit(AccountKey.held(row.client_id, "BTC"), int(row.amount_sats)),
                          credit(custody, int(row.amount_sats))),
                at=now, metadata={"batch_id": batch.batch_id, "txid": batch.txid}))
        transfers.append(Transfer(
            idempotency_key=f"cold-fee:{batch.batch_id}", kind=Kind.NETWORK_FEE,
            postings=(debit(AccountKey.company("operating", "BTC"), int(batch.fee_sats)),
                      credit(custody, int(batch.fee_sats))),
            at=now, metadata={"batch_id": batch.batch_id, "txid": batch.txid}))
        self._ledger.apply_many(transfers, actor="cold.pipeline")

    def abandon_batch(self, batch_id: str, reason: str, *, now: dt.datetime, requeue: bool = True) -> None:
        """Give up on a batch that was never broadcast. Its withdrawals go back to the queue, or with
        `requeue=False` (a signer refused them) are cancelled and the clients' holds released."""
        batch = self._batch(batch_id)
        if batch.status not in ("sealed", "signed"):
            raise ColdError(f"batch {batch_id} is {batch.status}; only unbroadcast batches can be abandoned")
        if batch.txid and self._chain.confirmations(batch.txid) > 0:
            raise ColdError(f"batch {batch_id} is on chain")
        with self._engine.connect() as conn:
            rows = list(conn.execute(sa.select(cold_withdrawals).where(cold_withdrawals.c.batch_id == batch_id)))
        if not requeue:
            releases = []
            for row in rows:
                hold = self._ledger.transfer(f"hold:{row.request_id}") if row.client_id else None
                if hold is None:
                    continue
                held = AccountKey.held(row.client_id, "BTC")
                amount = sum(p.amount for p in hold.postings if p.account == held)  # the ledger's word, not the row's
                releases.append(Transfer(
                    idempotency_key=f"release:{row.request_id}", kind=Kind.WITHDRAWAL_RELEASE,
                    postings=(debit(held, amount), credit(AccountKey.available(row.client_id, "BTC"), amount)),
                    at=now, metadata={"batch_id": batch_id, "reason": reason[:200]}))
            self._ledger.apply_many(releases, actor="cold.pipeline")
        with self._engine.begin() as conn:
            conn.execute(cold_batches.update().where(cold_batches.c.batch_id == batch_id).values(status="abandoned"))
            conn.execute(cold_withdrawals.update().where(cold_withdrawals.c.batch_id == batch_id).values(
                status="queued" if requeue else "cancelled", batch_id=None if requeue else batch_id))
            self._audit.append("cold.pipeline", "cold.batch_abandoned",
                               {"batch_id": batch_id, "reason": reason, "requeued": requeue}, at=now, connection=conn)

    def run_once(self, *, now: dt.datetime) -> dict[str, Any]:
        """One pass of the pipeline; safe to repeat and to resume after a crash."""
        result: dict[str, Any] = {"credited": [], "sealed": None, "broadcast": [], "settled": []}
        result["credited"] = self.scan_deposits(now=now)
        if not self._halted():
            for batch in self._batches("signed"):
                result["broadcast"].append(self.broadcast_batch(batch, now=now))
            for batch in self._batches("sealed"):
                self.sign_batch(batch, now=now)
                result["broadcast"].append(self.broadcast_batch(batch, now=now))
            sealed = self.seal_batch(now=now)
            if sealed is not None:
                result["sealed"] = sealed
                self.sign_batch(sealed, now=now)
                result["broadcast"].append(self.broadcast_batch(sealed, now=now))
        result["settled"] = self.follow_confirmations(now=now)
        return result

    def _batches(self, status: str) -> list[str]:
        with self._engine.connect() as conn:
            return [str(r.batch_id) for r in conn.execute(
                sa.select(cold_batches.c.batch_id).where(cold_batches.c.status == status))]

    def _batch(self, batch_id: str) -> Any:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(cold_batches).where(cold_batches.c.batch_id == batch_id)).first()
        if row is None:
            raise ColdError(f"no batch {batch_id}")
        return row

    def batch(self, batch_id: str) -> dict[str, Any]:
        row = dict(self._batch(batch_id)._mapping)
        row["psbt"] = bytes(row["psbt"]).hex()
        row["raw_tx"] = bytes(row["raw_tx"]).hex() if row["raw_tx"] is not None else None
        return row

    def pending_deposits(self, height: int) -> list[tuple[str, str, int]]:
        """(script hex, txid:vout, amount) of deposits on chain at or below `height`, not yet credited."""
        with self._engine.connect() as conn:
            rows = list(conn.execute(sa.select(cold_deposits, cold_addresses.c.script_hex).join(
                cold_addresses, cold_addresses.c.address == cold_deposits.c.address).where(
                (cold_deposits.c.status == "pending") & (cold_deposits.c.height <= height))))
        return [(str(r.script_hex), f"{r.txid}:{r.vout}", int(r.amount_sats)) for r in rows]

    def inflight_withdrawals(self, height: int) -> list[tuple[str, int]]:
        """(batch id, amount) of batches the ledger has settled whose transaction is not mined at `height`:
        the chain still holds their inputs. Amount = what leaves custody (payments and fee)."""
        with self._engine.connect() as conn:
            batches = list(conn.execute(sa.select(cold_batches).where(cold_batches.c.status == "broadcast")))
            result = []
            for batch in batches:
                confirmations = self._chain.confirmations(batch.txid)
                mined_at = self._chain.tip().height - confirmations + 1 if confirmations else None
                if mined_at is not None and mined_at <= height:
                    continue
                paid = conn.execute(sa.select(sa.func.sum(cold_withdrawals.c.amount_sats)).where(
                    cold_withdrawals.c.batch_id == batch.batch_id)).scalar() or 0
                result.append((str(batch.batch_id), int(paid) + int(batch.fee_sats)))
        return result

    def reserve_entries(self, *, chain_name: str, height: int, block_hash: str) -> list[Any]:
        """Every funded cold address with its balance and a BIP-322 proof of control made by m signers
        (each signs the challenge for the address itself; the coordinator only assembles)."""

        wallet = self.wallet()
        message = reserves_challenge("BTC", chain_name, height, block_hash)
        balances: dict[bytes, int] = {}
        for utxo in self._chain.unspent(self.custody_scripts()):
            balances[utxo.script_pubkey] = balances.get(utxo.script_pubkey, 0) + utxo.amount_sats
        entries = []
        for script, (branch, index) in sorted(self.custody_scripts().items(), key=lambda item: item[1]):
            if script not in balances:
                continue
            signatures: dict[bytes, bytes] = {}
            for _signer_id, client in sorted(self._signers.items()):
                if len(signatures) >= wallet.threshold:
                    break
                try:
                    answer = client.prove_control(wallet.wallet_id, branch, index, message)  # type: ignore[attr-defined]
                except (SignerUnavailable, SignerRefused):
                    continue
                signatures[bytes.fromhex(answer["pubkey"])] = bytes.fromhex(answer["signature"])
            proof = assemble_p2wsh_multisig(wallet.witness_script(branch, index), message, signatures, full=True)
            descriptor = wallet.address_descriptor(branch, index)
            entries.append(ReserveEntry(wallet.address(branch, index), balances[script], "cold", descriptor,
                                        (ControlProof(f"cold-quorum-{wallet.threshold}-of-{len(wallet.keys)}", proof),)))
        return entries

    def draws(self, batch_id: str) -> list[Draw]:
        with self._engine.connect() as conn:
            return [Draw.from_dict(json.loads(r.draw)) for r in conn.execute(
                sa.select(cold_draws).where(cold_draws.c.batch_id == batch_id).order_by(cold_draws.c.attempt))]
