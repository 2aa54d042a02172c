"""What a key-holder process does to itself at start, and the clock check on every acting request.

`harden_process()`: not dumpable (`prctl(PR_SET_DUMPABLE, 0)`: no core file, no ptrace attach by
the same user, /proc/PID/mem closed to it) and a core-file size limit of 0. `check_clock()`: the
coordinator sends its time with every request; a key holder refuses to act when its own clock
differs by more than its bound, because time locks and velocity windows run on its own clock.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
from dataclasses import dataclass
from typing import Final

from coffer.errors import CofferError
from coffer.keyholder.errors import ClockSkewed

__all__ = ["Hardening", "harden_process", "dumpable", "check_clock", "CLOCK_HEADER", "CLOCK_SKEW_S_MAX"]

PR_SET_DUMPABLE: Final = 4
PR_GET_DUMPABLE: Final = 3
CLOCK_HEADER: Final = "Coffer-Time-Ms"
CLOCK_SKEW_S_MAX: Final = 60.0


class HardeningFailed(CofferError):
    """The kernel refused a hardening step: a key holder does not start unhardened."""


@dataclass(frozen=True, slots=True)
class Hardening:
    dumpable: int
    core_bytes_max: int


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def dumpable() -> int:
    """This process's dumpable flag as the kernel reports it (0: not dumpable)."""
    return int(_libc().prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))


def harden_process() -> Hardening:
    """Make this process not dumpable and forbid core files; raise if the kernel says no."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise HardeningFailed(f"prctl(PR_SET_DUMPABLE, 0) failed (errno {ctypes.get_errno()})")
    state = Hardening(dumpable(), resource.getrlimit(resource.RLIMIT_CORE)[1])
    if state.dumpable != 0 or state.core_bytes_max != 0:
        raise HardeningFailed(f"process still dumpable or allowed core files: {state}")
    return state


def check_clock(header: str | None, *, now_s: float, skew_s_max: float) -> None:
    """Raise `ClockSkewed` unless the caller's time (ms since the epoch) is within the bound of ours."""
    if header is None or not header.isdigit() or len(header) > 16:
        raise ClockSkewed(f"request carries no valid {CLOCK_HEADER} header")
    skew_s = int(header) / 1000 - now_s
    if abs(skew_s) > skew_s_max:
        raise ClockSkewed(f"caller's clock differs from ours by {skew_s:.0f} s (bound {skew_s_max:.0f} s)")
