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
from support import use_sandbox_app, wait_until
from sync.portal import books, connect, truncate  # tests/sync/portal.py

from hubspot_ledger.hooks.ledger import LedgerHook
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
    integration_id = hook.create_integration(organization, dt.date(2024, 1, 1))
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
    org_a, org_b = (LedgerHook().get_integration(i).organization_id for i in (a, b))
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


def test_a_run_of_one_integration_never_waits_for_another(
        portal: tuple[SandboxServer, psycopg.Connection]) -> None:
    sb, conn = portal
    a, b = _integration(sb, "Busy A"), _integration(sb, "Free B")
    with LedgerHook().integration_lock(a):  # A is writing, for as long as this block lasts
        run_step("products", b, "free-b")
        # B wrote while A still holds its lock (had B waited for it, it would wait forever here).
        org_b = LedgerHook().get_integration(b).organization_id
        items = conn.execute("SELECT count(*) FROM ledger.items WHERE organization_id = %s",
                             [org_b]).fetchone()
        assert items is not None and items[0] > 0


def _refused_the_lock(conn: psycopg.Connection, others_than: set[int]) -> bool:
    """Lock probe: a session other than `others_than` has asked for an integration lock (its
    last statement) and, since the holder still has it, been refused."""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND query LIKE 'SELECT pg_try_advisory_lock%%' AND NOT pid = ANY(%s)",
        [list(others_than)]).fetchone()
    return row is not None and row[0] > 0


def test_two_runs_of_one_integration_never_write_at_the_same_time(
        portal: tuple[SandboxServer, psycopg.Connection]) -> None:
    sb, conn = portal
    a = _integration(sb, "Serial A")
    taken, released = threading.Event(), threading.Event()
    sessions_before: set[int] = set()
    finished_after_release: list[bool] = []

    def hold_the_lock() -> None:
        with LedgerHook().integration_lock(a):
            sessions_before.update(
                pid for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity").fetchall())
            taken.set()
            # Hold on until the second run has asked for the lock and been refused.
            wait_until(lambda: _refused_the_lock(conn, sessions_before), timeout=60,
                       what="the second run asks for the integration's lock")
            released.set()

    def second_run() -> None:
        assert taken.wait(timeout=60)  # the first writer holds the lock
        run_step("products", a, "second")
        finished_after_release.append(released.is_set())  # it wrote only after the first

    _run_in_threads(hold_the_lock, second_run)
    assert finished_after_release == [True]
    items = conn.execute("SELECT count(*) FROM ledger.items").fetchone()
    assert items is not None and items[0] > 0
