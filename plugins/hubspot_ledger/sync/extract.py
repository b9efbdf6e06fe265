"""What each sync step reads from HubSpot: small generators over `HubSpotHook`'s primitives.

Pages of raw records come from the hook (list, search, batch read, v4 associations); here they
are selected (closed won, cutoff) and parsed into the typed models of `sync.models`. A record
HubSpot sent in a shape we cannot read becomes a `MappingError` in place of the model, so the
step logs it and goes on (R-SYNC-6).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from hubspot_ledger.hooks.hubspot import Association, HubSpotHook
from hubspot_ledger.ledger.records import RemoteType
from hubspot_ledger.sync.mapping import hubspot_properties
from hubspot_ledger.sync.mapping.deals import CLOSED_WON
from hubspot_ledger.sync.models import HubSpotRecord, MappingError, parse_utc_date

R = TypeVar("R", bound=HubSpotRecord)
Raw = dict[str, Any]

# HubSpot-defined association type ids (hubspot-api.md §2.5).
DEAL_TO_PRIMARY_COMPANY = 5


def rebatch(pages: Iterable[list[Raw]], size: int) -> Iterator[list[Raw]]:
    """Pages regrouped into batches of `size` records (the last one shorter): search pages
    hold 200 records, but an association batch takes 1,000 ids, and fewer, fuller batches
    mean fewer requests."""
    batch: list[Raw] = []
    for page in pages:
        batch.extend(page)
        while len(batch) >= size:
            yield batch[:size]
            batch = batch[size:]
    if batch:
        yield batch


def parse_one(model: type[R], raw: Raw) -> R | MappingError:
    try:
        return model.from_api(raw)
    except MappingError as exc:
        return exc


def parse(model: type[R], raws: Iterable[Raw]) -> list[R | MappingError]:
    return [parse_one(model, raw) for raw in raws]


def since_midnight_ms(day: dt.date) -> int:
    """The first millisecond of `day` in UTC: the cutoff is inclusive (R-SYNC-4)."""
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    return int(start.timestamp() * 1000)


def _on_or_after(prop: str, day: dt.date) -> list[list[dict[str, Any]]]:
    """`prop` on or after `day`, or missing: a record without the date must reach the map
    layer and fail there with the property's name, never vanish in the query (DESIGN)."""
    return [[{"propertyName": prop, "operator": "GTE", "value": str(since_midnight_ms(day))}],
            [{"propertyName": prop, "operator": "NOT_HAS_PROPERTY"}]]


@dataclass(frozen=True)
class Window:
    """HubSpot's modified date at or after `since` and, for a backfill window, before `until`.
    Each record falls in exactly one window (by its current modified date), so windows read in
    parallel never overlap and together cover every record."""

    since: dt.datetime
    until: dt.datetime | None = None


def modified_in(window: Window | None) -> list[dict[str, Any]]:
    """The filters of an incremental or windowed read (none: read everything)."""
    if window is None:
        return []
    filters = [{"propertyName": "hs_lastmodifieddate", "operator": "GTE",
                "value": str(_ms(window.since))}]
    if window.until is not None:
        filters.append({"propertyName": "hs_lastmodifieddate", "operator": "LT",
                        "value": str(_ms(window.until))})
    return filters


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def products(hook: HubSpotHook, window: Window | None = None) -> Iterator[list[Raw]]:
    """Every product (R-SYNC-4: the cutoff does not filter products), or those changed since."""
    properties = hubspot_properties(RemoteType.PRODUCT)
    if window is None:
        yield from hook.list_pages("products", properties)
    else:
        yield from hook.search_pages("products", modified_in(window), properties)


def closed_won_deals(hook: HubSpotHook, cutoff: dt.date, window: Window | None = None
                     ) -> Iterator[list[Raw]]:
    """Deals in the internal stage `closedwon`, closed on or after the cutoff (R-DEAL-1)."""
    yield from hook.search_pages(
        "deals", [{"propertyName": "dealstage", "operator": "EQ", "value": CLOSED_WON},
                  *modified_in(window)],
        hubspot_properties(RemoteType.DEAL), any_of=_on_or_after("closedate", cutoff))


def invoices(hook: HubSpotHook, cutoff: dt.date, window: Window | None = None
             ) -> Iterator[list[Raw]]:
    """Invoices dated on or after the cutoff, and those without a date (R-SYNC-4, R-INV-5)."""
    yield from hook.search_pages("invoices", modified_in(window),
                                 hubspot_properties(RemoteType.INVOICE),
                                 any_of=_on_or_after("hs_invoice_date", cutoff))


def changed_companies(hook: HubSpotHook, window: Window) -> Iterator[list[Raw]]:
    yield from hook.search_pages("companies", modified_in(window),
                                 hubspot_properties(RemoteType.COMPANY))


def owners_of_changed_lines(hook: HubSpotHook, owner_type: RemoteType, window: Window
                            ) -> set[str]:
    """Deals or invoices whose line items changed in `window`: editing a line does not
    always touch its deal's modified date, and an incremental run must not miss it."""
    line_ids = [str(raw["id"]) for page in hook.search_pages(
        "line_items", modified_in(window), ["hs_object_id"]) for raw in page]
    if not line_ids:
        return set()
    links = hook.batch_associations("line_items", _object_path(owner_type), line_ids)
    return {a.to_id for found in links.values() for a in found}


def _on_or_after_cutoff(raw: Raw, prop: str, cutoff: dt.date) -> bool:
    """The search's date filter, applied to a record read by id (a missing or unreadable date
    qualifies: the map layer reports it by name)."""
    value = ((raw.get("properties") or {}).get(prop) or "").strip()
    if not value:
        return True
    day = parse_utc_date(value)
    return day is None or day >= cutoff


def qualifying_deals(raws: Iterable[Raw], cutoff: dt.date) -> list[Raw]:
    return [r for r in raws if (r.get("properties") or {}).get("dealstage") == CLOSED_WON
            and _on_or_after_cutoff(r, "closedate", cutoff)]


def qualifying_invoices(raws: Iterable[Raw], cutoff: dt.date) -> list[Raw]:
    return [r for r in raws if _on_or_after_cutoff(r, "hs_invoice_date", cutoff)]


def raw_by_id(hook: HubSpotHook, remote_type: RemoteType, ids: Iterable[str]
              ) -> Iterator[list[Raw]]:
    """Raw records by id, pages of 100."""
    wanted = sorted(set(ids), key=lambda i: (len(i), i))
    if wanted:
        yield from hook.batch_read(_object_path(remote_type), wanted,
                                   hubspot_properties(remote_type))


def primary_company(associations: Sequence[Association]) -> str | None:
    """R-DEAL-4: the deal's primary company; a deal whose companies carry no primary label
    (imported data) takes the lowest id, so the choice is stable from run to run."""
    for association in associations:
        if DEAL_TO_PRIMARY_COMPANY in association.type_ids:
            return association.to_id
    ids = sorted((a.to_id for a in associations), key=lambda i: (len(i), i))
    return ids[0] if ids else None


def read_by_id(hook: HubSpotHook, remote_type: RemoteType, model: type[R],
               ids: Iterable[str]) -> dict[str, R | MappingError]:
    """Records by id (batch reads of 100); ids HubSpot no longer has are absent."""
    wanted = sorted(set(ids))
    found: dict[str, R | MappingError] = {}
    if not wanted:
        return found
    for page in hook.batch_read(_object_path(remote_type), wanted,
                                hubspot_properties(remote_type)):
        for raw, record in zip(page, parse(model, page), strict=True):
            found[str(raw.get("id", ""))] = record
    return found


def line_items_of(hook: HubSpotHook, from_type: RemoteType, ids: Sequence[str]
                  ) -> dict[str, list[str]]:
    """Line item ids of each deal or invoice (v4 batch associations)."""
    links = hook.batch_associations(_object_path(from_type), "line_items", list(ids))
    return {owner: sorted({a.to_id for a in found}, key=lambda i: (len(i), i))
            for owner, found in links.items()}


def _object_path(remote_type: RemoteType) -> str:
    return {RemoteType.PRODUCT: "products", RemoteType.COMPANY: "companies",
            RemoteType.DEAL: "deals", RemoteType.LINE_ITEM: "line_items",
            RemoteType.INVOICE: "invoices"}[remote_type]
