"""A pytest plugin that fails the run when a process the tests started is still running at the end.

Every process started under the run inherits `COFFER_TEST_RUN=<id>` from the pytest process (set
when the plugin loads), so a process is the run's when its environment carries that id, or when
it descends from the pytest process. At session end, after every fixture is torn down, such
processes get a grace period to exit; those left are listed, the run fails, and then they are
killed (SIGKILL) so a failed run leaves nothing behind either. Zombies are not counted (they hold
no resources but a process-table slot, and their parent reaps them).

Linux only (/proc). Load it with `pytest_plugins = ["coffer.testing.leaks"]` or `-p coffer.testing.leaks`.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from coffer.testing.wait import WaitTimeout, wait_until

__all__ = ["RUN_VARIABLE", "GRACE_VARIABLE", "LeftProcess", "left_processes", "EXIT_GRACE_S"]

RUN_VARIABLE = "COFFER_TEST_RUN"
GRACE_VARIABLE = "COFFER_TEST_EXIT_GRACE_S"  # seconds the run's processes get to exit (the checker's own tests: 1)
EXIT_GRACE_S = 10.0
COMMAND_CHARS_MAX = 200
_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class LeftProcess:
    pid: int
    command: str


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) from /proc/PID/stat; None when the process is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[1])


def _carries(pid: int, marker: bytes) -> bool:
    try:
        return marker in (_PROC / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _command(pid: int) -> str:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:COMMAND_CHARS_MAX]


def left_processes(run_id: str, root_pid: int) -> list[LeftProcess]:
    """Live processes (not zombies) of this run other than `root_pid`: its marker, or below `root_pid`."""
    marker = f"{RUN_VARIABLE}={run_id}".encode()
    states: dict[int, tuple[str, int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
            states[int(entry.name)] = found

    def below_root(pid: int) -> bool:
        for _ in range(len(states)):
            parent = states.get(pid, ("", 0))[1]
            if parent == root_pid:
                return True
            if parent <= 1:
                return False
            pid = parent
        return False

    return [LeftProcess(pid, _command(pid)) for pid, (state, parent) in sorted(states.items())
            if pid != root_pid and state != "Z" and (below_root(pid) or _carries(pid, marker))
            and not (parent == root_pid and _interpreter_helper(pid))]


def _interpreter_helper(pid: int) -> bool:
    """Python's own multiprocessing helper (resource tracker, fork server) of the pytest process:
    it ends when that process ends, so it is not something a test left behind."""
    command = _command(pid)
    return "from multiprocessing.resource_tracker import main" in command or \
        "from multiprocessing.forkserver import main" in command


def _kill(processes: list[LeftProcess]) -> None:
    for process in processes:
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def pytest_configure(config: pytest.Config) -> None:
    # a fresh id per pytest process: a pytest run inside a test checks its own processes
    os.environ[RUN_VARIABLE] = uuid.uuid4().hex
    config.stash[_ROOT] = os.getpid()


_ROOT = pytest.StashKey[int]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Iterator[None]:
    """Around every other session-end hook (pytest's own tears the fixtures down): checks even when one raises."""
    try:
        return (yield)
    finally:
        _check(session)


def _check(session: pytest.Session) -> None:
    run_id, root = os.environ[RUN_VARIABLE], session.config.stash[_ROOT]
    grace_s = float(os.environ.get(GRACE_VARIABLE, EXIT_GRACE_S))
    try:
        wait_until(lambda: not left_processes(run_id, root), timeout=grace_s, interval=0.2,
                   what="test processes exit")
        return
    except WaitTimeout:
        left = left_processes(run_id, root)
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"{len(left)} process(es) started by the tests are still running (now killed):"]
    lines += [f"  pid {process.pid}: {process.command}" for process in left]
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line("\n".join(lines), red=True)
    _kill(left)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
