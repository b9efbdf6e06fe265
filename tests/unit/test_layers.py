"""The house's layers, checked by walking every import of the product (issue 11).

Data flows one way, extract → stage → map → load: the load layer never imports the sync or the
map layer, the extract never imports the map layer, the map layer does no I/O (no hooks, no
Airflow, no database), and the product never imports the development tools (tools/).
Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hubspot_ledger

pytestmark = pytest.mark.unit

PRODUCT = Path(hubspot_ledger.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PRODUCT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(p): _imports(p) for p in sorted(PRODUCT.rglob("*.py"))}


def _offenders(modules: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    return {name: sorted(i for i in imports if i.startswith(forbidden))
            for name, imports in MODULES.items()
            if name.startswith(modules) and any(i.startswith(forbidden) for i in imports)}


def test_the_walk_sees_the_product() -> None:
    assert "hubspot_ledger.load.writer" in MODULES
    assert "hubspot_ledger.drafts" in MODULES["hubspot_ledger.load.writer"]


def test_the_product_never_imports_the_tools() -> None:
    assert _offenders("hubspot_ledger", ("hubspot_ledger_tools",)) == {}


def test_the_load_layer_imports_neither_sync_nor_mapping() -> None:
    forbidden = ("hubspot_ledger.sync", "hubspot_ledger.mapping", "hubspot_ledger.extract",
                 "hubspot_ledger.stage")
    assert _offenders("hubspot_ledger.load", forbidden) == {}


def test_the_extract_never_imports_the_map_layer() -> None:
    forbidden = ("hubspot_ledger.mapping",)
    forbidden = (*forbidden, "hubspot_ledger.stage", "hubspot_ledger.load.writer",
                 "hubspot_ledger.sync")
    assert _offenders("hubspot_ledger.extract", forbidden) == {}
    assert _offenders("hubspot_ledger.hooks", ("hubspot_ledger.mapping",)) == {}


def test_staging_reads_nothing_upstream() -> None:
    forbidden = ("hubspot_ledger.sync", "hubspot_ledger.mapping", "hubspot_ledger.extract",
                 "hubspot_ledger.hooks")
    assert _offenders("hubspot_ledger.stage", forbidden) == {}


def test_the_folders_read_as_the_data_flow() -> None:
    """extract → stage → map → load, each a package of its own (issue 11); the closed-won deal
    search has a module named for it (R-DEAL-1)."""
    for package in ("extract", "stage", "mapping", "load", "sync"):
        assert f"hubspot_ledger.{package}" in MODULES
    assert "hubspot_ledger.extract.closed_won" in MODULES


def test_the_map_layer_does_no_io() -> None:
    forbidden = ("hubspot_ledger.hooks", "hubspot_ledger.load.writer",
                 "hubspot_ledger.extract.reads", "hubspot_ledger.sync.steps", "airflow",
                 "psycopg", "requests")
    assert _offenders("hubspot_ledger.mapping", forbidden) == {}


def test_the_repositories_import_nothing_upstream() -> None:
    """The store (LedgerHook's repositories) is part of the load layer: it never reaches up into
    sync, mapping, extract or staging, nor back into the hooks that own it (issue 11)."""
    assert "hubspot_ledger.store.runs" in MODULES
    forbidden = ("hubspot_ledger.sync", "hubspot_ledger.mapping", "hubspot_ledger.extract",
                 "hubspot_ledger.stage", "hubspot_ledger.hooks")
    assert _offenders("hubspot_ledger.store", forbidden) == {}


def _class_sizes() -> dict[str, int]:
    sizes: dict[str, int] = {}
    for path in sorted(PRODUCT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                sizes[f"{_module_name(path)}.{node.name}"] = node.end_lineno - node.lineno + 1
    return sizes


def test_no_class_of_the_product_is_over_300_lines() -> None:
    """Issue 11: a class a newcomer can read at once; LedgerHook hands its connection to the
    store's repositories instead of holding every concern."""
    sizes = _class_sizes()
    assert sizes["hubspot_ledger.hooks.ledger.LedgerHook"] < 200
    assert {name: n for name, n in sizes.items() if n > 300} == {}
