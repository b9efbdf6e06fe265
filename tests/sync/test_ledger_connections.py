"""The ledger connections each task of a real run holds at once, against the slots it takes in
the `hubspot_ledger` pool (ledger_pool, issue 11 item 5): the pool bounds the deployment's ledger
sessions only if no task holds more connections than it weighs. The bench's fleet found it did
not: 64 sessions for 16 running tasks in a pool of 48 slots (3 per sync step, 1 per other task).

A sampler thread reads `pg_stat_activity` of this run's ledger database every few milliseconds
and charges each session opened since the run began to the task running at that moment.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from hubspot_ledger.sync import runner

from .portal import Portal

pytestmark = pytest.mark.e2e


class SessionSampler(threading.Thread):
    """Peak sessions on `database` per task, leaving out those open when it started."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.task: str | None = None
        self.peaks: dict[str, int] = {}
        self.samples: dict[str, int] = {}
        self._done = threading.Event()
        self._ready = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            before = {pid for (pid,) in conn.execute(query)}
            self._ready.set()
            while not self._done.wait(0.002):
                task = self.task
                if task is None:
                    continue
                opened = {pid for (pid,) in conn.execute(query)} - before
                self.peaks[task] = max(self.peaks.get(task, 0), len(opened))
                self.samples[task] = self.samples.get(task, 0) + 1

    def __enter__(self) -> SessionSampler:
        self.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.join(10)


@pytest.fixture
def sampler(portal: Portal, ledger_db: str, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[SessionSampler]:
    """Every task body enters `runner.attend` first: the sampler learns which task runs."""
    from airflow.sdk import get_current_context

    attend = runner.attend

    @contextlib.contextmanager
    def attended(integration_id: int, dag_run_id: str) -> Iterator[None]:
        sampling.task = get_current_context()["ti"].task_id
        try:
            with attend(integration_id, dag_run_id):
                yield
        finally:
            sampling.task = None

    with SessionSampler(ledger_db) as sampling:
        monkeypatch.setattr(runner, "attend", attended)
        yield sampling


def test_no_task_holds_more_ledger_connections_than_its_pool_slots(
        portal: Portal, sampler: SessionSampler) -> None:
    """A first sync with invoices on: every step reads, stages and writes. The run's liveness
    lock is held by the caller for the whole run here (`hubspot-ledger sync`), where a worker
    holds it per task: opened after the sampler started, it is charged to every task, as a
    worker's would be."""
    from airflow.dag_processing.dagbag import DagBag

    from hubspot_ledger import dag_factory
    from hubspot_ledger.config import PROJECT_ROOT

    portal.set_invoices(True)
    result = portal.run()
    assert result.succeeded, result.task_states

    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags")).dags[
        dag_factory.dag_id_for(portal.integration_id)]
    slots: dict[str, Any] = {t.task_id: t.pool_slots for t in dag.tasks}
    assert set(sampler.samples) == set(slots), ("tasks never sampled", sampler.samples)
    held = {task: (sampler.peaks[task], slots[task]) for task in slots}
    assert all(peak <= weight for peak, weight in held.values()), sorted(held.items())
    # The sync steps do hold several at once (the sampler sees them).
    assert max(sampler.peaks[t] for t in dag_factory.SYNC_STEPS) >= 3, held
