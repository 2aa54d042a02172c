"""A real Ethereum dev node (hardhat@2 from the checkout's node_modules) as a separate process on
127.0.0.1, for tests and the demo. Hardhat refuses to run outside a project, so a throw-away
project directory with a config and a link to node_modules is made first."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

from coffer.chain.doctor import hardhat_path
from coffer.testing.processes import ServiceProcess, free_port

__all__ = ["hardhat_node"]


def _answers(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - a loopback URL made here
            return bool(json.loads(response.read()).get("result"))
    except OSError:
        return False


def hardhat_node(project: Path, *, chain_id: int, port: int | None = None,
                 env: dict[str, str] | None = None) -> tuple[ServiceProcess, str]:
    """An unstarted node process in `project` and its JSON-RPC URL; `.start()` waits until it answers."""
    binary = hardhat_path()
    if not binary.exists():
        raise FileNotFoundError(f"{binary} is missing: `make` installs the npm dev dependencies")
    project.mkdir(parents=True, exist_ok=True)
    (project / "package.json").write_text('{"name": "coffer-hardhat", "private": true}')
    (project / "hardhat.config.js").write_text(
        f"module.exports = {{ networks: {{ hardhat: {{ chainId: {chain_id} }} }} }};\n")
    if not (project / "node_modules").exists():
        (project / "node_modules").symlink_to(binary.parents[1])
    port = port or free_port()
    url = f"http://127.0.0.1:{port}/"
    node = ServiceProcess("hardhat", [str(binary), "--config", str(project / "hardhat.config.js"), "node",
                                      "--hostname", "127.0.0.1", "--port", str(port)],
                          workdir=project, port=port, env=env if env is not None else dict(os.environ),
                          ready=lambda: _answers(url), ready_timeout_s=90)
    return node, url
