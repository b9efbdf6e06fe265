"""Fewest calls (issue 5): batch endpoints everywhere, and nothing lost past the search cap."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from support import StaticToken, use_sandbox_app
from sync.portal import books, connect, truncate  # tests/sync/portal.py

from hubspot_ledger.hooks.hubspot import HubSpotHook
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.sync.run_report import settle_run
from hubspot_ledger.sync.runner import run_step
from hubspot_ledger_tools.sandbox.testing import SandboxServer

pytestmark = [pytest.mark.integration]


@pytest.fixture
def small(ledger_db: str) -> Iterator[tuple[SandboxServer, psycopg.Connection]]:
    with pytest.MonkeyPatch.context() as mp, SandboxServer(
            seed=7, scale=400, rate_limit=100_000, search_rate=10_000,
            search_cap=400) as sb, psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(mp, sb)
        truncate(conn)
        yield sb, conn


def test_search_past_the_cap_returns_every_record_once(
        small: tuple[SandboxServer, psycopg.Connection]) -> None:
    sb, _ = small
    hook = HubSpotHook(token_source=StaticToken(sb.issue_tokens()["access_token"]))
    hook.search_cap = 400  # the sandbox's cap here; HubSpot's is 10,000
    listed = [r["id"] for page in hook.list_pages("line_items", ["name"]) for r in page]
    assert len(listed) > 2 * 400, "the portal must be larger than the cap for this test"
    sb.clear_requests()
    found = [r["id"] for page in hook.search_pages("line_items", [], ["name"]) for r in page]
    assert sorted(found) == sorted(listed)  # every record, none twice
    restarts = [r for r in sb.requests(endpoint="POST /crm/v3/objects/line_items/search")
                if any(f.get("propertyName") == "hs_object_id"
                       for g in (r.get("body") or {}).get("filterGroups", [])
                       for f in g.get("filters", []))]
    assert restarts, "the query never restarted past the cap"
    assert all(r["status"] == 200 for r in sb.requests())


def test_a_full_sync_makes_no_per_record_request(
        small: tuple[SandboxServer, psycopg.Connection]) -> None:
    sb, conn = small
    hook = LedgerHook()
    integration_id = hook.integrations.create("Batches Ltd",
                                              __import__("datetime").date(2020, 1, 1))
    books(hook, integration_id)
    connect(sb, integration_id)
    sb.clear_requests()
    run = f"test-{uuid.uuid4().hex[:8]}"
    for step in ("invoices", "products", "companies", "deals"):
        run_step(step, integration_id, run, full_refresh=True)
    assert settle_run(integration_id, run)[0]
    sent = sb.requests()
    by_endpoint = Counter(r["endpoint"] for r in sent)
    single = [e for e in by_endpoint if e.count("/") >= 5 and "batch" not in e
              and "search" not in e]
    assert single == [], by_endpoint  # e.g. GET /crm/v3/objects/deals/{id}
    # Every batch read is full but the last of each kind of batch: the request count stays
    # within a few of the minimum the record counts allow.
    rows: Any = conn.execute(
        "SELECT count(*) FILTER (WHERE remote_type = 'deal'), "
        "count(*) FILTER (WHERE remote_type = 'line_item') FROM ledger.integration_records"
    ).fetchone()
    line_reads = sum(int(r["inputs"]) for r in sent
                     if r["endpoint"] == "POST /crm/v3/objects/line_items/batch/read")
    assert by_endpoint["POST /crm/v3/objects/line_items/batch/read"] <= \
        math.ceil(line_reads / 100) + 2
    assert rows[0] > 0 and rows[1] > 0
