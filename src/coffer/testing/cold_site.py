"""A cold-custody site for tests: a coordinator home, five `coffer signer` processes over mutual TLS,
the embedded regtest chain, an approver and an officer, and three policy administrators who signed a
short whitelist time lock (so tests wait the lock out instead of back-dating entries)."""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from coffer.chain.regtest import RegtestChain
from coffer.coordinator import Coordinator
from coffer.home import init_home
from coffer.policy.roles import Operator, OperatorKey, Role
from coffer.policy.versions import sign_activation
from coffer.testing.facts import SHORT_TIME_LOCK_S, WAIT_MARGIN_S, short_lock_policy_text
from coffer.testing.faucet import Faucet
from coffer.testing.processes import ServiceProcess, port_open
from coffer.testing.tokens import process_softhsm_conf
from coffer.testing.wait import wait_until
from coffer.withdrawals import WithdrawalDesk

__all__ = ["ColdSite", "start_cold_site", "DEST", "APPROVER", "OFFICER", "ADMINS"]

DEST = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"
APPROVER = OperatorKey(b"\x21" * 32)
OFFICER = OperatorKey(b"\x22" * 32)
ADMINS = {"pam": OperatorKey(b"\x23" * 32), "pat": OperatorKey(b"\x24" * 32), "pia": OperatorKey(b"\x25" * 32)}


def _free_base(count: int) -> int:
    for _ in range(200):
        base = random.randint(20_000, 32_000)  # below the ephemeral range (32768+): no outgoing socket holds it
        if not any(port_open(base + i) for i in range(count + 1)):
            return base
    raise RuntimeError("no free port range")


@dataclass
class ColdSite:
    home: Path
    coordinator: Coordinator
    signers: list[ServiceProcess]
    faucet: Faucet
    desk: WithdrawalDesk
    whitelisted: dict[tuple[str, str], int] = field(default_factory=dict)

    def whitelist(self, client: str, destination: str = DEST, *, wait: bool = True) -> None:
        """The client whitelists a destination; the coordinator relays it to every signer, which starts the
        time lock by its own clock; wait it out (or, with `wait=False`, leave that to a later call)."""
        if (client, destination) not in self.whitelisted:
            self.coordinator.policy.add_whitelist(client, "BTC", destination, by=f"client:{client}",
                                                  now=dt.datetime.now(dt.UTC))
            self.whitelisted[(client, destination)] = int(time.time())
        at = self.whitelisted[(client, destination)]
        if not wait:
            return
        wait_until(lambda: time.time() >= at + SHORT_TIME_LOCK_S + 1, timeout=SHORT_TIME_LOCK_S + WAIT_MARGIN_S,
                   what="the whitelist time lock to pass")

    def funded_client(self, client: str, amount: int, destination: str = DEST) -> None:
        now = dt.datetime.now(dt.UTC)
        self.coordinator.ledger.open_client(client, ["BTC"], at=now)
        self.faucet.pay(self.coordinator.cold.deposit_address(client, now=now), amount)
        self.coordinator.bitcoin.mine(3)  # type: ignore[attr-defined]
        self.coordinator.cold.scan_deposits(now=now)
        self.whitelist(client, destination)

    def stop(self) -> None:
        for service in self.signers:
            service.stop()
        self.coordinator.close()


def _short_lock_policy(coordinator: Coordinator, now: dt.datetime) -> None:
    """The administrators propose and sign the short time lock; it takes effect with their quorum."""
    proposal = coordinator.policy.propose(short_lock_policy_text(), None, proposed_by="pam", now=now)
    for name in ("pat", "pia"):
        coordinator.policy.add_signature(proposal.version, sign_activation(ADMINS[name], proposal, name), now=now)
    coordinator.policy.activate(proposal.version, now=now)


def start_cold_site(home: Path) -> ColdSite:
    base = _free_base(6)
    (home / "coffer.toml").write_text(
        f'[hsm]\nsofthsm_conf = "{process_softhsm_conf()}"\ntoken_label = "coord-{random.randrange(1 << 30)}"\n'
        f"[cold]\nsigner_port_base = {base}\n[web]\nnotice_port = {base + 6}\n")
    init_home(home)
    chain = RegtestChain.open(home / "chain")
    coordinator = Coordinator.open(home, bitcoin=chain)
    now = dt.datetime.now(dt.UTC)
    coordinator.policy.bootstrap_default(now=now)
    coordinator.policy.add_operator(Operator("bob", frozenset({Role.APPROVER}), APPROVER.public_key), by="setup",
                                    now=now)
    coordinator.policy.add_operator(Operator("dave", frozenset({Role.SECURITY_OFFICER}), OFFICER.public_key),
                                    by="setup", now=now)
    for name, key in ADMINS.items():
        coordinator.policy.add_operator(Operator(name, frozenset({Role.POLICY_ADMIN}), key.public_key), by="setup",
                                        now=now)
    _short_lock_policy(coordinator, now)
    coordinator.start_notice_server()
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    signers = []
    for signer_id in coordinator.signer_ids():
        service = ServiceProcess(f"signer-{signer_id}",
                                 [sys.executable, "-m", "coffer.cli", "signer", "--id", str(signer_id), "--home",
                                  str(home)], workdir=home / "logs", port=base + signer_id, env=env,
                                 ready_timeout_s=60)
        signers.append(service.start())
    from coffer.cold.service import signer_directory

    coordinator.cold.setup(3, now=now)
    pins = coordinator.signer_pins()
    for signer_id in coordinator.signer_ids():
        pins.save(signer_directory(home, signer_id))
    faucet = Faucet(chain)
    faucet.fund()
    coordinator.ledger.open_house_accounts(["BTC"], at=now)
    return ColdSite(home, coordinator, signers, faucet, WithdrawalDesk(coordinator))
