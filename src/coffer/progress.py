"""Progress bars for long work (proof build, ceremony, DKG, demo stages), silenced by `--quiet`.

A bar is drawn only on a terminal; in a pipe, a log or under `--quiet` the same calls do nothing,
so callers never branch on it. Nothing here prints a secret: callers pass descriptions only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["Step", "progress", "set_quiet", "is_quiet"]

_state = {"quiet": False}


def set_quiet(quiet: bool) -> None:
    _state["quiet"] = quiet


def is_quiet() -> bool:
    return _state["quiet"]


class Step:
    """Moves one bar on (or nothing, when progress is not shown)."""

    def __init__(self, bar: Progress | None, task: TaskID | None) -> None:
        self._bar = bar
        self._task = task
        self.done = 0

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, count)

    def describe(self, text: str) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=text)


@contextmanager
def progress(description: str, total: int | None = None, *, console: Console | None = None) -> Iterator[Step]:
    """A bar of TOTAL steps (a pulsing one when TOTAL is unknown) while the block runs."""
    target = console or Console(stderr=True)
    if is_quiet() or not target.is_terminal:
        yield Step(None, None)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=target, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield Step(bar, task)
