"""Attack 9 of issue 16: acting for others from the coordinator's CLI.

The attacker runs the coordinator's `coffer` command on its home. It cannot whitelist for a client,
start a client's withdrawal, act as another operator, enrol or revoke operators without the
administrators' quorum, and the TOTP secrets the CLI stores are sealed under the HSM. Each attack is
refused naming the rule and changes nothing; the legitimate version succeeds.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from coffer.clients.cli import clients_app
from coffer.clients.errors import ClientError
from coffer.clients.seal import HsmSeal, open_secret
from coffer.config import load_config
from coffer.db import make_engine
from coffer.home import init_home, open_coordinator_hsm
from coffer.policy import cli as policy_cli
from coffer.policy.errors import PolicyRefused
from coffer.policy.roles import OperatorKey
from coffer.testing.tokens import process_softhsm_conf


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(policy_cli.policy_app, name="policy")
    root.add_typer(policy_cli.request_app, name="request")
    root.add_typer(policy_cli.operator_app, name="operator")
    root.add_typer(clients_app, name="clients")
    return root


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "coffer.toml").write_text(f'[hsm]\nsofthsm_conf = "{process_softhsm_conf()}"\n'
                                      f'token_label = "coord-{random.randrange(1 << 30)}"\n')
    init_home(home)
    return home


def _run(app: typer.Typer, home: Path, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--home", str(home)], catch_exceptions=False)
    assert 0 == result.exit_code, result.output
    return result.output


def _refused(app: typer.Typer, home: Path, *args: str) -> str:
    with pytest.raises(PolicyRefused) as refused:
        CliRunner().invoke(app, [*args, "--home", str(home)], catch_exceptions=False)
    return refused.value.rule


def _keys(tmp_path: Path, names: tuple[str, ...]) -> dict[str, tuple[Path, str]]:
    keys = {}
    for name in names:
        key = OperatorKey(random.randbytes(32))
        path = tmp_path / f"{name}.key"
        path.write_text(key.seed_hex())
        keys[name] = (path, key.public_key.hex())
    return keys


def _staff(app: typer.Typer, home: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """The ceremony's three administrators, then an initiator, an approver and an officer enrolled by two."""
    keys = _keys(tmp_path, ("erin", "frank", "gina", "ivan", "bob", "dave", "mallory"))
    _run(app, home, "operator", "genesis", *[f"--admin={n}={keys[n][1]}" for n in ("erin", "frank", "gina")])
    for name, role in (("ivan", "initiator"), ("bob", "approver"), ("dave", "security_officer")):
        _run(app, home, "operator", "add", name, "--roles", role, "--public-key", keys[name][1],
             f"--admin-key=erin={keys['erin'][0]}", f"--admin-key=frank={keys['frank'][0]}")
    return keys


def test_operators_are_enrolled_and_revoked_only_by_the_admin_quorum(app: typer.Typer, home: Path,
                                                                     tmp_path: Path) -> None:
    """Attack: `operator add` with one administrator, with a made-up key under an administrator's name, a second
    genesis, and a revocation by one administrator; refused (action.quorum). Legit: two administrators enrol and
    revoke."""
    keys = _staff(app, home, tmp_path)
    mallory = ("operator", "add", "mallory", "--roles", "approver", "--public-key", keys["mallory"][1])
    assert "action.quorum" == _refused(app, home, *mallory, f"--admin-key=erin={keys['erin'][0]}")
    assert "action.quorum" == _refused(app, home, *mallory, f"--admin-key=erin={keys['erin'][0]}",
                                       f"--admin-key=frank={keys['mallory'][0]}")
    assert "action.quorum" == _refused(app, home, "operator", "genesis", f"--admin=mallory={keys['mallory'][1]}")
    assert "mallory" not in _run(app, home, "operator", "list")
    assert "action.quorum" == _refused(app, home, "operator", "revoke", "bob", f"--admin-key=gina={keys['gina'][0]}")
    assert "bob" in _run(app, home, "operator", "list")
    _run(app, home, "operator", "revoke", "bob", f"--admin-key=gina={keys['gina'][0]}",
         f"--admin-key=frank={keys['frank'][0]}")
    assert "bob" not in _run(app, home, "operator", "list")


def test_requests_carry_the_initiators_own_signature(app: typer.Typer, home: Path, tmp_path: Path) -> None:
    """Attack: `request create --initiator client:X` (a client's withdrawal with no hold) and a request in ivan's
    name signed with another key; refused (request.client_via_api, request.initiator_signature). Legit: ivan signs
    his own refill request."""
    keys = _staff(app, home, tmp_path)
    common = ("request", "create", "--asset", "BTC", "--amount-minor", "10000000", "--destination", "bcrt1qhot",
              "--source", "cold")
    assert "request.client_via_api" == _refused(app, home, *common, "--kind", "client_withdrawal", "--account",
                                                "alice", "--initiator", "client:alice", "--key",
                                                str(keys["mallory"][0]))
    assert "request.initiator_signature" == _refused(app, home, *common, "--initiator", "ivan", "--key",
                                                     str(keys["mallory"][0]))
    engine = make_engine(load_config(home).database_url)
    with engine.connect() as conn:
        assert 0 == conn.execute(sa.text("SELECT count(*) FROM policy_requests")).scalar()
    output = _run(app, home, *common, "--initiator", "ivan", "--key", str(keys["ivan"][0]))
    assert '"approvals.company"' in output


def test_client_whitelist_only_through_the_client(app: typer.Typer, home: Path, tmp_path: Path) -> None:
    """Attack: `policy whitelist` for a client's account, and a company entry signed by a non-officer; refused
    (whitelist.client_only, whitelist.officer_signature), nothing whitelisted. Legit: a security officer
    whitelists the company's own destination with the officer's key."""
    keys = _staff(app, home, tmp_path)
    assert "whitelist.client_only" == _refused(app, home, "policy", "whitelist", "alice", "BTC", "bcrt1qmallory",
                                               "--operator", "dave", "--key", str(keys["dave"][0]))
    assert "whitelist.officer_signature" == _refused(app, home, "policy", "whitelist", "company", "BTC", "bcrt1qhot",
                                                     "--operator", "bob", "--key", str(keys["bob"][0]))
    service = policy_cli._service(home)
    assert service.whitelisted_at("alice", "BTC", "bcrt1qmallory") is None
    assert service.whitelisted_at("company", "BTC", "bcrt1qhot") is None
    _run(app, home, "policy", "whitelist", "company", "BTC", "bcrt1qhot", "--operator", "dave", "--key",
         str(keys["dave"][0]))
    assert service.whitelisted_at("company", "BTC", "bcrt1qhot") is not None


def test_clients_add_seals_the_totp_secret_under_the_hsm(app: typer.Typer, home: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Attack: read a client's TOTP secret from the database `coffer clients add` wrote, or move the sealed secret
    to the attacker's own row; it is sealed under the coordinator's HSM and bound to its client (ClientError).
    Legit: the client's authenticator got it once, and it opens for its own client."""
    monkeypatch.setenv("COFFER_CLIENT_PASSWORD", "correct horse battery staple")
    output = _run(app, home, "clients", "add", "carol", "--email", "carol@example.com")
    secret = output.split("TOTP secret:")[1].split()[0]
    engine = make_engine(load_config(home).database_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT totp_secret FROM clients_clients WHERE client_id = 'carol'")).scalar()
    assert str(stored).startswith("sealed:v1:")
    assert secret not in str(stored)
    hsm = open_coordinator_hsm(load_config(home))
    try:
        with pytest.raises(ClientError):
            open_secret(HsmSeal(hsm), "mallory", "totp_secret", str(stored))
        assert secret == open_secret(HsmSeal(hsm), "carol", "totp_secret", str(stored))
    finally:
        hsm.close()
