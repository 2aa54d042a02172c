"""Process hardening and the clock rule: what the kernel reports after `harden_process()`, and
`check_clock` refusing a skewed or missing coordinator time by rule clock.skew."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from coffer.keyholder.errors import ClockSkewed
from coffer.keyholder.hardening import check_clock

_CHILD = """
import json, resource
from coffer.keyholder.hardening import dumpable, harden_process
before = dumpable()
state = harden_process()
print(json.dumps({"before": before, "dumpable": dumpable(), "core": resource.getrlimit(resource.RLIMIT_CORE),
                  "reported": [state.dumpable, state.core_bytes_max]}))
"""


def test_harden_process_makes_the_process_not_dumpable_and_without_cores() -> None:
    """In a fresh process: dumpable goes from 1 to 0 as the kernel reports it, and RLIMIT_CORE is (0, 0)."""
    output = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, timeout=60)
    assert {"before": 1, "dumpable": 0, "core": [0, 0], "reported": [0, 0]} == json.loads(output.stdout)


def test_clock_within_the_bound_is_accepted() -> None:
    """A coordinator 30 s ahead with a 60 s bound passes."""
    check_clock(str(1_000_030_000), now_s=1_000_000.0, skew_s_max=60)


@pytest.mark.parametrize("header", [str(1_000_061_000), str(999_939_000), None, "", "12a", "9" * 17])
def test_skewed_or_missing_clock_is_refused(header: str | None) -> None:
    """Past the bound either way, missing, or not a number of milliseconds: refused with rule clock.skew."""
    with pytest.raises(ClockSkewed) as caught:
        check_clock(header, now_s=1_000_000.0, skew_s_max=60)
    assert "clock.skew" == caught.value.rule
