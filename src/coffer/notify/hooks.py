"""Adapters that turn other parts' events into notices, for whoever assembles the coordinator.

`whitelist_notice(notifier)` goes into `PolicyService.whitelist_hooks`; its idempotency key is
the same one the security centre uses, so a whitelist addition is mailed once however it is made.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from coffer.notify.notifier import Notifier
from coffer.policy.service import WhitelistEntry

__all__ = ["whitelist_notice", "whitelist_idempotency_key", "format_utc"]


def format_utc(at_s: int) -> str:
    return datetime.fromtimestamp(at_s, UTC).strftime("%Y-%m-%d %H:%M UTC")


def whitelist_idempotency_key(entry: WhitelistEntry) -> str:
    return f"whitelist:{entry.account}:{entry.asset}:{entry.destination}:{entry.added_at_s}"[:128]


def whitelist_notice(notifier: Notifier) -> Callable[[WhitelistEntry], None]:
    """A `PolicyService.whitelist_hooks` entry mailing the client about a new withdrawal address."""

    def hook(entry: WhitelistEntry) -> None:
        notifier.notify(entry.account, "whitelist_added",
                        {"destination": entry.destination, "asset": entry.asset,
                         "unlocks_at": format_utc(entry.unlocks_at_s)},
                        now=datetime.fromtimestamp(entry.added_at_s, UTC),
                        idempotency_key=whitelist_idempotency_key(entry))

    return hook
