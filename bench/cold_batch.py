"""Benchmark: 1,000 approved withdrawals → one batched PSBT → 3-of-5 signatures by signer processes
over mutual TLS → broadcast → confirmed on the embedded regtest node → ledger settled.

Baseline in the same run: the same pipeline with one withdrawal per batch (10 batches, scaled to
1,000). Target: ≤ 10 s for the batched 1,000. Last line: `cold_batch_withdrawals=1000 seconds=<S>`.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from coffer.coordinator import Coordinator
from coffer.ledger import AccountKey
from coffer.policy.approval import sign_approval
from coffer.policy.roles import Role
from coffer.testing import ServiceProcess
from coffer.testing.cold_site import APPROVER, DEST, start_cold_site
from coffer.testing.faucet import Faucet
from coffer.withdrawals import WithdrawalDesk
from verdict import at_most, verdict

WITHDRAWALS = 1000
CLIENTS = 100
AMOUNT_SATS = 200_000
BASELINE_BATCHES = 10

TARGET_SECONDS = at_most("cold batch of 1,000 withdrawals, signed by 3-of-5 signer processes, confirmed <= 10 s", 10.0)  # issue 6


def _site(home: Path) -> tuple[Coordinator, list[ServiceProcess], Faucet, WithdrawalDesk]:
    """The test cold site (5 signer processes, an admin-signed short whitelist lock), 100 funded clients whose
    destination every signer saw whitelisted, the lock waited out."""
    site = start_cold_site(home)
    coordinator, chain, now = site.coordinator, site.coordinator.bitcoin, dt.datetime.now(dt.UTC)
    site.faucet.fund(20)
    clients = [f"c{i:04d}" for i in range(CLIENTS)]
    payments = []
    for client in clients:
        coordinator.ledger.open_client(client, ["BTC"], at=now)
        payments.append((coordinator.cold.deposit_address(client, now=now), 12 * AMOUNT_SATS))
    for chunk in range(0, len(payments), 50):
        site.faucet.pay_many(payments[chunk:chunk + 50])
    chain.mine(3)  # type: ignore[attr-defined]
    coordinator.cold.scan_deposits(now=now)
    for client in clients:
        site.whitelist(client, wait=False)
    site.whitelist(clients[-1])  # the last entry's lock passed: every earlier one's did too
    return coordinator, site.signers, site.faucet, site.desk


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
