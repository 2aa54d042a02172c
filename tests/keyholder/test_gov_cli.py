"""`coffer gov`: administrators make keys in their own directories, review and sign proposals."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from coffer.keyholder.administrators import read_action
from coffer.keyholder.cli import gov_app
from coffer.keyholder.governance import Administrator, GovernancePins, Officer, verify


def test_administrators_sign_a_proposal_from_their_own_directories(tmp_path: Path) -> None:
    """Three administrators init keys; a proposal signed by two verifies against the pinned three."""
    runner = CliRunner()
    admins = []
    for n in (1, 2, 3):
        made = runner.invoke(gov_app, ["init-admin", "--admin-dir", str(tmp_path / f"a{n}"), "--id", f"a{n}"])
        assert 0 == made.exit_code, made.output
        info = json.loads(made.output)
        admins.append(Administrator(info["admin_id"], bytes.fromhex(info["public_key"])))
    action = tmp_path / "enrol.json"
    content = json.dumps({"officer_id": "o9", "public_key": "11" * 32, "quorum": 2})
    proposed = runner.invoke(gov_app, ["propose", "--kind", "officer_enrol", "--keyholder", "signer-1",
                                       "--content", content, "--domain", "d", "--out", str(action)])
    assert 0 == proposed.exit_code, proposed.output
    assert "signed by:   nobody yet" in runner.invoke(gov_app, ["show", str(action)]).output
    for n in (1, 3):
        signed = runner.invoke(gov_app, ["sign", str(action), "--admin-dir", str(tmp_path / f"a{n}")])
        assert 0 == signed.exit_code, signed.output
    officers = (Officer("o1", b"\x22" * 32), Officer("o2", b"\x33" * 32))
    pins = GovernancePins("d", tuple(admins), 2, officers, 2)
    verify(read_action(action), pins, now_s=read_action(action).action.not_after_s - 60)


def test_unknown_kind_is_refused_in_one_line(tmp_path: Path) -> None:
    """A proposal of a kind that does not exist exits 2 with one line, writing nothing."""
    result = CliRunner().invoke(gov_app, ["propose", "--kind", "steal", "--keyholder", "x", "--out",
                                          str(tmp_path / "a.json")])
    assert 2 == result.exit_code
    assert not (tmp_path / "a.json").exists()
