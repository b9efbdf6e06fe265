"""Issue 14, webhook-driven syncs, in a real DAG run (`dag.test()`): the run takes the webhook
events received before it (its branch task), and reads the deals they name by id as well as
through the search. HubSpot's search index lags behind its writes (the sandbox's `search_lag`),
so a run started seconds after a deal was won would not find it by searching; the event's deal
id makes its contract land in that very run, not an hour later."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from support import use_sandbox_app

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.run_dag import run_integration_dag
from hubspot_ledger.store.webhooks import READ_KEY
from hubspot_ledger.webhooks.events import read_batch
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .portal import CUTOFF, books, connect, truncate

pytestmark = [pytest.mark.e2e]

DEAL, LINE, PRODUCT = "991000000001", "991000000002", "991000000003"


@pytest.fixture
def synced(ledger_db: str, airflow_home: Any) -> Iterator[tuple[SandboxServer, int,
                                                               psycopg.Connection]]:
    """An integration of a tiny portal, synced once in full (its coverage starts now)."""
    with pytest.MonkeyPatch.context() as mp, SandboxServer(seed=1, scale="tiny") as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(mp, sb)
        truncate(conn)
        hook = LedgerHook()
        integration_id = hook.integrations.create("Webhook Reads Ltd", CUTOFF)
        books(hook, integration_id)
        connect(sb, integration_id)
        sb.upsert("products", {"name": "Support", "hs_sku": "SKU-WH"}, id=PRODUCT)
        sb.upsert("line_items", {"name": "Support", "quantity": "1", "price": "500",
                                 "hs_product_id": PRODUCT}, id=LINE)
        sb.upsert("deals", {"dealname": "Won a moment ago", "dealstage": "contractsent",
                            "pipeline": "default", "deal_currency_code": "USD",
                            "closedate": "2025-05-01T00:00:00Z"}, id=DEAL,
                  associations={"line_items": [LINE]})
        first = run_integration_dag(integration_id)
        assert first.succeeded, first.task_states
        yield sb, integration_id, conn


def _contract(conn: psycopg.Connection, integration_id: int) -> tuple[Any, ...] | None:
    return conn.execute(
        "SELECT c.status, c.total_amount FROM ledger.contracts c JOIN "
        "ledger.integration_records r ON r.local_id = c.id AND r.local_table = 'contracts' "
        "WHERE r.integration_id = %s AND r.remote_type = 'deal' AND r.remote_id = %s",
        [integration_id, DEAL]).fetchone()


def test_a_deal_won_seconds_ago_lands_in_the_run_its_webhook_started(
        synced: tuple[SandboxServer, int, psycopg.Connection]) -> None:
    sb, integration_id, conn = synced
    assert _contract(conn, integration_id) is None  # not won yet
    sb.update_config(search_lag=3600)  # the search shows nothing changed in the last hour
    sb.upsert("deals", {"dealstage": "closedwon"}, id=DEAL)
    # What the webhook endpoint records for HubSpot's call (api/routes_webhooks).
    batch = read_batch(f'[{{"portalId": {sb.portal_id}, "objectId": {DEAL}, '
                       f'"subscriptionType": "deal.propertyChange", '
                       f'"propertyName": "dealstage", "propertyValue": "closedwon"}}]'.encode())
    events = batch.portals[sb.portal_id]
    hook = LedgerHook()
    hook.webhooks.note(integration_id, events.count, events.deals,
                       rearm=dt.timedelta(minutes=15))
    since = sb.last_seq()

    run = run_integration_dag(integration_id)

    assert run.succeeded, run.task_states
    assert _contract(conn, integration_id) == ("draft", 500)
    # (Paths of either API family: /crm/v3/objects/deals/… or /crm/objects/<date>/deals/….)
    deal_calls = [r for r in sb.requests(since=since) if "/associations/" not in r["path"]
                  and "/deals" in r["path"]]
    assert any(r["path"].endswith("/deals/search") for r in deal_calls), deal_calls
    by_id = [r for r in deal_calls if r["path"].endswith("/deals/batch/read")]
    # Read by id (with any deal whose open problem this run retries): the search did not show
    # it, so the contract above came from this read.
    assert by_id and all(r["inputs"] >= 1 for r in by_id), deal_calls
    latest = hook.runs.latest(integration_id)
    assert latest is not None and latest["reads"][READ_KEY]["deals"] == [DEAL]
    state = hook.webhooks.state(integration_id)
    assert state is not None and state["pending_events"] == 0
    assert state["taken_by"] == run.run_id
