"""Issue 14: the sandbox sends HubSpot's webhooks (shared/reference/hubspot-api.md §6) when its
data changes through the admin API and a target URL is configured: batched JSON arrays of the
subscribed events, v3-signed with the app's client secret (checked here with the product's own
check), resent on failure. A real HTTP receiver takes the calls."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from support import wait_until

from hubspot_ledger.webhooks.signature import verify_v3
from hubspot_ledger_tools.sandbox.testing import SandboxServer

pytestmark = pytest.mark.integration


@dataclass
class Receiver:
    """A webhook target over real HTTP: records every call, answers `statuses` in turn (then
    200)."""

    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def events(self) -> list[dict[str, Any]]:
        return [e for call in self.calls for e in call["events"]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            found.calls.append({"path": self.path, "headers": dict(self.headers),
                                "body": body, "events": json.loads(body)})
            status = found.statuses.pop(0) if found.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/hubspot"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()


def _calls(receiver: Receiver, count: int) -> list[dict[str, Any]]:
    return wait_until(lambda: receiver.calls if len(receiver.calls) >= count else None,
                      timeout=20, what=f"{count} webhook call(s)")


def _new_deals(sb: SandboxServer, count: int) -> list[int]:
    """Deals made before the test subscribes (so their creation sends nothing)."""
    return [int(sb.upsert("deals", {"dealname": f"Deal {n}", "dealstage": "contractsent",
                                    "amount": "100"})["id"]) for n in range(count)]


def test_without_a_target_url_nothing_is_sent(sb: SandboxServer, receiver: Receiver) -> None:
    (deal,) = _new_deals(sb, 1)
    sb.upsert("deals", {"dealstage": "closedwon"}, id=deal)
    assert sb.webhooks()["url"] == "" and sb.webhook_deliveries() == []
    assert receiver.calls == []


def test_a_deal_won_is_a_signed_batch_of_its_property_changes(
        sb: SandboxServer, receiver: Receiver) -> None:
    (deal,) = _new_deals(sb, 1)
    sb.subscribe(receiver.url)
    sb.upsert("deals", {"dealstage": "closedwon"}, id=deal)

    (call,) = _calls(receiver, 1)
    # HubSpot's v3 signature over method, URL, body and timestamp, with the app's secret.
    verify_v3(sb.client_secret, "POST", [receiver.url], call["body"], call["headers"])
    with pytest.raises(Exception, match="does not match"):
        verify_v3("another-secret", "POST", [receiver.url], call["body"], call["headers"])
    assert call["headers"]["X-HubSpot-Signature-Version"] == "v1"
    changed = {e["propertyName"]: e["propertyValue"] for e in call["events"]}
    assert changed["dealstage"] == "closedwon" and changed["hs_is_closed_won"] == "true"
    for event in call["events"]:
        assert event["subscriptionType"] == "deal.propertyChange"
        assert (event["portalId"], event["objectId"]) == (sb.portal_id, deal)
        assert event["appId"] == sb.webhooks()["app_id"]
        assert event["attemptNumber"] == 0 and event["changeSource"] == "CRM"
        assert isinstance(event["eventId"], int) and isinstance(event["occurredAt"], int)
    (delivery,) = sb.webhook_deliveries()
    assert (delivery["status"], len(delivery["events"])) == (200, len(call["events"]))


def test_only_subscribed_events_are_sent(sb: SandboxServer, receiver: Receiver) -> None:
    (deal,) = _new_deals(sb, 1)
    sb.subscribe(receiver.url, ["deal.propertyChange:dealstage", "object.creation"],
                 webhook_batch_size=1)
    sb.upsert("deals", {"dealname": "Renamed"}, id=deal)  # not subscribed: nothing
    sb.upsert("deals", {"dealstage": "closedlost"}, id=deal)
    sb.upsert("invoices", {"hs_number": "INV-9"})  # no invoice.* type: object.creation
    calls = _calls(receiver, 2)
    kinds = [(e["subscriptionType"], e.get("propertyName"), e.get("objectTypeId"))
             for e in receiver.events()]
    assert kinds == [("deal.propertyChange", "dealstage", None),
                     ("object.creation", None, "0-53")]
    assert len(calls) == 2


def test_events_are_batched_up_to_the_batch_size(sb: SandboxServer,
                                                 receiver: Receiver) -> None:
    # A long wait for more: the third event fills the call, which then goes at once.
    deals = _new_deals(sb, 3)
    sb.subscribe(receiver.url, ["deal.propertyChange:dealname"], webhook_batch_size=3,
                 webhook_batch_delay=30)
    for deal in deals:
        sb.upsert("deals", {"dealname": f"Renamed {deal}"}, id=deal)
    (call,) = _calls(receiver, 1)
    assert [e["objectId"] for e in call["events"]] == deals


def test_creation_archive_restore_and_associations(sb: SandboxServer,
                                                   receiver: Receiver) -> None:
    company = int(sb.upsert("companies", {"name": "Webhook Co"})["id"])
    sb.subscribe(receiver.url, webhook_batch_size=1)
    created = sb.upsert("deals", {"dealname": "New", "dealstage": "closedwon"},
                        associations={"companies": [{"id": company, "primary": True}]})
    deal = int(created["id"])
    sb.archive("deals", deal)
    sb.archive("deals", deal, archived=False)
    _calls(receiver, 4)
    kinds = [e["subscriptionType"] for e in receiver.events()]
    assert kinds == ["deal.creation", "deal.associationChange", "deal.deletion",
                     "deal.restore"]
    association = receiver.events()[1]
    assert (association["fromObjectId"], association["toObjectId"]) == (deal, company)
    assert association["associationType"] == "DEAL_TO_COMPANY"


def test_a_refused_call_is_sent_again_with_the_next_attempt_number(
        sb: SandboxServer, receiver: Receiver) -> None:
    (deal,) = _new_deals(sb, 1)
    receiver.statuses = [401]
    sb.subscribe(receiver.url, ["deal.propertyChange:dealstage"], webhook_retries=2)
    sb.upsert("deals", {"dealstage": "closedwon"}, id=deal)
    first, second = _calls(receiver, 2)
    assert [e["attemptNumber"] for e in (first["events"][0], second["events"][0])] == [0, 1]
    assert first["events"][0]["eventId"] == second["events"][0]["eventId"]
    verify_v3(sb.client_secret, "POST", [receiver.url], second["body"], second["headers"])
    def both_logged() -> list[dict[str, Any]] | None:
        deliveries = sb.webhook_deliveries()
        return deliveries if len(deliveries) == 2 else None

    deliveries = wait_until(both_logged, timeout=10, what="two deliveries logged")
    assert [d["status"] for d in deliveries] == [401, 200]


def test_a_reset_forgets_the_target_and_the_deliveries(sb: SandboxServer,
                                                       receiver: Receiver) -> None:
    (deal,) = _new_deals(sb, 1)
    sb.subscribe(receiver.url, webhook_batch_size=1)
    sb.upsert("deals", {"dealstage": "closedwon"}, id=deal)
    _calls(receiver, 1)
    sb.reset()
    assert sb.webhooks()["url"] == "" and sb.webhook_deliveries() == []
