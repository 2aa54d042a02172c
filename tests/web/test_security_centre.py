"""The security centre over HTTP: sign-in, CSRF, rate limits, keys, whitelist, tickets, authorization."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from coffer.audit import AuditLog
from coffer.web.app import STATIC_DIR, TEMPLATES_DIR
from tests.notify.helpers import Gpg
from tests.web.conftest import PASSWORD, Web, sign_in

ALICE = "Alice <alice@example.com>"
BOB = "Bob <bob@example.com>"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _challenge_code(web: Web, gpg: Gpg, client_id: str) -> str:
    mail = [item for item in web.notify.outbox.items(client_id=client_id) if item.event == "key_challenge"][-1]
    return next(line.strip() for line in gpg.decrypt(mail.body).splitlines() if line.startswith("    "))


def test_form_sign_in_with_totp(web: Web) -> None:
    """The sign-in form with password and TOTP opens the security centre and queues a sign-in notice."""
    client = web.client()
    page = client.get("/signin")
    assert 200 == page.status_code
    response = client.post("/signin", data={"client_id": "alice", "password": PASSWORD, "code": web.next_code("alice"),
                                            "csrf_token": _csrf(page.text)}, follow_redirects=False)
    assert 303 == response.status_code
    cookie = response.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    centre = client.get("/security")
    assert "alice" in centre.text and web.nonces["alice"] in centre.text
    assert "sign_in" == web.notify.outbox.items(client_id="alice")[-1].event


def test_wrong_code_refused_without_saying_which(web: Web) -> None:
    """A wrong TOTP code (or password) gets the same refusal."""
    client = web.client()
    page = client.get("/signin")
    bad_code = client.post("/signin", data={"client_id": "alice", "password": PASSWORD, "code": "000000",
                                            "csrf_token": _csrf(page.text)})
    bad_password = client.post("/signin", data={"client_id": "alice", "password": "wrong password!",
                                                "code": web.next_code("alice"), "csrf_token": _csrf(page.text)})
    assert 401 == bad_code.status_code == bad_password.status_code
    assert "wrong client id, password or two-factor code" in bad_code.text
    assert "wrong client id, password or two-factor code" in bad_password.text


def test_totp_code_used_once(web: Web) -> None:
    """The same TOTP code does not sign in twice."""
    code = web.next_code("alice")
    first = web.client().post("/api/v1/session", json={"client_id": "alice", "password": PASSWORD, "code": code})
    again = web.client().post("/api/v1/session", json={"client_id": "alice", "password": PASSWORD, "code": code})
    assert (200, 400) == (first.status_code, again.status_code)


def test_sign_in_rate_limited(web: Web) -> None:
    """After a burst of attempts for one client the next one is refused with 429 and Retry-After."""
    client = web.client()
    statuses = [client.post("/api/v1/session", json={"client_id": "bob", "password": "nope nope nope",
                                                     "code": "123456"}).status_code for _ in range(6)]
    assert [400] * 5 + [429] == statuses
    last = client.post("/api/v1/session", json={"client_id": "bob", "password": PASSWORD, "code": web.next_code("bob")})
    assert 429 == last.status_code and "retry-after" in last.headers


def test_csrf_required(web: Web, client_gpg: Gpg) -> None:
    """State changes without the CSRF token are refused, forms and API alike, and the sign-in form too."""
    client = web.client()
    client.get("/signin")
    assert 403 == client.post("/signin", data={"client_id": "alice", "password": PASSWORD, "code": "123456"}).status_code
    token = sign_in(web, client, "alice")
    assert 403 == client.post("/security/key", data={"armored": client_gpg.export(ALICE).decode()}).status_code
    assert 403 == client.post("/api/v1/security/key", json={"armored": client_gpg.export(ALICE).decode()}).status_code
    assert 403 == client.post("/api/v1/security/key", json={"armored": "x"}, headers={"X-CSRF-Token": "forged"}).status_code
    assert web.notify.keys.pending("alice") is None
    assert 200 == client.post("/api/v1/security/key", json={"armored": client_gpg.export(ALICE).decode()},
                              headers={"X-CSRF-Token": token}).status_code


def test_key_flow_over_api(web: Web, client_gpg: Gpg) -> None:
    """Submit, decrypt the challenge with gpg, confirm; replacing then needs TOTP."""
    client = web.client()
    headers = {"X-CSRF-Token": sign_in(web, client, "alice")}
    submitted = client.post("/api/v1/security/key", json={"armored": client_gpg.export(ALICE).decode()}, headers=headers)
    assert 200 == submitted.status_code
    fingerprint = submitted.json()["fingerprint"]
    assert fingerprint == client.get("/api/v1/security").json()["pending_key"]["fingerprint"]
    confirmed = client.post("/api/v1/security/key/confirm", json={"code": _challenge_code(web, client_gpg, "alice")},
                            headers=headers)
    assert {"fingerprint": fingerprint, "state": "active"} == confirmed.json()
    replace = client.post("/api/v1/security/key", json={"armored": client_gpg.export(BOB).decode()}, headers=headers)
    assert 400 == replace.status_code and "two-factor" in replace.json()["detail"]
    replace = client.post("/api/v1/security/key", json={"armored": client_gpg.export(BOB).decode(),
                                                        "totp_code": web.next_code("alice")}, headers=headers)
    assert 200 == replace.status_code
    removed = client.post("/api/v1/security/key/remove", json={"totp_code": web.next_code("alice")}, headers=headers)
    assert "removed" == removed.json()["state"]


def test_bad_keys_over_form_change_nothing(web: Web, client_gpg: Gpg) -> None:
    """Garbage, a secret key and a 10 MB blob get clear errors; nothing is stored and no secret is echoed."""
    client = web.client()
    sign_in(web, client, "alice")
    token = _csrf(client.get("/security").text)
    secret = client_gpg.export_secret(ALICE).decode()
    garbage = client.post("/security/key", data={"armored": "garbage", "csrf_token": token})
    assert 400 == garbage.status_code and "not an OpenPGP public key" in garbage.text
    leaked = client.post("/security/key", data={"armored": secret, "csrf_token": token})
    assert 400 == leaked.status_code and "SECRET key" in leaked.text
    assert secret.splitlines()[3] not in leaked.text
    big = client.post("/security/key", data={"armored": "A" * (200 * 1024), "csrf_token": token})
    assert 400 == big.status_code and "too large" in big.text
    huge = client.post("/security/key", data={"csrf_token": token},
                       files={"keyfile": ("key.asc", b"A" * (10 * 1024 * 1024), "text/plain")})
    assert 413 == huge.status_code
    assert web.notify.keys.pending("alice") is None and web.notify.keys.active("alice") is None
    assert ["sign_in"] == [item.event for item in web.notify.outbox.items(client_id="alice")]


def test_whitelist_needs_totp_and_starts_time_lock(web: Web, client_gpg: Gpg) -> None:
    """Adding an address needs a fresh TOTP code, starts the policy time lock and mails an encrypted notice."""
    client = web.client()
    headers = {"X-CSRF-Token": sign_in(web, client, "alice")}
    client.post("/api/v1/security/key", json={"armored": client_gpg.export(ALICE).decode()}, headers=headers)
    client.post("/api/v1/security/key/confirm", json={"code": _challenge_code(web, client_gpg, "alice")}, headers=headers)
    body = {"asset": "BTC", "destination": "bcrt1qexampleaddress0000", "totp_code": "000000"}
    assert 400 == client.post("/api/v1/security/whitelist", json=body, headers=headers).status_code
    assert web.policy.whitelisted_at("alice", "BTC", body["destination"]) is None
    body["totp_code"] = web.next_code("alice")
    added = client.post("/api/v1/security/whitelist", json=body, headers=headers)
    assert 200 == added.status_code
    assert int(web.clock().timestamp()) == web.policy.whitelisted_at("alice", "BTC", body["destination"])
    assert int(web.clock().timestamp()) + 24 * 3600 == added.json()["unlocks_at_s"]
    notice = web.notify.outbox.items(client_id="alice")[-1]
    assert "whitelist_added" == notice.event and notice.encrypted
    assert body["destination"] in client_gpg.decrypt(notice.body)
    assert body["destination"] == client.get("/api/v1/security").json()["whitelist"][0]["destination"]


def test_client_sees_only_own_data(web: Web, client_gpg: Gpg) -> None:
    """Bob sees neither Alice's ticket, nor her nonce, key or whitelist."""
    alice, bob = web.client(), web.client()
    headers = {"X-CSRF-Token": sign_in(web, alice, "alice")}
    alice.post("/api/v1/security/key", json={"armored": client_gpg.export(ALICE).decode()}, headers=headers)
    alice.post("/api/v1/security/key/confirm", json={"code": _challenge_code(web, client_gpg, "alice")}, headers=headers)
    ticket = alice.post("/api/v1/tickets", json={"subject": "Help", "body": "private"}, headers=headers).json()["id"]
    sign_in(web, bob, "bob")
    assert 200 == alice.get(f"/api/v1/tickets/{ticket}").status_code
    assert bob.get(f"/api/v1/tickets/{ticket}").status_code in (400, 404)
    assert [] == bob.get("/api/v1/tickets").json()
    overview = bob.get("/api/v1/security").json()
    assert "bob" == overview["client_id"] and overview["active_key"] is None
    assert web.nonces["bob"] == overview["account_nonce"]
    assert web.nonces["alice"] not in bob.get("/security").text


def test_anonymous_refused(web: Web) -> None:
    """Without a session the API answers 401 and pages redirect to the sign-in."""
    client = web.client()
    assert 401 == client.get("/api/v1/security").status_code
    page = client.get("/security", follow_redirects=False)
    assert 303 == page.status_code and "/signin" == page.headers["location"]


def test_ticket_form_with_attachment(web: Web, client_gpg: Gpg) -> None:
    """A ticket with an attachment from the form is stored encrypted; the page shows no plaintext."""
    client = web.client()
    headers = {"X-CSRF-Token": sign_in(web, client, "alice")}
    client.post("/api/v1/security/key", json={"armored": client_gpg.export(ALICE).decode()}, headers=headers)
    client.post("/api/v1/security/key/confirm", json={"code": _challenge_code(web, client_gpg, "alice")}, headers=headers)
    token = _csrf(client.get("/security/tickets").text)
    response = client.post("/security/tickets", data={"subject": "Phishing", "body": "a mail asked for my code",
                                                      "csrf_token": token},
                           files={"attachments": ("mail.txt", b"phishing-mail-content", "text/plain")})
    assert 200 == response.status_code and "encrypted to the security team" in response.text
    assert "phishing-mail-content" not in response.text
    (ticket,) = web.notify.tickets.tickets(client_id="alice")
    assert "phishing-mail-content" not in web.notify.tickets.messages(ticket.id)[0].ciphertext


def test_security_headers_and_openapi(web: Web) -> None:
    """Pages carry a strict CSP; every API route is in /openapi.json; the interactive docs (CDN) are off."""
    client = web.client()
    page = client.get("/signin")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "nosniff" == page.headers["x-content-type-options"]
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/session", "/api/v1/security", "/api/v1/security/key", "/api/v1/security/key/confirm",
            "/api/v1/security/whitelist", "/api/v1/tickets"} <= set(paths)
    assert 404 == client.get("/docs").status_code


def test_no_external_assets() -> None:
    """Templates and static files reference no external host (no CDN)."""
    for path in [*Path(TEMPLATES_DIR).glob("*.html"), *Path(STATIC_DIR).glob("*")]:
        assert not re.search(r"(src|href)=\"(https?:)?//", path.read_text()), path


def test_sessions_are_hashed(web: Web) -> None:
    """The session cookie value is not stored in the database; registrations are audited."""
    client = web.client()
    sign_in(web, client, "alice")
    token = client.cookies.get("coffer_session")
    assert token
    with web.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM web_sessions")).all()
    assert token not in str(rows)
    assert 2 == len(AuditLog(web.engine).events(event="clients.registered"))


def test_two_factor_change(web: Web) -> None:
    """Renewing two-factor needs the current code, then a code of the new secret; the old secret stops working."""
    import pyotp

    client, other_device = web.client(), web.client()
    sign_in(web, client, "alice")
    sign_in(web, other_device, "alice")
    token = _csrf(client.get("/security").text)
    begun = client.post("/security/two-factor", data={"totp_code": web.next_code("alice"), "csrf_token": token})
    secret = re.search(r'id="new-totp-secret">([A-Z2-7]+)<', begun.text)
    assert secret is not None
    web.clock.advance(30)
    new_code = pyotp.TOTP(secret.group(1)).at(web.clock().timestamp())
    done = client.post("/security/two-factor/confirm", data={"totp_code": new_code, "csrf_token": token})
    assert 200 == done.status_code and "now uses the new secret" in done.text
    assert "two_factor_changed" == web.notify.outbox.items(client_id="alice")[-1].event
    assert 401 == other_device.get("/api/v1/security").status_code  # other sessions end
    assert 200 == client.get("/api/v1/security").status_code
    old = web.client().post("/api/v1/session", json={"client_id": "alice", "password": PASSWORD,
                                                     "code": web.next_code("alice")})
    assert 400 == old.status_code


def test_sensitive_actions_rate_limited(web: Web) -> None:
    """A burst of key confirmations hits the per-client limit (429) before the challenge could be guessed."""
    client = web.client()
    headers = {"X-CSRF-Token": sign_in(web, client, "alice")}
    statuses = [client.post("/api/v1/security/key/confirm", json={"code": "AAAA"}, headers=headers).status_code
                for _ in range(11)]
    assert [400] * 10 + [429] == statuses


def test_streamed_body_over_limit_refused(web: Web) -> None:
    """A chunked body without Content-Length is cut off at the limit with 413."""
    client = web.client()
    headers = {"X-CSRF-Token": sign_in(web, client, "alice"), "Content-Type": "application/json"}

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(8):
            yield b" " * (1024 * 1024)

    response = client.post("/api/v1/security/key", content=chunks(), headers=headers)
    assert 413 == response.status_code


def test_sign_out_ends_session(web: Web) -> None:
    """After signing out the old cookie no longer works."""
    client = web.client()
    headers = {"X-CSRF-Token": sign_in(web, client, "alice")}
    token = client.cookies.get("coffer_session")
    assert 200 == client.delete("/api/v1/session", headers=headers).status_code
    replay = web.client()
    replay.cookies.set("coffer_session", token or "")
    assert 401 == replay.get("/api/v1/security").status_code


def test_whitelist_hook_and_page_mail_once(web: Web) -> None:
    """With the policy hook registered too, one whitelist addition is mailed once."""
    from coffer.notify.hooks import whitelist_notice

    web.policy.whitelist_hooks.append(whitelist_notice(web.notify.notifier))
    client = web.client()
    headers = {"X-CSRF-Token": sign_in(web, client, "alice")}
    body = {"asset": "ETH", "destination": "0x00000000000000000000000000000000000000aa",
            "totp_code": web.next_code("alice")}
    assert 200 == client.post("/api/v1/security/whitelist", json=body, headers=headers).status_code
    assert 1 == [item.event for item in web.notify.outbox.items(client_id="alice")].count("whitelist_added")


def test_expired_active_key_is_flagged(web: Web, client_gpg: Gpg) -> None:
    """Once the active key has expired the security centre says so (mail still goes encrypted, never plain)."""
    client = web.client()
    headers = {"X-CSRF-Token": sign_in(web, client, "alice")}
    client.post("/api/v1/security/key", json={"armored": client_gpg.export(ALICE).decode()}, headers=headers)
    client.post("/api/v1/security/key/confirm", json={"code": _challenge_code(web, client_gpg, "alice")}, headers=headers)
    key = client.get("/api/v1/security").json()["active_key"]
    assert key["expires_at"] and not key["expired"]
    web.clock.advance(400 * 24 * 3600)
    sign_in(web, client, "alice")
    assert client.get("/api/v1/security").json()["active_key"]["expired"]
    assert 'id="key-expired"' in client.get("/security").text
    assert web.notify.outbox.items(client_id="alice")[-1].encrypted
