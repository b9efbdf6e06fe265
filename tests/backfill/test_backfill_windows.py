"""Issue 15: the runs a backfill from the cutoff creates — the very intervals Airflow derives
from the DAG's timetable (`airflow.models.backfill._get_info_list` on the serialized DAG), each
run through the task code's own window rule (`sync.tasks.backfill_window`) and the sync steps in
the DAG's order — leave the ledger equal to one full sync of the same portal, in at most 60
runs for three years of history. In-process and sequential, so it runs in a couple of minutes;
test_backfill_airflow.py does the same through a real scheduler.

Also the regression of "an error logged once per window": a window reads the records HubSpot
modified in it, not every open problem of the windows before it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pendulum
import psycopg
import pytest
from airflow.models.backfill import _get_info_list
from airflow.serialization.serialized_objects import DagSerialization
from support import use_sandbox_app
from sync.ledger_view import differences, view  # tests/sync/ledger_view.py
from sync.portal import books, connect, truncate  # tests/sync/portal.py

from hubspot_ledger import dag_factory
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.sync.run_report import settle_run
from hubspot_ledger.sync.runner import run_step
from hubspot_ledger.sync.tasks import backfill_window
from hubspot_ledger_tools.sandbox.testing import SandboxServer

pytestmark = [pytest.mark.integration]

CUTOFF = dt.date(2024, 1, 1)  # the sandbox's history runs 2022-06 … 2026-10
STEPS = ("invoices", "products", "companies", "deals")


def _integration(sb: SandboxServer, organization: str) -> int:
    hook = LedgerHook()
    integration_id = hook.integrations.create(organization, CUTOFF)
    books(hook, integration_id)
    connect(sb, integration_id)
    return integration_id


def _sync(integration_id: int, run: str, *, full_refresh: bool = False,
          window: tuple[dt.datetime, dt.datetime] | None = None) -> None:
    for step in STEPS:
        run_step(step, integration_id, run, full_refresh=full_refresh, window=window)
    ok, report = settle_run(integration_id, run)
    assert ok, report


def _airflow_windows(integration_id: int) -> list[tuple[dt.datetime, dt.datetime]]:
    """What `airflow backfill create --from-date <cutoff> --to-date <now>` would create."""
    (summary,) = [s for s in LedgerHook().integrations.list() if s.id == integration_id]
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(
        dag_factory.build_dag(summary)))
    infos = _get_info_list(from_date=pendulum.datetime(CUTOFF.year, CUTOFF.month, CUTOFF.day),
                           to_date=pendulum.now("UTC"), reverse=False, dag=serialized)
    return [(i.data_interval.start, i.data_interval.end) for i in infos if i.data_interval]


def _deal_rejections(conn: psycopg.Connection, integration_id: int) -> int:
    return sum(int(c["deals"]["failed"]) + int(c["deals"]["skipped"]) for (c,) in conn.execute(
        "SELECT counts FROM ledger.sync_runs WHERE integration_id = %s", [integration_id]))


@pytest.fixture
def portal(ledger_db: str) -> Iterator[tuple[SandboxServer, psycopg.Connection]]:
    with pytest.MonkeyPatch.context() as mp, SandboxServer(
            seed=9, scale="small", rate_limit=100_000, search_rate=10_000) as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(mp, sb)
        truncate(conn)
        yield sb, conn


def test_the_backfills_monthly_runs_equal_one_full_sync(
        portal: tuple[SandboxServer, psycopg.Connection]) -> None:
    sb, conn = portal
    backfilled, full = _integration(sb, "Backfilled Ltd"), _integration(sb, "Full Ltd")
    windows = _airflow_windows(backfilled)
    today = dt.datetime.now(dt.UTC)
    assert len(windows) == (today.year - CUTOFF.year) * 12 + today.month - CUTOFF.month <= 60
    for start, end in windows:
        window = backfill_window("backfill", start, end)
        assert window is not None
        _sync(backfilled, f"backfill__{start:%Y-%m-%d}", window=window)
    _sync(full, "full", full_refresh=True)

    assert differences(view(conn, backfilled), view(conn, full)) == []
    assert view(conn, full)["contracts"] and view(conn, full)["open_problems"]
    modes = conn.execute("SELECT mode, count(*) FROM ledger.sync_runs WHERE integration_id = %s "
                         "GROUP BY mode", [backfilled]).fetchall()
    assert modes == [("window", len(windows))]
    # Each failing deal is reported by the window that read it (and, rarely, by the window
    # in which one of its lines changed), not again by every later window.
    assert _deal_rejections(conn, backfilled) <= 2 * _deal_rejections(conn, full)
