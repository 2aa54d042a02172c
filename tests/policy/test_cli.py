"""The `coffer policy|request|approve|operator` commands on a fresh data directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from coffer.policy import cli as policy_cli
from coffer.policy.engine import default_policy_text
from coffer.testing.homes import bare_home


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(policy_cli.policy_app, name="policy")
    root.add_typer(policy_cli.request_app, name="request")
    root.add_typer(policy_cli.operator_app, name="operator")
    root.command(name="approve")(policy_cli.approve)
    return root


def run(app: typer.Typer, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert 0 == result.exit_code, result.output
    return result.output


def test_operator_request_approve_and_policy_change(app: typer.Typer, tmp_path: Path) -> None:
    """Keys, operators, a request approved with a key file, and a policy change signed by two admins."""
    home = ("--home", str(bare_home(tmp_path / "home")))
    keys = {}
    for name, roles in (("ivan", "initiator"), ("bob", "approver"), ("erin", "policy_admin"),
                        ("frank", "policy_admin"), ("gina", "policy_admin")):
        keys[name] = tmp_path / f"{name}.key"
        public = run(app, "operator", "keygen", "--out", str(keys[name])).strip()
        assert 0o600 == keys[name].stat().st_mode & 0o777
        run(app, "operator", "add", name, "--roles", roles, "--public-key", public, *home)
    assert "ivan" in run(app, "operator", "list", *home)
    assert "version 1" in run(app, "policy", "show", *home)
    output = run(app, "request", "create", "--kind", "refill", "--asset", "BTC", "--amount-minor", "10000000",
                 "--destination", "bcrt1qhot", "--account", "company", "--initiator", "ivan", "--source", "cold",
                 *home)
    digest = output.split()[1]
    assert '"approvals.company"' in output
    approved = run(app, "approve", digest, "--key", str(keys["bob"]), "--operator", "bob", *home)
    assert '"approvals.company"' not in approved.split('"pending"')[1]
    changed = tmp_path / "changed.cedar"
    changed.write_text(default_policy_text().replace("86400", "172800"))
    assert "ok:" in run(app, "policy", "validate", str(changed))
    assert "version 2" in run(app, "policy", "propose", str(changed), "--by", "erin", *home)
    for admin in ("frank", "gina"):
        run(app, "policy", "sign", "2", "--operator", admin, "--key", str(keys[admin]), *home)
    assert "version 2 active" in run(app, "policy", "activate", "2", *home)


def test_validate_reports_location(app: typer.Typer, tmp_path: Path) -> None:
    """`coffer policy validate` on a broken file fails and names the line."""
    broken = tmp_path / "broken.cedar"
    broken.write_text(default_policy_text().replace("when { context.halted };", "when { context.halted ;"))
    result = CliRunner().invoke(app, ["policy", "validate", str(broken)])
    assert 0 != result.exit_code
    assert "line" in str(result.exception)
