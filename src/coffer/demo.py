"""`coffer demo`: the whole life of client funds on one machine, on the embedded defaults.

Each stage runs the real parts (separate processes where the design says so) and records what
it did in the JSON report. A stage that fails makes the report say `ok: false` and the command
exit non-zero; the data directory is left in place for inspection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

__all__ = ["run_demo", "DemoReport"]


@dataclass
class DemoReport:
    home: Path
    ok: bool = True
    stages: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "home": str(self.home), "stages": self.stages, **self.data}


Stage = Callable[[DemoReport, Console], None]


def _stage_init(report: DemoReport, console: Console) -> None:
    from coffer.doctor import run_checks
    from coffer.home import init_home

    config = init_home(report.home)
    checks = run_checks(config)
    report.data["doctor"] = [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks]
    missing = [c.name for c in checks if c.required and not c.ok]
    if missing:
        raise RuntimeError(f"doctor: missing {', '.join(missing)}")
    console.print(f"  data directory {report.home}; doctor: {len(checks)} checks passed")


STAGES: list[tuple[str, Stage]] = [
    ("initialise and check the real parts", _stage_init),
]


def run_demo(home: Path, report_path: Path, console: Console | None = None) -> DemoReport:
    console = console or Console()
    report = DemoReport(home=home)
    home.mkdir(parents=True, exist_ok=True)
    for number, (title, stage) in enumerate(STAGES, start=1):
        console.rule(f"[bold]{number}. {title}")
        started = time.monotonic()
        try:
            stage(report, console)
            status = "ok"
        except Exception as exc:  # the demo reports every failure and stops; nothing is hidden
            report.ok = False
            status = f"failed: {type(exc).__name__}: {exc}"
            console.print(f"[red]{status}[/]")
        report.stages.append({"stage": title, "status": status,
                              "seconds": round(time.monotonic() - started, 3)})
        if not report.ok:
            break
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report.as_json(), indent=2, sort_keys=True))
    console.rule("[bold]summary")
    console.print(f"ok={report.ok}; report written to {report_path}")
    return report
