"""Chain reorganisations of up to 6 blocks against cold custody deposits, withdrawals and the on-chain
check, on the embedded regtest node: longer forks are built block by block and the kernel switches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from embit import ec, script
from embit.script import Script, Witness
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput
from sqlalchemy.engine import Engine

from coffer.audit import AuditLog
from coffer.chain.regtest import RegtestChain
from coffer.chain.regtest.wire import Tx, parse_tx, sha256d
from coffer.cold.custody import ColdCustody
from coffer.ledger import AccountKey, Ledger
from coffer.recon import (
    CustodyScript,
    HaltSwitch,
    InflightWithdrawal,
    OnchainSource,
    PendingDeposit,
    Reconciler,
    bitcoin_holdings,
    check_onchain,
    ledger_custody,
)
from coffer.testing.faucet import Faucet

from .conftest import NOW, SignerSet
from .test_custody import DEST, LocalSigner, _withdraw

FAUCET_KEY = ec.PrivateKey((0xFA0CE7).to_bytes(32, "big"))  # coffer.testing.faucet.Faucet's default seed
FORK_SCRIPT = bytes.fromhex("0014" + "42" * 20)  # pays the fork's coinbases somewhere no test looks
CONFIRMATIONS = 3
REORG_DEPTH_MAX = 6  # issue 13: chain reorgs up to 6 blocks


class ReorgEnv:
    def __init__(self, custody: ColdCustody, chain: RegtestChain, ledger: Ledger, faucet: Faucet,
                 switch: HaltSwitch, audit: AuditLog, signer_set: SignerSet) -> None:
        self.custody, self.chain, self.ledger, self.faucet = custody, chain, ledger, faucet
        self.switch, self.audit, self.signer_set = switch, audit, signer_set

    def events(self, name: str) -> list[dict[str, Any]]:
        return [dict(e.payload) for e in self.audit.events(event=name)]


@pytest.fixture
def env(signer_set: SignerSet, engine: Engine, tmp_path: Path) -> Iterator[ReorgEnv]:
    chain = RegtestChain.open(tmp_path / "chain")
    ledger = Ledger(engine)
    ledger.open_house_accounts(["BTC"], at=NOW)
    switch = HaltSwitch(engine, quorum=1)
    audit = AuditLog(engine)
    custody = ColdCustody(engine, chain, ledger, {s.signer_id: LocalSigner(s) for s in signer_set.signers},
                          confirmations=CONFIRMATIONS, halted=switch.is_halted, audit=audit)
    faucet = Faucet(chain)
    faucet.fund()
    custody.setup(3, now=NOW)
    yield ReorgEnv(custody, chain, ledger, faucet, switch, audit, signer_set)
    chain.close()


def _onchain_source(env: ReorgEnv) -> OnchainSource:
    """The on-chain check's input wired to cold custody the way coffer.demo wires it (cold part only)."""
    custody = env.custody
    return OnchainSource(
        scripts=lambda: [CustodyScript("BTC", "cold", s.hex()) for s in custody.custody_scripts()],
        holdings={"BTC": lambda wanted: bitcoin_holdings(env.chain, wanted)},
        ledger_view=lambda assets: ledger_custody(env.ledger, assets),
        pending=lambda asset, height: [PendingDeposit("BTC", "cold", script_hex, reference, amount)
                                       for script_hex, reference, amount in custody.pending_deposits(height)],
        inflight=lambda asset, height: [InflightWithdrawal("BTC", "cold", batch, amount)
                                        for batch, amount in custody.inflight_withdrawals(height)])


def _conflict(env: ReorgEnv, txid: str) -> Tx:
    """A transaction paying the faucet coin that `txid` (still unmined) spends back to the faucet."""
    node = env.chain.node
    tx, _block = node.find_transaction(bytes.fromhex(txid)[::-1])
    [txin] = tx.inputs
    coin = node.coin((txin.prev_txid, txin.prev_vout))
    assert coin is not None and env.faucet.script_pubkey == coin.script_pubkey
    spend = Transaction(version=2, vin=[TransactionInput(txin.prev_txid[::-1], txin.prev_vout)],
                        vout=[TransactionOutput(coin.value_sats - 1_000, Script(env.faucet.script_pubkey))])
    public = FAUCET_KEY.get_public_key()
    digest = spend.sighash_segwit(0, script.p2pkh(public), coin.value_sats)
    spend.vin[0].witness = Witness([FAUCET_KEY.sign(digest).serialize() + bytes([SIGHASH.ALL]), public.sec()])
    return parse_tx(bytes(spend.serialize()))


def _reorg(env: ReorgEnv, depth: int, first_txs: Sequence[Tx] = ()) -> None:
    """Replace the top `depth` blocks with a fork one block longer; its first block carries `first_txs`."""
    node = env.chain.node
    height = node.height
    parent = node.active_hash(height - depth)
    replaced = [node.active_hash(h) for h in range(height - depth + 1, height + 1)]
    for position in range(depth + 1):
        txs = list(first_txs) if position == 0 else []
        raw = node.build_block(FORK_SCRIPT, txs, parent=parent, fees_sats=0)
        assert node.submit_block(raw) in (None, "inconclusive")
        parent = sha256d(raw[:80])
    assert (parent, height + 1) == (node.best_hash, node.height)
    assert not any(node.is_active(block) for block in replaced)


def _deposit(env: ReorgEnv, client: str, amount_sats: int) -> tuple[str, str]:
    env.ledger.open_client(client, ["BTC"], at=NOW)
    address = env.custody.deposit_address(client, now=NOW)
    return address, env.faucet.pay(address, amount_sats)


# every depth on SQLite; the deepest also on PostgreSQL (the chain side is the same, setups are slower)
@pytest.mark.parametrize(("engine", "depth"),
                         [*(("sqlite", d) for d in range(1, REORG_DEPTH_MAX + 1)), ("postgresql", REORG_DEPTH_MAX)],
                         indirect=["engine"])
def test_reorg_before_credit_with_double_spend_never_credits(env: ReorgEnv, depth: int) -> None:
    """A deposit seen at 1-2 confirmations whose block a `depth`-block fork replaces with a double
    spend is dropped from pending and never credited, however long the new chain grows."""
    seen_at = min(depth, CONFIRMATIONS - 1)
    env.faucet.mine(depth - seen_at)  # blocks below the deposit that the fork also replaces
    _address, txid = _deposit(env, "bob", 1_000_000)
    double_spend = _conflict(env, txid)
    env.faucet.mine(seen_at)
    assert [] == env.custody.scan_deposits(now=NOW)
    assert [(txid, "pending")] == [(d["txid"], d["status"]) for d in env.custody.deposits()]
    assert seen_at == env.chain.confirmations(txid)
    _reorg(env, depth, [double_spend])
    assert 0 == env.chain.confirmations(txid)
    assert depth + 1 == env.chain.confirmations(double_spend.txid_hex)
    assert [] == env.custody.scan_deposits(now=NOW)
    assert [] == env.custody.deposits()
    assert [txid] == [e["txid"] for e in env.events("cold.deposit_reorged")]
    env.faucet.mine(CONFIRMATIONS + 1)
    assert [] == env.custody.scan_deposits(now=NOW)
    assert [] == env.custody.deposits()
    assert 0 == env.ledger.balance(AccountKey.available("bob", "BTC"))
    assert [] == env.events("cold.deposit_credited")
    assert check_onchain(_onchain_source(env)()).ok


def test_reorg_after_credit_alerts_and_halts_on_the_onchain_mismatch(env: ReorgEnv) -> None:
    """A deposit credited at 3 confirmations and then removed by a 6-block reorg (double spent) raises
    `cold.deposit_reorged_after_credit` once; the on-chain check reports the shortfall and halts."""
    env.faucet.mine(REORG_DEPTH_MAX - CONFIRMATIONS)
    _address, txid = _deposit(env, "carol", 2_000_000)
    double_spend = _conflict(env, txid)
    env.faucet.mine(CONFIRMATIONS)
    assert [txid] == [c.txid for c in env.custody.scan_deposits(now=NOW)]
    assert 2_000_000 == env.ledger.balance(AccountKey.available("carol", "BTC"))
    reconciler = Reconciler(env.switch, onchain=_onchain_source(env))
    assert "ok" == reconciler.run_onchain().status
    _reorg(env, REORG_DEPTH_MAX, [double_spend])
    assert 0 == env.chain.confirmations(txid)
    assert [] == env.custody.scan_deposits(now=NOW)
    assert [] == env.custody.scan_deposits(now=NOW)  # the alert is raised once, not on every scan
    alerts = env.events("cold.deposit_reorged_after_credit")
    assert [(txid, "carol", 2_000_000)] == [(a["txid"], a["client_id"], a["amount_sats"]) for a in alerts]
    assert ["reorged"] == [d["status"] for d in env.custody.deposits()]
    assert 2_000_000 == env.ledger.balance(AccountKey.available("carol", "BTC"))  # a credit is never undone
    result = check_onchain(_onchain_source(env)())
    assert not result.ok
    [line] = [w for w in result.wallets if ("BTC", "cold") == (w.asset, w.wallet)]
    assert (2_000_000, 0, -2_000_000) == (line.ledger_custody, line.chain_holdings, line.difference)
    assert {"custody_balance", "liabilities_exceed_custody"} == {m.kind for m in result.mismatches}
    assert not env.switch.is_halted()
    assert "mismatch" == reconciler.run_onchain().status
    assert env.switch.is_halted()
    assert "onchain_mismatch" == env.switch.history(limit=1)[0].cause
    assert None is env.custody.run_once(now=NOW)["sealed"]  # the cold pipeline stops under the halt


@pytest.mark.parametrize(("mined", "depth"), [(CONFIRMATIONS - 1, CONFIRMATIONS - 1),
                                              (CONFIRMATIONS, REORG_DEPTH_MAX)],
                         ids=["before-settlement", "after-settlement"])
def test_withdrawal_reorged_out_and_remined_settles_once(env: ReorgEnv, mined: int, depth: int) -> None:
    """A broadcast batch whose transaction a reorg sends back to the mempool is mined again and
    settles exactly once; the on-chain check balances before the reorg and after re-mining."""
    _deposit(env, "dave", 5_000_000)
    env.faucet.pay(env.custody.deposit_address("company:operating", now=NOW), 100_000)  # pays the fee
    env.faucet.mine(CONFIRMATIONS)
    env.custody.scan_deposits(now=NOW)
    _withdraw(env.custody, env.ledger, "dave", "w1", 1_200_000)
    env.signer_set.guard.approved["w1"] = (DEST, 1_200_000)
    env.faucet.mine(depth - mined)
    result = env.custody.run_once(now=NOW)
    batch_id, [txid] = result["sealed"], result["broadcast"]
    env.faucet.mine(mined)
    settled = env.custody.run_once(now=NOW)["settled"]
    assert ([batch_id] if mined >= CONFIRMATIONS else []) == settled
    assert check_onchain(_onchain_source(env)()).ok
    _reorg(env, depth)
    assert 0 == env.chain.confirmations(txid)
    assert txid == env.chain.tx_status(txid).txid  # back in the mempool, still valid
    assert [] == env.custody.run_once(now=NOW)["settled"]
    during = check_onchain(_onchain_source(env)())
    if mined < CONFIRMATIONS:  # still broadcast: listed as in flight, so the check balances
        assert during.ok
    else:  # settled, then reorganised out (issue 6): the chain holds the inputs again, a mismatch
        assert [("custody_balance", "BTC/cold")] == [(m.kind, m.subject) for m in during.mismatches]
    env.faucet.mine(CONFIRMATIONS)
    assert CONFIRMATIONS == env.chain.confirmations(txid)
    later = env.custody.run_once(now=NOW)["settled"] + env.custody.run_once(now=NOW)["settled"]
    assert ([] if mined >= CONFIRMATIONS else [batch_id]) == later
    assert 1 == len(env.events("cold.batch_confirmed"))
    assert "confirmed" == env.custody.batch(batch_id)["status"]
    assert 3_800_000 == env.ledger.balance(AccountKey.available("dave", "BTC"))
    assert 0 == env.ledger.balance(AccountKey.held("dave", "BTC"))
    on_chain = sum(u.amount_sats for u in env.chain.unspent(env.custody.custody_scripts()))
    assert on_chain == env.ledger.balance(AccountKey.custody("cold", "BTC"))
    assert check_onchain(_onchain_source(env)()).ok
    env.ledger.check_consistency()


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_credited_deposit_reorged_out_and_remined_is_credited_once(env: ReorgEnv) -> None:
    """A credited deposit that a 6-block reorg sends back to the mempool raises one alert, is marked
    `credited` again once re-mined (`cold.deposit_remined`), and is never credited twice."""
    env.faucet.mine(REORG_DEPTH_MAX - CONFIRMATIONS)
    _address, txid = _deposit(env, "erin", 2_000_000)
    env.faucet.mine(CONFIRMATIONS)
    assert [txid] == [c.txid for c in env.custody.scan_deposits(now=NOW)]
    _reorg(env, REORG_DEPTH_MAX)
    assert 0 == env.chain.confirmations(txid)
    assert [] == env.custody.scan_deposits(now=NOW)
    assert ["reorged"] == [d["status"] for d in env.custody.deposits()]
    assert not check_onchain(_onchain_source(env)()).ok
    env.faucet.mine(1)
    assert 1 == env.chain.confirmations(txid)
    assert [] == env.custody.scan_deposits(now=NOW)
    assert [] == env.custody.scan_deposits(now=NOW)
    assert ["credited"] == [d["status"] for d in env.custody.deposits()]
    assert [txid] == [e["txid"] for e in env.events("cold.deposit_reorged_after_credit")]
    assert [txid] == [e["txid"] for e in env.events("cold.deposit_remined")]
    assert [txid] == [e["txid"] for e in env.events("cold.deposit_credited")]
    assert 2_000_000 == env.ledger.balance(AccountKey.available("erin", "BTC"))
    assert check_onchain(_onchain_source(env)()).ok
    env.ledger.check_consistency()
