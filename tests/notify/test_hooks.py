"""Hooks for other parts: halt/resume notices (team and clients) and the whitelist notice."""

from __future__ import annotations

import pysequoia as sq
from nacl.signing import SigningKey

from coffer.audit import AuditLog
from coffer.notify import NotifyParts
from coffer.notify.hooks import halt_notices
from coffer.notify.pgp import decrypt
from coffer.recon.halt import HaltSwitch, OfficerSignature, resume_message
from tests.notify.conftest import activate
from tests.notify.helpers import Gpg

ALICE = "Alice <alice@example.com>"


def test_halt_and_resume_notices(notify: NotifyParts, client_gpg: Gpg, team_key: sq.Tsk) -> None:
    """A halt mails the team (encrypted to its key) and every client (alice encrypted, bob plain); so does the resume."""
    activate(notify, client_gpg, "alice", ALICE)
    officer = SigningKey.generate()
    switch = HaltSwitch(notify.keys.engine, quorum=1, hooks=[halt_notices(notify.notifier, lambda: ["alice", "bob"])])
    switch.register_officer("olga", bytes(officer.verify_key))
    halt = switch.trip("on-chain mismatch BTC", {"asset": "BTC"}, actor="recon")
    assert [] == AuditLog(notify.keys.engine).events(event="recon.halt.hook_failed")
    team = [item for item in notify.outbox.items() if item.event == "team.halt"]
    assert 1 == len(team) and b"on-chain mismatch BTC" in decrypt(team[0].body, bytes(team_key))
    alice = notify.outbox.items(client_id="alice")[-1]
    assert "halt" == alice.event and "on-chain mismatch BTC" in client_gpg.decrypt(alice.body)
    bob = notify.outbox.items(client_id="bob")[-1]
    assert "halt" == bob.event and not bob.encrypted
    signature = officer.sign(resume_message(halt.halt_id, "reconciled")).signature
    switch.resume(halt.halt_id, "reconciled", [OfficerSignature("olga", signature)], actor="olga")
    assert "resume" == notify.outbox.items(client_id="alice")[-1].event
    assert 1 == len([item for item in notify.outbox.items() if item.event == "team.resume"])
