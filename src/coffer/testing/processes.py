"""Services as separate processes: own temp dir, free port, readiness by polling, logs kept."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from coffer.errors import CofferError
from coffer.testing.wait import WaitTimeout, wait_until

__all__ = ["ServiceProcess", "ServiceFailed", "free_port", "port_open"]


class ServiceFailed(CofferError):
    """A service process exited or never became ready; the message carries its log tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class ServiceProcess:
    """One child process; `start()` waits for `ready()` (default: its port accepts)."""

    def __init__(self, name: str, argv: Sequence[str], *, workdir: Path, port: int | None = None,
                 env: dict[str, str] | None = None, ready: Callable[[], object] | None = None,
                 ready_timeout_s: float = 30.0) -> None:
        self.name = name
        self.argv = list(argv)
        self.workdir = workdir
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self._ready = ready or ((lambda: port_open(port)) if port is not None else (lambda: True))
        self.ready_timeout_s = ready_timeout_s
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def python(cls, name: str, args: Sequence[str], **kwargs: object) -> ServiceProcess:
        """A `python -m coffer.cli ...` child using this interpreter."""
        return cls(name, [sys.executable, "-m", "coffer.cli", *args], **kwargs)  # type: ignore[arg-type]

    def launch(self) -> ServiceProcess:
        """Start the process without waiting for it (several can then start at once)."""
        if self.alive():  # a second process would orphan the first: `with p.start():` used to do that
            raise ServiceFailed(f"{self.name} is already running (pid {self.process.pid if self.process else '?'})")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.argv, cwd=self.workdir, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True, **self._as_owner())
        log.close()
        return self

    def start(self) -> ServiceProcess:
        self.launch()
        try:
            wait_until(self._alive_and_ready, timeout=self.ready_timeout_s, what=f"{self.name} ready")
        except WaitTimeout:
            self.stop()
            raise ServiceFailed(f"{self.name} did not become ready; log tail:\n{self.log_tail()}") from None
        return self

    def _as_owner(self) -> dict[str, Any]:
        """Started by root in a directory that a key holder's Unix user owns (as `coffer demo` lays
        it out), the process runs as that user, in that directory only, with a private umask: the
        directory is handed to its owner again first (root may have written pins into it)."""
        owner = self.workdir.stat().st_uid
        if os.geteuid() != 0 or owner == 0:
            return {}
        from coffer.layout import KEYHOLDER_DIR_ENV, keyholder_of_user, own_directory

        entry = pwd.getpwuid(owner)
        if keyholder_of_user(entry.pw_name) is None:
            return {}
        own_directory(self.workdir, entry.pw_uid, entry.pw_gid)
        self.env[KEYHOLDER_DIR_ENV] = str(self.workdir.resolve())
        self.env["HOME"] = str(self.workdir.resolve())
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [], "umask": 0o077}

    def _alive_and_ready(self) -> object:
        if self.process is not None and self.process.poll() is not None:
            raise ServiceFailed(f"{self.name} exited with {self.process.returncode}; log tail:\n{self.log_tail()}")
        return self._ready()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """kill -9: the crash tests' way to stop a service."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout_s)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            self.kill()

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
