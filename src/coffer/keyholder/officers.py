"""The halt belongs to the officers: a key holder's halt watcher checks resumes against the officer
set it pinned in its own governance record (changed only by governance actions), and remembers
the halts it saw there, so a restart does not forget one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from coffer.keyholder.governance_store import GovernanceStore
from coffer.keyholder.lifecycle import KeyholderGovernance

__all__ = ["GovernanceOfficers", "pin_officers", "pin_officers_from"]


class GovernanceOfficers:
    """The `coffer.recon.notice.OfficerGate` of one key holder, over its governance record."""

    def __init__(self, governance: KeyholderGovernance) -> None:
        self._governance = governance

    def officers(self) -> tuple[Mapping[str, bytes], int]:
        return self._governance.officers()

    def unresolved_halts(self) -> frozenset[str]:
        return self._governance.store.unresolved_halts()

    def note_halt(self, halt_id: str) -> None:
        self._governance.store.note_halt(halt_id)

    def resolve_halt(self, halt_id: str) -> None:
        self._governance.store.resolve_halt(halt_id)


def pin_officers(halt: object, governance: KeyholderGovernance) -> None:
    """Hand the pinned officers to a halt watcher (`HaltWatcher.pin_officers`); a gate without
    that method (a test's fixed gate) is left as it is."""
    pin = getattr(halt, "pin_officers", None)
    if callable(pin):
        pin(GovernanceOfficers(governance))


def pin_officers_from(halt: object, directory: Path, keyholder: str) -> None:
    """Pin the officers of the governance record in `directory` (a cold signer's own directory)."""
    pin_officers(halt, KeyholderGovernance(GovernanceStore.open(directory), keyholder))
