"""The console's pages (server-rendered; the security-key steps run in /console/static/console.js)."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse
from starlette.responses import Response

from coffer.recon import ONCHAIN_JOB, recent_runs
from coffer.web.console.approvals import queue, queue_item
from coffer.web.console.common import operator_of, operator_page, parts
from coffer.web.console.errors import OperatorRefused
from coffer.web.console.operations import audit_json, recon_json, signers_json, status_json, verify_audit
from coffer.web.console.views import RUNS_SHOWN, halt_json, ratio_chart_svg, ratio_series
from coffer.web.deps import context, render
from coffer.web.sessions import Session

__all__ = ["router", "STATIC_DIR"]

STATIC_DIR = FilePath(__file__).parent / "static"
STATIC_FILES = {"console.js": "text/javascript"}
router = APIRouter(include_in_schema=False)


def _page(request: Request, template: str, session: Session, **values: Any) -> Response:
    try:
        roles = sorted(role.value for role in operator_of(request, session).roles)
    except OperatorRefused:
        roles = []
    return render(request, template, session=session, roles=roles, **values)


@router.get("/console/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC_FILES:
        return Response(status_code=404)
    return FileResponse(STATIC_DIR / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})


@router.get("/console/signin")
def signin_page(request: Request) -> Response:
    return render(request, "console_signin.html")


@router.get("/console/enrol")
def enrol_page(request: Request) -> Response:
    return render(request, "console_enrol.html")


@router.get("/console")
def home(request: Request, session: Session = Depends(operator_page)) -> Response:
    return _page(request, "console_home.html", session, status=status_json(parts(request), request))


@router.get("/console/approvals")
def approvals_page(request: Request, session: Session = Depends(operator_page)) -> Response:
    return _page(request, "console_approvals.html", session, items=queue(parts(request), now=context(request).clock()))


@router.get("/console/approvals/{digest}")
def approval_page(request: Request, digest: str = Path(..., pattern=r"^[0-9a-f]{64}$"),
                  session: Session = Depends(operator_page)) -> Response:
    item = queue_item(parts(request), digest, now=context(request).clock())
    return _page(request, "console_approval.html", session, item=item)


@router.get("/console/halt")
def halt_page(request: Request, session: Session = Depends(operator_page)) -> Response:
    console = parts(request)
    state = console.halt.state()
    current = halt_json(console.halt.halt(state.halt_id)) if state.halted and state.halt_id else None
    return _page(request, "console_halt.html", session, state=state, current=current, quorum=console.halt.quorum,
                 history=[halt_json(h) for h in console.halt.history(limit=50)])


@router.get("/console/recon")
def recon_page(request: Request, session: Session = Depends(operator_page)) -> Response:
    console = parts(request)
    series = ratio_series(recent_runs(console.engine, job=ONCHAIN_JOB, limit=RUNS_SHOWN))
    charts = {asset: ratio_chart_svg(asset, points) for asset, points in sorted(series.items())}
    return _page(request, "console_recon.html", session, recon=recon_json(console), charts=charts)


@router.get("/console/signers")
def signers_page(request: Request, session: Session = Depends(operator_page)) -> Response:
    return _page(request, "console_signers.html", session, signers=signers_json(parts(request)))


@router.get("/console/audit")
def audit_page(request: Request, after_seq: int = Query(0, ge=0, le=2**62),
               session: Session = Depends(operator_page)) -> Response:
    console = parts(request)
    events = audit_json(console, after_seq=after_seq, limit=100, event=None)
    newer = events[-1]["seq"] if len(events) == 100 else None
    return _page(request, "console_audit.html", session, events=events, newer=newer,
                 verification=verify_audit(console))
