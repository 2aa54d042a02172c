"""Cold custody with every signer a separate process over mutual TLS, the real policy and HSM
attestation, and Bitcoin Core's consensus judging the spend on the embedded regtest node."""

from __future__ import annotations

import datetime as dt
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coffer.chain.regtest import RegtestChain
from coffer.cold.custody import SignerUnavailable
from coffer.cold.errors import SignerRefused
from coffer.cold.service import HttpSignerClient, signer_tls
from coffer.coordinator import Coordinator
from coffer.home import init_home
from coffer.ledger import AccountKey
from coffer.policy.approval import sign_approval
from coffer.policy.roles import Operator, OperatorKey, Role
from coffer.testing import ServiceProcess
from coffer.testing.faucet import Faucet
from coffer.testing.processes import port_open
from coffer.testing.tokens import process_softhsm_conf
from coffer.tls import TlsFiles
from coffer.withdrawals import WithdrawalDesk

DEST = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"
APPROVER = OperatorKey(b"\x21" * 32)
OFFICER = OperatorKey(b"\x22" * 32)


def _free_base(count: int) -> int:
    for _ in range(200):
        base = random.randint(20_000, 60_000)
        if not any(port_open(base + i) for i in range(count + 1)):
            return base
    raise RuntimeError("no free port range")


class Site:
    def __init__(self, home: Path, coordinator: Coordinator, signers: list[ServiceProcess], faucet: Faucet,
                 desk: WithdrawalDesk) -> None:
        self.home, self.coordinator, self.signers, self.faucet, self.desk = home, coordinator, signers, faucet, desk


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("cold-site")
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
    yield Site(home, coordinator, signers, faucet, WithdrawalDesk(coordinator))
    for service in signers:
        service.stop()
    coordinator.close()


def _funded_client(site: Site, client: str, amount: int) -> None:
    now = dt.datetime.now(dt.UTC)
    coordinator = site.coordinator
    coordinator.ledger.open_client(client, ["BTC"], at=now)
    site.faucet.pay(coordinator.cold.deposit_address(client, now=now), amount)
    coordinator.bitcoin.mine(3)  # type: ignore[attr-defined]
    coordinator.cold.scan_deposits(now=now)
    coordinator.policy.add_whitelist(client, "BTC", DEST, by=f"client:{client}", now=now - dt.timedelta(days=2))


def test_withdrawal_end_to_end_with_signer_processes(site: Site) -> None:
    """deposit → credit → request → approval → HSM attestation → batch → draw → 3 signer processes → consensus → settled."""
    _funded_client(site, "alice", 80_000_000)
    coordinator, now = site.coordinator, dt.datetime.now(dt.UTC)
    assert 80_000_000 == coordinator.ledger.balance(AccountKey.available("alice", "BTC"))
    submitted = site.desk.request("alice", "BTC", 30_000_000, DEST, now=now)
    assert not submitted.decision.allowed
    approval = sign_approval(APPROVER, request=submitted.request, operator_id="bob", role=Role.APPROVER,
                             expires_at_s=int(now.timestamp()) + 600)
    assert site.desk.approve(approval, now=now).allowed
    site.desk.dispatch(submitted.request.digest_hex, now=now)
    result = coordinator.cold.run_once(now=now)
    batch_id = result["sealed"]
    assert batch_id and result["broadcast"]
    coordinator.bitcoin.mine(3)  # type: ignore[attr-defined]
    assert [batch_id] == coordinator.cold.run_once(now=now)["settled"]
    assert 50_000_000 == coordinator.ledger.balance(AccountKey.available("alice", "BTC"))
    assert 0 == coordinator.ledger.balance(AccountKey.held("alice", "BTC"))
    verify = subprocess.run([sys.executable, "-m", "coffer.cli", "cold", "verify-draw", batch_id, "--home",
                             str(site.home)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "SOFTHSM2_CONF": str(process_softhsm_conf())})
    assert 0 == verify.returncode, verify.stdout + verify.stderr
    assert '"verified": true' in verify.stdout


def test_signer_refuses_a_bundle_whose_request_was_changed_after_approval(site: Site) -> None:
    """Attack: the coordinator swaps the attested request's amount in the bundle; the signer process refuses."""
    _funded_client(site, "mallory", 40_000_000)
    coordinator, now = site.coordinator, dt.datetime.now(dt.UTC)
    submitted = site.desk.request("mallory", "BTC", 20_000_000, DEST, now=now)
    site.desk.approve(sign_approval(APPROVER, request=submitted.request, operator_id="bob", role=Role.APPROVER,
                                    expires_at_s=int(now.timestamp()) + 600), now=now)
    site.desk.dispatch(submitted.request.digest_hex, now=now)
    import json

    import sqlalchemy as sa

    from coffer.cold.tables import cold_withdrawals

    with coordinator.engine.begin() as conn:
        row = conn.execute(sa.select(cold_withdrawals).where(
            cold_withdrawals.c.request_id == submitted.request.digest_hex)).one()
        payment = json.loads(row.payment)
        payment["request"]["amount_minor"] = 25_000_000
        conn.execute(cold_withdrawals.update().where(cold_withdrawals.c.request_id == row.request_id).values(
            payment=json.dumps(payment), amount_sats=25_000_000))
    batch_id = coordinator.cold.seal_batch(now=now)
    assert batch_id is not None
    with pytest.raises(SignerRefused) as caught:
        coordinator.cold.sign_batch(batch_id, now=now)
    assert caught.value.rule.startswith("attestation")
    coordinator.cold.abandon_batch(batch_id, "a signer refused: tampered request", now=now, requeue=False)
    assert 40_000_000 == coordinator.ledger.balance(AccountKey.available("mallory", "BTC"))


def test_client_without_a_ca_certificate_is_refused(site: Site, tmp_path: Path) -> None:
    """Mutual TLS: a client that presents no certificate from the local CA cannot talk to a signer, and
    one from the CA that is not the coordinator's (another signer's) is refused by rule peer.name."""
    url = site.coordinator.signer_url(1)
    with pytest.raises(httpx.HTTPError):
        httpx.get(url + "/v1/health", verify=str(site.home / "tls" / "ca.pem"), timeout=5)
    from coffer.tls import issue_certificate

    stranger = issue_certificate(tmp_path / "other-ca", tmp_path / "stranger", "stranger")
    client = HttpSignerClient(1, url, stranger, timeout_s=5)
    with pytest.raises(SignerUnavailable):
        client.health()
    sibling = HttpSignerClient(1, url, signer_tls(site.home, 2), timeout_s=5)  # from our CA, not the coordinator
    with pytest.raises(SignerRefused) as caught:
        sibling.health()
    assert "peer.name" == caught.value.rule


def test_signers_prove_control_of_every_funded_cold_address(site: Site) -> None:
    """Proof of reserves: m signer processes each sign a BIP-322 challenge bound to the tip; the verifier accepts it."""
    from coffer.por.reserves import build_reserves_document

    coordinator = site.coordinator
    tip = coordinator.bitcoin.tip()
    entries = coordinator.cold.reserve_entries(chain_name="regtest", height=tip.height, block_hash=tip.hash)
    assert entries, "no funded cold address"
    on_chain = sum(u.amount_sats for u in coordinator.bitcoin.unspent(coordinator.cold.custody_scripts()))
    assert on_chain == sum(e.balance for e in entries)
    document = build_reserves_document("BTC", "regtest", tip.height, tip.hash, entries)  # verifies every proof
    assert on_chain == document["total"]


def test_signer_refuses_to_sign_anything_but_a_reserves_challenge(site: Site) -> None:
    """A coordinator cannot use the proof-of-control endpoint to get an arbitrary message signed."""
    coordinator_tls = TlsFiles(site.home / "tls" / "ca.pem", site.home / "tls" / "coordinator" / "tls.pem",
                               site.home / "tls" / "coordinator" / "tls.key")
    client = HttpSignerClient(1, site.coordinator.signer_url(1), coordinator_tls, timeout_s=10)
    with pytest.raises(SignerRefused) as caught:
        client.prove_control(site.coordinator.cold.wallet().wallet_id, 0, 0, b"I owe Mallory 100 BTC")
    assert "prove.message" == caught.value.rule


def test_killed_signer_is_replaced_by_a_recorded_redraw(site: Site) -> None:
    """kill -9 a nominated signer process: the coordinator records why and draws again; the batch still settles."""
    from coffer.cold.draw import draw_quorum

    coordinator, now = site.coordinator, dt.datetime.now(dt.UTC)
    _funded_client(site, "victor", 40_000_000)
    submitted = site.desk.request("victor", "BTC", 12_000_000, DEST, now=now)
    site.desk.approve(sign_approval(APPROVER, request=submitted.request, operator_id="bob", role=Role.APPROVER,
                                    expires_at_s=int(now.timestamp()) + 600), now=now)
    site.desk.dispatch(submitted.request.digest_hex, now=now)
    batch_id = coordinator.cold.seal_batch(now=now)
    assert batch_id is not None
    row = coordinator.cold.batch(batch_id)
    first = draw_quorum(batch_id=batch_id, tip_hash=row["tip_hash"], unsigned_txid=row["unsigned_txid"],
                        signer_ids=tuple(coordinator.signer_ids()), threshold=3)
    victim = site.signers[first.nominated[0] - 1]
    victim.kill()
    try:
        coordinator.cold.sign_batch(batch_id, now=now)
        draws = coordinator.cold.draws(batch_id)
        assert 2 == len(draws)
        assert first.nominated[0] in draws[1].excluded
        coordinator.cold.broadcast_batch(batch_id, now=now)
    finally:
        victim.start()


def test_air_gapped_signers_sign_the_bundle_offline(site: Site, tmp_path: Path) -> None:
    """Offline signing: the bundle goes to each nominee on a file; with its service stopped the signer signs
    with `coffer signer sign`; the coordinator combines, broadcasts and settles."""
    coordinator, now = site.coordinator, dt.datetime.now(dt.UTC)
    _funded_client(site, "olga", 30_000_000)
    submitted = site.desk.request("olga", "BTC", 11_000_000, DEST, now=now)
    site.desk.approve(sign_approval(APPROVER, request=submitted.request, operator_id="bob", role=Role.APPROVER,
                                    expires_at_s=int(now.timestamp()) + 600), now=now)
    site.desk.dispatch(submitted.request.digest_hex, now=now)
    batch_id = coordinator.cold.seal_batch(now=now)
    assert batch_id is not None
    bundle = coordinator.cold.prepare_offline(batch_id, now=now)
    bundle_file = tmp_path / "batch.bundle.json"
    bundle_file.write_bytes(bundle.to_json())
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    signed = []
    for signer_id in bundle.draw.nominated:
        service = site.signers[signer_id - 1]
        service.stop()  # air-gapped: nothing listens while it signs
        try:
            out = tmp_path / f"signed-{signer_id}.psbt"
            result = subprocess.run([sys.executable, "-m", "coffer.cli", "signer", "--id", str(signer_id), "--home",
                                     str(site.home), "sign", "--bundle", str(bundle_file), "--out", str(out)],
                                    capture_output=True, text=True, timeout=120, env=env)
            assert 0 == result.returncode, result.stdout + result.stderr
            signed.append(out.read_bytes())
        finally:
            service.start()
    coordinator.cold.submit_signatures(batch_id, signed, now=now)
    coordinator.cold.broadcast_batch(batch_id, now=now)
    coordinator.bitcoin.mine(3)  # type: ignore[attr-defined]
    assert batch_id in coordinator.cold.run_once(now=now)["settled"]
    assert 19_000_000 == coordinator.ledger.balance(AccountKey.available("olga", "BTC"))


def test_signers_refuse_while_halted(site: Site) -> None:
    """The halt switch is pushed to signers as a signed notice; every signer process refuses while it is on."""
    coordinator, now = site.coordinator, dt.datetime.now(dt.UTC)
    _funded_client(site, "trent", 40_000_000)
    submitted = site.desk.request("trent", "BTC", 15_000_000, DEST, now=now)
    site.desk.approve(sign_approval(APPROVER, request=submitted.request, operator_id="bob", role=Role.APPROVER,
                                    expires_at_s=int(now.timestamp()) + 600), now=now)
    site.desk.dispatch(submitted.request.digest_hex, now=now)
    batch_id = coordinator.cold.seal_batch(now=now)
    assert batch_id is not None
    halt = coordinator.halt.trip("manual", {"by": "test"}, actor="officer:dave")
    assert coordinator.halt.state().halted
    custody = coordinator.cold
    custody._halted = lambda: False  # a coordinator that ignores its own halt still meets refusing signers
    with pytest.raises(SignerRefused) as caught:
        custody.sign_batch(batch_id, now=now)
    assert "halt" == caught.value.rule

    del halt  # resuming needs the officer quorum; this module's site stays halted from here on
