"""The Taproot hot wallet paid by co-signer processes: accepted by the embedded regtest node."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import coincurve
import pytest
from embit.script import Script
from embit.transaction import SIGHASH, Transaction

from coffer.chain.regtest import RegtestChain
from coffer.hot import HotWallet
from coffer.ledger import AccountKey, Kind, Ledger, Transfer, credit, debit
from coffer.mpc.service import CosignerRefused, SpendNotApproved
from coffer.mpc.service.harness import Cluster, start_cluster
from coffer.mpc.service.messages import Prevout
from coffer.policy import RequestKind
from coffer.testing import wait_until
from coffer.testing.faucet import Faucet


@dataclass
class Env:
    cluster: Cluster
    chain: RegtestChain
    faucet: Faucet
    ledger: Ledger
    wallet: HotWallet


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    home = Path(tmp_path_factory.mktemp("hot-home"))
    cluster = start_cluster(home, range(1, 4))
    chain = RegtestChain.open(home / "chain")
    try:
        cluster.mpc.dkg("hot-btc", "taproot", 2)
        ledger = Ledger(cluster.engine)
        ledger.open_house_accounts(["BTC"], at=_now())
        faucet = Faucet(chain)
        faucet.fund()
        wallet = HotWallet(cluster.engine, chain, ledger, cluster.mpc, key_id="hot-btc", confirmations=1)
        yield Env(cluster, chain, faucet, ledger, wallet)
    finally:
        chain.close()
        cluster.stop()


def _refill(env: Env, amount: int) -> None:
    txid = env.faucet.pay(env.wallet.address(), amount)
    env.chain.mine(1)
    env.wallet.record_refill(txid, amount, now=_now())


def test_hot_address_is_taproot_of_the_group_key(env: Env) -> None:
    """The hot address is a regtest bech32m P2TR address of the tweaked FROST group key."""
    address = env.wallet.address()
    assert address.startswith("bcrt1p")
    assert b"\x51\x20" + env.cluster.mpc.key("hot-btc").taproot_output_key() == env.wallet.script_pubkey()


def test_accelerated_withdrawal_is_accepted_and_settled(env: Env) -> None:
    """A small approved withdrawal is signed by 2-of-3 co-signers, mined by the node and settled in the ledger."""
    _refill(env, 5_000_000)
    ledger = env.ledger
    ledger.open_client("alice", ["BTC"], at=_now())
    ledger.apply(Transfer(idempotency_key="dep-alice", kind=Kind.DEPOSIT, at=_now(), postings=(
        debit(AccountKey.custody("hot", "BTC"), 1_000_000), credit(AccountKey.available("alice", "BTC"), 1_000_000))))
    ledger.apply(Transfer(idempotency_key="hold-alice", kind=Kind.WITHDRAWAL_HOLD, at=_now(), postings=(
        debit(AccountKey.available("alice", "BTC"), 250_000), credit(AccountKey.held("alice", "BTC"), 250_000))))
    custody_before = ledger.balance(AccountKey.custody("hot", "BTC"))
    request = env.cluster.request(env.faucet.address, 250_000, account="alice")
    decision = env.cluster.attest(request)

    payment = env.wallet.dispatch(request, decision, _now())  # the withdrawal desk's hot_dispatch
    assert "broadcast" == payment.status
    assert payment == env.wallet.pay(request, decision, client_id="alice", now=_now())  # once only
    env.chain.mine(1)
    assert 1 == env.chain.confirmations(payment.txid)
    assert [payment.txid] == env.wallet.settle(_now())
    assert 0 == ledger.balance(AccountKey.held("alice", "BTC"))
    assert custody_before - 250_000 - payment.fee_sats == ledger.balance(AccountKey.custody("hot", "BTC"))


def test_signature_verifies_independently_with_coincurve(env: Env) -> None:
    """Each input's BIP-340 signature verifies under the tweaked output key with libsecp256k1."""
    _refill(env, 700_000)
    request = env.cluster.request(env.faucet.address, 120_000)
    payment = env.wallet.pay(request, env.cluster.attest(request), client_id=None, now=_now())
    row = env.wallet._payment(payment.request_digest)
    tx = Transaction.parse(bytes.fromhex(row.signed_tx))
    import json

    prevouts = json.loads(row.prevouts)
    scripts = [Script(bytes.fromhex(p["script_pubkey"])) for p in prevouts]
    values = [p["amount_sats"] for p in prevouts]
    key = coincurve.PublicKeyXOnly(env.wallet.output_key())
    for index, vin in enumerate(tx.vin):
        digest = tx.sighash_taproot(index, scripts, values, sighash=SIGHASH.DEFAULT)
        assert key.verify(vin.witness.items[0], digest)
    env.chain.mine(1)
    assert 1 == env.chain.confirmations(payment.txid)


def test_cosigners_refuse_outputs_other_than_the_approved_ones(env: Env) -> None:
    """A coordinator that swaps the destination in the transaction is refused by the co-signers themselves."""
    _refill(env, 400_000)
    request = env.cluster.request(env.faucet.address, 50_000)
    decision = env.cluster.attest(request)
    _unsigned, prevouts, _fee = env.wallet._build(request)
    attacker = env.cluster.request(env.wallet.address(), 50_000)  # pays somewhere else
    tampered, _, _ = env.wallet._build(attacker)
    key = env.cluster.mpc.key("hot-btc")
    payload = {"tx": tampered.hex(), "prevouts": [{"amount_sats": p["amount_sats"], "script_pubkey": p["script_pubkey"]}
                                                  for p in prevouts],
               "approvals": [{"request": request.to_json(), "decision": decision.to_json()}]}
    with pytest.raises(SpendNotApproved) as refused:
        env.cluster.mpc.sign_session(key, "taproot_spend", payload, [b"\x00" * 32])
    assert "spend.outputs" == refused.value.rule


def _halt_seen(env: Env, halted: bool) -> bool:
    return all(env.cluster.client(c).call("/v1/status", {})["halt_clear"] is not halted for c in (1, 2, 3))


def test_halt_refuses_spend_and_payment_resumes_with_the_same_transaction(env: Env) -> None:
    """Under a halt the co-signers refuse; the stored payment later completes with the very same transaction."""
    _refill(env, 600_000)
    request = env.cluster.request(env.faucet.address, 90_000)
    decision = env.cluster.attest(request)
    env.cluster.notices.halted = True
    try:
        wait_until(lambda: _halt_seen(env, True), timeout=20, what="co-signers see the halt")
        with pytest.raises(CosignerRefused) as refused:
            env.wallet.pay(request, decision, client_id=None, now=_now())
        assert "halt" == refused.value.rule
        built = env.wallet.payment(request.digest_hex)
        assert built is not None and "built" == built.status
    finally:
        env.cluster.notices.halted = False
    wait_until(lambda: _halt_seen(env, False), timeout=20, what="co-signers see the resume")
    paid = env.wallet.pay(request, decision, client_id=None, now=_now())
    assert built.txid == paid.txid
    assert "broadcast" == paid.status
    env.chain.mine(1)
    assert 1 == env.chain.confirmations(paid.txid)


def test_attestation_of_another_request_is_refused(env: Env) -> None:
    """The HSM attestation must be for this very request: co-signers refuse a borrowed one."""
    _refill(env, 300_000)
    attested = env.cluster.request(env.faucet.address, 40_000)
    other = env.cluster.request(env.faucet.address, 41_000)
    unsigned, prevouts, _ = env.wallet._build(other)
    with pytest.raises(CosignerRefused) as refused:
        env.cluster.mpc.sign_taproot_spend("hot-btc", unsigned, [Prevout(p["amount_sats"], bytes.fromhex(
            p["script_pubkey"])) for p in prevouts], [(other, env.cluster.attest(attested))])
    assert "attestation.request_mismatch" == refused.value.rule


def test_request_paid_once_cannot_be_signed_in_another_transaction(env: Env) -> None:
    """After a request was signed in one transaction, a second transaction for it is refused."""
    _refill(env, 300_000)
    _refill(env, 300_000)
    request = env.cluster.request(env.faucet.address, 30_000)
    decision = env.cluster.attest(request)
    env.wallet.pay(request, decision, client_id=None, now=_now())
    unsigned, prevouts, _ = env.wallet._build(request)  # other coins: another transaction
    with pytest.raises(CosignerRefused) as refused:
        env.cluster.mpc.sign_taproot_spend("hot-btc", unsigned, [Prevout(p["amount_sats"], bytes.fromhex(
            p["script_pubkey"])) for p in prevouts], [(request, decision)])
    assert "request.already_signed" == refused.value.rule
    env.chain.mine(1)


def test_sweep_request_kind_is_paid_without_change(env: Env) -> None:
    """A SWEEP (e.g. `mpc rotate`) moves every hot coin to the new key's address, no change output."""
    new_key = env.cluster.mpc.dkg("hot-btc-2", "taproot", 2)
    from coffer.mpc.service import p2tr_address

    destination = p2tr_address(new_key.taproot_output_key())
    coins = env.wallet.coins()
    total = sum(c.amount_sats for c in coins)
    fee = 10 * 200 * len(coins)
    request = env.cluster.request(destination, total - fee, kind=RequestKind.SWEEP, account="company")
    payment = env.wallet.pay(request, env.cluster.attest(request), client_id=None, now=_now())
    env.chain.mine(1)
    assert 1 == env.chain.confirmations(payment.txid)
    assert [] == env.wallet.coins()
    assert total - fee == HotWallet(env.cluster.engine, env.chain, env.ledger, env.cluster.mpc,
                                    key_id="hot-btc-2").balance_sats()
