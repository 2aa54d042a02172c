"""The property-test plugin: a printed seed replays the same failure, and too few examples is refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from coffer.testing.properties import PROPERTY_EXAMPLES_MIN, SEED_VARIABLE

FAILING = '''
from hypothesis import Phase, given, settings, strategies as st

@settings(phases=[Phase.generate])  # no shrinking: the failing example is the first one the seed draws
@given(st.integers(0, 2**64))
def test_small(number):
    assert number < 2**60
'''

TOO_FEW = '''
from hypothesis import given, settings, strategies as st

@settings(max_examples=10)
@given(st.integers())
def test_few(number):
    assert number == number
'''


def _run(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(source)
    env = {key: value for key, value in os.environ.items() if key not in (SEED_VARIABLE, "CI")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                           "coffer.testing.properties", *args, "test_inner.py"], cwd=tmp_path, env={**env, "CI": "1"},
                          capture_output=True, text=True, timeout=300, check=False)


def _falsifying(output: str) -> str:
    """The failing example, as the blob Hypothesis prints for @reproduce_failure."""
    found = re.search(r"@reproduce_failure\('[^']+', (b'[^']*')\)", output)
    assert found is not None, output[-2000:]
    return found.group(1)


def test_a_failure_prints_its_seed_and_the_seed_replays_it(tmp_path: Path) -> None:
    """A run draws and prints a seed and says how to replay; the replay with that seed fails on the same example."""
    drawn = _run(tmp_path, FAILING)
    seed = re.search(r"hypothesis: seed (\d+)", drawn.stdout)
    assert seed is not None, drawn.stdout[-2000:]
    assert f"replay a failed property with `pytest --hypothesis-seed={seed.group(1)}" in drawn.stdout
    replayed = _run(tmp_path, FAILING, f"--hypothesis-seed={seed.group(1)}")
    assert (1, 1) == (drawn.returncode, replayed.returncode)
    assert _falsifying(drawn.stdout) == _falsifying(replayed.stdout)


def test_fewer_examples_than_the_minimum_is_refused(tmp_path: Path) -> None:
    """A property asking for 10 examples stops the run at collection, naming it."""
    result = _run(tmp_path, TOO_FEW)
    assert 4 == result.returncode  # pytest's usage error
    assert f"fewer than {PROPERTY_EXAMPLES_MIN} examples" in result.stdout + result.stderr
    assert "test_few (10)" in result.stdout + result.stderr
