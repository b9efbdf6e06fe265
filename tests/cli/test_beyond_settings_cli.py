"""Issue 14's settings through `hubspot-ledger settings set/show`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from .test_books import run_cli

pytestmark = [pytest.mark.integration]


def test_settings_set_and_show_issue_14_settings(ledger_db: str,
                                                 ledger: psycopg.Connection[Any],
                                                 books: Callable[..., int]) -> None:
    integration = str(books(configured=True))
    shown = run_cli("settings", "show", "--integration", integration, ledger_uri=ledger_db)
    assert shown.returncode == 0, shown.stderr
    for line in ("invoice_parties            unknown", "won_stages                 closedwon",
                 "recognition                immediate"):
        assert line in shown.stdout.splitlines()

    saved = run_cli("settings", "set", "--integration", integration, "--invoice-parties",
                    "hubspot", "--won-stages", "all-pipelines", "--recognition",
                    "hubspot-terms", ledger_uri=ledger_db)
    assert saved.returncode == 0, saved.stderr
    for line in ("invoice_parties            hubspot", "won_stages                 all-pipelines",
                 "recognition                hubspot-terms"):
        assert line in saved.stdout.splitlines()

    refused = run_cli("settings", "set", "--integration", integration, "--recognition",
                      "later", ledger_uri=ledger_db)
    assert refused.returncode != 0
    assert "recognition must be immediate or hubspot-terms, not 'later'" in refused.stderr
    assert ledger.execute("SELECT recognition FROM ledger.integration_settings "
                          "WHERE integration_id = %s", [int(integration)]).fetchone() == (
        "hubspot-terms",)
