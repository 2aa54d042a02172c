"""`coffer doctor`: checks that each real part Coffer depends on is present and works."""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from coffer.config import Config
from coffer.db import make_engine
from coffer.errors import CofferError

__all__ = ["Check", "run_checks", "EXTRA_CHECKS"]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


# Parts add their own checks here: a callable returning (name, ok, detail) tuples.
EXTRA_CHECKS: list[str] = ["coffer.chain:doctor_checks"]


def _softhsm(config: Config) -> list[Check]:
    module = config.hsm.module
    checks = [Check("PKCS#11 module", Path(module).exists(), module)]
    if not checks[0].ok:
        return checks
    try:
        from coffer.home import open_coordinator_hsm

        with open_coordinator_hsm(config) as hsm:
            checks.append(Check("coordinator token", True, f"token {hsm.token_label!r} opens"))
    except (CofferError, OSError) as exc:
        checks.append(Check("coordinator token", False, f"{type(exc).__name__}: {exc} (run coffer init)"))
    return checks


def _database(config: Config) -> Check:
    url = config.database_url
    kind = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    try:
        engine = make_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return Check(f"database ({kind})", True, "reachable")
    except Exception as exc:  # any driver error means: not reachable
        return Check(f"database ({kind})", False, f"{type(exc).__name__}: {str(exc)[:120]}")


def _extra() -> list[Check]:
    checks: list[Check] = []
    for spec in EXTRA_CHECKS:
        module_name, _, function = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        provider: Callable[[], list[tuple[str, bool, str]]] | None = getattr(module, function, None)
        if provider is None:
            continue
        checks.extend(Check(name, ok, detail) for name, ok, detail in provider())
    return checks


def run_checks(config: Config) -> list[Check]:
    checks = _softhsm(config)
    checks.append(_database(config))
    checks.append(Check("softhsm2-util", shutil.which("softhsm2-util") is not None, "token set-up tool"))
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    checks.append(Check("chromium", chromium is not None, chromium or "not installed (browser tests)", required=False))
    checks.append(Check("gpg", shutil.which("gpg") is not None, "plays the client in mail tests", required=False))
    checks.extend(_extra())
    return checks
