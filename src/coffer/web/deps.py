"""FastAPI dependencies and helpers every router of the web app uses (also issue 12's console).

- `context(request)`: the app's `WebContext`.
- `client_session` / `session_of_kind(kind)`: the signed-in session or 401 / redirect.
- `require_csrf(request, session, given)`: raise unless the CSRF token matches.
- `limit(request, action, key)`: one hit on a rate-limit bucket.
- `render(request, template, status_code=200, **values)`: a page with the shared layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from coffer.web.context import WebContext
from coffer.web.errors import NotSignedIn
from coffer.web.sessions import Session, anonymous_csrf, check_csrf

__all__ = ["context", "templates", "current_session", "client_session", "session_of_kind", "require_csrf",
           "limit", "render", "SESSION_COOKIE", "PRE_SESSION_COOKIE", "client_address", "set_cookie"]

SESSION_COOKIE = "coffer_session"
PRE_SESSION_COOKIE = "coffer_pre"


def context(request: Request) -> WebContext:
    value: WebContext = request.app.state.coffer
    return value


def templates(request: Request) -> Jinja2Templates:
    value: Jinja2Templates = request.app.state.templates
    return value


def current_session(request: Request) -> Session | None:
    ctx = context(request)
    return ctx.session_store.get(request.cookies.get(SESSION_COOKIE), now=ctx.clock())


def session_of_kind(kind: str) -> Callable[[Request], Session]:
    def dependency(request: Request) -> Session:
        session = current_session(request)
        if session is None or session.kind != kind:
            raise NotSignedIn("please sign in")
        return session
    return dependency


client_session = session_of_kind("client")


def require_csrf(request: Request, session: Session | None, given: str | None) -> None:
    """Check the form field or `X-CSRF-Token` header against the session (or the pre-session)."""
    given = given or request.headers.get("x-csrf-token")
    if session is not None:
        check_csrf(session.csrf_token, given)
        return
    pre = request.cookies.get(PRE_SESSION_COOKIE)
    check_csrf(None if not pre else anonymous_csrf(context(request).secret, pre), given)


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def limit(request: Request, action: str, key: str) -> None:
    ctx = context(request)
    ctx.limiter.hit(action, key, now_s=ctx.clock().timestamp())


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=context(request).secure_cookies,
                        httponly=True, samesite="strict")


def render(request: Request, template: str, *, status_code: int = 200, session: Session | None = None,
           **values: Any) -> Response:
    ctx = context(request)
    banners = [text for text in (banner() for banner in ctx.banners) if text]
    page = {"request": request, "session": session, "nav": ctx.nav, "banners": banners,
            "csrf_token": session.csrf_token if session is not None else values.pop("csrf_token", ""), **values}
    response = templates(request).TemplateResponse(request, template, page, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response
