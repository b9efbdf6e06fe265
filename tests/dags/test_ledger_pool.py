"""The `hubspot_ledger` pool bounds the ledger connections the DAGs' tasks hold, deployment-wide
(issue 11). A task whose pool does not exist is never scheduled by Airflow 3.3 (the scheduler only
logs a warning), so the pool is created by the Airflow home's set-up and whenever an Airflow job
(scheduler, DAG processor, triggerer) starts.

Against the test Airflow home's real metadata database and the real ledger.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from airflow.dag_processing.dagbag import DagBag

from hubspot_ledger import dag_factory, ledger_pool
from hubspot_ledger.config import PROJECT_ROOT, prepare_airflow_home
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import IntegrationStatus

# The connections each task may hold (tests/sync/test_ledger_connections.py measures them);
# the light tasks (setup check, token, branch, report) take 2.
SLOTS = {"sync_invoices": 4, "sync_products": 4, "sync_companies": 4, "sync_deals": 5}


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("HUBSPOT_LEDGER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv(ledger_pool.SLOTS_ENV, raising=False)
    yield tmp_path / "state"


def pools() -> dict[str, int]:
    """Airflow's pools as its metadata database has them: name → slots."""
    from airflow.models.pool import Pool

    return {str(p.pool): p.slots for p in Pool.get_pools()}


def delete_pool() -> None:
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    with create_session() as session:
        if Pool.get_pool(ledger_pool.POOL_NAME, session=session) is not None:
            Pool.delete_pool(ledger_pool.POOL_NAME, session=session)


def set_slots(slots: int) -> None:
    """What an operator does in Admin → Pools or with `airflow pools set`."""
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    with create_session() as session:
        Pool.create_or_update_pool(ledger_pool.POOL_NAME, slots, "resized by hand",
                                   include_deferred=False, session=session)


# -- unit: the size --------------------------------------------------------------------------

@pytest.mark.unit
def test_the_pool_size_defaults_to_sixteen_sync_steps_and_follows_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert ledger_pool.pool_slots() == 10 * ledger_pool.DEALS_STEP_SLOTS == 50
    monkeypatch.setenv(ledger_pool.SLOTS_ENV, "90")
    assert ledger_pool.pool_slots() == 90
    monkeypatch.setenv(ledger_pool.SLOTS_ENV, "-1")  # Airflow's "no bound"
    assert ledger_pool.pool_slots() == -1


@pytest.mark.unit
@pytest.mark.parametrize(("value", "says"), [("lots", "must be a whole number of slots"),
                                              ("4", "the deals step needs 5 slots")])
def test_a_pool_size_that_cannot_work_is_refused_with_a_reason(
        monkeypatch: pytest.MonkeyPatch, value: str, says: str) -> None:
    monkeypatch.setenv(ledger_pool.SLOTS_ENV, value)
    with pytest.raises(ValueError, match=says):
        ledger_pool.pool_slots()


@pytest.mark.unit
def test_every_task_runs_in_the_pool_weighed_by_the_connections_it_holds() -> None:
    from hubspot_ledger.load.records import IntegrationSummary

    dag = dag_factory.build_dag(IntegrationSummary(
        id=1, organization_id=1, organization_name="Org", status="connected",
        schedule="@hourly", cutoff_date=dt.date(2025, 1, 1)))
    assert {t.task_id: (t.pool, t.pool_slots) for t in dag.tasks} == {
        t.task_id: ("hubspot_ledger", SLOTS.get(t.task_id, 2)) for t in dag.tasks}


# -- integration: Airflow's metadata database ------------------------------------------------

@pytest.mark.integration
def test_the_airflow_home_set_up_creates_the_pool_once_and_keeps_an_operators_size(
        airflow_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    delete_pool()
    (airflow_home / ".pool").unlink(missing_ok=True)
    prepare_airflow_home()
    assert pools()[ledger_pool.POOL_NAME] == 50

    set_slots(20)  # the operator resizes it
    assert ledger_pool.ensure_pool() == "kept"
    assert pools()[ledger_pool.POOL_NAME] == 20

    monkeypatch.setenv(ledger_pool.SLOTS_ENV, "60")  # the deployment's setting wins
    prepare_airflow_home()
    assert pools()[ledger_pool.POOL_NAME] == 60
    assert ledger_pool.ensure_pool() == "kept"


@pytest.mark.integration
def test_an_airflow_job_starting_recreates_a_deleted_pool(airflow_home: Path) -> None:
    """The scheduler, DAG processor and triggerer are Airflow jobs: the plugin's listener makes
    the pool exist as any of them starts, whatever the deployment's own set-up did."""
    from airflow.jobs.job import Job

    delete_pool()
    assert ledger_pool.POOL_NAME not in pools()
    Job()  # what `airflow scheduler` (and the other jobs) construct first
    assert pools()[ledger_pool.POOL_NAME] == 50


@pytest.mark.e2e
def test_every_task_of_a_real_run_took_its_slots_in_the_existing_pool(
        ledger: psycopg.Connection, airflow_home: Path, books: Callable[..., int]) -> None:
    integration_id = books("Acme Corp", configured=True)
    # A short run (it stops at validate_setup): Airflow creates every task's instance anyway.
    LedgerHook().integrations.set_status(integration_id, IntegrationStatus.ERROR, "revoked")
    known = set(pools())
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"), known_pools=known)
    assert bag.import_errors == {}
    # Airflow's own check of the pools a DAG's tasks name against those that exist.
    assert bag.dag_warnings == set()
    bare = DagBag(dag_folder=str(PROJECT_ROOT / "dags"), known_pools={"default_pool"})
    assert [w.message for w in bare.dag_warnings] == [
        f"Dag 'hubspot_sync__integration_{integration_id}' references non-existent pools: "
        "['hubspot_ledger']"]

    dag = bag.dags[dag_factory.dag_id_for(integration_id)]
    when = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)
    run = dag.test(run_after=when, logical_date=when)
    taken: dict[str, Any] = {ti.task_id: (ti.pool, ti.pool_slots)
                             for ti in run.get_task_instances()}
    assert taken == {t: ("hubspot_ledger", SLOTS.get(t, 2)) for t in dag.task_ids}
