"""The sync steps: extract → map → load, one batch at a time (R-SYNC-2's fixed order is the
DAG's). Each returns its counts; errors go to the integration errors log as they happen.

A batch is one page from HubSpot: it is mapped, then written in one transaction in which every
record has its own savepoint, so a failed record costs nothing but itself (R-SYNC-6) and a
killed task loses at most the batch in flight (the re-run redoes it, idempotently).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from hubspot_ledger.extract import ahead, closed_won, parties, reads
from hubspot_ledger.extract.models import (
    Company,
    Deal,
    HubSpotRecord,
    Invoice,
    LineItem,
    MappingError,
    Product,
    valid_unicode,
)
from hubspot_ledger.extract.party_models import Party
from hubspot_ledger.extract.prefetch import prefetch
from hubspot_ledger.hooks.hubspot import HubSpotHook
from hubspot_ledger.load import problems
from hubspot_ledger.load.problems import Problem
from hubspot_ledger.load.records import (
    Integration,
    IntegrationSettings,
    InvoiceParties,
    RemoteType,
)
from hubspot_ledger.load.writer import Change, LedgerWriter, Outcome
from hubspot_ledger.mapping import (
    ContractDraft,
    InvoiceDraft,
    MappingContext,
    map_company_to_customer,
    map_deal_to_contract,
    map_invoice_to_sales_invoice,
    map_product_to_item,
)
from hubspot_ledger.stage.staging import Staging

log = logging.getLogger(__name__)

D = TypeVar("D")
IMPORTED = frozenset({Change.CREATED, Change.UPDATED, Change.UNCHANGED})
LOST = "lost"  # a staged deal that no longer qualifies (its payload is only this flag)
LINES = "lines"  # a staged deal's line items, read ahead by sync_companies (raw, as HubSpot sent)
# Deals or invoices handled together: one v4 association request takes 1,000 ids, and their
# line items then fill whole batch reads of 100. Memory stays at a few MB per batch.
DOCUMENT_BATCH = 1_000
# The run's read of changed and deleted line items, kept with its reads (`sync_runs.reads`) so
# that the deal steps reuse what the invoice step read (issue 12: a no-change run's requests);
# past this many ids the read is not kept, and each step reads for itself.
LINE_CHANGES = "line item"
LINE_CHANGES_KEPT = 5_000


class RunReads(Protocol):
    """What a run decided to read, once per run (`store.runs.Runs`)."""

    def read(self, run_id: int, remote_type: str) -> dict[str, Any] | None: ...

    def decide_read(self, run_id: int, remote_type: str, read: dict[str, Any]
                    ) -> dict[str, Any]: ...


@dataclass
class StepContext:
    """What a step of one run works with."""

    integration: Integration
    settings: IntegrationSettings
    mapping: MappingContext
    hook: HubSpotHook
    writer: LedgerWriter
    run_id: int
    connect: Callable[[], Any]  # a new ledger connection (the read-ahead thread's own)
    # EARLY_READS: threads for the reads a step starts at its start, beside its first search
    # (they depend on nothing else it reads); the runner owns them for the step's lifetime.
    early: Executor
    # Incremental and backfill runs read what HubSpot modified in this window; None: all.
    window: reads.Window | None = None
    # Read the records with open problems again (every run but a backfill window: each window
    # would log every open problem of the windows before it again, issue 15; the next
    # scheduled run retries them).
    retry_open: bool = True
    # Where the run keeps reads its steps share (the changed and deleted line items).
    runs: RunReads | None = None
    # Deals HubSpot's webhooks named since the last run took them (issue 14): read by id too,
    # so a deal changed seconds ago lands even while HubSpot's search index lags behind.
    named_deals: frozenset[str] = frozenset()


@dataclass
class Tally:
    """A step's counts, its pending errors-log rows, and its progress lines in the task log."""

    step: str
    total: int | None = None
    counts: dict[str, int] = field(default_factory=lambda: {c.value: 0 for c in Change})
    problems: list[Problem] = field(default_factory=list)
    # Records that imported (or stopped qualifying): their open problems are settled.
    settled: list[tuple[str, str]] = field(default_factory=list)
    # The line items of the batch's deals or invoices, by owner id: a problem remembers them
    # (a deleted line must lead the next run back to its failing owner).
    lines: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def seen(self) -> int:
        return sum(self.counts.values())

    def add(self, outcome: Outcome, remote_type: RemoteType, remote_id: str) -> None:
        self.counts[outcome.change.value] += 1
        if outcome.message:
            self.problems.append(Problem(remote_type.value, remote_id, outcome.message,
                                         warning=outcome.warning, cause=outcome.cause.value,
                                         lines=self.lines.get(remote_id, ())))
        if outcome.change in IMPORTED or outcome.warning:
            self.settled.append((remote_type.value, remote_id))

    def warn(self, remote_type: RemoteType, remote_id: str | None, message: str) -> None:
        """Something the accountant should know that needs no fix (logged as settled)."""
        self.problems.append(Problem(remote_type.value, remote_id, message, warning=True))

    def settle(self, remote_type: RemoteType, remote_ids: Iterable[str]) -> None:
        self.settled.extend((remote_type.value, i) for i in remote_ids)

    def reject(self, error: MappingError) -> None:
        self.counts[(Change.SKIPPED if error.skipped else Change.FAILED).value] += 1
        detail = getattr(error, "detail", "")  # why "No valid line items", for the accountant
        message = f"{error.message} ({detail})" if detail else error.message
        self.problems.append(Problem(error.remote_type.value, error.remote_id or None, message,
                                     cause=error.cause.value,
                                     lines=self.lines.get(error.remote_id, ())))

    def flush(self, ctx: StepContext) -> None:
        """Write the pending problems and settlements (inside the batch's transaction) and log
        progress. A record settled and failing in one batch (a deal and its line) stays open."""
        if self.settled:
            failing = {(p.remote_type, p.remote_id) for p in self.problems if not p.warning}
            problems.resolve(ctx.writer.conn, ctx.integration.id,
                             [k for k in self.settled if k not in failing])
            self.settled = []
        if self.problems:
            problems.log_problems(ctx.writer.conn, ctx.integration.id, ctx.run_id, self.step,
                                  self.problems)
            self.problems = []
        of_total = f"/{self.total:,}" if self.total is not None else ""
        log.info("%s %s%s (%s)", self.step, f"{self.seen:,}", of_total, self.summary())

    def summary(self) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in self.counts.items())


def _draft(tally: Tally, build: Callable[..., D], *args: Any, **kwargs: Any) -> D | None:
    """`build(*args, **kwargs)`, or None after counting and logging why there is no draft.
    A record HubSpot sent unreadable arrives here as its MappingError."""
    if any(isinstance(arg, MappingError) for arg in args):
        tally.reject(next(a for a in args if isinstance(a, MappingError)))
        return None
    try:
        return build(*args, **kwargs)
    except MappingError as error:
        tally.reject(error)
        return None


# -- products → items (R-PROD-1…5) ---------------------------------------------------------


def sync_products(ctx: StepContext) -> dict[str, int]:
    tally = Tally("products")
    seen: set[str] = set()
    retry: set[str] = set()
    # EARLY_READS: the archived products, read beside the search of changed ones.
    archived = (ctx.early.submit(_listed, reads.archived_products, ctx.hook, ctx.window)
                if ctx.window is not None else None)
    for page in prefetch(reads.products(ctx.hook, ctx.window)):
        seen.update(str(r.get("id", "")) for r in page)
        _load_products(ctx, tally, page)
    if archived is not None:
        # Archived in the window, so search missed them: the items they have take their last
        # values (an edit just before the archive); the others get theirs when a line sells
        # them (DESIGN "archived products").
        failing = set(problems.open_ids(ctx.writer.conn, ctx.integration.id,
                                        RemoteType.PRODUCT.value))
        for page in archived.result():
            ids = [str(r.get("id", "")) for r in page]
            mapped = ctx.writer.mapped(RemoteType.PRODUCT, ids)
            fresh = [r for r in page if str(r.get("id", "")) in mapped
                     and str(r.get("id", "")) not in seen]
            seen.update(str(r.get("id", "")) for r in fresh)
            if fresh:
                _load_products(ctx, tally, fresh)
            # A failing product archived in the window: read again by id below (not found,
            # so its problem is settled, as a full read settles it).
            if ctx.retry_open:
                retry.update(i for i in ids if i in failing and i not in mapped)
    for page in _retried(ctx, tally, RemoteType.PRODUCT, seen, retry):
        _load_products(ctx, tally, page)
    return tally.counts


def _load_products(ctx: StepContext, tally: Tally, page: list[dict[str, Any]]) -> None:
    drafts = [draft for product in reads.parse(Product, page)
              if (draft := _draft(tally, map_product_to_item, product, ctx.mapping))
              is not None]
    with ctx.writer.batch():
        for draft, outcome in zip(drafts, ctx.writer.upsert_items(drafts), strict=True):
            tally.add(outcome, RemoteType.PRODUCT, draft.remote_id)
        tally.flush(ctx)


def _retried(ctx: StepContext, tally: Tally, remote_type: RemoteType, seen: set[str],
             also: Iterable[str] = ()) -> Iterator[list[dict[str, Any]]]:
    """Pages of the records of this type with open problems to retry (`_open`, and `also`)
    that this run has not read yet, read again by id, so a reopened period, a changed setting
    or a fix in HubSpot lands at the next run (issue 10, "open problems"). One HubSpot no
    longer has is settled: nothing is left to import."""
    wanted = [i for i in sorted({*_open(ctx, remote_type), *also}, key=lambda i: (len(i), i))
              if i not in seen]
    if not wanted:
        return
    log.info("%s: retrying %s records with open problems", tally.step, f"{len(wanted):,}")
    found: set[str] = set()
    for page in reads.raw_by_id(ctx.hook, remote_type, wanted):
        found.update(str(r.get("id", "")) for r in page)
        seen.update(str(r.get("id", "")) for r in page)
        yield page
    gone = [i for i in wanted if i not in found]
    if gone:
        tally.settle(remote_type, gone)
        with ctx.writer.batch():
            tally.flush(ctx)


def _open(ctx: StepContext, remote_type: RemoteType) -> list[str]:
    """The records of this type with open problems this run reads again by id (issue 12).
    A full read retries them all: it must settle those it no longer finds. An incremental
    read retries those whose cause is not in the HubSpot record itself (the ledger, settings,
    a product): a record whose own data fails is found by the incremental read when HubSpot
    changes it or its lines (the changed search, the changed and deleted line items), and is
    otherwise unchanged, so it would fail the same way. Companies are retried all the same:
    only deals lead to them, and nothing would notice one deleted."""
    if not ctx.retry_open:
        return []
    every = ctx.window is None or remote_type is RemoteType.COMPANY
    return problems.open_ids(ctx.writer.conn, ctx.integration.id, remote_type.value,
                             every=every)


# EARLY_READS: in an incremental run a step reads little, so HubSpot's latency, not its rate
# budget, sets its time; the reads that depend on nothing else the step reads start with the
# step, in a thread of its own, instead of after the search (a run with nothing new: 11 requests
# one after another). Each step's pool waits for them before the step ends.


def _listed(pages: Callable[..., Iterable[list[dict[str, Any]]]], *args: Any
            ) -> list[list[dict[str, Any]]]:
    """All the pages of a listing, read in the calling thread."""
    return list(pages(*args))


def _line_changes(ctx: StepContext) -> tuple[list[str], list[str]]:
    """The line items HubSpot changed, and those it deleted, in the step's window (incremental,
    backfill window): read once per run and window by the first step that needs them (the
    invoice step, else the companies step), kept with the run's reads for the other."""
    window = ctx.window
    assert window is not None
    stamp = {"since": window.since.isoformat(),
             "until": window.until.isoformat() if window.until else None}
    kept = ctx.runs.read(ctx.run_id, LINE_CHANGES) if ctx.runs is not None else None
    if kept is not None and "changed" in kept and all(kept.get(k) == v
                                                      for k, v in stamp.items()):
        return list(kept["changed"]), list(kept["deleted"])
    changed = reads.changed_line_ids(ctx.hook, window)
    deleted = sorted(reads.archived_in(ctx.hook, RemoteType.LINE_ITEM, window))
    if ctx.runs is not None and kept is None:
        record: dict[str, Any] = {
            **stamp, "why": f"{len(changed):,} changed and {len(deleted):,} deleted since "
                            f"{window.since:%Y-%m-%d %H:%M:%S} UTC"}
        if len(changed) + len(deleted) <= LINE_CHANGES_KEPT:
            record.update(changed=changed, deleted=deleted)
        ctx.runs.decide_read(ctx.run_id, LINE_CHANGES, record)
    return changed, deleted


def _owners_of_deleted_lines(ctx: StepContext, owner_type: RemoteType,
                             deleted: Sequence[str]) -> set[str]:
    """Deals or invoices (incremental, backfill window) that lost a line item HubSpot deleted
    in the window. A deleted line item is archived: search no longer finds it, its associations
    are gone, and its deal's or invoice's modified date need not move, so the ledger's own
    mapping of the line names the owner, which is then read again; an owner that failed is
    named by the line ids its open problem kept."""
    if not deleted:
        return set()
    owners = ctx.writer.owners_of_lines(owner_type, deleted)
    if ctx.retry_open:
        owners |= problems.owners_of_lines(ctx.writer.conn, ctx.integration.id,
                                           owner_type.value, deleted)
    return owners


# -- companies → customers (R-COMP-1, R-COMP-2) ----------------------------------------------


def sync_companies(ctx: StepContext) -> dict[str, int]:
    """Finds the qualifying deals (companies are reached only through them, R-COMP-1), stages
    each with its primary company and its line items for sync_deals, and upserts every company
    on them.

    Three stages overlap: the deal search (HubSpot's search budget) in one thread; in another,
    everything else the deals need that does not depend on the ledger — their company and
    line-item associations, the companies and the line items, in full batch reads pooled across
    chunks (extract.ahead, the general budget, which would otherwise idle while the search
    runs); the ledger writes here, in R-SYNC-2's order (this step writes companies only)."""
    writer, run_id = ctx.writer, ctx.run_id
    staging = Staging(writer.conn)
    with writer.batch():
        staging.clear_stage(run_id)
    company_ids: set[str] = set()
    seen: set[str] = set()
    staged = 0
    tally = Tally("companies")
    # Read here, not in the read-ahead thread: the writer's connection is this thread's.
    changed_lines, deleted_lines = _line_changes(ctx) if ctx.window is not None else ([], [])
    retry = set(_open(ctx, RemoteType.DEAL)) | _owners_of_deleted_lines(
        ctx, RemoteType.DEAL, deleted_lines) | ctx.named_deals
    lost: set[str] = set()
    deals = prefetch(reads.rebatch(_deals_to_sync(ctx, seen, retry, lost, changed_lines),
                                   DOCUMENT_BATCH))
    for found in prefetch(ahead.read_ahead(ctx.hook, deals)):
        staging.stage(run_id, RemoteType.DEAL, [
            (str(d.raw.get("id", "")), _jsonb({"deal": d.raw, "company_id": d.company_id,
                                               LINES: found.lines_of(d)}))
            for d in found.deals])
        staging.stage(run_id, RemoteType.COMPANY,
                      [(str(raw.get("id", "")), _jsonb(raw)) for raw in found.companies])
        company_ids.update(str(raw.get("id", "")) for raw in found.companies)
        _load_companies(ctx, tally, found.companies)
        staged += len(found.deals)
        log.info("companies: %s closed-won deals found, %s staged with their lines, %s "
                 "companies", f"{len(seen):,}", f"{staged:,}", f"{len(company_ids):,}")
    if ctx.window is not None:
        # Customers whose company changed in HubSpot while none of its deals did.
        for page in reads.changed_companies(ctx.hook, ctx.window):
            mapped = writer.mapped(RemoteType.COMPANY, [str(r["id"]) for r in page])
            fresh = [r for r in page if str(r["id"]) in mapped
                     and str(r["id"]) not in company_ids]
            company_ids.update(str(r["id"]) for r in fresh)
            _load_companies(ctx, tally, fresh)
    for page in _retried(ctx, tally, RemoteType.COMPANY, company_ids):
        _load_companies(ctx, tally, page)
    # Deals that stopped qualifying in the window: sync_deals voids their drafts.
    staging.stage(run_id, RemoteType.DEAL, [(i, _jsonb({LOST: True})) for i in lost - seen])
    return tally.counts


def _jsonb(value: Any) -> str:
    """JSON PostgreSQL's jsonb accepts: it refuses NUL and lone surrogates, which HubSpot may
    send inside a text value (the extract already replaced them; staging must never fail)."""
    return json.dumps(valid_unicode(value))


def _deals_to_sync(ctx: StepContext, seen: set[str], retry: set[str], lost: set[str],
                   changed_lines: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
    """Pages of qualifying deals: all of them, or (incremental, backfill window) those
    modified in the window and those of the line items changed in it; and the deals to retry
    (open problems, deleted lines) that still qualify. `seen` collects their ids; `lost` the
    deals changed in the window that no longer qualify."""
    cutoff, won = ctx.integration.cutoff_date, ctx.mapping.won_stages
    if ctx.window is None:
        pages = closed_won.closed_won_deals(ctx.hook, cutoff, won=won)
    else:
        pages = reads.partition(reads.changed(ctx.hook, RemoteType.DEAL, ctx.window),
                                  lambda page: closed_won.qualifying_deals(page, cutoff, won),
                                  lost)
    for page in pages:
        seen.update(str(r.get("id", "")) for r in page)
        yield page
    owners = reads.owners_of_lines(ctx.hook, RemoteType.DEAL, changed_lines) | retry
    for page in reads.raw_by_id(ctx.hook, RemoteType.DEAL, owners - seen):
        page = closed_won.qualifying_deals(page, cutoff, won)
        seen.update(str(r.get("id", "")) for r in page)
        if page:
            yield page


def _load_companies(ctx: StepContext, tally: Tally, page: list[dict[str, Any]]) -> None:
    if not page:
        return
    drafts = [draft for company in reads.parse(Company, page)
              if (draft := _draft(tally, map_company_to_customer, company)) is not None]
    with ctx.writer.batch():
        for draft, outcome in zip(drafts, ctx.writer.upsert_customers(drafts), strict=True):
            tally.add(outcome, RemoteType.COMPANY, str(draft.remote_id))
        tally.flush(ctx)


# -- closed-won deals → draft contracts (R-DEAL-1…8) -----------------------------------------


def sync_deals(ctx: StepContext) -> dict[str, int]:
    writer = ctx.writer
    tally = Tally("deals", total=Staging(writer.conn).staged_count(ctx.run_id, RemoteType.DEAL))
    staged: set[str] = set()
    retry = set(_open(ctx, RemoteType.DEAL))
    lost: set[str] = set()
    for deals, lines, companies in prefetch(_deal_batches(ctx, lost)):
        staged.update(deals)
        tally.lines = _line_ids(lines)
        products = _unmapped_products(ctx, tally, lines.values())
        drafts = [draft for deal_id, (deal, company_id) in deals.items()
                  if (draft := _draft(tally, _deal_draft, deal, lines.get(deal_id, []),
                                      ctx.mapping, products=products,
                                      company=companies.get(company_id) if company_id
                                      else None)) is not None]
        _warn_drafts(tally, RemoteType.DEAL, drafts)
        with writer.batch():
            for draft, outcome in zip(drafts, writer.upsert_contracts(drafts), strict=True):
                tally.add(outcome, RemoteType.DEAL, draft.remote_id)
            tally.flush(ctx)
    if ctx.window is not None:
        lost |= reads.archived_in(ctx.hook, RemoteType.DEAL, ctx.window)
    else:
        lost |= set(writer.live_documents(RemoteType.DEAL))
    _void_lost(ctx, tally, RemoteType.DEAL, (lost | retry) - staged)
    return tally.counts


def _warn_drafts(tally: Tally, remote_type: RemoteType, drafts: Sequence[Any]) -> None:
    """The map layer's warnings (an amount HubSpot rounds differently…): worth knowing,
    nothing to fix in the sync."""
    for draft in drafts:
        for warning in getattr(draft, "warnings", ()):
            tally.warn(remote_type, draft.remote_id, warning)


def _void_lost(ctx: StepContext, tally: Tally, remote_type: RemoteType,
               candidates: set[str]) -> None:
    """Void the drafts of the candidates that no longer qualify (DESIGN "lost deals and
    invoices"), settle their open problems, and say why in the errors log. Each candidate is
    read again by id, so a record that still qualifies is never voided."""
    candidates.discard("")
    if not candidates:
        return
    cutoff = ctx.integration.cutoff_date
    properties = (["dealstage", "closedate"] if remote_type is RemoteType.DEAL
                  else ["hs_invoice_date"])
    raws = {str(r.get("id", "")): r for page in
            reads.raw_by_id(ctx.hook, remote_type, candidates, properties) for r in page}
    won = ctx.mapping.won_stages
    reasons = {rid: reason for rid in candidates if (reason := (
        closed_won.why_deal_lost(raws.get(rid), cutoff, won) if remote_type is RemoteType.DEAL
        else reads.why_invoice_lost(raws.get(rid), cutoff))) is not None}
    if not reasons:
        return
    with ctx.writer.batch():
        voided, notes = ctx.writer.void_documents(remote_type, reasons)
        tally.counts[Change.VOIDED.value] += voided
        tally.problems.extend(notes)
        tally.settle(remote_type, reasons)
        tally.flush(ctx)


DealBatch = tuple[dict[str, tuple[Deal | MappingError, str | None]],
                  dict[str, list[LineItem | MappingError]], dict[str, Company]]


def _deal_batches(ctx: StepContext, lost: set[str]) -> Iterator[DealBatch]:
    """Staged deals with their line items and primary companies, a batch at a time; the ids
    staged as lost go to `lost`. Runs in the read-ahead thread, so it reads the staging
    through a connection of its own."""
    with closing(ctx.connect()) as conn:
        staging = Staging(conn)
        for batch in staging.staged(ctx.run_id, RemoteType.DEAL, DOCUMENT_BATCH):
            lost.update(deal_id for deal_id, payload in batch if payload.get(LOST))
            deals = {deal_id: (reads.parse_one(Deal, payload["deal"]),
                               payload.get("company_id")) for deal_id, payload in batch
                     if not payload.get(LOST)}
            readable = [i for i, (d, _) in deals.items() if not isinstance(d, MappingError)]
            staged_lines = {deal_id: payload[LINES] for deal_id, payload in batch
                            if not payload.get(LOST) and LINES in payload}
            lines = {i: reads.parse(LineItem, staged_lines[i]) for i in readable
                     if i in staged_lines}
            # Staged without lines (by an earlier version, mid-run): read them now.
            lines.update(_lines_by_owner(ctx, RemoteType.DEAL,
                                         [i for i in readable if i not in staged_lines]))
            yield deals, lines, _staged_companies(staging, ctx.run_id,
                                                  [c for _, c in deals.values() if c])


def _deal_draft(deal: Deal, lines: Sequence[LineItem | MappingError], mapping: MappingContext,
                *, company: Company | None, products: Mapping[str, Product]) -> ContractDraft:
    return map_deal_to_contract(deal, _readable_lines(deal, lines), mapping, company=company,
                                products=products)


def _staged_companies(staging: Staging, run_id: int, ids: Iterable[str]
                      ) -> dict[str, Company]:
    """The deals' primary companies as sync_companies read them; one that HubSpot no longer
    returned (deleted) is absent, and its deals fall back to their mapped customer, if any."""
    found: dict[str, Company] = {}
    for company_id, raw in staging.staged_payloads(run_id, RemoteType.COMPANY,
                                                   sorted(set(ids))).items():
        company = reads.parse_one(Company, raw)
        if isinstance(company, Company):
            found[company_id] = company
    return found


# -- invoices → sales invoices (R-INV-1…6) ----------------------------------------------------


def sync_invoices(ctx: StepContext) -> dict[str, int]:
    tally = Tally("invoices")
    cutoff = ctx.integration.cutoff_date
    seen: set[str] = set()
    retry = set(_open(ctx, RemoteType.INVOICE))
    lost: set[str] = set()
    # EARLY_READS: the line items changed and deleted, and the invoices archived, in the
    # window, read beside the search of changed invoices.
    line_changes = ctx.early.submit(_line_changes, ctx) if ctx.window is not None else None
    archived = (ctx.early.submit(reads.archived_in, ctx.hook, RemoteType.INVOICE, ctx.window)
                if ctx.window is not None else None)
    if ctx.window is None:
        pages = reads.invoices(ctx.hook, cutoff)
    else:
        pages = reads.partition(reads.changed(ctx.hook, RemoteType.INVOICE, ctx.window),
                                  lambda page: reads.qualifying_invoices(page, cutoff), lost)
    searched = prefetch(reads.rebatch(pages, DOCUMENT_BATCH))
    for chunk, lines, found in prefetch(_with_lines(ctx, searched)):
        seen.update(str(r.get("id", "")) for r in chunk)
        _load_invoices(ctx, tally, chunk, lines, found)
    owners = retry - seen
    if line_changes is not None:
        changed_lines, deleted_lines = line_changes.result()
        owners |= reads.owners_of_lines(ctx.hook, RemoteType.INVOICE, changed_lines)
        owners |= _owners_of_deleted_lines(ctx, RemoteType.INVOICE, deleted_lines)
    for page in reads.raw_by_id(ctx.hook, RemoteType.INVOICE, owners - seen):
        page = reads.qualifying_invoices(page, cutoff)
        seen.update(str(r.get("id", "")) for r in page)
        _load_invoices(ctx, tally, page)
    if archived is not None:
        lost |= archived.result()
    else:
        lost |= set(ctx.writer.live_documents(RemoteType.INVOICE))
    _void_lost(ctx, tally, RemoteType.INVOICE, (lost | retry) - seen)
    return tally.counts


Lines = dict[str, list[LineItem | MappingError]]


def _with_lines(ctx: StepContext, chunks: Iterator[list[dict[str, Any]]]
                ) -> Iterator[tuple[list[dict[str, Any]], Lines, Mapping[str, Party]]]:
    """Each chunk of invoices with their line items (read ahead, in its own thread)."""
    for chunk in chunks:
        readable = [i.id for i in reads.parse(Invoice, chunk) if isinstance(i, Invoice)]
        yield chunk, _lines_by_owner(ctx, RemoteType.INVOICE, readable), _parties(ctx, readable)


def _parties(ctx: StepContext, invoice_ids: Sequence[str]) -> Mapping[str, Party]:
    """The invoices' companies and contacts, read only with `--invoice-parties hubspot`;
    contacts only when HubSpot granted the scope to read them (README, "Beyond the reference
    connector")."""
    if ctx.settings.invoice_parties != InvoiceParties.HUBSPOT:
        return {}
    return parties.invoice_parties(ctx.hook, invoice_ids, contacts=parties.may_read_contacts(
        ctx.integration.scope))


def _load_invoices(ctx: StepContext, tally: Tally, page: list[dict[str, Any]],
                   lines: dict[str, list[LineItem | MappingError]] | None = None,
                   found: Mapping[str, Party] | None = None) -> None:
    if not page:
        return
    invoices = reads.parse(Invoice, page)
    if lines is None:
        readable = [i.id for i in invoices if isinstance(i, Invoice)]
        lines = _lines_by_owner(ctx, RemoteType.INVOICE, readable)
        found = _parties(ctx, readable)
    tally.lines = _line_ids(lines)
    # Invoices run before the products step: an unmapped product is read now, so its item is
    # written right once (DESIGN "first sync with invoices on").
    products = _unmapped_products(ctx, tally, lines.values())
    drafts = [draft for invoice in invoices
              if (draft := _draft(tally, _invoice_draft, invoice,
                                  lines.get(getattr(invoice, "id", ""), []), ctx.mapping,
                                  products=products,
                                  party=(found or {}).get(getattr(invoice, "id", "")))
                  ) is not None]
    _warn_drafts(tally, RemoteType.INVOICE, drafts)
    with ctx.writer.batch():
        for draft, outcome in zip(drafts, ctx.writer.upsert_invoices(drafts), strict=True):
            tally.add(outcome, RemoteType.INVOICE, draft.remote_id)
        tally.flush(ctx)


def _invoice_draft(invoice: Invoice, lines: Sequence[LineItem | MappingError],
                   mapping: MappingContext, *, products: Mapping[str, Product],
                   party: Party | None = None) -> InvoiceDraft:
    return map_invoice_to_sales_invoice(invoice, _readable_lines(invoice, lines), mapping,
                                        products=products, party=party)


# -- shared by deals and invoices -------------------------------------------------------------


def _lines_by_owner(ctx: StepContext, owner_type: RemoteType, owner_ids: Sequence[str]
                    ) -> dict[str, list[LineItem | MappingError]]:
    """Each deal's or invoice's line items (associations, then batch reads of 100). A line
    HubSpot no longer returns (deleted since) is left out."""
    if not owner_ids:
        return {}
    links = reads.line_items_of(ctx.hook, owner_type, owner_ids)
    records = reads.read_by_id(ctx.hook, RemoteType.LINE_ITEM, LineItem,
                                 [i for ids in links.values() for i in ids])
    return {owner: [records[i] for i in ids if i in records] for owner, ids in links.items()}


def _line_ids(lines: Mapping[str, Sequence[LineItem | MappingError]]
              ) -> dict[str, tuple[str, ...]]:
    """Each owner's line item ids, readable or not."""
    return {owner: tuple(line.id if isinstance(line, LineItem) else line.remote_id
                         for line in group) for owner, group in lines.items()}


def _readable_lines(owner: HubSpotRecord, lines: Sequence[LineItem | MappingError]
                    ) -> list[LineItem]:
    """A line HubSpot sent unreadable means the owner is not imported, naming the line
    (DESIGN "partly bad records")."""
    for line in lines:
        if isinstance(line, MappingError):
            raise MappingError(owner.REMOTE_TYPE, owner.id,
                               f"{owner.subject} not imported: {line.message}",
                               cause=line.cause)
    return [line for line in lines if isinstance(line, LineItem)]


def _unmapped_products(ctx: StepContext, tally: Tally,
                       lines: Iterable[Sequence[LineItem | MappingError]]
                       ) -> Mapping[str, Product]:
    """The products of these lines that have no item yet (R-DEAL-2: created on the spot),
    read from HubSpot so that each item is written right once. An archived product is read
    from HubSpot's recycle bin (`archived=true`): its item gets the product's real type,
    description and accounts. Only a product HubSpot no longer has at all is drafted from the
    line's own copies, with a warning."""
    product_ids = {line.product_id for group in lines for line in group
                   if isinstance(line, LineItem) and line.product_id}
    mapped = ctx.writer.mapped(RemoteType.PRODUCT, sorted(product_ids))
    missing = [p for p in product_ids if p not in mapped]
    found = reads.read_by_id(ctx.hook, RemoteType.PRODUCT, Product, missing)
    archived = [p for p in missing if p not in found]
    found.update(reads.read_by_id(ctx.hook, RemoteType.PRODUCT, Product, archived,
                                    archived=True))
    for pid in sorted(p for p in archived if p not in found):
        tally.warn(RemoteType.PRODUCT, pid,
                   f"Product {pid} is no longer in HubSpot (not even archived): its item is "
                   "drafted from the SKU and name its lines carry, as a goods item; check the "
                   "item's type and accounts")
    return {pid: product for pid, product in found.items() if isinstance(product, Product)}
