"""Crash points of the cold withdrawal pipeline: the coordinator dies right after each durable
step (deterministic fault injection, one thread, a chain we control); a fresh coordinator on the
same database resumes. Nothing is paid twice, nothing is lost, the ledger equals the chain."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from coffer.chain.regtest import RegtestChain
from coffer.cold.custody import ColdCustody
from coffer.ledger import AccountKey, Ledger
from coffer.testing.faucet import Faucet

from .conftest import NOW, SignerSet
from .test_custody import DEST, LocalSigner, _withdraw


class SimulatedCrash(BaseException):
    """Stands for kill -9: not an Exception, so no handler in the pipeline can swallow it."""


def _crash_after(obj: Any, name: str) -> Callable[[], None]:
    original = getattr(obj, name)

    def crashing(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise SimulatedCrash(name)

    setattr(obj, name, crashing)
    return lambda: setattr(obj, name, original)


CRASH_POINTS = ["seal_batch", "_draw", "_store_final", "broadcast", "apply_many", "_settle"]


@pytest.fixture
def pipeline(signer_set: SignerSet, engine: Engine, tmp_path: Path) -> Iterator[dict[str, Any]]:
    chain = RegtestChain.open(tmp_path / "chain")
    ledger = Ledger(engine)
    ledger.open_house_accounts(["BTC"], at=NOW)
    clients = {s.signer_id: LocalSigner(s) for s in signer_set.signers}
    custody = ColdCustody(engine, chain, ledger, clients, confirmations=3)
    custody.setup(3, now=NOW)
    faucet = Faucet(chain)
    faucet.fund()
    ledger.open_client("zoe", ["BTC"], at=NOW)
    faucet.pay(custody.deposit_address("zoe", now=NOW), 9_000_000)
    faucet.mine(3)
    custody.scan_deposits(now=NOW)
    _withdraw(custody, ledger, "zoe", "wz", 2_000_000)
    signer_set.guard.approved["wz"] = (DEST, 2_000_000)
    yield {"engine": engine, "chain": chain, "ledger": ledger, "clients": clients, "custody": custody,
           "faucet": faucet}
    chain.close()


def _payments_to_dest(chain: RegtestChain) -> int:
    from coffer.chain.descriptors import address_to_script

    return sum(u.amount_sats for u in chain.unspent([address_to_script(DEST)]))


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_coordinator_crash_after_each_durable_step_pays_exactly_once(pipeline: dict[str, Any], point: str) -> None:
    """Kill the coordinator right after `point`; a restarted one finishes the batch: one payment, ledger = chain."""
    custody: ColdCustody = pipeline["custody"]
    target = {"broadcast": pipeline["chain"], "apply_many": pipeline["ledger"]}.get(point, custody)
    restore = _crash_after(target, point)
    with pytest.raises(SimulatedCrash):
        for _ in range(3):
            custody.run_once(now=NOW)
            pipeline["faucet"].mine(3)
    restore()
    restarted = ColdCustody(pipeline["engine"], pipeline["chain"], Ledger(pipeline["engine"]), pipeline["clients"],
                            confirmations=3)
    for _ in range(3):
        restarted.run_once(now=NOW)
        pipeline["faucet"].mine(3)
    restarted.run_once(now=NOW)
    ledger: Ledger = pipeline["ledger"]
    assert 2_000_000 == _payments_to_dest(pipeline["chain"])
    assert 0 == ledger.balance(AccountKey.held("zoe", "BTC"))
    assert 7_000_000 == ledger.balance(AccountKey.available("zoe", "BTC"))
    on_chain = sum(u.amount_sats for u in pipeline["chain"].unspent(restarted.custody_scripts()))
    assert on_chain == ledger.balance(AccountKey.custody("cold", "BTC"))
    ledger.check_consistency()


def test_deposit_scan_crash_never_credits_twice(pipeline: dict[str, Any]) -> None:
    """Kill the coordinator after the ledger credit but before the deposit row is marked: no second credit."""
    custody: ColdCustody = pipeline["custody"]
    ledger: Ledger = pipeline["ledger"]
    ledger.open_client("yan", ["BTC"], at=NOW)
    pipeline["faucet"].pay(custody.deposit_address("yan", now=NOW), 3_000_000)
    pipeline["faucet"].mine(3)
    restore = _crash_after(ledger, "apply")
    with pytest.raises(SimulatedCrash):
        custody.scan_deposits(now=NOW)
    restore()
    restarted = ColdCustody(pipeline["engine"], pipeline["chain"], Ledger(pipeline["engine"]), pipeline["clients"],
                            confirmations=3)
    restarted.scan_deposits(now=NOW)
    restarted.scan_deposits(now=NOW)
    assert 3_000_000 == ledger.balance(AccountKey.available("yan", "BTC"))


CRASH_SCENARIOS = 100


@pytest.mark.slow
def test_one_hundred_random_crash_points(signer_set: SignerSet, sqlite_url: str, tmp_path: Path) -> None:
    """100 withdrawals, each with the coordinator killed at a random durable step and on a random call;
    after every restart: paid exactly once, holds cleared, ledger equals chain, ledger consistent."""
    import random

    from coffer.db import make_engine, migrate

    engine = make_engine(sqlite_url)
    migrate(engine)
    chain = RegtestChain.open(tmp_path / "chain-random")
    ledger = Ledger(engine)
    ledger.open_house_accounts(["BTC"], at=NOW)
    clients = {s.signer_id: LocalSigner(s) for s in signer_set.signers}
    custody = ColdCustody(engine, chain, ledger, clients, confirmations=1)
    custody.setup(3, now=NOW)
    faucet = Faucet(chain)
    faucet.fund()
    ledger.open_client("rita", ["BTC"], at=NOW)
    faucet.pay(custody.deposit_address("rita", now=NOW), 400_000_000)
    faucet.mine(1)
    custody.scan_deposits(now=NOW)
    rng = random.Random(20261127)
    paid = 0
    crashes = 0
    for scenario in range(CRASH_SCENARIOS):
        request_id = f"r{scenario}"
        amount = 100_000 + rng.randrange(100_000)
        _withdraw(custody, ledger, "rita", request_id, amount)
        signer_set.guard.approved[request_id] = (DEST, amount)
        point = rng.choice(CRASH_POINTS)
        target = {"broadcast": chain, "apply_many": custody._ledger}.get(point, custody)
        restore = _crash_after(target, point)
        try:
            for _ in range(3):
                custody.run_once(now=NOW)
                faucet.mine(1)
        except SimulatedCrash:
            crashes += 1
        finally:
            restore()
        custody = ColdCustody(engine, chain, Ledger(engine), clients, confirmations=1)  # the restart
        for _ in range(3):
            custody.run_once(now=NOW)
            faucet.mine(1)
        paid += amount
        assert paid == _payments_to_dest(chain), f"scenario {scenario} crashed after {point}"
        assert 0 == ledger.balance(AccountKey.held("rita", "BTC"))
        on_chain = sum(u.amount_sats for u in chain.unspent(custody.custody_scripts()))
        assert on_chain == ledger.balance(AccountKey.custody("cold", "BTC"))
    assert CRASH_SCENARIOS == crashes, "every scenario must actually crash"
    ledger.check_consistency()
    chain.close()
