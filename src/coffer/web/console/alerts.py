"""Operator API: the alerts, open and past (`GET /api/v1/console/alerts`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from coffer.alerts import AlertCenter
from coffer.web.console.common import operator_api
from coffer.web.sessions import Session

__all__ = ["alerts_router", "HISTORY_MAX"]

HISTORY_MAX = 500


def alerts_router(center: AlertCenter) -> APIRouter:
    router = APIRouter(prefix="/api/v1/console", tags=["console: operations"])

    @router.get("/alerts", summary="Open alerts and the alert history, newest first")
    def alerts(limit: int = Query(100, ge=1, le=HISTORY_MAX),
               session: Session = Depends(operator_api)) -> dict[str, Any]:
        return {"open": [a.as_json() for a in center.open_alerts()],
                "history": [a.as_json() for a in center.history(limit=limit)]}

    return router
