"""The attack catalogue (docs/attacks.md) names, per attack, one collected test that asserts the refusal.

What is checked of every row, exactly:
- the row names one test function (`tests/…/test_*.py::test_name`), never a module;
- that function is defined at the top level of that file, with a docstring telling the attack;
- pytest collects it (`pytest --collect-only` on every named node id at once);
- its body, or the body of a function of the same module it calls by name (one level: helpers
  such as `assert_refused` or `_fails`), contains an assertion on the typed refusal: a
  `pytest.raises(E)` with a specific exception class (not `Exception` or `BaseException`), or an
  `assert` reading the error's `rule`, `culprits`, `culprit`, `counterparty` or `check` (as an
  attribute, or as a key of a wire reply such as `body["rule"]`), or the
  stand-alone verifier's refusal line ("FAILED <check>: …", the VerificationFailed check it
  printed) as a literal in the test or its helper together with an `assert` there.
Rows in AVAILABILITY (attacks whose defeat is being served, not a refusal) need only an `assert`.
Rows in OS_PERMISSION (the refusal is the kernel's file permission check, tried as another Unix
user) need an `assert` on the "Permission denied" the tool printed.
Whether the attack goes through the real component is a review question; the rows say which.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| (\d+) \| (.+?) \| (\w+) \| (tests/[\w/]+\.py)(?:::(\w+))? \|$")
TABLE_ROW = re.compile(r"^\| \d+ \|")
ERROR_FIELDS = frozenset({"rule", "culprits", "culprit", "counterparty", "check"})
UNTYPED = frozenset({"Exception", "BaseException"})
# Attacks on availability: success is being served despite the attack, not a refusal; these tests
# must still assert (that the key holder answered), which the check below requires of them.
OS_PERMISSION = frozenset({
    "tests/test_layout.py::test_coordinator_user_cannot_read_any_keyholder_file",
})
AVAILABILITY = frozenset({
    "tests/keyholder/test_processes.py::test_idle_and_half_open_connections_do_not_stall_key_holders",
})


def _rows() -> list[tuple[str, str, str | None]]:
    rows = []
    for line in (ROOT / "docs" / "attacks.md").read_text().splitlines():
        found = ROW.match(line)
        if found:
            rows.append((found.group(2), found.group(4), found.group(5)))
        else:
            assert not TABLE_ROW.match(line), f"catalogue row not in the table format: {line}"
    return rows


def _functions(path: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse((ROOT / path).read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _typed_raises(node: ast.AST) -> bool:
    """`pytest.raises(E)` (or a tuple of classes) naming specific exception classes."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "raises"
            and node.args):
        return False
    classes = node.args[0].elts if isinstance(node.args[0], ast.Tuple) else [node.args[0]]
    names = [c.attr if isinstance(c, ast.Attribute) else c.id if isinstance(c, ast.Name) else None for c in classes]
    return all(name is not None and name not in UNTYPED for name in names)


def _asserts_on_the_refusal(node: ast.Assert) -> bool:
    """The assertion reads the error's field (`error.rule`) or a wire reply's (`body["rule"]`)."""
    for part in ast.walk(node):
        if isinstance(part, ast.Attribute) and part.attr in ERROR_FIELDS:
            return True
        if isinstance(part, ast.Subscript) and isinstance(part.slice, ast.Constant) and part.slice.value in ERROR_FIELDS:
            return True
    return False


def _verifier_refusal_line(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(
        re.match(r"FAILED \w+", node.value))


def _checks_a_typed_refusal(functions: list[ast.FunctionDef]) -> bool:
    nodes = [node for function in functions for node in ast.walk(function)]
    if any(_typed_raises(node) or (isinstance(node, ast.Assert) and _asserts_on_the_refusal(node)) for node in nodes):
        return True
    # The verifier's refusal line, handed to an assertion in the test or its helper.
    return any(_verifier_refusal_line(node) for node in nodes) and any(isinstance(node, ast.Assert) for node in nodes)


def _with_helpers(function: ast.FunctionDef, module: dict[str, ast.FunctionDef]) -> list[ast.FunctionDef]:
    called = {node.func.id for node in ast.walk(function)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    return [function, *(module[name] for name in sorted(called) if name in module)]


def test_catalogue_has_at_least_twenty_attacks() -> None:
    """At least twenty distinct attacks are catalogued."""
    assert len({attack for attack, _, _ in _rows()}) >= 20


def test_every_row_names_one_test_function_with_a_docstring() -> None:
    """Each row names a top-level test function (never a module) whose docstring tells the attack."""
    problems = []
    for attack, path, name in _rows():
        if name is None or not name.startswith("test_") or not Path(path).name.startswith("test_"):
            problems.append(f"{path}: names no test function ({attack})")
            continue
        function = _functions(path).get(name)
        if function is None:
            problems.append(f"{path}::{name} does not exist ({attack})")
        elif not ast.get_docstring(function):
            problems.append(f"{path}::{name} has no docstring")
    assert [] == problems


def test_every_named_test_asserts_a_typed_refusal() -> None:
    """Each named test (or a same-module helper it calls) asserts the typed error or its rule."""
    weak = []
    for attack, path, name in _rows():
        module = _functions(path)
        if name is None or name not in module:
            continue  # reported by the test above
        functions = _with_helpers(module[name], module)
        if f"{path}::{name}" in AVAILABILITY:
            if not any(isinstance(node, ast.Assert) for f in functions for node in ast.walk(f)):
                weak.append(f"{path}::{name} ({attack}): asserts nothing")
        elif f"{path}::{name}" in OS_PERMISSION:
            literal = any(isinstance(node, ast.Constant) and node.value == "Permission denied"
                          for f in functions for node in ast.walk(f))
            if not literal or not any(isinstance(node, ast.Assert) for f in functions for node in ast.walk(f)):
                weak.append(f"{path}::{name} ({attack}): asserts no permission refusal")
        elif not _checks_a_typed_refusal(functions):
            weak.append(f"{path}::{name} ({attack})")
    assert [] == weak


def test_every_named_test_is_collected() -> None:
    """pytest collects every named test (a parametrised one under its parameter ids)."""
    node_ids = sorted({f"{path}::{name}" for _, path, name in _rows() if name is not None})
    listed = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                             *node_ids], cwd=ROOT, capture_output=True, text=True, timeout=600)
    collected = {line.split("[")[0] for line in listed.stdout.splitlines() if "::" in line}
    assert [] == [node_id for node_id in node_ids if node_id not in collected], listed.stdout[-2000:]


def test_the_refusal_check_tells_weak_tests_from_real_ones() -> None:
    """Calling the component, catching `Exception` or asserting a plain value is not enough; a
    specific error class, its rule or a verifier refusal line is."""
    def verdict(source: str) -> bool:
        functions = {n.name: n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
        return _checks_a_typed_refusal(_with_helpers(functions["test_it"], functions))

    assert not verdict("def test_it():\n    attack()\n")
    assert not verdict("def test_it():\n    with pytest.raises(Exception):\n        attack()\n")
    assert not verdict("def test_it():\n    assert 1 == attack()\n")
    assert verdict("def test_it():\n    with pytest.raises(SignerRefused):\n        attack()\n")
    assert verdict("def test_it():\n    error = attack()\n    assert 'halt' == error.rule\n")
    assert verdict("def test_it():\n    status, body = attack()\n    assert (409, 'clock.skew') == (status, body['rule'])\n")
    assert verdict("def _fails(reason):\n    assert reason in run()\n\n"
                   "def test_it():\n    _fails('FAILED inclusion: the tree holds 0')\n")
