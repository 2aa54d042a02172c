"""`coffer serve` as a process: a 600 KB deeply nested JSON body gets a typed 4xx (rule json.depth)
before any parser sees it, and the server answers the next request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coffer.testing import ServiceProcess

from ..web.test_console_serve import serve_process
from .conftest import nested_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ServiceProcess]]:
    with serve_process(Path(tmp_path_factory.mktemp("serve-limits"))) as process:
        yield f"http://127.0.0.1:{process.port}", process


@pytest.mark.parametrize("content_type", ["application/json", None])
def test_deeply_nested_json_to_coffer_serve_is_refused(served: tuple[str, ServiceProcess],
                                                       content_type: str | None) -> None:
    """A 600 KB nested body to a JSON API route gets 400 json.depth (with or without a JSON content type);
    the process lives and answers its health check."""
    url, process = served
    headers = {"Content-Type": content_type} if content_type else {}
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.post("/api/v1/session", content=nested_json(), headers=headers)
        assert (400, "json.depth") == (response.status_code, response.json()["rule"])
        assert {"status": "ok"} == client.get("/health").json()
    assert process.alive()
