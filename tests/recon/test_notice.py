"""Signed halt notices and the HaltWatcher: verified against the pinned HSM key, fail closed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey
from sqlalchemy.engine import Engine

from coffer.hsm import Hsm, KeyKind
from coffer.recon import (
    HaltInForce,
    HaltStateUnknown,
    HaltSwitch,
    HaltWatcher,
    InvalidNotice,
    NoticeIssuer,
    NoticeServer,
    SignedNotice,
    hsm_notice_signer,
    http_notice_fetcher,
)
from coffer.recon.notice import NOTICE_TAG, HaltNotice, push_hook
from coffer.testing import TokenHandle, wait_until

LABEL = "coordinator-halt-notice"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now



@pytest.fixture
def hsm(token: TokenHandle) -> Iterator[Hsm]:
    with token.open() as opened:
        opened.generate_key(LABEL, KeyKind.ED25519)
        yield opened


def test_hsm_signed_notice_verifies_and_reports_halt(sqlite_engine: Engine, hsm: Hsm) -> None:
    """A notice signed by the coordinator's HSM key verifies against the pinned key and carries the halt."""
    clock = Clock()
    switch = HaltSwitch(sqlite_engine, quorum=1)
    issuer = NoticeIssuer(switch, hsm_notice_signer(hsm, LABEL), clock=clock)
    watcher = HaltWatcher(hsm.public_key(LABEL), max_age_s=5, clock=clock)
    watcher.receive(issuer.issue())
    watcher.require_clear()
    halt = switch.trip("officer", {}, actor="officer-1")
    notice = watcher.receive(issuer.issue())
    assert (True, halt.halt_id, 1) == (notice.halted, notice.halt_id, notice.seq)
    with pytest.raises(HaltInForce):
        watcher.require_clear()


def test_signer_refuses_during_halt_even_when_fresh(sqlite_engine: Engine) -> None:
    """A signer guarded by the watcher refuses to sign while the halt is in force."""
    key = SigningKey(b"\x01" * 32)
    switch = HaltSwitch(sqlite_engine, quorum=1)
    issuer = NoticeIssuer(switch, lambda m: key.sign(m).signature)
    watcher = HaltWatcher(bytes(key.verify_key), max_age_s=5, fetch=issuer.issue)
    signatures: list[bytes] = []

    def signer(message: bytes) -> None:
        watcher.poll()
        watcher.require_clear()
        signatures.append(message)

    signer(b"withdrawal 1")
    switch.trip("position_mismatch", {}, actor="recon")
    with pytest.raises(HaltInForce):
        signer(b"withdrawal 2")
    assert [b"withdrawal 1"] == signatures


def test_wrong_key_and_tampered_notice_refused(sqlite_engine: Engine) -> None:
    """A notice from another key, or with one byte changed, is refused and not kept."""
    key, other = SigningKey(b"\x01" * 32), SigningKey(b"\x02" * 32)
    issuer = NoticeIssuer(HaltSwitch(sqlite_engine, quorum=1), lambda m: other.sign(m).signature)
    watcher = HaltWatcher(bytes(key.verify_key), max_age_s=5)
    with pytest.raises(InvalidNotice):
        watcher.receive(issuer.issue())
    good = NoticeIssuer(HaltSwitch(sqlite_engine, quorum=1), lambda m: key.sign(m).signature).issue()
    tampered = SignedNotice(good.payload.replace(b'"halted":false', b'"halted":true '), good.signature)
    with pytest.raises(InvalidNotice):
        watcher.receive(tampered)
    assert watcher.latest is None
    with pytest.raises(HaltStateUnknown):
        watcher.require_clear()


def test_stale_future_and_rolled_back_notices(sqlite_engine: Engine) -> None:
    """A notice older than the bound fails closed; one from the future or rolling back is refused."""
    key, clock = SigningKey(b"\x01" * 32), Clock()
    switch = HaltSwitch(sqlite_engine, quorum=1)
    issuer = NoticeIssuer(switch, lambda m: key.sign(m).signature, clock=clock)
    watcher = HaltWatcher(bytes(key.verify_key), max_age_s=5, clock=clock)
    old_clear = issuer.issue()
    watcher.receive(old_clear)
    clock.now += timedelta(seconds=6)
    with pytest.raises(HaltStateUnknown):
        watcher.require_clear()
    switch.trip("officer", {}, actor="o")
    watcher.receive(issuer.issue())
    with pytest.raises(InvalidNotice):
        watcher.receive(old_clear)
    clock.now -= timedelta(seconds=60)
    with pytest.raises(InvalidNotice):
        HaltWatcher(bytes(key.verify_key), max_age_s=5, clock=clock).receive(
            NoticeIssuer(switch, lambda m: key.sign(m).signature, clock=lambda: clock.now + timedelta(seconds=60))
            .issue())


def test_malformed_notice_payloads_refused() -> None:
    """Notices that are not canonical, miss fields or carry wrong types are refused by the parser."""
    for payload in (b"{}", b"not json", b'{"coordinator":"c","halt_id":null,"halted":1,'
                    b'"issued_at":"2026-11-27T12:00:00+00:00","seq":0}',
                    b'{"halted":false,"coordinator":"c","halt_id":null,'
                    b'"issued_at":"2026-11-27T12:00:00+00:00","seq":0}'):
        with pytest.raises(InvalidNotice):
            HaltNotice.parse(payload)


def test_watcher_cut_off_from_coordinator_refuses(sqlite_engine: Engine, hsm: Hsm) -> None:
    """A watcher polling over HTTP is clear while it hears the coordinator and refuses once cut off."""
    issuer = NoticeIssuer(HaltSwitch(sqlite_engine, quorum=1), hsm_notice_signer(hsm, LABEL))
    server = NoticeServer(issuer).start()
    watcher = HaltWatcher(hsm.public_key(LABEL), max_age_s=0.5, fetch=http_notice_fetcher(server.url, timeout_s=0.5))
    watcher.start(interval_s=0.05)
    try:
        wait_until(watcher.clear, timeout=10, what="watcher clear")
        server.stop()
        wait_until(lambda: not watcher.clear(), timeout=10, what="watcher fails closed")
        with pytest.raises(HaltStateUnknown):
            watcher.require_clear()
        assert watcher.last_error is not None
    finally:
        watcher.stop()


def test_push_hook_delivers_notice_on_halt(sqlite_engine: Engine) -> None:
    """A push hook hands each watcher a fresh signed notice the moment the halt is set; a dead target is skipped."""
    key = SigningKey(b"\x01" * 32)
    watcher = HaltWatcher(bytes(key.verify_key), max_age_s=5)
    switch = HaltSwitch(sqlite_engine, quorum=1)
    issuer = NoticeIssuer(switch, lambda m: key.sign(m).signature)

    def dead(_: SignedNotice) -> None:
        raise ConnectionError("signer 2 is down")

    switch = HaltSwitch(sqlite_engine, quorum=1, hooks=[push_hook(issuer, [dead, watcher.receive])])
    halt = switch.trip("position_mismatch", {}, actor="recon")
    assert watcher.latest is not None and (True, halt.halt_id) == (watcher.latest.halted, watcher.latest.halt_id)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_changed_byte_refused(data: st.DataObject) -> None:
    """A signed notice with any one byte changed, in the notice or the signature, is refused."""
    key = SigningKey(b"\x05" * 32)
    notice = HaltNotice("coordinator", True, "h" * 32, 7, datetime(2026, 11, 27, 12, tzinfo=UTC))
    payload = notice.payload()
    signed = SignedNotice(payload, key.sign(NOTICE_TAG + payload).signature)
    watcher = HaltWatcher(bytes(key.verify_key), max_age_s=5, clock=lambda: notice.issued_at)
    assert notice == watcher.receive(signed)
    blob = bytearray(signed.payload + signed.signature)
    index = data.draw(st.integers(0, len(blob) - 1))
    blob[index] ^= data.draw(st.integers(1, 255))
    changed = SignedNotice(bytes(blob[:len(payload)]), bytes(blob[len(payload):]))
    with pytest.raises(InvalidNotice):
        HaltWatcher(bytes(key.verify_key), max_age_s=5, clock=lambda: notice.issued_at).receive(changed)
