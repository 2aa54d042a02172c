"""The hash-chained audit log detects every edit, deletion and reordering."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coffer.audit import AuditChainBroken, AuditLog, audit_events
from coffer.errors import CofferError

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _fill(log: AuditLog, count: int = 5) -> None:
    for i in range(count):
        log.append(f"operator-{i % 2}", "test.event", {"i": i, "amount_sats": 1000 * i}, at=T0 + dt.timedelta(seconds=i))


def test_intact_chain_verifies(engine: Engine) -> None:
    """An untouched chain verifies and counts its events."""
    log = AuditLog(engine)
    _fill(log)
    assert 5 == log.verify_chain()
    assert 5 == log.head()[0]


def test_edited_payload_is_detected(engine: Engine) -> None:
    """Changing one event's payload breaks the chain at that event."""
    log = AuditLog(engine)
    _fill(log)
    with engine.begin() as conn:
        conn.execute(audit_events.update().where(audit_events.c.seq == 3).values(payload='{"i":3,"amount_sats":1}'))
    with pytest.raises(AuditChainBroken) as caught:
        log.verify_chain()
    assert 3 == caught.value.seq


def test_edited_actor_with_recomputed_digest_breaks_the_next_link(engine: Engine) -> None:
    """An attacker who recomputes the edited row's digest is still caught by the next row's link."""
    log = AuditLog(engine)
    _fill(log)
    from coffer.audit import _digest

    with engine.begin() as conn:
        row = conn.execute(sa.select(audit_events).where(audit_events.c.seq == 2)).one()
        forged = _digest(2, row.at, "intruder", row.event, row.payload, row.prev_digest)
        conn.execute(audit_events.update().where(audit_events.c.seq == 2).values(actor="intruder", digest=forged))
    with pytest.raises(AuditChainBroken) as caught:
        log.verify_chain()
    assert 3 == caught.value.seq


def test_deleted_event_is_detected(engine: Engine) -> None:
    """Deleting an event from the middle is detected."""
    log = AuditLog(engine)
    _fill(log)
    with engine.begin() as conn:
        conn.execute(audit_events.delete().where(audit_events.c.seq == 2))
    with pytest.raises(AuditChainBroken):
        log.verify_chain()


def test_reordered_events_are_detected(engine: Engine) -> None:
    """Swapping two events' contents is detected."""
    log = AuditLog(engine)
    _fill(log)
    with engine.begin() as conn:
        rows = {r.seq: r for r in conn.execute(sa.select(audit_events).where(audit_events.c.seq.in_([2, 3])))}
        for seq, other in ((2, 3), (3, 2)):
            conn.execute(audit_events.update().where(audit_events.c.seq == seq).values(
                payload=rows[other].payload, at=rows[other].at, actor=rows[other].actor,
                digest=f"tmp{seq}"))
    with pytest.raises(AuditChainBroken):
        log.verify_chain()


def test_cut_tail_is_detected_against_a_checkpoint(engine: Engine) -> None:
    """Deleting the newest events is caught by comparing with a checkpoint of the head."""
    log = AuditLog(engine)
    _fill(log)
    checkpoint = log.head()
    with engine.begin() as conn:
        conn.execute(audit_events.delete().where(audit_events.c.seq >= 4))
    assert 3 == log.verify_chain()
    with pytest.raises(AuditChainBroken):
        log.verify_chain(expect_head=checkpoint)


def test_floats_and_bad_names_are_refused_and_write_nothing(engine: Engine) -> None:
    """A float amount or an empty actor is refused before anything is written."""
    log = AuditLog(engine)
    with pytest.raises(CofferError):
        log.append("op", "x", {"amount": 1.5}, at=T0)
    with pytest.raises(CofferError):
        log.append("", "x", {}, at=T0)
    assert 0 == log.verify_chain()
