"""Authorization: every operator route and page refuses anonymous users and clients; operators
are refused on client routes."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from coffer.web.deps import SESSION_COOKIE
from tests.web.conftest import Web
from tests.web.console_world import ConsoleWorld, build_console

# Routes that must answer before sign-in (they start or finish a security-key ceremony).
PRE_SIGNIN = {"/api/v1/console/webauthn/register/options", "/api/v1/console/webauthn/register",
              "/api/v1/console/webauthn/signin/options", "/api/v1/console/webauthn/signin"}
PAGES = ["/console", "/console/approvals", "/console/halt", "/console/recon", "/console/signers", "/console/audit"]


def _operator_routes(world: ConsoleWorld) -> list[tuple[str, str]]:
    digest = world.request.digest_hex
    routes = []
    for path, methods in world.app.openapi()["paths"].items():
        if path.startswith("/api/v1/console/") and path not in PRE_SIGNIN:
            routes += [(method.upper(), re.sub(r"\{digest\}", digest, path)) for method in methods]
    return routes


def _callers(world: ConsoleWorld, web: Web) -> dict[str, TestClient]:
    anonymous = world.client()
    client = world.client()
    token, _ = web.context.session_store.create("client", "alice", now=web.clock())
    client.cookies.set(SESSION_COOKIE, token)
    return {"anonymous": anonymous, "client": client}


def test_operator_routes_refuse_anonymous_and_clients(web: Web) -> None:
    """Each documented console API route answers 401 to anonymous users and signed-in clients."""
    world = build_console(web)
    routes = _operator_routes(world)
    assert len(routes) >= 15
    for name, caller in _callers(world, web).items():
        for method, path in routes:
            response = caller.request(method, path, params={"halt_id": "h", "reason": "r"}, json={})
            assert (name, method, path, 401) == (name, method, path, response.status_code)


def test_console_pages_send_others_to_operator_signin(web: Web) -> None:
    """Console pages redirect anonymous users and clients to the operator sign-in and show them nothing."""
    world = build_console(web)
    pages = [*PAGES, f"/console/approvals/{world.request.digest_hex}"]
    for name, caller in _callers(world, web).items():
        for path in pages:
            response = caller.get(path, follow_redirects=False)
            assert (name, path, 303, "/console/signin") == (name, path, response.status_code,
                                                             response.headers.get("location"))


def test_operator_pages_render_for_operators(web: Web) -> None:
    """A signed-in operator sees each console page with the queue's request on it."""
    world = build_console(web)
    client, _ = world.operator_session("carl")
    for path in PAGES:
        assert 200 == client.get(path).status_code, path
    assert world.request.digest_hex[:12] in client.get("/console/approvals").text


def test_removed_operator_loses_access(web: Web) -> None:
    """A session whose subject is not (or no longer) an operator is refused actions that need a role."""
    world = build_console(web)
    ghost, csrf = world.operator_session("ghost")
    response = ghost.post(f"/api/v1/console/approvals/{world.request.digest_hex}/reject", json={"reason": "x"},
                          headers={"X-CSRF-Token": csrf})
    assert 403 == response.status_code
