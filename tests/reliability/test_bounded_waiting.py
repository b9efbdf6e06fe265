"""Bounded waiting (issue 13, point 4): a slow or misbehaving HubSpot never holds a tenant for
long, and a run that is stopped or killed never stays `running`.

Nothing is mocked: HubSpot is the sandbox over HTTP (its fault injection plays the misbehaving
server), the ledger is this run's PostgreSQL database, `hubspot-ledger sync` runs as a real
process and gets real signals. Deadlines are shortened through the environment variables an
operator would use.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from support import StaticToken, logged, seconds_between

from hubspot_ledger.crypto import KEYS_ENV
from hubspot_ledger.hooks.hubspot import HubSpotHook, HubSpotTemporaryError
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.ratelimit import PortalRateLimiter
from hubspot_ledger.sync.runner import settle_interrupted_runs
from hubspot_ledger_tools.fault_matrix import new_integration, sandbox_app
from hubspot_ledger_tools.sandbox.testing import SandboxServer

PRODUCTS = "/crm/v3/objects/products"
CLI = Path(sys.executable).with_name("hubspot-ledger")
OTHER_PORTAL = 8080


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(seed=3, scale="tiny") as server, sandbox_app(server):
        yield server


@pytest.fixture
def sb(sandbox_server: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    sandbox_server.reset()
    monkeypatch.setenv(KEYS_ENV, KEY)
    return sandbox_server


KEY = Fernet.generate_key().decode()


def hook_for(sb: SandboxServer, portal_id: int | None = None) -> HubSpotHook:
    token = sb.issue_tokens(portal_id=portal_id)["access_token"]
    limiter = PortalRateLimiter(str(portal_id or sb.portal_id), LedgerHook()._connect)
    return HubSpotHook(token_source=StaticToken(token), limiter=limiter)


def held(ledger: psycopg.Connection, portal_id: int, kind: str = "general") -> float:
    """Seconds from now that the portal's budget holds every caller back (0: none)."""
    row = ledger.execute("SELECT coalesce(held_until - extract(epoch FROM clock_timestamp()), 0)"
                         " FROM ledger.hubspot_rate_buckets WHERE portal_id = %s AND bucket = %s",
                         [str(portal_id), kind]).fetchone()
    assert row is not None
    return max(float(row[0]), 0.0)


# -- Retry-After --------------------------------------------------------------------------------


@pytest.mark.integration
def test_retry_after_a_day_fails_the_request_fast_and_never_poisons_the_portal_budget(
        ledger: psycopg.Connection, sb: SandboxServer) -> None:
    """The red team's finding: `Retry-After: 86400` was obeyed and drove the shared budget to
    −345,600 (a day at 4/s). Now the request fails at once as temporary (Airflow retries the
    task later), and the portal's other callers wait the cap at most."""
    sb.add_portal(portal_id=OTHER_PORTAL)
    hook, other = hook_for(sb), hook_for(sb, OTHER_PORTAL)
    other.request("GET", PRODUCTS, params={"limit": 1})
    sb.add_fault(status=429, path=PRODUCTS, portal_id=sb.portal_id, nth=1,
                 headers={"Retry-After": "86400"})

    with pytest.raises(HubSpotTemporaryError, match=r"asked to wait 86400s \(Retry-After\), "
                                                    r"longer than the 60s a sync waits"):
        hook.request("GET", PRODUCTS, params={"limit": 1})
    assert len(sb.requests(endpoint=f"GET {PRODUCTS}", portal_id=sb.portal_id)) == 1  # no retry
    # The portal is held back for the cap (60 s), not for a day.
    assert 50 <= held(ledger, sb.portal_id) <= 60
    # Another portal is untouched: nothing holds it back, so its next call does not wait.
    assert held(ledger, OTHER_PORTAL) == 0
    assert other.request("GET", PRODUCTS, params={"limit": 1})["results"]


@pytest.mark.integration
def test_after_a_retry_after_of_a_day_the_same_portal_is_served_again_within_the_cap(
        ledger: psycopg.Connection, sb: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_LEDGER_RETRY_AFTER_CAP", "2")
    hook = hook_for(sb)
    sb.add_fault(status=429, path=PRODUCTS, nth=1, headers={"Retry-After": "86400"})
    with pytest.raises(HubSpotTemporaryError, match="longer than the 2s a sync waits"):
        hook.request("GET", PRODUCTS, params={"limit": 1})
    body = hook_for(sb).request("GET", PRODUCTS, params={"limit": 1})  # another task, say
    assert body["results"]
    refused, served = logged(sb, f"GET {PRODUCTS}")[-2:]
    assert (refused["status"], served["status"]) == (429, 200)
    # Held back for the 2 s cap (the budget refills on the way), as HubSpot saw the calls; a
    # day's wait would never end (the test's time-out).
    assert seconds_between(refused, served) >= 1.0


@pytest.mark.integration
def test_a_budget_poisoned_by_an_earlier_version_heals_at_the_next_call(
        ledger: psycopg.Connection, sb: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hold of a day left in the table (the old behaviour's −345,600 tokens) is clamped to
    the cap, not waited out."""
    monkeypatch.setenv("HUBSPOT_LEDGER_RETRY_AFTER_CAP", "1")
    ledger.execute("INSERT INTO ledger.hubspot_rate_buckets (portal_id, bucket, tokens, "
                   "updated_at, held_until) VALUES (%s, 'search', -345600, now(), "
                   "extract(epoch FROM now()) + 86400)", [str(sb.portal_id)])
    limiter = PortalRateLimiter(str(sb.portal_id), LedgerHook()._connect)
    limiter.acquire("/crm/v3/objects/deals/search")  # waiting a day out would never end
    assert held(ledger, sb.portal_id, "search") <= 1
    limiter.close()


@pytest.mark.integration
def test_a_retry_after_within_the_cap_is_still_waited_out(ledger: psycopg.Connection,
                                                          sb: SandboxServer) -> None:
    hook = hook_for(sb)
    sb.add_fault(status=503, path=PRODUCTS, nth=1, headers={"Retry-After": "1"})
    assert hook.request("GET", PRODUCTS, params={"limit": 1})["results"]
    unavailable, retried = logged(sb, f"GET {PRODUCTS}")
    assert (unavailable["status"], retried["status"]) == (503, 200)
    assert seconds_between(unavailable, retried) >= 1.0  # the Retry-After, as HubSpot saw it


# -- a total deadline per response ---------------------------------------------------------------


@pytest.mark.integration
def test_a_dripping_response_is_abandoned_at_its_deadline_and_retried(
        ledger: psycopg.Connection, sb: SandboxServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """One byte every 0.3 s never trips the read time-out (60 s), so the answer would take
    minutes; the total deadline cuts it, and the retry gets a normal answer."""
    monkeypatch.setenv("HUBSPOT_LEDGER_RESPONSE_DEADLINE", "1.5")
    hook = hook_for(sb)
    sb.add_fault(action="drip", drip_interval=0.3, path=PRODUCTS, nth=1)
    with caplog.at_level(logging.WARNING, logger="hubspot_ledger.hooks.hubspot"):
        body = hook.request("GET", PRODUCTS, params={"limit": 10})
    assert body["results"]  # a whole, normal answer
    assert "no complete answer within 1.5s" in caplog.text
    dripped, retried = logged(sb, f"GET {PRODUCTS}")
    assert dripped["fault"] and not retried["fault"]
    assert seconds_between(dripped, retried) >= 1.5  # abandoned at the deadline, not before


@pytest.mark.integration
def test_a_dripping_token_endpoint_is_abandoned_too(ledger: psycopg.Connection,
                                                     sb: SandboxServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_LEDGER_RESPONSE_DEADLINE", "1")
    refresh = sb.issue_tokens()["refresh_token"]
    sb.add_fault(action="drip", drip_interval=0.3, endpoint="POST /oauth/v3/token", nth=1)
    grant = HubSpotHook().refresh_tokens(refresh)
    assert grant.access_token
    dripped, retried = logged(sb, "POST /oauth/v3/token")
    assert dripped["fault"] and not retried["fault"]
    assert seconds_between(dripped, retried) >= 1.0  # abandoned at the deadline, not before


@pytest.mark.integration
def test_a_dripping_response_on_every_try_fails_the_request_as_temporary(
        ledger: psycopg.Connection, sb: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """HubSpot drips on every token request: the hook's 4 tries each end at the deadline,
    then the call fails as temporary (the integration stays connected; Airflow retries)."""
    monkeypatch.setenv("HUBSPOT_LEDGER_RESPONSE_DEADLINE", "0.5")
    refresh = sb.issue_tokens()["refresh_token"]
    sb.add_fault(action="drip", drip_interval=0.3, endpoint="POST /oauth/v3/token")
    with pytest.raises(HubSpotTemporaryError, match="no complete answer within 0.5s"):
        HubSpotHook().refresh_tokens(refresh)
    tries = logged(sb, "POST /oauth/v3/token")
    assert len(tries) == 4 and all(t["fault"] for t in tries)  # then it gave up


# -- runs that can no longer finish ---------------------------------------------------------------


def running_row(ledger: psycopg.Connection, integration_id: int, dag_run_id: str) -> int:
    row = ledger.execute("INSERT INTO ledger.sync_runs (integration_id, dag_run_id) "
                         "VALUES (%s, %s) RETURNING id", [integration_id, dag_run_id]).fetchone()
    assert row is not None
    return int(row[0])


def run_row(ledger: psycopg.Connection, integration_id: int, dag_run_id: str
            ) -> tuple[str, str | None]:
    row = ledger.execute("SELECT status, message FROM ledger.sync_runs WHERE integration_id = %s"
                         " AND dag_run_id = %s", [integration_id, dag_run_id]).fetchone()
    assert row is not None
    return row[0], row[1]


@pytest.mark.integration
def test_the_killed_run_rule_spares_live_and_concurrent_runs(
        ledger: psycopg.Connection, books: Any) -> None:
    """Only rows that no run can finish are settled: not a backfill window whose DAG run
    Airflow still runs (between two tasks, it holds no lock), not a run whose process holds its
    liveness lock, not the current run."""
    integration_id = books("Killed-run rule")
    airflow = {"backfill__2025-01-01T00:00:00+00:00": "running",
               "backfill__2025-01-02T00:00:00+00:00": "queued",
               "scheduled__2025-01-03T00:00:00+00:00": "failed",  # timed out before its report
               "manual__2025-01-04T00:00:00+00:00": "success",
               "manual__2025-01-05T00:00:00+00:00": "gone",  # its hubspot-ledger sync died
               "manual__2025-01-06T00:00:00+00:00": "failed",  # but its process is alive
               "manual__2025-01-07T00:00:00+00:00": "running"}  # the current run
    for run in [*airflow, "manual__2024-12-31T00:00:00+00:00"]:  # the last: no such DAG run
        running_row(ledger, integration_id, run)
    current = "manual__2025-01-07T00:00:00+00:00"
    with LedgerHook().locks.run_alive(integration_id, "manual__2025-01-06T00:00:00+00:00"):
        settled = settle_interrupted_runs(integration_id, current, airflow.get)
    assert sorted(settled) == ["manual__2024-12-31T00:00:00+00:00",
                               "manual__2025-01-04T00:00:00+00:00",
                               "manual__2025-01-05T00:00:00+00:00",
                               "scheduled__2025-01-03T00:00:00+00:00"]
    status = {run: run_row(ledger, integration_id, run) for run in airflow}
    for run in ("backfill__2025-01-01T00:00:00+00:00", "backfill__2025-01-02T00:00:00+00:00",
                "manual__2025-01-06T00:00:00+00:00", current):
        assert status[run] == ("running", None), run
    status_, message = run_row(ledger, integration_id, "manual__2025-01-05T00:00:00+00:00")
    assert status_ == "failed" and message is not None
    assert message.startswith("interrupted: the `hubspot-ledger sync` process running it "
                              "stopped without finishing it")
    assert f"the next run ({current}) took over" in message
    assert "timed out" in (run_row(ledger, integration_id,
                                   "scheduled__2025-01-03T00:00:00+00:00")[1] or "")


# -- hubspot-ledger sync: SIGTERM and SIGKILL ------------------------------------------------------


@pytest.fixture
def slow_sync(ledger: psycopg.Connection, sb: SandboxServer, airflow_home: Path
              ) -> Iterator[tuple[int, dict[str, str]]]:
    """A connected integration (a DAG id of its own: the test Airflow home outlives this
    ledger) whose HubSpot answers every CRM call 0.4 s late, and the environment of its CLI."""
    integration_id = new_integration(sb, f"Bounded {uuid.uuid4().hex[:8]}")
    sb.set_faults([{"action": "delay", "delay": 0.4, "path": "/crm/*"}])
    env = {**os.environ, "HUBSPOT_LEDGER_RETRY_DELAY_SECONDS": "1"}
    yield integration_id, env
    sb.clear_faults()


def start_sync(integration_id: int, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([str(CLI), "sync", "--integration", str(integration_id)],  # noqa: S603
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_syncing(ledger: psycopg.Connection, sb: SandboxServer, integration_id: int,
                       process: subprocess.Popen[str], timeout: float = 90) -> str:
    """The DAG run id, once its row exists and a sync step is reading HubSpot."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        row = ledger.execute("SELECT dag_run_id FROM ledger.sync_runs WHERE integration_id = %s"
                             " AND status = 'running'", [integration_id]).fetchone()
        if row is not None and any(r["endpoint"].endswith("/search") for r in sb.requests()):
            return str(row[0])
        time.sleep(0.1)
    raise AssertionError("the sync never started reading HubSpot")


def airflow_state(dag_run_id: str) -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        state = session.scalar(select(DagRun.state).where(DagRun.run_id == dag_run_id))
    return str(getattr(state, "value", state))


@pytest.mark.e2e
def test_sigterm_stops_hubspot_ledger_sync_at_once_and_marks_its_run_failed(
        ledger: psycopg.Connection, sb: SandboxServer,
        slow_sync: tuple[int, dict[str, str]]) -> None:
    integration_id, env = slow_sync
    process = start_sync(integration_id, env)
    try:
        dag_run_id = wait_until_syncing(ledger, sb, integration_id, process)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)  # about a second: Airflow's import to settle it
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM
    last = err.strip().splitlines()[-1]
    assert last == (f"hubspot-ledger: sync of integration {integration_id} stopped by SIGTERM: "
                    f"run {dag_run_id} marked failed")
    status, message = run_row(ledger, integration_id, dag_run_id)
    assert status == "failed"
    assert message == ("stopped: hubspot-ledger sync received SIGTERM and stopped this run "
                       "before it finished")
    assert airflow_state(dag_run_id) == "failed"
    assert not LedgerHook().locks.run_is_alive(integration_id, dag_run_id)  # no process left behind


@pytest.mark.e2e
def test_a_sync_killed_outright_is_marked_failed_by_the_next_run(
        ledger: psycopg.Connection, sb: SandboxServer,
        slow_sync: tuple[int, dict[str, str]]) -> None:
    from hubspot_ledger.run_dag import run_integration_dag

    integration_id, env = slow_sync
    process = start_sync(integration_id, env)
    try:
        killed = wait_until_syncing(ledger, sb, integration_id, process)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    finally:
        process.kill()
    # Nothing could mark it: it stays `running` until the next run. Its DAG-running child
    # followed its parent, so no process attends the run any more.
    deadline = time.monotonic() + 10
    while LedgerHook().locks.run_is_alive(integration_id, killed) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not LedgerHook().locks.run_is_alive(integration_id, killed)
    assert run_row(ledger, integration_id, killed) == ("running", None)

    sb.clear_faults()
    result = run_integration_dag(integration_id)
    assert result.succeeded, result.task_states
    status, message = run_row(ledger, integration_id, killed)
    assert status == "failed"
    assert message == ("interrupted: the `hubspot-ledger sync` process running it stopped "
                       f"without finishing it (killed?); the next run ({result.run_id}) took "
                       "over and marked it failed")
    assert airflow_state(killed) == "failed"
    assert run_row(ledger, integration_id, result.run_id)[0] == "success"


@pytest.mark.e2e
def test_a_scheduled_run_settles_a_row_whose_dag_run_airflow_no_longer_has(
        ledger: psycopg.Connection, sb: SandboxServer, airflow_home: Path) -> None:
    """The task path (no `hubspot-ledger sync`): the branch task asks Airflow through the Task
    SDK about the other `running` rows: one whose DAG run Airflow does not know (deleted, or
    timed out and cleaned up) is settled; one whose DAG run is finished too."""
    from airflow.dag_processing.dagbag import DagBag

    from hubspot_ledger.config import PROJECT_ROOT
    from hubspot_ledger.run_dag import find_dag_id

    integration_id = new_integration(sb, f"Task path {uuid.uuid4().hex[:8]}")
    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags")).dags[find_dag_id(integration_id)]
    # Logical dates of their own: with none, dag.test() would delete the first DAG run.
    first = dag.test(logical_date=dt.datetime.now(dt.UTC))
    assert str(first.state) == "success"
    # The first run's report never ran, say: its row is `running` again.
    ledger.execute("UPDATE ledger.sync_runs SET status = 'running', finished_at = NULL, "
                   "message = NULL WHERE dag_run_id = %s", [first.run_id])
    running_row(ledger, integration_id, "scheduled__2020-01-01T00:00:00+00:00")
    second = dag.test(logical_date=dt.datetime.now(dt.UTC))
    assert str(second.state) == "success"
    status, message = run_row(ledger, integration_id, "scheduled__2020-01-01T00:00:00+00:00")
    assert status == "failed" and message is not None
    assert message.startswith("interrupted: Airflow has no such DAG run any more")
    status, message = run_row(ledger, integration_id, first.run_id)
    assert status == "failed" and message is not None
    assert message.startswith("interrupted: its DAG run ended without settling it")



@pytest.mark.e2e
def test_a_hung_step_is_stopped_by_its_execution_timeout_and_the_run_says_so(
        ledger: psycopg.Connection, sb: SandboxServer, airflow_home: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """HubSpot takes 2.5 s per search, the step may take 1: Airflow stops it (and its retries),
    the report fails the run naming the time-out."""
    from hubspot_ledger.run_dag import run_integration_dag

    monkeypatch.setenv("HUBSPOT_LEDGER_STEP_TIMEOUT_SECONDS", "1")
    integration_id = new_integration(sb, f"Hung {uuid.uuid4().hex[:8]}")
    sb.set_faults([{"action": "delay", "delay": 2.5, "endpoint": "POST */search"}])
    result = run_integration_dag(integration_id)
    assert result.task_states["sync_invoices"] == "failed", result.task_states
    assert result.state == "failed"
    status, message = run_row(ledger, integration_id, result.run_id)
    assert status == "failed" and message is not None
    assert message.startswith("invoices: timed out after 0:00:01")
