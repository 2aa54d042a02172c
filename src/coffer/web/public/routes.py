"""The public proof-of-reserves page and API, and the client's own balances.

Snapshot files are read from `PublicParts.por_dir` (what `coffer por publish --out` wrote); every
statement and log entry is checked against `PublicParts.public_key`, the publication key the DKG
recorded in the home (`coffer serve` looks it up). The page shows amounts in BTC and ETH, the
coverage of liabilities by reserves per asset and the history of published statements
(`coffer.web.public.view`). The inclusion check runs
`coffer.por.verify` (the stand-alone verifier: standard library and small crypto packages only)
on the server; the client's nonce is used for that one check and never stored or logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from coffer.ledger import Ledger
from coffer.por.verify import (
    PublishedRoot,
    VerificationFailed,
    parse_inclusion_proof,
    parse_inclusion_proof_json,
    verify_inclusion,
    verify_log,
    verify_statement,
)
from coffer.web.deps import client_session, context, render
from coffer.web.public.view import StatementView, format_amount, history, statement_view
from coffer.web.sessions import Session

__all__ = ["PublicParts", "api_router", "page_router", "public_routers", "TEMPLATES_DIR", "latest_snapshot",
           "check_inclusion"]

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
SNAPSHOT_BYTES_MAX = 4 * 1024 * 1024
api_router = APIRouter(tags=["public: proof of reserves"])
page_router = APIRouter(include_in_schema=False)


@dataclass
class PublicParts:
    ledger: Ledger
    por_dir: Path | None = None
    public_key: bytes | None = None


def _public(request: Request) -> PublicParts:
    value = context(request).extras["public"]
    assert isinstance(value, PublicParts)  # set by install_console
    return value


def _read_json(path: Path) -> Any:
    if not path.is_file() or path.stat().st_size > SNAPSHOT_BYTES_MAX:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None


def _snapshot_dir(por_dir: Path | None) -> Path | None:
    """`por_dir` itself if it holds a snapshot, else its newest sub-directory that does."""
    if por_dir is None or not por_dir.is_dir():
        return None
    if (por_dir / "snapshot.json").is_file():
        return por_dir
    found = [d for d in por_dir.iterdir() if d.is_dir() and (d / "snapshot.json").is_file()]
    return max(found, key=lambda d: (d / "snapshot.json").stat().st_mtime, default=None)


def _log_lines(directory: Path) -> list[str] | None:
    path = directory / "log.jsonl"
    if not path.is_file() or path.stat().st_size > SNAPSHOT_BYTES_MAX:
        return None
    return path.read_text(encoding="utf-8").splitlines()


def _log(directory: Path, public_key: bytes | None) -> dict[str, Any]:
    lines = _log_lines(directory)
    if lines is None:
        return {"entries": [], "verified": False, "detail": "no public log"}
    if public_key is None:
        entries = [json.loads(line) for line in lines if line.strip()]
        return {"entries": entries, "verified": False,
                "detail": "not verified: this server knows no publication key (no DKG in its home)"}
    try:
        return {"entries": verify_log(lines, public_key), "verified": True, "detail": "signatures and hash chain verified"}
    except (VerificationFailed, ValueError) as exc:
        return {"entries": [], "verified": False, "detail": f"log does NOT verify: {exc}"}


def latest_snapshot(parts: PublicParts) -> dict[str, Any] | None:
    """The snapshot, its statements per asset (signature checked when the key is known) and the log."""
    directory = _snapshot_dir(parts.por_dir)
    snapshot = None if directory is None else _read_json(directory / "snapshot.json")
    if directory is None or not isinstance(snapshot, dict):
        return None
    statements = {}
    for asset in sorted(snapshot.get("assets", {})):
        signed = _read_json(directory / f"statement-{asset}.json")
        if not isinstance(signed, dict):
            continue
        verified = None
        if parts.public_key is not None:
            try:
                verify_statement(signed["statement"], bytes.fromhex(signed["signature"]), parts.public_key)
                verified = True
            except (VerificationFailed, KeyError, ValueError, TypeError):
                verified = False
        statements[asset] = {"statement": signed.get("statement"), "signature": signed.get("signature"),
                             "signature_verified": verified}
    return {"snapshot": snapshot, "statements": statements, "log": _log(directory, parts.public_key),
            "public_key": None if parts.public_key is None else parts.public_key.hex()}


class InclusionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    proof: str = Field(..., min_length=1, max_length=200_000,
                       description="the private inclusion proof: coffer-por-proof/1 JSON, or the binary form as hex")
    account_nonce: str = Field(..., pattern=r"^[0-9a-f]{64}$", description="the account's lifetime nonce, hex")


def check_inclusion(parts: PublicParts, proof_text: str, nonce: bytes) -> dict[str, Any]:
    """Run the stand-alone verifier on a pasted proof against the published root of its asset."""
    latest = latest_snapshot(parts)
    if latest is None:
        return {"ok": False, "check": "snapshot", "reason": "no proof of reserves has been published yet"}
    try:
        text = proof_text.strip()
        if text.startswith("{"):
            proof = parse_inclusion_proof_json(text)
        else:
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                return {"ok": False, "check": "proof format", "reason": "neither proof JSON nor hex"}
            proof = parse_inclusion_proof(raw)
        published = latest["snapshot"].get("assets", {}).get(proof.asset)
        if not isinstance(published, dict):
            return {"ok": False, "check": "inclusion", "reason": f"no published root for {proof.asset}"}
        root = PublishedRoot(proof.asset, int(latest["snapshot"]["height"]),
                             bytes.fromhex(str(published["liabilities_root"])), int(published["liabilities_total"]),
                             int(published["leaf_count"]))
        result = verify_inclusion(proof, nonce, root)
    except VerificationFailed as exc:
        return {"ok": False, "check": exc.check, "reason": exc.reason}
    except (KeyError, TypeError, ValueError) as exc:
        return {"ok": False, "check": "snapshot", "reason": f"published snapshot unreadable: {exc}"}
    return {"ok": True, "asset": proof.asset, "height": proof.height, "account_number": str(result.account_number),
            "balance": str(result.balance), "total": str(result.total),
            "balance_text": format_amount(proof.asset, result.balance), "total_text": format_amount(proof.asset, result.total)}


@api_router.get("/api/v1/public/por", summary="The latest proof-of-reserves snapshot, signed statements and public log")
def por_latest(request: Request) -> dict[str, Any]:
    latest = latest_snapshot(_public(request))
    return {"published": latest is not None, **(latest or {})}


@api_router.post("/api/v1/public/por/verify",
                 summary="Check a private inclusion proof against the published root (stand-alone verifier)")
def por_verify(request: Request, body: InclusionBody) -> dict[str, Any]:
    return check_inclusion(_public(request), body.proof, bytes.fromhex(body.account_nonce))


@api_router.get("/api/v1/me/balances", summary="The signed-in client's own balances (minor units, as strings)")
def my_balances(request: Request, session: Session = Depends(client_session)) -> dict[str, Any]:
    balances = _public(request).ledger.balances(client_id=session.subject)
    return {"client_id": session.subject,
            "balances": [{"account": str(key), "asset": key.asset, "name": key.name, "amount_minor": str(amount)}
                         for key, amount in balances.items()]}


def _statement_views(latest: dict[str, Any], public_key: bytes | None) -> list[StatementView]:
    views = []
    for item in latest["statements"].values():
        try:
            views.append(statement_view(item["statement"], item["signature"], public_key))
        except (ValueError, TypeError, AttributeError):
            continue  # an unreadable statement file: the API still lists it, the page cannot
    return views


@page_router.get("/por")
def por_page(request: Request) -> Response:
    parts = _public(request)
    latest = latest_snapshot(parts)
    directory = _snapshot_dir(parts.por_dir)
    lines = None if directory is None else _log_lines(directory)
    return render(request, "public_por.html", latest=latest,
                  statements=[] if latest is None else _statement_views(latest, parts.public_key),
                  history=history(lines or [], parts.public_key))


@page_router.get("/por/static/por.js")
def por_script() -> Response:
    return FileResponse(STATIC_DIR / "por.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"})


def public_routers() -> list[APIRouter]:
    return [api_router, page_router]
