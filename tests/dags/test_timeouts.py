"""Bounded waiting (issue 13): every task of every integration's DAG has an execution_timeout,
and the DAG a dagrun_timeout, so no hung call can hold a tenant (whose runs never overlap).

Parsed by a real `DagBag` from the project's `dags/` folder against the real ledger.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from airflow.dag_processing.dagbag import DagBag

from hubspot_ledger import dag_factory
from hubspot_ledger.config import PROJECT_ROOT
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import IntegrationSummary

SYNC_STEPS = {"sync_invoices", "sync_products", "sync_companies", "sync_deals"}


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("HUBSPOT_LEDGER_STATE_DIR", str(tmp_path / "state"))
    yield tmp_path / "state"


@pytest.mark.integration
def test_every_task_has_an_execution_timeout_and_every_dag_a_dagrun_timeout(
        ledger: psycopg.Connection) -> None:
    hook = LedgerHook()
    for name in ("Acme Corp", "Globex"):
        hook.integrations.create(name, dt.date(2025, 1, 1))
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    assert bag.import_errors == {}
    dags = {k: v for k, v in bag.dags.items() if k.startswith(dag_factory.DAG_ID_PREFIX)}
    assert len(dags) == 2
    for dag in dags.values():
        assert dag.dagrun_timeout == dt.timedelta(hours=6)
        assert len(dag.tasks) == 8
        for task in dag.tasks:
            assert task.execution_timeout is not None, task.task_id
            expected = dt.timedelta(hours=2) if task.task_id in SYNC_STEPS else \
                dt.timedelta(minutes=15)
            assert task.execution_timeout == expected, task.task_id
            # A step can never outlast the run it belongs to.
            assert task.execution_timeout < dag.dagrun_timeout


@pytest.mark.unit
def test_the_time_outs_are_overridable_by_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_LEDGER_STEP_TIMEOUT_SECONDS", "30")
    monkeypatch.setenv("HUBSPOT_LEDGER_TASK_TIMEOUT_SECONDS", "5")
    monkeypatch.setenv("HUBSPOT_LEDGER_DAGRUN_TIMEOUT_SECONDS", "120")
    dag = dag_factory.build_dag(IntegrationSummary(
        id=1, organization_id=1, organization_name="Org", status="connected",
        schedule="@hourly", cutoff_date=dt.date(2025, 1, 1)))
    assert dag.dagrun_timeout == dt.timedelta(seconds=120)
    assert {t.task_id: t.execution_timeout.total_seconds() for t in dag.tasks
            if t.execution_timeout is not None} == {
        t.task_id: 30.0 if t.task_id in SYNC_STEPS else 5.0 for t in dag.tasks}
