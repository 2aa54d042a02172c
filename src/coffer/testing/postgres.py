"""A throw-away PostgreSQL server for tests and benchmarks.

initdb refuses to run as root, so the server runs as the `postgres` system user in a temp
directory that user owns, listening on 127.0.0.1 and a unix socket in that directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from coffer.errors import CofferError
from coffer.testing.processes import free_port
from coffer.testing.wait import wait_until

__all__ = ["PostgresServer", "PostgresUnavailable", "postgres_bindir", "kill_postmaster", "create_database"]

_START_TIMEOUT_S = 60


class PostgresUnavailable(CofferError):
    """PostgreSQL binaries are missing or the server would not start."""


def postgres_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if not candidates:
        raise PostgresUnavailable("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
    return Path(candidates[0]).parent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_postmaster(data_dir: Path) -> int:
    """SIGKILL the postmaster of `data_dir` and every process it runs, at once; returns how many died."""
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return 0
    postmaster = int(pid_file.read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False)
    pids = [postmaster, *(int(p) for p in children.stdout.split())]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(lambda: not any(_alive(pid) for pid in pids), timeout=30, what="PostgreSQL processes gone")
    return len(pids)


def create_database(url_of: Callable[[str], str], name: str | None = None) -> str:
    """CREATE DATABASE through the `postgres` database; returns the new database's URL."""
    name = name or f"t_{uuid.uuid4().hex[:16]}"
    engine = sa.create_engine(url_of("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return url_of(name)


class PostgresServer:
    """Start with `start()`, stop with `stop()`; `url(db)` gives a SQLAlchemy URL."""

    def __init__(self, *, port: int | None = None, base_dir: Path | None = None, durable: bool = False) -> None:
        self.port = port or free_port()
        self.durable = durable  # fsync and full-page writes on: what a crash test needs
        self._owned_dir = base_dir is None
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="coffer-pg-"))
        self.data_dir = self.base_dir / "data"
        self._bindir = postgres_bindir()
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=_START_TIMEOUT_S, check=False)

    def start(self) -> PostgresServer:
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.base_dir, user.pw_uid, user.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            result = self._run(str(self._bindir / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                               "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
            if result.returncode != 0:
                raise PostgresUnavailable(f"initdb failed: {result.stderr.strip()[-500:]}")
        safety = "on" if self.durable else "off"
        options = (f"-p {self.port} -k {self.base_dir} -c listen_addresses=127.0.0.1 -c fsync={safety} "
                   f"-c synchronous_commit=on -c full_page_writes={safety} -c max_connections=200")
        result = self._run(str(self._bindir / "pg_ctl"), "-D", str(self.data_dir), "-l",
                           str(self.base_dir / "server.log"), "-o", options, "-w", "start")
        if result.returncode != 0:
            log = (self.base_dir / "server.log")
            tail = log.read_text()[-800:] if log.exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {result.stderr.strip()[-300:]} {tail}")
        wait_until(self._ready, timeout=_START_TIMEOUT_S, what="PostgreSQL accepting connections")
        return self

    def _ready(self) -> bool:
        engine = sa.create_engine(self.url("postgres"))
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text("select 1")).scalar() == 1
        finally:
            engine.dispose()

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        return create_database(self.url, name)

    def drop_database(self, name: str) -> None:
        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            engine.dispose()

    def kill(self) -> int:
        """SIGKILL the postmaster and every backend at once (a crash, not a stop); returns how many died."""
        return kill_postmaster(self.data_dir)

    def restart(self) -> None:
        self.stop(remove=False)
        self.start()

    def stop(self, *, remove: bool = True) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run(str(self._bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        if remove and self._owned_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
