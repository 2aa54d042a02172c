"""The session-end process check: a pytest run that leaves a process fails and kills it; a clean run passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from coffer.testing.leaks import GRACE_VARIABLE, RUN_VARIABLE

SLEEPER = "[sys.executable, '-c', 'import time; time.sleep(300)', 'leak-marker-{tag}']"

LEAKY = f'''
import subprocess, sys

def test_leaves_a_child():
    """A detached sleeper (own session, as services are) that is never stopped."""
    subprocess.Popen({SLEEPER.format(tag="child")}, start_new_session=True)

def test_leaves_a_daemon():
    """A double fork, as gpg-agent does: re-parented away from pytest, only its environment tells."""
    spawn = "import subprocess, sys; subprocess.Popen({SLEEPER.format(tag="daemon")}, start_new_session=True)"
    subprocess.run([sys.executable, "-c", spawn], check=True)
'''

CLEAN = '''
import subprocess, sys

def test_stops_its_process():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    process.kill()
    process.wait()
'''


def _run(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(source)
    env = {key: value for key, value in os.environ.items() if key != RUN_VARIABLE}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "coffer.testing.leaks",
                           f"--basetemp={tmp_path / 'base'}", "test_inner.py"], cwd=tmp_path,
                          env={**env, GRACE_VARIABLE: "1"}, capture_output=True, text=True, timeout=120, check=False)


def _running(tag: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and f"leak-marker-{tag}".encode() in (entry / "cmdline").read_bytes():
                found.append(entry.name)
        except OSError:
            continue
    return found


def test_left_processes_fail_the_run_and_are_killed(tmp_path: Path) -> None:
    """A left child and a left double-forked daemon: the inner run fails, names both, and both are gone."""
    result = _run(tmp_path, LEAKY)
    assert 1 == result.returncode, result.stdout[-2000:]
    assert "2 process(es) started by the tests are still running" in result.stdout, result.stdout[-2000:]
    assert ("leak-marker-child" in result.stdout, "leak-marker-daemon" in result.stdout) == (True, True)
    assert ([], []) == (_running("child"), _running("daemon"))


def test_a_clean_run_passes(tmp_path: Path) -> None:
    """A test that stops what it starts passes the check."""
    result = _run(tmp_path, CLEAN)
    assert 0 == result.returncode, result.stdout[-2000:]
    assert "still running" not in result.stdout
