"""Schemathesis over the app's OpenAPI document (security centre, console, public pages): no
generated input, signed in as an operator, as a client or not at all, gets a server error.

The quick test tries a few inputs per operation; the slow ones try SLOW_EXAMPLES_PER_ROUTE per
operation for each kind of caller, and chain operations along the links Schemathesis infers
(stateful). Examples follow the run's Hypothesis seed (printed in the header) so a failure replays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import run_state_machine_as_test

from coffer.web.deps import SESSION_COOKIE
from tests.web.conftest import Web
from tests.web.console_world import build_console

SLOW_EXAMPLES_PER_ROUTE = 50
STATEFUL_SCENARIOS = 50
STATEFUL_STEPS_MAX = 6

Headers = Callable[[], dict[str, str]]


def _fuzz(schema: Any, fresh: Headers, failures: list[str], examples: int) -> int:
    """Each operation `examples` times (fewer only when its inputs run out); returns the number of operations."""
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        headers = fresh()  # a generated sign-out may end the session: a new one per operation
        count += 1

        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        run()
    return count


def _callers(web: Web) -> dict[str, Headers]:
    def signed_in(kind: str, name: str) -> Headers:
        def headers() -> dict[str, str]:
            token, session = web.context.session_store.create(kind, name, now=web.clock())
            return {"Cookie": f"{SESSION_COOKIE}={token}", "X-CSRF-Token": session.csrf_token}
        return headers

    return {"operator": signed_in("operator", "dora"), "client": signed_in("client", "alice"), "anonymous": dict}


def _schema(web: Web) -> Any:
    world = build_console(web)
    assert any(path.startswith("/api/v1/console/") for path in world.app.openapi()["paths"])
    return schemathesis.openapi.from_asgi("/openapi.json", world.app)


def test_no_server_errors_for_generated_input(web: Web) -> None:
    """Every documented operation answers generated input with a non-5xx status, for each kind of caller."""
    schema, callers = _schema(web), _callers(web)
    failures: list[str] = []
    for caller, examples in (("operator", 4), ("client", 2), ("anonymous", 2)):
        _fuzz(schema, callers[caller], failures, examples=examples)
    assert [] == failures


@pytest.mark.slow
@pytest.mark.parametrize("caller", ["operator", "client", "anonymous"])
def test_every_route_takes_many_generated_inputs(web: Web, caller: str) -> None:
    """SLOW_EXAMPLES_PER_ROUTE generated requests per operation, for one kind of caller: none gets a 5xx."""
    failures: list[str] = []
    operations = _fuzz(_schema(web), _callers(web)[caller], failures, examples=SLOW_EXAMPLES_PER_ROUTE)
    assert operations >= 30  # every operation of the document, not a filtered few
    assert [] == failures


@pytest.mark.slow
def test_linked_operation_sequences_never_give_a_server_error(web: Web) -> None:
    """Sequences that feed one response into the next request (the links Schemathesis infers), as an operator."""
    schema = _schema(web)
    headers = _callers(web)["operator"]
    failures: list[str] = []
    linked_steps: list[str] = []

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.headers = headers()  # a generated sign-out ends only this scenario's session

        def step(self, input: Any) -> Any:  # noqa: A002 - Schemathesis's parameter name
            if input.transition is not None and input.is_applied:
                linked_steps.append(f"{input.case.method} {input.case.path}")
            return super().step(input)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": self.headers}

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}")

    assert schema.statistic.transitions.total > 0, "no links to follow"
    run_state_machine_as_test(Sequences, settings=settings(
        max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS_MAX, deadline=None, database=None,
        suppress_health_check=list(HealthCheck)))
    assert [] == failures
    assert linked_steps, "no step used a value from an earlier response"
