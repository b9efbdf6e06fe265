"""Issue 15, "backfills that fit": `hubspot-ledger backfill` through a real Airflow (api-server,
scheduler, LocalExecutor; see stack.py) over a sandbox portal whose history spreads over more
than three years (created 2022-06 … 2026-10).

The backfill runs from the cutoff (2024-01-01) to now in calendar-month windows — 35 runs, not
the 25,000 of the hourly schedule — and afterwards the integration's ledger equals the ledger of
a second integration of the same portal synced once in full (tests/sync/ledger_view.py).
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from support import use_sandbox_app
from sync.ledger_view import differences, view  # tests/sync/ledger_view.py
from sync.portal import books, connect, truncate  # tests/sync/portal.py

from hubspot_ledger.dag_factory import dag_id_for
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.sync.run_report import settle_run
from hubspot_ledger.sync.runner import run_step
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .stack import Stack, airflow_stack, metadata_database

pytestmark = [pytest.mark.e2e, pytest.mark.deployment, pytest.mark.timeout(3000)]

CUTOFF = dt.date(2024, 1, 1)
STEPS = ("invoices", "products", "companies", "deals")
SCHEDULER_DEADLINE = 120.0


def full_sync(integration_id: int) -> None:
    run = f"full-{uuid.uuid4().hex[:8]}"
    for step in STEPS:
        run_step(step, integration_id, run, full_refresh=True)
    ok, report = settle_run(integration_id, run)
    assert ok, report


def _integration(sb: SandboxServer, organization: str) -> int:
    hook = LedgerHook()
    integration_id = hook.integrations.create(organization, CUTOFF)
    books(hook, integration_id)
    connect(sb, integration_id)
    return integration_id


def _dag_id(integration_id: int) -> str:
    (summary,) = [s for s in LedgerHook().integrations.list() if s.id == integration_id]
    return dag_id_for(summary)


def _airflow_rows(stack: Stack, query: str) -> int:
    """A count from Airflow's metadata database."""
    uri = stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg://",
                                                                   "postgresql://")
    with psycopg.connect(uri) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def _wait_for_scheduler(stack: Stack) -> None:
    deadline = time.monotonic() + SCHEDULER_DEADLINE
    while time.monotonic() < deadline:
        if stack.airflow("jobs", "check", "--job-type", "SchedulerJob").returncode == 0:
            return
        time.sleep(1)
    pytest.fail("the scheduler did not start:\n"
                + (stack.home / "scheduler.log").read_text(errors="replace")[-3000:])


@pytest.fixture(scope="module")
def deployment(ledger_db: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[Stack, psycopg.Connection, int, int]]:
    home = tmp_path_factory.mktemp("airflow-backfill-home")
    with pytest.MonkeyPatch.context() as mp, SandboxServer(
            seed=9, scale="small", rate_limit=100_000, search_rate=10_000) as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(mp, sb)
        truncate(conn)
        backfilled, full = _integration(sb, "Backfilled Ltd"), _integration(sb, "Full Ltd")
        with metadata_database(ledger_db) as metadata, \
                airflow_stack(Path(home), ledger_db, sb, metadata) as stack:
            parsed = stack.airflow("dags", "reserialize")
            assert parsed.returncode == 0, parsed.stderr[-3000:]
            _wait_for_scheduler(stack)
            yield stack, conn, backfilled, full


def test_a_paused_dag_is_refused_with_a_clear_word_and_nothing_is_queued(
        deployment: tuple[Stack, psycopg.Connection, int, int]) -> None:
    stack, _, integration_id, _ = deployment
    dag_id = _dag_id(integration_id)
    assert stack.airflow("dags", "pause", dag_id).returncode == 0
    refused = stack.cli("backfill", "--integration", str(integration_id))
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        f"hubspot-ledger: DAG {dag_id} is paused, so the backfill's runs would wait queued until "
        f"it is unpaused: unpause it (Airflow UI, or `airflow dags unpause {dag_id}`), or run "
        "this again with --unpause")
    assert _airflow_rows(stack, "SELECT count(*) FROM backfill") == 0
    assert _airflow_rows(stack, "SELECT count(*) FROM dag_run") == 0


def test_a_backfill_from_the_cutoff_runs_by_month_and_equals_a_full_sync(
        deployment: tuple[Stack, psycopg.Connection, int, int]) -> None:
    stack, conn, integration_id, full = deployment
    full_sync(full)
    # Ten windows side by side, as the UI's backfill form runs them by default: they take turns
    # at the write lock (rescheduled, not retried), and every one lands.
    done = stack.cli("backfill", "--integration", str(integration_id), "--unpause",
                     "--max-active-runs", "10")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # 2024-01 … 2026-11: every month from the cutoff's that has ended (today is in 2026-12, the
    # current month is read by the latest window up to now).
    head = re.search(r"backfill \d+ of \S+: (\d+) run\(s\), (\S+) to (\S+)", done.stdout)
    assert head, done.stdout
    runs = int(head.group(1))
    today = dt.datetime.now(dt.UTC)
    months = (today.year - 2024) * 12 + today.month - 1
    assert runs == months <= 60
    assert head.group(2) == "2024-01-01"
    assert f"unpaused DAG {_dag_id(integration_id)}" in done.stdout
    finished = re.findall(r"^(\d{4}-\d\d-\d\d) → (\d{4}-\d\d-\d\d)  (\w+)$", done.stdout,
                          re.MULTILINE)
    assert len(finished) == runs and {s for _, _, s in finished} == {"success"}
    modes = conn.execute("SELECT mode, status, count(*) FROM ledger.sync_runs WHERE "
                         "integration_id = %s GROUP BY 1, 2", [integration_id]).fetchall()
    assert modes == [("window", "success", runs)]
    assert _airflow_rows(stack, "SELECT count(*) FROM dag_run WHERE run_type = 'backfill' "
                                "AND state = 'success'") == runs
    # Windows met each other at the lock and waited their turn (rescheduled). Whether a
    # reschedule ever costs a try is tests/sync/test_busy_reschedule.py's business: here, with a
    # reschedule delay of seconds on a loaded machine, Airflow's scheduler sometimes reads the
    # first process's exit after it has queued the task again, and counts a retry.
    assert _airflow_rows(stack, "SELECT count(*) FROM task_reschedule") > 0
    problems = differences(view(conn, integration_id), view(conn, full))
    assert problems == []
    assert view(conn, integration_id)["contracts"], "the portal has no contract to compare"
