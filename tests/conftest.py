"""Shared fixtures: real PostgreSQL, per-test SoftHSM2 tokens, service processes, wait_until."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from coffer.db import make_engine, migrate
from coffer.testing import PostgresServer, ServiceProcess, TokenHandle, make_token, wait_until
from coffer.testing.tokens import process_softhsm_conf

# fails the run when a process a test started (node, server, key holder, gpg-agent, postgres) is left running
pytest_plugins = ["coffer.testing.leaks"]

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

# Property tests explore: every run (CI included) draws new examples from a seed printed in the header,
# at least PROPERTY_EXAMPLES_MIN per property; `--hypothesis-seed=N` (or COFFER_HYPOTHESIS_SEED=N) replays a run,
# and a failure also prints its `@reproduce_failure` blob. CI keeps no example database, so the seed alone decides.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

PROPERTY_EXAMPLES_MIN = 200
SEED_VARIABLE = "COFFER_HYPOTHESIS_SEED"
_hypothesis_settings.register_profile("coffer", max_examples=PROPERTY_EXAMPLES_MIN, derandomize=False, print_blob=True)
_hypothesis_settings.register_profile("ci", _hypothesis_settings.get_profile("coffer"), database=None)
_hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "coffer")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """One seed for the run, chosen here unless given, so the header can print it (Hypothesis reads it after)."""
    if config.getoption("hypothesis_seed", None) is None:
        config.option.hypothesis_seed = os.environ.get(SEED_VARIABLE) or str(secrets.randbelow(2**32))


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.getoption("hypothesis_seed")
    return (f"hypothesis: seed {seed}, at least {PROPERTY_EXAMPLES_MIN} examples per property; "
            f"replay with --hypothesis-seed={seed} (or {SEED_VARIABLE}={seed})")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if exitstatus != 0:
        seed = config.getoption("hypothesis_seed")
        terminalreporter.write_line(f"hypothesis seed {seed}: replay a failed property with "
                                    f"`pytest --hypothesis-seed={seed} <test id>`, or add the printed "
                                    "@reproduce_failure blob to it")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A property test that asks for fewer than PROPERTY_EXAMPLES_MIN examples is a collection error."""
    from hypothesis import is_hypothesis_test

    few = []
    for item in items:
        function = getattr(item, "obj", None)
        if function is None or not is_hypothesis_test(function):
            continue
        chosen = getattr(function, "_hypothesis_internal_use_settings", _hypothesis_settings.default)
        if chosen.max_examples < PROPERTY_EXAMPLES_MIN:
            few.append(f"{item.nodeid} ({chosen.max_examples})")
    if few:
        raise pytest.UsageError(f"property tests with fewer than {PROPERTY_EXAMPLES_MIN} examples (make the strategy "
                                f"cheaper instead): " + ", ".join(sorted(set(few))))
