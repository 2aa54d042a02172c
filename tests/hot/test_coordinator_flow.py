"""The demo's path: a `coffer init` home, the coordinator's own pins and notice server, co-signer processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FLOW = """
import sys
from pathlib import Path
from nacl.signing import VerifyKey
from coffer.canonical import canonical_json
from coffer.coordinator import Coordinator
from coffer.home import init_home
from coffer.hot import HotWallet
from coffer.mpc.service import hsm_publication_attester, publication_public_key, publication_signer
from coffer.mpc.service.cli import open_coordinator
from coffer.mpc.service.harness import spawn_cosigners
from coffer.testing.governance import Quorum
from coffer.mpc.service.server import cosigner_dir

home = Path(sys.argv[1])
quorum = Quorum.generate()
init_home(home)
coordinator = Coordinator.open(home)
coordinator.policy.bootstrap_default(now=coordinator.now())
coordinator.start_notice_server()
for cosigner in (1, 2, 3):
    coordinator.signer_pins().save(cosigner_dir(home, cosigner))
    quorum.provision(cosigner_dir(home, cosigner))
processes, _ = spawn_cosigners(home, (1, 2, 3))
try:
    mpc = open_coordinator(home, coordinator.engine, approve=quorum.approve)
    mpc.dkg("publication", "ed25519", 2)
    mpc.dkg("hot-btc", "taproot", 2)
    sign = publication_signer(mpc, hsm_publication_attester(coordinator.hsm))
    document = b"coffer-por-statement/1\\n" + canonical_json({"asset": "BTC", "height": 1})
    VerifyKey(publication_public_key(mpc)).verify(document, sign(document))
    wallet = HotWallet(coordinator.engine, coordinator.bitcoin, coordinator.ledger, mpc, key_id="hot-btc")
    assert wallet.address().startswith("bcrt1p")
    print("FLOW-OK")
finally:
    for process in processes.values():
        process.stop()
    coordinator.close()
"""


def test_coordinator_home_drives_cosigners(tmp_path: Path) -> None:
    """From a fresh data directory: pins from the coordinator and the administrators, DKG, a publication signature,
    the hot address."""
    # A child process: `coffer init` repoints this process's SoftHSM2 at the new home's tokens.
    result = subprocess.run([sys.executable, "-c", FLOW, str(tmp_path / "home")], capture_output=True, text=True,
                            timeout=300, check=False)
    assert "FLOW-OK" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
