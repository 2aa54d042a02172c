"""`coffer demo`: the whole life of client funds on one machine, on the embedded defaults.

Every party but the coordinator is its own process: the regtest node (Bitcoin Core's consensus
code behind Core's JSON-RPC), five cold signers, the MPC co-signers, the exchange simulator and a
local SMTP server. The demo process itself plays the coordinator (it opens the same data
directory `coffer serve` would) and the people: clients, operators, security officers.
Each stage records what it did in the JSON report; a failing stage makes `ok` false and the
command exit non-zero. The data directory is left in place for inspection.

The demo directory is a site: the coordinator's home is DEMO/coordinator and every key holder
(signer-N, cosigner-N) and every demo client has a directory of its own beside it, never inside
it; the CA key stays in DEMO/ceremony. Run as root, each key holder gets its own Unix user
(`coffer-signer-N`, `coffer-cosigner-N`) that owns its directory (0700) and runs its process, and
the coordinator's home is handed to `coffer-coordinator` at the end. The demo refuses a directory
that is not a demo site (no DEMO/.coffer-demo marker) unless forced, and never the default home.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

from coffer.errors import CofferError
from coffer.keyholder.administrators import load_admin, make_admin, propose
from coffer.keyholder.governance import ActionKind, GovernancePins, Officer, SignedAction, fingerprint
from coffer.keyholder.governance_store import GovernanceStore
from coffer.keyholder.lifecycle import Approver
from coffer.progress import Step, progress
from coffer.testing.processes import ServiceProcess, port_open

__all__ = ["run_demo", "DemoReport", "DemoSite"]

CLIENTS = 20
DEPOSIT_SATS = 150_000_000
WHITELISTED = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"
NOT_WHITELISTED = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
OPERATORS = {"ops-ivan": ("initiator",), "ops-bob": ("approver",), "ops-carol": ("approver",),
             "sec-dave": ("security_officer",), "sec-erin": ("security_officer",),
             "adm-frank": ("policy_admin",), "adm-gina": ("policy_admin",), "adm-hana": ("policy_admin",)}
DEMO_TIME_LOCK_S = 3  # the whitelist time lock the administrators sign for the demo (24 h by default)
DEMO_SIGNED_LOCK_S = 1


DEMO_MARKER = ".coffer-demo"


class DemoRefused(CofferError):
    """The demo will not use (and so wipe) this directory."""


@dataclass
class DemoReport:
    home: Path
    ok: bool = True
    stages: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "home": str(self.home), "stages": self.stages, **self.data}


def claim_demo_directory(root: Path, *, force: bool = False) -> None:
    """Empty ROOT for a new run: only a previous demo site (or, with force, any directory other than
    the default home) is wiped; anything else is refused and left as it is."""
    from coffer.config import default_home

    if root.resolve() in {default_home().resolve(), Path.home().resolve(), Path("/").resolve()}:
        raise DemoRefused(f"{root} is the default home (or a home directory): the demo never wipes it; "
                          "give --home a directory of its own")
    if root.exists() and not root.is_dir():
        raise DemoRefused(f"{root} is not a directory; give --home a new or empty directory")
    if root.exists() and any(root.iterdir()):
        if not (root / DEMO_MARKER).exists() and not force:
            raise DemoRefused(f"{root} is not a demo home (no {DEMO_MARKER} in it) and would be wiped; "
                              "give an empty directory, or --force to wipe it")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # traversable, so each party reaches its own directory; each of those is 0700
    (root / DEMO_MARKER).write_text("a coffer demo site: `coffer demo` may wipe this directory\n")


def _free_ports(count: int) -> list[int]:
    for _ in range(500):
        base = random.randint(21_000, 59_000)
        if not any(port_open(base + i) for i in range(count)):
            return [base + i for i in range(count)]
    raise RuntimeError("no free range of ports on 127.0.0.1")


@dataclass
class DemoSite:
    """The processes and the coordinator of one demo run."""

    home: Path
    ports: dict[str, int]
    root: Path | None = None
    processes: list[ServiceProcess] = field(default_factory=list)
    coordinator: Any = None
    faucet: Any = None
    operator_keys: dict[str, Any] = field(default_factory=dict)
    parts: dict[str, Any] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}

    def process(self, name: str, args: list[str], *, port: int | None, ready: Callable[[], object] | None = None
                ) -> ServiceProcess:
        return ServiceProcess(name, [sys.executable, *args], workdir=self.home / "logs", port=port, env=self.env(),
                              ready=ready, ready_timeout_s=90)

    def start_all(self, services: list[ServiceProcess]) -> None:
        """Start services in parallel; raise the first failure."""
        errors: list[BaseException] = []

        def start(service: ServiceProcess) -> None:
            try:
                service.start()
            except BaseException as exc:  # reported below, after every thread ended
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(s,)) for s in services]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.processes.extend(services)
        if errors:
            raise errors[0]

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def person_dir(self, name: str) -> Path:
        """A demo client's (or other person's) own directory beside the coordinator's home."""
        directory = (self.root or self.home.parent) / name
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return directory

    def separate_users(self) -> bool:
        """Each party runs as its own Unix user: the demo runs as root, in a directory and with an
        interpreter that other users can reach (a virtualenv made from /usr/bin/python3, not /root's)."""
        from coffer.layout import reachable_by_others

        return (os.geteuid() == 0 and reachable_by_others(self.root or self.home.parent)
                and reachable_by_others(Path(sys.executable).resolve()))

    def hand_over(self, directory: Path) -> None:
        """Give a key holder's directory to its own Unix user (coffer-signer-N, coffer-cosigner-N)."""
        from coffer.layout import USER_PREFIX, hand_over, keyholder_of_user

        user = USER_PREFIX + directory.name
        if self.separate_users() and keyholder_of_user(user) is not None:
            hand_over(directory, user)

    def stop(self) -> None:
        recon = self.parts.get("recon")
        if recon is not None:
            recon.stop()
        if self.coordinator is not None:
            self.coordinator.close()
        for service in reversed(self.processes):
            service.stop()


def _write_config(home: Path, ports: dict[str, int], keyholders: Path) -> None:
    (home / "coffer.toml").write_text(
        "# written by coffer demo: every service on 127.0.0.1, ports chosen free for this run\n"
        "[bitcoin]\n"
        'backend = "rpc"\n'
        f'rpc_url = "http://127.0.0.1:{ports["bitcoin_rpc"]}"\n'
        f'rpc_cookie_file = "{home / "chain" / ".cookie"}"\n'
        "[cold]\n"
        f"signer_port_base = {ports['signer_base']}\n"
        "[web]\n"
        f"port = {ports['web']}\n"
        f"notice_port = {ports['notice']}\n"
        "[mail]\n"
        f"smtp_port = {ports['smtp']}\n"
        "[halt]\n"
        "notice_max_age_s = 20\n"
        "[keyholders]\n"
        f'dir = "{keyholders}"\n'
    )


def _signer_ready(site: DemoSite, signer_id: int) -> Callable[[], bool]:
    """Ready when this very signer answers its health check over mutual TLS (not merely: a port is open)."""
    from coffer.cold.service import HttpSignerClient
    from coffer.tls import TlsFiles

    def ready() -> bool:
        tls = TlsFiles(site.home / "tls" / "ca.pem", site.home / "tls" / "coordinator" / "tls.pem",
                       site.home / "tls" / "coordinator" / "tls.key")
        client = HttpSignerClient(signer_id, site.coordinator.signer_url(signer_id), tls, timeout_s=2)
        return bool(client.health().get("signer_id") == signer_id)

    return ready


def _signer_process(site: DemoSite, signer_id: int) -> ServiceProcess:
    """Signer N in its own directory (run as its own user when the demo runs as root), told its
    directory and port so it never reads the coordinator's home."""
    from coffer.cold.service import signer_directory

    directory = signer_directory(site.home, signer_id)
    port = site.ports["signer_base"] + signer_id
    return ServiceProcess(f"signer-{signer_id}", [sys.executable, "-m", "coffer.cli", "signer", "--id", str(signer_id),
                                                  "--dir", str(directory), "--port", str(port)],
                          workdir=directory, port=port, env=site.env(), ready=_signer_ready(site, signer_id),
                          ready_timeout_s=90)


def stage_initialise(site: DemoSite, report: DemoReport, console: Console) -> None:
    """Data directory, regtest node, mail server, five signer processes, the cold ceremony."""
    from coffer.cold.service import signer_directory
    from coffer.coordinator import Coordinator
    from coffer.doctor import run_checks
    from coffer.home import init_home
    from coffer.layout import sites as keyholder_sites
    from coffer.policy.roles import Operator, OperatorKey, Role
    from coffer.testing.faucet import Faucet

    _write_config(site.home, site.ports, site.root or site.home.parent)
    config = init_home(site.home)
    for keyholder in keyholder_sites(site.home, range(1, config.cold.signers + 1), COSIGNERS):
        site.hand_over(keyholder.home)
    checks = run_checks(config)
    report.data["doctor"] = [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks]
    missing = [c.name for c in checks if c.required and not c.ok]
    assert not missing, f"coffer doctor: missing {', '.join(missing)}"
    (site.home / "chain").mkdir(exist_ok=True)
    node = site.process("regtest", ["-m", "coffer.cli", "regtest", "--datadir", str(site.home / "chain"),
                                    "--rpcport", str(site.ports["bitcoin_rpc"])], port=site.ports["bitcoin_rpc"])
    smtp = site.process("smtp", ["-m", "coffer.testing.smtp_sink", "--port", str(site.ports["smtp"]), "--maildir",
                                 str(site.home / "mail")], port=site.ports["smtp"])
    site.start_all([node, smtp])
    coordinator = Coordinator.open(site.home)
    site.coordinator = coordinator
    now = site.now()
    coordinator.policy.bootstrap_default(now=now)
    for index, (operator_id, roles) in enumerate(OPERATORS.items()):
        key = OperatorKey(os.urandom(32))
        site.operator_keys[operator_id] = key
        (site.person_dir(operator_id) / "operator.key").write_text(key.seed_hex())
        (site.person_dir(operator_id) / "operator.key").chmod(0o600)
        coordinator.policy.add_operator(Operator(operator_id, frozenset(Role(r) for r in roles), key.public_key),
                                        by="demo-setup", now=now)
        if "security_officer" in roles:
            coordinator.halt.register_officer(operator_id, key.public_key, actor="demo-setup")
        del index
    _short_time_lock(site, now)
    report.data["whitelist_time_lock_s"] = DEMO_TIME_LOCK_S
    coordinator.start_notice_server()
    signers = [_signer_process(site, i) for i in coordinator.signer_ids()]
    site.start_all(signers)
    governance = _governance_ceremony(site, report)
    wallet = coordinator.cold.setup(coordinator.config.cold.threshold, now=now)
    pins = coordinator.signer_pins()
    for signer_id in coordinator.signer_ids():
        pins.save(signer_directory(site.home, signer_id))
        GovernanceStore.provision(signer_directory(site.home, signer_id), governance)
        site.hand_over(signer_directory(site.home, signer_id))
    _team_key(site, now)
    _start_cosigners(site)
    site.faucet = Faucet(coordinator.bitcoin)
    site.faucet.fund(120)
    coordinator.ledger.open_house_accounts(["BTC", "ETH"], at=now)
    report.data["mpc"] = {"cosigners": list(COSIGNERS), "frost_threshold": [FROST_THRESHOLD, len(COSIGNERS)],
                          "dkg_ms_both_keys": site.parts["dkg_ms"],
                          "publication_pubkey_ed25519": site.parts["publication_key"].hex()}
    report.data["coordinator_home"] = str(site.home)
    report.data["separate_unix_users"] = site.separate_users()
    report.data["keyholders"] = [keyholder.as_json() for keyholder in
                                 keyholder_sites(site.home, coordinator.signer_ids(), COSIGNERS)]
    report.data["bitcoin"] = {"network": "regtest", "cold_descriptor": wallet.descriptor(),
                              "hot_output_key": site.parts["hot_output_key"].hex(),
                              "cold_threshold": [wallet.threshold, len(wallet.keys)],
                              "chain_datadir": str(site.home / "chain"), "deposits": [], "withdrawals": []}
    (site.home / "cold-wallet.bsms").write_text(coordinator.cold.bsms())
    console.print(f"  regtest node, SMTP server, 5 signer and {len(COSIGNERS)} co-signer processes up; cold wallet "
                  f"{wallet.threshold}-of-{len(wallet.keys)} {wallet.wallet_id[:16]}…; DKGs (Ed25519 publication key, "
                  f"Taproot hot key) in {site.parts['dkg_ms']} ms")


COSIGNERS = (1, 2, 3, 4, 5)
FROST_THRESHOLD = 3
ADMINISTRATORS = ("admin-1", "admin-2", "admin-3")
ADMIN_THRESHOLD = 2
GOVERNANCE_DOMAIN = "coffer-demo"
OFFICERS = ("sec-dave", "sec-erin")
OFFICER_QUORUM = 2


def administrators_root(home: Path) -> Path:
    """The administrators' own directories: beside the coordinator's home, never inside it."""
    return home.parent / f"{home.name}-administrators"


def _governance_ceremony(site: DemoSite, report: DemoReport) -> GovernancePins:
    """Three administrators make their keys, each in a directory of their own; every key holder
    pins them (2-of-3) and the security officers (2 of them resume) before anything else."""
    root = administrators_root(site.home)
    if root.exists():
        shutil.rmtree(root)  # the previous demo run's administrators, like its home
    admins = [make_admin(root / admin_id, admin_id) for admin_id in ADMINISTRATORS]
    governance = GovernancePins(
        GOVERNANCE_DOMAIN, tuple(a.public for a in admins), ADMIN_THRESHOLD,
        tuple(Officer(o, site.operator_keys[o].public_key) for o in OFFICERS), OFFICER_QUORUM)
    site.parts["governance_actions"] = []
    report.data["governance"] = {
        "domain": GOVERNANCE_DOMAIN, "threshold": [ADMIN_THRESHOLD, len(admins)],
        "administrators": [{"admin_id": a.admin_id, "home": str(root / a.admin_id),
                            "fingerprint": fingerprint(a.public.public_key)} for a in admins],
        "officers": list(OFFICERS), "officer_quorum": OFFICER_QUORUM,
        "actions": site.parts["governance_actions"]}
    site.parts["governance"] = governance
    return governance


def _administrators_sign(site: DemoSite) -> Approver:
    """What the administrators do for each lifecycle step: each of two reads the proposal and
    signs it with the key file in their own directory; the coordinator only carries the result."""
    root = administrators_root(site.home)

    def approve(kind: ActionKind, key_id: str, keyholders: Sequence[str], content: Mapping[str, Any]
                ) -> SignedAction:
        signed = propose(GOVERNANCE_DOMAIN, kind, key_id=key_id, keyholders=keyholders, content=content)
        for admin_id in ADMINISTRATORS[:ADMIN_THRESHOLD]:
            signed = load_admin(root / admin_id).sign(signed)
        site.parts["governance_actions"].append({"kind": kind.value, "key_id": key_id,
                                                 "signed_by": [s.admin_id for s in signed.signatures]})
        return signed

    return approve


def _short_time_lock(site: DemoSite, now: dt.datetime) -> None:
    """The administrators sign a short whitelist time lock (a policy version: one proposes, two others sign)
    before the key holders pin the policy; the demo then waits each lock out."""
    from coffer.policy.versions import sign_activation
    from coffer.testing.facts import short_lock_policy_text

    policy = site.coordinator.policy
    proposal = policy.propose(short_lock_policy_text(DEMO_TIME_LOCK_S, DEMO_SIGNED_LOCK_S), None,
                              proposed_by="adm-frank", now=now)
    for admin in ("adm-gina", "adm-hana"):
        policy.add_signature(proposal.version, sign_activation(site.operator_keys[admin], proposal, admin), now=now)
    policy.activate(proposal.version, now=now)


def _whitelist(site: DemoSite, account: str, asset: str, destination: str, *, by: str) -> None:
    """Whitelist now (the coordinator relays the entry to every key holder, which starts the lock by its own
    clock); `_wait_time_lock` waits it out. Nothing is back-dated."""
    site.coordinator.policy.add_whitelist(account, asset, destination, by=by, now=site.now())
    site.parts["whitelisted_at"] = time.time()


def _wait_time_lock(site: DemoSite) -> None:
    from coffer.testing import wait_until

    at = float(site.parts.get("whitelisted_at", 0.0))
    wait_until(lambda: time.time() >= at + DEMO_TIME_LOCK_S + 1, timeout=DEMO_TIME_LOCK_S + 60,
               what="the whitelist time lock to pass on every key holder")


def _start_cosigners(site: DemoSite) -> None:
    """Five co-signer processes (FROST and DKLs23 engines each); two distributed key generations (no
    dealer, no whole key anywhere). The ETH stage's DKLs23 key lives on co-signers 1-3 of these."""
    from coffer.mpc.ecdsa_service.server import write_chain_pins
    from coffer.mpc.service.cli import open_coordinator
    from coffer.mpc.service.harness import spawn_cosigners
    from coffer.mpc.service.server import cosigner_dir

    coordinator = site.coordinator
    pins = coordinator.signer_pins()
    for cosigner in COSIGNERS:
        pins.save(cosigner_dir(site.home, cosigner))
        write_chain_pins(site.home, cosigner, [HARDHAT_CHAIN_ID])
        GovernanceStore.provision(cosigner_dir(site.home, cosigner), site.parts["governance"])
        site.hand_over(cosigner_dir(site.home, cosigner))
    processes, site.parts["cosigner_ports"] = spawn_cosigners(site.home, COSIGNERS)
    site.processes.extend(processes.values())
    mpc = open_coordinator(site.home, coordinator.engine, approve=_administrators_sign(site))
    site.parts["mpc"] = mpc
    started = time.monotonic()
    publication = mpc.dkg("publication", "ed25519", FROST_THRESHOLD)
    hot = mpc.dkg("hot-btc", "taproot", FROST_THRESHOLD)
    site.parts["dkg_ms"] = round((time.monotonic() - started) * 1000)
    site.parts["publication_key"] = publication.publication_public_key()
    from coffer.mpc.service import hsm_publication_attester, publication_signer

    coordinator.extras["publication_signer"] = publication_signer(mpc, hsm_publication_attester(coordinator.hsm))
    site.parts["hot_output_key"] = hot.taproot_output_key()


def _team_key(site: DemoSite, now: dt.datetime) -> None:
    """The security team's OpenPGP key: tickets and halt notices are encrypted to it."""
    import pysequoia as sq

    secret = site.person_dir("security-team") / "pgp.sec.asc"
    team = sq.Tsk.generate("Coffer security team <security-team@coffer.invalid>")
    secret.write_text(str(team))
    secret.chmod(0o600)
    site.coordinator.notify.keys.add_team_key(str(team.extract_certificate()).encode(), name="security-team",
                                              by="demo-setup", now=now)


PGP_CLIENTS = 5


def _client_pgp_keys(site: DemoSite, clients: list[str], now: dt.datetime) -> dict[str, str]:
    """Some clients make an OpenPGP key with GnuPG (`gpg --quick-gen-key`, each in its own GnuPG home), put it in
    their security centre and prove with `gpg --decrypt` that they can read its challenge."""
    from coffer.notify.gnupg import GnupgHome

    notify = site.coordinator.notify
    homes: dict[str, str] = {}
    for client in clients[:PGP_CLIENTS]:
        uid = f"{client} <{client}@clients.coffer.invalid>"
        with GnupgHome(site.person_dir(client) / "gnupg") as gpg:
            gpg.generate(uid)
            notify.key_service.submit(client, gpg.export(uid), now=now)
            challenge = [item for item in notify.outbox.items(client_id=client) if item.event == "key_challenge"][-1]
            code = next(line.strip() for line in gpg.decrypt(challenge.body).splitlines() if line.startswith("    "))
        notify.key_service.confirm(client, code, now=now)
        homes[f"{client}@clients.coffer.invalid"] = str(gpg.home)
    return homes


def stage_deposits(site: DemoSite, report: DemoReport, console: Console) -> None:
    """20 client accounts, each with its own deposit address; credited only after 3 confirmations."""
    coordinator, now = site.coordinator, site.now()
    clients = [f"client-{i:02d}" for i in range(1, CLIENTS + 1)]
    payments: list[tuple[str, int]] = []
    for client in clients:
        coordinator.ledger.open_client(client, ["BTC", "ETH"], at=now)
        payments.append((coordinator.cold.deposit_address(client, now=now), DEPOSIT_SATS + 1000 * len(payments)))
    site.parts["clients"] = clients
    payments.append((coordinator.cold.deposit_address("company:operating", now=now), 100_000_000))
    gnupg_homes = _client_pgp_keys(site, clients, now)
    for client in clients:  # each client is mailed (encrypted) about the new address at once
        _whitelist(site, client, "BTC", WHITELISTED, by=f"client:{client}")
    report.data["mail"] = {"maildir": str(site.home / "mail"), "client_gnupg_homes": gnupg_homes,
                           "security_team_secret_key": str(site.person_dir("security-team") / "pgp.sec.asc")}
    console.print(f"  {len(gnupg_homes)} clients registered a GnuPG-made OpenPGP key and proved with gpg they can "
                  "decrypt it")
    for chunk in range(0, len(payments), 10):
        site.faucet.pay_many(payments[chunk:chunk + 10])
    site.faucet.mine(1)
    early = coordinator.cold.scan_deposits(now=now)
    site.faucet.mine(2)
    credited = coordinator.cold.scan_deposits(now=site.now())
    assert not early, "a deposit was credited before 3 confirmations"
    assert len(credited) == CLIENTS + 1, f"{len(credited)} of {CLIENTS} client deposits and the company's credited"
    credited = [c for c in credited if not c.client_id.startswith("company:")]
    report.data["bitcoin"]["deposits"] = [
        {"account": c.client_id, "address": c.address, "txid": c.txid, "amount_sats": c.amount_sats,
         "credited_height": c.credited_height} for c in credited]
    console.print(f"  {len(credited)} client deposits (and the company's own 1 BTC of operating capital) "
                  "credited after 3 confirmations (none after 1)")


def _approve(site: DemoSite, request: Any, approvers: list[tuple[str, str]]) -> Any:
    from coffer.policy.approval import sign_approval
    from coffer.policy.roles import Role

    decision = None
    for operator_id, role in approvers:
        approval = sign_approval(site.operator_keys[operator_id], request=request, operator_id=operator_id,
                                 role=Role(role), expires_at_s=int(site.now().timestamp()) + 3600)
        decision = site.coordinator.policy.approve(approval, now=site.now())
    return decision


def stage_withdrawals(site: DemoSite, report: DemoReport, console: Console) -> None:
    """Large BTC withdrawals in one cold batch signed by a drawn quorum; a policy-breaking attempt is refused."""
    from coffer.policy.errors import PolicyRefused
    from coffer.withdrawals import WithdrawalDesk

    coordinator = site.coordinator
    desk = WithdrawalDesk(coordinator)
    _wait_time_lock(site)
    refused_rule = None
    try:
        desk.request("client-05", "BTC", 20_000_000, NOT_WHITELISTED, now=site.now())
    except PolicyRefused as refusal:
        refused_rule = refusal.rule
    assert refused_rule == "whitelist.unlisted", refused_rule
    console.print(f"  a withdrawal to a non-whitelisted address was refused: rule {refused_rule}")
    cold_requests = [("client-01", 120_000_000, [("ops-bob", "approver"), ("ops-carol", "approver"),
                                                  ("sec-dave", "security_officer")]),
                     ("client-02", 40_000_000, [("ops-bob", "approver")]),
                     ("client-03", 35_000_000, [("ops-carol", "approver")])]
    for client, amount, approvers in cold_requests:
        submitted = desk.request(client, "BTC", amount, WHITELISTED, now=site.now())
        decision = _approve(site, submitted.request, approvers)
        assert decision.allowed, decision
        desk.dispatch(submitted.request.digest_hex, now=site.now())
        coordinator.notify.notifier.notify(client, "withdrawal_requested", {
            "amount": f"{amount} sats", "asset": "BTC", "destination": WHITELISTED,
            "request_id": submitted.request.digest_hex}, now=site.now())
    result = coordinator.cold.run_once(now=site.now())
    batch_id = result["sealed"]
    site.faucet.mine(3)
    settled = coordinator.cold.run_once(now=site.now())["settled"]
    assert batch_id in settled, "the cold batch did not settle"
    batch = coordinator.cold.batch(batch_id)
    draw = coordinator.cold.draws(batch_id)[-1]
    report.data["bitcoin"]["withdrawals"].append({
        "route": "cold", "txid": batch["txid"], "raw_tx": batch["raw_tx"], "batch_id": batch_id,
        "nominated_signers": list(draw.nominated), "draw_seed": draw.seed,
        "confirmed_height": batch["confirmed_height"]})
    report.data["policy_refusal"] = {"rule": refused_rule, "destination": NOT_WHITELISTED}
    _hot_withdrawal(site, report, console, desk)
    console.print(f"  cold batch {batch_id}: {len(cold_requests)} withdrawals, signers {list(draw.nominated)} "
                  f"drawn from seed {draw.seed[:16]}…, confirmed at height {batch['confirmed_height']}")


RECON_POSITIONS_S = 1.0
RECON_ONCHAIN_S = 2.0


def _start_simulator(site: DemoSite, seed: int) -> Any:
    from coffer.exchange.http import ExchangeClient

    port = _free_ports(1)[0]
    coordinator = site.coordinator
    sim = site.process(f"exchange-sim-{seed}", [
        "-m", "coffer.cli", "exchange-sim", "run", "--seed", str(seed), "--accounts", "10", "--port", str(port),
        "--tick-ms", "100", "--trades-per-tick", "5", "--halt-url", coordinator.halt_notice_url(),
        "--halt-public-key", coordinator.halt_notice_public_key().hex(), "--halt-max-age-s", "10"], port=port)
    site.start_all([sim])
    site.parts["simulator"] = sim
    return ExchangeClient(f"http://127.0.0.1:{port}")


def _onchain_source(site: DemoSite) -> Any:
    from coffer.recon.onchain import CustodyScript, InflightWithdrawal, PendingDeposit
    from coffer.recon.service import bitcoin_holdings, ethereum_holdings
    from coffer.recon.sources import OnchainSource, ledger_custody

    coordinator = site.coordinator
    cold = coordinator.cold

    hot = site.parts.get("hot")
    eth_wallet, eth_chain = site.parts.get("eth_wallet"), site.parts.get("eth_chain")

    def scripts() -> list[CustodyScript]:
        found = [CustodyScript("BTC", "cold", script.hex()) for script in cold.custody_scripts()]
        if hot is not None:
            found.append(CustodyScript("BTC", "hot", hot.script_pubkey().hex()))
        if eth_wallet is not None:
            found.append(CustodyScript("ETH", "eth-hot", eth_wallet.address()))
            found.extend(CustodyScript("ETH", "eth-deposits", address)
                         for address in eth_wallet._deposit_addresses())
        return found

    holdings = {"BTC": lambda wanted: bitcoin_holdings(coordinator.bitcoin, wanted)}
    if eth_chain is not None:
        holdings["ETH"] = lambda wanted: ethereum_holdings(eth_chain, wanted)
    return OnchainSource(
        scripts=scripts, holdings=holdings,
        ledger_view=lambda assets: ledger_custody(coordinator.ledger, assets),
        pending=lambda asset, height: [PendingDeposit("BTC", "cold", script, reference, amount)
                                       for script, reference, amount in cold.pending_deposits(height)],
        inflight=lambda asset, height: [InflightWithdrawal("BTC", "cold", batch, amount)
                                        for batch, amount in cold.inflight_withdrawals(height)])


def _start_recon(site: DemoSite, client: Any) -> Any:
    from coffer.recon.runtime import ReconRuntime
    from coffer.recon.service import PositionReconciler

    runtime = ReconRuntime(site.coordinator.engine, site.coordinator.halt, node="demo-coordinator",
                           positions=PositionReconciler(client, client), onchain=_onchain_source(site),
                           positions_interval_s=RECON_POSITIONS_S, onchain_interval_s=RECON_ONCHAIN_S)
    site.parts["recon"] = runtime
    return runtime.start()


def _wait_for_runs(site: DemoSite, job: str, count: int, timeout_s: float) -> list[Any]:
    from coffer.recon.scheduler import recent_runs
    from coffer.testing.wait import wait_until

    def enough() -> list[Any]:
        runs = [r for r in recent_runs(site.coordinator.engine, job=job, limit=50) if r.finished_at]
        return runs if len(runs) >= count else []

    result: list[Any] = wait_until(enough, timeout=timeout_s, what=f"{count} {job} runs")  # type: ignore[assignment]
    return result


def stage_trading(site: DemoSite, report: DemoReport, console: Console) -> None:
    """Accounts trade perpetuals on the simulator; positions, margins and balances are checked on schedule."""
    client = _start_simulator(site, seed=7)
    _start_recon(site, client)
    positions = _wait_for_runs(site, "positions", 3, 30)
    onchain = _wait_for_runs(site, "onchain", 1, 30)
    status = client.status()
    assert not site.coordinator.halt.is_halted(), "a clean exchange was halted"
    report.data["recon"] = {"positions_interval_s": RECON_POSITIONS_S, "onchain_interval_s": RECON_ONCHAIN_S,
                            "positions_runs": len(positions), "onchain_runs": len(onchain),
                            "last_fill_sequence": status["last_sequence"]}
    console.print(f"  {status['last_sequence']} fills so far; {len(positions)} position checks and "
                  f"{len(onchain)} on-chain checks passed (every {RECON_POSITIONS_S:g}s / {RECON_ONCHAIN_S:g}s)")


def _resume(site: DemoSite, reason: str) -> list[str]:
    from coffer.recon.halt import OfficerSignature, resume_message

    switch = site.coordinator.halt
    halt_id = switch.state().halt_id
    officers = ["sec-dave", "sec-erin"]
    one = [OfficerSignature("sec-dave", site.operator_keys["sec-dave"].sign(resume_message(halt_id, reason)))]
    try:
        switch.resume(halt_id, reason, one, actor="sec-dave")
        raise AssertionError("one officer alone resumed the exchange")
    except Exception as refused:  # the quorum is two: one signature must be refused
        if isinstance(refused, AssertionError):
            raise
    signatures = [OfficerSignature(o, site.operator_keys[o].sign(resume_message(halt_id, reason))) for o in officers]
    switch.resume(halt_id, reason, signatures, actor="sec-erin")
    assert not switch.is_halted()
    return officers


def _published(site: DemoSite) -> dict[str, Any]:
    """The latest halt's id and the Ed25519 group-key signatures of its halt and resume statements."""
    switch = site.coordinator.halt
    halt = switch.history(limit=1)[0]
    signatures = {}
    for action in ("halt", "resume"):
        signature = switch.publication_signature(halt.halt_id, action)
        if signature is not None:
            signatures[f"{action}_signature"] = signature.hex()
    return {"halt_id": halt.halt_id, **signatures}


def _halt_after(site: DemoSite, started: float, timeout_s: float) -> float:
    from coffer.testing.wait import wait_until

    wait_until(site.coordinator.halt.is_halted, timeout=timeout_s, what="the halt")
    return round(time.monotonic() - started, 2)


def stage_faults(site: DemoSite, report: DemoReport, console: Console) -> None:
    """A position fault and a tampered ledger balance each halt the exchange; officers resume."""
    from coffer.ledger import AccountKey, Kind, Transfer, credit, debit

    coordinator = site.coordinator
    halts = []
    from coffer.exchange.http import ExchangeClient

    sim = site.parts["simulator"]
    exchange = ExchangeClient(f"http://127.0.0.1:{sim.port}")
    exchange.inject("alter_position")
    started = time.monotonic()
    detected = _halt_after(site, started, 4 * RECON_POSITIONS_S + 10)
    cause = coordinator.halt.history(limit=1)[0].cause
    time.sleep(1.5)
    frozen = exchange.status()["last_sequence"]
    time.sleep(1.0)
    assert frozen == exchange.status()["last_sequence"], "the exchange kept matching while halted"
    site.parts["recon"].stop()
    sim.stop()
    client2 = _start_simulator(site, seed=8)  # the engine is restored from a clean state
    officers = _resume(site, "engine restored from a clean state after an altered position")
    _start_recon(site, client2)
    halts.append({"cause": cause, "detected_after_s": detected, "resumed_by": officers,
                  "matching_stopped_at_sequence": frozen, **_published(site)})
    console.print(f"  altered position → halt ({cause}) after {detected}s; matching stopped; "
                  f"resumed by {', '.join(officers)}")
    tamper = Transfer(idempotency_key="demo-tamper", kind=Kind.ADJUSTMENT,
                      postings=(debit(AccountKey.custody("cold", "BTC"), 50_000),
                                credit(AccountKey.company("operating", "BTC"), 50_000)),
                      at=site.now(), reason="demo: an intruder tampers the custody balance")
    coordinator.ledger.apply(tamper, actor="intruder")
    started = time.monotonic()
    detected = _halt_after(site, started, 4 * RECON_ONCHAIN_S + 10)
    cause = coordinator.halt.history(limit=1)[0].cause
    coordinator.ledger.apply(Transfer(idempotency_key="demo-tamper-reversed", kind=Kind.ADJUSTMENT,
                                      postings=(debit(AccountKey.company("operating", "BTC"), 50_000),
                                                credit(AccountKey.custody("cold", "BTC"), 50_000)),
                                      at=site.now(), reason="reverse the tampered custody balance"),
                             actor="sec-dave")
    officers = _resume(site, "tampered custody balance reversed; ledger equals chain again")
    halts.append({"cause": cause, "detected_after_s": detected, "resumed_by": officers, **_published(site)})
    _wait_for_runs(site, "onchain", 2, 30)
    assert not coordinator.halt.is_halted()
    report.data["halts"] = halts
    console.print(f"  tampered custody balance → halt ({cause}) after {detected}s; reversed; resumed by "
                  f"{', '.join(officers)}")


REFILL_SATS = 100_000_000
HOT_WITHDRAWAL_SATS = 800_000


def _hot_withdrawal(site: DemoSite, report: DemoReport, console: Console, desk: Any) -> None:
    """Refill the hot Taproot wallet from cold (a company request through the same policy), then pay a small
    client withdrawal at once from it, signed jointly by the co-signers (FROST)."""
    from coffer.cold.guards import payment_for
    from coffer.hot import HotWallet
    from coffer.policy.approval import sign_approval
    from coffer.policy.request import RequestKind, WithdrawalRequest, new_nonce
    from coffer.policy.roles import Role

    coordinator, now = site.coordinator, site.now()
    hot = HotWallet(coordinator.engine, coordinator.bitcoin, coordinator.ledger, site.parts["mpc"], key_id="hot-btc")
    site.parts["hot"] = hot
    desk.hot_dispatch = hot.dispatch
    # the hot wallet's own address is whitelisted for the company; its time lock is waited out
    _whitelist(site, "company", "BTC", hot.address(), by="sec-dave")
    _wait_time_lock(site)
    now = site.now()
    refill = WithdrawalRequest(kind=RequestKind.REFILL, asset="BTC", amount_minor=REFILL_SATS,
                               destination=hot.address(), source_wallet="cold", account="company",
                               fee_policy="normal", nonce=new_nonce(), expires_at_s=int(now.timestamp()) + 3600,
                               initiator="ops-ivan")
    coordinator.policy.submit(refill, now=now)
    coordinator.policy.approve(sign_approval(site.operator_keys["ops-bob"], request=refill, operator_id="ops-bob",
                                             role=Role.APPROVER, expires_at_s=int(now.timestamp()) + 3600), now=now)
    signed = coordinator.policy.attest(refill.digest_hex, now=now)
    coordinator.cold.enqueue(refill.digest_hex, None, refill.destination, REFILL_SATS,
                             payment_for(refill, signed.to_json()), now=now)
    batch_id = coordinator.cold.run_once(now=site.now())["sealed"]
    site.faucet.mine(3)
    coordinator.cold.run_once(now=site.now())
    refill_txid = coordinator.cold.batch(batch_id)["txid"]
    hot.record_refill(refill_txid, REFILL_SATS, now=site.now())
    submitted = desk.request("client-04", "BTC", HOT_WITHDRAWAL_SATS, WHITELISTED, now=site.now())
    assert submitted.decision.allowed and submitted.decision.route.value == "hot", submitted.decision
    desk.dispatch(submitted.request.digest_hex, now=site.now())
    payment = hot.payment(submitted.request.digest_hex)
    assert payment is not None
    site.faucet.mine(1)
    hot.settle(site.now())
    raw = coordinator.bitcoin.rpc.call("getrawtransaction", payment.txid)
    status = coordinator.bitcoin.tx_status(payment.txid)
    report.data["bitcoin"]["withdrawals"].append({
        "route": "hot", "txid": payment.txid, "raw_tx": raw, "batch_id": None, "nominated_signers": [],
        "draw_seed": None, "confirmed_height": status.block_height, "amount_sats": HOT_WITHDRAWAL_SATS,
        "refill_txid": refill_txid})
    console.print(f"  hot wallet refilled from cold ({REFILL_SATS} sats, batch {batch_id}); an accelerated "
                  f"{HOT_WITHDRAWAL_SATS}-sat withdrawal auto-approved by policy and signed 3-of-5 by FROST "
                  f"co-signers: {payment.txid[:16]}…")


def stage_proof_of_reserves(site: DemoSite, report: DemoReport, console: Console) -> None:
    """Publish liabilities (blinded Merkle sum tree) and reserves (every custody address with a BIP-322 proof of
    control by the key holders), signed by the co-signers' Ed25519 group key; verify with `coffer-verify`."""
    import subprocess

    from coffer.mpc.service import hsm_publication_attester, publication_public_key, publication_signer
    from coffer.por.adapters import liabilities_from_ledger
    from coffer.por.nonces import ensure_account_nonces
    from coffer.por.publish import BitmexReservesOptions, publish_snapshot
    from coffer.por.reserves import ControlProof, ReserveEntry, build_reserves_document
    from coffer.por.verify import reserves_challenge

    coordinator, mpc = site.coordinator, site.parts["mpc"]
    chain = coordinator.bitcoin
    tip = chain.tip()
    entries = coordinator.cold.reserve_entries(chain_name="regtest", height=tip.height, block_hash=tip.hash)
    hot = site.parts["hot"]
    hot_proof = mpc.prove_reserves("hot-btc", reserves_challenge("BTC", "regtest", tip.height, tip.hash))
    internal_key = mpc.key("hot-btc").group_public_key[-32:].hex()
    hot_descriptor = f"tr({internal_key})"
    from embit.descriptor import Descriptor
    from embit.networks import NETWORKS

    assert Descriptor.from_string(hot_descriptor).address(NETWORKS["regtest"]) == hot.address(), "hot descriptor"
    entries.append(ReserveEntry(hot.address(), hot.balance_sats(), "hot", hot_descriptor,
                                (ControlProof("mpc-hot-btc-3-of-5", hot_proof),)))
    wallet = coordinator.cold.wallet()
    document = build_reserves_document("BTC", "regtest", tip.height, tip.hash, entries,
                                       descriptors=[wallet.descriptor(0), wallet.descriptor(1)])
    liabilities = liabilities_from_ledger(coordinator.ledger, "BTC")
    nonces = ensure_account_nonces(coordinator.engine, [item.account_number for item in liabilities])
    sign = publication_signer(mpc, hsm_publication_attester(coordinator.hsm))
    public_key = publication_public_key(mpc)
    directory = site.home / "por" / f"snapshot-{tip.height}"
    result = publish_snapshot(directory, chain="regtest", height=tip.height, block_hash=tip.hash,
                              liabilities={"BTC": liabilities}, nonces=nonces, reserves={"BTC": document},
                              sign=sign, public_key=public_key, log_path=site.home / "por" / "log.jsonl",
                              proofs_dir=site.home / "por" / "proofs",
                              bitmex=BitmexReservesOptions(threshold=wallet.threshold, signer_count=len(wallet.keys),
                                                           key_strings=(*(k.xpub for k in wallet.keys),
                                                                        internal_key)))
    cookie = (site.home / "chain" / ".cookie").read_text().strip()
    rpc = f"http://{cookie}@127.0.0.1:{site.ports['bitcoin_rpc']}"
    sample = liabilities[0]
    verify = subprocess.run(
        [str(Path(sys.executable).with_name("coffer-verify")), str(directory), "--group-key", public_key.hex(),
         "--rpc", rpc, "--account", str(sample.account_number), "--account-nonce", nonces[sample.account_number].hex(),
         "--balance", str(sample.amount)], capture_output=True, text=True, timeout=120, check=False)
    (site.home / "por" / "coffer-verify.txt").write_text(verify.stdout + verify.stderr)
    assert verify.returncode == 0, f"coffer-verify failed: {(verify.stdout + verify.stderr)[-600:]}"
    statement_path = directory / "statement-BTC.json"
    statement = json.loads(statement_path.read_text())
    by_number = {line.account_number: line.client_id for line in coordinator.ledger.client_liabilities("BTC")}
    report.data["por"] = {
        "dir": str(directory), "bitmex_liabilities": str(directory / "liabilities-BTC.txt"),
        "bitmex_reserves": str(directory / "reserves-BTC.yaml"), "statement": statement["statement"],
        "statement_signature": statement["signature"], "statement_pubkey_ed25519": public_key.hex(),
        "reserves_total_sats": document["total"], "liabilities_total_sats": result.trees["BTC"].total,
        "sample_accounts": [{"account": item.account_number, "client": by_number.get(item.account_number),
                             "account_nonce": nonces[item.account_number].hex(), "liability_sats": item.amount}
                            for item in liabilities[:3]],
        "verifier_output": verify.stdout.strip().splitlines()[-3:]}
    console.print(f"  reserves {document['total']} sats ({len(entries)} addresses, each proven by BIP-322) ≥ "
                  f"liabilities {result.trees['BTC'].total} sats; statement signed by the co-signers' Ed25519 "
                  f"group key; coffer-verify: ok")


REVOKED_COSIGNER = 5


def stage_revocation(site: DemoSite, report: DemoReport, console: Console) -> None:
    """Revoke a co-signer by re-sharing the hot key among the others (same public key, same address); its
    signing requests are refused from then on, and the remaining quorum still signs."""
    from coffer.mpc.service import CosignerRevoked
    from coffer.por.verify import bip322_verify, reserves_challenge

    mpc, hot = site.parts["mpc"], site.parts["hot"]
    before = mpc.key("hot-btc").group_public_key
    key = mpc.reshare("hot-btc", revoke=[REVOKED_COSIGNER])
    assert key.group_public_key == before, "re-sharing changed the public key"
    tip = site.coordinator.bitcoin.tip()
    challenge = reserves_challenge("BTC", "regtest", tip.height, tip.hash)
    refusal = ""
    try:
        mpc.prove_reserves("hot-btc", challenge, cosigners=[1, 2, REVOKED_COSIGNER])
    except CosignerRevoked as exc:
        refusal = str(exc)
    assert refusal, "the revoked co-signer's request was not refused"
    proof = mpc.prove_reserves("hot-btc", challenge, cosigners=[1, 2, 3])
    bip322_verify(hot.address(), challenge, proof)
    report.data["revocation"] = {"revoked_cosigner": REVOKED_COSIGNER, "refused": True, "refusal": refusal,
                                 "key_version": key.version, "remaining": [m.cosigner for m in key.members],
                                 "group_key_unchanged": True}
    console.print(f"  co-signer {REVOKED_COSIGNER} revoked by re-sharing (version {key.version}, same address); "
                  f"its request was refused ({refusal}); co-signers 1, 2, 3 still sign")


HARDHAT_CHAIN_ID = 31337
HARDHAT_FUNDER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # hardhat's public dev key 0
ETH_DESTINATION = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # hardhat's public dev account 1
ETH_DEPOSIT_WEI = 2 * 10**18
ETH_WITHDRAWAL_WEI = 5 * 10**17
ETH_CLIENTS = 3


def _start_ethereum_node(site: DemoSite) -> Any:
    """A real Ethereum dev node (hardhat@2, from the checkout's node_modules) as its own process."""
    from coffer.chain.ethereum import JsonRpcEthereum
    from coffer.testing.hardhat import hardhat_node

    node, url = hardhat_node(site.home / "ethereum", chain_id=HARDHAT_CHAIN_ID, port=_free_ports(1)[0],
                             env=site.env())
    site.start_all([node])
    return JsonRpcEthereum(url)


def _fund_from_dev_account(chain: Any, to: str, value_wei: int) -> str:
    """The outside world paying a deposit address: hardhat's well-known, pre-funded dev account."""
    from eth_account import Account

    funder = Account.from_key(HARDHAT_FUNDER_KEY)
    fees = chain.fee_estimate()
    signed = funder.sign_transaction({
        "type": 2, "chainId": HARDHAT_CHAIN_ID, "nonce": chain.nonce(funder.address), "to": to,
        "value": value_wei, "gas": 21_000, "maxFeePerGas": fees.max_fee_wei,
        "maxPriorityFeePerGas": fees.max_priority_fee_wei})
    tx_hash: str = chain.send_raw_transaction(bytes(signed.raw_transaction))
    return tx_hash


def stage_ethereum(site: DemoSite, report: DemoReport, console: Console) -> None:
    """ETH: a DKLs23 threshold-ECDSA key among 3 co-signer processes (2-of-3), per-client deposit addresses by
    public tweaks, deposits credited after confirmations and swept, a withdrawal signed 2-of-3."""
    from coffer.eth.wallet import EthHotWallet
    from coffer.mpc.ecdsa_service.coordinator import EcdsaCoordinator
    from coffer.mpc.service.client import CosignerClient
    from coffer.policy.roles import Role
    from coffer.tls import TlsFiles
    from coffer.withdrawals import WithdrawalDesk

    coordinator = site.coordinator
    chain = _start_ethereum_node(site)
    assert HARDHAT_CHAIN_ID == chain.chain_id(), "the co-signers pinned another chain id"
    tls = TlsFiles(site.home / "tls" / "ca.pem", site.home / "tls" / "coordinator" / "tls.pem",
                   site.home / "tls" / "coordinator" / "tls.key")
    ecdsa = EcdsaCoordinator({c: CosignerClient(c, site.parts["cosigner_ports"][c], tls, batching=False)
                              for c in (1, 2, 3)}, approve=_administrators_sign(site))
    site.parts["ecdsa"] = ecdsa
    key = ecdsa.create_key("hot-eth", threshold=2)
    wallet = EthHotWallet(coordinator.engine, chain, coordinator.ledger, ecdsa, key_id="hot-eth", confirmations=3)
    now = site.now()
    wallet.open_ledger_accounts(now)
    site.parts["eth_wallet"], site.parts["eth_chain"] = wallet, chain
    # the company's own ETH capital (it pays the network fees), into the hot address
    capital_tx = _fund_from_dev_account(chain, wallet.address(), 10**18)
    chain.mine(3)
    wallet.record_funding(capital_tx, 10**18, now=now)
    clients = site.parts["clients"][:ETH_CLIENTS]
    deposits = []
    for client in clients:
        address = wallet.deposit_address(client, now=now)
        deposits.append({"account": client, "address": address,
                         "txid": _fund_from_dev_account(chain, address, ETH_DEPOSIT_WEI), "amount_wei": ETH_DEPOSIT_WEI})
    early = wallet.scan_deposits(site.now())  # the dev node mines each transaction into its own block
    assert deposits[-1]["address"] not in {c.address for c in early}, "an ETH deposit credited at 1 confirmation"
    chain.mine(3)
    credited = early + wallet.scan_deposits(site.now())
    assert len(credited) == ETH_CLIENTS, credited
    swept = wallet.sweep_deposits(site.now())
    chain.mine(3)
    wallet.settle(site.now())
    client = clients[0]
    _whitelist(site, client, "ETH", ETH_DESTINATION, by=f"client:{client}")
    _wait_time_lock(site)
    desk = WithdrawalDesk(coordinator, hot_dispatch=wallet.dispatch)
    submitted = desk.request(client, "ETH", ETH_WITHDRAWAL_WEI, ETH_DESTINATION, now=site.now())
    assert submitted.decision.route.value == "hot", submitted.decision
    decision = _approve(site, submitted.request, [("ops-carol", Role.APPROVER.value)])
    assert decision.allowed, decision
    desk.dispatch(submitted.request.digest_hex, now=site.now())
    payment = wallet.payment(submitted.request.digest_hex)
    assert payment is not None and payment.tx_hash is not None, "no ETH payment was made"
    chain.mine(3)
    wallet.settle(site.now())
    receipt_hash = payment.tx_hash
    receipt = chain.receipt(receipt_hash)
    assert receipt is not None and receipt.status == 1, "the ETH withdrawal was not mined"
    import sqlalchemy as sa

    from coffer.eth.tables import eth_payments

    with coordinator.engine.connect() as conn:  # the signed transaction exactly as broadcast
        raw = conn.execute(sa.select(eth_payments.c.raw_tx).where(
            eth_payments.c.payment_id == submitted.request.digest_hex)).scalar_one()
    from eth_account import Account

    assert Account.recover_transaction(raw) == wallet.address(), "the ETH signature does not recover the hot key"
    report.data["ethereum"] = {
        "hot_address": wallet.address(), "chain_id": chain.chain_id(), "node": "hardhat@2 over JSON-RPC",
        "ecdsa_threshold": [key.threshold, len(key.cosigners)], "deposits": deposits,
        "sweeps": [p.tx_hash for p in swept],
        "withdrawals": [{"txid": receipt_hash, "raw_tx": raw, "confirmed_block": receipt.block_number,
                         "amount_wei": ETH_WITHDRAWAL_WEI, "destination": ETH_DESTINATION}]}
    console.print(f"  DKLs23 key 2-of-3 → hot address {wallet.address()}; {len(credited)} deposits credited after 3 "
                  f"confirmations and swept; a 0.5 ETH withdrawal signed 2-of-3, mined in block {receipt.block_number}")


def stage_summary(site: DemoSite, report: DemoReport, console: Console) -> None:
    """Ledger consistency, custody against the chain, the audit chain."""
    from coffer.ledger import AccountKey

    coordinator = site.coordinator
    consistency = coordinator.ledger.check_consistency()
    scripts = list(coordinator.cold.custody_scripts())
    if "hot" in site.parts:
        scripts.append(site.parts["hot"].script_pubkey())
    custody = (coordinator.ledger.balance(AccountKey.custody("cold", "BTC"))
               + coordinator.ledger.balance(AccountKey.custody("hot", "BTC")))
    on_chain = sum(u.amount_sats for u in coordinator.bitcoin.unspent(scripts))
    assert custody == on_chain, f"cold custody {custody} sats in the ledger, {on_chain} on chain"
    sent = coordinator.deliver_mail()
    report.data.setdefault("mail", {})["sent"] = sent
    read = _read_client_mail(site, report)
    events = coordinator.audit.verify_chain()
    report.data["summary"] = {"cold_custody_sats": custody, "cold_on_chain_sats": on_chain,
                              "audit_events": events, "ledger_consistent": bool(consistency)}
    console.print(f"  cold + hot custody {custody} sats = {on_chain} sats on chain; audit chain of {events} events verifies;"
                  f" {sent} mails delivered (encrypted to every client with a key); gpg --decrypt read all {read} "
                  "mails to clients with a key")


def _read_client_mail(site: DemoSite, report: DemoReport) -> int:
    """Each client with a key reads every mail it got with `gpg --decrypt` in its own GnuPG home."""
    from coffer.notify.gnupg import GnupgHome, read_client_mail

    homes = {address: GnupgHome(Path(home)) for address, home in report.data["mail"]["client_gnupg_homes"].items()}
    try:
        read = read_client_mail(site.home / "mail", homes)
    finally:
        for home in homes.values():
            home.close()
    assert {mail.recipient for mail in read} == set(homes), "a client with a key got no mail gpg could read"
    report.data["mail"]["gpg_decrypted"] = len(read)
    return len(read)


def _hand_home_to_coordinator(site: DemoSite) -> None:
    """Root ran the demo; from now on the coordinator's home is its own non-root user's (so
    `runuser -u coffer-coordinator -- coffer serve --home HOME` runs it, and can read no key holder's files)."""
    from coffer.layout import COORDINATOR_USER, hand_over

    if site.separate_users():
        hand_over(site.home, COORDINATOR_USER)


Stage = Callable[[DemoSite, DemoReport, Console], None]
STAGES: list[tuple[str, Stage]] = [
    ("initialise: regtest node, mail, signers, cold wallet ceremony", stage_initialise),
    ("open 20 client accounts; deposit and credit after confirmations", stage_deposits),
    ("withdraw: cold batch with a drawn quorum, hot FROST wallet; a policy-breaking attempt is refused",
     stage_withdrawals),
    ("ETH: threshold-ECDSA hot wallet: deposits, sweeps, a 2-of-3 withdrawal", stage_ethereum),
    ("trade on the simulator; positions, margins and balances checked on schedule", stage_trading),
    ("publish a proof of reserves and liabilities; verify it with coffer-verify", stage_proof_of_reserves),
    ("faults: a position fault and a tampered balance halt the exchange; officers resume", stage_faults),
    ("revoke a co-signer by re-sharing; its requests are refused", stage_revocation),
    ("summary: ledger, chain and audit agree", stage_summary),
]


def run_demo(root: Path, report_path: Path, console: Console | None = None, *, force: bool = False) -> DemoReport:
    console = console or Console()
    claim_demo_directory(root, force=force)
    home = root / "coordinator"
    home.mkdir(mode=0o700)
    report = DemoReport(home=home)
    names = ["bitcoin_rpc", "smtp", "web", "notice", "signer_base"]
    ports = dict(zip(names, _free_ports(len(names) + 6)[:len(names)], strict=True))
    ports["signer_base"] = _free_ports(8)[0]
    site = DemoSite(home, ports, root=root)
    (home / "logs").mkdir()
    from coffer.log import configure_logging

    log_file = (home / "logs" / "coordinator.log").open("a")
    configure_logging(stream=log_file)
    started_all = time.monotonic()
    try:
        with progress("demo stages", total=len(STAGES), console=console) as step:
            _run_stages(site, report, console, step, log_file)
    finally:
        site.stop()
        log_file.close()
        _hand_home_to_coordinator(site)
    report.data["seconds"] = round(time.monotonic() - started_all, 1)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report.as_json(), indent=2, sort_keys=True))
    console.rule("[bold]summary")
    for entry in report.stages:
        console.print(f"  {entry['status']:>6}  {entry['seconds']:7.1f}s  {entry['stage']}")
    console.print(f"ok={report.ok} in {report.data['seconds']}s; report written to {report_path}; "
                  f"data left in {root} (coordinator's home {home})")
    return report


def _run_stages(site: DemoSite, report: DemoReport, console: Console, step: Step, log_file: TextIO) -> None:
    """Each stage in order; the first failure is reported (traceback in the log) and ends the run."""
    home = site.home
    for number, (title, stage) in enumerate(STAGES, start=1):
        step.describe(f"{number}/{len(STAGES)} {title.split(':')[0]}")
        console.rule(f"[bold]{number}. {title}")
        started = time.monotonic()
        try:
            stage(site, report, console)
            status = "ok"
        except Exception as exc:  # the demo reports every failure and stops; nothing is hidden
            import traceback

            report.ok = False
            status = f"failed: {type(exc).__name__}: {exc}"
            trace = traceback.format_exc()
            log_file.write(trace)
            report.data.setdefault("failure", {})[title] = trace.splitlines()[-12:]
            console.print(f"[red]{status}[/] (traceback in {home / 'logs' / 'coordinator.log'})")
        report.stages.append({"stage": title, "status": status, "seconds": round(time.monotonic() - started, 3)})
        step.advance()
        if not report.ok:
            break
