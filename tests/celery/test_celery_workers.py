"""Celery for real (issue 15, item 7): the integrations' DAGs on two Celery workers.

A real deployment (tools/hubspot_ledger_tools/deployment.py): its own PostgreSQL metadata
database, the api-server, the DAG processor, the scheduler with CeleryExecutor, Redis as the
broker and two `airflow celery worker`s. Four organizations sync at once, two per HubSpot portal,
so each portal's request budget is shared by tasks running on both workers. What a user would
notice: HubSpot never answered 429, every task ran on one of the two workers (the hostname the
metadata database records), and each ledger equals what a sequential sync of the same portal
makes.

Slow (Airflow's start-up alone is about a minute): excluded from the default `pytest` run;
`make test-celery` runs it.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
from support import use_sandbox_app
from sync.ledger_view import differences, view  # tests/sync/ledger_view.py

from hubspot_ledger.crypto import KEYS_ENV
from hubspot_ledger.sync.run_report import settle_run
from hubspot_ledger.sync.runner import run_step
from hubspot_ledger_tools.deployment import Deployment, DeploymentSettings
from hubspot_ledger_tools.fleet_portals import add_portals, connected_integration, dag_id
from hubspot_ledger_tools.sandbox.testing import SandboxServer

pytestmark = [pytest.mark.e2e, pytest.mark.celery, pytest.mark.deployment, pytest.mark.timeout(900)]

CUTOFF = dt.date(2020, 1, 1)
WORKERS = ("worker1", "worker2")
ORGANIZATIONS_PER_PORTAL = 2
STEPS = ("invoices", "products", "companies", "deals")
# validate_setup, refresh_token, the invoice branch, the four steps, report (invoice sync on)
TASKS_PER_RUN = 8
DEPLOYMENT_ENV = ("AIRFLOW_CONN_LEDGER_DEFAULT", "AIRFLOW_CONN_HUBSPOT_DEFAULT", KEYS_ENV,
                  "HUBSPOT_LEDGER_RETRY_DELAY_SECONDS")


@pytest.fixture
def sandbox(ledger: psycopg.Connection) -> Iterator[SandboxServer]:
    """HubSpot's own rate limits (110 requests / 10 s, search 5 / s) on every portal."""
    with pytest.MonkeyPatch.context() as mp, SandboxServer(seed=1, scale="tiny") as sb:
        use_sandbox_app(mp, sb)
        yield sb


def _sync_sequentially(integration_id: int) -> None:
    """The same steps as the DAG, one after the other in this process."""
    run = f"sequential-{uuid.uuid4().hex[:8]}"
    for step in STEPS:
        run_step(step, integration_id, run)
    ok, report = settle_run(integration_id, run)
    assert ok, report


def test_integrations_sync_at_once_on_two_celery_workers_as_sequential_syncs_do(
        sandbox: SandboxServer, ledger: psycopg.Connection) -> None:
    portals = add_portals(sandbox, 2, "small", first_id=71_001, seed=21)
    lived = {connected_integration(f"Celery {p} {n}", p, CUTOFF): p
             for p in portals for n in range(ORGANIZATIONS_PER_PORTAL)}
    dags = [dag_id(i) for i in lived]
    first_request = sandbox.last_seq()
    env = {k: os.environ[k] for k in DEPLOYMENT_ENV if k in os.environ}

    with Deployment(DeploymentSettings(executor="CeleryExecutor", celery_workers=len(WORKERS),
                                       worker_concurrency=2, parallelism=8, name="celery"),
                    env=env) as airflow:
        airflow.wait_for_dags(dags)
        assert airflow.set_paused(False) == len(dags)  # one request: all start together
        runs = airflow.wait_for_runs(dags, timeout=600)
        airflow.set_paused(True)  # no further scheduled runs while the test looks
        tasks = [t for t in airflow.task_runs(dags) if (t.dag_id, t.run_id) in {
            (r.dag_id, r.run_id) for r in runs.values()}]

    assert {d: r.state for d, r in runs.items()} == dict.fromkeys(dags, "success")
    ran = [t for t in tasks if t.state == "success"]
    assert len(ran) == TASKS_PER_RUN * len(dags)  # every task of every run
    assert {t.hostname for t in ran} == set(WORKERS), Counter(t.hostname for t in ran)
    # Runs overlapped: each DAG's run started before another one ended.
    starts = sorted(r.start for r in runs.values() if r.start)
    assert starts[-1] < min(r.end for r in runs.values() if r.end)

    requests = sandbox.requests(since=first_request)
    assert {r["portal_id"] for r in requests} >= set(portals)
    assert [r for r in requests if r["status"] == 429] == []

    fresh = {p: connected_integration(f"Sequential {p}", p, CUTOFF) for p in portals}
    for integration_id in fresh.values():
        _sync_sequentially(integration_id)
    for integration_id, portal in lived.items():
        assert differences(view(ledger, integration_id), view(ledger, fresh[portal])) == []
        assert view(ledger, integration_id)["contracts"]  # a real comparison, not two empties
