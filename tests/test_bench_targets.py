"""The benchmarks' targets are pinned, and each benchmark's verdict fails on a figure past its target.

The targets come from the issues that set them (3, 5, 6, 7, 8, 9, 10, 12) or, for the benchmarks no
issue gave one, from issue 19; lowering one must show up here. The benchmarks themselves run only
under `make bench`, never as timed tests.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

# module -> {constant: (limit, at_most)}
PINNED: dict[str, dict[str, tuple[float, bool]]] = {
    "frost": {"TARGET_P50": (20.0, True), "TARGET_PER_S": (200.0, False)},
    "ledger": {"TARGET_PG_TPS": (25_000.0, False), "TARGET_RATIO": (20.0, False)},
    "web": {"TARGET_RPS": (500.0, False), "TARGET_P99_MS": (100.0, True), "TARGET_ERRORS": (0.0, True)},
    "cold_batch": {"TARGET_SECONDS": (10.0, True)},
    "ecdsa": {"TARGET_P50_MS": (150.0, True)},
    "recon": {"TARGET_POSITIONS_S": (1.0, True), "TARGET_ONCHAIN_S": (10.0, True)},
    "policy": {"TARGET_PER_S": (5_000.0, False)},
    "regtest": {"TARGET_TX_PER_S": (1_000.0, False), "TARGET_RPC_PER_S": (1_000.0, False)},
    "frost_lib": {"TARGET_SESSION_MS": (20.0, True)},
    "ecdsa_lib": {"TARGET_SIGN_MS": (150.0, True)},
    "dkg_lib": {"TARGET_DKG_MS": (1_000.0, True)},
    "ledger_ha": {"TARGET_RATIO": (0.5, False)},  # issue 25
}


@pytest.fixture(scope="module")
def bench_path() -> Iterator[None]:
    sys.path.insert(0, str(BENCH))
    try:
        yield
    finally:
        sys.path.remove(str(BENCH))


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def _targets(name: str) -> list[Any]:
    module = _module(name)
    if name == "por":
        return list(module.targets(module.ACCOUNTS_DEFAULT))
    return [getattr(module, constant) for constant in PINNED[name]]


def _past(target: Any) -> float:
    """A figure just past the target: a little above an upper bound, a little below a lower one."""
    step = max(abs(target.limit) * 1e-6, 1e-6)
    return float(target.limit + step if target.at_most else target.limit - step)


def test_every_benchmark_is_pinned(bench_path: None) -> None:
    """Every benchmark under bench/ has its targets pinned here (verdict.py is the shared helper)."""
    benchmarks = {path.stem for path in BENCH.glob("*.py")} - {"verdict"}
    assert benchmarks == set(PINNED) | {"por"}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_target_constants_are_pinned(bench_path: None, name: str) -> None:
    """Each target constant keeps the bound and direction its issue set."""
    module = _module(name)
    actual = {constant: (float(getattr(module, constant).limit), getattr(module, constant).at_most)
              for constant in PINNED[name]}
    assert PINNED[name] == actual


def test_por_targets_are_pinned(bench_path: None) -> None:
    """The liabilities targets: 60 s per 10,000,000 accounts (scaled to the count run), 2 KB, 5 ms."""
    por = _module("por")
    assert (60.0, 2048, 5.0) == (por.BUILD_S_PER_10M, por.PROOF_BYTES_MAX, por.VERIFY_MS_MAX)
    assert [60.0, 2048.0, 5.0] == [target.limit for target in por.targets(10_000_000)]
    assert 6.0 == por.targets(1_000_000)[0].limit


@pytest.mark.parametrize("name", sorted([*PINNED, "por"]))
def test_verdict_exits_non_zero_just_past_each_target(bench_path: None, name: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A figure just past any one target gives exit code 1 and a `not met` line; on target, 0 and `met`."""
    verdict = _module("verdict").verdict
    targets = _targets(name)
    for missed in targets:
        figures = [(target, _past(target) if target is missed else target.limit) for target in targets]
        assert 1 == verdict(figures)
        lines = capsys.readouterr().out.splitlines()
        assert [f"target {missed.what} not met"] == [line.split(" (figure")[0] for line in lines
                                                     if line.endswith(")") and " not met " in line]
    assert 0 == verdict([(target, target.limit) for target in targets])
    assert all(" met (figure" in line and " not met" not in line for line in capsys.readouterr().out.splitlines())
