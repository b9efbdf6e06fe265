"""Issue 14, webhook-driven syncs, on a real api-server: the sandbox's signed webhook calls
(HubSpot's, for a change in a portal) reach `POST /webhooks/`, which asks Airflow for a run of
the DAG of each integration connected to that portal — an event of its HubSpot changes asset,
queued for the DAG (`GET /api/v2/dags/{id}/assets/queuedEvents`, what the scheduler turns into
one asset-triggered run). A burst of ten calls within a second asks once. A call with a changed
body, an old timestamp or another app's secret is 401 and nothing is recorded or asked.

No scheduler runs here (tests/webhooks has the whole chain, with the `deployment` marker)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import requests
from support import wait_until

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import IntegrationStatus
from hubspot_ledger.webhooks.asset import asset_name
from hubspot_ledger.webhooks.signature import signed_headers
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .helpers import PREFIX, AirflowApi

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

OTHER_PORTAL = 70_000


@pytest.fixture
def sb(airflow_api: AirflowApi, sandbox: SandboxServer) -> Iterator[SandboxServer]:
    """The session's sandbox (the api-server's HubSpot app), reset, with a second portal."""
    sandbox.add_portal(portal_id=OTHER_PORTAL, seed=2, scale="tiny")
    yield sandbox


def _webhook_url(api: AirflowApi) -> str:
    return f"{api.url}{PREFIX}/webhooks/"


def _connected(books: Callable[..., int], organization: str, portal: int) -> int:
    integration_id = books(organization, configured=True)
    ledger = LedgerHook()
    with ledger.session() as conn:
        conn.execute("UPDATE ledger.integrations SET remote_id = %s WHERE id = %s",
                     [str(portal), integration_id])
    ledger.integrations.set_status(integration_id, IntegrationStatus.CONNECTED)
    return integration_id


def _asset_events(api: AirflowApi, integration_id: int) -> list[dict[str, Any]]:
    assets = api.call("GET", "/api/v2/assets", user="admin",
                      params={"name_pattern": asset_name(integration_id)}).json()["assets"]
    assert [a["name"] for a in assets] == [asset_name(integration_id)], assets
    events = api.call("GET", "/api/v2/assets/events", user="admin",
                      params={"asset_id": assets[0]["id"]})
    assert events.status_code == 200, events.text
    return list(events.json()["asset_events"])


def _queued(api: AirflowApi, integration_id: int) -> list[dict[str, Any]]:
    dag_id = f"hubspot_sync__integration_{integration_id}"
    found = api.call("GET", f"/api/v2/dags/{dag_id}/assets/queuedEvents", user="admin")
    if found.status_code == 404:  # Airflow answers 404 when none is queued
        return []
    assert found.status_code == 200, found.text
    return list(found.json()["queued_events"])


def _deliveries(sb: SandboxServer, count: int) -> list[dict[str, Any]]:
    def answered() -> list[dict[str, Any]] | None:
        found = [d for d in sb.webhook_deliveries() if d["status"] is not None
                 or d["error"] is not None]
        return found if len(found) >= count else None
    return wait_until(answered, timeout=30, what=f"{count} webhook call(s) answered")


def _deal(sb: SandboxServer, portal: int | None = None) -> int:
    return int(sb.upsert("deals", {"dealname": "Webhook deal", "dealstage": "contractsent",
                                   "amount": "100"}, portal_id=portal)["id"])


def test_a_deal_won_in_a_portal_asks_for_a_run_of_its_integrations_only(
        airflow_api: AirflowApi, sb: SandboxServer, books: Callable[..., int],
        ledger: psycopg.Connection) -> None:
    ours = _connected(books, "Webhook Org", sb.portal_id)
    theirs = _connected(books, "Other Portal Org", OTHER_PORTAL)
    airflow_api.reserialize()
    deal = _deal(sb)
    sb.subscribe(_webhook_url(airflow_api), ["deal.propertyChange:dealstage"])

    sb.upsert("deals", {"dealstage": "closedwon"}, id=deal)

    (delivery,) = _deliveries(sb, 1)
    assert delivery["status"] == 200, delivery
    assert json.loads(delivery["answer"]) == {"received": 1, "skipped": 0, "runs_asked": 1}
    (event,) = _asset_events(airflow_api, ours)
    assert event["extra"] == {"source": "hubspot webhook", "events": 1}
    assert len(_queued(airflow_api, ours)) == 1  # the scheduler's next loop runs the DAG
    assert _asset_events(airflow_api, theirs) == [] and _queued(airflow_api, theirs) == []
    state = LedgerHook().webhooks.state(ours)
    assert state is not None and (state["pending_events"], list(state["pending_deals"])) == (
        1, [str(deal)])
    assert LedgerHook().webhooks.state(theirs) is None
    assert sb.client_secret not in airflow_api.log.read_text(errors="replace")


def test_ten_events_within_a_second_ask_for_one_run(
        airflow_api: AirflowApi, sb: SandboxServer, books: Callable[..., int],
        ledger: psycopg.Connection) -> None:
    integration_id = _connected(books, "Burst Org", sb.portal_id)
    airflow_api.reserialize()
    deals = [_deal(sb) for _ in range(10)]
    # One call per event: ten calls, as a burst of separate edits in HubSpot makes.
    sb.subscribe(_webhook_url(airflow_api), ["deal.propertyChange:dealname"],
                 webhook_batch_size=1)
    for n, deal in enumerate(deals):
        sb.upsert("deals", {"dealname": f"Edited {n}"}, id=deal)

    deliveries = _deliveries(sb, 10)
    assert [d["status"] for d in deliveries] == [200] * 10
    span = (deliveries[-1]["time"] - deliveries[0]["time"]) / 1000
    assert sum(json.loads(d["answer"])["runs_asked"] for d in deliveries) == 1, span
    assert len(_asset_events(airflow_api, integration_id)) == 1
    assert len(_queued(airflow_api, integration_id)) == 1
    state = LedgerHook().webhooks.state(integration_id)
    assert state is not None and state["pending_events"] == 10
    assert sorted(state["pending_deals"]) == sorted(str(d) for d in deals)


def _post(api: AirflowApi, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(_webhook_url(api), data=body, timeout=30,
                         headers={"Content-Type": "application/json", **headers})


ATTACKS = ("tampered body", "old timestamp", "wrong secret", "no signature")


def test_a_call_not_signed_by_the_app_now_is_401_and_nothing_starts(
        airflow_api: AirflowApi, sb: SandboxServer, books: Callable[..., int],
        ledger: psycopg.Connection) -> None:
    integration_id = _connected(books, "Guarded Org", sb.portal_id)
    airflow_api.reserialize()
    url = _webhook_url(airflow_api)
    event = {"eventId": 1, "subscriptionId": 1, "portalId": sb.portal_id, "appId": 1,
             "occurredAt": int(time.time() * 1000), "subscriptionType": "deal.creation",
             "attemptNumber": 0, "objectId": 5, "changeSource": "CRM"}
    good = json.dumps([event]).encode()
    for attack in ATTACKS:
        body, secret, now_ms = good, sb.client_secret, int(time.time() * 1000)
        if attack == "wrong secret":
            secret = "another-apps-secret"
        if attack == "old timestamp":
            now_ms -= 6 * 60 * 1000  # six minutes: HubSpot's limit is five
        headers = signed_headers(secret, "POST", url, body, now_ms=now_ms)
        if attack == "tampered body":
            body = body.replace(b'"objectId": 5', b'"objectId": 6')
        if attack == "no signature":
            headers = {}

        refused = _post(airflow_api, body, headers)

        assert refused.status_code == 401, (attack, refused.text)
        assert refused.json()["detail"].startswith("Not a signed HubSpot webhook call: ")
        assert refused.json()["detail"].endswith("nothing was changed")
        assert LedgerHook().webhooks.state(integration_id) is None, attack
        assert _asset_events(airflow_api, integration_id) == [], attack
        assert _queued(airflow_api, integration_id) == [], attack
    # The same call signed by the app now is accepted: the refusals were about the signature.
    accepted = _post(airflow_api, good, signed_headers(sb.client_secret, "POST", url, good))
    assert accepted.status_code == 200, accepted.text
    assert len(_asset_events(airflow_api, integration_id)) == 1


def test_an_unknown_portal_is_answered_and_ignored(
        airflow_api: AirflowApi, sb: SandboxServer, books: Callable[..., int],
        ledger: psycopg.Connection) -> None:
    integration_id = _connected(books, "Bystander Org", sb.portal_id)
    url = _webhook_url(airflow_api)
    body = b'[{"portalId": 424242, "subscriptionType": "deal.creation", "objectId": 1}, 7]'
    answer = _post(airflow_api, body, signed_headers(sb.client_secret, "POST", url, body))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 1, "skipped": 1, "runs_asked": 0}
    assert LedgerHook().webhooks.state(integration_id) is None
    assert "portal 424242, which no integration is connected to: ignored" in \
        airflow_api.log.read_text(errors="replace")

    not_events = b'{"portalId": 62515}'
    answer = _post(airflow_api, not_events,
                   signed_headers(sb.client_secret, "POST", url, not_events))
    assert answer.status_code == 400
    assert answer.json()["detail"] == ("A signed call, but the body is not a JSON array of "
                                       "events: nothing was changed")
