"""docs/architecture.md, generated from the code's own tables: `python -m coffer.architecture`.

The processes, what each holds and whom it calls come from `coffer.keyholder.routes.PROCESSES`;
each key holder's routes (path, allowed certificate names, whether the route acts and so checks
the caller's clock) from its `RouteTable`; the coordinator's HTTP surface from its FastAPI
routers, grouped by who calls them. Nothing here starts a process, opens a home or reads a key.
`tests/test_architecture.py` regenerates the document and fails on any difference.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Route

from coffer.alerts import AlertCenter
from coffer.keyholder.routes import COORDINATOR, PROCESSES, ProcessSpec, RouteTable, tables_for
from coffer.web import security_centre
from coffer.web.console import console_routers
from coffer.web.console.serve import mounted_routers
from coffer.web.exchange_api import ExchangeApi
from coffer.web.public import public_routers

__all__ = ["Audience", "AUDIENCES", "SurfaceGroup", "coordinator_surface", "render", "main", "DOCUMENT"]

DOCUMENT: Final = Path("docs") / "architecture.md"


@dataclass(frozen=True, slots=True)
class Audience:
    """Who calls the coordinator under some path prefixes, and how they prove who they are."""

    name: str
    prefixes: tuple[str, ...]
    authentication: str


# Longest prefix wins; "" catches the client pages and session API of the security centre.
AUDIENCES: Final = (
    Audience("exchange back office", ("/api/v1/exchange",),
             "HMAC-signed requests per integration key (timestamp, nonce, replay record)"),
    Audience("operators and security officers", ("/api/v1/console", "/console"),
             "WebAuthn security keys; approvals and resumes are signatures by the operator's own key"),
    Audience("anyone (public proof of reserves)", ("/api/v1/public", "/por"), "none: public, read-only"),
    Audience("monitoring", ("/metrics", "/health"), "none: health and Prometheus metrics"),
    Audience("clients (browser)", ("",), "password + TOTP session; the security centre and own balances"),
)


@dataclass(frozen=True, slots=True)
class SurfaceGroup:
    audience: Audience
    routes: tuple[str, ...]  # "METHOD /path", sorted


def _coordinator_routers() -> list[APIRouter]:
    # The exchange and alert routers close over their objects only inside handlers, which never
    # run here, so empty instances are enough to list their routes.
    mounted = mounted_routers([*console_routers(), *public_routers()], ExchangeApi.__new__(ExchangeApi),
                              AlertCenter.__new__(AlertCenter))
    return [security_centre.page_router, security_centre.api_router, *mounted]


def _route_lines(routes: Iterable[BaseRoute]) -> list[str]:
    lines = []
    for route in routes:
        if isinstance(route, (APIRoute, Route)):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                lines.append(f"{method} {route.path}")
    return lines


def _audience_of(path: str) -> Audience:
    matches = [(len(prefix), audience) for audience in AUDIENCES for prefix in audience.prefixes
               if path.startswith(prefix)]
    return max(matches, key=lambda match: match[0])[1]


def coordinator_surface(routers: Sequence[APIRouter] | None = None) -> list[SurfaceGroup]:
    """The coordinator's routes grouped by audience, in the order of AUDIENCES."""
    lines = sorted({line for router in (routers or _coordinator_routers()) for line in _route_lines(router.routes)},
                   key=lambda line: (line.split(" ", 1)[1], line))
    groups = []
    for audience in AUDIENCES:
        mine = tuple(line for line in lines if _audience_of(line.split(" ", 1)[1]) == audience)
        if mine:
            groups.append(SurfaceGroup(audience, mine))
    return groups


def _node(kind: str) -> str:
    return kind.replace("-", "_")


def _engine_summary(table: RouteTable) -> str:
    acting = sum(1 for route in table.routes if route.acts)
    return f"{table.engine}: {acting} acting + {len(table.routes) - acting} read routes"


def _diagram(processes: Sequence[ProcessSpec], surface: Sequence[SurfaceGroup]) -> list[str]:
    by_kind = {spec.kind: spec for spec in processes}
    lines = ["```mermaid", "flowchart LR"]
    lines.append('  subgraph outside["Outside: people and systems that call the coordinator"]')
    for number, group in enumerate(surface):
        lines.append(f'    caller{number}["{group.audience.name}"]')
    lines.append("  end")
    for spec in processes:
        holds = spec.holds.replace('"', "'")
        lines.append(f'  subgraph {_node(spec.kind)}_host["{spec.kind} host: own directory, user, HSM token, TLS key"]')
        lines.append(f'    {_node(spec.kind)}["{spec.command}<br/>certificate: {spec.certificate_name}<br/>'
                     f'holds: {holds}"]')
        lines.append("  end")
    coordinator = next((spec for spec in processes if spec.certificate_name == COORDINATOR), None)
    if coordinator is not None:
        for number, group in enumerate(surface):
            lines.append(f'  caller{number} -- "HTTPS: {len(group.routes)} routes" --> {_node(coordinator.kind)}')
    for spec in processes:
        for callee in spec.calls:
            target = by_kind[callee]
            label = "; ".join(_engine_summary(table) for table in tables_for(target.engines))
            lines.append(f'  {_node(spec.kind)} -- "mutual TLS, peer name checked: {label}" --> {_node(callee)}')
    lines.append("```")
    return lines


def _holders_table(processes: Sequence[ProcessSpec]) -> list[str]:
    lines = ["| process | command | certificate name | holds | serves | calls |", "|---|---|---|---|---|---|"]
    for spec in processes:
        lines.append(f"| {spec.kind} | `{spec.command}` | `{spec.certificate_name}` | {spec.holds} | "
                     f"{', '.join(spec.engines) or '(HTTP, below)'} | {', '.join(spec.calls) or 'nobody'} |")
    return lines


def _route_tables(processes: Sequence[ProcessSpec]) -> list[str]:
    lines: list[str] = []
    for spec in processes:
        for table in tables_for(spec.engines):
            lines += ["", f"### {spec.kind}: engine `{table.engine}` (bodies up to {table.body_bytes_max:,} bytes)", "",
                      "| route | handler | callers (certificate names) | acts (clock checked) |", "|---|---|---|---|"]
            for route in table.routes:
                lines.append(f"| `{route.method} {route.path}` | `{route.handler}` | {', '.join(sorted(route.peers))} | "
                             f"{'yes' if route.acts else 'no'} |")
    return lines


def _surface_tables(surface: Sequence[SurfaceGroup]) -> list[str]:
    lines: list[str] = []
    for group in surface:
        lines += ["", f"### {group.audience.name}", "", f"Authentication: {group.audience.authentication}.", ""]
        lines += [f"- `{route}`" for route in group.routes]
    return lines


def render(processes: Sequence[ProcessSpec] = PROCESSES, surface: Sequence[SurfaceGroup] | None = None) -> str:
    """The whole document, deterministic for given tables."""
    groups = list(surface) if surface is not None else coordinator_surface()
    lines = [
        "# Architecture: processes, keys and trust boundaries",
        "",
        "<!-- Generated by `python -m coffer.architecture` from coffer.keyholder.routes and the coordinator's",
        "     FastAPI routers. Do not edit: tests/test_architecture.py fails when this file is out of date. -->",
        "",
        "Each box inside a boundary is its own process; a boundary is a host in principle (own directory,",
        "Unix user, HSM token and TLS key). The coordinator is an untrusted relay: it holds no key and no",
        "share, and every key holder checks what it is asked against what it pinned at its ceremony.",
        "",
        *_diagram(processes, groups),
        "",
        "## Who holds what",
        "",
        *_holders_table(processes),
        "",
        "## Key-holder routes",
        "",
        "Every route is served over mutual TLS; the caller's certificate name must be one the route allows.",
        "A route that acts (signs, deals, registers, refreshes) is refused when the caller's clock is skewed",
        "from the key holder's by more than the configured bound.",
        *_route_tables(processes),
        "",
        "## The coordinator's HTTP surface",
        *_surface_tables(groups),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coffer.architecture", description=__doc__)
    parser.add_argument("--out", type=Path, default=DOCUMENT, help=f"where to write (default {DOCUMENT})")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from what would be written")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is out of date: run python -m coffer.architecture", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
