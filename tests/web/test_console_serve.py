"""`coffer serve` as a process over a fresh data directory: health, OpenAPI, metrics, the console
sign-in page and the public proof page answer; the halt-notice server runs beside it."""

from __future__ import annotations

import os
import random
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coffer.home import init_home
from coffer.testing import ServiceProcess, free_port
from coffer.testing.processes import port_open
from coffer.testing.tokens import process_softhsm_conf


def make_home(home: Path) -> tuple[int, int]:
    """A data directory with its own token and ports; returns (web port, notice port)."""
    web_port, notice_port = free_port(), free_port()
    (home / "coffer.toml").write_text(
        f'[hsm]\nsofthsm_conf = "{process_softhsm_conf()}"\ntoken_label = "serve-{random.randrange(1 << 30)}"\n'
        f"[web]\nport = {web_port}\nnotice_port = {notice_port}\n")
    init_home(home)
    return web_port, notice_port


def serve_process(tmp_path: Path) -> ServiceProcess:
    """`coffer serve` over a fresh data directory in `tmp_path` (not yet started)."""
    home = tmp_path / "home"
    home.mkdir()
    port, _notice_port = make_home(home)
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    process = ServiceProcess.python("serve", ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)],
                                    workdir=tmp_path, port=port, env=env, ready_timeout_s=120,
                                    ready=lambda: _healthy(f"http://127.0.0.1:{port}"))
    process.env = env
    return process


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int]]:
    process = serve_process(tmp_path)
    notice_port = int(tomllib.loads((tmp_path / "home" / "coffer.toml").read_text())["web"]["notice_port"])
    with process:
        assert f"listening on http://127.0.0.1:{process.port}" in process.log_tail().splitlines()
        yield f"http://127.0.0.1:{process.port}", notice_port


def _healthy(url: str) -> bool:
    """The port accepts from the first moment (it is bound before anything slow), so readiness is an answer."""
    try:
        return 200 == httpx.get(url + "/health", timeout=2).status_code
    except httpx.HTTPError:
        return False


def test_coffer_serve_answers(served: tuple[str, int]) -> None:
    """The served app says where it listens, documents its API routes and answers health, metrics and the pages."""
    url, notice_port = served
    with httpx.Client(base_url=url, timeout=10) as client:
        assert {"status": "ok"} == client.get("/health").json()
        assert "ok" == client.get("/health/ready").json()["status"]
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/api/v1/console/approvals", "/api/v1/console/halt/resume", "/api/v1/public/por/verify",
                "/metrics", "/api/v1/session"} <= set(paths)
        assert "coffer_halted 0.0" in client.get("/metrics").text
        assert 'id="signin-key"' in client.get("/console/signin").text
        assert "No proof of reserves has been published yet" in client.get("/por").text
        assert 401 == client.get("/api/v1/console/status").status_code
    assert port_open(notice_port)
