"""The Ethereum hot wallet end to end: 2-of-3 ECDSA co-signer processes sign; py-evm and a real
hardhat@2 node accept; deposits are credited after confirmations and swept; the ledger settles."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import coincurve
import pytest
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from sqlalchemy.engine import Engine

from coffer.chain import EthereumChain
from coffer.chain.ethereum import EmbeddedEthereum, JsonRpcEthereum
from coffer.db import make_engine, migrate, sqlite_url
from coffer.eth import DEPOSIT_CUSTODY, HOT_CUSTODY, EthHotWallet, EthPaymentRefused
from coffer.ledger import AccountKey, Kind, Ledger, Transfer, credit, debit
from coffer.mpc.ecdsa.curve import point_bytes
from coffer.mpc.ecdsa_service.harness import EcdsaCluster
from coffer.policy import RequestKind
from tests.eth.conftest import fund

DESTINATION = "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"
ETHER = 10**18
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def _wallet(tmp_path: Path, chain: EthereumChain, cluster: EcdsaCluster,
            engine: Engine | None = None) -> tuple[EthHotWallet, Ledger]:
    if engine is None:
        engine = make_engine(sqlite_url(tmp_path / "coordinator.db"))
        migrate(engine)
    ledger = Ledger(engine)
    ledger.open_client("alice", ["ETH"], at=NOW)
    wallet = EthHotWallet(engine, chain, ledger, cluster.coordinator, key_id="hot-eth", confirmations=3)
    wallet.open_ledger_accounts(NOW)
    return wallet, ledger


def _withdraw(wallet: EthHotWallet, ledger: Ledger, cluster: EcdsaCluster, chain: EthereumChain,
              amount_wei: int) -> None:
    """Hold alice's funds, pay an attested request, check the raw transaction, mine, settle."""
    request = cluster.request(DESTINATION, amount_wei, account="alice")
    ledger.apply(Transfer(f"hold:{request.digest_hex}", Kind.WITHDRAWAL_HOLD,
                          (debit(AccountKey.available("alice", "ETH"), amount_wei),
                           credit(AccountKey.held("alice", "ETH"), amount_wei)), NOW))
    before = chain.balance_wei(DESTINATION)
    payment = wallet.pay(request, cluster.attest(request), client_id="alice", now=NOW)
    assert "broadcast" == payment.status
    again = wallet.pay(request, cluster.attest(request), client_id="alice", now=NOW)
    assert payment.tx_hash == again.tx_hash
    row = wallet._row(request.digest_hex)
    raw = bytes.fromhex(row.raw_tx)
    assert wallet.address() == Account.recover_transaction(raw)
    signed = cluster.coordinator.key("hot-eth")
    typed = TypedTransaction.from_bytes(HexBytes(raw))
    v, r, s = typed.vrs()
    signature = coincurve.ecdsa.cdata_to_der(coincurve.ecdsa.deserialize_compact(
        r.to_bytes(32, "big") + s.to_bytes(32, "big")))
    assert coincurve.PublicKey(signed.group_public_key).verify(bytes(signature), typed.hash(), hasher=None)
    chain.mine(3)
    assert [payment.tx_hash] == wallet.settle(NOW)
    assert before + amount_wei == chain.balance_wei(DESTINATION)
    assert 0 == ledger.balance(AccountKey.held("alice", "ETH"))
    assert chain.balance_wei(wallet.address()) == ledger.balance(AccountKey.custody(HOT_CUSTODY, "ETH"))


def test_deposit_credited_after_confirmations_swept_then_withdrawn_on_py_evm(
        tmp_path: Path, cluster: EcdsaCluster, engine: Engine) -> None:
    """Deposit → credited at 3 confirmations → swept to the hot address → a withdrawal paid, all on
    py-evm, with the coordinator's tables on SQLite and on PostgreSQL."""
    chain = EmbeddedEthereum()
    wallet, ledger = _wallet(tmp_path, chain, cluster, engine)
    address = wallet.deposit_address("alice", now=NOW)
    assert address == wallet.deposit_address("alice", now=NOW)
    assert cluster.coordinator.key("hot-eth").deposit_address(0) == address
    assert address not in (wallet.deposit_address("bob", now=NOW), wallet.address())

    deposit_tx = fund(chain, address, 2 * ETHER)
    assert [] == wallet.scan_deposits(NOW)
    chain.mine(2)
    credited = wallet.scan_deposits(NOW)
    assert [(deposit_tx, "alice", 2 * ETHER)] == [(d.tx_hash, d.client_id, d.amount_wei) for d in credited]
    assert [] == wallet.scan_deposits(NOW)
    assert 2 * ETHER == ledger.balance(AccountKey.available("alice", "ETH"))

    sweeps = wallet.sweep_deposits(NOW)
    assert [("deposit_sweep", address, wallet.address())] == [(p.kind, p.sender, p.destination) for p in sweeps]
    assert [] == wallet.sweep_deposits(NOW)  # one sweep in flight per address
    chain.mine(3)
    assert [sweeps[0].tx_hash] == wallet.settle(NOW)
    assert sweeps[0].value_wei == chain.balance_wei(wallet.address())
    assert chain.balance_wei(wallet.address()) == ledger.balance(AccountKey.custody(HOT_CUSTODY, "ETH"))
    assert chain.balance_wei(address) == ledger.balance(AccountKey.custody(DEPOSIT_CUSTODY, "ETH"))

    _withdraw(wallet, ledger, cluster, chain, ETHER // 10)
    assert 2 * ETHER - ETHER // 10 == ledger.balance(AccountKey.available("alice", "ETH"))


def test_withdrawal_accepted_by_hardhat_over_json_rpc(tmp_path: Path, cluster: EcdsaCluster,
                                                      hardhat_url: str) -> None:
    """The same co-signers' withdrawal is accepted and mined by an external hardhat@2 node."""
    chain = JsonRpcEthereum(hardhat_url)
    wallet, ledger = _wallet(tmp_path, chain, cluster)
    funding = fund(chain, wallet.address(), ETHER)
    wallet.record_funding(funding, ETHER, now=NOW)
    ledger.apply(Transfer("alice-credit", Kind.ADJUSTMENT, (debit(AccountKey.company("operating", "ETH"), ETHER),
                                                            credit(AccountKey.available("alice", "ETH"), ETHER)),
                          NOW, reason="test credit"))
    _withdraw(wallet, ledger, cluster, chain, ETHER // 10)


def test_wallet_refuses_other_assets_and_kinds(tmp_path: Path, cluster: EcdsaCluster) -> None:
    """A BTC request or a refill is never paid by the Ethereum hot wallet."""
    wallet, _ = _wallet(tmp_path, EmbeddedEthereum(), cluster)
    refill = cluster.request(DESTINATION, ETHER, kind=RequestKind.REFILL)
    with pytest.raises(EthPaymentRefused):  # refused before the decision is even looked at
        wallet.pay(refill, None, client_id=None, now=NOW)  # type: ignore[arg-type]
    bitcoin = dataclasses.replace(cluster.request(DESTINATION, 1000), asset="BTC")
    with pytest.raises(EthPaymentRefused):
        wallet.pay(bitcoin, None, client_id="alice", now=NOW)  # type: ignore[arg-type]


def test_public_derivation_matches_the_tweaked_key(cluster: EcdsaCluster) -> None:
    """A deposit address is the address of group key + tweak·G, computed without any co-signer."""
    key = cluster.coordinator.key("hot-eth")
    derivation = key.derive(7)
    tweaked = coincurve.PublicKey.combine_keys([coincurve.PublicKey(key.group_public_key),
                                                coincurve.PublicKey.from_secret(derivation.tweak.to_bytes(32, "big"))])
    assert derivation.public_key == point_bytes(tweaked)


def test_broadcast_failure_resumes_the_same_signed_transaction(tmp_path: Path, cluster: EcdsaCluster) -> None:
    """If the node is down after signing, the payment stays "signed"; the same request later broadcasts
    that same transaction (no second signature, no second payment)."""
    from coffer.chain.errors import ChainUnavailable

    chain = EmbeddedEthereum()
    wallet, ledger = _wallet(tmp_path, chain, cluster)
    fund(chain, wallet.address(), ETHER)
    request = cluster.request(DESTINATION, ETHER // 20, account="alice")
    decision = cluster.attest(request)
    ledger.apply(Transfer("alice-credit", Kind.ADJUSTMENT, (debit(AccountKey.company("operating", "ETH"), ETHER // 20),
                                                            credit(AccountKey.held("alice", "ETH"), ETHER // 20)),
                          NOW, reason="test credit"))
    real_send = chain.send_raw_transaction

    def down(raw: bytes) -> str:
        raise ChainUnavailable("node down")

    chain.send_raw_transaction = down  # type: ignore[method-assign]
    with pytest.raises(ChainUnavailable):
        wallet.pay(request, decision, client_id="alice", now=NOW)
    stored = wallet.payment(request.digest_hex)
    assert stored is not None and "signed" == stored.status
    chain.send_raw_transaction = real_send  # type: ignore[method-assign]
    paid = wallet.pay(request, decision, client_id="alice", now=NOW)
    assert ("broadcast", stored.tx_hash) == (paid.status, paid.tx_hash)
    chain.mine(3)
    assert [paid.tx_hash] == wallet.settle(NOW)
    assert 1 == chain.nonce(wallet.address())
