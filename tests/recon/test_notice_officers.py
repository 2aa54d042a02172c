"""A key holder's halt watcher with pinned officers: the coordinator's notice alone can halt, never
resume; a resume needs k pinned officers' own signatures, remembered across a restart."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
from nacl.signing import SigningKey

from coffer.recon.errors import HaltInForce, InvalidNotice
from coffer.recon.halt import OfficerSignature, resume_message
from coffer.recon.notice import NOTICE_TAG, HaltNotice, HaltWatcher, ResumeProof, SignedNotice

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
OFFICERS = {f"officer-{i}": SigningKey(bytes([i]) * 32) for i in (1, 2, 3)}


class Gate:
    """An in-memory officer gate (a key holder keeps the same in its governance.db)."""

    def __init__(self) -> None:
        self.unresolved: set[str] = set()

    def officers(self) -> tuple[Mapping[str, bytes], int]:
        return {i: bytes(k.verify_key) for i, k in OFFICERS.items()}, 2

    def unresolved_halts(self) -> frozenset[str]:
        return frozenset(self.unresolved)

    def note_halt(self, halt_id: str) -> None:
        self.unresolved.add(halt_id)

    def resolve_halt(self, halt_id: str) -> None:
        self.unresolved.discard(halt_id)


COORDINATOR = SigningKey(bytes([9]) * 32)


def _notice(seq: int, halt_id: str | None, resumes: tuple[ResumeProof, ...] = ()) -> SignedNotice:
    payload = HaltNotice("coordinator", halt_id is not None, halt_id, seq, NOW + timedelta(seconds=seq),
                         resumes).payload()
    return SignedNotice(payload, COORDINATOR.sign(NOTICE_TAG + payload).signature)


def _proof(halt_id: str, keys: Mapping[str, SigningKey]) -> ResumeProof:
    return ResumeProof(halt_id, "ok", tuple(OfficerSignature(i, k.sign(resume_message(halt_id, "ok")).signature)
                                           for i, k in keys.items()))


def _watcher(gate: Gate) -> HaltWatcher:
    watcher = HaltWatcher(bytes(COORDINATOR.verify_key), max_age_s=3600, clock=lambda: NOW + timedelta(seconds=60))
    watcher.pin_officers(gate)
    return watcher


def test_clear_notice_without_officers_does_not_resume() -> None:
    """After a halt, a "not halted" notice carrying no officer resume is refused; the halt stays."""
    watcher = _watcher(Gate())
    watcher.receive(_notice(1, "h1"))
    with pytest.raises(InvalidNotice):
        watcher.receive(_notice(2, None))
    with pytest.raises(HaltInForce):
        watcher.require_clear()


def test_resume_by_officers_not_pinned_is_refused() -> None:
    """Signatures of officers the key holder never pinned do not count toward the quorum."""
    watcher = _watcher(Gate())
    watcher.receive(_notice(1, "h1"))
    made_up = {f"officer-{i}": SigningKey.generate() for i in (1, 2)}
    with pytest.raises(InvalidNotice):
        watcher.receive(_notice(2, None, (_proof("h1", made_up),)))
    with pytest.raises(InvalidNotice):  # one pinned officer is short of the quorum of two
        watcher.receive(_notice(3, None, (_proof("h1", {"officer-1": OFFICERS["officer-1"]}),)))
    with pytest.raises(HaltInForce):
        watcher.require_clear()


def test_pinned_officer_quorum_resumes() -> None:
    """Two pinned officers' signatures over the halt id resume; the watcher is clear again."""
    watcher = _watcher(Gate())
    watcher.receive(_notice(1, "h1"))
    watcher.receive(_notice(2, None, (_proof("h1", {i: OFFICERS[i] for i in ("officer-1", "officer-3")}),)))
    watcher.require_clear()


def test_a_restart_remembers_the_halt() -> None:
    """A new watcher over the same record still needs the officers' resume of the halt seen before."""
    gate = Gate()
    _watcher(gate).receive(_notice(1, "h1"))
    restarted = _watcher(gate)
    with pytest.raises(InvalidNotice):
        restarted.receive(_notice(2, None))
    restarted.receive(_notice(3, None, (_proof("h1", {i: OFFICERS[i] for i in ("officer-1", "officer-2")}),)))
    restarted.require_clear()
