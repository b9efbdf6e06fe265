"""Which open problems a run reads again, and when (issue 12: a no-change run reads nothing by
id for records only HubSpot can fix).

An open problem's cause decides (migration 0019; README "Open problems"):
- `hubspot`, the record's own data or its line items (a line without a product, an invoice
  without a due date, a deal whose lines are all zero): retried when HubSpot changes the
  record or a line of it — the incremental read finds that change — never by id otherwise;
- `ledger`, anything else (a locked period, R-DEAL-8; a product the ledger refuses): read
  again by id every run, so a fix in the ledger lands without any change in HubSpot;
- no cause (an entry logged before 0019): retried like `ledger` until a run records it again.

The crafted portal of portal.py, synced in-process through `run_step` in the DAG's order (as
tests/paths does), with a zero incremental overlap: a run reads exactly what changed since the
previous one started. The requests each run sent are HubSpot's (the sandbox's) request log;
after each step the ledger must equal one full sync of a fresh integration (ledger_view.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from support import use_sandbox_app

from hubspot_ledger import ratelimit
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import save_settings
from hubspot_ledger.sync.run_report import settle_run
from hubspot_ledger.sync.runner import run_step
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .ledger_view import differences, view
from .portal import (
    CUTOFF,
    D_LOCKED,
    D_NO_LINES,
    D_NO_PRODUCT,
    D_ZERO,
    I_NO_DUE,
    I_NO_PRODUCT,
    LOCKED,
    books,
    build_portal,
    connect,
    line_id,
    truncate,
)

pytestmark = [pytest.mark.integration]

STEPS = ("invoices", "products", "companies", "deals")
BY_ID = ("/batch/read",)  # records, and associations, read by id
P_LONG_SKU = "990000000091"  # a product whose SKU the ledger refuses (over 255 characters)
L_LONG_SKU = "990000000191"
D_LONG_SKU = "990000000092"  # a deal selling it: fails because of the product


@dataclass
class World:
    sandbox: SandboxServer
    conn: psycopg.Connection[Any]
    integration_id: int
    company_id: int
    twins: int = 0

    def sync(self, integration_id: int | None = None) -> list[dict[str, Any]]:
        """One run of the DAG's steps, in-process; what HubSpot received meanwhile."""
        integration_id = integration_id or self.integration_id
        first = self.sandbox.last_seq()
        run = f"retries-{uuid.uuid4().hex[:8]}"
        for step in STEPS:
            run_step(step, integration_id, run)
        ok, report = settle_run(integration_id, run)
        assert ok, report
        return [r for r in self.sandbox.requests(since=first) if r["seq"] > first]

    def problems(self) -> dict[tuple[str, str], tuple[str, str | None]]:
        """Open problems: (type, id) → (message, cause)."""
        rows = self.conn.execute(
            "SELECT remote_type, remote_id, message, cause FROM ledger.integration_errors "
            "WHERE integration_id = %s AND resolved_at IS NULL", [self.integration_id])
        return {(r[0], r[1]): (r[2], r[3]) for r in rows.fetchall()}

    def status(self, remote_id: str) -> str | None:
        row = self.conn.execute(
            "SELECT c.status FROM ledger.integration_records r JOIN ledger.contracts c "
            "ON c.id = r.local_id WHERE r.integration_id = %s AND r.remote_type = 'deal' "
            "AND r.remote_id = %s", [self.integration_id, remote_id]).fetchone()
        return None if row is None else str(row[0])

    def assert_equals_a_fresh_full_sync(self) -> None:
        self.twins += 1
        hook = LedgerHook()
        twin = hook.integrations.create(f"Retries twin {self.twins}", CUTOFF)
        company = books(hook, twin)
        for start, end in self.conn.execute(
                "SELECT start_date, end_date FROM ledger.accounting_periods WHERE company_id = %s "
                "AND locked", [self.company_id]).fetchall():
            self.conn.execute("INSERT INTO ledger.accounting_periods (company_id, start_date, "
                              "end_date, locked) VALUES (%s, %s, %s, true)",
                              [company, start, end])
        save_settings(twin, sync_invoices=True)
        connect(self.sandbox, twin)
        self.sync(twin)
        assert differences(view(self.conn, self.integration_id), view(self.conn, twin)) == []


def read_by_id(requests: list[dict[str, Any]]) -> dict[str, int]:
    """endpoint → how many ids the run read by id there (batch reads of records and of
    associations; the sandbox logs how many inputs each carried)."""
    found: dict[str, int] = {}
    for request in requests:
        if request["endpoint"].endswith(BY_ID):
            found[request["endpoint"]] = found.get(request["endpoint"], 0) + request["inputs"]
    return found


@pytest.fixture(scope="module")
def world(ledger_db: str) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as mp, SandboxServer(
            seed=1, scale="tiny", rate_limit=100_000, search_rate=10_000) as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(mp, sb)
        # Every change below is made after the previous run started: no overlap is needed,
        # and none hides a record read for another reason.
        mp.setenv("HUBSPOT_LEDGER_INCREMENTAL_OVERLAP_SECONDS", "0")
        for bucket in ("general", "search"):
            mp.setitem(ratelimit.BUDGETS, bucket, ratelimit.Budget(limit=1_000, seconds=1.0))
        truncate(conn)
        build_portal(sb)
        sb.upsert("products", {"name": "Long SKU", "hs_sku": "S" * 300}, id=P_LONG_SKU)
        sb.upsert("line_items", {"name": "Long SKU line", "quantity": "1", "price": "10",
                                 "hs_product_id": P_LONG_SKU}, id=L_LONG_SKU)
        sb.upsert("deals", {"dealname": "Sells a long SKU", "dealstage": "closedwon",
                            "pipeline": "default", "closedate": "2025-03-20T10:00:00Z",
                            "deal_currency_code": "USD"}, id=D_LONG_SKU,
                  associations={"line_items": [L_LONG_SKU]})
        hook = LedgerHook()
        integration_id = hook.integrations.create("Retries Ltd", CUTOFF)
        company_id = books(hook, integration_id)
        save_settings(integration_id, sync_invoices=True)
        conn.execute("INSERT INTO ledger.accounting_periods (company_id, start_date, end_date, "
                     "locked) VALUES (%s, %s, %s, true)", [company_id, *LOCKED])
        connect(sb, integration_id)
        yield World(sandbox=sb, conn=conn, integration_id=integration_id,
                    company_id=company_id)
        truncate(conn)


def test_open_problems_are_retried_by_their_cause(world: World) -> None:
    # 1. The first (full) sync records each problem with its cause.
    world.sync()
    problems = world.problems()
    hubspot = {key for key, (_, cause) in problems.items() if cause == "hubspot"}
    ledger = {key for key, (_, cause) in problems.items() if cause == "ledger"}
    assert set(problems) == hubspot | ledger  # every open problem has a cause
    # The record's own data or its lines (R-DEAL-7, R-INV-2, R-INV-5, "partly bad records").
    assert {("deal", D_ZERO), ("deal", D_NO_LINES), ("deal", D_NO_PRODUCT),
            ("invoice", I_NO_DUE), ("invoice", I_NO_PRODUCT),
            ("product", P_LONG_SKU)} <= hubspot
    # The ledger (R-DEAL-8), and a deal failing because of the product it sells.
    assert {("deal", D_LOCKED), ("deal", D_LONG_SKU)} <= ledger
    assert "locked accounting period" in problems[("deal", D_LOCKED)][0]
    world.assert_equals_a_fresh_full_sync()

    # 2. Nothing changed: the records only HubSpot can fix are not read again; those the
    # ledger can fix are, by id, and nothing else is.
    sent = world.sync()
    by_id = read_by_id(sent)
    ledger_deals = sum(t == "deal" for t, _ in ledger)
    # The deals the ledger can fix, each once, with their companies and lines (and the product
    # one of them sells); no invoice at all.
    assert by_id["POST /crm/v3/objects/deals/batch/read"] == ledger_deals
    assert by_id["POST /crm/v4/associations/deals/line_items/batch/read"] == ledger_deals
    assert not {e for e in by_id if "invoices" in e}, by_id
    assert world.problems() == problems  # and each still fails the same way

    # 3. Fixed in HubSpot, each through what it depends on: a line gets its product (the deal
    # itself unchanged), an invoice gets its due date, a zero line of a deal is deleted (the
    # deal's problem now says it has no lines; nothing but the problem's kept line ids leads
    # back to it), the long SKU is shortened (the product changes; its deal, unchanged, is
    # retried anyway: its cause is "ledger").
    world.sandbox.upsert("line_items", {"hs_product_id": "990000000001"},
                         id=line_id("no_product"))
    world.sandbox.upsert("invoices", {"hs_due_date": "2025-03-02"}, id=I_NO_DUE)
    world.sandbox.archive("line_items", line_id("zero"))
    world.sandbox.upsert("products", {"hs_sku": "SKU-LONG"}, id=P_LONG_SKU)
    world.sync()
    after = world.problems()
    assert world.status(D_NO_PRODUCT) == "draft"
    assert world.status(D_LONG_SKU) == "draft"
    for fixed in (("deal", D_NO_PRODUCT), ("invoice", I_NO_DUE), ("product", P_LONG_SKU),
                  ("deal", D_LONG_SKU)):
        assert fixed not in after, fixed
    assert "the deal has no line items" in after[("deal", D_ZERO)][0]
    assert after[("deal", D_ZERO)][1] == "hubspot"
    assert ("deal", D_LOCKED) in after
    world.assert_equals_a_fresh_full_sync()

    # 4. Fixed in the ledger: the locked period reopened (R-DEAL-8). The next run imports the
    # deal with no change in HubSpot at all.
    world.conn.execute("UPDATE ledger.accounting_periods SET locked = false "
                       "WHERE company_id = %s", [world.company_id])
    world.sync()
    assert world.status(D_LOCKED) == "draft"
    assert ("deal", D_LOCKED) not in world.problems()
    world.assert_equals_a_fresh_full_sync()


def test_an_entry_older_than_its_cause_is_retried_until_recorded_again(world: World) -> None:
    """Entries logged before migration 0019 have no cause: retried every run (the safe
    default), and given their cause by the first run that sees the record fail again."""
    world.sync()  # whatever the test before left changed
    world.conn.execute(
        "UPDATE ledger.integration_errors SET cause = NULL, line_ids = NULL "
        "WHERE integration_id = %s AND resolved_at IS NULL AND remote_id = %s",
        [world.integration_id, I_NO_PRODUCT])
    sent = world.sync()
    assert read_by_id(sent)["POST /crm/v3/objects/invoices/batch/read"] == 1
    assert world.problems()[("invoice", I_NO_PRODUCT)][1] == "hubspot"
    sent = world.sync()
    assert "POST /crm/v3/objects/invoices/batch/read" not in read_by_id(sent)


def test_a_run_report_says_how_open_problems_are_retried(world: World) -> None:
    run = f"report-{uuid.uuid4().hex[:8]}"
    for step in STEPS:
        run_step(step, world.integration_id, run)
    ok, report = settle_run(world.integration_id, run)
    assert ok, report
    waiting = sum(cause == "hubspot" for _, cause in world.problems().values())
    assert waiting
    assert (f"Open problems (records that still fail): {len(world.problems())}, {waiting} of "
            "them retried when the record changes in HubSpot") in report
