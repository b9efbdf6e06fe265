"""What each sync step reads from HubSpot: small generators over `HubSpotHook`'s primitives.

Pages of raw records come from the hook (list, search, batch read, v4 associations); here they
are selected (cutoff) and parsed into the typed models of `extract.models`. The closed-won deal
search is in `extract.closed_won`. A record HubSpot sent in a shape we cannot read becomes a
`MappingError` in place of the model, so the step logs it and goes on (R-SYNC-6).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from hubspot_ledger.extract.models import (
    HubSpotRecord,
    MappingError,
    parse_utc_date,
    valid_unicode,
)
from hubspot_ledger.hooks.hubspot import Association, HubSpotHook
from hubspot_ledger.load.records import RemoteType
from hubspot_ledger.maps import hubspot_properties

R = TypeVar("R", bound=HubSpotRecord)
Raw = dict[str, Any]

# HubSpot-defined association type ids (hubspot-api.md §2.5).
DEAL_TO_PRIMARY_COMPANY = 5


def valid_pages(pages: Iterable[list[Raw]]) -> Iterator[list[Raw]]:
    """Pages with every string made valid Unicode (lone surrogates → U+FFFD, NUL removed)
    before anything stages, maps or stores them (issue 13: one half emoji must not stop a
    run)."""
    for page in pages:
        yield [valid_unicode(raw) for raw in page]


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


def on_or_after_filter(prop: str, day: dt.date) -> list[list[dict[str, Any]]]:
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
        yield from valid_pages(hook.list_pages("products", properties))
    else:
        yield from valid_pages(hook.search_pages("products", modified_in(window), properties))


def invoices(hook: HubSpotHook, cutoff: dt.date, window: Window | None = None
             ) -> Iterator[list[Raw]]:
    """Invoices dated on or after the cutoff, and those without a date (R-SYNC-4, R-INV-5)."""
    yield from valid_pages(hook.search_pages("invoices", modified_in(window),
                                             hubspot_properties(RemoteType.INVOICE),
                                             any_of=on_or_after_filter("hs_invoice_date", cutoff)))


def changed(hook: HubSpotHook, remote_type: RemoteType, window: Window
            ) -> Iterator[list[Raw]]:
    """Every deal or invoice HubSpot changed in `window`, qualifying or not: one search finds
    both the records to sync and those that stopped qualifying (left closed won, moved before
    the cutoff), which `partition` tells apart."""
    yield from valid_pages(hook.search_pages(_object_path(remote_type), modified_in(window),
                                             hubspot_properties(remote_type)))


def partition(pages: Iterable[list[Raw]], keep: Callable[[list[Raw]], list[Raw]],
              others: set[str]) -> Iterator[list[Raw]]:
    """The records `keep` selects, page by page; the ids of the rest go to `others`."""
    for page in pages:
        kept = keep(page)
        ids = {str(r.get("id", "")) for r in kept}
        others.update(str(r.get("id", "")) for r in page if str(r.get("id", "")) not in ids)
        if kept:
            yield kept


def archived_in(hook: HubSpotHook, remote_type: RemoteType, window: Window) -> set[str]:
    """Ids HubSpot archived (deleted to its recycle bin) inside `window`. Search never returns
    archived records, so the archived listing is the only place deletions show."""
    found = {str(raw.get("id", "")) for page in _archived_pages(hook, remote_type, window)
             for raw in page}
    found.discard("")
    return found


def archived_products(hook: HubSpotHook, window: Window) -> Iterator[list[Raw]]:
    """Products HubSpot archived inside `window`, with the properties the sync reads: a product
    edited and then archived before the next run shows its last values only here (DESIGN
    "archived products")."""
    yield from valid_pages(_archived_pages(hook, RemoteType.PRODUCT, window,
                                           hubspot_properties(RemoteType.PRODUCT)))


def _archived_pages(hook: HubSpotHook, remote_type: RemoteType, window: Window,
                    properties: Sequence[str] = ("hs_object_id",)) -> Iterator[list[Raw]]:
    since, until = window.since, window.until
    for page in hook.list_pages(_object_path(remote_type), list(properties), archived=True):
        kept = []
        for raw in page:
            when = _instant(raw.get("archivedAt") or raw.get("updatedAt"))
            if when is None or (when >= since and (until is None or when < until)):
                kept.append(raw)
        if kept:
            yield kept


def _instant(value: Any) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def why_invoice_lost(raw: Raw | None, cutoff: dt.date) -> str | None:
    if raw is None:
        return "was archived or deleted in HubSpot"
    if not dated_on_or_after(raw, "hs_invoice_date", cutoff):
        return f"is now dated before the cutoff {cutoff}"
    return None


def changed_companies(hook: HubSpotHook, window: Window) -> Iterator[list[Raw]]:
    yield from valid_pages(hook.search_pages("companies", modified_in(window),
                                             hubspot_properties(RemoteType.COMPANY)))


def changed_line_ids(hook: HubSpotHook, window: Window) -> list[str]:
    """Line items HubSpot changed in `window`: editing a line does not touch its deal's or
    invoice's modified date, and an incremental run must not miss it."""
    return [str(raw["id"]) for page in hook.search_pages(
        "line_items", modified_in(window), ["hs_object_id"]) for raw in page]


def owners_of_lines(hook: HubSpotHook, owner_type: RemoteType, line_ids: Sequence[str]
                    ) -> set[str]:
    """The deals or invoices these line items belong to (v4 batch associations)."""
    if not line_ids:
        return set()
    links = hook.batch_associations("line_items", _object_path(owner_type), list(line_ids))
    return {a.to_id for found in links.values() for a in found}


def dated_on_or_after(raw: Raw, prop: str, cutoff: dt.date) -> bool:
    """The search's date filter, applied to a record read by id (a missing or unreadable date
    qualifies: the map layer reports it by name)."""
    value = ((raw.get("properties") or {}).get(prop) or "").strip()
    if not value:
        return True
    day = parse_utc_date(value)
    return day is None or day >= cutoff


def qualifying_invoices(raws: Iterable[Raw], cutoff: dt.date) -> list[Raw]:
    return [r for r in raws if dated_on_or_after(r, "hs_invoice_date", cutoff)]


def raw_by_id(hook: HubSpotHook, remote_type: RemoteType, ids: Iterable[str],
              properties: Sequence[str] | None = None) -> Iterator[list[Raw]]:
    """Raw records by id, pages of 100."""
    wanted = sorted(set(ids), key=lambda i: (len(i), i))
    if wanted:
        yield from valid_pages(hook.batch_read(_object_path(remote_type), wanted,
                                               properties or hubspot_properties(remote_type)))


def company_ids(associations: Sequence[Association]) -> list[str]:
    """Every company of a deal (R-COMP-1: each becomes a customer, not just the primary)."""
    return sorted({a.to_id for a in associations}, key=lambda i: (len(i), i))


def primary_company(associations: Sequence[Association]) -> str | None:
    """R-DEAL-4: the deal's primary company; a deal whose companies carry no primary label
    (imported data) takes the lowest id, so the choice is stable from run to run."""
    for association in associations:
        if DEAL_TO_PRIMARY_COMPANY in association.type_ids:
            return association.to_id
    ids = sorted((a.to_id for a in associations), key=lambda i: (len(i), i))
    return ids[0] if ids else None


def read_by_id(hook: HubSpotHook, remote_type: RemoteType, model: type[R],
               ids: Iterable[str], *, archived: bool = False) -> dict[str, R | MappingError]:
    """Records by id (batch reads of 100); ids HubSpot no longer has are absent.
    `archived`: read them from HubSpot's recycle bin instead."""
    wanted = sorted(set(ids))
    found: dict[str, R | MappingError] = {}
    if not wanted:
        return found
    for page in valid_pages(hook.batch_read(_object_path(remote_type), wanted,
                                            hubspot_properties(remote_type), archived=archived)):
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
