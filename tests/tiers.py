"""Every test carries one of the suite's tiers (issue 11 item 7). Importable as `tiers`; kept
free of the project's imports so that a throw-away suite can use the hook too
(tests/unit/test_test_hygiene.py)."""

from __future__ import annotations

import pytest

TIERS = ("unit", "integration", "e2e")


def require_tier_markers(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`pytest_collection_modifyitems` (tests/conftest.py): every test carries one of TIERS
    (`make test-fast` runs `-m unit`, so an unmarked test would silently never run there).
    A test without one stops the run before anything runs, naming it."""
    unmarked = [item.nodeid for item in items
                if not any(item.get_closest_marker(tier) for tier in TIERS)]
    if unmarked:
        raise pytest.UsageError(
            f"{len(unmarked)} test(s) without a marker of {', '.join(TIERS)} (mark the module "
            "with `pytestmark = pytest.mark.<tier>` or the test itself):\n  "
            + "\n  ".join(unmarked))
