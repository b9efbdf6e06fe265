"""What the deals step needs, read ahead while the closed-won deal search runs (issue 12).

The companies step finds the qualifying deals through the search API, whose budget (4–5 per
second) is HubSpot's slowest; meanwhile the general budget (110 per 10 s) would idle, and the
deals step after it would then spend it alone on line items. So the reads that do not depend
on the ledger — each deal's company and line-item associations, its companies and its line
items by id — run here, beside the search, and the deals are staged with their lines. The
ledger writes keep R-SYNC-2's order: nothing here writes.

Batch reads are pooled across chunks of deals so that every batch read is full (100 ids): ids
wait in a queue until a full batch is ready (the rest go out at the end), and a deal is handed
on once all its lines have been read, a company once it has been read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from hubspot_ledger.extract import reads
from hubspot_ledger.extract.reads import Raw
from hubspot_ledger.hooks.hubspot import BATCH_READ, HubSpotHook
from hubspot_ledger.load.records import RemoteType


@dataclass
class AheadDeal:
    raw: Raw
    company_id: str | None  # the primary company (R-DEAL-4)
    line_ids: list[str]


@dataclass
class Ahead:
    """Deals whose reads are complete, with their lines (raw, by id); and companies read."""

    deals: list[AheadDeal] = field(default_factory=list)
    lines: dict[str, Raw] = field(default_factory=dict)
    companies: list[Raw] = field(default_factory=list)

    def lines_of(self, deal: AheadDeal) -> list[Raw]:
        """The deal's lines HubSpot returned (a line deleted since is left out)."""
        return [self.lines[i] for i in deal.line_ids if i in self.lines]


class _Queue:
    """Ids waiting for a batch read; `take(full_only)` hands out whole batches of 100.
    `once`: an id is read once per run (companies); otherwise once while it waits (a line on
    two deals of different chunks, which HubSpot should not have, is read for each)."""

    def __init__(self, once: bool) -> None:
        self.once = once
        self.waiting: list[str] = []
        self.queued: set[str] = set()

    def add(self, ids: Iterable[str]) -> None:
        for i in ids:
            if i not in self.queued:
                self.queued.add(i)
                self.waiting.append(i)

    def take(self, full_only: bool) -> list[str]:
        n = len(self.waiting) // BATCH_READ * BATCH_READ if full_only else len(self.waiting)
        taken, self.waiting = self.waiting[:n], self.waiting[n:]
        if not self.once:
            self.queued.difference_update(taken)
        return taken


class _Reader:
    def __init__(self, hook: HubSpotHook) -> None:
        self.hook = hook
        self.lines = _Queue(once=False)
        self.companies = _Queue(once=True)
        self.waiting: list[AheadDeal] = []  # deals some of whose lines are still queued
        self.read_lines: dict[str, Raw] = {}

    def add(self, chunk: list[Raw]) -> None:
        ids = [str(raw.get("id", "")) for raw in chunk]
        companies = self.hook.batch_associations("deals", "companies", ids)
        lines = reads.line_items_of(self.hook, RemoteType.DEAL, ids)
        for deal_id, raw in zip(ids, chunk, strict=True):
            found = companies.get(deal_id, [])
            self.companies.add(reads.company_ids(found))
            self.waiting.append(AheadDeal(raw, reads.primary_company(found),
                                          lines.get(deal_id, [])))
            self.lines.add(lines.get(deal_id, []))

    def read(self, full_only: bool) -> Ahead:
        """Read what fills whole batches (or everything), and hand on what is complete."""
        ahead = Ahead()
        for page in reads.raw_by_id(self.hook, RemoteType.LINE_ITEM,
                                    self.lines.take(full_only)):
            self.read_lines.update((str(raw.get("id", "")), raw) for raw in page)
        pending = set(self.lines.waiting)
        ready = [d for d in self.waiting if not pending.intersection(d.line_ids)]
        self.waiting = [d for d in self.waiting if pending.intersection(d.line_ids)]
        for deal in ready:
            ahead.deals.append(deal)
            ahead.lines.update((i, self.read_lines[i]) for i in deal.line_ids
                               if i in self.read_lines)
        still_needed = {i for deal in self.waiting for i in deal.line_ids}
        for line_id in list(ahead.lines):
            if line_id not in still_needed:
                self.read_lines.pop(line_id, None)
        ahead.companies = [raw for page in reads.raw_by_id(
            self.hook, RemoteType.COMPANY, self.companies.take(full_only)) for raw in page]
        return ahead


def read_ahead(hook: HubSpotHook, chunks: Iterable[list[Raw]]) -> Iterator[Ahead]:
    """For chunks of qualifying deals: the deals with their primary company and lines, and
    every company on them (R-COMP-1), each read once in full batches."""
    reader = _Reader(hook)
    for chunk in chunks:
        reader.add(chunk)
        ahead = reader.read(full_only=True)
        if ahead.deals or ahead.companies:
            yield ahead
    ahead = reader.read(full_only=False)
    if ahead.deals or ahead.companies:
        yield ahead
