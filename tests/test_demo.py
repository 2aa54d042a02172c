"""`coffer demo` end to end, as a separate process, and the report it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_runs_every_stage_and_writes_the_report(tmp_path: Path) -> None:
    """The whole life of client funds: every stage passes and the report has the keys the issue asks for."""
    home = tmp_path / "demo"
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
