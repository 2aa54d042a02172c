"""Progress bars for long work: drawn on a terminal, silenced by --quiet, never in a pipe."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator

import pytest
from rich.console import Console

from coffer.progress import progress, set_quiet


@pytest.fixture(autouse=True)
def loud() -> Iterator[None]:
    set_quiet(False)
    yield
    set_quiet(False)


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=100), out


def test_bar_is_drawn_on_a_terminal() -> None:
    """On a terminal the bar shows its description and how far it got."""
    console, out = _terminal()
    with progress("building the proof", total=3, console=console) as step:
        for _ in range(3):
            step.advance()
    assert 3 == step.done
    assert "building the proof" in out.getvalue() and "3/3" in out.getvalue()


def test_quiet_silences_the_bar() -> None:
    """Under --quiet the same calls draw nothing (and still count)."""
    set_quiet(True)
    console, out = _terminal()
    with progress("building the proof", total=2, console=console) as step:
        step.advance(2)
    assert (2, "") == (step.done, out.getvalue())


def test_no_bar_in_a_pipe() -> None:
    """Output that is not a terminal (a log, a pipe) gets no bar."""
    out = io.StringIO()
    with progress("ceremony", total=1, console=Console(file=out, force_terminal=False)) as step:
        step.advance()
    assert "" == out.getvalue()


def test_global_flags_are_taken_anywhere_on_the_line() -> None:
    """`--quiet` and `--debug` may follow the command; the command still runs."""
    result = subprocess.run([sys.executable, "-m", "coffer.cli", "version", "--quiet", "--debug"], capture_output=True,
                            text=True, timeout=120, check=False)
    assert (0, "") == (result.returncode, result.stderr)
    assert result.stdout.startswith("coffer ")
