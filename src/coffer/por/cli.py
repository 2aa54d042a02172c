"""`coffer por`: publish a snapshot directory; show a client's lifetime account nonce."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from coffer.commandline import HomeOption, home_config
from coffer.progress import progress

__all__ = ["por"]

por = typer.Typer(no_args_is_help=True, add_completion=False, help="Proof of reserves and liabilities.")



def _engine(home: Path | None) -> Any:
    from coffer.db import make_engine, migrate

    engine = make_engine(home_config(home).database_url)
    migrate(engine)
    return engine


@por.command("nonce")
def nonce(account: int = typer.Argument(..., help="account number"), home: Path | None = HomeOption,
          create: bool = typer.Option(False, "--create", help="create it if the account has none")) -> None:
    """Show an account's lifetime nonce (for its client's security centre only)."""
    from coffer.por.nonces import ensure_account_nonces, show_account_nonce

    engine = _engine(home)
    if create:
        ensure_account_nonces(engine, [account])
    typer.echo(show_account_nonce(engine, account))


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@por.command("publish")
def publish(
    out: Path = typer.Option(..., "--out", help="snapshot directory to create"),
    reserves: list[Path] = typer.Option(..., "--reserves", help="reserves-<ASSET>.json signed by the signers"),
    signing_key: Path = typer.Option(..., "--signing-key", help="Ed25519 seed (hex) file; the FROST group key later"),
    log: Path = typer.Option(..., "--log", help="the public log (appended)"),
    liabilities: Path | None = typer.Option(None, "--liabilities",
                                            help='JSON {"ASSET": [[account, amount], ...]}; default: the ledger'),
    proofs_dir: Path | None = typer.Option(None, "--proofs-dir", help="where each client's private proof goes"),
    home: Path | None = HomeOption,
) -> None:
    """Build the trees, sign the statements, append them to the log and write the snapshot directory."""
    from nacl.signing import SigningKey

    from coffer.por.nonces import ensure_account_nonces
    from coffer.por.publish import publish_snapshot

    documents = {doc["asset"]: doc for doc in (_load_json(path) for path in reserves)}
    first = next(iter(documents.values()))
    engine = _engine(home)
    if liabilities is not None:
        items: dict[str, list[tuple[int, int]]] = {asset: [(int(a), int(v)) for a, v in rows]
                                                   for asset, rows in _load_json(liabilities).items()}
    else:
        from coffer.ledger import Ledger
        from coffer.por.adapters import liabilities_from_ledger

        ledger = Ledger(engine)
        items = {asset: [(item.account_number, item.amount) for item in liabilities_from_ledger(ledger, asset)]
                 for asset in documents}
    nonces = ensure_account_nonces(engine, {account for rows in items.values() for account, _ in rows})
    key = SigningKey(bytes.fromhex(signing_key.read_text(encoding="ascii").strip()))

    def sign(message: bytes) -> bytes:
        return bytes(key.sign(message).signature)

    bitmex = None
    if "BTC" in documents:
        from coffer.por.bitmex import options_from_document
        from coffer.por.errors import BitmexFormatError
        from coffer.por.publish import BitmexReservesOptions

        try:
            bitmex = BitmexReservesOptions(*options_from_document(documents["BTC"]))
        except BitmexFormatError as exc:
            typer.echo(f"no BitMEX reserves YAML: {exc}", err=True)
    btc = documents.get("BTC", first)
    accounts = sum(len(rows) for rows in items.values())
    with progress(f"building and publishing the proof ({accounts} accounts, {len(documents)} assets)"):
        result = publish_snapshot(out, chain=btc["chain"], height=btc["height"], block_hash=btc["block_hash"],
                                  liabilities=items, nonces=nonces, reserves=documents, sign=sign,
                                  public_key=bytes(key.verify_key), log_path=log, proofs_dir=proofs_dir,
                                  bitmex=bitmex)
    for asset, statement in result.statements.items():
        typer.echo(f"{asset}: liabilities {statement['liabilities_total']} reserves {statement['reserves_total']} "
                   f"solvent={statement['solvent']} root={statement['liabilities_root']}")
    typer.echo(f"published {out}")
