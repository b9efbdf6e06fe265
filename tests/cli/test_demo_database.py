"""`make demo` keeps to a ledger database of its own (issue 15.1): another checkout's
integrations in the shared `ledger`, encrypted under that checkout's key, are never touched."""

from __future__ import annotations

import json

import pytest

from hubspot_ledger_tools.demo import DEMO_DATABASE, demo_ledger_uri


@pytest.mark.unit
@pytest.mark.parametrize(("configured", "expected"), [
    ("postgresql://postgres@127.0.0.1:5432/ledger",
     "postgresql://postgres@127.0.0.1:5432/ledger_demo"),
    ("postgresql://app:s%40cret@db.internal:6432/books?sslmode=require",
     "postgresql://app:s%40cret@db.internal:6432/ledger_demo?sslmode=require"),
])
def test_the_demo_uses_ledger_demo_on_the_configured_server(configured: str,
                                                            expected: str) -> None:
    assert demo_ledger_uri(configured) == expected


@pytest.mark.unit
def test_the_demo_database_in_airflows_json_connection_form() -> None:
    configured = json.dumps({"conn_type": "postgres", "host": "db", "schema": "ledger"})
    assert json.loads(demo_ledger_uri(configured)) == {
        "conn_type": "postgres", "host": "db", "schema": DEMO_DATABASE}
