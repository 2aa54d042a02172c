"""Key holders as real processes on the one runtime: a co-signer process serving FROST and DKLs23
with one token and one history, a cold signer; both hardened at start, both refusing deep JSON,
skewed clocks and wrong peer names by rule, and neither stalled by idle or half-open connections."""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from coffer.cold.errors import SignerRefused
from coffer.cold.service import HttpSignerClient, signer_tls
from coffer.home import init_home
from coffer.keyholder.client import KeyholderClient
from coffer.mpc.service.errors import CosignerRefused
from coffer.mpc.service.harness import Cluster, spawn_cosigners, start_cluster
from coffer.mpc.service.server import cosigner_dir
from coffer.testing import ServiceProcess, free_port, wait_until
from coffer.testing.tokens import process_softhsm_conf
from coffer.tls import TlsFiles

from .conftest import half_handshake, idle_tcp, nested_json

pytestmark = pytest.mark.slow


@dataclass
class SignerSite:
    home: Path
    process: ServiceProcess
    url: str
    coordinator_tls: TlsFiles

    def client(self, tls: TlsFiles | None = None) -> HttpSignerClient:
        return HttpSignerClient(1, self.url, tls or self.coordinator_tls, timeout_s=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One `coffer cosigner --id 1` process (both engines) with its pins, notice server and coordinator."""
    cluster = start_cluster(tmp_path_factory.mktemp("keyholder-cosigner"), [1])
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignerSite]:
    """One `coffer signer --id 1` process over a fresh data directory."""
    home = tmp_path_factory.mktemp("keyholder-signer")
    port = free_port()
    (home / "coffer.toml").write_text(
        f'[hsm]\nsofthsm_conf = "{process_softhsm_conf()}"\ntoken_label = "kh-{random.randrange(1 << 30)}"\n'
        f"[cold]\nsigner_port_base = {port - 1}\n[web]\nnotice_port = {free_port()}\n")
    init_home(home)
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    process = ServiceProcess("signer-1", [sys.executable, "-m", "coffer.cli", "signer", "--id", "1", "--home",
                                          str(home)], workdir=home / "logs", port=port, env=env, ready_timeout_s=90)
    tls = TlsFiles(home / "tls" / "ca.pem", home / "tls" / "coordinator" / "tls.pem",
                   home / "tls" / "coordinator" / "tls.key")
    with process:
        yield SignerSite(home, process, f"https://127.0.0.1:{port}", tls)


def _core_limit(pid: int) -> str:
    line = next(line for line in Path(f"/proc/{pid}/limits").read_text().splitlines()
                if line.startswith("Max core file size"))
    return " ".join(line.split()[4:6])


def _hardened_events(process: ServiceProcess) -> list[dict[str, object]]:
    events = []
    for line in process.log_tail(1_000_000).splitlines():
        if line.startswith("{") and '"keyholder.hardened"' in line:
            events.append(json.loads(line))
    return events


def test_one_cosigner_process_serves_frost_and_ecdsa(cluster: Cluster) -> None:
    """Co-signer 1 answers FROST and DKLs23 routes on one port, with one token and one history."""
    client = cluster.client(1)
    assert "keys" in client.call("/v1/status", {})
    assert "keys" in client.call("/v1/ecdsa/status", {})
    directory = cosigner_dir(cluster.home, 1)
    tokens = [p for p in (directory / "hsm").rglob("*") if p.is_dir() and p.parent.name == "tokens"]
    assert 1 == len(tokens)
    assert (["history.db"], []) == (sorted(p.name for p in directory.glob("history.db")),
                                    sorted(p.name for p in (directory / "ecdsa").rglob("history.db")))
    assert not (directory / "ecdsa" / "hsm").exists()


def test_engine_flag_keeps_the_engines_apart(cluster: Cluster) -> None:
    """`coffer cosigner --engine frost` mounts FROST alone: a DKLs23 route is unknown there (rule route.unknown)."""
    from coffer.mpc.service.harness import provision_cosigners
    from coffer.mpc.service.pins import read_pins

    provision_cosigners(cluster.home, [7], read_pins(cosigner_dir(cluster.home, 1)))
    processes, ports = spawn_cosigners(cluster.home, [7], engines=("frost",))
    try:
        from coffer.mpc.service.client import CosignerClient

        client = CosignerClient(7, ports[7], cluster.tls, batching=False)
        assert "keys" in client.call("/v1/status", {})
        with pytest.raises(CosignerRefused) as caught:
            client.call("/v1/ecdsa/status", {})
        assert "route.unknown" == caught.value.rule
    finally:
        processes[7].stop()


def test_key_holder_processes_are_hardened(cluster: Cluster, signer: SignerSite) -> None:
    """Both kinds of key holder set their core-file limit to 0 (seen in /proc) and report dumpable 0."""
    for process in (cluster.processes[1], signer.process):
        assert process.process is not None
        assert "0 0" == _core_limit(process.process.pid)
        events = _hardened_events(process)
        assert [0] == [event["dumpable"] for event in events][-1:]
        assert [0] == [event["core_bytes_max"] for event in events][-1:]


def test_deeply_nested_json_is_refused_and_the_processes_survive(cluster: Cluster, signer: SignerSite) -> None:
    """600 KB of nested arrays to a co-signer's and a signer's signing route gets 400 json.depth; both live on."""
    cosigner_transport = KeyholderClient("cosigner-1", cluster.ports[1], cluster.tls, timeout_s=30)
    port = int(signer.url.rsplit(":", 1)[1])
    signer_transport = KeyholderClient("signer-1", port, signer.coordinator_tls, timeout_s=30)
    for transport, path in ((cosigner_transport, "/v1/sign/commit"), (cosigner_transport, "/v1/ecdsa/sign/round1"),
                            (signer_transport, "/v1/sign")):
        status, body = transport.call_raw(path, nested_json())
        assert (400, "json.depth") == (status, body["rule"])
    assert cluster.processes[1].alive() and signer.process.alive()
    assert "keys" in cluster.client(1).call("/v1/status", {})
    assert 1 == signer.client().health()["signer_id"]


def test_idle_and_half_open_connections_do_not_stall_key_holders(cluster: Cluster, signer: SignerSite) -> None:
    """While an idle TCP connection and a half-done TLS handshake hang on each, a second client is served."""
    port = int(signer.url.rsplit(":", 1)[1])
    with idle_tcp(cluster.ports[1]), half_handshake(cluster.ports[1]), idle_tcp(port), half_handshake(port):
        assert "keys" in cluster.client(1).call("/v1/status", {})
        assert 1 == signer.client().health()["signer_id"]


def test_skewed_coordinator_clock_is_refused(cluster: Cluster, signer: SignerSite) -> None:
    """A coordinator whose clock is 10 minutes off is refused by rule clock.skew before any engine acts."""
    skewed = KeyholderClient("cosigner-1", cluster.ports[1], cluster.tls, clock=lambda: time.time() - 600)
    status, body = skewed.call("/v1/sign/commit", {})
    assert (409, "clock.skew") == (status, body["rule"])
    port = int(signer.url.rsplit(":", 1)[1])
    skewed_signer = KeyholderClient("signer-1", port, signer.coordinator_tls, clock=lambda: time.time() + 600)
    status, body = skewed_signer.call("/v1/register", {"descriptor": "x", "first_addresses": []})
    assert (409, "clock.skew") == (status, body["rule"])


def test_signer_checks_the_callers_certificate_name(signer: SignerSite) -> None:
    """Another signer's certificate from the same CA calls nothing on signer 1 (rule peer.name)."""
    with pytest.raises(SignerRefused) as caught:
        signer.client(signer_tls(signer.home, 2)).health()
    assert "peer.name" == caught.value.rule
    assert 1 == signer.client().health()["signer_id"]


def test_cosigner_checks_the_callers_certificate_name(cluster: Cluster) -> None:
    """Another co-signer's certificate from the same CA calls nothing on co-signer 1 (rule peer.name)."""
    from coffer.mpc.service.client import CosignerClient
    from coffer.mpc.service.server import cosigner_tls

    sibling = CosignerClient(1, cluster.ports[1], cosigner_tls(cluster.home, 2), batching=False)
    with pytest.raises(CosignerRefused) as caught:
        sibling.call("/v1/status", {})
    assert "peer.name" == caught.value.rule
    wait_until(lambda: cluster.processes[1].alive(), timeout=5, what="co-signer alive")
