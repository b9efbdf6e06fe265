"""`LedgerWriter`: the load layer. Upserts drafts into the ledger through integration_records.

One writer per sync step, on the connection that holds the integration's write lock
(`LedgerHook.writer`). Every remote record is matched by (integration, remote type, remote id);
its last written draft is fingerprinted, so a re-run with nothing changed writes nothing
(R-PROD-5, issue 4 "re-run changes nothing").

Each `upsert_*` call loads one record inside a savepoint and says what happened (`Outcome`): a
database error rolls back that record alone and is reported as `failed`, so one bad record
never loses its batch (R-SYNC-6). The caller commits batches (`batch()`).

Knows nothing about HubSpot's API: drafts come from the map layer.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import psycopg

from hubspot_ledger.ledger import bulk
from hubspot_ledger.ledger.problems import Problem, log_problems
from hubspot_ledger.ledger.records import ContractStatus, RemoteType
from hubspot_ledger.sync.mapping.drafts import (
    PLACEHOLDER_NAME,
    ContractDraft,
    CustomerDraft,
    InvoiceDraft,
    ItemDraft,
    fingerprint,
)

log = logging.getLogger(__name__)

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
                 warning: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.change = change
        self.warning = warning


class LedgerWriter:
    def __init__(self, conn: psycopg.Connection[Any], integration_id: int,
                 organization_id: int) -> None:
        self.conn = conn
        self.integration_id = integration_id
        self.organization_id = organization_id
        self._locked: dict[int, list[LockedPeriod]] = {}

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
            return Outcome(exc.change, message=exc.message, warning=exc.warning)
        except psycopg.errors.NumericValueOutOfRange:
            return Outcome(Change.FAILED, message=f"{_label(remote_type, remote_id)}: an amount "
                           "is too large for the ledger; check the quantities and prices "
                           "in HubSpot")
        except psycopg.DataError as exc:
            return Outcome(Change.FAILED, message=f"{_label(remote_type, remote_id)}: the "
                           f"ledger refused a value ({_first_line(exc)}); check the record "
                           "in HubSpot")
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

    def _link(self, remote_type: RemoteType, remote_id: str, table: str, local_id: int,
              print_: str | None) -> None:
        self.conn.execute(
            "INSERT INTO ledger.integration_records "
            "(integration_id, remote_type, remote_id, local_table, local_id, fingerprint) "
            "VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (integration_id, remote_type, remote_id) DO UPDATE SET "
            "local_table = EXCLUDED.local_table, local_id = EXCLUDED.local_id, "
            "fingerprint = EXCLUDED.fingerprint",
            [self.integration_id, remote_type.value, remote_id, table, local_id, print_])

    def _unlink(self, remote_type: RemoteType, remote_ids: Sequence[str]) -> None:
        self.conn.execute(
            "DELETE FROM ledger.integration_records WHERE integration_id = %s "
            "AND remote_type = %s AND remote_id = ANY(%s)",
            [self.integration_id, remote_type.value, list(remote_ids)])

    def _exists(self, table: str, local_id: int) -> bool:
        row = self.conn.execute(
            f"SELECT 1 FROM ledger.{table} WHERE id = %s AND organization_id = %s",  # noqa: S608
            [local_id, self.organization_id]).fetchone()
        return row is not None

    # -- items (R-PROD-1…5, R-DEAL-2) -----------------------------------------------------

    def upsert_item(self, draft: ItemDraft) -> Outcome:
        return self._guarded(RemoteType.PRODUCT, draft.remote_id, lambda: self._item(draft))

    def item_id(self, draft: ItemDraft) -> int:
        """The item of a line's product: the mapped one, else created on the spot (R-DEAL-2).
        Runs inside the caller's savepoint."""
        found = self.mapped(RemoteType.PRODUCT, [draft.remote_id]).get(draft.remote_id)
        if found is not None and self._exists("items", found.local_id):
            return found.local_id
        outcome = self._item(draft)
        assert outcome.local_id is not None
        return outcome.local_id

    def _item(self, draft: ItemDraft) -> Outcome:
        print_ = fingerprint(draft)
        found = self.mapped(RemoteType.PRODUCT, [draft.remote_id]).get(draft.remote_id)
        if found is not None and not self._exists("items", found.local_id):
            found = None  # deleted in the ledger: create it again
        if found is not None and found.fingerprint == print_:
            return Outcome(Change.UNCHANGED, found.local_id)
        values = [draft.sku, draft.name, draft.description, draft.item_type.value,
                  draft.income_account_id, draft.expense_account_id,
                  draft.deferred_revenue_account_id]
        if found is not None:
            self._check_sku_free(draft, found.local_id)
            self.conn.execute(
                "UPDATE ledger.items SET sku = %s, name = %s, description = %s, item_type = %s,"
                " income_account_id = %s, expense_account_id = %s, "
                "deferred_revenue_account_id = %s WHERE id = %s AND organization_id = %s",
                [*values, found.local_id, self.organization_id])
            self._link(RemoteType.PRODUCT, draft.remote_id, "items", found.local_id, print_)
            return Outcome(Change.UPDATED, found.local_id)
        # The SKU is the item's identity within the organization: an item that already has it
        # (made by hand, or mapped from another product with the same SKU) is that product's
        # item too, never a duplicate (README "two products with one SKU").
        row = self.conn.execute(
            "INSERT INTO ledger.items (organization_id, sku, name, description, item_type, "
            "income_account_id, expense_account_id, deferred_revenue_account_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (organization_id, sku) DO UPDATE SET name = EXCLUDED.name, "
            "description = EXCLUDED.description, item_type = EXCLUDED.item_type, "
            "income_account_id = EXCLUDED.income_account_id, "
            "expense_account_id = EXCLUDED.expense_account_id, "
            "deferred_revenue_account_id = EXCLUDED.deferred_revenue_account_id "
            "RETURNING id, (xmax = 0)", [self.organization_id, *values]).fetchone()
        assert row is not None
        self._link(RemoteType.PRODUCT, draft.remote_id, "items", int(row[0]), print_)
        return Outcome(Change.CREATED if row[1] else Change.UPDATED, int(row[0]))

    def _check_sku_free(self, draft: ItemDraft, item_id: int) -> None:
        row = self.conn.execute(
            "SELECT id FROM ledger.items WHERE organization_id = %s AND sku = %s AND id <> %s",
            [self.organization_id, draft.sku, item_id]).fetchone()
        if row is not None:
            raise Rejected(f"Product {draft.remote_id}: its SKU changed to \"{draft.sku}\", "
                           f"which item {row[0]} already has; give each product its own SKU "
                           "in HubSpot")

    # -- customers (R-COMP-2, R-DEAL-4, R-INV-6) ----------------------------------------

    def upsert_customer(self, draft: CustomerDraft) -> Outcome:
        assert draft.remote_id is not None
        return self._guarded(RemoteType.COMPANY, draft.remote_id,
                             lambda: self._customer(draft))

    def customer_id(self, draft: CustomerDraft, *, update: bool = False) -> int:
        """The deal's customer: the placeholder, the mapped one, or created now (R-DEAL-4)."""
        if draft.is_placeholder or draft.remote_id is None:
            return self.placeholder_customer_id()
        if not update:
            found = self.mapped(RemoteType.COMPANY, [draft.remote_id]).get(draft.remote_id)
            if found is not None and self._exists("customers", found.local_id):
                return found.local_id
        outcome = self._customer(draft)
        assert outcome.local_id is not None
        return outcome.local_id

    def _customer(self, draft: CustomerDraft) -> Outcome:
        assert draft.remote_id is not None
        print_ = fingerprint(draft)
        found = self.mapped(RemoteType.COMPANY, [draft.remote_id]).get(draft.remote_id)
        if found is not None and not self._exists("customers", found.local_id):
            found = None
        if found is not None and found.fingerprint == print_:
            return Outcome(Change.UNCHANGED, found.local_id)
        values = [draft.name, draft.customer_type.value, draft.email, draft.phone,
                  draft.website, draft.address_line1, draft.address_line2, draft.city,
                  draft.state, draft.postal_code, draft.country]
        if found is not None:
            self.conn.execute(
                "UPDATE ledger.customers SET name = %s, customer_type = %s, email = %s, "
                "phone = %s, website = %s, address_line1 = %s, address_line2 = %s, city = %s, "
                "state = %s, postal_code = %s, country = %s "
                "WHERE id = %s AND organization_id = %s",
                [*values, found.local_id, self.organization_id])
            self._link(RemoteType.COMPANY, draft.remote_id, "customers", found.local_id, print_)
            return Outcome(Change.UPDATED, found.local_id)
        local_id = self._insert_returning(
            "INSERT INTO ledger.customers (organization_id, name, customer_type, email, phone, "
            "website, address_line1, address_line2, city, state, postal_code, country) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            [self.organization_id, *values])
        self._link(RemoteType.COMPANY, draft.remote_id, "customers", local_id, print_)
        return Outcome(Change.CREATED, local_id)

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

    def _insert_returning(self, sql: str, params: Sequence[Any]) -> int:
        row = self.conn.execute(sql, params).fetchone()
        assert row is not None
        return int(row[0])

    # -- contracts and obligations (R-DEAL-1…8) ------------------------------------------

    def upsert_contract(self, draft: ContractDraft) -> Outcome:
        return self._guarded(RemoteType.DEAL, draft.remote_id, lambda: self._contract(draft))

    def _contract(self, draft: ContractDraft) -> Outcome:
        print_ = fingerprint(draft)
        found = self.mapped(RemoteType.DEAL, [draft.remote_id]).get(draft.remote_id)
        status = self._contract_status(found.local_id) if found is not None else None
        if found is not None and status is None:
            found = None  # deleted in the ledger: create it again
        if found is not None and found.fingerprint == print_ and status == ContractStatus.DRAFT:
            return Outcome(Change.UNCHANGED, found.local_id)
        if found is not None and status not in WRITABLE:
            # Accountants own a contract once it leaves draft: report, never overwrite.
            raise Rejected(_not_draft(draft.remote_id, found.local_id, status), Change.SKIPPED,
                           warning=True)
        self._check_period(draft)
        customer_id = self.customer_id(draft.customer)
        values = [draft.company_id, customer_id, draft.status.value, draft.name, draft.memo,
                  draft.currency, draft.contract_date, draft.total_amount]
        if found is None:
            contract_id = self._insert_returning(
                "INSERT INTO ledger.contracts (organization_id, company_id, customer_id, status,"
                " name, memo, currency, contract_date, total_amount) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                [self.organization_id, *values])
        else:
            contract_id = found.local_id
            self.conn.execute(
                "UPDATE ledger.contracts SET company_id = %s, customer_id = %s, status = %s, "
                "name = %s, memo = %s, currency = %s, contract_date = %s, total_amount = %s "
                "WHERE id = %s AND organization_id = %s",
                [*values, contract_id, self.organization_id])
        self._obligations(contract_id, draft)
        self._link(RemoteType.DEAL, draft.remote_id, "contracts", contract_id, print_)
        return Outcome(Change.CREATED if found is None else Change.UPDATED, contract_id)

    def _contract_status(self, contract_id: int, table: str = "contracts") -> str | None:
        row = self.conn.execute(
            f"SELECT status FROM ledger.{table} WHERE id = %s "  # noqa: S608
            "AND organization_id = %s", [contract_id, self.organization_id]).fetchone()
        return None if row is None else str(row[0])

    def _obligations(self, contract_id: int, draft: ContractDraft) -> None:
        """The contract's obligations become exactly the deal's lines: added, changed, removed."""
        existing = self._children("performance_obligations", "contract_id", contract_id)
        wanted = {o.remote_id for o in draft.obligations}
        gone = [remote for remote in existing if remote not in wanted]
        if gone:
            self.conn.execute(
                "DELETE FROM ledger.performance_obligations WHERE id = ANY(%s)",
                [[existing[r] for r in gone]])
            self._unlink(RemoteType.LINE_ITEM, gone)
        for line in draft.obligations:
            values = [self.item_id(line.item), line.description, line.quantity, line.unit_price,
                      line.discount_percent, line.discount_amount, line.amount,
                      line.recognition_strategy.value]
            local_id = existing.get(line.remote_id)
            if local_id is None:
                local_id = self._insert_returning(
                    "INSERT INTO ledger.performance_obligations (organization_id, contract_id, "
                    "item_id, description, quantity, unit_price, discount_percent, "
                    "discount_amount, amount, recognition_strategy) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    [self.organization_id, contract_id, *values])
            else:
                self.conn.execute(
                    "UPDATE ledger.performance_obligations SET item_id = %s, description = %s,"
                    " quantity = %s, unit_price = %s, discount_percent = %s, "
                    "discount_amount = %s, amount = %s, recognition_strategy = %s "
                    "WHERE id = %s", [*values, local_id])
            self._link(RemoteType.LINE_ITEM, line.remote_id, "performance_obligations",
                       local_id, None)

    def _children(self, table: str, parent_column: str, parent_id: int) -> dict[str, int]:
        """remote key → local id of the lines of one contract or invoice."""
        rows = self.conn.execute(
            f"SELECT r.remote_id, c.id FROM ledger.{table} c "  # noqa: S608
            "JOIN ledger.integration_records r ON r.local_id = c.id "
            f"AND r.local_table = %s AND r.integration_id = %s WHERE c.{parent_column} = %s",
            [table, self.integration_id, parent_id]).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

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

    # -- sales invoices (R-INV-1…6) -------------------------------------------------------

    def upsert_invoice(self, draft: InvoiceDraft) -> Outcome:
        return self._guarded(RemoteType.INVOICE, draft.remote_id, lambda: self._invoice(draft))

    def _invoice(self, draft: InvoiceDraft) -> Outcome:
        print_ = fingerprint(draft)
        found = self.mapped(RemoteType.INVOICE, [draft.remote_id]).get(draft.remote_id)
        status = self._contract_status(found.local_id, "invoices") if found else None
        if found is not None and status is None:
            found = None
        if found is not None and found.fingerprint == print_ and status == ContractStatus.DRAFT:
            return Outcome(Change.UNCHANGED, found.local_id)
        if found is not None and status not in WRITABLE:
            raise Rejected(_not_draft(draft.remote_id, found.local_id, status, "invoice"),
                           Change.SKIPPED, warning=True)
        values = [self.placeholder_company_id(), self.customer_id(draft.customer),
                  ContractStatus.DRAFT.value, draft.number, draft.invoice_date, draft.due_date,
                  draft.currency, draft.total_amount]
        if found is None:
            invoice_id = self._insert_returning(
                "INSERT INTO ledger.invoices (organization_id, company_id, customer_id, status, "
                "number, invoice_date, due_date, currency, total_amount) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                [self.organization_id, *values])
        else:
            invoice_id = found.local_id
            self.conn.execute(
                "UPDATE ledger.invoices SET company_id = %s, customer_id = %s, status = %s, "
                "number = %s, invoice_date = %s, due_date = %s, currency = %s, "
                "total_amount = %s WHERE id = %s AND organization_id = %s",
                [*values, invoice_id, self.organization_id])
        self._invoice_lines(invoice_id, draft)
        self._link(RemoteType.INVOICE, draft.remote_id, "invoices", invoice_id, print_)
        return Outcome(Change.CREATED if found is None else Change.UPDATED, invoice_id)

    def _invoice_lines(self, invoice_id: int, draft: InvoiceDraft) -> None:
        existing = self._children("invoice_lines", "invoice_id", invoice_id)
        wanted = {line.remote_key for line in draft.lines}
        gone = [remote for remote in existing if remote not in wanted]
        if gone:
            self.conn.execute("DELETE FROM ledger.invoice_lines WHERE id = ANY(%s)",
                              [[existing[r] for r in gone]])
            self._unlink(RemoteType.LINE_ITEM, gone)
        for line in draft.lines:
            values = [self.item_id(line.item), line.description, line.quantity, line.unit_price,
                      line.amount]
            local_id = existing.get(line.remote_key)
            if local_id is None:
                local_id = self._insert_returning(
                    "INSERT INTO ledger.invoice_lines (organization_id, invoice_id, item_id, "
                    "description, quantity, unit_price, amount) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    [self.organization_id, invoice_id, *values])
            else:
                self.conn.execute(
                    "UPDATE ledger.invoice_lines SET item_id = %s, description = %s, "
                    "quantity = %s, unit_price = %s, amount = %s WHERE id = %s",
                    [*values, local_id])
            self._link(RemoteType.LINE_ITEM, line.remote_key, "invoice_lines", local_id, None)

    # -- pages of documents at once (ledger/bulk.py) ---------------------------------------

    def upsert_contracts(self, drafts: Sequence[ContractDraft]) -> list[Outcome]:
        """A page of deals in a few statements; record by record if any statement fails."""
        return self._page(drafts, self._contracts_page, self.upsert_contract)

    def upsert_invoices(self, drafts: Sequence[InvoiceDraft]) -> list[Outcome]:
        return self._page(drafts, self._invoices_page, self.upsert_invoice)

    def _page(self, drafts: Sequence[Any], page: Any, one: Any) -> list[Outcome]:
        if not drafts:
            return []
        try:
            with self.conn.transaction():
                outcomes: list[Outcome] = page(drafts)
                return outcomes
        except (psycopg.Error, Rejected) as exc:
            # One bad record must cost only itself: redo the page record by record.
            log.info("A page of %d records could not be written at once (%s); writing them "
                     "one by one", len(drafts), _first_line(exc))
            return [one(d) for d in drafts]

    def upsert_customers(self, drafts: Sequence[CustomerDraft]) -> list[Outcome]:
        """A page of companies as customers (R-COMP-2) in a few statements."""
        return self._page(drafts, self._customers_page, self.upsert_customer)

    def upsert_items(self, drafts: Sequence[ItemDraft]) -> list[Outcome]:
        """A page of products as items (R-PROD-1…5) in a few statements."""
        return self._page(drafts, self._items_page, self.upsert_item)

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

    def _contracts_page(self, drafts: Sequence[ContractDraft]) -> list[Outcome]:
        prints = {d.remote_id: fingerprint(d) for d in drafts}
        state = self._documents(RemoteType.DEAL, "contracts", list(prints))
        outcomes: dict[str, Outcome] = {}
        new: list[ContractDraft] = []
        changed: list[ContractDraft] = []
        for draft in drafts:
            found = state.get(draft.remote_id)
            if (found is not None and found[1] == prints[draft.remote_id]
                    and found[2] == ContractStatus.DRAFT):
                outcomes[draft.remote_id] = Outcome(Change.UNCHANGED, found[0])
                continue
            try:
                if found is not None and found[2] not in WRITABLE:
                    raise Rejected(_not_draft(draft.remote_id, found[0], found[2]),
                                   Change.SKIPPED, warning=True)
                self._check_period(draft)
            except Rejected as exc:
                outcomes[draft.remote_id] = Outcome(exc.change, message=exc.message,
                                                    warning=exc.warning)
                continue
            (changed if found is not None else new).append(draft)
        todo = new + changed
        customers = self._customer_ids([d.customer for d in todo])
        items = self._item_ids([o.item for d in todo for o in d.obligations])
        rows = [(d.company_id, customers[None if d.customer.is_placeholder
                                         else d.customer.remote_id],
                 d.status.value, d.name, d.memo, d.currency, d.contract_date, d.total_amount)
                for d in todo]
        ids = bulk.insert_rows(self.conn, bulk.CONTRACTS, self.organization_id, rows[:len(new)])
        old_ids = [state[d.remote_id][0] for d in changed]
        bulk.update_rows(self.conn, bulk.CONTRACTS, self.organization_id, old_ids,
                         rows[len(new):])
        self._lines_page(bulk.OBLIGATIONS, "contract_id", [
            (local_id, local_id in old_ids,
             [(o.remote_id, (items[o.item.remote_id], o.description, o.quantity, o.unit_price,
                             o.discount_percent, o.discount_amount, o.amount,
                             o.recognition_strategy.value)) for o in d.obligations])
            for d, local_id in zip(todo, ids + old_ids, strict=True)])
        bulk.upsert_links(self.conn, self.integration_id, [
            bulk.Link(RemoteType.DEAL.value, d.remote_id, "contracts", local_id,
                      prints[d.remote_id]) for d, local_id in zip(todo, ids + old_ids,
                                                                  strict=True)])
        for d, local_id in zip(todo, ids + old_ids, strict=True):
            outcomes[d.remote_id] = Outcome(
                Change.CREATED if local_id in ids else Change.UPDATED, local_id)
        return [outcomes[d.remote_id] for d in drafts]

    def _invoices_page(self, drafts: Sequence[InvoiceDraft]) -> list[Outcome]:
        prints = {d.remote_id: fingerprint(d) for d in drafts}
        state = self._documents(RemoteType.INVOICE, "invoices", list(prints))
        outcomes: dict[str, Outcome] = {}
        new = [d for d in drafts if d.remote_id not in state]
        changed: list[InvoiceDraft] = []
        for d in drafts:
            found = state.get(d.remote_id)
            if found is None:
                continue
            if found[1] == prints[d.remote_id] and found[2] == ContractStatus.DRAFT:
                outcomes[d.remote_id] = Outcome(Change.UNCHANGED, found[0])
            elif found[2] not in WRITABLE:
                outcomes[d.remote_id] = Outcome(
                    Change.SKIPPED, message=_not_draft(d.remote_id, found[0], found[2],
                                                       "invoice"), warning=True)
            else:
                changed.append(d)
        todo = new + changed
        company_id = customer_id = 0
        if todo:  # R-INV-6: the organization's "Unknown" company and customer
            company_id, customer_id = self.placeholder_company_id(), self.placeholder_customer_id()
        items = self._item_ids([line.item for d in todo for line in d.lines])
        rows = [(company_id, customer_id, ContractStatus.DRAFT.value, d.number, d.invoice_date,
                 d.due_date, d.currency, d.total_amount) for d in todo]
        ids = bulk.insert_rows(self.conn, bulk.INVOICES, self.organization_id, rows[:len(new)])
        old_ids = [state[d.remote_id][0] for d in changed]
        bulk.update_rows(self.conn, bulk.INVOICES, self.organization_id, old_ids,
                         rows[len(new):])
        self._lines_page(bulk.INVOICE_LINES, "invoice_id", [
            (local_id, local_id in old_ids,
             [(line.remote_key, (items[line.item.remote_id], line.description, line.quantity,
                                 line.unit_price, line.amount)) for line in d.lines])
            for d, local_id in zip(todo, ids + old_ids, strict=True)])
        bulk.upsert_links(self.conn, self.integration_id, [
            bulk.Link(RemoteType.INVOICE.value, d.remote_id, "invoices", local_id,
                      prints[d.remote_id]) for d, local_id in zip(todo, ids + old_ids,
                                                                  strict=True)])
        for d, local_id in zip(todo, ids + old_ids, strict=True):
            outcomes[d.remote_id] = Outcome(
                Change.CREATED if local_id in ids else Change.UPDATED, local_id)
        return [outcomes[d.remote_id] for d in drafts]

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

    # -- staging: what one step of a run hands to the next --------------------------------

    def stage(self, run_id: int, remote_type: RemoteType,
              payloads: Sequence[tuple[str, str]]) -> None:
        """(remote id, JSON text) pairs for a later step of the same run."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ledger.sync_staging (sync_run_id, remote_type, remote_id, payload) "
                "VALUES (%s, %s, %s, %s::jsonb) ON CONFLICT (sync_run_id, remote_type, "
                "remote_id) DO UPDATE SET payload = EXCLUDED.payload",
                [(run_id, remote_type.value, rid, payload) for rid, payload in payloads])

    def clear_stage(self, run_id: int, remote_type: RemoteType | None = None) -> None:
        if remote_type is None:
            self.conn.execute("DELETE FROM ledger.sync_staging WHERE sync_run_id = %s", [run_id])
        else:
            self.conn.execute("DELETE FROM ledger.sync_staging WHERE sync_run_id = %s "
                              "AND remote_type = %s", [run_id, remote_type.value])

    def staged_count(self, run_id: int, remote_type: RemoteType) -> int:
        row = self.conn.execute("SELECT count(*) FROM ledger.sync_staging WHERE "
                                "sync_run_id = %s AND remote_type = %s",
                                [run_id, remote_type.value]).fetchone()
        return int(row[0]) if row else 0

    def staged(self, run_id: int, remote_type: RemoteType, batch_size: int
               ) -> Iterator[list[tuple[str, Any]]]:
        """Staged payloads in remote-id order, `batch_size` at a time (keyset paging)."""
        last = ""
        while True:
            rows = self.conn.execute(
                "SELECT remote_id, payload FROM ledger.sync_staging WHERE sync_run_id = %s AND "
                "remote_type = %s AND remote_id > %s ORDER BY remote_id LIMIT %s",
                [run_id, remote_type.value, last, batch_size]).fetchall()
            if not rows:
                return
            yield [(str(r[0]), r[1]) for r in rows]
            last = str(rows[-1][0])

    def staged_payloads(self, run_id: int, remote_type: RemoteType, remote_ids: Sequence[str]
                        ) -> dict[str, Any]:
        rows = self.conn.execute(
            "SELECT remote_id, payload FROM ledger.sync_staging WHERE sync_run_id = %s AND "
            "remote_type = %s AND remote_id = ANY(%s)",
            [run_id, remote_type.value, list(remote_ids)]).fetchall()
        return {str(r[0]): r[1] for r in rows}


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


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
