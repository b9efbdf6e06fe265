"""The suite's own rules (issue 11 item 7), read from the test files' syntax trees:

- every test asserts something (a test that cannot fail is a defect);
- a helper named as a check (`assert_…`, `check_…`, `expect_…`, `verify_…`) asserts too;
- no sleep orders things by time alone: `time.sleep` only inside a polling loop (`while`) that
  waits for observable state with a deadline (support.wait_until is the shared one);
- no assertion reads the test's clock (how long something took is `make bench`'s business; a
  wait a test must see is measured where it shows, e.g. support.seconds_between);
- every test carries a tier marker (unit / integration / e2e): tests/conftest.py stops a run
  that collects one without (checked here on a throw-away suite).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
CHECK_HELPER = re.compile(r"_?(assert|check|expect|verify)_")
FAILING_CALLS = {"raises", "fail", "warns"}  # pytest.raises(...), pytest.fail(...), ...

pytestmark = pytest.mark.unit


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(TESTS.rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr \
        if isinstance(func, ast.Attribute) else ""


def _can_fail(function: ast.AST) -> bool:
    """Whether the body asserts: an `assert`, pytest.raises/fail/warns, or a check helper."""
    for node in ast.walk(function):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            name = _call_name(node)
            func = node.func
            if name in FAILING_CALLS and isinstance(func, ast.Attribute) \
                    and isinstance(func.value, ast.Name) and func.value.id == "pytest":
                return True
            if CHECK_HELPER.match(name):
                return True
    return False


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(TESTS.parent)}:{getattr(node, 'lineno', 0)}"


def test_every_test_can_fail() -> None:
    cannot_fail = [f"{_where(path, fn)} {fn.name}" for path, tree in _modules()
                   for fn in _functions(tree) if fn.name.startswith("test_")
                   and not _can_fail(fn)]
    assert cannot_fail == []


def test_every_check_helper_asserts() -> None:
    empty = [f"{_where(path, fn)} {fn.name}" for path, tree in _modules()
             for fn in _functions(tree) if CHECK_HELPER.match(fn.name)
             and not fn.name.startswith("test_") and not _can_fail_directly(fn)]
    assert empty == []


def _can_fail_directly(function: ast.AST) -> bool:
    return any(isinstance(node, ast.Assert) or (isinstance(node, ast.Call)
               and _call_name(node) in FAILING_CALLS | {"fail"}) for node in ast.walk(function))


def test_no_assertion_of_a_constant() -> None:
    constant = [_where(path, node) for path, tree in _modules() for node in ast.walk(tree)
                if isinstance(node, ast.Assert) and isinstance(node.test, ast.Constant)]
    assert constant == []


def _is_sleep(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr == "sleep" and isinstance(func.value, ast.Name) \
            and func.value.id == "time"
    return isinstance(func, ast.Name) and func.id == "sleep"


def test_sleeps_only_pause_a_polling_loop() -> None:
    outside_a_loop = []
    for path, tree in _modules():
        parents = {child: parent for parent in ast.walk(tree)
                   for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _is_sleep(node):
                ancestor: ast.AST | None = node
                while ancestor is not None and not isinstance(ancestor, ast.While):
                    ancestor = parents.get(ancestor)
                if ancestor is None:
                    outside_a_loop.append(_where(path, node))
    assert outside_a_loop == [], "use support.wait_until, events or lock probes"


CLOCKS = {"monotonic", "perf_counter", "time", "monotonic_ns", "perf_counter_ns", "time_ns"}


def _is_clock_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
        and node.func.attr in CLOCKS and isinstance(node.func.value, ast.Name) \
        and node.func.value.id == "time"


def _reads_clock(node: ast.AST, clock_names: set[str]) -> bool:
    """Whether `node` computes with a clock reading: a call of the clock, or a name holding a
    reading. A reading handed to a call (a polling deadline, say) is that call's business."""
    if _is_clock_call(node) or (isinstance(node, ast.Name) and node.id in clock_names):
        return True
    if isinstance(node, ast.Call):
        return False
    return any(_reads_clock(child, clock_names) for child in ast.iter_child_nodes(node))


def _timed(test: ast.expr, clock_names: set[str]) -> bool:
    """An assertion comparing a clock reading (`took < 2`, `monotonic() - started >= 1`)."""
    return any(isinstance(node, ast.Compare)
               and any(_reads_clock(side, clock_names)
                       for side in (node.left, *node.comparators))
               for node in ast.walk(test))


def test_no_assertion_reads_the_clock() -> None:
    timed = []
    for path, tree in _modules():
        for function in _functions(tree):
            clock_names: set[str] = set()  # names holding a reading of the clock
            for node in ast.walk(function):
                if isinstance(node, ast.Assign) and any(_is_clock_call(n)
                                                        for n in ast.walk(node.value)):
                    clock_names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            timed += [_where(path, node) for node in ast.walk(function)
                      if isinstance(node, ast.Assert) and _timed(node.test, clock_names)]
    assert sorted(set(timed)) == [], "no stopwatch in a test"


# --- tier markers ------------------------------------------------------------------------------

def _collect(suite: Path, tests: str) -> tuple[int, str]:
    """`pytest --collect-only` of a throw-away suite (`tests`, one module) whose conftest is this
    suite's hook: its exit code and output."""
    (suite / "test_tiers.py").write_text("import pytest\n\n" + tests)
    (suite / "conftest.py").write_text(
        "from tiers import require_tier_markers as pytest_collection_modifyitems\n")
    (suite / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    unit: u\n    integration: i\n    e2e: e\n")
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         str(suite)], capture_output=True, text=True, cwd=suite, timeout=120,
        env={**os.environ, "PYTHONPATH": path})
    return result.returncode, result.stdout + result.stderr


def test_a_test_without_a_tier_marker_stops_the_run(tmp_path: Path) -> None:
    code, output = _collect(tmp_path, "@pytest.mark.integration\ndef test_marked():\n"
                                      "    assert 1 + 1 == 2\n\n"
                                      "def test_bare():\n    assert 1 + 1 == 2\n")
    assert code != 0, output
    assert "1 test(s) without a marker of unit, integration, e2e" in output
    assert "test_tiers.py::test_bare" in output


def test_a_suite_whose_tests_all_carry_a_tier_is_collected(tmp_path: Path) -> None:
    code, output = _collect(tmp_path, "pytestmark = pytest.mark.unit\n\n"
                                      "def test_one():\n    assert 1 + 1 == 2\n\n"
                                      "@pytest.mark.parametrize('n', [1, 2])\n"
                                      "def test_many(n):\n    assert n\n")
    assert code == 0, output
    assert "3 tests collected" in output
