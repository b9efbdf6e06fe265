"""Issue 14, webhook-driven syncs, the whole chain through a real Airflow (api-server, scheduler,
LocalExecutor; tests/backfill/stack.py): a deal won in the sandbox → the sandbox's signed webhook
call → the plugin's endpoint → an asset event → the scheduler's asset-triggered run → the deal's
contract in the ledger, while the integration's schedule is yearly (its next run months away).
Then ten webhook calls within a second give one run, and calls with a tampered body, an old
timestamp or another secret are refused and start nothing.

Minutes, not seconds (Airflow's start-up, task processes on two shared CPUs): the `deployment`
marker keeps it out of the default run (`make test-deployment`). The same behaviour without a
scheduler, in the default run: tests/api/test_api_webhooks.py (the asset event and queued run),
tests/sync/test_webhook_reads.py (the run taking the events, in `dag.test()`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import requests
from backfill.stack import Stack, airflow_stack, metadata_database  # tests/backfill/stack.py
from support import use_sandbox_app
from sync.portal import CUTOFF, books, connect, truncate  # tests/sync/portal.py

from hubspot_ledger.dag_factory import dag_id_for
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.schedule import save_schedule
from hubspot_ledger.store.webhooks import READ_KEY
from hubspot_ledger.webhooks.signature import signed_headers
from hubspot_ledger_tools.sandbox.testing import SandboxServer

pytestmark = [pytest.mark.e2e, pytest.mark.deployment, pytest.mark.timeout(1800)]

T = TypeVar("T")
PRODUCT, LINE = "992000000001", "992000000002"
DEALS = [str(992000000100 + n) for n in range(11)]  # the one won, and ten of the burst
DEADLINE = 600.0


def _poll(what: str, check: Callable[[], T | None], timeout: float = DEADLINE) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:g}s: {what}")
        time.sleep(0.5)


def _metadata(stack: Stack, query: str, params: list[Any]) -> list[tuple[Any, ...]]:
    uri = stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg://",
                                                                   "postgresql://")
    with psycopg.connect(uri) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def _runs(stack: Stack, dag_id: str) -> list[tuple[str, str, str]]:
    """(run_type, state, run_id) of the DAG's runs, oldest first."""
    return [(str(r[0]), str(r[1]), str(r[2])) for r in _metadata(
        stack, "SELECT run_type, state, run_id FROM dag_run WHERE dag_id = %s ORDER BY id",
        [dag_id])]


def _settled(stack: Stack, dag_id: str) -> list[tuple[str, str, str]] | None:
    runs = _runs(stack, dag_id)
    return runs if runs and all(s in ("success", "failed") for _, s, _ in runs) else None


def _queued_asset_events(stack: Stack, dag_id: str) -> int:
    return int(_metadata(stack, "SELECT count(*) FROM asset_dag_run_queue "
                                "WHERE target_dag_id = %s", [dag_id])[0][0])


def _contract(conn: psycopg.Connection, integration_id: int, deal: str) -> Any:
    return conn.execute(
        "SELECT c.status FROM ledger.contracts c JOIN ledger.integration_records r ON "
        "r.local_id = c.id AND r.local_table = 'contracts' WHERE r.integration_id = %s AND "
        "r.remote_type = 'deal' AND r.remote_id = %s", [integration_id, deal]).fetchone()


def _portal(sb: SandboxServer) -> None:
    sb.upsert("products", {"name": "Support", "hs_sku": "SKU-LIVE"}, id=PRODUCT)
    sb.upsert("line_items", {"name": "Support", "quantity": "1", "price": "250",
                             "hs_product_id": PRODUCT}, id=LINE)
    for deal in DEALS:
        sb.upsert("deals", {"dealname": f"Deal {deal}", "dealstage": "contractsent",
                            "pipeline": "default", "deal_currency_code": "USD",
                            "closedate": "2025-05-01T00:00:00Z"}, id=deal,
                  associations={"line_items": [LINE]} if deal == DEALS[0] else None)


def test_a_deal_won_in_hubspot_lands_through_its_webhook_and_a_burst_is_one_run(
        ledger_db: str, tmp_path_factory: pytest.TempPathFactory,
        record_property: Callable[[str, object], None]) -> None:
    home = Path(tmp_path_factory.mktemp("airflow-webhook-home"))
    with pytest.MonkeyPatch.context() as mp, SandboxServer(seed=1, scale="tiny") as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(mp, sb)
        truncate(conn)
        hook = LedgerHook()
        integration_id = hook.integrations.create("Webhook Live Ltd", CUTOFF)
        books(hook, integration_id)
        connect(sb, integration_id)
        # Yearly: its catch-up run (the last year's interval) comes at once, the next in months.
        save_schedule(integration_id, "0 0 1 1 *")
        _portal(sb)
        dag_id = dag_id_for(integration_id)
        with metadata_database(ledger_db) as metadata, airflow_stack(
                home, ledger_db, sb, metadata,
                {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True"}) as stack:
            parsed = stack.airflow("dags", "reserialize")
            assert parsed.returncode == 0, parsed.stderr[-3000:]
            first = _poll("the schedule's first run", lambda: _settled(stack, dag_id))
            assert [(t, s) for t, s, _ in first] == [("scheduled", "success")], first
            assert _contract(conn, integration_id, DEALS[0]) is None  # not won yet
            url = stack.env["AIRFLOW__API__BASE_URL"] + "/api/integrations/hubspot/webhooks/"

            # 1. A deal won in HubSpot: its contract without waiting for the schedule.
            sb.subscribe(url, ["deal.propertyChange:dealstage", "deal.propertyChange:dealname"])
            started = time.monotonic()
            sb.upsert("deals", {"dealstage": "closedwon"}, id=DEALS[0])
            _poll("the won deal's contract", lambda: _contract(conn, integration_id, DEALS[0]))
            waited = time.monotonic() - started
            record_property("deal_won_to_contract_seconds", round(waited, 1))
            print(f"deal won → contract in the ledger: {waited:.1f} s")
            runs = _poll("the webhook's run to end", lambda: _settled(stack, dag_id))
            assert [(t, s) for t, s, _ in runs] == [("scheduled", "success"),
                                                    ("asset_triggered", "success")], runs
            assert sb.webhook_deliveries()[0]["status"] == 200

            # 2. Ten calls within a second: one run, which takes all ten events.
            sb.subscribe(url, ["deal.propertyChange:dealname"], webhook_batch_size=1)
            before = len(sb.webhook_deliveries())
            for n, deal in enumerate(DEALS[1:]):
                sb.upsert("deals", {"dealname": f"Renamed {n}"}, id=deal)
            calls = _poll("ten answered calls", lambda: (
                d if len(d := [x for x in sb.webhook_deliveries()[before:] if x["status"]]) >= 10
                else None))
            assert [c["status"] for c in calls] == [200] * 10
            assert sum(json.loads(c["answer"])["runs_asked"] for c in calls) == 1

            def burst_done() -> list[tuple[str, str, str]] | None:
                runs = _settled(stack, dag_id)
                state = hook.webhooks.state(integration_id)
                quiet = (state is not None and state["pending_events"] == 0
                         and _queued_asset_events(stack, dag_id) == 0)
                return runs if runs and len(runs) >= 3 and quiet else None

            runs = _poll("the burst's run to end", burst_done)
            assert [(t, s) for t, s, _ in runs[2:]] == [("asset_triggered", "success")], runs
            report = hook.runs.latest(integration_id)
            assert report is not None and report["reads"][READ_KEY]["events"] == 10

            # 3. Not the app's signature now: 401, and nothing is asked or started.
            body = json.dumps([{"portalId": sb.portal_id, "objectId": int(DEALS[1]),
                                "subscriptionType": "deal.creation"}]).encode()
            old = int(time.time() * 1000) - 6 * 60 * 1000
            for headers, sent in (
                    (signed_headers(sb.client_secret, "POST", url, body), body + b" "),
                    (signed_headers(sb.client_secret, "POST", url, body, now_ms=old), body),
                    (signed_headers("another-secret", "POST", url, body), body)):
                answer = requests.post(url, data=sent, headers=headers, timeout=30)
                assert answer.status_code == 401, answer.text
            assert _queued_asset_events(stack, dag_id) == 0
            assert len(_runs(stack, dag_id)) == 3
            state = hook.webhooks.state(integration_id)
            assert state is not None and state["pending_events"] == 0
