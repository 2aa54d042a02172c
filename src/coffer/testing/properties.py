"""A pytest plugin for property tests: they explore (CI included) from one seed per run, printed in the
header, with at least PROPERTY_EXAMPLES_MIN examples per property.

`--hypothesis-seed=N` (or COFFER_HYPOTHESIS_SEED=N) replays a run; a failed run prints that hint, and
Hypothesis prints the failing example's `@reproduce_failure` blob. With CI set there is no example
database, so the seed alone decides what runs. A property test that asks for fewer examples is a
collection error: make its strategy cheaper instead.

Load it with `pytest_plugins = ["coffer.testing.properties"]` or `-p coffer.testing.properties`.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

import pytest
from hypothesis import is_hypothesis_test, settings

__all__ = ["PROPERTY_EXAMPLES_MIN", "SEED_VARIABLE"]

PROPERTY_EXAMPLES_MIN = 200
SEED_VARIABLE = "COFFER_HYPOTHESIS_SEED"

settings.register_profile("coffer", max_examples=PROPERTY_EXAMPLES_MIN, derandomize=False, print_blob=True)
settings.register_profile("ci", settings.get_profile("coffer"), database=None)
settings.load_profile("ci" if os.environ.get("CI") else "coffer")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """One seed for the run, chosen here unless given, so the header can print it (Hypothesis reads it after)."""
    if config.getoption("hypothesis_seed", None) is None:
        config.option.hypothesis_seed = os.environ.get(SEED_VARIABLE) or str(secrets.randbelow(2**32))


def pytest_sessionstart(session: pytest.Session) -> None:
    """The seed on its own line at the start, also under `-q` (which hides the report header)."""
    seed = session.config.getoption("hypothesis_seed")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"hypothesis: seed {seed}, at least {PROPERTY_EXAMPLES_MIN} examples per property; "
                            f"replay with --hypothesis-seed={seed} (or {SEED_VARIABLE}={seed})")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if exitstatus != 0:
        seed = config.getoption("hypothesis_seed")
        terminalreporter.write_line(f"hypothesis seed {seed}: replay a failed property with "
                                    f"`pytest --hypothesis-seed={seed} <test id>`, or add the printed "
                                    "@reproduce_failure blob to it")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A property test that asks for fewer than PROPERTY_EXAMPLES_MIN examples is a collection error."""
    few = []
    for item in items:
        function = getattr(item, "obj", None)
        if function is None or not is_hypothesis_test(function):
            continue
        # the settings Hypothesis attached to the test (its own attribute); the profile's when none
        chosen = getattr(function, "_hypothesis_internal_use_settings", None) or settings.default
        examples = int(chosen.max_examples) if chosen is not None else PROPERTY_EXAMPLES_MIN
        if examples < PROPERTY_EXAMPLES_MIN:
            few.append(f"{item.nodeid} ({examples})")
    if few:
        raise pytest.UsageError(f"property tests with fewer than {PROPERTY_EXAMPLES_MIN} examples (make the strategy "
                                "cheaper instead): " + ", ".join(sorted(set(few))))
