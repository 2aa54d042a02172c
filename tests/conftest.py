"""Shared fixtures: real PostgreSQL, per-test SoftHSM2 tokens, service processes, wait_until."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from coffer.db import make_engine, migrate
from coffer.testing import PostgresServer, ServiceProcess, TokenHandle, make_token, wait_until
from coffer.testing.tokens import process_softhsm_conf

# leaks: fails the run when a process a test started (node, server, key holder, gpg-agent, postgres) is left
# running; properties: Hypothesis explores from a printed seed, at least 200 examples per property
pytest_plugins = ["coffer.testing.leaks", "coffer.testing.properties"]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session", autouse=True)
def _softhsm_conf() -> Iterator[Path]:
    """Every test process gets its own SoftHSM2 token directory before the module loads."""
    yield process_softhsm_conf()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session, started by the tests themselves."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL server."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'coffer.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated engine, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'coffer.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def token() -> TokenHandle:
    """A fresh SoftHSM2 token for this test."""
    return make_token()


@pytest.fixture
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    """Register ServiceProcess objects here; all are torn down, logs kept on failure."""
    started: list[ServiceProcess] = []
    yield started
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for service in reversed(started):
        service.stop()
        if failed and service.log_path.exists():
            target = ARTIFACTS / "logs" / request.node.name
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(service.log_path, target / service.log_path.name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def wait() -> object:
    return wait_until


os.environ.setdefault("COFFER_TESTING", "1")
