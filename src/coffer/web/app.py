"""The web app factory: one FastAPI app for the security centre and (issue 12) the console.

`create_app(context, routers=..., template_dirs=...)` builds the app: security headers, a
request size limit enforced while the body streams, a JSON depth limit checked before any parser, server-side sessions, local static files
(no CDN; the interactive docs pages are off because they load from a CDN, `/openapi.json` stays),
typed errors turned into clear 4xx answers (HTML for pages, JSON under `/api/`), and the
security centre. More routers plug in through `routers`; their templates through `template_dirs`
(searched before the built-in ones, so they may extend "base.html").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import DBAPIError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coffer.clients import ClientError
from coffer.errors import CofferError, NotFound, Refused
from coffer.integrations.errors import AuthenticationFailed, IdempotencyConflict
from coffer.keyholder.limits import JSON_DEPTH_MAX, json_depth, restore_recursion_limit
from coffer.ledger.errors import LedgerBusy
from coffer.notify import NotifyError
from coffer.policy import PolicyError
from coffer.web.context import WebContext
from coffer.web.errors import CsrfRefused, NotSignedIn, RateLimited, RequestTooLarge

__all__ = ["create_app", "Background", "REQUEST_BYTES_MAX", "STATIC_DIR", "TEMPLATES_DIR"]

UNAVAILABLE_RETRY_AFTER_S = 2
REQUEST_BYTES_MAX = 6 * 1024 * 1024  # tickets carry at most 4 MiB of attachments
STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"
_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


class _BodyLimit:
    """Refuses bodies over the limit: early from Content-Length, else while the body streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _too_large(scope, receive, send)
            return
        seen = 0
        exceeded = False
        answered = False

        async def counted() -> Message:
            # Past the limit the app is told the client went away, and its answer is replaced by a 413.
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal answered
            if not exceeded:
                await send(message)
            elif not answered:
                answered = True
                await _too_large(scope, receive, send)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not answered:
            await _too_large(scope, receive, send)


class _JsonDepthLimit:
    """Refuses a JSON body nested deeper than `JSON_DEPTH_MAX` before any parser sees it (400,
    rule json.depth); the body, already bounded by `_BodyLimit`, is then replayed to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
        if scope["type"] != "http" or (content_type and b"json" not in content_type.lower()):
            await self.app(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if json_depth(body) > JSON_DEPTH_MAX:
            response = JSONResponse({"error": "json_too_deep", "rule": "json.depth",
                                     "detail": f"JSON nested deeper than {JSON_DEPTH_MAX}"}, status_code=400)
            await response(scope, receive, send)
            return
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse({"error": "request_too_large",
                             "detail": f"request body larger than {REQUEST_BYTES_MAX // (1024 * 1024)} MiB"},
                            status_code=413, headers={"Connection": "close"})
    await response(scope, receive, send)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


_STATUS: list[tuple[type[Exception], int, str]] = [
    (LedgerBusy, 503, "unavailable"), (DBAPIError, 503, "unavailable"),
    (AuthenticationFailed, 401, "authentication_failed"), (IdempotencyConflict, 409, "idempotency_conflict"),
    (RequestTooLarge, 413, "request_too_large"), (NotSignedIn, 401, "not_signed_in"),
    (CsrfRefused, 403, "csrf"), (RateLimited, 429, "rate_limited"), (NotFound, 404, "not_found"),
    (Refused, 403, "refused"), (ClientError, 400, "refused"), (NotifyError, 400, "refused"),
    (PolicyError, 400, "refused"), (CofferError, 400, "refused"),
]


def _error_response(request: Request, exc: Exception) -> Response:
    status, code = next((s, c) for kind, s, c in _STATUS if isinstance(exc, kind))
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RateLimited) else None
    if status == 503:
        headers = {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)}
        exc = CofferError("the database is unavailable; nothing was done: retry shortly")
    if isinstance(exc, NotSignedIn) and not _is_api(request):
        return RedirectResponse("/signin", status_code=303)
    body: dict[str, Any] = {"error": code, "detail": str(exc)}
    reason = getattr(exc, "reason", None)
    if reason is not None:
        body["reason"] = reason
    rule = getattr(exc, "rule", None)
    if isinstance(rule, str):
        body["rule"] = rule
    if _is_api(request):
        return JSONResponse(body, status_code=status, headers=headers)
    from coffer.web.deps import render
    return render(request, "error.html", status_code=status, error=str(exc))


def _templates(template_dirs: Sequence[Path]) -> Jinja2Templates:
    loader = ChoiceLoader([*(FileSystemLoader(str(d)) for d in template_dirs), FileSystemLoader(str(TEMPLATES_DIR))])
    environment = Environment(loader=loader, autoescape=select_autoescape(default=True), auto_reload=False)
    return Jinja2Templates(env=environment)


class Background(Protocol):
    """Something the app runs while it serves, e.g. `OutboxWorker` (start(interval_s) / stop())."""

    def start(self, interval_s: float = ...) -> None: ...

    def stop(self, timeout_s: float = ...) -> None: ...


def create_app(context: WebContext, *, routers: Sequence[APIRouter] = (), template_dirs: Sequence[Path] = (),
               background: Sequence[Background] = (), title: str = "Coffer") -> FastAPI:
    """The Coffer web app over `context`; `routers` are mounted after the security centre and
    `background` workers run from startup to shutdown."""
    from coffer.web.security_centre import api_router, page_router

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for worker in background:
            worker.start()
        try:
            yield
        finally:
            for worker in reversed(background):
                worker.stop()

    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url="/openapi.json", lifespan=lifespan)
    app.state.coffer = context
    app.state.templates = _templates(template_dirs)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if context.secure_cookies:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    for kind, _status, _code in _STATUS:
        app.add_exception_handler(kind, _error_response)
    app.include_router(page_router)
    app.include_router(api_router)
    for router in routers:
        app.include_router(router)
    app.add_middleware(_JsonDepthLimit)
    app.add_middleware(_BodyLimit, limit=REQUEST_BYTES_MAX)  # added last: the outermost, so it bounds the depth check
    restore_recursion_limit()  # whatever the routers imported: never raised in a server process
    return app
