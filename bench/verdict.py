"""Targets and verdicts shared by every benchmark: each prints `target <what> met` or
`target <what> not met` per target and exits non-zero when any is missed (so `make bench` fails).

The target constants live in each benchmark module; tests/test_bench_targets.py pins them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Target:
    """One enforced target: `what` names the figure and its bound, e.g. "frost p50 <= 20 ms"."""

    what: str
    limit: float
    at_most: bool  # True: the figure must be <= limit; False: >= limit

    def met(self, figure: float) -> bool:
        return figure <= self.limit if self.at_most else figure >= self.limit


def at_most(what: str, limit: float) -> Target:
    return Target(what, limit, at_most=True)


def at_least(what: str, limit: float) -> Target:
    return Target(what, limit, at_most=False)


def verdict(results: Sequence[tuple[Target, float]]) -> int:
    """Print one verdict line per target; 0 when every target is met, 1 otherwise."""
    missed = 0
    for target, figure in results:
        met = target.met(figure)
        missed += not met
        print(f"target {target.what} {'met' if met else 'not met'} (figure {figure:,.3f})", flush=True)
    return 1 if missed else 0
