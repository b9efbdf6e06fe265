"""What a phase has to read from HubSpot, counted from the sandbox's own data.

The benchmark runs the sandbox in its own process's thread, so its portal is at hand: the counts
come from the data itself, never from what the sync reports about itself. The selection repeats
the sync's documented rules (DESIGN.md): closed-won deals (internal stage `closedwon`) closed on
or after the cutoff (or with no close date), their primary company (association type 5, else the
lowest id), their line items; invoices dated on or after the cutoff (or undated) and their lines;
every product that is not archived.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from hubspot_ledger_tools.sandbox.pricing import line_amounts
from hubspot_ledger_tools.sandbox.records import PortalData, Record
from hubspot_ledger_tools.sandbox.testing import SandboxServer
from hubspot_ledger_tools.sandbox.timefmt import parse_time

CLOSED_WON = "closedwon"
DEAL_TO_PRIMARY_COMPANY = 5


@dataclass(frozen=True)
class ReadSet:
    """How many records of each kind a phase must read (the input of `minimal.plan`).

    `full`: the first run reads everything since the cutoff (products by listing them); an
    incremental run finds what changed by searching on the modified date.
    """

    full: bool
    sync_invoices: bool
    products: int = 0
    invoices: int = 0
    invoice_lines: int = 0
    deals: int = 0
    companies: int = 0  # distinct primary companies of `deals`
    deal_lines: int = 0
    changed_lines: int = 0  # incremental: line items edited since the last run
    deals_by_line: int = 0  # incremental: deals found only through an edited line

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def describe(self) -> str:
        """"products 2,940, invoices 20,000, …" (what is not there left out)."""
        return ", ".join(f"{label} {getattr(self, name):,}" for name, label in LABELS.items()
                         if getattr(self, name)) or "nothing"


LABELS = {"products": "products", "invoices": "invoices", "invoice_lines": "invoice lines",
          "deals": "closed-won deals", "companies": "their primary companies",
          "deal_lines": "their line items", "changed_lines": "edited line items",
          "deals_by_line": "deals reached only through an edited line"}


@dataclass(frozen=True)
class Change:
    """One record the benchmark edits before an incremental run."""

    deal_id: int
    kind: str  # "dealname" | "line_price"
    line_id: int | None = None


def cutoff_ms(cutoff: dt.date) -> int:
    return int(dt.datetime.combine(cutoff, dt.time.min, tzinfo=dt.UTC).timestamp() * 1000)


def _on_or_after(record: Record, prop: str, since: int) -> bool:
    value = record.props.get(prop)
    when = None if value is None else parse_time(value)
    return when is None or when >= since


def _live(data: PortalData, table: str) -> Iterable[Record]:
    return (r for r in data.table(table) if not r.archived)


def qualifying_deals(data: PortalData, cutoff: dt.date) -> list[Record]:
    since = cutoff_ms(cutoff)
    return sorted((d for d in _live(data, "deals") if d.props.get("dealstage") == CLOSED_WON
                   and _on_or_after(d, "closedate", since)), key=lambda d: d.id)


def qualifying_invoices(data: PortalData, cutoff: dt.date) -> list[Record]:
    since = cutoff_ms(cutoff)
    return [i for i in _live(data, "invoices") if _on_or_after(i, "hs_invoice_date", since)]


def primary_company(data: PortalData, deal_id: int) -> int | None:
    links = data.linked("deals", deal_id, "companies")
    primary = [c for c, types in links.items() if DEAL_TO_PRIMARY_COMPANY in types]
    return min(primary or links, default=None)


def _lines(data: PortalData, owner: str, owner_id: int) -> int:
    return len(data.linked(owner, owner_id, "line_items"))


def _deal_counts(data: PortalData, deal_ids: Sequence[int]) -> dict[str, int]:
    companies = {primary_company(data, d) for d in deal_ids} - {None}
    return {"deals": len(deal_ids), "companies": len(companies),
            "deal_lines": sum(_lines(data, "deals", d) for d in deal_ids)}


def portal_data(sb: SandboxServer, portal_id: int | None = None) -> PortalData:
    if sb.sandbox is None:
        raise RuntimeError("the census needs the sandbox in this process (mode='thread')")
    portal = sb.sandbox.portal(portal_id)
    if portal is None:
        raise RuntimeError(f"the sandbox has no portal {portal_id or '(default)'}")
    data: PortalData = portal.data
    return data


def full_read(sb: SandboxServer, cutoff: dt.date, sync_invoices: bool,
              portal_id: int | None = None) -> ReadSet:
    """What the first run must read: everything the sync selects (of the default portal, or
    of `portal_id`)."""
    with sb.sandbox.lock:
        data = portal_data(sb, portal_id)
        deals = [d.id for d in qualifying_deals(data, cutoff)]
        invoices = qualifying_invoices(data, cutoff) if sync_invoices else []
        return ReadSet(full=True, sync_invoices=sync_invoices,
                       products=sum(1 for _ in _live(data, "products")),
                       invoices=len(invoices),
                       invoice_lines=sum(_lines(data, "invoices", i.id) for i in invoices),
                       **_deal_counts(data, deals))


def portal_totals(sb: SandboxServer, cutoff: dt.date) -> dict[str, int]:
    """The portal's size, for the report's header."""
    with sb.sandbox.lock:
        data = portal_data(sb)
        totals = dict(data.counts())
        totals["closed-won deals on/after the cutoff"] = len(qualifying_deals(data, cutoff))
        return totals


def pick_changes(sb: SandboxServer, cutoff: dt.date, percent: float, seed: int
                 ) -> list[Change]:
    """`percent` % of the qualifying deals, chosen at random (seeded): half get a new deal name,
    half a new price on one of their line items (editing a line need not touch its deal)."""
    with sb.sandbox.lock:
        data = portal_data(sb)
        deals = [d.id for d in qualifying_deals(data, cutoff)]
        count = min(len(deals), max(1, math.ceil(len(deals) * percent / 100)))
        chosen = sorted(random.Random(seed).sample(deals, count))
        changes = []
        for n, deal_id in enumerate(chosen):
            lines = sorted(data.linked("deals", deal_id, "line_items"))
            if n % 2 and lines:
                changes.append(Change(deal_id, "line_price", lines[0]))
            else:
                changes.append(Change(deal_id, "dealname"))
        return changes


def _new_line_price(line: dict[str, Any]) -> dict[str, str]:
    props = line["properties"]
    price = Decimal(str(props.get("price") or "0")) + 1
    return {"price": str(price), **line_amounts(props.get("quantity"), price,
                                                props.get("discount"),
                                                props.get("hs_discount_percentage"))}


def apply_changes(sb: SandboxServer, changes: Sequence[Change]) -> None:
    """Through the admin API (never logged, never rate limited): modified dates become now."""
    for change in changes:
        if change.kind == "dealname":
            deal = sb.record("deals", change.deal_id)
            name = str(deal["properties"].get("dealname") or "Deal")
            sb.upsert("deals", {"dealname": f"{name} (edited)"}, id=change.deal_id)
        else:
            assert change.line_id is not None
            line = sb.record("line_items", change.line_id)
            sb.upsert("line_items", _new_line_price(line), id=change.line_id)


def changed_read(sb: SandboxServer, changes: Sequence[Change], sync_invoices: bool
                 ) -> ReadSet:
    """What an incremental run must read after `changes`: each changed deal again, with its
    company and line items, as a first run reads it; edited lines are found by a search and
    lead to their deal through an association and a batch read."""
    with sb.sandbox.lock:
        data = portal_data(sb)
        counts = _deal_counts(data, sorted({c.deal_id for c in changes}))
    by_line = sum(1 for c in changes if c.kind == "line_price")
    return replace(ReadSet(full=False, sync_invoices=sync_invoices, **counts),
                   changed_lines=by_line, deals_by_line=by_line)


def nothing_changed(sync_invoices: bool) -> ReadSet:
    return ReadSet(full=False, sync_invoices=sync_invoices)
