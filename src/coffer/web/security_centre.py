"""The client security centre: sign-in, OpenPGP key, two-factor, withdrawal whitelist, tickets.

Pages (HTML forms, server-rendered) and a JSON API under `/api/v1` share one set of actions.
Every state-changing request needs the session's CSRF token and passes a rate limit; replacing
or removing a key, adding a whitelist address and changing two-factor need a fresh TOTP code.
A client only ever reaches their own data: every query is keyed by the session's client id.
A pasted key is never echoed back (it might be a secret key pasted by mistake).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from starlette.responses import Response

from coffer.audit import AuditLog
from coffer.clients import SignInRefused
from coffer.errors import CofferError
from coffer.notify import Attachment, KeyRejected
from coffer.notify.hooks import whitelist_idempotency_key
from coffer.notify.pgp import KEY_BYTES_MAX, expiry
from coffer.notify.tickets import ATTACHMENT_BYTES_MAX, ATTACHMENTS_MAX
from coffer.web.context import WebContext
from coffer.web.deps import (
    PRE_SESSION_COOKIE,
    SESSION_COOKIE,
    client_address,
    client_session,
    context,
    limit,
    render,
    require_csrf,
    set_cookie,
)
from coffer.web.errors import CsrfRefused, NotSignedIn, RateLimited, WebError
from coffer.web.sessions import Session, anonymous_csrf

__all__ = ["page_router", "api_router"]

page_router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1", tags=["security centre"])

_DESTINATION = re.compile(r"^[A-Za-z0-9:._-]{1,128}$")
WHITELIST_SHOWN_MAX = 200
KEY_EXPIRY_WARNING_S = 30 * 24 * 3600
TICKET_ID_MAX = 2**62  # fits every database's 64-bit integer


def _utc(at_s: int | None) -> str:
    return "" if at_s is None else datetime.fromtimestamp(at_s, UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- actions shared by pages and API ---------------------------------------------------------
def _sign_in(request: Request, client_id: str, password: str, code: str) -> tuple[str, Session]:
    ctx = context(request)
    limit(request, "signin_address", client_address(request))
    limit(request, "signin_client", client_id[:64])
    now = ctx.clock()
    client = ctx.clients.authenticate(client_id, password, code, now=now)
    token, session = ctx.session_store.create("client", client.client_id, now=now)
    ctx.notify.notifier.notify(client.client_id, "sign_in",
                               {"at": now.strftime("%Y-%m-%d %H:%M"), "address": client_address(request)}, now=now)
    return token, session


def _second_factor(request: Request, client_id: str, code: str | None) -> bool:
    if not code:
        return False
    ctx = context(request)
    limit(request, "two_factor", client_id)
    ctx.clients.verify_totp(client_id, code, now=ctx.clock())
    return True


def _submit_key(request: Request, client_id: str, data: bytes, totp_code: str | None) -> dict[str, Any]:
    ctx = context(request)
    limit(request, "sensitive", client_id)
    now = ctx.clock()
    has_active = ctx.notify.keys.active(client_id) is not None
    ok = _second_factor(request, client_id, totp_code) if has_active else False
    submission = ctx.notify.key_service.submit(client_id, data, now=now, second_factor_ok=ok)
    return {"fingerprint": submission.fingerprint, "user_ids": list(submission.user_ids),
            "algorithms": list(submission.algorithms), "replacing": submission.replacing,
            "expires_at": None if submission.expires_at is None else submission.expires_at.isoformat(),
            "challenge_expires_at": _utc(submission.challenge_expires_at_s)}


def _confirm_key(request: Request, client_id: str, code: str) -> str:
    ctx = context(request)
    limit(request, "sensitive", client_id)
    return ctx.notify.key_service.confirm(client_id, code, now=ctx.clock())


def _remove_key(request: Request, client_id: str, totp_code: str) -> str:
    ctx = context(request)
    limit(request, "sensitive", client_id)
    ok = _second_factor(request, client_id, totp_code)
    return ctx.notify.key_service.remove(client_id, now=ctx.clock(), second_factor_ok=ok)


def _add_whitelist(request: Request, client_id: str, asset: str, destination: str, totp_code: str) -> dict[str, Any]:
    ctx = context(request)
    limit(request, "sensitive", client_id)
    if ctx.policy is None:
        raise WebError("the withdrawal whitelist is not available")
    if asset not in ctx.assets:
        raise WebError(f"unknown asset; one of {', '.join(ctx.assets)}")
    destination = destination.strip()
    if not _DESTINATION.fullmatch(destination):
        raise WebError("the address must be 1..128 letters, digits or : . _ -")
    if not _second_factor(request, client_id, totp_code):
        raise WebError("adding a withdrawal address needs your two-factor code")
    now = ctx.clock()
    entry = ctx.policy.add_whitelist(client_id, asset, destination, by=f"client:{client_id}", now=now,
                                     time_lock_s=ctx.whitelist_time_lock_s)
    unlocks = _utc(entry.unlocks_at_s)
    ctx.notify.notifier.notify(client_id, "whitelist_added",
                               {"destination": destination, "asset": asset, "unlocks_at": unlocks}, now=now,
                               idempotency_key=whitelist_idempotency_key(entry))
    return {"asset": asset, "destination": destination, "unlocks_at": unlocks, "unlocks_at_s": entry.unlocks_at_s}


def _whitelist(ctx: WebContext, client_id: str) -> list[dict[str, Any]]:
    """The client's whitelist additions, from the policy's audit events (the public record)."""
    now_s = int(ctx.clock().timestamp())
    entries = []
    for event in AuditLog(ctx.engine).events(event="policy.whitelist_added", limit=100_000):
        if event.payload.get("account") != client_id:
            continue
        unlocks = int(event.payload.get("unlocks_at_s", 0))
        entries.append({"asset": event.payload.get("asset"), "destination": event.payload.get("destination"),
                        "unlocks_at": _utc(unlocks), "locked": unlocks > now_s})
    return entries[-WHITELIST_SHOWN_MAX:]


def _key_view(ctx: WebContext, armored: str, fingerprint: str, activated_at_s: int | None) -> dict[str, Any]:
    expires = expiry(armored)
    left_s = None if expires is None else int((expires - ctx.clock()).total_seconds())
    return {"fingerprint": fingerprint, "activated_at": _utc(activated_at_s),
            "expires_at": None if expires is None else _utc(int(expires.timestamp())),
            "expired": left_s is not None and left_s <= 0,
            "expires_soon": left_s is not None and 0 < left_s <= KEY_EXPIRY_WARNING_S}


def _overview(ctx: WebContext, client_id: str) -> dict[str, Any]:
    status = ctx.notify.key_service.status(client_id)
    return {
        "client_id": client_id,
        "active_key": None if status.active is None else _key_view(ctx, status.active.armored,
                                                                   status.active.fingerprint,
                                                                   status.active.activated_at_s),
        "pending_key": None if status.pending is None else {
            "fingerprint": status.pending.fingerprint, "challenge_expires_at": _utc(status.pending.challenge_expires_at_s)},
        "account_nonce": None if ctx.account_nonce is None else ctx.account_nonce(client_id),
        "whitelist": _whitelist(ctx, client_id),
        "assets": list(ctx.assets),
    }


def _open_ticket(request: Request, client_id: str, subject: str, body: str, attachments: list[Attachment]) -> int:
    ctx = context(request)
    limit(request, "sensitive", client_id)
    return ctx.notify.tickets.open(client_id, subject, body, attachments, now=ctx.clock())


def _ticket_view(ctx: WebContext, client_id: str, ticket_id: int) -> dict[str, Any]:
    ticket = ctx.notify.tickets.ticket(ticket_id, client_id=client_id)
    messages = ctx.notify.tickets.messages(ticket_id, client_id=client_id)
    return {"id": ticket.id, "status": ticket.status, "created_at": _utc(ticket.created_at_s),
            "messages": [{"id": m.id, "from": "you" if m.author.startswith("client:") else "security team",
                          "at": _utc(m.at_s), "ciphertext": m.ciphertext,
                          "readable_by_you": not m.author.startswith("client:")} for m in messages]}


async def _read_upload(upload: UploadFile | None, bytes_max: int) -> bytes:
    if upload is None or not upload.filename:
        return b""
    data = await upload.read(bytes_max + 1)
    if len(data) > bytes_max:
        raise KeyRejected("too_large", f"file is too large (more than {bytes_max // 1024} KiB)")
    return data


# -- pages -------------------------------------------------------------------------------------
@page_router.get("/")
def home() -> Response:
    return RedirectResponse("/security", status_code=303)


@page_router.get("/signin")
def signin_page(request: Request) -> Response:
    pre = request.cookies.get(PRE_SESSION_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, "signin.html", csrf_token=anonymous_csrf(context(request).secret, pre))
    set_cookie(request, response, PRE_SESSION_COOKIE, pre, max_age=3600)
    return response


@page_router.post("/signin")
def signin(request: Request, client_id: str = Form(..., max_length=64), password: str = Form(..., max_length=256),
           code: str = Form(..., max_length=16), csrf_token: str = Form("", max_length=128)) -> Response:
    require_csrf(request, None, csrf_token)
    try:
        token, _session = _sign_in(request, client_id, password, code)
    except SignInRefused as exc:
        pre = request.cookies.get(PRE_SESSION_COOKIE, "")
        return render(request, "signin.html", status_code=401, error=str(exc),
                      csrf_token=anonymous_csrf(context(request).secret, pre))
    response = RedirectResponse("/security", status_code=303)
    set_cookie(request, response, SESSION_COOKIE, token, max_age=None)
    response.delete_cookie(PRE_SESSION_COOKIE, path="/")
    return response


@page_router.post("/signout")
def signout(request: Request, csrf_token: str = Form("", max_length=128),
            session: Session = Depends(client_session)) -> Response:
    require_csrf(request, session, csrf_token)
    context(request).session_store.revoke(session)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _page(request: Request, session: Session, *, status_code: int = 200, **values: Any) -> Response:
    ctx = context(request)
    return render(request, "security.html", status_code=status_code, session=session,
                  overview=_overview(ctx, session.subject), **values)


def _page_action(request: Request, session: Session, action: Any, done: str) -> Response:
    try:
        result = action()
    except (RateLimited, CsrfRefused, NotSignedIn):
        raise
    except CofferError as exc:
        return _page(request, session, status_code=400, error=str(exc))
    return _page(request, session, notice=done.format(result=result), result=result)


@page_router.get("/security")
def security_page(request: Request, session: Session = Depends(client_session)) -> Response:
    return _page(request, session)


@page_router.post("/security/key")
async def key_form(request: Request, armored: str = Form(""),  # bounded by the request limit; the key gate says "too large"
                   keyfile: UploadFile | None = File(None), totp_code: str = Form("", max_length=16),
                   csrf_token: str = Form("", max_length=128), session: Session = Depends(client_session)) -> Response:
    require_csrf(request, session, csrf_token)
    try:
        data = await _read_upload(keyfile, KEY_BYTES_MAX) or armored.encode()
    except KeyRejected as exc:
        return _page(request, session, status_code=400, error=str(exc))
    return _page_action(request, session, lambda: _submit_key(request, session.subject, data, totp_code or None),
                        "Key {result[fingerprint]} received. We mailed you a code encrypted to it: "
                        "decrypt the mail and enter the code below to activate the key.")


@page_router.post("/security/key/confirm")
def key_confirm_form(request: Request, code: str = Form(..., max_length=64), csrf_token: str = Form("", max_length=128),
                     session: Session = Depends(client_session)) -> Response:
    require_csrf(request, session, csrf_token)
    return _page_action(request, session, lambda: _confirm_key(request, session.subject, code),
                        "Key {result} is active: every mail to you is now encrypted to it.")


@page_router.post("/security/key/remove")
def key_remove_form(request: Request, totp_code: str = Form("", max_length=16),
                    csrf_token: str = Form("", max_length=128), session: Session = Depends(client_session)) -> Response:
    require_csrf(request, session, csrf_token)
    return _page_action(request, session, lambda: _remove_key(request, session.subject, totp_code),
                        "Key {result} removed.")


@page_router.post("/security/whitelist")
def whitelist_form(request: Request, asset: str = Form(..., max_length=16), destination: str = Form(..., max_length=200),
                   totp_code: str = Form("", max_length=16), csrf_token: str = Form("", max_length=128),
                   session: Session = Depends(client_session)) -> Response:
    require_csrf(request, session, csrf_token)
    return _page_action(request, session,
                        lambda: _add_whitelist(request, session.subject, asset, destination, totp_code),
                        "Address {result[destination]} added; it can be used from {result[unlocks_at]}.")


@page_router.post("/security/two-factor")
def two_factor_begin_form(request: Request, totp_code: str = Form("", max_length=16),
                          csrf_token: str = Form("", max_length=128),
                          session: Session = Depends(client_session)) -> Response:
    require_csrf(request, session, csrf_token)
    ctx = context(request)

    def begin() -> dict[str, str]:
        limit(request, "two_factor", session.subject)
        enrollment = ctx.clients.begin_totp_change(session.subject, totp_code, now=ctx.clock())
        return {"secret": enrollment.secret, "uri": enrollment.provisioning_uri}
    return _page_action(request, session, begin, "Add the new secret to your authenticator, then confirm it below.")


@page_router.post("/security/two-factor/confirm")
def two_factor_confirm_form(request: Request, totp_code: str = Form("", max_length=16),
                            csrf_token: str = Form("", max_length=128),
                            session: Session = Depends(client_session)) -> Response:
    require_csrf(request, session, csrf_token)
    ctx = context(request)

    def confirm() -> str:
        limit(request, "two_factor", session.subject)
        now = ctx.clock()
        ctx.clients.confirm_totp_change(session.subject, totp_code, now=now)
        ctx.session_store.revoke_all("client", session.subject, keep=session)
        ctx.notify.notifier.notify(session.subject, "two_factor_changed", {"at": now.strftime("%Y-%m-%d %H:%M")}, now=now)
        return "ok"
    return _page_action(request, session, confirm, "Your two-factor authentication now uses the new secret.")


@page_router.get("/security/tickets")
def tickets_page(request: Request, session: Session = Depends(client_session)) -> Response:
    ctx = context(request)
    tickets = ctx.notify.tickets.tickets(client_id=session.subject)
    return render(request, "tickets.html", session=session, tickets=[
        {"id": t.id, "status": t.status, "created_at": _utc(t.created_at_s), "messages": t.messages} for t in tickets],
        attachments_max=ATTACHMENTS_MAX, attachment_kib_max=ATTACHMENT_BYTES_MAX // 1024)


@page_router.post("/security/tickets")
async def ticket_form(request: Request, subject: str = Form(..., max_length=400), body: str = Form(..., max_length=40_000),
                      attachments: list[UploadFile] = File(default_factory=list),
                      csrf_token: str = Form("", max_length=128),
                      session: Session = Depends(client_session)) -> Response:
    require_csrf(request, session, csrf_token)
    ctx = context(request)
    try:
        files = [Attachment(a.filename or "", a.content_type or "application/octet-stream",
                            await a.read(ATTACHMENT_BYTES_MAX + 1)) for a in attachments[:ATTACHMENTS_MAX + 1] if a.filename]
        ticket_id = _open_ticket(request, session.subject, subject, body, files)
    except (RateLimited, CsrfRefused, NotSignedIn):
        raise
    except CofferError as exc:
        return render(request, "tickets.html", status_code=400, session=session, error=str(exc),
                      tickets=[], attachments_max=ATTACHMENTS_MAX, attachment_kib_max=ATTACHMENT_BYTES_MAX // 1024)
    return render(request, "ticket.html", session=session, ticket=_ticket_view(ctx, session.subject, ticket_id),
                  notice=f"Ticket #{ticket_id} was encrypted to the security team and stored.")


@page_router.get("/security/tickets/{ticket_id}")
def ticket_page(request: Request, ticket_id: int = PathParam(ge=1, le=TICKET_ID_MAX), session: Session = Depends(client_session)) -> Response:
    ctx = context(request)
    return render(request, "ticket.html", session=session, ticket=_ticket_view(ctx, session.subject, ticket_id))


# -- JSON API ------------------------------------------------------------------------------------
class SignInBody(BaseModel):
    client_id: str = Field(max_length=64)
    password: str = Field(max_length=256)
    code: str = Field(max_length=16)


class KeyBody(BaseModel):
    armored: str = Field(description="ASCII-armored OpenPGP public key (at most 64 KiB)")
    totp_code: str | None = Field(default=None, max_length=16, description="needed to replace an active key")


class CodeBody(BaseModel):
    code: str = Field(max_length=64)


class TotpBody(BaseModel):
    totp_code: str = Field(max_length=16)


class WhitelistBody(BaseModel):
    asset: str = Field(max_length=16)
    destination: str = Field(max_length=200)
    totp_code: str = Field(max_length=16)


class TicketBody(BaseModel):
    subject: str = Field(max_length=400)
    body: str = Field(max_length=40_000)


def _api_csrf(request: Request, session: Session) -> Session:
    require_csrf(request, session, None)
    return session


def api_client(request: Request, session: Session = Depends(client_session)) -> Session:
    """A signed-in client whose request carries the session's `X-CSRF-Token` when it changes state."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        _api_csrf(request, session)
    return session


@api_router.post("/session", summary="Sign in with password and TOTP; sets the session cookie")
def api_sign_in(request: Request, body: SignInBody) -> Response:
    from fastapi.responses import JSONResponse
    token, session = _sign_in(request, body.client_id, body.password, body.code)
    response = JSONResponse({"client_id": session.subject, "csrf_token": session.csrf_token})
    set_cookie(request, response, SESSION_COOKIE, token, max_age=None)
    return response


@api_router.delete("/session", summary="Sign out")
def api_sign_out(request: Request, session: Session = Depends(api_client)) -> dict[str, str]:
    context(request).session_store.revoke(session)
    return {"status": "signed out"}


@api_router.get("/security", summary="The signed-in client's security centre")
def api_overview(request: Request, session: Session = Depends(api_client)) -> dict[str, Any]:
    return _overview(context(request), session.subject)


@api_router.post("/security/key", summary="Submit an OpenPGP public key (pending until the challenge is answered)")
def api_submit_key(request: Request, body: KeyBody, session: Session = Depends(api_client)) -> dict[str, Any]:
    return _submit_key(request, session.subject, body.armored.encode(), body.totp_code)


@api_router.post("/security/key/confirm", summary="Answer the key challenge; activates the key")
def api_confirm_key(request: Request, body: CodeBody, session: Session = Depends(api_client)) -> dict[str, str]:
    return {"fingerprint": _confirm_key(request, session.subject, body.code), "state": "active"}


@api_router.post("/security/key/remove", summary="Remove the active key (needs TOTP)")
def api_remove_key(request: Request, body: TotpBody, session: Session = Depends(api_client)) -> dict[str, str]:
    return {"fingerprint": _remove_key(request, session.subject, body.totp_code), "state": "removed"}


@api_router.post("/security/whitelist", summary="Add a withdrawal address (needs TOTP; starts the time lock)")
def api_whitelist(request: Request, body: WhitelistBody, session: Session = Depends(api_client)) -> dict[str, Any]:
    return _add_whitelist(request, session.subject, body.asset, body.destination, body.totp_code)


@api_router.get("/tickets", summary="The client's secure tickets")
def api_tickets(request: Request, session: Session = Depends(api_client)) -> list[dict[str, Any]]:
    tickets = context(request).notify.tickets.tickets(client_id=session.subject)
    return [{"id": t.id, "status": t.status, "created_at": _utc(t.created_at_s), "messages": t.messages}
            for t in tickets]


@api_router.post("/tickets", summary="Open a secure ticket (encrypted to the security team before storage)")
def api_open_ticket(request: Request, body: TicketBody, session: Session = Depends(api_client)) -> dict[str, int]:
    return {"id": _open_ticket(request, session.subject, body.subject, body.body, [])}


@api_router.get("/tickets/{ticket_id}", summary="One of the client's tickets, messages as OpenPGP ciphertext")
def api_ticket(request: Request, ticket_id: int = PathParam(ge=1, le=TICKET_ID_MAX), session: Session = Depends(api_client)) -> dict[str, Any]:
    return _ticket_view(context(request), session.subject, ticket_id)
