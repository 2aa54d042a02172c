"""The outbox: nothing is lost while the SMTP server is down; encrypted mail is PGP/MIME."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coffer.audit import AuditLog
from coffer.notify import (
    NotifyError,
    NotifyParts,
    OutboxItem,
    OutboxWorker,
    SmtpSender,
    TeamKeyMissing,
    open_notify,
)
from coffer.notify.outbox import ATTEMPTS_MAX, BACKOFF_MAX_S, backoff_s
from coffer.notify.pgp import decrypt
from tests.notify.conftest import NOW, activate
from tests.notify.helpers import Gpg, SmtpServer, encrypted_part

ALICE = "Alice <alice@example.com>"


def test_nothing_lost_while_smtp_down(notify_any: NotifyParts, client_gpg: Gpg, smtp: SmtpServer) -> None:
    """With the server stopped every notice waits and retries; after restart all arrive, encrypted."""
    activate(notify_any, client_gpg, "alice", ALICE)
    smtp.stop()
    worker = OutboxWorker(notify_any.outbox, SmtpSender("127.0.0.1", smtp.port, "security@example.com", timeout_s=2))
    events = [("withdrawal_requested", {"amount": "0.5", "asset": "BTC", "destination": "bcrt1qxyz", "request_id": "r1"}),
              ("withdrawal_approved", {"request_id": "r1"}), ("withdrawal_sent", {"request_id": "r1", "txid": "ab" * 32}),
              ("halt", {"at": "2026-11-27 12:00", "cause": "on-chain mismatch"})]
    for event, fields in events:
        notify_any.notifier.notify("alice", event, fields, now=NOW)
    assert 0 == worker.run_once(NOW)
    pending = notify_any.outbox.items(status="pending")
    assert 1 == max(item.attempts for item in pending)
    assert 0 == worker.run_once(NOW + timedelta(seconds=1))  # backoff: nothing due yet
    smtp.start()
    later = NOW + timedelta(seconds=backoff_s(1) + 200)
    while worker.run_once(later):
        pass
    assert [] == notify_any.outbox.items(status="pending")
    bodies = [client_gpg.decrypt(encrypted_part(m)) for m in smtp.messages if m["To"] == "alice@example.com"]
    for event, fields in events:
        assert any(str(list(fields.values())[0]) in body for body in bodies), event
    for message in smtp.messages:
        assert "multipart/encrypted" == message.get_content_type()
        assert "Coffer security notice" == message["Subject"]


def test_plain_mail_without_key(notify: NotifyParts, smtp: SmtpServer) -> None:
    """A client without a key gets a plain notice with its title as subject."""
    notify.notifier.notify("bob", "sign_in", {"at": "2026-11-27 12:00", "address": "127.0.0.1"}, now=NOW)
    worker = OutboxWorker(notify.outbox, SmtpSender("127.0.0.1", smtp.port, "security@example.com"))
    assert 1 == worker.run_once(NOW)
    message = smtp.messages[-1]
    assert "Coffer: New sign-in" == message["Subject"]
    assert "127.0.0.1" in message.get_payload()


def test_no_plaintext_fallback(notify: NotifyParts, client_gpg: Gpg) -> None:
    """If the active key cannot be used, the notice is not queued at all (never in plain text)."""
    activate(notify, client_gpg, "alice", ALICE)
    engine = notify.keys.engine
    with engine.begin() as conn:
        conn.execute(notify_keys_table().update().values(armored="-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbroken"))
    count = len(notify.outbox.items())
    with pytest.raises(NotifyError):
        notify.notifier.notify("alice", "withdrawal_approved", {"request_id": "r2"}, now=NOW)
    assert count == len(notify.outbox.items())


def notify_keys_table():  # type: ignore[no-untyped-def]
    from coffer.notify.tables import client_keys
    return client_keys


def test_backoff_bounded_and_dead_after_max(notify: NotifyParts) -> None:
    """Retries back off up to the cap; after ATTEMPTS_MAX the mail is dead, kept and audited, and can be requeued."""
    assert BACKOFF_MAX_S == backoff_s(ATTEMPTS_MAX)

    class Down:
        def send(self, item: OutboxItem) -> None:
            raise ConnectionRefusedError("down")

    item_id = notify.notifier.notify("bob", "resume", {"at": "x"}, now=NOW)
    worker = OutboxWorker(notify.outbox, Down())
    at = NOW
    for _ in range(ATTEMPTS_MAX):
        worker.run_once(at)
        at += timedelta(seconds=BACKOFF_MAX_S + 1)
    assert "dead" == notify.outbox.get(item_id).status
    assert 1 == len(AuditLog(notify.keys.engine).events(event="notify.mail_dead"))
    notify.outbox.requeue(item_id, by="ops", now=at)
    assert "pending" == notify.outbox.get(item_id).status


def test_idempotency_key_queues_once(notify: NotifyParts) -> None:
    """The same idempotency key queues one mail."""
    first = notify.notifier.notify("bob", "resume", {"at": "x"}, now=NOW, idempotency_key="resume-1")
    second = notify.notifier.notify("bob", "resume", {"at": "x"}, now=NOW, idempotency_key="resume-1")
    assert first == second


def test_unknown_event_and_fields_refused(notify: NotifyParts) -> None:
    """An unknown event or a missing/extra field is a typed error."""
    with pytest.raises(NotifyError, match="unknown"):
        notify.notifier.notify("bob", "nope", {}, now=NOW)
    with pytest.raises(NotifyError, match="missing"):
        notify.notifier.notify("bob", "resume", {}, now=NOW)


def test_team_notice_encrypted_to_team(notify: NotifyParts, team_key, smtp: SmtpServer) -> None:  # type: ignore[no-untyped-def]
    """A halt notice to the security team is encrypted to the team key and the team decrypts it."""
    notify.notifier.notify_team("halt", {"at": "2026-11-27 12:00", "cause": "position mismatch"}, now=NOW)
    OutboxWorker(notify.outbox, SmtpSender("127.0.0.1", smtp.port, "security@example.com")).run_once(NOW)
    message = smtp.messages[-1]
    assert "team@example.com" == message["To"]
    assert b"position mismatch" in decrypt(encrypted_part(message), bytes(team_key))


def test_team_notice_needs_team_key(engine) -> None:  # type: ignore[no-untyped-def]
    """Without any team key a team notice is refused rather than sent in clear."""
    parts = open_notify(engine, address_of=lambda client: "x@example.com")
    with pytest.raises(TeamKeyMissing):
        parts.notifier.notify_team("resume", {"at": "x", "by": "officer"}, now=NOW)


def test_two_workers_send_each_mail_once(notify_any: NotifyParts) -> None:
    """Two workers (two coordinators) draining one outbox concurrently hand each mail over exactly once."""
    import threading

    sent: list[int] = []
    lock = threading.Lock()

    class Counting:
        def send(self, item: OutboxItem) -> None:
            with lock:
                sent.append(item.id)

    ids = [notify_any.notifier.notify("bob", "resume", {"at": str(n)}, now=NOW) for n in range(30)]
    workers = [OutboxWorker(notify_any.outbox, Counting()) for _ in range(2)]
    threads = [threading.Thread(target=lambda w=w: [w.run_once(NOW) for _ in range(3)]) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(ids) == sorted(sent)
