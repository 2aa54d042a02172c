"""The attack catalogue (docs/attacks.md) names real tests, each with a docstring telling the attack."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| (\d+) \| (.+?) \| (\w+) \| (tests/[\w/]+\.py)(?:::(\w+))? \|$")


def _rows() -> list[tuple[str, str, str | None]]:
    rows = []
    for line in (ROOT / "docs" / "attacks.md").read_text().splitlines():
        found = ROW.match(line)
        if found:
            rows.append((found.group(2), found.group(4), found.group(5)))
    return rows


def test_catalogue_has_at_least_twenty_attacks() -> None:
    """At least twenty distinct attacks are catalogued."""
    assert len({attack for attack, _, _ in _rows()}) >= 20


def test_every_catalogued_test_exists_with_a_docstring() -> None:
    """Each row names an existing test function (or module) whose docstring tells what it does."""
    missing = []
    for attack, path, name in _rows():
        tree = ast.parse((ROOT / path).read_text())
        if name is None:
            if not ast.get_docstring(tree):
                missing.append(f"{path}: no module docstring ({attack})")
            continue
        functions = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        if name not in functions:
            missing.append(f"{path}::{name} does not exist ({attack})")
        elif not ast.get_docstring(functions[name]):
            missing.append(f"{path}::{name} has no docstring")
    assert [] == missing
