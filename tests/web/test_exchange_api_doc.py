"""docs/exchange-api.md's curl session, run word for word with bash, curl and openssl against
`coffer serve` on a fresh home with one funded client: the account call answers, the withdrawal is
held and awaits approval, the feed shows it."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
from pathlib import Path

from coffer.coordinator import Coordinator
from coffer.integrations.cli import open_integrations
from coffer.ledger import AccountKey, Kind, Transfer, credit, debit
from coffer.testing import ServiceProcess
from tests.crash.flow import DESTINATION
from tests.web.test_console_serve import make_home

DOC = Path(__file__).resolve().parents[2] / "docs" / "exchange-api.md"


def _bash_block() -> str:
    (block,) = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    return block


def test_the_documented_curl_session_works(tmp_path: Path) -> None:
    """Each documented call answers as the doc says, with the doc's own HMAC recipe."""
    home = tmp_path / "home"
    home.mkdir()
    port, _ = make_home(home)
    coordinator = Coordinator.open(home)
    try:
        now = coordinator.now()
        coordinator.policy.bootstrap_default(now=now)
        coordinator.ledger.open_client("client-42", ["BTC"], at=now)
        coordinator.ledger.open_accounts([AccountKey.custody("cold", "BTC")], at=now)
        coordinator.ledger.apply(Transfer(
            idempotency_key="doc-deposit", kind=Kind.DEPOSIT, at=now, metadata={},
            postings=(debit(AccountKey.custody("cold", "BTC"), 1_000_000),
                      credit(AccountKey.available("client-42", "BTC"), 1_000_000))))
        coordinator.policy.add_whitelist("client-42", "BTC", DESTINATION, by="client:client-42",
                                         now=now - dt.timedelta(days=3))
        key = open_integrations(coordinator).create("doc", by="alice", now=now)
    finally:
        coordinator.close()
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    serve = ServiceProcess.python("serve", ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port),
                                            "--no-recon"], workdir=tmp_path, port=port, env=env, ready_timeout_s=60)
    script = _bash_block().replace("\ncoffer_call ", "\necho\ncoffer_call ")
    with serve:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                                timeout=120, check=False,
                                env={**env, "COFFER_URL": f"http://127.0.0.1:{port}", "KEY_ID": key.key_id,
                                     "SECRET": key.secret})
    assert 0 == result.returncode, result.stderr
    opened, balances, withdrawal, feed = (json.loads(line) for line in result.stdout.split("\n") if line.strip())
    assert "client-42" == opened["client_id"]
    assert {"available": 1_000_000, "held": 0} == balances["balances"]["BTC"]
    assert (150_000, "awaiting_approval", DESTINATION) == (withdrawal["amount_minor"], withdrawal["state"],
                                                           withdrawal["destination"])
    submitted = [e for e in feed["events"] if e["event"] == "policy.request_submitted"]
    assert [withdrawal["id"]] == [e["payload"]["request_digest"] for e in submitted]
