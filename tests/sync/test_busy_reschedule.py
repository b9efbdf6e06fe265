"""A step that finds another run of its integration writing waits its turn without using a try
(sync.tasks._wait_for_the_writer): the task is rescheduled, giving its worker back, and runs
once the other run has written. Backfill windows side by side meet this at every step (the
UI's backfill form runs 10 at once by default); before, each meeting cost a retry, and a window
behind a long one ran out of them and failed."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from support import wait_until

from hubspot_ledger.hooks.ledger import LedgerHook

from .portal import Portal

pytestmark = pytest.mark.e2e

OTHER_RUN = "another-window"


def _busy_noted(portal: Portal) -> bool:
    """The DAG run under test found the lock busy: run_step noted it on the run's row."""
    row = portal.ledger.execute(
        "SELECT count(*) FROM ledger.sync_runs WHERE integration_id = %s AND dag_run_id <> %s "
        "AND failures::text LIKE %s", [portal.integration_id, OTHER_RUN,
                                       f"%is writing (dag run {OTHER_RUN})%"]).fetchone()
    return bool(row and row[0])


def _tries_and_reschedules(dag_id: str, run_id: str) -> dict[str, tuple[int, int]]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.try_number, func.count(TaskReschedule.id))
            .outerjoin(TaskReschedule, TaskReschedule.ti_id == TaskInstance.id)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .group_by(TaskInstance.task_id, TaskInstance.try_number)).all()
    return {task: (tries, reschedules) for task, tries, reschedules in rows}


def test_a_step_that_finds_another_run_writing_is_rescheduled_not_retried(
        portal: Portal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_LEDGER_BUSY_DELAY_SECONDS", "1")
    held = threading.Event()
    failed: list[BaseException] = []

    def other_run_writes() -> None:
        """Holds the integration's write lock until the run under test has met it."""
        try:
            with LedgerHook().writer(portal.integration_id, OTHER_RUN):
                held.set()
                wait_until(lambda: _busy_noted(portal), timeout=120,
                           what="the DAG run finding the write lock busy")
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failed.append(exc)
            held.set()

    holder = threading.Thread(target=other_run_writes, daemon=True)
    holder.start()
    held.wait(30)
    result = portal.run()
    holder.join(30)

    assert not failed, failed
    assert result.succeeded, result.task_states
    tries: dict[str, Any] = _tries_and_reschedules(result.dag_id, result.run_id)
    # The run's first sync step met the lock: rescheduled, on its first try still; no task
    # used a retry.
    invoices = LedgerHook().settings.get(portal.integration_id).sync_invoices
    first_step = "sync_invoices" if invoices else "sync_products"  # R-SYNC-2, R-SYNC-3
    assert {task for task, (_, rescheduled) in tries.items() if rescheduled} == {first_step}, tries
    assert all(try_number == 1 for try_number, _ in tries.values()), tries
    # The step's note that another run was writing is gone once it wrote.
    failures = portal.ledger.execute(
        "SELECT status, failures FROM ledger.sync_runs WHERE integration_id = %s "
        "AND dag_run_id = %s", [portal.integration_id, result.run_id]).fetchone()
    assert failures is not None and failures[0] == "success" and not failures[1], failures
