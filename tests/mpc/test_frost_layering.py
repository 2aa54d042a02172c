"""Only coffer.mpc may import coffer.mpc.hazmat (the two-tier rule of STYLE.md)."""

from __future__ import annotations

import re
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "src" / "coffer"
HAZMAT_IMPORT = re.compile(r"^\s*(from|import)\s+coffer\.mpc\.hazmat", re.MULTILINE)


def test_no_module_outside_mpc_imports_hazmat() -> None:
    """No module outside src/coffer/mpc imports the hazmat layer."""
    offenders = [str(path.relative_to(SOURCE)) for path in SOURCE.rglob("*.py")
                 if "mpc" not in path.relative_to(SOURCE).parts[:1] and HAZMAT_IMPORT.search(path.read_text())]
    assert [] == offenders
