"""The signer guard's own store and its time checks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from coffer.policy import (
    AlreadySigned,
    AttestationRefused,
    PastTransfer,
    PolicyRefused,
    Route,
    SqliteSignedHistory,
)

from .conftest import NOW, NOW_S, Coordinator, Signer, World, signer_facts


def test_sqlite_history_records_a_batch_all_or_nothing(tmp_path: Path) -> None:
    """A batch holding an already-signed digest records nothing of the batch."""
    history = SqliteSignedHistory(tmp_path / "signed.sqlite")
    transfer = PastTransfer(NOW_S, "acct1", "BTC", 1, Route.COLD)
    history.record(b"a" * 32, transfer)
    with pytest.raises(AlreadySigned):
        history.record_many([(b"b" * 32, transfer), (b"a" * 32, transfer)])
    assert not history.contains(b"b" * 32)
    assert 1 == len(history.transfers_since(NOW_S - 10))
    history.close()


def test_expired_attestation_refused(world: World, coordinator: Coordinator, hot_signer: Signer) -> None:
    """An attestation presented after its expiry is refused and nothing is signed."""
    request = world.request(expires_at_s=NOW_S + 7200)
    attestation = coordinator.attest(request)
    with pytest.raises(AttestationRefused) as caught:
        hot_signer.sign(request, attestation, now=NOW + timedelta(hours=1))
    assert "attestation.expired" == caught.value.rule
    assert [] == hot_signer.signed


def test_guard_events_name_the_rule(world: World, coordinator: Coordinator) -> None:
    """The guard reports each refusal and clearance to its own log, naming the rule."""
    from coffer.policy import MemorySignedHistory, SignerGuard

    seen: list[tuple[str, dict]] = []
    guard = SignerGuard(signer_id="hot-9", route=Route.HOT, attestation_public_key=coordinator.public_key,
                        operators=world.registry, policy=world.policy, history=MemorySignedHistory(),
                        facts=signer_facts(), halted=lambda: True, on_event=lambda event, payload: seen.append((event, payload)))
    request = world.request()
    with pytest.raises(PolicyRefused):
        guard.check(request, coordinator.attest(request), now=NOW)
    assert [("guard.refused", "halt")] == [(event, payload["rule"]) for event, payload in seen]
