"""An integration's second week, through real DAG runs (issue 10, "Done when").

The crafted portal of portal.py is synced by organization A through `dag.test()` runs while
things change, in order: first sync with invoices off → invoices on → cutoff moved earlier →
a locked period reopened → a bad deal fixed in HubSpot → a deal moved to closed lost → a deal
archived → a product archived. After each step A's ledger must equal what a fresh organization
with the same settings gets from one full sync (void documents aside, ledger_view.py), and A's
open problems must be exactly the records that still fail.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from support import use_sandbox_app

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import save_settings
from hubspot_ledger.run_dag import run_integration_dag
from hubspot_ledger.sync.run_report import settle_run
from hubspot_ledger.sync.runner import run_step
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .ledger_view import differences, view
from .portal import (
    CUTOFF,
    D_AT_CUTOFF,
    D_BEFORE_CUTOFF,
    D_EDIT,
    D_LOCKED,
    D_MAIN,
    D_NO_PRODUCT,
    I_OLD,
    LOCKED,
    P_GOODS,
    books,
    build_portal,
    connect,
    line_id,
    truncate,
)

pytestmark = [pytest.mark.e2e]
EARLIER = dt.date(2024, 6, 1)


@dataclass
class Life:
    sandbox: SandboxServer
    conn: psycopg.Connection[Any]
    integration_id: int
    company_id: int
    twins: int = 0

    def run(self) -> None:
        """One real DAG run of A, as the scheduler would start it (no full refresh)."""
        result = run_integration_dag(self.integration_id)
        assert result.succeeded, result.task_states

    def settings(self) -> tuple[dt.date, bool, list[tuple[dt.date, dt.date]]]:
        row = self.conn.execute(
            "SELECT i.cutoff_date, s.sync_invoices FROM ledger.integrations i JOIN "
            "ledger.integration_settings s ON s.integration_id = i.id WHERE i.id = %s",
            [self.integration_id]).fetchone()
        assert row is not None
        locked = self.conn.execute(
            "SELECT start_date, end_date FROM ledger.accounting_periods WHERE company_id = %s "
            "AND locked", [self.company_id]).fetchall()
        return row[0], bool(row[1]), [(r[0], r[1]) for r in locked]

    def fresh_twin(self) -> int:
        """A new organization with A's settings, books and locked periods, connected to the
        same portal and synced once in full."""
        cutoff, invoices, locked = self.settings()
        self.twins += 1
        hook = LedgerHook()
        twin = hook.integrations.create(f"Fresh twin {self.twins}", cutoff)
        company = books(hook, twin)
        for start, end in locked:
            self.conn.execute("INSERT INTO ledger.accounting_periods (company_id, start_date, "
                              "end_date, locked) VALUES (%s, %s, %s, true)",
                              [company, start, end])
        save_settings(twin, sync_invoices=invoices)
        connect(self.sandbox, twin)
        run = f"twin-{uuid.uuid4().hex[:8]}"
        for step in (["invoices"] if invoices else []) + ["products", "companies", "deals"]:
            run_step(step, twin, run)
        ok, report = settle_run(twin, run)
        assert ok, report
        return twin

    def assert_equals_a_fresh_full_sync(self) -> None:
        twin = self.fresh_twin()
        assert differences(view(self.conn, self.integration_id), view(self.conn, twin)) == []

    def open_problems(self) -> set[str]:
        return {r[0] for r in self.conn.execute(
            "SELECT remote_id FROM ledger.integration_errors WHERE integration_id = %s "
            "AND resolved_at IS NULL", [self.integration_id]).fetchall()}

    def status(self, remote_type: str, remote_id: str) -> str | None:
        table = "contracts" if remote_type == "deal" else "invoices"
        row = self.conn.execute(
            f"SELECT t.status FROM ledger.integration_records r JOIN ledger.{table} t "  # noqa: S608
            "ON t.id = r.local_id WHERE r.integration_id = %s AND r.remote_type = %s "
            "AND r.remote_id = %s", [self.integration_id, remote_type, remote_id]).fetchone()
        return None if row is None else str(row[0])


@pytest.fixture(scope="module")
def life(ledger_db: str, airflow_home: Any) -> Iterator[Life]:
    with pytest.MonkeyPatch.context() as mp, SandboxServer(seed=1, scale="tiny") as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(mp, sb)
        truncate(conn)
        build_portal(sb)
        hook = LedgerHook()
        integration_id = hook.integrations.create("Second Week Ltd", CUTOFF)
        company_id = books(hook, integration_id)
        save_settings(integration_id, sync_invoices=False)
        conn.execute("INSERT INTO ledger.accounting_periods (company_id, start_date, end_date, "
                     "locked) VALUES (%s, %s, %s, true)", [company_id, *LOCKED])
        connect(sb, integration_id)
        yield Life(sandbox=sb, conn=conn, integration_id=integration_id, company_id=company_id)


def test_an_integrations_second_week_lands_like_a_fresh_full_sync(life: Life) -> None:
    # 1. First sync, invoices off (R-SYNC-3).
    life.run()
    assert life.status("invoice", I_OLD) is None
    assert {D_LOCKED, D_NO_PRODUCT} <= life.open_problems()
    life.assert_equals_a_fresh_full_sync()

    # 2. Invoices turned on: every qualifying invoice arrives, not only those changed since.
    save_settings(life.integration_id, sync_invoices=True)
    life.run()
    invoices = life.conn.execute(
        "SELECT count(*) FROM ledger.integration_records WHERE integration_id = %s "
        "AND remote_type = 'invoice'", [life.integration_id]).fetchone()
    assert invoices is not None and invoices[0] > 0
    life.assert_equals_a_fresh_full_sync()

    # 3. Cutoff moved earlier (R-SYNC-4): what now qualifies is read.
    life.conn.execute("UPDATE ledger.integrations SET cutoff_date = %s WHERE id = %s",
                      [EARLIER, life.integration_id])
    life.run()
    assert life.status("deal", D_BEFORE_CUTOFF) == "draft"
    assert life.status("invoice", I_OLD) == "draft"
    life.assert_equals_a_fresh_full_sync()

    # 4. The locked period reopened (R-DEAL-8): the refused deal lands, its problem resolves.
    life.conn.execute("UPDATE ledger.accounting_periods SET locked = false "
                      "WHERE company_id = %s", [life.company_id])
    life.run()
    assert life.status("deal", D_LOCKED) == "draft"
    assert D_LOCKED not in life.open_problems()
    life.assert_equals_a_fresh_full_sync()

    # 5. A bad deal fixed in HubSpot: the line gets its product. The deal itself did not
    # change; the changed line leads the run back to it (issue 12).
    life.sandbox.upsert("line_items", {"hs_product_id": P_GOODS}, id=line_id("no_product"))
    life.run()
    assert life.status("deal", D_NO_PRODUCT) == "draft"
    assert D_NO_PRODUCT not in life.open_problems()
    life.assert_equals_a_fresh_full_sync()

    # 6. A deal moved to closed lost: its draft is voided, with a warning saying why.
    life.sandbox.upsert("deals", {"dealstage": "closedlost"}, id=D_EDIT)
    life.run()
    assert life.status("deal", D_EDIT) == "void"
    life.assert_equals_a_fresh_full_sync()

    # 7. A deal archived (deleted to HubSpot's recycle bin): voided too.
    life.sandbox.archive("deals", D_AT_CUTOFF)
    life.run()
    assert life.status("deal", D_AT_CUTOFF) == "void"
    life.assert_equals_a_fresh_full_sync()

    # 8. A product archived: its item keeps the product's real type and accounts, and a fresh
    # integration reads it from the recycle bin for the deal line that sells it.
    life.sandbox.archive("products", P_GOODS)
    life.run()
    assert life.status("deal", D_MAIN) == "draft"
    life.assert_equals_a_fresh_full_sync()

    warnings = [r[0] for r in life.conn.execute(
        "SELECT message FROM ledger.integration_errors WHERE integration_id = %s "
        "AND severity = 'warning' AND remote_id IN (%s, %s)",
        [life.integration_id, D_EDIT, D_AT_CUTOFF]).fetchall()]
    assert any("left closed won" in w and "now void" in w for w in warnings), warnings
    assert any("archived or deleted" in w for w in warnings), warnings


def test_a_voided_deal_that_qualifies_again_returns_to_draft(life: Life) -> None:
    contract = life.conn.execute(
        "SELECT local_id FROM ledger.integration_records WHERE integration_id = %s AND "
        "remote_type = 'deal' AND remote_id = %s", [life.integration_id, D_EDIT]).fetchone()
    life.sandbox.upsert("deals", {"dealstage": "closedwon"}, id=D_EDIT)
    life.run()
    assert life.status("deal", D_EDIT) == "draft"
    again = life.conn.execute(
        "SELECT local_id FROM ledger.integration_records WHERE integration_id = %s AND "
        "remote_type = 'deal' AND remote_id = %s", [life.integration_id, D_EDIT]).fetchone()
    assert again == contract  # the same row, not a new contract
    life.assert_equals_a_fresh_full_sync()
