"""`coffer recon`: the halt switch by hand, for security officers.

    status                    the halt state, the newest halts and check runs
    halt --reason R           set the halt by hand (always allowed: halting is the safe side)
    officer-add ID --public-key HEX     register a security officer's Ed25519 key
    resume-message --halt-id H --reason R   the bytes (hex) each officer signs
    sign-resume --key-file F --halt-id H --reason R   on the officer's own machine: a signature
    resume --halt-id H --reason R --signature ID:HEX ...   lift the halt with k of n signatures
Key files are the operator key files of `coffer operator keygen` (64 hex characters, mode 0600);
the private key never leaves the officer's machine and is never printed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from coffer.commandline import HomeOption, home_config
from coffer.errors import CofferError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from coffer.recon.halt import HaltSwitch

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help="The halt switch and reconciliation runs.")
console = Console()
KEY_FILE_BYTES_MAX = 256


def _switch(home: Path | None) -> tuple[HaltSwitch, Engine]:
    from coffer.db import make_engine, migrate
    from coffer.recon.halt import HaltSwitch

    config = home_config(home)
    engine = make_engine(config.database_url)
    migrate(engine)
    return HaltSwitch(engine, quorum=config.halt.officer_quorum), engine


@app.command()
def status(home: Path | None = HomeOption) -> None:
    """Print the halt state, the newest halts and the newest check runs as JSON."""
    from coffer.recon.scheduler import recent_runs

    switch, engine = _switch(home)
    state = switch.state()
    halts = [{"halt_id": h.halt_id, "cause": h.cause, "halted_at": h.halted_at, "set_by": h.set_by,
              "resumed_at": h.resumed_at, "resume_signers": list(h.resume_signers)} for h in switch.history(limit=5)]
    runs = [{"run_id": r.run_id, "job": r.job, "node": r.node, "started_at": r.started_at, "status": r.status}
            for r in recent_runs(engine, limit=10)]
    typer.echo(json.dumps({"halted": state.halted, "halt_id": state.halt_id, "seq": state.seq,
                           "halts": halts, "runs": runs}, indent=2))


@app.command()
def halt(reason: str = typer.Option(..., help="why the exchange must stop"),
         by: str = typer.Option("officer", help="who halts (an officer id)"), home: Path | None = HomeOption) -> None:
    """Set the halt by hand; prints the halt id."""
    switch, _ = _switch(home)
    typer.echo(switch.trip("officer", {"reason": reason}, actor=by).halt_id)


@app.command("officer-add")
def officer_add(officer_id: str, public_key: str = typer.Option(..., "--public-key", help="Ed25519 public key, hex"),
                by: str = typer.Option("admin", help="who registers the officer"),
                home: Path | None = HomeOption) -> None:
    """Register a security officer at the coordinator. Key holders never take officers from here:
    they accept a resume only from officers they pinned or that an administrators' quorum enrolled
    (`coffer gov propose --kind officer_enrol`)."""
    switch, _ = _switch(home)
    try:
        key = bytes.fromhex(public_key)
    except ValueError:
        raise typer.BadParameter("--public-key must be hex") from None
    switch.register_officer(officer_id, key, actor=by)
    typer.echo(f"registered {officer_id} at the coordinator; key holders need an officer_enrol governance action")


@app.command("resume-message")
def resume_message_command(halt_id: str = typer.Option(..., "--halt-id"),
                           reason: str = typer.Option(...)) -> None:
    """Print (hex) the exact bytes each officer signs to resume `halt_id` for `reason`."""
    from coffer.recon.halt import resume_message

    typer.echo(resume_message(halt_id, reason).hex())


@app.command("sign-resume")
def sign_resume(key_file: Path = typer.Option(..., "--key-file", help="the officer's key file"),
                halt_id: str = typer.Option(..., "--halt-id"), reason: str = typer.Option(...)) -> None:
    """On the officer's own machine: sign (halt id, reason); prints the signature in hex."""
    from nacl.signing import SigningKey

    from coffer.recon.halt import resume_message

    if key_file.stat().st_size > KEY_FILE_BYTES_MAX:
        raise CofferError(f"{key_file}: not a key file")
    try:
        seed = bytes.fromhex(key_file.read_text(encoding="ascii").strip())
        key = SigningKey(seed)
    except (ValueError, UnicodeDecodeError, TypeError):
        raise CofferError(f"{key_file}: not a key file (expected 64 hex characters)") from None
    typer.echo(key.sign(resume_message(halt_id, reason)).signature.hex())


@app.command()
def resume(halt_id: str = typer.Option(..., "--halt-id"), reason: str = typer.Option(...),
           signature: list[str] = typer.Option(..., "--signature", help="OFFICER_ID:HEX, once per officer"),
           by: str = typer.Option("officer", help="who submits the resume"), home: Path | None = HomeOption) -> None:
    """Lift the halt with k-of-n security officer signatures over (halt id, reason)."""
    from coffer.recon.halt import OfficerSignature

    signatures = []
    for item in signature:
        officer_id, _, value = item.partition(":")
        try:
            signatures.append(OfficerSignature(officer_id, bytes.fromhex(value)))
        except ValueError:
            raise typer.BadParameter(f"--signature {officer_id}: expected OFFICER_ID:HEX") from None
    switch, _ = _switch(home)
    state = switch.resume(halt_id, reason, signatures, actor=by)
    typer.echo(f"resumed at {datetime.now(UTC).isoformat()} (state seq {state.seq})")
