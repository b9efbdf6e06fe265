"""Issue 10, "every path": incremental syncs land exactly where one full sync lands.

A property-based test (hypothesis). Each example starts from the same HubSpot portal (the
sandbox's `tiny` seed data, over real HTTP) and an empty ledger, and an integration A syncs it
once in full. Then a drawn sequence of HubSpot changes (create a deal, rename it, move its
stage or close date, archive and restore it, edit, add, remove and delete its lines, change its
companies; create, re-date, archive and restore invoices and edit or delete their lines; rename,
archive and restore products; rename companies) and settings changes (invoice toggle, cutoff
moved earlier or later) is applied, with incremental syncs of A in between and at the end.
Then a fresh integration B — a new organization, the same portal, the same settings — does ONE
full sync, and the two ledgers are compared by HubSpot ids (never by ledger ids):

* contracts that are not void, with their obligations, are equal (R-DEAL-1…8); a void contract
  of A is a deal B has no contract for (DESIGN "lost deals and invoices");
* sales invoices (and lines) likewise while the invoice toggle is on (R-INV-1…6); while it is
  off A keeps what it imported and B has none (R-SYNC-3);
* customers and items B has, A has with the same values; A may hold more, because the ledger
  never deletes them (a company whose deals were since lost, R-COMP-1; a product since
  archived, R-PROD-5): the ones B's documents use compare exactly through the documents, and
  A's extra items are products HubSpot has archived;
* the open problems (integration_errors with resolved_at NULL) are the same records with the
  same messages (R-SYNC-6; DESIGN "what a run reads": a record that fails for its own data or
  its lines is retried when HubSpot changes them, or deletes one of its lines; issue 12);
* one difference is allowed, explicitly (`KEEP_LAST_GOOD_DRAFT`): a deal or invoice A imported
  that now fails to import (all its lines went or are zero, R-DEAL-7; its close date was
  removed) keeps A's last imported draft, while B, which never imported it, has none; both
  have the same open problem for it.

Hard deletes (HubSpot's GDPR delete, the recycle bin purged) are not among the changes: no
incremental read can see a record that is simply gone; a full read (cutoff moved, full
refresh) voids such a draft.

Runs go in-process through `sync.runner.run_step` (what each Airflow task calls) in the DAG's
order, after the DAG's own branch decision (`sync.tasks.choose_invoice_branch`, which also
drops the invoice coverage while the toggle is off), then `settle_run`, as
tests/scale/test_incremental.py does; each incremental run is checked to read incrementally.
The incremental overlap is 0: every change is made after the previous run started, and the
sandbox stamps `hs_lastmodifieddate` with the wall clock (strictly later than the record's
previous stamp), so a run reading "changed since the last run's start" sees it with no overlap
needed; a larger overlap would only hide misses.

`make test` runs the three curated histories below and 10 drawn ones, derandomized, without
shrinking (a failure prints its whole history at once). A deeper search, with shrinking:
HUBSPOT_LEDGER_PATHS_EXAMPLES=200 HUBSPOT_LEDGER_PATHS_EXPLORE=1 pytest tests/paths --timeout 0
"""
from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, event, example, given, note, settings
from hypothesis import strategies as st
from support import use_sandbox_app
from sync.portal import books, connect, truncate  # tests/sync/portal.py

from hubspot_ledger import ratelimit
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import save_settings
from hubspot_ledger.sync.run_report import settle_run
from hubspot_ledger.sync.runner import run_step
from hubspot_ledger.sync.tasks import INVOICES_TASK, choose_invoice_branch
from hubspot_ledger_tools.sandbox.testing import SandboxServer

pytestmark = [pytest.mark.integration]

SEED = 5  # the sandbox's tiny portal: 16 deals, 5 invoices, 5 products (one archived), 4 companies
STEPS = ("invoices", "products", "companies", "deals")
# Cutoffs on both sides of the seed data's close dates (2023-06-15 … 2026-01-15) and invoice
# dates (2024-12-31 … 2025-08-19): moving between them changes what qualifies (R-SYNC-4).
CUTOFFS = (dt.date(2024, 1, 1), dt.date(2025, 1, 1), dt.date(2025, 6, 1), dt.date(2026, 1, 1))
CLOSEDATES = ("2023-06-15T13:00:00Z", "2024-12-31T23:59:59.999Z", "2025-01-01T00:00:00Z",
              "2025-05-20T10:00:00Z", "2025-09-02T09:15:00Z", "2026-02-01T09:00:00Z")
INVOICE_DATES = ("2024-06-01", "2024-12-31", "2025-01-01", "2025-07-01", "2026-03-01")
STAGES = ("closedwon", "closedlost", "contractsent")
NAMES = ("Renewal", "Expansion — phase 2", "Ünïcode & Co deal", "Globex upsell")
QUANTITIES = ("1", "2", "3.5")
PRICES = ("0", "10", "99.99", "1500")
FIRST_ID = 980_000_000_001  # records this test creates: ids far from the seed data's
EXAMPLES = int(os.environ.get("HUBSPOT_LEDGER_PATHS_EXAMPLES", "10"))
EXPLORE = bool(os.environ.get("HUBSPOT_LEDGER_PATHS_EXPLORE"))  # random seeds, and shrinking
# A deal or invoice imported earlier that now fails to import (its lines all went or are all
# zero, R-DEAL-7; its close date was removed): the failing version is not imported (R-SYNC-6,
# DESIGN "partly bad records") and the record still qualifies (closed won, on or after the
# cutoff), so it is not void (DESIGN "lost deals and invoices"): A keeps its last imported
# draft, with the open problem that says why; B never imported it. False makes the property
# demand that such a draft be void (or gone), as one full sync of the same portal has it.
KEEP_LAST_GOOD_DRAFT = True


# -- the changes ------------------------------------------------------------------------------
# Targets are drawn as small integers and taken modulo the records that exist when the change is
# applied (the seed's and those created so far), so every drawn sequence is applicable and
# shrinks towards the first records.


@dataclass(frozen=True)
class Line:
    product: int
    quantity: str
    price: str
    discount_percent: str | None = None


@dataclass(frozen=True)
class Change:
    kind: str
    target: int = 0
    value: Any = None


def _change(kind: str, value: st.SearchStrategy[Any] | None = None
            ) -> st.SearchStrategy[Change]:
    return st.builds(Change, st.just(kind), st.integers(0, 999), value or st.none())


LINES = st.builds(Line, st.integers(0, 4), st.sampled_from(QUANTITIES),
                  st.sampled_from(PRICES), st.sampled_from((None, "10")))
COMPANY_SETS = st.lists(st.integers(0, 3), max_size=2, unique=True)
CHANGES = st.one_of(
    _change("create_deal", st.tuples(st.lists(LINES, min_size=1, max_size=2),
                                     st.sampled_from(CLOSEDATES), COMPANY_SETS)),
    _change("rename_deal", st.sampled_from(NAMES)),
    _change("deal_stage", st.sampled_from(STAGES)),
    _change("deal_closedate", st.sampled_from((*CLOSEDATES, None))),
    _change("archive_deal", st.booleans()),
    _change("edit_line", LINES),
    _change("add_line", LINES),
    _change("remove_line"),
    _change("delete_line"),
    _change("deal_companies", COMPANY_SETS),
    _change("rename_company", st.sampled_from(NAMES)),
    _change("rename_product", st.sampled_from(NAMES)),
    _change("archive_product", st.booleans()),
    _change("create_invoice", st.tuples(st.lists(LINES, min_size=1, max_size=2),
                                        st.sampled_from(INVOICE_DATES))),
    _change("invoice_date", st.sampled_from(INVOICE_DATES)),
    _change("archive_invoice", st.booleans()),
    _change("edit_invoice_line", LINES),
    _change("delete_invoice_line"),
    _change("toggle_invoices"),
    _change("cutoff", st.sampled_from(CUTOFFS)),
    # An incremental sync of A between changes: about one change in six.
    *[_change("sync")] * 4,
)


# -- the portal and the two integrations --------------------------------------------------------


class World:
    """The sandbox portal and the ledger, shared by every example; what exists now, and A's
    settings. (Not a dataclass: hypothesis prints the fixture with a failing example.)"""

    def __init__(self, sandbox: SandboxServer, ledger: psycopg.Connection,
                 seed_ids: dict[str, list[str]]) -> None:
        self.sandbox, self.ledger, self.seed_ids = sandbox, ledger, seed_ids
        self.ids: dict[str, list[str]] = {}
        self.next_id = FIRST_ID
        self.cutoff, self.invoices_on = CUTOFFS[1], True
        self.organizations = 0

    def __repr__(self) -> str:
        return f"World(cutoff={self.cutoff}, invoices_on={self.invoices_on})"

    def reset(self, cutoff: dt.date, invoices_on: bool) -> int:
        """The seed portal again, an empty ledger, and integration A synced once in full."""
        self.sandbox.reset(seed=SEED, scale="tiny")
        truncate(self.ledger)
        self.ids = {kind: list(found) for kind, found in self.seed_ids.items()}
        self.next_id = FIRST_ID
        self.cutoff, self.invoices_on = cutoff, invoices_on
        integration_a = self.integration()
        self.sync(integration_a, cutoff_changed=True)
        return integration_a

    def integration(self) -> int:
        """A new organization's integration on the portal, with the current settings."""
        self.organizations += 1
        hook = LedgerHook()
        integration_id = hook.integrations.create(f"Paths {self.organizations}", self.cutoff)
        books(hook, integration_id)
        save_settings(integration_id, sync_invoices=self.invoices_on)
        connect(self.sandbox, integration_id)
        return integration_id

    def sync(self, integration_id: int, *, cutoff_changed: bool) -> None:
        """One DAG run, in-process: the branch, the steps in order, the report."""
        run = f"paths-{uuid.uuid4().hex[:8]}"
        branch = choose_invoice_branch(integration_id, run_id=run)
        for step in STEPS:
            if step != "invoices" or INVOICES_TASK in branch:
                run_step(step, integration_id, run)
        ok, report = settle_run(integration_id, run)
        assert ok, report
        reads: Any = self.ledger.execute(
            "SELECT reads FROM ledger.sync_runs WHERE integration_id = %s AND dag_run_id = %s",
            [integration_id, run]).fetchone()
        if not cutoff_changed:
            # Not vacuous: with the settings as they were, a run reads what changed.
            assert reads[0]["deal"]["since"] is not None, reads[0]

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id - 1)

    def pick(self, kind: str, index: int) -> str:
        found = self.ids[kind]
        return found[index % len(found)]

    def lines_of(self, kind: str, record_id: str) -> list[str]:
        links = self.sandbox.record(kind, record_id)["associations"].get("line_items", [])
        return [str(link["id"]) for link in links]

    def archived(self, kind: str, record_id: str) -> bool:
        return bool(self.sandbox.record(kind, record_id).get("archived"))

    def line_props(self, line: Line) -> dict[str, str | None]:
        return {"hs_product_id": self.pick("products", line.product),
                "quantity": line.quantity, "price": line.price,
                "hs_discount_percentage": line.discount_percent}

    def add_line(self, line: Line) -> str:
        line_id = self.new_id()
        self.sandbox.upsert("line_items", {"name": f"Line {line_id}", **self.line_props(line)},
                            id=line_id)
        return line_id

    def companies(self, picks: list[int]) -> list[Any]:
        ids = [self.pick("companies", i) for i in picks]
        return [{"id": c, "primary": n == 0} for n, c in enumerate(ids)]


def apply(world: World, integration_a: int, change: Change) -> bool:
    """Make one change; returns whether it moved the cutoff. Like HubSpot, the sandbox would
    let an archived record be edited; HubSpot refuses (404), so such edits are skipped here."""
    sb, kind, value, target = world.sandbox, change.kind, change.value, change.target
    if kind in ("toggle_invoices", "cutoff", "sync"):
        return _settings(world, integration_a, change)
    if kind == "create_deal":
        lines, closedate, companies = value
        deal_id = world.new_id()
        sb.upsert("deals", {"dealname": f"Deal {deal_id}", "dealstage": "closedwon",
                            "pipeline": "default", "closedate": closedate,
                            "deal_currency_code": "USD"}, id=deal_id,
                  associations={"line_items": [world.add_line(line) for line in lines],
                                "companies": world.companies(companies)})
        world.ids["deals"].append(deal_id)
    elif kind == "create_invoice":
        lines, invoice_date = value
        invoice_id = world.new_id()
        sb.upsert("invoices", {"hs_number": f"INV-{invoice_id}", "hs_currency": "USD",
                               "hs_invoice_date": invoice_date, "hs_due_date": "2026-12-31"},
                  id=invoice_id,
                  associations={"line_items": [world.add_line(line) for line in lines]})
        world.ids["invoices"].append(invoice_id)
    elif kind.startswith("archive_"):
        plural = {"archive_deal": "deals", "archive_product": "products",
                  "archive_invoice": "invoices"}[kind]
        sb.archive(plural, world.pick(plural, target), archived=value)
    elif kind in ("rename_company", "rename_product"):
        plural = "companies" if kind == "rename_company" else "products"
        record_id = world.pick(plural, target)
        if not world.archived(plural, record_id):
            sb.upsert(plural, {"name": value}, id=record_id)
    elif kind in ("invoice_date", "edit_invoice_line", "delete_invoice_line"):
        _edit_document(world, "invoices", change)
    else:
        _edit_document(world, "deals", change)
    return False


def _edit_document(world: World, plural: str, change: Change) -> None:
    sb, kind, value, target = world.sandbox, change.kind, change.value, change.target
    record_id = world.pick(plural, target)
    if world.archived(plural, record_id):
        return
    lines = world.lines_of(plural, record_id)
    prop = {"rename_deal": "dealname", "deal_stage": "dealstage",
            "deal_closedate": "closedate", "invoice_date": "hs_invoice_date"}.get(kind)
    if prop is not None:
        sb.upsert(plural, {prop: value}, id=record_id)
    elif kind in ("edit_line", "edit_invoice_line"):
        if lines:
            sb.upsert("line_items", world.line_props(value), id=lines[target % len(lines)])
    elif kind == "add_line":
        sb.upsert(plural, {}, id=record_id,
                  associations={"line_items": [*lines, world.add_line(value)]})
    elif kind == "remove_line":  # the line leaves the deal (the deal is modified)
        if lines:
            lines.pop(target % len(lines))
            sb.upsert(plural, {}, id=record_id, associations={"line_items": lines})
    elif kind in ("delete_line", "delete_invoice_line"):
        # Deleting a line item in HubSpot archives it; its deal or invoice is not modified.
        if lines:
            sb.archive("line_items", lines[target % len(lines)])
    else:
        assert kind == "deal_companies", kind
        sb.upsert(plural, {}, id=record_id, associations={"companies": world.companies(value)})


def _settings(world: World, integration_a: int, change: Change) -> bool:
    if change.kind == "toggle_invoices":
        world.invoices_on = not world.invoices_on
        save_settings(integration_a, sync_invoices=world.invoices_on)
    elif change.kind == "cutoff":
        moved = change.value != world.cutoff
        world.cutoff = change.value
        world.ledger.execute("UPDATE ledger.integrations SET cutoff_date = %s WHERE id = %s",
                             [change.value, integration_a])
        return bool(moved)
    return False


# -- what a ledger holds, by HubSpot ids ----------------------------------------------------------

_MAPPED = ("FROM ledger.integration_records r JOIN ledger.{t} x ON x.id = r.local_id "
           "AND r.local_table = '{t}' WHERE r.integration_id = %(i)s")
# A line with its own remote id (r) and its deal's or invoice's (d).
_LINES = ("FROM ledger.integration_records r JOIN ledger.{t} x ON x.id = r.local_id "
          "AND r.local_table = '{t}' JOIN ledger.integration_records d ON d.integration_id = "
          "r.integration_id AND d.remote_type = '{owner}' AND d.local_id = x.{parent} "
          "WHERE r.integration_id = %(i)s")
_CODE = "(SELECT code FROM ledger.accounts a WHERE a.id = x.{})"
_SKU = "(SELECT sku FROM ledger.items it WHERE it.id = x.item_id)"
# The customer by the HubSpot company it was mapped from, or the placeholder.
_CUSTOMER = ("COALESCE((SELECT c.remote_id FROM ledger.integration_records c WHERE "
             "c.integration_id = %(i)s AND c.remote_type = 'company' AND c.local_id = "
             "x.customer_id), (SELECT CASE WHEN k.is_placeholder THEN 'Unknown' ELSE "
             "'unmapped ' || k.name END FROM ledger.customers k WHERE k.id = x.customer_id))")
QUERIES = {
    "items": ("SELECT r.remote_id, x.sku, x.name, x.description, x.item_type, "
              + ", ".join(_CODE.format(c) for c in ("income_account_id", "expense_account_id",
                                                    "deferred_revenue_account_id"))
              + " " + _MAPPED.format(t="items")),
    "customers": ("SELECT r.remote_id, x.name, x.customer_type, x.email, x.phone, x.website, "
                  "x.address_line1, x.address_line2, x.city, x.state, x.postal_code, x.country "
                  + _MAPPED.format(t="customers")),
    "contracts": ("SELECT r.remote_id, x.status, x.name, x.memo, x.currency, x.contract_date, "
                  "x.total_amount, (SELECT name FROM ledger.companies e WHERE "
                  f"e.id = x.company_id), {_CUSTOMER} " + _MAPPED.format(t="contracts")),
    "obligations": (f"SELECT d.remote_id, r.remote_id, {_SKU}, x.description, x.quantity, "
                    "x.unit_price, x.discount_percent, x.discount_amount, x.amount, "
                    "x.recognition_strategy " + _LINES.format(
                        t="performance_obligations", owner="deal", parent="contract_id")),
    "invoices": ("SELECT r.remote_id, x.status, x.number, x.invoice_date, x.due_date, "
                 f"x.currency, x.total_amount, {_CUSTOMER} " + _MAPPED.format(t="invoices")),
    "invoice_lines": (f"SELECT d.remote_id, r.remote_id, {_SKU}, x.description, x.quantity, "
                      "x.unit_price, x.amount " + _LINES.format(
                          t="invoice_lines", owner="invoice", parent="invoice_id")),
    "problems": ("SELECT remote_type, remote_id, message FROM ledger.integration_errors "
                 "WHERE integration_id = %(i)s AND resolved_at IS NULL"),
}


@dataclass
class Books:
    """One integration's ledger, keyed by HubSpot ids."""

    items: dict[str, tuple[str, ...]]
    customers: dict[str, tuple[str, ...]]
    contracts: dict[str, tuple[str, ...]]
    obligations: dict[str, dict[str, tuple[str, ...]]]
    invoices: dict[str, tuple[str, ...]]
    invoice_lines: dict[str, dict[str, tuple[str, ...]]]
    problems: set[tuple[str, ...]]

    @classmethod
    def of(cls, conn: psycopg.Connection, integration_id: int) -> Books:
        rows = {name: [tuple(map(str, r)) for r in conn.execute(q, {"i": integration_id})]
                for name, q in QUERIES.items()}
        nested: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
            "obligations": {}, "invoice_lines": {}}
        for name, found in nested.items():
            for owner, key, *values in rows[name]:
                found.setdefault(owner, {})[key] = tuple(values)
        return cls(
            **{name: {r[0]: r[1:] for r in rows[name]}
               for name in ("items", "customers", "contracts", "invoices")},
            obligations=nested["obligations"], invoice_lines=nested["invoice_lines"],
            problems=set(rows["problems"]))

    def live(self, documents: str) -> dict[str, tuple[str, ...]]:
        return {k: v for k, v in getattr(self, documents).items() if v[0] != "void"}


def assert_same_books(world: World, a: Books, b: Books) -> None:
    """A (incremental history) against B (one full sync), both under the current settings."""
    failing = {(kind, remote_id) for kind, remote_id, _ in b.problems}
    for documents, kind, lines in (("contracts", "deal", "obligations"),
                                   ("invoices", "invoice", "invoice_lines")):
        if kind == "invoice" and not world.invoices_on:
            # R-SYNC-3: with the toggle off nothing is read from invoices; A keeps what it has.
            assert not b.invoices
            continue
        live_a, live_b = a.live(documents), b.live(documents)
        assert all(v[0] == "draft" for v in live_b.values())
        if KEEP_LAST_GOOD_DRAFT:
            live_a = {k: v for k, v in live_a.items()
                      if k in live_b or (kind, k) not in failing}
        # R-DEAL-1, R-INV-1: every document that is not void, its values and its lines.
        assert live_a == live_b
        for remote_id in live_b:
            assert getattr(a, lines).get(remote_id) == getattr(b, lines).get(remote_id), \
                remote_id
        # DESIGN "lost deals and invoices": A's void documents are records B did not import.
        assert not (set(getattr(a, documents)) - set(a.live(documents))) & set(live_b)
    # Customers and items are never deleted: B's are A's (same values); A may hold more.
    assert {k: a.customers.get(k) for k in b.customers} == b.customers
    assert {k: a.items.get(k) for k in b.items} == b.items
    # B reads every product HubSpot lists (R-SYNC-4: the cutoff does not filter products), so
    # A's extra items are products HubSpot has archived since A read them.
    for product_id in set(a.items) - set(b.items):
        assert world.sandbox.record("products", product_id).get("archived"), product_id
    # Open problems (R-SYNC-6), the same records with the same messages. With the toggle off
    # A's invoice problems stay as they were (R-SYNC-3: invoices are not followed).
    problems_a = a.problems
    if not world.invoices_on:
        problems_a = {p for p in problems_a if p[0] != "invoice"}
    assert problems_a == b.problems


# -- the property -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(ledger_db: str) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as mp, SandboxServer(
            seed=SEED, scale="tiny", rate_limit=100_000, search_rate=10_000) as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(mp, sb)
        mp.setenv("HUBSPOT_LEDGER_INCREMENTAL_OVERLAP_SECONDS", "0")
        # The sandbox above does not rate limit; neither does the client (the rate budgets
        # have tests of their own in tests/scale).
        for bucket in ("general", "search"):
            mp.setitem(ratelimit.BUDGETS, bucket, ratelimit.Budget(limit=1_000, seconds=1.0))
        data = sb.sandbox.portal(None).data
        seed_ids = {kind: [str(i) for i in data.table(kind).ids]
                    for kind in ("deals", "invoices", "products", "companies")}
        yield World(sandbox=sb, ledger=conn, seed_ids=seed_ids)
        truncate(conn)


# Curated histories, run on every `make test` before the drawn ones: each path of DESIGN "lost
# deals and invoices" and "what a run reads" at least once. Deal targets index the seed deals:
# 0 (one line), 1 (two lines, three companies), 2 (no company), 7 (closes 2024-12-31);
# invoices: 0 (imports), 3 (dated 2024-12-31); products: 3 (sold by seed deals), 4 (archived).
# LINES_AND_COMPANIES holds the two histories this property first failed on: a line item
# deleted while its deal is untouched (the deal's contract kept the line), and a product renamed
# then archived between two runs (its item kept the old name; DESIGN "archived products").
LOST_AND_BACK = [
    Change("deal_stage", 0, "closedlost"), Change("archive_deal", 1, True),
    Change("deal_closedate", 2, CLOSEDATES[0]), Change("sync"),
    Change("deal_stage", 0, "closedwon"), Change("archive_deal", 1, False), Change("sync"),
    Change("cutoff", 0, dt.date(2025, 6, 1)), Change("sync"),  # later: drafts go void
    Change("cutoff", 0, dt.date(2024, 1, 1)), Change("sync"),  # earlier: back to draft
    Change("deal_closedate", 2, CLOSEDATES[3]), Change("rename_deal", 7, NAMES[2]),
]
INVOICES_OFF_AND_ON = [
    Change("archive_invoice", 0, True), Change("sync"), Change("toggle_invoices"),
    Change("archive_invoice", 0, False), Change("invoice_date", 3, "2025-07-01"),
    Change("edit_invoice_line", 0, Line(1, "2", "99.99", "10")), Change("sync"),
    Change("toggle_invoices"), Change("delete_invoice_line", 3),
    Change("create_invoice", 0, ([Line(0, "1", "10")], "2025-01-01")), Change("sync"),
    Change("cutoff", 0, dt.date(2025, 6, 1)), Change("invoice_date", 5, "2024-06-01"),
]
LINES_AND_COMPANIES = [
    Change("delete_line", 1), Change("add_line", 2, Line(4, "2", "10")),
    Change("edit_line", 7, Line(2, "3.5", "1500", "10")), Change("sync"),
    Change("deal_companies", 2, [3, 1]), Change("rename_company", 3, NAMES[1]),
    Change("rename_product", 3, NAMES[3]), Change("archive_product", 3, True), Change("sync"),
    Change("create_deal", 0, ([Line(0, "1", "10"), Line(3, "2", "0")], CLOSEDATES[4], [2])),
    Change("remove_line", 1), Change("archive_product", 0, True),
    Change("archive_product", 0, False),
]


@example(cutoff=dt.date(2025, 1, 1), invoices_on=True, changes=LOST_AND_BACK)
@example(cutoff=dt.date(2024, 1, 1), invoices_on=True, changes=INVOICES_OFF_AND_ON)
@example(cutoff=dt.date(2025, 1, 1), invoices_on=False, changes=LINES_AND_COMPANIES)
@settings(max_examples=EXAMPLES, derandomize=not EXPLORE, database=None, deadline=None,
          phases=[p for p in Phase if EXPLORE or p is not Phase.shrink],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cutoff=st.sampled_from(CUTOFFS[:3]), invoices_on=st.booleans(),
       changes=st.lists(CHANGES, min_size=6, max_size=16))
def test_incremental_syncs_equal_one_full_sync(world: World, cutoff: dt.date,
                                               invoices_on: bool, changes: list[Change]
                                               ) -> None:
    integration_a = world.reset(cutoff, invoices_on)
    cutoff_changed = False
    for change in changes:
        note(repr(change))
        cutoff_changed |= apply(world, integration_a, change)
        if change.kind == "sync":
            world.sync(integration_a, cutoff_changed=cutoff_changed)
            cutoff_changed = False
    world.sync(integration_a, cutoff_changed=cutoff_changed)
    integration_b = world.integration()  # same portal, same cutoff and toggle as A now
    world.sync(integration_b, cutoff_changed=True)
    a, b = Books.of(world.ledger, integration_a), Books.of(world.ledger, integration_b)
    _events(a, b)
    assert_same_books(world, a, b)


def _events(a: Books, b: Books) -> None:
    """What the example reached (`pytest --hypothesis-show-statistics`)."""
    event(f"void contracts in A: {len(a.contracts) - len(a.live('contracts'))}")
    event(f"void invoices in A: {len(a.invoices) - len(a.live('invoices'))}")
    event(f"drafts only A keeps: {len(a.live('contracts')) - len(b.contracts)}")
    event(f"customers only A has: {len(a.customers) - len(b.customers)}")
    event(f"items only A has: {len(a.items) - len(b.items)}")
