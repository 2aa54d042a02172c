"""docs/architecture.md is generated from the process and route tables and is never out of date."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from coffer.architecture import AUDIENCES, DOCUMENT, coordinator_surface, main, render
from coffer.keyholder.routes import PROCESSES

ROOT = Path(__file__).resolve().parents[1]


def test_document_matches_the_code() -> None:
    """Regenerating docs/architecture.md from the code gives the committed file, byte for byte."""
    assert render() == (ROOT / DOCUMENT).read_text(encoding="utf-8")


def test_check_mode_fails_on_a_stale_document(tmp_path: Path) -> None:
    """`python -m coffer.architecture --check` fails for a stale file and passes once it is rewritten."""
    stale = tmp_path / "architecture.md"
    stale.write_text(render().replace("cosigner", "co-signer", 1), encoding="utf-8")
    assert 1 == main(["--check", "--out", str(stale)])
    assert 0 == main(["--out", str(stale)])
    assert 0 == main(["--check", "--out", str(stale)])


def test_a_changed_process_table_changes_the_diagram() -> None:
    """What a process holds and whom it calls is read from PROCESSES, not written into the generator."""
    changed = tuple(dataclasses.replace(spec, holds="a test value") if spec.kind == "cosigner" else spec
                    for spec in PROCESSES)
    text = render(changed)
    assert (True, False) == ("holds: a test value" in text, "holds: a test value" in render())


def test_every_coordinator_route_has_one_audience() -> None:
    """Each of the coordinator's routes is listed once, under the audience that calls it."""
    groups = {group.audience.name: group.routes for group in coordinator_surface()}
    listed = [route for routes in groups.values() for route in routes]
    assert len(listed) == len(set(listed))
    assert [a.name for a in AUDIENCES] == list(groups)
    assert "POST /api/v1/exchange/withdrawals" in groups["exchange back office"]
    assert "POST /api/v1/public/por/verify" in groups["anyone (public proof of reserves)"]
    assert "GET /api/v1/me/balances" in groups["clients (browser)"]
