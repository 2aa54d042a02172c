"""Prometheus `/metrics` and the health endpoints.

Metrics are collected when scraped, from the parts' own records (the halt switch, the audit log,
the reconciliation runs): signing latency (quorum draw to signed batch), approvals waiting,
check durations and outcomes, halts. `/health` answers without touching anything (liveness);
`/health/ready` reads the database and the halt state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector
from starlette.responses import Response

from coffer.recon import recent_runs
from coffer.web.console.approvals import queue, recent_events
from coffer.web.console.common import parts
from coffer.web.console.parts import ConsoleParts
from coffer.web.console.views import run_duration_s, signing_latencies_s
from coffer.web.deps import context

__all__ = ["router", "ConsoleCollector", "registry_for"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RECENT_EVENTS = 1000  # signing latency over the newest draws and signatures
router = APIRouter(tags=["operations: metrics and health"])


class ConsoleCollector(Collector):
    """Reads the parts at scrape time; nothing is counted in process memory, so restarts lose nothing."""

    def __init__(self, console: ConsoleParts, clock: Any) -> None:
        self._console = console
        self._clock = clock

    def collect(self) -> Iterator[Any]:
        console = self._console
        state = console.halt.state()
        yield GaugeMetricFamily("coffer_halted", "1 while the exchange is halted", value=1 if state.halted else 0)
        history = console.halt.history(limit=1000)
        yield CounterMetricFamily("coffer_halts", "halts recorded (last 1000)", value=len(history))
        items = queue(console, now=self._clock())
        waiting = GaugeMetricFamily("coffer_queue_length", "items waiting, by queue", labels=["queue"])
        waiting.add_metric(["approvals"], sum(1 for item in items if item.status == "pending"))
        yield waiting
        yield from self._checks()
        latencies = signing_latencies_s(recent_events(console, "cold.quorum_drawn", RECENT_EVENTS),
                                        recent_events(console, "cold.batch_signed", RECENT_EVENTS))
        yield SummaryMetricFamily("coffer_signing_latency_seconds", "quorum draw to signed cold batch (newest 1000 batches)",
                                  count_value=len(latencies), sum_value=sum(latencies))

    def _checks(self) -> Iterator[Any]:
        duration = GaugeMetricFamily("coffer_check_duration_seconds", "duration of the newest run of each check",
                                     labels=["job"])
        outcomes = CounterMetricFamily("coffer_check_runs", "recent check runs by outcome (last 500)",
                                       labels=["job", "status"])
        newest: dict[str, float] = {}
        counts: dict[tuple[str, str], int] = {}
        for run in recent_runs(self._console.engine, limit=500):
            counts[(run.job, run.status)] = counts.get((run.job, run.status), 0) + 1
            seconds = run_duration_s(run.started_at, run.finished_at)
            if run.job not in newest and seconds is not None:
                newest[run.job] = seconds
        for job, seconds in newest.items():
            duration.add_metric([job], seconds)
        for (job, status), count in counts.items():
            outcomes.add_metric([job, status], count)
        yield duration
        yield outcomes


def registry_for(console: ConsoleParts, clock: Any) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConsoleCollector(console, clock))
    return registry


@router.get("/metrics", summary="Prometheus metrics (text exposition format)", response_class=PlainTextResponse)
def metrics(request: Request) -> Response:
    ctx = context(request)
    registry = ctx.extras.get("console_metrics")
    if not isinstance(registry, CollectorRegistry):
        registry = registry_for(parts(request), ctx.clock)
        ctx.extras["console_metrics"] = registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE)


@router.get("/health", summary="Liveness: the process answers")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", summary="Readiness: database reachable and the halt state readable")
def ready(request: Request) -> Response:
    console = parts(request)
    try:
        with console.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        halted = bool(console.halt.state().halted)
    except Exception as exc:  # any failure here means not ready, never a 500
        return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok", "halted": halted})
