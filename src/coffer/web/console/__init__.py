"""The operations console (issue 12): operator sign-in and approvals with security keys
(WebAuthn), the approvals queue, the halt banner and the officers' resume flow, reconciliation
with a reserve-ratio chart per asset, signers and co-signers, the audit log with chain
verification, Prometheus `/metrics` and health endpoints. Plugs into `coffer.web.create_app`:

    console = ConsoleParts(engine, policy, halt, audit, ledger, rp_id="localhost", origins=(...,))
    routers, template_dirs = install_console(web_context, console, public=PublicParts(ledger, por_dir, key))
    app = create_app(web_context, routers=routers, template_dirs=template_dirs)

Every operator route refuses clients and anonymous users. Never holds a key: an approval is the
operator's own security key's assertion over the approval message.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter

from coffer.web.console.errors import CeremonyRefused, ConsoleError, OperatorRefused
from coffer.web.console.parts import Ceremonies, ConsoleParts, SignerView
from coffer.web.context import WebContext

__all__ = ["ConsoleParts", "SignerView", "Ceremonies", "install_console", "console_routers", "TEMPLATES_DIR",
           "ConsoleError", "CeremonyRefused", "OperatorRefused", "halt_banner"]

TEMPLATES_DIR = Path(__file__).parent / "templates"
NAV = [("Console", "/console"), ("Proof of reserves", "/por")]


def console_routers() -> list[APIRouter]:
    from coffer.web.console import approvals, auth, metrics, operations, pages

    return [auth.router, approvals.router, operations.router, metrics.router, pages.router]


def halt_banner(console: ConsoleParts) -> str | None:
    """The banner every page shows while the exchange is halted."""
    state = console.halt.state()
    if not state.halted:
        return None
    cause = console.halt.halt(state.halt_id).cause if state.halt_id else "unknown"
    return f"HALTED: {cause}. Trading, withdrawals and every signature are stopped until security officers resume."


def install_console(context: WebContext, console: ConsoleParts, *, public: object | None = None
                    ) -> tuple[list[APIRouter], list[Path]]:
    """Put the console (and the public pages) into `context`; returns (routers, template dirs) for create_app."""
    from coffer.web.public import TEMPLATES_DIR as PUBLIC_TEMPLATES
    from coffer.web.public import PublicParts, public_routers

    context.extras["console"] = console
    context.extras["public"] = public if public is not None else PublicParts(console.ledger, console.por_dir,
                                                                             console.por_public_key)
    context.banners.append(lambda: halt_banner(console))
    for item in NAV:
        if item not in context.nav:
            context.nav.append(item)
    routers: Sequence[APIRouter] = [*console_routers(), *public_routers()]
    return list(routers), [TEMPLATES_DIR, PUBLIC_TEMPLATES]
