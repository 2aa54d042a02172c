"""`coffer policy|request|approve|operator`: the policy part's commands.

Operator keys live in the operator's own key file (hex seed, mode 0600) and are only read by the
commands that sign on the operator's behalf (`approve`, `policy sign`), never by a service.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from sqlalchemy.engine import Engine

from coffer.commandline import HomeOption, home_config
from coffer.policy.approval import sign_approval
from coffer.policy.engine import Decision, compile_policy, default_policy_text, default_schema_text
from coffer.policy.errors import PolicyError
from coffer.policy.request import RequestKind, WithdrawalRequest, new_nonce
from coffer.policy.roles import Operator, OperatorKey, Role, generate_operator_key
from coffer.policy.service import PolicyService
from coffer.policy.versions import sign_activation

__all__ = ["policy_app", "request_app", "operator_app", "approve"]

console = Console()
policy_app = typer.Typer(no_args_is_help=True, help="Policy sets: show, validate, propose, sign, activate.")
request_app = typer.Typer(no_args_is_help=True, help="Withdrawal requests: create, show, attest.")
operator_app = typer.Typer(no_args_is_help=True, help="Operators: key generation and registration.")
KEY_FILE_BYTES_MAX = 1024


def _now() -> datetime:
    return datetime.now(UTC)


def _service(home: Path | None, *, with_hsm: bool = False) -> PolicyService:
    from coffer.db import make_engine, migrate

    config = home_config(home)
    engine = make_engine(config.database_url)
    migrate(engine)
    hsm = None
    if with_hsm:
        from coffer.home import open_coordinator_hsm

        hsm = open_coordinator_hsm(config)
    service = PolicyService(engine, hsm=hsm, halted=_halt_reader(engine), hot_balance=lambda asset: 0,
                            admin_quorum=config.policy.admin_quorum,
                            attestation_ttl_s=config.policy.attestation_ttl_s,
                            attestation_label=config.policy.attestation_key_label)
    service.bootstrap_default(now=_now())
    return service


def _halt_reader(engine: Engine) -> Callable[[], bool]:
    """The recon part's halt switch; fail closed (halted) if it cannot be read."""
    try:
        from coffer.recon.halt import HaltSwitch
    except ImportError:
        return lambda: True
    switch = HaltSwitch(engine, quorum=1)
    return switch.is_halted


def _read_key(path: Path) -> OperatorKey:
    if path.stat().st_size > KEY_FILE_BYTES_MAX:
        raise PolicyError(f"{path}: not a key file")
    text = path.read_text(encoding="ascii").strip()
    try:
        return OperatorKey(bytes.fromhex(text))
    except ValueError:
        raise PolicyError(f"{path}: not a key file (expected 64 hex characters)") from None


# -- operators --------------------------------------------------------------------------------
@operator_app.command("keygen")
def operator_keygen(out: Path = typer.Option(..., "--out", help="key file to create (mode 0600)")) -> None:
    """Create an Ed25519 operator key file and print its public key."""
    key = generate_operator_key()
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key.seed_hex() + "\n")
    console.print(key.public_key.hex())


@operator_app.command("add")
def operator_add(operator_id: str, roles: str = typer.Option(..., help="comma-separated roles"),
                 public_key: str = typer.Option(..., "--public-key", help="Ed25519 public key, hex"),
                 by: str = typer.Option("admin", help="who registers the operator"),
                 home: Path | None = HomeOption) -> None:
    """Register an operator with roles (initiator, approver, security_officer, policy_admin)."""
    try:
        parsed = frozenset(Role(role.strip()) for role in roles.split(",") if role.strip())
        key = bytes.fromhex(public_key)
    except ValueError as exc:
        raise PolicyError(f"bad role or key: {exc}") from None
    _service(home).add_operator(Operator(operator_id, parsed, key), by=by, now=_now())
    console.print(f"operator {operator_id} registered")


@operator_app.command("list")
def operator_list(home: Path | None = HomeOption) -> None:
    """List registered operators and their roles."""
    for operator in _service(home).operators():
        console.print(f"{operator.operator_id}\t{','.join(sorted(r.value for r in operator.roles))}\t"
                      f"{operator.ed25519_public_key.hex()}")


# -- policy sets ------------------------------------------------------------------------------
@policy_app.command("show")
def policy_show(home: Path | None = HomeOption, text: bool = typer.Option(False, "--text")) -> None:
    """Show the active policy version and hash (and its text with --text)."""
    version, compiled = _service(home).active_version()
    console.print(f"version {version}\nhash {compiled.hash}\nrules {len(compiled.rules)}")
    if text:
        console.print(compiled.text, markup=False, highlight=False)


@policy_app.command("validate")
def policy_validate(file: Path, schema: Path | None = typer.Option(None, "--schema")) -> None:
    """Check a policy file against the schema; a malformed one is reported with its line."""
    compiled = compile_policy(file.read_text(encoding="utf-8"),
                              schema.read_text(encoding="utf-8") if schema else default_schema_text())
    console.print(f"ok: {len(compiled.rules)} rules, hash {compiled.hash}")


@policy_app.command("default")
def policy_default() -> None:
    """Print the shipped default policy set."""
    console.print(default_policy_text(), markup=False, highlight=False)


@policy_app.command("propose")
def policy_propose(file: Path, by: str = typer.Option(..., "--by", help="proposing policy admin"),
                   schema: Path | None = typer.Option(None, "--schema"), home: Path | None = HomeOption) -> None:
    """Propose a policy set as a new version (inactive until k other admins sign it)."""
    proposal = _service(home).propose(file.read_text(encoding="utf-8"),
                                      schema.read_text(encoding="utf-8") if schema else None,
                                      proposed_by=by, now=_now())
    console.print(f"proposed version {proposal.version} hash {proposal.policy_hash}")


@policy_app.command("sign")
def policy_sign(version: int, operator: str = typer.Option(..., "--operator"),
                key: Path = typer.Option(..., "--key", help="the admin's key file"),
                home: Path | None = HomeOption) -> None:
    """Sign a proposed version with a policy admin's key."""
    service = _service(home)
    proposal = service.proposal(version)
    service.add_signature(version, sign_activation(_read_key(key), proposal, operator), now=_now())
    console.print(f"{operator} signed version {version}")


@policy_app.command("activate")
def policy_activate(version: int, by: str = typer.Option("admin", "--by"), home: Path | None = HomeOption) -> None:
    """Activate a version once enough other policy admins signed it; otherwise the old one stays."""
    compiled = _service(home).activate(version, now=_now(), by=by)
    console.print(f"version {version} active, hash {compiled.hash}")


@policy_app.command("whitelist")
def policy_whitelist(account: str, asset: str, destination: str, by: str = typer.Option(..., "--by"),
                     home: Path | None = HomeOption) -> None:
    """Whitelist a destination for an account (usable after the time lock)."""
    entry = _service(home).add_whitelist(account, asset, destination, by=by, now=_now())
    console.print(f"whitelisted; usable from {datetime.fromtimestamp(entry.unlocks_at_s, UTC).isoformat()}")


@policy_app.command("freeze")
def policy_freeze(account: str, by: str = typer.Option(..., "--by"), home: Path | None = HomeOption) -> None:
    """Freeze an account: every withdrawal from it is refused."""
    _service(home).freeze(account, by=by, now=_now())
    console.print(f"{account} frozen")


# -- requests and approvals -------------------------------------------------------------------
@request_app.command("create")
def request_create(kind: str = typer.Option("client_withdrawal"), asset: str = typer.Option(...),
                   amount_minor: int = typer.Option(..., "--amount-minor"), destination: str = typer.Option(...),
                   account: str = typer.Option(...), initiator: str = typer.Option(...),
                   source_wallet: str = typer.Option("auto", "--source"), fee_policy: str = typer.Option("normal", "--fee"),
                   ttl_s: int = typer.Option(3600, "--ttl-s"), home: Path | None = HomeOption) -> None:
    """Create a withdrawal request and show the policy's first decision."""
    request = WithdrawalRequest(RequestKind(kind), asset, amount_minor, destination, source_wallet, account,
                                fee_policy, new_nonce(), int(time.time()) + ttl_s, initiator)
    decision = _service(home).submit(request, now=_now())
    console.print(f"request {request.digest_hex}")
    _print_decision(decision)


def _print_decision(decision: Decision) -> None:
    console.print(json.dumps({
        "allowed": decision.allowed, "refused": decision.refused, "route": decision.route.value,
        "required": {"approvers": decision.required_approvals.approvers,
                     "security_officers": decision.required_approvals.security_officers},
        "reasons": list(decision.reasons), "refusing": list(decision.refusing_rules),
        "pending": list(decision.pending_rules)}, indent=2), markup=False, highlight=False)


@request_app.command("show")
def request_show(request_digest: str, home: Path | None = HomeOption) -> None:
    """Show a request document and the policy's decision now."""
    service = _service(home)
    console.print(service.request(request_digest).encode().decode(), markup=False, highlight=False)
    _print_decision(service.decide(request_digest, now=_now()))


@request_app.command("attest")
def request_attest(request_digest: str, home: Path | None = HomeOption) -> None:
    """Have the coordinator's HSM attest an allowed decision; print the attestation document."""
    signed = _service(home, with_hsm=True).attest(request_digest, now=_now())
    console.print(signed.encode().decode(), markup=False, highlight=False)


def approve(request_digest: str = typer.Argument(..., metavar="REQUEST"),
            key: Path = typer.Option(..., "--key", help="the approver's key file"),
            operator: str = typer.Option(..., "--operator"),
            role: str = typer.Option("approver", help="approver or security_officer"),
            ttl_s: int = typer.Option(600, "--ttl-s"), home: Path | None = HomeOption) -> None:
    """Approve REQUEST with your own key (bound to that request, expiring)."""
    service = _service(home)
    request = service.request(request_digest)
    approval = sign_approval(_read_key(key), request=request, operator_id=operator, role=Role(role),
                             expires_at_s=int(time.time()) + ttl_s)
    _print_decision(service.approve(approval, now=_now()))
