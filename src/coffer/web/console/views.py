"""Read models of the console, pure over what the parts return: the halt, reconciliation runs
and the reserve ratio per asset, draws per signer, signing latency, and the chart (server-side
SVG, no script, no CDN)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coffer.audit import AuditEvent

__all__ = ["RatioPoint", "ratio_series", "ratio_chart_svg", "run_duration_s", "draws_by_signer",
           "signing_latencies_s", "halt_json", "RUNS_SHOWN"]

RUNS_SHOWN = 200
CHART_WIDTH = 640
CHART_HEIGHT = 180
COLOURS = ("#0b5cad", "#b42318", "#1a7f37", "#8250df", "#bf8700", "#59636e")


@dataclass(frozen=True, slots=True)
class RatioPoint:
    run_id: int
    at: str
    backing: int
    client_liabilities: int

    @property
    def ratio(self) -> float | None:
        """Display only (never used for a decision): backing / liabilities."""
        if self.client_liabilities <= 0:
            return None
        return self.backing / self.client_liabilities


def ratio_series(runs: Sequence[Any]) -> dict[str, list[RatioPoint]]:
    """Per asset, oldest first, from on-chain run records whose summary carries the asset lines."""
    series: dict[str, list[RatioPoint]] = {}
    for run in sorted(runs, key=lambda r: r.run_id):
        assets = run.summary.get("assets") if isinstance(run.summary, Mapping) else None
        if not isinstance(assets, list):
            continue
        for line in assets:
            try:
                point = RatioPoint(run.run_id, str(run.finished_at or run.started_at), int(line["backing"]),
                                   int(line["client_liabilities"]))
            except (KeyError, TypeError, ValueError):
                continue
            series.setdefault(str(line.get("asset")), []).append(point)
    return series


def ratio_chart_svg(asset: str, points: Sequence[RatioPoint]) -> str:
    """A small line chart of the reserve ratio, with the 1.0 line (solvent above it)."""
    values = [p.ratio for p in points if p.ratio is not None]
    width, height, pad = CHART_WIDTH, CHART_HEIGHT, 28
    top = max([1.25, *values]) * 1.05
    bottom = min([0.75, *values]) * 0.95

    def y(value: float) -> float:
        return pad + (top - value) / (top - bottom) * (height - 2 * pad)

    count = max(1, len(values) - 1)
    coords = [(pad + i * (width - 2 * pad) / count, y(v)) for i, v in enumerate(values)]
    path = " ".join(f"{x:.1f},{yy:.1f}" for x, yy in coords)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{yy:.1f}" r="2.5" fill="{COLOURS[0]}"/>' for x, yy in coords)
    last = f"{values[-1]:.4f}" if values else "n/a"
    one = y(1.0)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-{_attr(asset)}" role="img" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'aria-label="reserve ratio of {_attr(asset)} over time">'
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff" stroke="#d0d7de"/>'
            f'<line x1="{pad}" y1="{one:.1f}" x2="{width - pad}" y2="{one:.1f}" stroke="#b42318" '
            f'stroke-dasharray="4 3"/><text x="{pad}" y="{one - 4:.1f}" font-size="11" fill="#b42318">1.0</text>'
            f'<polyline points="{path}" fill="none" stroke="{COLOURS[0]}" stroke-width="2"/>{dots}'
            f'<text x="{pad}" y="16" font-size="12" fill="#1b1f24">{_attr(asset)}: reserves / client '
            f'liabilities, {len(values)} checks, latest {last}</text></svg>')


def _attr(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def _parse(at: str | None) -> datetime | None:
    if not at:
        return None
    try:
        return datetime.fromisoformat(at)
    except ValueError:
        return None


def run_duration_s(started_at: str | None, finished_at: str | None) -> float | None:
    start, end = _parse(started_at), _parse(finished_at)
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def draws_by_signer(events: Sequence[AuditEvent]) -> dict[int, list[str]]:
    """Signer id -> the batches (id, attempt) it was nominated in, from `cold.quorum_drawn` events."""
    found: dict[int, list[str]] = {}
    for event in events:
        for signer in event.payload.get("nominated", ()):
            found.setdefault(int(signer), []).append(
                f"{event.payload.get('batch_id')}#{event.payload.get('attempt', 0)}")
    return found


def signing_latencies_s(drawn: Sequence[AuditEvent], signed: Sequence[AuditEvent]) -> list[float]:
    """Seconds from a batch's (last) quorum draw to its signed transaction."""
    started = {str(e.payload.get("batch_id")): _parse(e.at) for e in drawn}
    latencies = []
    for event in signed:
        begin, end = started.get(str(event.payload.get("batch_id"))), _parse(event.at)
        if begin is not None and end is not None:
            latencies.append(max(0.0, (end - begin).total_seconds()))
    return latencies


def halt_json(halt: Any) -> dict[str, Any]:
    return {"halt_id": halt.halt_id, "cause": halt.cause, "details": dict(halt.details), "set_by": halt.set_by,
            "halted_at": halt.halted_at, "resumed_at": halt.resumed_at, "resumed_by": halt.resumed_by,
            "resume_reason": halt.resume_reason, "resume_signers": list(halt.resume_signers)}
