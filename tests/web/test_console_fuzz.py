"""Schemathesis over the app's OpenAPI document (security centre, console, public pages): no
generated input, signed in as an operator, as a client or not at all, gets a server error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from coffer.web.deps import SESSION_COOKIE
from tests.web.conftest import Web
from tests.web.console_world import build_console


def _fuzz(schema: Any, fresh: Callable[[], dict[str, str]], failures: list[str], examples: int) -> None:
    for result in schema.get_all_operations():
        operation = result.ok()
        headers = fresh()  # a generated sign-out may end the session: a new one per operation

        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        run()


def test_no_server_errors_for_generated_input(web: Web) -> None:
    """Every documented operation answers generated input with a non-5xx status, for each kind of caller."""
    world = build_console(web)
    document = world.app.openapi()
    assert any(path.startswith("/api/v1/console/") for path in document["paths"])
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.app)
    failures: list[str] = []

    def operator() -> dict[str, str]:
        token, session = web.context.session_store.create("operator", "dora", now=web.clock())
        return {"Cookie": f"{SESSION_COOKIE}={token}", "X-CSRF-Token": session.csrf_token}

    def client() -> dict[str, str]:
        token, session = web.context.session_store.create("client", "alice", now=web.clock())
        return {"Cookie": f"{SESSION_COOKIE}={token}", "X-CSRF-Token": session.csrf_token}

    _fuzz(schema, operator, failures, examples=4)
    _fuzz(schema, client, failures, examples=2)
    _fuzz(schema, dict, failures, examples=2)
    assert [] == failures
