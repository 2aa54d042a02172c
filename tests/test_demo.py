"""`coffer demo` end to end, as a separate process, and the report it writes."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from coffer.layout import reachable_by_others


@pytest.fixture
def site() -> Iterator[Path]:
    """A directory every user can reach (pytest's own temp root is 0700), removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="coffer-demo-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_demo_runs_every_stage_and_writes_the_report(site: Path) -> None:
    """The whole life of client funds: every stage passes and the report has the keys the issue asks for;
    as root with an interpreter every user can run, each key holder runs as its own Unix user."""
    home = site / "demo"
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    result = subprocess.run([sys.executable, "-m", "coffer.cli", "demo", "--home", str(home)], capture_output=True,
                            text=True, timeout=600, env=env, check=False)
    report = json.loads((home / "report.json").read_text())
    assert report["ok"], result.stdout[-3000:]
    assert 0 == result.returncode
    bitcoin = report["bitcoin"]
    assert "regtest" == bitcoin["network"] and bitcoin["cold_descriptor"].startswith("wsh(sortedmulti(3,")
    assert [3, 5] == bitcoin["cold_threshold"]
    assert 64 == len(bitcoin["hot_output_key"])
    assert 20 == len(bitcoin["deposits"])
    routes = {w["route"] for w in bitcoin["withdrawals"]}
    assert {"cold", "hot"} == routes
    cold = next(w for w in bitcoin["withdrawals"] if w["route"] == "cold")
    assert 3 == len(cold["nominated_signers"]) and cold["draw_seed"] and cold["confirmed_height"]
    assert report["ethereum"]["hot_address"].startswith("0x") and report["ethereum"]["withdrawals"][0]["raw_tx"]
    assert {"position_mismatch", "onchain_mismatch"} == {h["cause"] for h in report["halts"]}
    assert all(len(h["resumed_by"]) >= 2 for h in report["halts"])
    por = report["por"]
    assert Path(por["bitmex_liabilities"]).exists() and Path(por["bitmex_reserves"]).exists()
    assert 64 == len(por["statement_pubkey_ed25519"]) and por["sample_accounts"]
    assert Path(report["mail"]["maildir"]).exists() and report["mail"]["client_gnupg_homes"]
    assert report["mail"]["gpg_decrypted"] >= len(report["mail"]["client_gnupg_homes"])
    assert report["revocation"]["refused"] is True
    governance = report["governance"]
    assert [2, 3] == governance["threshold"]
    assert all(not Path(a["home"]).is_relative_to(Path(report["coordinator_home"])) for a in governance["administrators"])
    assert {("dkg", "publication"), ("dkg", "hot-btc"), ("reshare", "hot-btc"), ("dkg", "hot-eth")} <= {
        (a["kind"], a["key_id"]) for a in governance["actions"]}
    assert all(2 == len(a["signed_by"]) for a in governance["actions"])
    coordinator_home = Path(report["coordinator_home"])
    assert home / "coordinator" == coordinator_home
    keyholders = report["keyholders"]
    assert {("signer", n) for n in range(1, 6)} | {("cosigner", n) for n in range(1, 6)} == {
        (k["kind"], k["id"]) for k in keyholders}
    for keyholder in keyholders:  # each beside the coordinator's home, never inside it, 0700
        directory = Path(keyholder["home"])
        assert (home, False) == (directory.parent, coordinator_home in directory.parents)
        assert 0o700 == directory.stat().st_mode & 0o777
    assert not list(coordinator_home.rglob("ca.key")) and not list(coordinator_home.rglob("seed.sealed"))
    assert all(Path(path).parent.parent == home for path in report["mail"]["client_gnupg_homes"].values())
    separate = os.geteuid() == 0 and reachable_by_others(Path(sys.executable))
    assert separate == report["separate_unix_users"]
    if separate:
        owners = {pwd.getpwuid(Path(k["home"]).stat().st_uid).pw_name for k in keyholders}
        assert {f"coffer-{k['kind']}-{k['id']}" for k in keyholders} == owners
        assert "coffer-coordinator" == pwd.getpwuid(coordinator_home.stat().st_uid).pw_name
