"""`LedgerWriter`: the load layer. Upserts drafts into the ledger through integration_records.

One writer per sync step, on the connection that holds the integration's write lock
(`LedgerHook.writer`). Every remote record is matched by (integration, remote type, remote id);
its last written draft is fingerprinted, so a re-run with nothing changed writes nothing
(R-PROD-5, issue 4 "re-run changes nothing").

One write path per record kind: a page of drafts is written in a handful of set-based
statements (`ledger/bulk.py`), and every business rule (SKU identity, locked periods, documents
accountants own, voids) is decided there, once. If a statement of the page fails, the same page
function runs again for each record alone under its own savepoint, so one bad record never
loses its page (R-SYNC-6); each call says what happened to each record (`Outcome`). The caller
commits batches (`batch()`).

Knows nothing about HubSpot's API: drafts come from the map layer.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import psycopg

from hubspot_ledger.drafts import (
    PLACEHOLDER_NAME,
    ContractDraft,
    CustomerDraft,
    InvoiceDraft,
    ItemDraft,
    fingerprint,
)
from hubspot_ledger.load import bulk
from hubspot_ledger.load.problems import Problem, log_problems
from hubspot_ledger.load.records import ContractStatus, CustomerType, ProblemCause, RemoteType

log = logging.getLogger(__name__)
D = TypeVar("D", ContractDraft, InvoiceDraft)

TABLE_OF = {RemoteType.PRODUCT: "items", RemoteType.COMPANY: "customers",
            RemoteType.DEAL: "contracts", RemoteType.INVOICE: "invoices"}
# Document statuses the sync may write over: its own drafts, and its voids (a record that
# qualifies again brings the same row back to draft). Anything else is the accountants'.
WRITABLE = frozenset({ContractStatus.DRAFT.value, ContractStatus.VOID.value})


class Change(StrEnum):
    """What a sync did to one record; also the keys of `sync_runs.counts`."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"
    VOIDED = "voided"  # a draft whose HubSpot record no longer qualifies


@dataclass(frozen=True, slots=True)
class Outcome:
    change: Change
    local_id: int | None = None
    message: str | None = None  # for the errors log when skipped or failed
    # The message is information (a document accountants own was left alone), not a problem
    # the record still has: it is logged as a settled warning, never retried.
    warning: bool = False
    # Where a failure's cause lies (ProblemCause), which decides when the record is retried:
    # the ledger's refusals are retried every run unless the record's own values are at fault.
    cause: ProblemCause = ProblemCause.LEDGER


@dataclass(frozen=True, slots=True)
class Mapped:
    local_id: int
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class LockedPeriod:
    start: dt.date
    end: dt.date


class Rejected(Exception):
    """A record the ledger must not take as it is; `change` says how it is counted."""

    def __init__(self, message: str, change: Change = Change.FAILED, *,
                 warning: bool = False, cause: ProblemCause = ProblemCause.LEDGER) -> None:
        super().__init__(message)
        self.message = message
        self.change = change
        self.warning = warning
        self.cause = cause


class RecordWriter:
    """The write machinery (transactions, the page-then-record fallback, integration records)
    and the reference records documents point at: items and customers. `LedgerWriter` adds
    the documents."""

    def __init__(self, conn: psycopg.Connection[Any], integration_id: int,
                 organization_id: int) -> None:
        self.conn = conn
        self.integration_id = integration_id
        self.organization_id = organization_id
        self._locked: dict[int, list[LockedPeriod]] = {}
        # The writer's statements take a page of records as arrays (= ANY, unnest). Planned
        # once for all (a prepared statement's generic plan), they see neither the array's
        # length nor the rows this run added since the table's statistics, and the lookup of
        # a page's integration records filtered every record of the type against the array
        # (0.2 s a page in a large first sync: the bench, with auto_explain). Plan each
        # execution with its own values.
        conn.execute("SET plan_cache_mode = force_custom_plan")

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for a batch of records; each record still has its own savepoint."""
        with self.conn.transaction():
            yield

    def _guarded(self, remote_type: RemoteType, remote_id: str, load: Any) -> Outcome:
        try:
            with self.conn.transaction():
                outcome: Outcome = load()
                return outcome
        except Rejected as exc:
            return Outcome(exc.change, message=exc.message, warning=exc.warning,
                           cause=exc.cause)
        except psycopg.errors.NumericValueOutOfRange:
            # Only documents hold amounts: the record's own quantities and prices.
            return Outcome(Change.FAILED, message=f"{_label(remote_type, remote_id)}: an amount "
                           "is too large for the ledger; check the quantities and prices "
                           "in HubSpot", cause=ProblemCause.HUBSPOT)
        except psycopg.DataError as exc:
            # A product's or company's own values; a document's row may hold values of the
            # customer or item created with it (another record), so it is retried every run.
            return Outcome(Change.FAILED, message=f"{_label(remote_type, remote_id)}: the "
                           f"ledger refused a value ({_first_line(exc)}); check the record "
                           "in HubSpot", cause=ProblemCause.HUBSPOT if remote_type in (
                               RemoteType.PRODUCT, RemoteType.COMPANY) else ProblemCause.LEDGER)
        except psycopg.IntegrityError as exc:
            return Outcome(Change.FAILED, message=f"{_label(remote_type, remote_id)}: the "
                           f"ledger refused the record ({_first_line(exc)})")

    # -- integration records ------------------------------------------------------------

    def mapped(self, remote_type: RemoteType, remote_ids: Sequence[str]) -> dict[str, Mapped]:
        """The ledger rows these remote records were written to, by remote id."""
        if not remote_ids:
            return {}
        rows = self.conn.execute(
            "SELECT remote_id, local_id, fingerprint FROM ledger.integration_records "
            "WHERE integration_id = %s AND remote_type = %s AND remote_id = ANY(%s)",
            [self.integration_id, remote_type.value, list(remote_ids)]).fetchall()
        return {r[0]: Mapped(int(r[1]), r[2]) for r in rows}

    def placeholder_customer_id(self) -> int:
        """The organization's one "Unknown" customer (DESIGN "placeholders")."""
        self.conn.execute(
            "INSERT INTO ledger.customers (organization_id, name, customer_type, is_placeholder)"
            " VALUES (%s, %s, 'company', true) "
            "ON CONFLICT (organization_id) WHERE is_placeholder DO NOTHING",
            [self.organization_id, PLACEHOLDER_NAME])
        return self._placeholder_id("customers")

    def placeholder_company_id(self) -> int:
        """The organization's one "Unknown" accounting company, for invoices (R-INV-6)."""
        self.conn.execute(
            "INSERT INTO ledger.companies (organization_id, name, is_placeholder) "
            "VALUES (%s, %s, true) ON CONFLICT DO NOTHING",
            [self.organization_id, PLACEHOLDER_NAME])
        return self._placeholder_id("companies")

    def _placeholder_id(self, table: str) -> int:
        row = self.conn.execute(
            f"SELECT id FROM ledger.{table} WHERE organization_id = %s "  # noqa: S608
            "AND is_placeholder", [self.organization_id]).fetchone()
        if row is None:
            raise Rejected(f"the ledger has a {table[:-1]} named \"{PLACEHOLDER_NAME}\" that is "
                           "not the placeholder; rename it so the sync can create its own")
        return int(row[0])

    def locked_periods(self, company_id: int) -> list[LockedPeriod]:
        if company_id not in self._locked:
            rows = self.conn.execute(
                "SELECT start_date, end_date FROM ledger.accounting_periods "
                "WHERE company_id = %s AND locked ORDER BY start_date", [company_id]).fetchall()
            self._locked[company_id] = [LockedPeriod(r[0], r[1]) for r in rows]
        return self._locked[company_id]

    def _check_period(self, draft: ContractDraft) -> None:
        """R-DEAL-8: a deal dated in a locked period of its company fails."""
        for period in self.locked_periods(draft.company_id):
            if period.start <= draft.contract_date <= period.end:
                raise Rejected(
                    f"Deal {draft.remote_id}: close date {draft.contract_date} is in a locked "
                    f"accounting period ({period.start} to {period.end}); the contract was not "
                    "written. Reopen the period, or move the close date in HubSpot")

    # -- the one write path: a page of records in a few set-based statements ---------------

    def upsert_items(self, drafts: Sequence[ItemDraft]) -> list[Outcome]:
        """A page of products as items (R-PROD-1…5)."""
        return self._page(RemoteType.PRODUCT, drafts, self._items_page)

    def upsert_customers(self, drafts: Sequence[CustomerDraft]) -> list[Outcome]:
        """A page of companies as customers (R-COMP-2)."""
        return self._page(RemoteType.COMPANY, drafts, self._customers_page)

    def _page(self, remote_type: RemoteType, drafts: Sequence[Any],
              page: Callable[[Sequence[Any]], list[Outcome]]) -> list[Outcome]:
        """The page at once; if a statement fails, the same page function again for each
        record alone under its own savepoint, so one bad record costs only itself (R-SYNC-6).
        Every business rule lives in the page functions, written once."""
        if not drafts:
            return []
        try:
            with self.conn.transaction():
                return page(drafts)
        except (psycopg.Error, Rejected) as exc:
            log.info("A page of %d records could not be written at once (%s); writing them "
                     "one by one", len(drafts), _first_line(exc))
            return [self._guarded(remote_type, d.remote_id, lambda d=d: page([d])[0])
                    for d in drafts]

    def _split(self, remote_type: RemoteType, table: str, drafts: Sequence[Any]
               ) -> tuple[dict[str, str], dict[str, tuple[int, str | None, str | None]],
                          dict[str, Outcome]]:
        """Fingerprints, what is mapped, and the outcomes of the unchanged drafts."""
        if len({d.remote_id for d in drafts}) != len(drafts):
            raise Rejected("the page names a record twice")  # the record-by-record path copes
        prints = {d.remote_id: fingerprint(d) for d in drafts}
        state = self._documents(remote_type, table, list(prints))
        unchanged = {rid: Outcome(Change.UNCHANGED, found[0]) for rid, found in state.items()
                     if found[1] == prints[rid]}
        return prints, state, unchanged

    def _customers_page(self, drafts: Sequence[CustomerDraft]) -> list[Outcome]:
        if not drafts:
            return []
        prints, state, outcomes = self._split(RemoteType.COMPANY, "customers", drafts)
        todo = [d for d in drafts if d.remote_id not in outcomes]
        new = [d for d in todo if d.remote_id not in state]
        changed = [d for d in todo if d.remote_id in state]
        rows = [(d.name, d.customer_type.value, d.email, d.phone, d.website, d.address_line1,
                 d.address_line2, d.city, d.state, d.postal_code, d.country)
                for d in new + changed]
        ids = bulk.insert_rows(self.conn, bulk.CUSTOMERS, self.organization_id, rows[:len(new)])
        old_ids = [state[str(d.remote_id)][0] for d in changed]
        bulk.update_rows(self.conn, bulk.CUSTOMERS, self.organization_id, old_ids,
                         rows[len(new):])
        return self._linked(RemoteType.COMPANY, "customers", drafts, prints, outcomes,
                            new, ids, changed, old_ids)

    def _items_page(self, drafts: Sequence[ItemDraft]) -> list[Outcome]:
        if not drafts:
            return []
        prints, state, outcomes = self._split(RemoteType.PRODUCT, "items", drafts)
        outcomes.update(self._sku_taken([d for d in drafts if d.remote_id in state
                                         and d.remote_id not in outcomes], state))
        todo = [d for d in drafts if d.remote_id not in outcomes]
        changed = [d for d in todo if d.remote_id in state]
        old_ids = [state[d.remote_id][0] for d in changed]
        # A new product whose SKU an item already has takes that item (README "two products
        # with one SKU"); several new products with one SKU share the first one's new item.
        owners = dict(self.conn.execute(
            "SELECT sku, id FROM ledger.items WHERE organization_id = %s AND sku = ANY(%s)",
            [self.organization_id, [d.sku for d in todo if d.remote_id not in state]]
        ).fetchall())
        new: list[ItemDraft] = []
        for draft in todo:
            if draft.remote_id in state:
                continue
            if draft.sku in owners:
                changed.append(draft)
                old_ids.append(int(owners[draft.sku]))
            elif draft.sku not in {n.sku for n in new}:
                new.append(draft)
        rows = [(d.sku, d.name, d.description, d.item_type.value, d.income_account_id,
                 d.expense_account_id, d.deferred_revenue_account_id) for d in new + changed]
        ids = bulk.insert_rows(self.conn, bulk.ITEMS, self.organization_id, rows[:len(new)])
        bulk.update_rows(self.conn, bulk.ITEMS, self.organization_id, old_ids, rows[len(new):])
        by_sku = {d.sku: i for d, i in zip(new, ids, strict=True)}
        sharing = [d for d in todo if d.remote_id not in state and d not in new
                   and d not in changed]
        return self._linked(RemoteType.PRODUCT, "items", drafts, prints, outcomes,
                            new + sharing, ids + [by_sku[d.sku] for d in sharing],
                            changed, old_ids)

    def _sku_taken(self, changed: Sequence[ItemDraft],
                   state: dict[str, tuple[int, str | None, str | None]]) -> dict[str, Outcome]:
        """Mapped products whose SKU changed to one another item has: refused, the old item
        kept (the SKU is the item's identity in an organization)."""
        if not changed:
            return {}
        owners = dict(self.conn.execute(
            "SELECT sku, id FROM ledger.items WHERE organization_id = %s AND sku = ANY(%s)",
            [self.organization_id, [d.sku for d in changed]]).fetchall())
        return {d.remote_id: Outcome(Change.FAILED, message=(
                    f"Product {d.remote_id}: its SKU changed to \"{d.sku}\", which item "
                    f"{owners[d.sku]} already has; give each product its own SKU in HubSpot"))
                for d in changed
                if d.sku in owners and int(owners[d.sku]) != state[d.remote_id][0]}

    def _linked(self, remote_type: RemoteType, table: str, drafts: Sequence[Any],
                prints: dict[str, str], outcomes: dict[str, Outcome], new: Sequence[Any],
                new_ids: Sequence[int], changed: Sequence[Any], old_ids: Sequence[int]
                ) -> list[Outcome]:
        """Record where each written draft went, and say what happened to every draft."""
        pairs = [*zip(new, new_ids, strict=True), *zip(changed, old_ids, strict=True)]
        bulk.upsert_links(self.conn, self.integration_id, [
            bulk.Link(remote_type.value, d.remote_id, table, local_id, prints[d.remote_id])
            for d, local_id in pairs])
        created = {id(d) for d in new}
        for d, local_id in pairs:
            outcomes[d.remote_id] = Outcome(
                Change.CREATED if id(d) in created else Change.UPDATED, local_id)
        return [outcomes[d.remote_id] for d in drafts]

    def _documents(self, remote_type: RemoteType, table: str, ids: Sequence[str]
                   ) -> dict[str, tuple[int, str | None, str | None]]:
        """remote id → (local id, fingerprint, status) of documents that still exist."""
        status = "t.status" if table in ("contracts", "invoices") else "NULL"
        rows = self.conn.execute(
            f"SELECT r.remote_id, r.local_id, r.fingerprint, {status} "  # noqa: S608
            f"FROM ledger.integration_records r JOIN ledger.{table} t ON t.id = r.local_id "
            "AND t.organization_id = %s WHERE r.integration_id = %s AND r.remote_type = %s "
            "AND r.remote_id = ANY(%s)",
            [self.organization_id, self.integration_id, remote_type.value, list(ids)]
        ).fetchall()
        return {str(r[0]): (int(r[1]), r[2], r[3]) for r in rows}

    def _alive(self, remote_type: RemoteType, table: str, ids: Sequence[str]) -> dict[str, int]:
        return {k: v[0] for k, v in self._documents(remote_type, table, ids).items()}

    def _customer_ids(self, drafts: Sequence[CustomerDraft]) -> dict[str | None, int]:
        """Customer id per draft key (remote id; None for the placeholder), creating what is
        missing (R-DEAL-4) as one page."""
        found: dict[str | None, int] = {}
        if any(d.is_placeholder or d.remote_id is None for d in drafts):
            found[None] = self.placeholder_customer_id()
        wanted = {d.remote_id: d for d in drafts if d.remote_id and not d.is_placeholder}
        found.update(self._alive(RemoteType.COMPANY, "customers", list(wanted)))
        missing = [d for rid, d in wanted.items() if rid not in found]
        for draft, outcome in zip(missing, self._customers_page(missing), strict=True):
            assert outcome.local_id is not None
            found[draft.remote_id] = outcome.local_id
        return found

    def _item_ids(self, drafts: Sequence[ItemDraft]) -> dict[str, int]:
        """Item id per product id, creating the missing ones on the spot (R-DEAL-2) as one
        page."""
        wanted = {d.remote_id: d for d in drafts}
        found = self._alive(RemoteType.PRODUCT, "items", list(wanted))
        missing = [d for rid, d in wanted.items() if rid not in found]
        for draft, outcome in zip(missing, self._items_page(missing), strict=True):
            assert outcome.local_id is not None
            found[draft.remote_id] = outcome.local_id
        return found

class LedgerWriter(RecordWriter):
    """Documents: closed-won deals as draft contracts with their obligations, HubSpot invoices
    as sales invoices with their lines, and the voiding of drafts whose record was lost."""

    def upsert_contracts(self, drafts: Sequence[ContractDraft]) -> list[Outcome]:
        """A page of closed-won deals as draft contracts (R-DEAL-1…8)."""
        return self._page(RemoteType.DEAL, drafts, self._contracts_page)

    def upsert_invoices(self, drafts: Sequence[InvoiceDraft]) -> list[Outcome]:
        """A page of HubSpot invoices as sales invoices (R-INV-1…6)."""
        return self._page(RemoteType.INVOICE, drafts, self._invoices_page)

    def _contracts_page(self, drafts: Sequence[ContractDraft]) -> list[Outcome]:
        prints, state, outcomes, new, changed = self._classify(
            RemoteType.DEAL, drafts, check=self._check_period)
        todo = new + changed
        customers = self._customer_ids([d.customer for d in todo])
        items = self._item_ids([o.item for d in todo for o in d.obligations])
        rows = [(d.company_id, customers[None if d.customer.is_placeholder
                                         else d.customer.remote_id],
                 d.status.value, d.name, d.memo, d.currency, d.contract_date, d.total_amount)
                for d in todo]
        ids, old_ids = self._write(bulk.CONTRACTS, rows, len(new), changed, state)
        self._lines_page(bulk.OBLIGATIONS, "contract_id", [
            (local_id, local_id in old_ids,
             [(o.remote_id, (items[o.item.remote_id], o.description, o.quantity, o.unit_price,
                             o.discount_percent, o.discount_amount, o.amount,
                             o.recognition_strategy.value, o.service_start_date,
                             o.service_end_date)) for o in d.obligations])
            for d, local_id in zip(todo, ids + old_ids, strict=True)])
        return self._linked(RemoteType.DEAL, "contracts", drafts, prints, outcomes, new, ids,
                            changed, old_ids)

    def _write(self, table: bulk.Table, rows: Sequence[tuple[Any, ...]], new: int,
               changed: Sequence[D], state: dict[str, tuple[int, str | None, str | None]]
               ) -> tuple[list[int], list[int]]:
        """The first `new` rows inserted, the rest written over the changed documents' rows;
        returns the new ids and the changed ones, in order."""
        ids = bulk.insert_rows(self.conn, table, self.organization_id, rows[:new])
        old_ids = [state[d.remote_id][0] for d in changed]
        bulk.update_rows(self.conn, table, self.organization_id, old_ids, rows[new:])
        return ids, old_ids

    def _classify(self, remote_type: RemoteType, drafts: Sequence[D],
                  check: Callable[[D], None] | None = None
                  ) -> tuple[dict[str, str], dict[str, tuple[int, str | None, str | None]],
                             dict[str, Outcome], list[D], list[D]]:
        """Fingerprints, what is mapped, the outcomes of the documents left alone, and the new
        and changed ones to write. Unchanged: same fingerprint and still a draft (a void one
        is rewritten, so it returns to draft). Left alone: a document accountants moved on
        (a warning), or one `check` rejects."""
        prints = {d.remote_id: fingerprint(d) for d in drafts}
        state = self._documents(remote_type, TABLE_OF[remote_type], list(prints))
        outcomes: dict[str, Outcome] = {}
        new: list[D] = []
        changed: list[D] = []
        for draft in drafts:
            found = state.get(draft.remote_id)
            if (found is not None and found[1] == prints[draft.remote_id]
                    and found[2] == ContractStatus.DRAFT):
                outcomes[draft.remote_id] = Outcome(Change.UNCHANGED, found[0])
                continue
            try:
                if found is not None and found[2] not in WRITABLE:
                    raise Rejected(_not_draft(draft.remote_id, found[0], found[2],
                                              remote_type.value), Change.SKIPPED, warning=True)
                if check is not None:
                    check(draft)
            except Rejected as exc:
                outcomes[draft.remote_id] = Outcome(exc.change, message=exc.message,
                                                    warning=exc.warning, cause=exc.cause)
                continue
            (changed if found is not None else new).append(draft)
        return prints, state, outcomes, new, changed

    def _invoices_page(self, drafts: Sequence[InvoiceDraft]) -> list[Outcome]:
        prints, state, outcomes, new, changed = self._classify(RemoteType.INVOICE, drafts)
        todo = new + changed
        companies, customers = self._invoice_parties(todo)
        items = self._item_ids([line.item for d in todo for line in d.lines])
        rows = [(companies[d.remote_id], customers[d.remote_id], ContractStatus.DRAFT.value,
                 d.number, d.invoice_date, d.due_date, d.currency, d.total_amount)
                for d in todo]
        ids, old_ids = self._write(bulk.INVOICES, rows, len(new), changed, state)
        self._lines_page(bulk.INVOICE_LINES, "invoice_id", [
            (local_id, local_id in old_ids,
             [(line.remote_key, (items[line.item.remote_id], line.description, line.quantity,
                                 line.unit_price, line.amount)) for line in d.lines])
            for d, local_id in zip(todo, ids + old_ids, strict=True)])
        return self._linked(RemoteType.INVOICE, "invoices", drafts, prints, outcomes, new, ids,
                            changed, old_ids)

    def _invoice_parties(self, drafts: Sequence[InvoiceDraft]
                         ) -> tuple[dict[str, int], dict[str, int]]:
        """Accounting company and customer ids per invoice: R-INV-6's "Unknown" ones, or with
        `--invoice-parties hubspot` (mapping.parties) the configured company and the customer of
        the invoice's company (created if not yet mapped, as R-COMP-2) or contact."""
        if not drafts:
            return {}, {}
        companies = {d.remote_id: d.company.company_id for d in drafts
                     if not d.company.is_placeholder and d.company.company_id is not None}
        if len(companies) < len(drafts):
            unknown = self.placeholder_company_id()
            companies.update({d.remote_id: unknown for d in drafts if d.remote_id not in companies})
        individual = [d.customer for d in drafts if _individual(d.customer)]
        by_email = self._individual_ids(individual)
        by_key = self._customer_ids([d.customer for d in drafts if not _individual(d.customer)])
        customers = {d.remote_id: by_email[_email_key(d.customer)] if _individual(d.customer)
                     else by_key[None if d.customer.is_placeholder else d.customer.remote_id]
                     for d in drafts}
        return companies, customers

    def _individual_ids(self, drafts: Sequence[CustomerDraft]) -> dict[str, int]:
        """Customer id per lowered email: the organization's individual customer with that
        email (case-insensitively; the oldest when several), else one created from the
        contact."""
        wanted = {_email_key(d): d for d in reversed(drafts)}
        if not wanted:
            return {}
        found = {str(email): int(id_) for email, id_ in self.conn.execute(
            "SELECT DISTINCT ON (lower(email)) lower(email), id FROM ledger.customers "
            "WHERE organization_id = %s AND customer_type = 'individual' AND NOT is_placeholder "
            "AND lower(email) = ANY(%s) ORDER BY lower(email), id",
            [self.organization_id, list(wanted)]).fetchall()}
        missing = [d for key, d in wanted.items() if key not in found]
        ids = bulk.insert_rows(self.conn, bulk.CUSTOMERS, self.organization_id, [
            (d.name, d.customer_type.value, d.email, d.phone, d.website, d.address_line1,
             d.address_line2, d.city, d.state, d.postal_code, d.country) for d in missing])
        found.update({_email_key(d): i for d, i in zip(missing, ids, strict=True)})
        return found

    def _lines_page(self, table: bulk.Table, parent_column: str,
                    parents: Sequence[tuple[int, bool, Sequence[tuple[str, tuple[Any, ...]]]]]
                    ) -> None:
        """Make each parent's lines exactly `lines` (remote key, values after the parent id):
        removed lines deleted, kept ones updated, new ones inserted, records linked."""
        existing = bulk.children_of(self.conn, self.integration_id, table, parent_column,
                                    [p for p, had_lines, _ in parents if had_lines])
        gone_ids: list[int] = []
        gone_keys: list[str] = []
        kept: list[tuple[str, int, tuple[Any, ...]]] = []
        added: list[tuple[str, tuple[Any, ...]]] = []
        for parent_id, _, lines in parents:
            have = existing.get(parent_id, {})
            wanted = {key for key, _ in lines}
            for key, child_id in have.items():
                if key not in wanted:
                    gone_ids.append(child_id)
                    gone_keys.append(key)
            for key, values in lines:
                row = (parent_id, *values)
                if key in have:
                    kept.append((key, have[key], row))
                else:
                    added.append((key, row))
        bulk.delete_rows(self.conn, table, self.organization_id, gone_ids)
        bulk.delete_links(self.conn, self.integration_id, RemoteType.LINE_ITEM.value, gone_keys)
        bulk.update_rows(self.conn, table, self.organization_id, [c for _, c, _ in kept],
                         [r for _, _, r in kept])
        new_ids = bulk.insert_rows(self.conn, table, self.organization_id,
                                   [r for _, r in added])
        bulk.upsert_links(self.conn, self.integration_id, [
            bulk.Link(RemoteType.LINE_ITEM.value, key, table.name, child_id, None)
            for key, child_id in [*((k, c) for k, c, _ in kept),
                                  *zip((k for k, _ in added), new_ids, strict=True)]])

    def owners_of_lines(self, owner_type: RemoteType, line_ids: Sequence[str]) -> set[str]:
        """Remote ids of the deals or invoices whose ledger lines were written from these
        HubSpot line items (through the lines' own integration records)."""
        if not line_ids:
            return set()
        table, parent = (("performance_obligations", "contract_id")
                         if owner_type is RemoteType.DEAL else ("invoice_lines", "invoice_id"))
        rows = self.conn.execute(
            "SELECT DISTINCT o.remote_id FROM ledger.integration_records l "
            f"JOIN ledger.{table} x ON x.id = l.local_id "  # noqa: S608
            "JOIN ledger.integration_records o ON o.integration_id = l.integration_id "
            f"AND o.remote_type = %s AND o.local_id = x.{parent} "
            "WHERE l.integration_id = %s AND l.remote_type = 'line_item' "
            "AND l.local_table = %s AND l.remote_id = ANY(%s)",
            [owner_type.value, self.integration_id, table, list(line_ids)]).fetchall()
        return {str(r[0]) for r in rows}

    # -- lost documents: void drafts whose HubSpot record no longer qualifies ---------------

    def live_documents(self, remote_type: RemoteType) -> dict[str, tuple[int, str]]:
        """remote id → (local id, status) of every document of this type the integration
        mapped that is not void: what a full read must find again."""
        table = TABLE_OF[remote_type]
        rows = self.conn.execute(
            f"SELECT r.remote_id, t.id, t.status FROM ledger.integration_records r "  # noqa: S608
            f"JOIN ledger.{table} t ON t.id = r.local_id AND t.organization_id = %s "
            "WHERE r.integration_id = %s AND r.remote_type = %s AND t.status <> 'void'",
            [self.organization_id, self.integration_id, remote_type.value]).fetchall()
        return {str(r[0]): (int(r[1]), str(r[2])) for r in rows}

    def void_documents(self, remote_type: RemoteType, reasons: dict[str, str]
                       ) -> tuple[int, list[Problem]]:
        """Void the drafts of these records (remote id → why it no longer qualifies): status
        `void`, lines and mapping kept, so the same row returns to draft if the record
        qualifies again. A document accountants moved on is left alone. Returns how many were
        voided and the warnings that say what happened, for the errors log."""
        table = TABLE_OF[remote_type]
        state = self._documents(remote_type, table, list(reasons))
        drafts = [rid for rid, found in state.items() if found[2] == ContractStatus.DRAFT]
        if drafts:
            self.conn.execute(
                f"UPDATE ledger.{table} SET status = 'void' "  # noqa: S608
                "WHERE organization_id = %s AND id = ANY(%s) AND status = 'draft'",
                [self.organization_id, [state[rid][0] for rid in drafts]])
        kind = remote_type.value
        document = "contract" if remote_type is RemoteType.DEAL else "invoice"
        notes: list[Problem] = []
        for rid, (local_id, _, status) in sorted(state.items()):
            if status == ContractStatus.VOID:
                continue
            if status == ContractStatus.DRAFT:
                text = (f"{kind.capitalize()} {rid} {reasons[rid]}: its draft {document} "
                        f"{local_id} is now void (it returns to draft if the {kind} "
                        "qualifies again)")
            else:
                text = (f"{kind.capitalize()} {rid} {reasons[rid]}, but its {document} "
                        f"{local_id} is {status}, so it was left as it is; review it by hand")
            notes.append(Problem(kind, rid, text, warning=True))
        return len(drafts), notes


def insert_errors(conn: psycopg.Connection[Any], integration_id: int, run_id: int | None,
                  step: str, errors: Sequence[tuple[str | None, str | None, str]]) -> None:
    """(remote_type, remote_id, message) problems into an integration's errors log: each
    record keeps one open entry while it fails (ledger/problems.py)."""
    log_problems(conn, integration_id, run_id, step, [Problem(t, i, m) for t, i, m in errors])


def _not_draft(remote_id: str, local_id: int, status: str | None, kind: str = "deal") -> str:
    document = "contract" if kind == "deal" else "invoice"
    return (f"{kind.capitalize()} {remote_id} changed in HubSpot, but its {document} {local_id} "
            f"is {status}, so the change was not applied; update the {document} by hand if it "
            "should follow")


def _label(remote_type: RemoteType, remote_id: str) -> str:
    return f"{remote_type.value.replace('_', ' ').capitalize()} {remote_id}"


def _individual(customer: CustomerDraft) -> bool:
    """A contact's customer (issue 14): known by its email, not by a HubSpot id."""
    return (customer.customer_type is CustomerType.INDIVIDUAL and not customer.is_placeholder
            and customer.remote_id is None and bool(customer.email))


def _email_key(customer: CustomerDraft) -> str:
    return (customer.email or "").strip().lower()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
