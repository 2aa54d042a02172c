"""Benchmark: 1,000 approved withdrawals → one batched PSBT → 3-of-5 signatures by signer processes
over mutual TLS → broadcast → confirmed on the embedded regtest node → ledger settled.

Baseline in the same run: the same pipeline with one withdrawal per batch (10 batches, scaled to
1,000). Target: ≤ 10 s for the batched 1,000. Last line: `cold_batch_withdrawals=1000 seconds=<S>`.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from coffer.chain.regtest import RegtestChain
from coffer.cold.service import signer_directory
from coffer.coordinator import Coordinator
from coffer.home import init_home
from coffer.ledger import AccountKey
from coffer.policy.approval import sign_approval
from coffer.policy.roles import Operator, OperatorKey, Role
from coffer.testing import ServiceProcess
from coffer.testing.faucet import Faucet
from coffer.testing.processes import port_open
from coffer.testing.tokens import process_softhsm_conf
from coffer.withdrawals import WithdrawalDesk
from verdict import at_most, verdict

WITHDRAWALS = 1000
CLIENTS = 100
AMOUNT_SATS = 200_000
BASELINE_BATCHES = 10
DEST = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"
APPROVER = OperatorKey(b"\x31" * 32)

TARGET_SECONDS = at_most("cold batch of 1,000 withdrawals, signed by 3-of-5 signer processes, confirmed <= 10 s", 10.0)  # issue 6


def _base() -> int:
    while True:
        base = random.randint(20_000, 60_000)
        if not any(port_open(base + i) for i in range(8)):
            return base


def _site(home: Path) -> tuple[Coordinator, list[ServiceProcess], Faucet, WithdrawalDesk]:
    base = _base()
    (home / "coffer.toml").write_text(
        f'[hsm]\nsofthsm_conf = "{process_softhsm_conf()}"\ntoken_label = "bench-{random.randrange(1 << 30)}"\n'
        f"[cold]\nsigner_port_base = {base}\n[web]\nnotice_port = {base + 6}\n")
    init_home(home)
    chain = RegtestChain.open(home / "chain")
    coordinator = Coordinator.open(home, bitcoin=chain)
    now = dt.datetime.now(dt.UTC)
    coordinator.policy.bootstrap_default(now=now)
    coordinator.policy.add_operator(Operator("bob", frozenset({Role.APPROVER}), APPROVER.public_key), by="bench",
                                    now=now)
    coordinator.start_notice_server()
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    signers = [ServiceProcess(f"signer-{i}", [sys.executable, "-m", "coffer.cli", "signer", "--id", str(i), "--home",
                                              str(home)], workdir=home / "logs", port=base + i, env=env,
                              ready_timeout_s=60).start() for i in coordinator.signer_ids()]
    coordinator.cold.setup(3, now=now)
    pins = coordinator.signer_pins()
    for signer_id in coordinator.signer_ids():
        pins.save(signer_directory(home, signer_id))
    faucet = Faucet(chain)
    faucet.fund(130)
    coordinator.ledger.open_house_accounts(["BTC"], at=now)
    clients = [f"c{i:04d}" for i in range(CLIENTS)]
    payments = []
    for client in clients:
        coordinator.ledger.open_client(client, ["BTC"], at=now)
        payments.append((coordinator.cold.deposit_address(client, now=now), 12 * AMOUNT_SATS))
        coordinator.policy.add_whitelist(client, "BTC", DEST, by=f"client:{client}", now=now - dt.timedelta(days=2))
    for chunk in range(0, len(payments), 50):
        faucet.pay_many(payments[chunk:chunk + 50])
    chain.mine(3)
    coordinator.cold.scan_deposits(now=now)
    return coordinator, signers, faucet, WithdrawalDesk(coordinator)


def _approve(coordinator: Coordinator, desk: WithdrawalDesk, count: int, offset: int) -> None:
    now = dt.datetime.now(dt.UTC)
    for i in range(count):
        client = f"c{(offset + i) % CLIENTS:04d}"
        submitted = desk.request(client, "BTC", AMOUNT_SATS, DEST, now=now)
        desk.approve(sign_approval(APPROVER, request=submitted.request, operator_id="bob", role=Role.APPROVER,
                                   expires_at_s=int(now.timestamp()) + 3600), now=now)
        desk.dispatch(submitted.request.digest_hex, now=now)


def _settle_all(coordinator: Coordinator) -> float:
    """Seal, sign, broadcast, confirm and settle what is queued; seconds taken."""
    chain = coordinator.bitcoin
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    result = coordinator.cold.run_once(now=now)
    assert result["broadcast"], result
    chain.mine(3)  # type: ignore[attr-defined]
    settled = coordinator.cold.run_once(now=now)["settled"]
    assert settled, "batch did not settle"
    return time.perf_counter() - started


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="coffer-bench-cold-"))
    coordinator, signers, _faucet, desk = _site(home)
    try:
        baseline = 0.0
        for b in range(BASELINE_BATCHES):
            _approve(coordinator, desk, 1, offset=b)
            baseline += _settle_all(coordinator)
        baseline_1000 = baseline / BASELINE_BATCHES * WITHDRAWALS
        _approve(coordinator, desk, WITHDRAWALS, offset=0)
        seconds = _settle_all(coordinator)
        held = sum(coordinator.ledger.balance(AccountKey.held(f"c{i:04d}", "BTC")) for i in range(CLIENTS))
        assert 0 == held, "holds left after settlement"
        print(f"baseline: one withdrawal per batch, {BASELINE_BATCHES} batches: {baseline:.2f} s "
              f"→ {baseline_1000:.1f} s for {WITHDRAWALS} (scaled)")
        print(f"batched: {WITHDRAWALS} withdrawals in one PSBT, 3-of-5 signer processes: {seconds:.2f} s "
              f"(target ≤ 10 s; {baseline_1000 / seconds:.0f}× the baseline)")
        code = verdict([(TARGET_SECONDS, seconds)])
        print(f"cold_batch_withdrawals={WITHDRAWALS} seconds={seconds:.2f}")
    finally:
        for signer in signers:
            signer.stop()
        coordinator.close()
        if os.environ.get("COFFER_BENCH_KEEP") is None:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"kept {home}")

    return code


if __name__ == "__main__":
    sys.exit(main())
