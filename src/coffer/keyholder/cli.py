"""`coffer gov`: what an administrator does with their own key file. The coordinator never holds
one: it writes proposals and carries the signed files to the key holders.

    gov init-admin --admin-dir DIR --id ID      make an administrator key in DIR (0700/0600)
    gov propose --kind K --keyholder NAME ... --content JSON --out FILE
    gov show FILE                               every field, host keys with fingerprints
    gov sign FILE --admin-dir DIR               add this administrator's signature
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from coffer.keyholder.administrators import (
    describe,
    load_admin,
    make_admin,
    propose,
    read_action,
    sign_file,
    write_action,
)
from coffer.keyholder.governance import ActionKind, GovernanceRefused, fingerprint

__all__ = ["gov_app"]

gov_app = typer.Typer(no_args_is_help=True, help="Governance actions, made and signed by the administrators.")


def _fail(error: GovernanceRefused) -> typer.Exit:
    typer.echo(f"refused: {error}", err=True)
    return typer.Exit(2)


@gov_app.command("init-admin")
def init_admin(admin_dir: Path = typer.Option(..., "--admin-dir"), admin_id: str = typer.Option(..., "--id")) -> None:
    """Make an administrator's key in their own directory; prints the public key to pin."""
    try:
        admin = make_admin(admin_dir, admin_id)
    except GovernanceRefused as error:
        raise _fail(error) from None
    typer.echo(json.dumps({"admin_id": admin.admin_id, "public_key": admin.public.public_key.hex(),
                           "fingerprint": fingerprint(admin.public.public_key)}))


@gov_app.command("propose")
def propose_command(kind: str = typer.Option(..., "--kind", help="|".join(k.value for k in ActionKind)),
                    keyholder: list[str] = typer.Option(..., "--keyholder", help="key holder in scope (repeatable)"),
                    content: str = typer.Option("{}", "--content", help="the action's content, JSON"),
                    key_id: str | None = typer.Option(None, "--key-id"),
                    domain: str = typer.Option("coffer", "--domain"),
                    out: Path = typer.Option(..., "--out")) -> None:
    """Write an unsigned action for the administrators to review and sign."""
    try:
        signed = propose(domain, ActionKind(kind), key_id=key_id, keyholders=keyholder, content=json.loads(content))
    except (ValueError, GovernanceRefused) as error:
        typer.echo(f"refused: {error}", err=True)
        raise typer.Exit(2) from None
    write_action(out, signed)
    typer.echo(describe(signed))


@gov_app.command("show")
def show(path: Path) -> None:
    """Print every field of the action in PATH, as an administrator reviews it before signing."""
    try:
        typer.echo(describe(read_action(path)))
    except GovernanceRefused as error:
        raise _fail(error) from None


@gov_app.command("sign")
def sign(path: Path, admin_dir: Path = typer.Option(..., "--admin-dir")) -> None:
    """Add this administrator's signature (their own key file) to the action in PATH."""
    try:
        signed = sign_file(path, load_admin(admin_dir))
    except GovernanceRefused as error:
        raise _fail(error) from None
    typer.echo(describe(signed))
