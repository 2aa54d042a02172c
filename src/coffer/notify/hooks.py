"""Adapters that turn other parts' events into notices, for whoever assembles the coordinator.

`whitelist_notice(notifier)` goes into `PolicyService.whitelist_hooks`; its idempotency key is
the same one the security centre uses, so a whitelist addition is mailed once however it is made.
`halt_notices(notifier, client_ids)` goes into `HaltSwitch(hooks=...)`: the security team is told
first (encrypted to its keys), then every client (encrypted to their key if they have one); the
idempotency keys make a re-run after a crash send nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from coffer.notify.notifier import Notifier
from coffer.policy.service import WhitelistEntry
from coffer.recon.halt import HaltEvent

__all__ = ["whitelist_notice", "whitelist_idempotency_key", "format_utc", "halt_notices", "HALT_CLIENTS_MAX"]

HALT_CLIENTS_MAX = 1_000_000


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


def halt_notices(notifier: Notifier, client_ids: Callable[[], Iterable[str]]) -> Callable[[HaltEvent], None]:
    """A `HaltSwitch` hook: halt/resume notices to the security team and to every client."""

    def hook(event: HaltEvent) -> None:
        now = datetime.now(UTC)
        at = event.at[:16].replace("T", " ")
        if event.action == "halt":
            team_fields: dict[str, object] = {"at": at, "cause": event.cause}
            client_fields: dict[str, object] = {"at": at, "cause": event.cause}
        else:
            team_fields = {"at": at, "by": ", ".join(event.signers) or event.actor}
            client_fields = {"at": at}
        action = "halt" if event.action == "halt" else "resume"
        notifier.notify_team(action, team_fields, now=now, idempotency_key=f"team:{action}:{event.halt_id}")
        for count, client_id in enumerate(client_ids()):
            if count >= HALT_CLIENTS_MAX:
                break
            notifier.notify(client_id, action, client_fields, now=now,
                            idempotency_key=f"{action}:{event.halt_id}:{client_id}"[:128])

    return hook
