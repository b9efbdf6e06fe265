"""Backfill (issue 5): windows read in parallel, each the records HubSpot last modified inside
it, add up to exactly what one full sync writes — nothing duplicated, nothing missed."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from support import use_sandbox_app
from sync.portal import books, connect, truncate  # tests/sync/portal.py

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.errors import LedgerBusyError
from hubspot_ledger.sync.run_report import settle_run
from hubspot_ledger.sync.runner import incremental_overlap, run_step
from hubspot_ledger.sync.tasks import backfill_window
from hubspot_ledger_tools.sandbox.testing import SandboxServer

pytestmark = [pytest.mark.integration]
STEPS = ("invoices", "products", "companies", "deals")
UTC = dt.UTC
# The first window holds the cutoff (2025-01-01), so it also reads what was modified before it
# (backfill_windows.reach); the last one reaches now.
EDGES = [dt.datetime(2024, 6, 1, tzinfo=UTC), dt.datetime(2025, 3, 1, tzinfo=UTC),
         dt.datetime(2025, 9, 1, tzinfo=UTC), dt.datetime.now(UTC) + dt.timedelta(days=1)]


BUSY_DEADLINE = 300.0


def _step(step: str, integration_id: int, run: str, **kwargs: Any) -> None:
    """One step, tried again while another window holds the integration's write lock (the
    lock never waits: in Airflow the task ends and its retry comes later)."""
    deadline = time.monotonic() + BUSY_DEADLINE
    while True:
        try:
            run_step(step, integration_id, run, **kwargs)
            return
        except LedgerBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # poll the lock until the other window's step has written


def sync(integration_id: int, *, full_refresh: bool = False,
         window: tuple[dt.datetime, dt.datetime] | None = None) -> None:
    run = f"test-{uuid.uuid4().hex[:8]}"
    for step in STEPS:
        _step(step, integration_id, run, full_refresh=full_refresh, window=window)
    ok, report = settle_run(integration_id, run)
    assert ok, report


@pytest.fixture
def portal(ledger_db: str) -> Iterator[tuple[SandboxServer, psycopg.Connection]]:
    with pytest.MonkeyPatch.context() as mp, SandboxServer(
            seed=9, scale="small", rate_limit=100_000, search_rate=10_000) as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(mp, sb)
        truncate(conn)
        yield sb, conn


def _integration(sb: SandboxServer, organization: str) -> int:
    hook = LedgerHook()
    integration_id = hook.integrations.create(organization, dt.date(2025, 1, 1))
    books(hook, integration_id)
    connect(sb, integration_id)
    return integration_id


def canonical(conn: psycopg.Connection, integration_id: int) -> dict[str, Any]:
    """What the integration wrote, by HubSpot ids and natural values (ledger ids aside)."""
    def rows(query: str) -> list[tuple[Any, ...]]:
        return sorted(tuple(map(str, r)) for r in conn.execute(query, {"i": integration_id}))

    mapped = ("FROM ledger.integration_records r JOIN ledger.{t} x ON x.id = r.local_id "
              "AND r.local_table = '{t}' WHERE r.integration_id = %(i)s")
    return {
        "items": rows("SELECT r.remote_id, x.sku, x.name, x.item_type "
                      + mapped.format(t="items")),
        "customers": rows("SELECT r.remote_id, x.name, x.phone, x.city "
                          + mapped.format(t="customers")),
        "contracts": rows("SELECT r.remote_id, x.name, x.memo, x.contract_date, "
                          "x.total_amount, x.status, (SELECT name FROM ledger.customers c "
                          "WHERE c.id = x.customer_id) " + mapped.format(t="contracts")),
        "obligations": rows("SELECT r.remote_id, i.sku, x.quantity, x.unit_price, "
                            "x.discount_percent, x.discount_amount, x.amount "
                            "FROM ledger.integration_records r JOIN "
                            "ledger.performance_obligations x ON x.id = r.local_id AND "
                            "r.local_table = 'performance_obligations' JOIN ledger.items i "
                            "ON i.id = x.item_id WHERE r.integration_id = %(i)s"),
        "invoices": rows("SELECT r.remote_id, x.number, x.invoice_date, x.due_date, "
                         "x.total_amount " + mapped.format(t="invoices")),
        "invoice_lines": rows("SELECT r.remote_id, x.quantity, x.unit_price, x.amount "
                              + mapped.format(t="invoice_lines")),
        "errors": rows("SELECT DISTINCT remote_type, remote_id, message FROM "
                       "ledger.integration_errors WHERE integration_id = %(i)s"),
        "records": rows("SELECT remote_type, count(*) FROM ledger.integration_records "
                        "WHERE integration_id = %(i)s GROUP BY remote_type"),
    }


def test_parallel_backfill_windows_equal_one_full_sync(
        portal: tuple[SandboxServer, psycopg.Connection]) -> None:
    sb, conn = portal
    full, windowed = _integration(sb, "Full Ltd"), _integration(sb, "Backfilled Ltd")
    sync(full, full_refresh=True)
    errors: list[BaseException] = []

    def window_run(window: tuple[dt.datetime, dt.datetime]) -> None:
        try:
            sync(windowed, window=window)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=window_run, args=(w,))
               for w in zip(EDGES, EDGES[1:], strict=False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    expected, got = canonical(conn, full), canonical(conn, windowed)
    assert got["contracts"], "the portal has no contract to compare"
    for table in expected:
        assert got[table] == expected[table], table
    # Each window read its own slice: every product (no lines to pull it into another window)
    # was handled by exactly one window, and no record was created twice. A deal or invoice
    # whose line changed in another window than itself is read there too, as unchanged.
    def handled(integration_id: int, step: str, changes: tuple[str, ...]) -> int:
        return sum(sum(c[step][k] for k in changes) for (c,) in conn.execute(
            "SELECT counts FROM ledger.sync_runs WHERE integration_id = %s", [integration_id]))

    every = ("created", "updated", "unchanged", "skipped", "failed")
    assert handled(windowed, "products", every) == handled(full, "products", every)
    # (Items may be created by an invoice or deal line before the products step sees them, so
    # only documents and customers are counted here.)
    for step in ("companies", "deals", "invoices"):
        assert handled(windowed, step, ("created",)) == handled(full, step, ("created",)), step
    modes = conn.execute("SELECT mode, count(*) FROM ledger.sync_runs WHERE integration_id = "
                         "%s GROUP BY mode", [windowed]).fetchall()
    assert dict(modes) == {"window": len(EDGES) - 1}


def test_a_backfill_window_does_not_move_the_incremental_starting_point(
        portal: tuple[SandboxServer, psycopg.Connection]) -> None:
    sb, _ = portal
    integration_id = _integration(sb, "Watermark Ltd")
    sync(integration_id, full_refresh=True)
    ledger = LedgerHook()
    after_full = ledger.runs.incremental_since(integration_id, -1, incremental_overlap())
    sync(integration_id, window=(EDGES[1], EDGES[2]))
    assert ledger.runs.incremental_since(integration_id, -1, incremental_overlap()) == after_full


def test_only_backfill_runs_with_an_interval_read_a_window() -> None:
    start, end = EDGES[1], EDGES[2]
    assert backfill_window("backfill", start, end) == (start, end)
    assert backfill_window("DagRunType.BACKFILL_JOB", start, end) == (start, end)
    assert backfill_window("scheduled", start, end) is None
    assert backfill_window("manual", start, end) is None
    assert backfill_window("backfill", start, start) is None  # a zero-length interval
