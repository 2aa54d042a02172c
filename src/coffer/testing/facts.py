"""Whitelisting for the test harnesses and the demo, the honest way: the entry is announced to every
key holder, which starts its time lock by its own clock, and the caller waits the lock out.

The harnesses pin the default policy with short time locks (`short_lock_policy_text`), the way the
demo's administrators sign one; nothing is back-dated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from coffer.canonical import canonical_json
from coffer.keyholder.facts import Notice, WhitelistNotice, notices_json
from coffer.policy.engine import default_policy_text, with_time_locks
from coffer.testing.wait import wait_until

__all__ = ["SHORT_TIME_LOCK_S", "SHORT_SIGNED_LOCK_S", "short_lock_policy_text", "announce", "whitelist_and_wait",
           "notices_body"]

SHORT_TIME_LOCK_S = 2
SHORT_SIGNED_LOCK_S = 1
WAIT_MARGIN_S = 30.0


def short_lock_policy_text(full_s: int = SHORT_TIME_LOCK_S, signed_s: int = SHORT_SIGNED_LOCK_S) -> str:
    return with_time_locks(default_policy_text(), full_s=full_s, signed_s=signed_s)


def notices_body(notices: Iterable[Notice]) -> bytes:
    return canonical_json(notices_json(list(notices)))


def announce(send: Iterable[Callable[[dict[str, Any]], dict[str, Any]]], notices: Iterable[Notice]
             ) -> list[dict[str, Any]]:
    """Relay notices to each key holder (`send` posts one notices document); their replies."""
    document = notices_json(list(notices))
    return [deliver(document) for deliver in send]


def whitelist_and_wait(send: Iterable[Callable[[dict[str, Any]], dict[str, Any]]], notice: WhitelistNotice, *,
                       lock_s: int = SHORT_TIME_LOCK_S) -> int:
    """Announce one entry to every key holder and wait until each one's own lock has passed; returns the
    latest first sighting (the age every key holder will agree on)."""
    replies = announce(send, [notice])
    latest = max(int(reply["observed"][0]["first_seen_s"]) for reply in replies)
    wait_until(lambda: time.time() >= latest + lock_s, timeout=lock_s + WAIT_MARGIN_S,
               what="the whitelist time lock to pass on every key holder")
    return latest
