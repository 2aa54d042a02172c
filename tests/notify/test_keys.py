"""A client's key: pending until the encrypted challenge is answered; replace/remove need two-factor."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from coffer.audit import AuditLog
from coffer.notify import ChallengeRefused, KeyRejected, NotifyParts, TwoFactorRequired
from coffer.notify.keys import CHALLENGE_ATTEMPTS_MAX, CHALLENGE_TTL_S
from tests.notify.conftest import NOW, activate
from tests.notify.helpers import Gpg

ALICE = "Alice <alice@example.com>"
BOB = "Bob <bob@example.com>"


def _state(parts: NotifyParts) -> tuple[object, ...]:
    engine = parts.keys.engine
    with engine.connect() as conn:
        keys = conn.execute(sa.text("SELECT client_id, state, fingerprint FROM notify_client_keys ORDER BY 1, 2")).all()
        mails = conn.execute(sa.text("SELECT count(*) FROM notify_outbox")).scalar()
    return tuple(keys), mails


def test_key_becomes_active_after_challenge(notify_any: NotifyParts, client_gpg: Gpg) -> None:
    """The challenge is mailed encrypted to the new key; gpg decrypts it; the code activates the key."""
    submission = notify_any.key_service.submit("alice", client_gpg.export(ALICE), now=NOW)
    assert notify_any.keys.active("alice") is None
    assert submission.fingerprint == notify_any.keys.pending("alice").fingerprint  # type: ignore[union-attr]
    challenge = notify_any.outbox.items(client_id="alice")[-1]
    assert challenge.encrypted and "key_challenge" == challenge.event
    plaintext = client_gpg.decrypt(challenge.body)
    code = next(line.strip() for line in plaintext.splitlines() if line.startswith("    "))
    assert code not in challenge.body
    assert submission.fingerprint == notify_any.key_service.confirm("alice", code, now=NOW)
    assert submission.fingerprint == notify_any.keys.active("alice").fingerprint  # type: ignore[union-attr]
    activated = notify_any.outbox.items(client_id="alice")[-1]
    assert "key_activated" == activated.event and activated.encrypted
    assert submission.fingerprint in client_gpg.decrypt(activated.body)
    assert ["notify.key_activated"] == [e.event for e in AuditLog(notify_any.keys.engine).events(event="notify.key_activated")]


def test_wrong_code_counts_and_locks(notify: NotifyParts, client_gpg: Gpg) -> None:
    """Wrong codes are refused and after the limit even the right code is refused."""
    notify.key_service.submit("alice", client_gpg.export(ALICE), now=NOW)
    for _ in range(CHALLENGE_ATTEMPTS_MAX):
        with pytest.raises(ChallengeRefused, match="wrong code"):
            notify.key_service.confirm("alice", "AAAA-AAAA-AAAA-AAAA", now=NOW)
    challenge = notify.outbox.items(client_id="alice")[-1]
    code = next(line.strip() for line in client_gpg.decrypt(challenge.body).splitlines() if line.startswith("    "))
    with pytest.raises(ChallengeRefused, match="too many"):
        notify.key_service.confirm("alice", code, now=NOW)
    assert notify.keys.active("alice") is None


def test_expired_challenge_refused(notify: NotifyParts, client_gpg: Gpg) -> None:
    """A code used after its lifetime is refused."""
    notify.key_service.submit("alice", client_gpg.export(ALICE), now=NOW)
    challenge = notify.outbox.items(client_id="alice")[-1]
    code = next(line.strip() for line in client_gpg.decrypt(challenge.body).splitlines() if line.startswith("    "))
    with pytest.raises(ChallengeRefused, match="expired"):
        notify.key_service.confirm("alice", code, now=NOW + timedelta(seconds=CHALLENGE_TTL_S))


def test_replace_needs_two_factor_and_tells_old_key(notify: NotifyParts, client_gpg: Gpg) -> None:
    """Replacing an active key needs the second factor; the old key's holder gets an encrypted notice."""
    activate(notify, client_gpg, "alice", ALICE)
    before = _state(notify)
    with pytest.raises(TwoFactorRequired):
        notify.key_service.submit("alice", client_gpg.export(BOB), now=NOW)
    assert before == _state(notify)
    notify.key_service.submit("alice", client_gpg.export(BOB), now=NOW, second_factor_ok=True)
    notice = [item for item in notify.outbox.items(client_id="alice") if item.event == "key_replacement_started"][-1]
    assert client_gpg.fingerprint(BOB).lower() in client_gpg.decrypt(notice.body)


def test_remove_needs_two_factor_and_sends_notice(notify: NotifyParts, client_gpg: Gpg) -> None:
    """Removing the key needs the second factor; the notice is encrypted to the removed key; later mail is plain."""
    fingerprint = activate(notify, client_gpg, "alice", ALICE)
    with pytest.raises(TwoFactorRequired):
        notify.key_service.remove("alice", now=NOW, second_factor_ok=False)
    assert fingerprint == notify.key_service.remove("alice", now=NOW, second_factor_ok=True)
    removed = notify.outbox.items(client_id="alice")[-1]
    assert removed.encrypted and fingerprint in client_gpg.decrypt(removed.body)
    assert notify.keys.active("alice") is None
    notify.notifier.notify("alice", "resume", {"at": "2026-11-27 12:00"}, now=NOW)
    assert not notify.outbox.items(client_id="alice")[-1].encrypted


def test_bad_key_changes_nothing(notify: NotifyParts, client_gpg: Gpg) -> None:
    """A refused key leaves keys and outbox as they were, with an active key in place."""
    activate(notify, client_gpg, "alice", ALICE)
    before = _state(notify)
    for bad in (b"garbage", client_gpg.export_secret(BOB), b"x" * (10 * 1024 * 1024)):
        with pytest.raises(KeyRejected):
            notify.key_service.submit("alice", bad, now=NOW, second_factor_ok=True)
    assert before == _state(notify)


def test_clients_keys_are_separate(notify: NotifyParts, client_gpg: Gpg) -> None:
    """Bob cannot confirm Alice's pending key with Alice's code."""
    notify.key_service.submit("alice", client_gpg.export(ALICE), now=NOW)
    challenge = notify.outbox.items(client_id="alice")[-1]
    code = next(line.strip() for line in client_gpg.decrypt(challenge.body).splitlines() if line.startswith("    "))
    with pytest.raises(ChallengeRefused):
        notify.key_service.confirm("bob", code, now=NOW)
    assert notify.keys.active("bob") is None
