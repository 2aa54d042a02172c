"""The halt switch: durable, audited, resumed only by a quorum of security officers."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey
from sqlalchemy.engine import Engine

from coffer.audit import AuditLog
from coffer.db import make_engine
from coffer.recon import (
    HaltEvent,
    HaltInForce,
    HaltSwitch,
    InsufficientSignatures,
    InvalidOfficerSignature,
    NotHalted,
    OfficerExists,
    OfficerSignature,
    ResumeRefused,
    UnknownOfficer,
    WrongHalt,
    resume_message,
)

OFFICERS = {f"officer-{n}": SigningKey(bytes([n]) * 32) for n in range(1, 4)}


def switch_with_officers(engine: Engine, **kwargs: object) -> HaltSwitch:
    switch = HaltSwitch(engine, quorum=2, **kwargs)  # type: ignore[arg-type]
    for officer_id, key in OFFICERS.items():
        switch.register_officer(officer_id, bytes(key.verify_key))
    return switch


def sign(officers: list[str], halt_id: str, reason: str) -> list[OfficerSignature]:
    message = resume_message(halt_id, reason)
    return [OfficerSignature(o, OFFICERS[o].sign(message).signature) for o in officers]


def test_trip_sets_a_durable_halt_with_id_cause_details_time(engine: Engine) -> None:
    """A trip records id, cause, details and time; the state says halted; require_clear refuses."""
    switch = switch_with_officers(engine)
    assert not switch.is_halted()
    halt = switch.trip("position_mismatch", {"kind": "position_size"}, actor="recon")
    state = switch.state()
    assert (True, halt.halt_id) == (state.halted, state.halt_id)
    assert ("position_mismatch", {"kind": "position_size"}, "recon") == (halt.cause, halt.details, halt.set_by)
    assert halt.halted_at
    with pytest.raises(HaltInForce):
        switch.require_clear()


def test_restart_during_halt_stays_halted(engine: Engine) -> None:
    """A coordinator that restarts (new engine, new switch) re-reads the halt from the database."""
    halt = switch_with_officers(engine).trip("officer", {"reason": "drill"}, actor="officer-1")
    engine.dispose()
    reopened = make_engine(str(engine.url.render_as_string(hide_password=False)))
    try:
        state = HaltSwitch(reopened, quorum=2).state()
        assert (True, halt.halt_id) == (state.halted, state.halt_id)
    finally:
        reopened.dispose()


def test_second_trip_keeps_the_halt_in_force(sqlite_engine: Engine) -> None:
    """Tripping while halted keeps the same halt and audits the further cause."""
    switch = switch_with_officers(sqlite_engine)
    first = switch.trip("onchain_mismatch", {}, actor="recon")
    again = switch.trip("position_mismatch", {}, actor="recon")
    assert first.halt_id == again.halt_id
    assert 1 == len(AuditLog(sqlite_engine).events(event="recon.halt.repeat"))


def test_quorum_of_officers_resumes(engine: Engine) -> None:
    """Two of three officers signing (halt id, reason) resume; the resume is audited."""
    switch = switch_with_officers(engine)
    halt = switch.trip("position_mismatch", {}, actor="recon")
    state = switch.resume(halt.halt_id, "engine fixed", sign(["officer-1", "officer-3"], halt.halt_id, "engine fixed"),
                          actor="officer-1")
    assert not state.halted
    assert ("officer-1", "officer-3") == switch.halt(halt.halt_id).resume_signers
    events = [e.event for e in AuditLog(engine).events()]
    assert ["recon.halt", "recon.resume"] == [e for e in events if e in ("recon.halt", "recon.resume")]


def test_too_few_signatures_refused(engine: Engine) -> None:
    """One signature, or one officer signing twice, is short of a 2-of-3 quorum: refused, still halted."""
    switch = switch_with_officers(engine)
    halt = switch.trip("position_mismatch", {}, actor="recon")
    with pytest.raises(InsufficientSignatures):
        switch.resume(halt.halt_id, "fixed", sign(["officer-2"], halt.halt_id, "fixed"), actor="officer-2")
    with pytest.raises(InsufficientSignatures):
        switch.resume(halt.halt_id, "fixed", sign(["officer-2", "officer-2"], halt.halt_id, "fixed"),
                      actor="officer-2")
    assert switch.is_halted()
    assert 2 == len(AuditLog(engine).events(event="recon.resume.refused"))


def test_signature_over_another_reason_or_halt_refused(sqlite_engine: Engine) -> None:
    """A signature over a different reason names its officer; signatures over another halt are refused."""
    switch = switch_with_officers(sqlite_engine)
    halt = switch.trip("position_mismatch", {}, actor="recon")
    mixed = sign(["officer-1"], halt.halt_id, "fixed") + sign(["officer-2"], halt.halt_id, "other")
    with pytest.raises(InvalidOfficerSignature) as caught:
        switch.resume(halt.halt_id, "fixed", mixed, actor="officer-1")
    assert ("officer-2",) == caught.value.culprits
    with pytest.raises(WrongHalt):
        switch.resume("0" * 32, "fixed", sign(["officer-1", "officer-2"], "0" * 32, "fixed"), actor="officer-1")
    assert switch.is_halted()


def test_unknown_officer_and_resume_when_clear_refused(sqlite_engine: Engine) -> None:
    """An unregistered signer is refused; resuming with no halt in force is refused."""
    switch = switch_with_officers(sqlite_engine)
    outsider = SigningKey(b"\x09" * 32)
    with pytest.raises(UnknownOfficer):
        switch.resume("x", "r", [OfficerSignature("mallory", outsider.sign(resume_message("x", "r")).signature)],
                      actor="mallory")
    with pytest.raises(NotHalted):
        switch.resume("x", "r", sign(["officer-1", "officer-2"], "x", "r"), actor="officer-1")


def test_officer_registered_twice_refused(sqlite_engine: Engine) -> None:
    """An officer id or key can be registered once."""
    switch = switch_with_officers(sqlite_engine)
    with pytest.raises(OfficerExists):
        switch.register_officer("officer-1", bytes(SigningKey(b"\x08" * 32).verify_key))
    with pytest.raises(OfficerExists):
        switch.register_officer("officer-9", bytes(OFFICERS["officer-1"].verify_key))


def test_hooks_and_publication_signature_after_commit(sqlite_engine: Engine) -> None:
    """Hooks see each halt and resume; the group-key signature is stored; a failing hook changes nothing."""
    seen: list[HaltEvent] = []
    group_key = SigningKey(b"\x07" * 32)

    def broken(_: HaltEvent) -> None:
        raise RuntimeError("smtp down")

    switch = switch_with_officers(sqlite_engine, hooks=[seen.append, broken],
                                  publication_signer=lambda m: group_key.sign(m).signature)
    halt = switch.trip("officer", {"reason": "drill"}, actor="officer-1")
    assert switch.is_halted()
    switch.resume(halt.halt_id, "drill over", sign(["officer-1", "officer-2"], halt.halt_id, "drill over"),
                  actor="officer-1")
    assert ["halt", "resume"] == [e.action for e in seen]
    group_key.verify_key.verify(seen[0].statement(), switch.publication_signature(halt.halt_id))
    group_key.verify_key.verify(seen[1].statement(), switch.publication_signature(halt.halt_id, "resume"))
    assert 2 == len(AuditLog(sqlite_engine).events(event="recon.halt.hook_failed"))
    AuditLog(sqlite_engine).verify_chain()


def test_resume_without_reason_refused(sqlite_engine: Engine) -> None:
    """A resume must say why: an empty reason is refused before any signature is looked at."""
    switch = switch_with_officers(sqlite_engine)
    halt = switch.trip("officer", {}, actor="officer-1")
    with pytest.raises(ResumeRefused):
        switch.resume(halt.halt_id, "", sign(["officer-1", "officer-2"], halt.halt_id, ""), actor="officer-1")
    assert switch.is_halted()


def test_concurrent_trips_make_one_halt(engine: Engine) -> None:
    """Several checks tripping at once leave exactly one halt in force, which all of them report."""
    import threading

    switch = switch_with_officers(engine)
    results: list[str] = []
    errors: list[BaseException] = []

    def trip(n: int) -> None:
        try:
            results.append(HaltSwitch(engine, quorum=2).trip("position_mismatch", {"n": n}, actor=f"c{n}").halt_id)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=trip, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [] == errors
    assert 1 == len(set(results)) == len(switch.history())
    assert switch.state().halt_id == results[0]
