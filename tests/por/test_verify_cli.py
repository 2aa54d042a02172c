"""coffer-verify on a whole published snapshot: passes as published, fails with a reason on any change."""

from __future__ import annotations

from pathlib import Path

import pytest

from coffer.por.verify import main
from tests.por.conftest import Published


def _run(directory: Path, published: Published, *extra: str) -> int:
    return main([str(directory), "--group-key", published.group_key.hex(), *extra])


def test_published_snapshot_verifies(published: Published, capsys: pytest.CaptureFixture[str]) -> None:
    """The snapshot as published passes every check, including the node's view at the height."""
    assert 0 == _run(published.directory, published, "--rpc", published.rpc_url)
    out = capsys.readouterr().out
    assert "node confirms" in out and "log: 1 entries" in out
