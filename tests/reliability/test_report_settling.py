"""The report task settles a run even when the ledger drops its connection meanwhile (issue 6's
"ledger restart" fault, met by the report rather than a step; seen in CI). The report has no
Airflow retries, so without its own retry a run whose every step landed would end failed and
its row stay "running"."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import psycopg
import pytest
from support import wait_until

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.sync.run_report import settle_run

pytestmark = [pytest.mark.integration]

BLOCKER = "settle-test-blocker"


def _waiting_backend(conn: psycopg.Connection) -> int | None:
    row = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND application_name <> %s", [BLOCKER]).fetchone()
    return None if row is None else int(row[0])


def test_a_connection_dropped_while_settling_is_retried_and_the_run_succeeds(
        ledger: psycopg.Connection, ledger_db: str, caplog: pytest.LogCaptureFixture) -> None:
    hook = LedgerHook()
    integration_id = hook.integrations.create("Settling Ltd", dt.date(2024, 1, 1))
    run_id = hook.runs.start(integration_id, "run-1")
    hook.runs.set_invoices(run_id, False)
    for step in ("products", "companies", "deals"):
        hook.runs.add_counts(run_id, step, {"created": 1})
    result: list[object] = []

    with psycopg.connect(ledger_db, application_name=BLOCKER) as blocker:
        # Hold the run's row so that the report's first connection waits on it, then drop that
        # connection the way a ledger restart or a fail-over would.
        blocker.execute("SELECT 1 FROM ledger.sync_runs WHERE id = %s FOR UPDATE", [run_id])
        settling = threading.Thread(target=lambda: result.append(_settle(integration_id)))
        settling.start()
        pid = wait_until(lambda: _waiting_backend(ledger), timeout=20,
                         what="the report's connection waiting on the run's row")
        ledger.execute("SELECT pg_terminate_backend(%s)", [pid])
        blocker.rollback()
    settling.join(timeout=60)

    assert len(result) == 1 and isinstance(result[0], tuple), result
    ok, text = result[0]
    assert ok, text
    status = ledger.execute("SELECT status FROM ledger.sync_runs WHERE id = %s",
                            [run_id]).fetchone()
    assert status == ("success",)
    assert any("Lost the ledger connection while settling the run" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)


def _settle(integration_id: int) -> object:
    try:
        return settle_run(integration_id, "run-1")
    except Exception as exc:  # noqa: BLE001 - handed to the test thread to assert on
        return exc
