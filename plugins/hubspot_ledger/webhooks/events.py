"""What HubSpot posts to a webhook target: a JSON array of events, batched, each naming its
portal (`portalId`), what happened (`subscriptionType`, e.g. `deal.propertyChange`, or
`object.creation` with an `objectTypeId`) and to which record (`objectId`; `fromObjectId` for an
association change, `primaryObjectId` for a merge). shared/reference/hubspot-api.md §6.

Only two things matter here: which portals changed (their integrations sync) and which deals
(the run reads them by id as well, so a deal HubSpot's search index has not caught up with yet
still lands). Anything else in an event is ignored; an entry that is not an event with a
portal is counted and skipped, never a reason to refuse the others. Pure, no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

DEAL_TYPE_ID = "0-3"  # HubSpot's object type id of deals (generic `object.*` events)
# At most this many deal ids are kept per portal and call: a bulk edit of thousands of deals is
# read through the search anyway; the ids only help a run that starts before the index catches up.
MAX_NAMED_DEALS = 1_000


class NotEvents(ValueError):
    """The body is not a JSON array of webhook events."""


@dataclass
class PortalEvents:
    """The events of one portal in one call."""

    count: int = 0
    deals: set[str] = field(default_factory=set)


@dataclass
class Batch:
    """One call's events by portal, and how many entries were not events at all."""

    portals: dict[int, PortalEvents] = field(default_factory=dict)
    skipped: int = 0

    @property
    def events(self) -> int:
        return sum(p.count for p in self.portals.values())


def _portal(event: dict[str, Any]) -> int | None:
    value = event.get("portalId")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**63 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value) or None
    return None


def _record_id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return value.lstrip("0") or None
    return None


def deal_id(event: dict[str, Any]) -> str | None:
    """The deal an event is about, if it is about one."""
    kind = event.get("subscriptionType")
    if not isinstance(kind, str):
        return None
    subject, _, action = kind.partition(".")
    if subject == "object" and str(event.get("objectTypeId", "")) != DEAL_TYPE_ID:
        return None
    if subject not in ("deal", "object"):
        return None
    if action == "associationChange":
        return _record_id(event.get("fromObjectId"))
    if action == "merge":
        return _record_id(event.get("primaryObjectId")) or _record_id(event.get("objectId"))
    return _record_id(event.get("objectId"))


def read_batch(body: bytes) -> Batch:
    """The events of a webhook call's body; NotEvents when it is not a JSON array."""
    try:
        entries = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise NotEvents("the body is not JSON") from None
    if not isinstance(entries, list):
        raise NotEvents("the body is not a JSON array of events")
    batch = Batch()
    for entry in entries:
        portal = _portal(entry) if isinstance(entry, dict) else None
        if portal is None:
            batch.skipped += 1
            continue
        events = batch.portals.setdefault(portal, PortalEvents())
        events.count += 1
        deal = deal_id(entry)
        if deal is not None and len(events.deals) < MAX_NAMED_DEALS:
            events.deals.add(deal)
    return batch
