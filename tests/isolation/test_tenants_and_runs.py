"""Tenants and concurrent runs (issue 6, items 4 and 5).

Two organizations syncing the same HubSpot portal at the same time each get their own complete
copy and never touch each other's rows; a run of one integration never waits for another
integration; two runs of the same integration never write at the same time.
Real parts: the sandbox over HTTP, this run's ledger database, the steps as Airflow runs them.
"""

from __future__ import annotations

import datetime as dt
import threading
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
from hubspot_ledger.sync.runner import run_step
from hubspot_ledger_tools.sandbox.testing import SandboxServer

pytestmark = [pytest.mark.integration]
STEPS = ("invoices", "products", "companies", "deals")
SYNCED = ("customers", "items", "contracts", "performance_obligations", "invoices",
          "invoice_lines")


def sync(integration_id: int) -> None:
    run = f"test-{uuid.uuid4().hex[:8]}"
    for step in STEPS:
        run_step(step, integration_id, run, full_refresh=True)
    ok, report = settle_run(integration_id, run)
    assert ok, report


@pytest.fixture
def portal(ledger_db: str) -> Iterator[tuple[SandboxServer, psycopg.Connection]]:
    with pytest.MonkeyPatch.context() as mp, SandboxServer(seed=5, scale="tiny") as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(mp, sb)
        truncate(conn)
        yield sb, conn


def _integration(sb: SandboxServer, organization: str) -> int:
    hook = LedgerHook()
    integration_id = hook.integrations.create(organization, dt.date(2024, 1, 1))
    books(hook, integration_id)
    connect(sb, integration_id)
    return integration_id


def _rows_per_org(conn: psycopg.Connection) -> dict[tuple[str, int], int]:
    counts = {}
    for table in SYNCED:
        for org, n in conn.execute(
                f"SELECT organization_id, count(*) FROM ledger.{table} "  # noqa: S608
                "GROUP BY organization_id").fetchall():
            counts[(table, int(org))] = int(n)
    return counts


def _run_in_threads(*targets: Any) -> None:
    errors: list[BaseException] = []

    def guarded(target: Any) -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]


def test_two_organizations_syncing_at_once_never_touch_each_others_rows(
        portal: tuple[SandboxServer, psycopg.Connection]) -> None:
    sb, conn = portal
    a, b = _integration(sb, "Tenant A"), _integration(sb, "Tenant B")
    org_a, org_b = (LedgerHook().integrations.get(i).organization_id for i in (a, b))
    _run_in_threads(lambda: sync(a), lambda: sync(b))
    counts = _rows_per_org(conn)
    for table in SYNCED:
        assert counts.get((table, org_a), 0) == counts.get((table, org_b), 0) > 0, table
    # Every row an integration's records point at belongs to that integration's organization.
    stray = conn.execute(
        "SELECT r.integration_id, r.local_table, r.local_id FROM ledger.integration_records r "
        "JOIN ledger.integrations i ON i.id = r.integration_id WHERE NOT EXISTS ("
        " SELECT 1 FROM ledger.customers x WHERE r.local_table = 'customers' AND x.id = r.local_id"
        "  AND x.organization_id = i.organization_id UNION ALL"
        " SELECT 1 FROM ledger.items x WHERE r.local_table = 'items' AND x.id = r.local_id"
        "  AND x.organization_id = i.organization_id UNION ALL"
        " SELECT 1 FROM ledger.contracts x WHERE r.local_table = 'contracts' "
        "  AND x.id = r.local_id AND x.organization_id = i.organization_id UNION ALL"
        " SELECT 1 FROM ledger.performance_obligations x WHERE "
        "  r.local_table = 'performance_obligations' AND x.id = r.local_id"
        "  AND x.organization_id = i.organization_id UNION ALL"
        " SELECT 1 FROM ledger.invoices x WHERE r.local_table = 'invoices' AND x.id = r.local_id"
        "  AND x.organization_id = i.organization_id UNION ALL"
        " SELECT 1 FROM ledger.invoice_lines x WHERE r.local_table = 'invoice_lines' "
        "  AND x.id = r.local_id AND x.organization_id = i.organization_id)").fetchall()
    assert stray == []
    # A re-sync of A alone leaves B's rows exactly as they were.
    before = conn.execute("SELECT id, updated_at FROM ledger.contracts WHERE "
                          "organization_id = %s ORDER BY id", [org_b]).fetchall()
    sync(a)
    assert conn.execute("SELECT id, updated_at FROM ledger.contracts WHERE "
                        "organization_id = %s ORDER BY id", [org_b]).fetchall() == before


def _write_lock_holders(conn: psycopg.Connection, integration_id: int) -> list[int]:
    """Backend pids holding the integration's write lock ("HSLG", integration id), as
    PostgreSQL sees it in this ledger database (pg_locks shows every database's locks: the
    other test workers' ledgers have integrations of the same ids)."""
    return [int(r[0]) for r in conn.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid = x'48534C47'::int::oid AND objid = %s::oid AND objsubid = 2",
        [integration_id]).fetchall()]


def _items_of(conn: psycopg.Connection, integration_id: int) -> int:
    row = conn.execute("SELECT count(*) FROM ledger.items i JOIN ledger.integrations g "
                       "ON g.organization_id = i.organization_id WHERE g.id = %s",
                       [integration_id]).fetchone()
    assert row is not None
    return int(row[0])


def test_a_run_of_one_integration_never_waits_for_another(
        portal: tuple[SandboxServer, psycopg.Connection]) -> None:
    sb, conn = portal
    a, b = _integration(sb, "Busy A"), _integration(sb, "Free B")
    with LedgerHook().writer(a, "busy-a"):  # A is writing, for as long as this block lasts
        # A run that found a writer would fail at once (LedgerBusyError): B's completes.
        run_step("products", b, "free-b")
        assert _write_lock_holders(conn, a) != []  # A still held its lock all along
    assert _items_of(conn, b) > 0
    assert _items_of(conn, a) == 0


def test_a_second_run_of_one_integration_fails_fast_and_its_retry_writes(
        portal: tuple[SandboxServer, psycopg.Connection]) -> None:
    """Issue 11 item 5: a run that finds another run of its integration writing gives its
    worker slot back at once, saying who writes; Airflow's retry succeeds once that run let go.
    Two runs of one integration never write at the same time."""
    sb, conn = portal
    a = _integration(sb, "Serial A")
    with LedgerHook().writer(a, "first-run") as first:
        holder = first.conn.info.backend_pid
        with pytest.raises(LedgerBusyError) as busy:
            run_step("products", a, "second-run")
        # It did not wait: the first writer holds the lock still, and alone.
        assert _write_lock_holders(conn, a) == [holder]
        assert str(busy.value) == (f"another run of integration {a} is writing (dag run "
                                   "first-run); this step gives its worker back and runs again "
                                   "once that run has written")
        assert _items_of(conn, a) == 0
        failures = conn.execute("SELECT failures FROM ledger.sync_runs WHERE "
                                "integration_id = %s AND dag_run_id = 'second-run'",
                                [a]).fetchone()
        assert failures is not None and failures[0] == {"products": str(busy.value)}
    assert _write_lock_holders(conn, a) == []  # the first run ended: its lock went with it
    run_step("products", a, "second-run")  # Airflow's retry of the same try
    assert _items_of(conn, a) > 0
    failures = conn.execute("SELECT failures FROM ledger.sync_runs WHERE integration_id = %s "
                            "AND dag_run_id = 'second-run'", [a]).fetchone()
    assert failures is not None and failures[0] == {}  # the retry cleared the failure
