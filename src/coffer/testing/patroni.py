"""A PostgreSQL cluster under Patroni for tests and benchmarks: one etcd, N PostgreSQL members
with synchronous replication (`synchronous_mode`), every process running as the `postgres` user on
loopback ports in a temp directory that user owns. No leader election of our own: Patroni decides.

`url(db)` gives a multi-host SQLAlchemy URL with `target_session_attrs=read-write`, so a client
always lands on the current primary and finds the new one after a fail-over.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from coffer.errors import CofferError
from coffer.testing.postgres import create_database, kill_postmaster, postgres_bindir
from coffer.testing.processes import free_port
from coffer.testing.wait import wait_until

__all__ = ["PatroniCluster", "PatroniUnavailable", "Member"]

_START_TIMEOUT_S = 120
SUPERUSER_PASSWORD = "coffer-test"


class PatroniUnavailable(CofferError):
    """Patroni or etcd is missing, or the cluster would not come up."""


@dataclass
class Member:
    name: str
    pg_port: int
    api_port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None


def _demote(user: pwd.struct_passwd) -> Any:
    def run() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    return run


class PatroniCluster:
    def __init__(self, *, members: int = 2, base_dir: Path | None = None, ttl_s: int = 10) -> None:
        for tool in ("patroni", "etcd"):
            if shutil.which(tool) is None:
                raise PatroniUnavailable(f"{tool} is not installed (apt-get install patroni etcd-server)")
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="coffer-patroni-"))
        self.scope = f"coffer-{uuid.uuid4().hex[:8]}"
        self.ttl_s = ttl_s
        self.etcd_port, self._etcd_peer_port = free_port(), free_port()
        self.members = [Member(f"pg{i}", free_port(), free_port(), self.base_dir / f"pg{i}") for i in range(members)]
        self._etcd: subprocess.Popen[bytes] | None = None
        self._user = pwd.getpwnam("postgres")

    def _spawn(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as sink:
            kwargs: dict[str, Any] = {"stdout": sink, "stderr": subprocess.STDOUT, "cwd": self.base_dir,
                                      "start_new_session": True}
            if os.geteuid() == 0:
                kwargs["preexec_fn"] = _demote(self._user)
                kwargs["env"] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.base_dir),
                                 "LANG": "C.UTF-8"}
            return subprocess.Popen(argv, **kwargs)  # noqa: S603 - fixed argv

    def start(self) -> PatroniCluster:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(self.base_dir, self._user.pw_uid, self._user.pw_gid)
        self._etcd = self._spawn([
            "etcd", "--name", "etcd0", "--data-dir", str(self.base_dir / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{self._etcd_peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self._etcd_peer_port}",
            "--initial-cluster", f"etcd0=http://127.0.0.1:{self._etcd_peer_port}", "--enable-v2=true"],
            self.base_dir / "etcd.log")
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{self.etcd_port}/health", timeout=2).status_code == 200,
                   timeout=_START_TIMEOUT_S, what="etcd healthy")
        for member in self.members:
            self.start_member(member)
        wait_until(self.leader, timeout=_START_TIMEOUT_S, what="a Patroni leader")
        if len(self.members) > 1:
            wait_until(self.sync_standby, timeout=_START_TIMEOUT_S, what="a synchronous standby")
        return self

    def _config(self, member: Member) -> str:
        auth = {"superuser": {"username": "postgres", "password": SUPERUSER_PASSWORD},
                "replication": {"username": "replicator", "password": "replicator"},
                "rewind": {"username": "rewinder", "password": "rewinder"}}
        config = {
            "scope": self.scope, "namespace": "/coffer/", "name": member.name,
            "restapi": {"listen": f"127.0.0.1:{member.api_port}", "connect_address": f"127.0.0.1:{member.api_port}"},
            "etcd": {"host": f"127.0.0.1:{self.etcd_port}"},
            "bootstrap": {
                "dcs": {"ttl": self.ttl_s, "loop_wait": 1, "retry_timeout": 4, "synchronous_mode": True,
                        "maximum_lag_on_failover": 1 << 20,
                        "postgresql": {"use_pg_rewind": True, "parameters": {
                            "fsync": "on", "synchronous_commit": "on", "full_page_writes": "on",
                            "wal_log_hints": "on", "max_connections": 200}}},
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}],
                "pg_hba": ["host replication replicator 127.0.0.1/32 trust", "host all all 127.0.0.1/32 trust",
                           "local all all trust"]},
            "postgresql": {"listen": f"127.0.0.1:{member.pg_port}", "connect_address": f"127.0.0.1:{member.pg_port}",
                           "data_dir": str(member.data_dir), "bin_dir": str(postgres_bindir()),
                           "pgpass": str(self.base_dir / f"{member.name}.pgpass"), "authentication": auth,
                           "parameters": {"unix_socket_directories": str(self.base_dir)}},
        }
        return json.dumps(config)  # JSON is YAML

    def start_member(self, member: Member) -> None:
        path = self.base_dir / f"{member.name}.yml"
        path.write_text(self._config(member))
        if os.geteuid() == 0:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)
        member.process = self._spawn(["patroni", str(path)], self.base_dir / f"{member.name}.log")

    def _status(self, member: Member) -> dict[str, Any] | None:
        try:
            answer = httpx.get(f"http://127.0.0.1:{member.api_port}/patroni", timeout=2)
        except httpx.HTTPError:
            return None
        return answer.json() if answer.status_code in (200, 503) else None

    def leader(self) -> Member | None:
        for member in self.members:
            status = self._status(member)
            if status is not None and status.get("role") in ("master", "primary") and status.get("state") == "running":
                return member
        return None

    def sync_standby(self) -> Member | None:
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.members[0].api_port}/cluster", timeout=2)
        except httpx.HTTPError:
            return None
        for entry in answer.json().get("members", []):
            if entry.get("role") == "sync_standby" and entry.get("state") in ("running", "streaming"):
                return next(m for m in self.members if m.name == entry["name"])
        return None

    def url(self, database: str) -> str:
        hosts = "&".join(f"host=127.0.0.1:{m.pg_port}" for m in self.members)
        return (f"postgresql+psycopg://postgres:{SUPERUSER_PASSWORD}@/{database}?{hosts}"
                "&target_session_attrs=read-write&connect_timeout=3")

    def create_database(self, name: str | None = None) -> str:
        return create_database(self.url, name)

    def kill_member(self, member: Member) -> None:
        """SIGKILL the member's Patroni and every PostgreSQL process it runs: the machine is gone."""
        if member.process is not None:
            member.process.kill()
        kill_postmaster(member.data_dir)
        if member.process is not None:
            member.process.wait(timeout=30)
            member.process = None

    def stop(self) -> None:
        for member in self.members:
            if member.process is not None:
                member.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for member in self.members:
            if member.process is not None:
                try:
                    member.process.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.kill_member(member)
                member.process = None
        if self._etcd is not None:
            self._etcd.kill()
            self._etcd.wait(timeout=10)
            self._etcd = None
        subprocess.run(["pkill", "-9", "-f", str(self.base_dir)], check=False)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PatroniCluster:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
