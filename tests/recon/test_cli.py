"""`coffer recon`: halt by hand, officers sign offline, a quorum resumes; too few is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from nacl.signing import SigningKey
from typer.testing import CliRunner

from coffer.recon import InsufficientSignatures
from coffer.recon import cli as recon_cli
from coffer.testing.homes import bare_home


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(recon_cli.app, name="recon")
    return root


def run(app: typer.Typer, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert 0 == result.exit_code, result.output
    return result.output.strip()


def last_line(app: typer.Typer, *args: str) -> str:
    """The command's answer, after any log lines the default logger printed."""
    return run(app, *args).splitlines()[-1]


def status(app: typer.Typer, *home: str) -> str:
    output = run(app, "recon", "status", *home)
    return output[output.index("{"):]


def test_halt_by_hand_and_resume_by_quorum(app: typer.Typer, tmp_path: Path) -> None:
    """An officer halts; one offline signature is refused; two resume; status shows each step."""
    home = ("--home", str(bare_home(tmp_path / "home")))
    key_files = {}
    for n in range(1, 4):
        key = SigningKey(bytes([n]) * 32)
        key_files[f"o{n}"] = tmp_path / f"o{n}.key"
        key_files[f"o{n}"].write_text(bytes([n]).hex() * 32 + "\n")
        run(app, "recon", "officer-add", f"o{n}", "--public-key", bytes(key.verify_key).hex(), *home)
    halt_id = last_line(app, "recon", "halt", "--reason", "drill", "--by", "o1", *home)
    assert json.loads(status(app, *home))["halted"]
    signatures = [f"{o}:" + last_line(app, "recon", "sign-resume", "--key-file", str(key_files[o]), "--halt-id", halt_id,
                                "--reason", "drill over") for o in ("o2", "o3")]
    with pytest.raises(InsufficientSignatures):
        CliRunner().invoke(app, ["recon", "resume", "--halt-id", halt_id, "--reason", "drill over",
                                 "--signature", signatures[0], *home], catch_exceptions=False)
    assert json.loads(status(app, *home))["halted"]
    run(app, "recon", "resume", "--halt-id", halt_id, "--reason", "drill over", "--signature", signatures[0],
        "--signature", signatures[1], *home)
    final = json.loads(status(app, *home))
    assert (False, ["o2", "o3"]) == (final["halted"], final["halts"][0]["resume_signers"])
