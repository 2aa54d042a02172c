"""`coffer doctor` checks for the chains: the kernel library works, py-evm starts, hardhat is installed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["doctor_checks", "hardhat_path", "REGTEST_GENESIS_HASH"]

REGTEST_GENESIS_HASH = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"


def hardhat_path(project_root: Path | None = None) -> Path:
    """node_modules/.bin/hardhat of the checkout (installed by `make` from package-lock.json)."""
    if project_root is not None:
        return project_root / "node_modules" / ".bin" / "hardhat"
    checkout = Path(__file__).resolve().parents[3] / "node_modules" / ".bin" / "hardhat"
    return checkout if checkout.exists() else Path.cwd() / "node_modules" / ".bin" / "hardhat"


def _kernel_check() -> tuple[str, bool, str]:
    try:
        from coffer.chain.regtest.kernel import Kernel, kernel_version

        with tempfile.TemporaryDirectory(prefix="coffer-doctor-") as tmp:
            kernel = Kernel(Path(tmp) / "kernel")
            try:
                genesis = kernel.active_hash(0)[::-1].hex()
            finally:
                kernel.close()
        ok = genesis == REGTEST_GENESIS_HASH
        return "bitcoin kernel (libbitcoinkernel)", ok, f"{kernel_version()}, regtest genesis {genesis[:16]}…"
    except Exception as exc:  # any failure to load or run the library is the finding
        return "bitcoin kernel (libbitcoinkernel)", False, f"{type(exc).__name__}: {str(exc)[:160]}"


def _pyevm_check() -> tuple[str, bool, str]:
    try:
        from coffer.chain.ethereum import EmbeddedEthereum

        chain = EmbeddedEthereum(accounts=1)
        return "ethereum embedded (py-evm)", True, f"chain id {chain.chain_id()}, block {chain.block_number()}"
    except Exception as exc:  # any failure to start is the finding
        return "ethereum embedded (py-evm)", False, f"{type(exc).__name__}: {str(exc)[:160]}"


def _hardhat_check() -> tuple[str, bool, str]:
    path = hardhat_path()
    node = shutil.which("node")
    if node is None:
        return "ethereum dev node (hardhat@2)", False, "node (Node.js) not on PATH"
    if not path.exists():
        return "ethereum dev node (hardhat@2)", False, f"{path} missing (run make setup / npm ci)"
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60,
                             cwd=path.parents[2], check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "ethereum dev node (hardhat@2)", False, f"{type(exc).__name__}"
    version = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr.strip()[:120]
    return "ethereum dev node (hardhat@2)", out.returncode == 0 and version.startswith("2."), f"hardhat {version}"


def doctor_checks() -> list[tuple[str, bool, str]]:
    """(name, ok, detail) for the kernel library, the embedded EVM and the hardhat dev node."""
    return [_kernel_check(), _pyevm_check(), _hardhat_check()]
