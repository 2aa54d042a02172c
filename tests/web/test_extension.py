"""How issue 12 plugs into the app: extra routers, templates extending base.html, operator sessions,
banners, and background workers run by the app's lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Form, Request
from fastapi.testclient import TestClient
from starlette.responses import Response

from coffer.web import Session, create_app
from coffer.web.deps import SESSION_COOKIE, render, require_csrf, session_of_kind
from tests.web.conftest import Web, sign_in

operator_session = session_of_kind("operator")
router = APIRouter()


@router.get("/console", include_in_schema=False)
def console(request: Request, session: Session = Depends(operator_session)) -> Response:
    return render(request, "console.html", session=session, greeting=f"hello {session.subject}")


@router.post("/api/v1/console/ping")
def ping(request: Request, value: str = Form(...), session: Session = Depends(operator_session)) -> dict[str, str]:
    require_csrf(request, session, None)
    return {"pong": value}


class Worker:
    def __init__(self) -> None:
        self.events: list[str] = []

    def start(self, interval_s: float = 1.0) -> None:
        self.events.append("start")

    def stop(self, timeout_s: float = 10.0) -> None:
        self.events.append("stop")


def test_extra_router_templates_banner_and_worker(web: Web, tmp_path: Path) -> None:
    """An operator page renders inside the shared layout with the halt banner; clients are refused; workers run."""
    (tmp_path / "console.html").write_text('{% extends "base.html" %}{% block content %}'
                                           '<p id="greeting">{{ greeting }}</p>{% endblock %}')
    web.context.banners.append(lambda: "HALTED: on-chain mismatch")
    web.context.nav.append(("Console", "/console"))
    worker = Worker()
    app = create_app(web.context, routers=[router], template_dirs=[tmp_path], background=[worker])
    with TestClient(app, base_url="https://testserver") as client:
        token, session = web.context.session_store.create("operator", "olga", now=web.clock())
        client.cookies.set(SESSION_COOKIE, token)
        page = client.get("/console")
        assert 200 == page.status_code
        assert "hello olga" in page.text and "HALTED: on-chain mismatch" in page.text and 'href="/console"' in page.text
        assert 403 == client.post("/api/v1/console/ping", data={"value": "x"}).status_code
        assert {"pong": "x"} == client.post("/api/v1/console/ping", data={"value": "x"},
                                            headers={"X-CSRF-Token": session.csrf_token}).json()
        customer = TestClient(app, base_url="https://testserver")
        sign_in(web, customer, "alice")
        assert 303 == customer.get("/console", follow_redirects=False).status_code
        assert 401 == customer.post("/api/v1/console/ping", data={"value": "x"}).status_code
        assert "/api/v1/console/ping" in client.get("/openapi.json").json()["paths"]
    assert ["start", "stop"] == worker.events
