"""The security centre in headless Chromium (Playwright): sign in with TOTP, add a key, confirm the
challenge (gpg decrypts the mail delivered over SMTP), add a whitelist address, write a ticket."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

from coffer.notify import OutboxWorker, SmtpSender
from coffer.testing import free_port, wait_until
from tests.notify.helpers import Gpg, SmtpServer, encrypted_part
from tests.web.conftest import PASSWORD, Web

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ALICE = "Alice <alice@example.com>"


@pytest.fixture
def server(web: Web) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, in this process."""
    port = free_port()
    config = uvicorn.Config(web.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    wait_until(lambda: instance.started, timeout=15, what="uvicorn started")
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1100, "height": 1400})
        finally:
            browser.close()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_security_centre_in_browser(web: Web, server: str, page: Page, client_gpg: Gpg) -> None:
    """Sign in with TOTP, add a key, confirm the emailed challenge, add a whitelist address, open a ticket."""
    smtp = SmtpServer().start()
    try:
        worker = OutboxWorker(web.notify.outbox, SmtpSender("127.0.0.1", smtp.port, "security@example.com"))
        page.goto(f"{server}/security")
        expect(page).to_have_url(f"{server}/signin")
        page.fill("#client_id", "alice")
        page.fill("#password", PASSWORD)
        page.fill("#code", web.next_code("alice"))
        _shot(page, "01-signin")
        page.click("#signin")
        expect(page.locator("#client-id")).to_have_text("alice")
        expect(page.locator("#account-nonce")).to_have_text(web.nonces["alice"])

        page.fill("#armored", client_gpg.export_secret(ALICE).decode())
        page.click("#submit-key")
        expect(page.locator("#error")).to_contain_text("SECRET key")
        expect(page.locator("#armored")).to_have_value("")  # a pasted secret key is never echoed back
        expect(page.locator("#no-active-key")).to_be_visible()
        _shot(page, "02-secret-key-refused")

        page.fill("#armored", client_gpg.export(ALICE).decode())
        page.click("#submit-key")
        expect(page.locator("#notice")).to_contain_text("received")
        fingerprint = page.locator("#pending-fingerprint").inner_text()
        _shot(page, "03-key-pending")
        wait_until(lambda: worker.run_once(web.clock()) or not web.notify.outbox.items(status="pending"), timeout=10)
        challenge = next(m for m in smtp.messages if m["To"] == "alice@example.com"
                         and m.get_content_type() == "multipart/encrypted" and "Confirm your OpenPGP key" in client_gpg.decrypt(encrypted_part(m)))
        code = next(line.strip() for line in client_gpg.decrypt(encrypted_part(challenge)).splitlines()
                    if line.startswith("    "))
        page.fill("#challenge-code", code)
        page.click("#confirm-key")
        expect(page.locator("#active-fingerprint")).to_have_text(fingerprint)
        _shot(page, "04-key-active")

        page.select_option("#wl-asset", "BTC")
        page.fill("#wl-destination", "bcrt1qbrowseraddress0000000")
        page.fill("#wl-totp", web.next_code("alice"))
        page.click("#add-address")
        expect(page.locator("#whitelist-table")).to_contain_text("bcrt1qbrowseraddress0000000")
        expect(page.locator("#whitelist-table")).to_contain_text("time-locked")
        _shot(page, "05-whitelist")
        assert web.policy.whitelisted_at("alice", "BTC", "bcrt1qbrowseraddress0000000") is not None

        page.click("text=Secure tickets")
        page.fill("#ticket-subject", "Suspicious mail")
        page.fill("#ticket-body", "Someone asked for my two-factor code.")
        page.click("#send-ticket")
        expect(page.locator("#notice")).to_contain_text("encrypted to the security team")
        _shot(page, "06-ticket")

        worker.run_once(web.clock())
        mails = [m for m in smtp.messages if m["To"] == "alice@example.com"]
        assert mails and all("multipart/encrypted" == m.get_content_type() for m in mails[1:])
        assert any("bcrt1qbrowseraddress0000000" in client_gpg.decrypt(encrypted_part(m)) for m in mails[1:])
    finally:
        smtp.stop()
