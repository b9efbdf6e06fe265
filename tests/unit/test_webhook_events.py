"""Issue 14, webhook-driven syncs: what the endpoint reads of HubSpot's event batches (shared/
reference/hubspot-api.md §6): the portals that changed and the deals named; anything else in an
entry is ignored, and an entry that is not an event is skipped, never fatal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hubspot_ledger.webhooks.events import MAX_NAMED_DEALS, NotEvents, deal_id, read_batch

pytestmark = pytest.mark.unit


def _body(*events: Any) -> bytes:
    return json.dumps(list(events)).encode()


def test_hubspots_documented_example_is_one_event_of_portal_62515() -> None:
    batch = read_batch(b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,'
                       b'"occurredAt":1564113600000,"subscriptionType":"contact.creation",'
                       b'"attemptNumber":0,"objectId":123,"changeSource":"CRM",'
                       b'"changeFlag":"NEW","appId":54321}]')
    assert batch.events == 1 and batch.skipped == 0
    assert set(batch.portals) == {62515}
    assert batch.portals[62515].deals == set()  # a contact, not a deal


def test_events_are_counted_by_portal_with_the_deals_they_name() -> None:
    batch = read_batch(_body(
        {"portalId": 1, "subscriptionType": "deal.propertyChange", "objectId": 11,
         "propertyName": "dealstage", "propertyValue": "closedwon"},
        {"portalId": 1, "subscriptionType": "deal.creation", "objectId": 12},
        {"portalId": 1, "subscriptionType": "company.creation", "objectId": 99},
        {"portalId": "2", "subscriptionType": "object.propertyChange", "objectTypeId": "0-3",
         "objectId": "21"},
        {"portalId": 2, "subscriptionType": "object.creation", "objectTypeId": "0-53",
         "objectId": 77},
    ))
    assert batch.events == 5
    assert (batch.portals[1].count, batch.portals[1].deals) == (3, {"11", "12"})
    assert (batch.portals[2].count, batch.portals[2].deals) == (2, {"21"})


@pytest.mark.parametrize(("event", "deal"), [
    ({"subscriptionType": "deal.associationChange", "fromObjectId": 5, "toObjectId": 9}, "5"),
    ({"subscriptionType": "deal.merge", "primaryObjectId": 6, "objectId": 7,
      "mergedObjectIds": [7]}, "6"),
    ({"subscriptionType": "deal.deletion", "objectId": 8}, "8"),
    ({"subscriptionType": "line_item.propertyChange", "objectId": 8}, None),
    ({"subscriptionType": "deal.creation", "objectId": True}, None),
    ({"subscriptionType": "deal.creation", "objectId": "12a"}, None),
    ({"subscriptionType": 3, "objectId": 8}, None),
])
def test_the_deal_an_event_names(event: dict[str, Any], deal: str | None) -> None:
    assert deal_id(event) == deal


@pytest.mark.parametrize("entry", [None, 3, "x", [], {}, {"portalId": None},
                                   {"portalId": True}, {"portalId": -4}, {"portalId": "0"},
                                   {"portalId": "62515; DROP"}, {"portalId": 2**70}])
def test_an_entry_without_a_portal_is_skipped_not_fatal(entry: Any) -> None:
    batch = read_batch(_body(entry, {"portalId": 62515, "subscriptionType": "deal.creation",
                                     "objectId": 1}))
    assert (batch.events, batch.skipped, set(batch.portals)) == (1, 1, {62515})


@pytest.mark.parametrize("body", [b"", b"{", b'{"portalId": 1}', b"\xff\xfe", b'"events"'])
def test_a_body_that_is_not_an_array_of_events_is_refused(body: bytes) -> None:
    with pytest.raises(NotEvents):
        read_batch(body)


def test_a_bulk_edit_keeps_a_bounded_number_of_deal_ids() -> None:
    events = [{"portalId": 1, "subscriptionType": "deal.propertyChange", "objectId": i}
              for i in range(1, MAX_NAMED_DEALS + 50)]
    batch = read_batch(_body(*events))
    assert batch.portals[1].count == MAX_NAMED_DEALS + 49
    assert len(batch.portals[1].deals) == MAX_NAMED_DEALS
