"""The console and the public proof page in headless Chromium (Playwright), with a virtual
WebAuthn authenticator (Chrome DevTools Protocol): enrol a security key, sign in, approve a
request with it, halt and resume with officers' signatures, reconciliation chart, signers, audit
log, and a client's inclusion check. Screenshots go to test-artifacts/web/console/."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

from coffer.policy import verify_approvals
from coffer.policy.engine import epoch_s
from coffer.testing import free_port, wait_until
from tests.web.conftest import START, Web
from tests.web.console_world import ConsoleWorld, build_console
from tests.web.test_console_api import run_checks
from tests.web.test_public_por import STATEMENT_KEY, publish

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web" / "console"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _serve(world: ConsoleWorld, port: int) -> Iterator[str]:
    config = uvicorn.Config(world.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=15, what="uvicorn started")
    try:
        yield f"http://localhost:{port}"  # WebAuthn needs a host name: localhost, not 127.0.0.1
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            cdp = page.context.new_cdp_session(page)
            cdp.send("WebAuthn.enable")
            cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
                "protocol": "ctap2", "transport": "usb", "hasResidentKey": False, "hasUserVerification": True,
                "isUserVerified": True, "automaticPresenceSimulation": True}})
            yield page
        finally:
            browser.close()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _enrol_and_sign_in(page: Page, server: str, world: ConsoleWorld, operator_id: str) -> None:
    page.goto(f"{server}/console/enrol")
    page.fill("#operator_id", operator_id)
    page.click("#enrol-start")
    expect(page.locator("#enrol-message")).not_to_be_empty()
    message = bytes.fromhex(page.locator("#enrol-message").inner_text().strip())
    page.fill("#ed25519_signature", world.keys[operator_id].sign(message).hex())
    page.click("#enrol-finish")
    expect(page.locator("#console-message")).to_contain_text("registered")
    _shot(page, f"01-enrolled-{operator_id}")
    page.goto(f"{server}/console/signin")
    page.fill("#operator_id", operator_id)
    page.click("#signin-key")
    expect(page.locator("#operator")).to_have_text(operator_id)


def test_console_in_browser(web: Web, page: Page) -> None:
    """Enrol, sign in and approve with a virtual security key; halt and resume; recon, signers, audit pages."""
    port = free_port()
    web.context.secure_cookies = False
    world = build_console(web, origin=f"http://localhost:{port}", rp_id="localhost")
    run_checks(world, [1000, 1100, 950, 1200])
    for server in _serve(world, port):
        _enrol_and_sign_in(page, server, world, "ann")
        _shot(page, "02-overview")
        page.goto(f"{server}/console/approvals")
        expect(page.locator("tr.request .status")).to_have_text("pending")
        _shot(page, "03-queue")
        page.click("button.approve")
        expect(page.locator("#console-message")).to_contain_text("Approved as approver")
        expect(page.locator("tr.request .approvers")).to_have_text("ann")
        _shot(page, "04-approved")
        stored = world.console.policy.approvals(world.request.digest_hex)
        assert [("ann", "webauthn")] == [(a.operator_id, a.scheme) for a in stored]
        assert ["ann"] == [v.operator_id for v in verify_approvals(
            world.request, stored, world.console.policy.operators(), now_s=epoch_s(START))]

        page.click("#console-signout")
        expect(page).to_have_url(f"{server}/console/signin")
        _enrol_and_sign_in(page, server, world, "dora")
        page.goto(f"{server}/console/halt")
        page.fill("#trip-reason", "browser drill")
        page.click("#trip-button")
        expect(page.locator(".banner")).to_contain_text("HALTED: operator")
        expect(page.locator("#halt-cause")).to_have_text("operator")
        _shot(page, "05-halted")
        page.fill("#resume-reason", "drill over")
        page.click("#resume-message-button")
        expect(page.locator("#resume-message")).not_to_be_empty()
        message = bytes.fromhex(page.locator("#resume-message").inner_text().strip())
        lines = [f"{name} {key.sign(message).signature.hex()}" for name, key in world.officer_keys.items()]
        page.fill("#resume-signatures", "\n".join(lines))
        _shot(page, "06-resume-signed")
        page.click("#resume-button")
        expect(page.locator("#halt-state")).to_have_text("running")
        expect(page.locator(".banner")).to_have_count(0)
        _shot(page, "07-resumed")

        page.goto(f"{server}/console/recon")
        expect(page.locator("svg#chart-BTC polyline")).to_have_count(1)
        expect(page.locator("#onchain-assets")).to_contain_text("1200")
        _shot(page, "08-recon")
        page.goto(f"{server}/console/signers")
        expect(page.locator("tr.signer")).to_have_count(2)
        _shot(page, "09-signers")
        page.goto(f"{server}/console/audit")
        expect(page.locator("#chain-ok")).to_contain_text("Hash chain verified")
        expect(page.locator("#audit")).to_contain_text("policy.approval")
        _shot(page, "10-audit")


def test_public_proof_page_in_browser(web: Web, page: Page, tmp_path: Path) -> None:
    """A client pastes their inclusion proof and nonce and sees it verified; a wrong nonce is refused."""
    proofs = publish(web, tmp_path / "por")
    port = free_port()
    world = build_console(web, por_dir=tmp_path / "por", por_public_key=bytes(STATEMENT_KEY.verify_key),
                          origin=f"http://localhost:{port}", rp_id="localhost")
    for server in _serve(world, port):
        page.goto(f"{server}/por")
        expect(page.locator("tr.statement .solvent")).to_have_text("yes")
        expect(page.locator("#log-status")).to_contain_text("verified")
        page.fill("#proof", proofs["alice"])
        page.fill("#account_nonce", web.nonces["bob"])
        page.click("#verify-proof")
        expect(page.locator("#inclusion-result")).to_contain_text("Not verified")
        page.fill("#account_nonce", web.nonces["alice"])
        page.click("#verify-proof")
        expect(page.locator("#inclusion-result")).to_contain_text("Included")
        expect(page.locator("#inclusion-result")).to_contain_text("holds 0.00005000 BTC")
        expect(page.locator("#inclusion-result")).to_contain_text("sum to 0.00012000 BTC")
        expect(page.locator("tr.statement .coverage-text")).to_have_text("166.66 % of liabilities")
        expect(page.locator("tr.history-row")).to_have_count(1)
        _shot(page, "11-public-por")
