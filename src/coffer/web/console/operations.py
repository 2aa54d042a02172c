"""Operator API: status, balances, the halt (trip, resume with officers' signatures), the
reconciliation, the signers and co-signers, and the audit log with chain verification."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from coffer.audit import AuditChainBroken
from coffer.errors import CofferError
from coffer.policy.roles import Role
from coffer.recon import ONCHAIN_JOB, OfficerSignature, latest_onchain, recent_runs, resume_message
from coffer.web.console.approvals import queue, recent_events
from coffer.web.console.common import json_safe, operator_api, parts, require_role
from coffer.web.console.parts import ConsoleParts
from coffer.web.console.views import RUNS_SHOWN, draws_by_signer, halt_json, ratio_series, run_duration_s
from coffer.web.deps import context, require_csrf
from coffer.web.sessions import Session

__all__ = ["router", "status_json", "recon_json", "signers_json", "audit_json", "verify_audit"]

AUDIT_PAGE_MAX = 500
BALANCES_TTL_S = 1.0
DRAWS_SHOWN = 1000  # the newest quorum draws listed against the signers
router = APIRouter(prefix="/api/v1/console", tags=["console: operations"])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TripBody(_Strict):
    reason: str = Field(..., min_length=1, max_length=2000)


class SignatureItem(_Strict):
    officer_id: str = Field(..., min_length=1, max_length=64)
    signature: str = Field(..., pattern=r"^[0-9a-f]{128}$")


class ResumeBody(_Strict):
    halt_id: str = Field(..., min_length=1, max_length=64)
    reason: str = Field(..., min_length=1, max_length=2000)
    signatures: list[SignatureItem] = Field(..., max_length=64)


def status_json(console: ConsoleParts, request: Request) -> dict[str, Any]:
    state = console.halt.state()
    current = console.halt.halt(state.halt_id) if state.halted and state.halt_id else None
    runs = {run.job: run for run in reversed(recent_runs(console.engine, limit=20))}
    return {"halted": state.halted, "halt": None if current is None else halt_json(current),
            "approvals_pending": sum(1 for item in queue(console, now=context(request).clock())
                                     if item.status == "pending"),
            "checks": {job: {"run_id": run.run_id, "status": run.status, "finished_at": run.finished_at}
                       for job, run in runs.items()}}


@router.get("/status", summary="Halt state, approvals waiting, latest checks", response_model=None,
            responses={200: {"description": "the status", "content": {"application/json": {}}}})
def status(request: Request) -> Response:
    operator_api(request)
    return JSONResponse(status_json(parts(request), request))


def balances_json(console: ConsoleParts) -> dict[str, Any]:
    """Ledger totals, read at most once per BALANCES_TTL_S (a dashboard figure; the ledger is the truth)."""
    now = time.monotonic()
    with console.queue_lock:
        cached = console.balances_cache
    if cached is not None and now - cached[0] < BALANCES_TTL_S:
        value: dict[str, Any] = cached[1]
        return value
    totals = console.ledger.totals()
    value = {"as_of": datetime.now(UTC).isoformat(), "assets": {
        asset: {"client": str(t.client), "company": str(t.company), "custody": str(t.custody),
                "external": str(t.external), "balanced": t.balanced} for asset, t in totals.items()}}
    with console.queue_lock:
        console.balances_cache = (now, value)
    return value


@router.get("/balances", summary="Ledger totals per asset and book (minor units, as strings; at most 1 s old)",
            response_model=None, responses={200: {"description": "the totals", "content": {"application/json": {}}}})
def balances(request: Request) -> Response:
    operator_api(request)
    return JSONResponse(balances_json(parts(request)))


@router.get("/halt", summary="The halt: state, the current cause, history, officers' quorum")
def halt_state(request: Request, session: Session = Depends(operator_api)) -> dict[str, Any]:
    console = parts(request)
    state = console.halt.state()
    return {"halted": state.halted, "halt_id": state.halt_id, "seq": state.seq, "quorum": console.halt.quorum,
            "history": [halt_json(h) for h in console.halt.history(limit=50)]}


@router.get("/halt/resume-message", summary="The bytes (hex) each security officer signs to resume a halt")
def halt_resume_message(request: Request, halt_id: str = Query(..., min_length=1, max_length=64),
                        reason: str = Query(..., min_length=1, max_length=2000),
                        session: Session = Depends(operator_api)) -> dict[str, str]:
    return {"halt_id": halt_id, "reason": reason, "message": resume_message(halt_id, reason).hex()}


@router.post("/halt", summary="Halt the exchange now (security officers)")
def trip(request: Request, body: TripBody, session: Session = Depends(operator_api)) -> dict[str, Any]:
    require_csrf(request, session, None)
    require_role(request, session, Role.SECURITY_OFFICER)
    halt = parts(request).halt.trip("operator", {"reason": body.reason}, actor=session.subject)
    return halt_json(halt)


@router.post("/halt/resume", summary="Resume with a quorum of security officers' signatures")
def resume(request: Request, body: ResumeBody, session: Session = Depends(operator_api)) -> dict[str, Any]:
    require_csrf(request, session, None)
    require_role(request, session, Role.SECURITY_OFFICER)
    signatures = [OfficerSignature(item.officer_id, bytes.fromhex(item.signature)) for item in body.signatures]
    state = parts(request).halt.resume(body.halt_id, body.reason, signatures, actor=session.subject)
    return {"halted": state.halted, "seq": state.seq}


def recon_json(console: ConsoleParts) -> dict[str, Any]:
    report = latest_onchain(console.engine)
    runs = recent_runs(console.engine, limit=50)
    series = ratio_series(recent_runs(console.engine, job=ONCHAIN_JOB, limit=RUNS_SHOWN))
    return {
        "latest_onchain": None if report is None else {
            "run_id": report.run_id, "finished_at": report.finished_at, "status": report.status,
            "wallets": [json_safe(dict(w)) for w in report.wallets], "assets": [json_safe(dict(a)) for a in report.assets]},
        "runs": [{"run_id": r.run_id, "job": r.job, "status": r.status, "started_at": r.started_at,
                  "finished_at": r.finished_at, "duration_s": run_duration_s(r.started_at, r.finished_at),
                  "mismatches": json_safe(r.summary.get("mismatches", [])) if isinstance(r.summary, dict) else []}
                 for r in runs],
        "reserve_ratio": {asset: [{"run_id": p.run_id, "at": p.at, "backing": str(p.backing),
                                   "client_liabilities": str(p.client_liabilities), "ratio": p.ratio}
                                  for p in points] for asset, points in series.items()},
    }


@router.get("/recon", summary="Latest on-chain position, recent checks and mismatches, reserve ratio per asset")
def recon(request: Request, session: Session = Depends(operator_api)) -> dict[str, Any]:
    return recon_json(parts(request))


def _policy_hash(console: ConsoleParts) -> str | None:
    try:
        return str(console.policy.active_policy().hash)
    except CofferError:  # no policy set active yet
        return None


def signers_json(console: ConsoleParts) -> list[dict[str, Any]]:
    draws = draws_by_signer(recent_events(console, "cold.quorum_drawn", DRAWS_SHOWN))
    policy_hash = _policy_hash(console)
    out = []
    for view in console.signers():
        nominated = view.draws
        if not nominated and view.kind == "cold signer" and view.signer_id.isdigit():
            nominated = tuple(draws.get(int(view.signer_id), ()))
        out.append({"kind": view.kind, "signer_id": view.signer_id, "url": view.url, "key_ids": list(view.key_ids),
                    "last_seen": view.last_seen, "policy_hash": view.policy_hash or policy_hash,
                    "halt_acknowledged": view.halt_acknowledged, "draws": list(nominated)})
    return out


@router.get("/signers", summary="Cold signers and MPC co-signers: keys, last seen, policy, halt, draws")
def signers(request: Request, session: Session = Depends(operator_api)) -> dict[str, Any]:
    return {"signers": signers_json(parts(request))}


def audit_json(console: ConsoleParts, *, after_seq: int, limit: int, event: str | None) -> list[dict[str, Any]]:
    return [{"seq": e.seq, "at": e.at, "actor": e.actor, "event": e.event, "payload": json_safe(dict(e.payload)),
             "digest": e.digest, "prev_digest": e.prev_digest}
            for e in console.audit.events(event=event, after_seq=after_seq, limit=limit)]


def verify_audit(console: ConsoleParts) -> dict[str, Any]:
    try:
        count = console.audit.verify_chain()
    except AuditChainBroken as exc:
        return {"ok": False, "broken_at_seq": exc.seq, "detail": str(exc)}
    seq, digest = console.audit.head()
    return {"ok": True, "events": count, "head_seq": seq, "head_digest": digest}


@router.get("/audit", summary="Audit events after a sequence number")
def audit(request: Request, after_seq: int = Query(0, ge=0, le=2**62), limit: int = Query(100, ge=1, le=AUDIT_PAGE_MAX),
          event: str | None = Query(None, max_length=64), session: Session = Depends(operator_api)) -> dict[str, Any]:
    return {"events": audit_json(parts(request), after_seq=after_seq, limit=limit, event=event)}


@router.get("/audit/verify", summary="Recompute the audit log's hash chain")
def audit_verify(request: Request, session: Session = Depends(operator_api)) -> dict[str, Any]:
    return verify_audit(parts(request))
