"""Overlapped reads, fixed write order (issue 12): the companies step reads ahead everything the
deals need (associations, companies, line items, in pooled batch reads) while the deal search
runs; the ledger writes keep R-SYNC-2's order (invoices, products, companies, deals)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from support import use_sandbox_app

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.sync import steps
from hubspot_ledger.sync.run_report import settle_run
from hubspot_ledger.sync.runner import run_step
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .portal import CUTOFF, books, build_portal, connect, truncate

pytestmark = pytest.mark.integration
STEPS = ("invoices", "products", "companies", "deals")
LINE_READS = "POST /crm/v3/objects/line_items/batch/read"
DEAL_LINKS = "POST /crm/v4/associations/deals/line_items/batch/read"


@pytest.fixture
def synced(ledger_db: str, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[SandboxServer, psycopg.Connection[Any], int, dict[str, Any]]]:
    # Chunks of 3 deals: the crafted portal's deals span several chunks, so a batch read per
    # chunk (the old way) and one pooled across chunks differ.
    monkeypatch.setattr(steps, "DOCUMENT_BATCH", 3)
    with SandboxServer(seed=1, scale="tiny") as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(monkeypatch, sb)
        truncate(conn)
        build_portal(sb)
        hook = LedgerHook()
        integration_id = hook.integrations.create("Write Order Ltd", CUTOFF)
        books(hook, integration_id)
        connect(sb, integration_id)
        run = f"order-{uuid.uuid4().hex[:8]}"
        requests: dict[str, Any] = {}
        for step in STEPS:
            since = sb.last_seq()
            run_step(step, integration_id, run)
            requests[step] = sb.requests(since=since)
        ok, report = settle_run(integration_id, run)
        assert ok, report
        yield sb, conn, integration_id, requests


def _first_and_last(conn: psycopg.Connection[Any], integration_id: int, remote_type: str
                    ) -> tuple[Any, Any]:
    row = conn.execute("SELECT min(created_at), max(created_at) FROM ledger.integration_records "
                       "WHERE integration_id = %s AND remote_type = %s",
                       [integration_id, remote_type]).fetchone()
    assert row is not None and row[0] is not None, f"no {remote_type} was written"
    return row[0], row[1]


def test_overlapped_reads_keep_the_ledger_write_order_r_sync_2(synced: Any) -> None:
    _, conn, integration_id, _ = synced
    # created_at is each write transaction's start: every record of a step's own type is
    # written after every record of the steps before it.
    invoices = _first_and_last(conn, integration_id, "invoice")
    companies = _first_and_last(conn, integration_id, "company")
    deals = _first_and_last(conn, integration_id, "deal")
    assert invoices[1] < companies[0]
    assert companies[1] < deals[0]
    # The companies step wrote companies only (its reads ahead wrote nothing), and products
    # were written before it (the deals step may add an item for a product nobody mapped yet,
    # R-DEAL-2, after it).
    during = conn.execute(
        "SELECT DISTINCT remote_type FROM ledger.integration_records WHERE integration_id = %s "
        "AND created_at BETWEEN %s AND %s", [integration_id, *companies]).fetchall()
    assert [r[0] for r in during] == ["company"]
    products = conn.execute(
        "SELECT min(created_at) FROM ledger.integration_records WHERE integration_id = %s "
        "AND remote_type = 'product'", [integration_id]).fetchone()
    assert products is not None and products[0] < companies[0]


def test_deal_lines_are_read_ahead_in_pooled_batches(synced: Any) -> None:
    _, conn, integration_id, requests = synced
    ahead = requests["companies"]
    # The deals step reads no line items: the companies step read them beside the search.
    assert [r for r in requests["deals"] if r["endpoint"] in (LINE_READS, DEAL_LINKS)] == []
    assert any(r["endpoint"] == DEAL_LINKS for r in ahead)
    # Pooled across chunks: the crafted portal's deal lines fit one batch read of 100.
    assert len([r for r in ahead if r["endpoint"] == LINE_READS]) == 1
    # And the contracts got their lines from what was staged.
    row = conn.execute("SELECT count(*) FROM ledger.integration_records WHERE integration_id "
                       "= %s AND local_table = 'performance_obligations'",
                       [integration_id]).fetchone()
    assert row is not None and row[0] > 0
