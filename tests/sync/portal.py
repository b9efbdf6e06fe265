"""A HubSpot portal crafted rule by rule, and an organization ready to sync it.

The sandbox (its `tiny` seed data plus the records of `PORTAL` below) is HubSpot over HTTP; the
ledger is this test run's PostgreSQL database; the DAG runs through Airflow's `dag.test()`.
Records added here have ids from 990000000001 up, so assertions never depend on seed data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg
import requests
from psycopg import sql

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import AccountType
from hubspot_ledger.run_dag import RunResult, run_integration_dag
from hubspot_ledger_tools.sandbox.testing import SandboxServer

CUTOFF = dt.date(2025, 1, 1)
ORGANIZATION = "Rules Ltd"
COMPANY = "Rules Trading Ltd"
ACCOUNTS = {
    "ar_account": ("1100", "Accounts receivable", AccountType.ASSET),
    "deferred_revenue_account": ("2400", "Deferred revenue", AccountType.LIABILITY),
    "expense_account": ("5000", "Cost of sales", AccountType.EXPENSE),
    "income_account": ("4000", "Revenue", AccountType.INCOME),
    "clearing_account": ("1190", "HubSpot clearing", AccountType.ASSET),
}
LOCKED = (dt.date(2025, 6, 1), dt.date(2025, 6, 30))


def _id(n: int) -> str:
    return str(990_000_000_000 + n)


# Products
P_SERVICE, P_GOODS, P_ARCHIVED = _id(1), _id(2), _id(3)
# Companies
C_GLOBEX, C_OPEN_ONLY, C_SECONDARY = _id(11), _id(12), _id(13)
# Deals
D_MAIN, D_AT_CUTOFF, D_BEFORE_CUTOFF, D_OPEN = _id(21), _id(22), _id(23), _id(24)
D_ZERO, D_NO_PRODUCT, D_INLINE, D_LOCKED, D_NO_LINES = _id(25), _id(26), _id(27), _id(28), _id(29)
D_EDIT, D_ACTIVE = _id(30), _id(31)
# Invoices
I_MAIN, I_NO_DUE, I_NO_PRODUCT, I_OLD = _id(41), _id(42), _id(43), _id(44)


def _line(n: int, product: str | None, quantity: str, price: str,
          **extra: str) -> tuple[str, dict[str, str]]:
    props = {"name": f"Line {n}", "quantity": quantity, "price": price, **extra}
    if product is not None:
        props["hs_product_id"] = product
    return _id(100 + n), props


LINES = {
    "main_pct": _line(1, P_SERVICE, "2", "100", hs_discount_percentage="10"),
    "main_fixed": _line(2, P_GOODS, "1", "50", discount="5"),
    "cutoff": _line(3, P_SERVICE, "1", "10"),
    "open": _line(4, P_SERVICE, "1", "10"),
    "zero": _line(5, P_SERVICE, "1", "0"),
    "no_product": _line(6, None, "1", "10"),
    "inline": _line(7, P_ARCHIVED, "3", "15", hs_sku="SKU-ARCH", name="Archived widget"),
    "locked": _line(8, P_SERVICE, "1", "10"),
    "before": _line(9, P_SERVICE, "1", "10"),
    "edit_1": _line(10, P_SERVICE, "1", "100"),
    "edit_2": _line(11, P_GOODS, "1", "30"),
    "active": _line(12, P_SERVICE, "1", "70"),
    "inv_main": _line(21, P_SERVICE, "1", "200", discount="20"),
    "inv_zero": _line(22, P_GOODS, "1", "0"),
    "inv_no_due": _line(23, P_SERVICE, "1", "10"),
    "inv_no_product": _line(24, None, "1", "10"),
    "inv_old": _line(25, P_SERVICE, "1", "10"),
}
EDIT_3 = _line(13, P_GOODS, "2", "10")


def line_id(key: str) -> str:
    return LINES[key][0]


def _deal(name: str, stage: str = "closedwon", closedate: str | None = "2025-03-15T10:00:00Z",
          **extra: str) -> dict[str, str]:
    props = {"dealname": name, "dealstage": stage, "pipeline": "default",
             "deal_currency_code": "USD", **extra}
    if closedate is not None:
        props["closedate"] = closedate
    return props


def build_portal(sb: SandboxServer) -> None:
    """PORTAL: one record per rule under test (ids in the constants above)."""
    sb.upsert("products", {"name": "Consulting", "hs_sku": "SKU-SVC",
                           "hs_product_type": "service", "description": "Hourly consulting"},
              id=P_SERVICE)
    sb.upsert("products", {"name": "Widget", "hs_product_type": "inventory"}, id=P_GOODS)
    sb.upsert("products", {"name": "Old widget", "hs_sku": "SKU-ARCH"}, id=P_ARCHIVED)
    sb.archive("products", P_ARCHIVED)
    sb.upsert("companies", {"name": "Globex Ltd", "phone": "+44 20 7946 0000",
                            "domain": "globex.example", "city": "London", "country": "UK"},
              id=C_GLOBEX)
    sb.upsert("companies", {"name": "Open Deal Co"}, id=C_OPEN_ONLY)
    sb.upsert("companies", {"name": "Secondary Co"}, id=C_SECONDARY)
    for line, props in [*LINES.values(), EDIT_3]:
        sb.upsert("line_items", props, id=line)

    def deal(deal_id: str, props: dict[str, str], lines: list[str],
             companies: list[Any] | None = None) -> None:
        sb.upsert("deals", props, id=deal_id, associations={
            "line_items": [line_id(k) for k in lines], "companies": companies or []})

    deal(D_MAIN, _deal("Globex annual", description="Annual support"),
         ["main_pct", "main_fixed"], [{"id": C_GLOBEX, "primary": True}, C_SECONDARY])
    deal(D_AT_CUTOFF, _deal("At the cutoff", closedate="2025-01-01T00:00:00Z"), ["cutoff"])
    deal(D_BEFORE_CUTOFF, _deal("Just before", closedate="2024-12-31T23:59:59.999Z"),
         ["before"])
    deal(D_OPEN, _deal("Still open", stage="appointmentscheduled"), ["open"],
         [{"id": C_OPEN_ONLY, "primary": True}])
    deal(D_ZERO, _deal("All zero"), ["zero"])
    deal(D_NO_PRODUCT, _deal("No product"), ["no_product"])
    deal(D_INLINE, _deal("Archived product"), ["inline"])
    deal(D_LOCKED, _deal("In a locked month", closedate="2025-06-10T12:00:00Z"), ["locked"])
    deal(D_NO_LINES, _deal("No lines"), [])
    deal(D_EDIT, _deal("To be edited"), ["edit_1", "edit_2"])
    deal(D_ACTIVE, _deal("Activated by accounting"), ["active"])

    def invoice(invoice_id: str, props: dict[str, str], lines: list[str]) -> None:
        sb.upsert("invoices", {"hs_currency": "USD", **props}, id=invoice_id,
                  associations={"line_items": [line_id(k) for k in lines]})

    invoice(I_MAIN, {"hs_number": "INV-1", "hs_invoice_date": "2025-02-01",
                     "hs_due_date": "2025-03-01"}, ["inv_main", "inv_zero"])
    invoice(I_NO_DUE, {"hs_number": "INV-2", "hs_invoice_date": "2025-02-02"}, ["inv_no_due"])
    invoice(I_NO_PRODUCT, {"hs_number": "INV-3", "hs_invoice_date": "2025-02-03",
                           "hs_due_date": "2025-03-03"}, ["inv_no_product"])
    invoice(I_OLD, {"hs_number": "INV-OLD", "hs_invoice_date": "2024-06-01",
                    "hs_due_date": "2024-07-01"}, ["inv_old"])


@dataclass
class Portal:
    """One organization syncing the crafted portal; `run()` is a real DAG run."""

    sandbox: SandboxServer
    ledger: psycopg.Connection
    integration_id: int
    runs: list[tuple[RunResult, int, int]] = field(default_factory=list)

    def run(self) -> RunResult:
        first = self.sandbox.last_seq() + 1
        result = run_integration_dag(self.integration_id)
        self.runs.append((result, first, self.sandbox.last_seq()))
        return result

    def requests_of(self, run: int) -> list[dict[str, Any]]:
        """What HubSpot received during the n-th run (0-based), in order."""
        _, first, last = self.runs[run]
        return [r for r in self.sandbox.requests(since=first - 1)
                if first <= r["seq"] <= last]

    def set_invoices(self, on: bool) -> None:
        from hubspot_ledger.integration_settings import save_settings

        save_settings(self.integration_id, sync_invoices=on)

    def local_id(self, remote_type: str, remote_id: str) -> int | None:
        row = self.ledger.execute(
            "SELECT local_id FROM ledger.integration_records WHERE integration_id = %s AND "
            "remote_type = %s AND remote_id = %s",
            [self.integration_id, remote_type, remote_id]).fetchone()
        return None if row is None else int(row[0])

    def row(self, table: str, local_id: int | None) -> dict[str, Any]:
        assert local_id is not None, f"no {table} row"
        cur = self.ledger.execute(
            sql.SQL("SELECT * FROM ledger.{} WHERE id = %s").format(sql.Identifier(table)),
            [local_id])
        names = [d.name for d in cur.description or []]
        found = cur.fetchone()
        assert found is not None
        return dict(zip(names, found, strict=True))

    def obligations(self, deal_id: str) -> dict[str, dict[str, Any]]:
        """The deal's obligations by line item id."""
        contract = self.local_id("deal", deal_id)
        rows = self.ledger.execute(
            "SELECT r.remote_id, p.quantity, p.unit_price, p.discount_percent, "
            "p.discount_amount, p.amount, p.recognition_strategy, i.sku, p.description "
            "FROM ledger.performance_obligations p JOIN ledger.items i ON i.id = p.item_id "
            "JOIN ledger.integration_records r ON r.local_id = p.id "
            "AND r.local_table = 'performance_obligations' WHERE p.contract_id = %s",
            [contract]).fetchall()
        keys = ("quantity", "unit_price", "discount_percent", "discount_amount", "amount",
                "recognition_strategy", "sku", "description")
        return {r[0]: dict(zip(keys, r[1:], strict=True)) for r in rows}

    def errors(self, remote_id: str) -> list[str]:
        return [r[0] for r in self.ledger.execute(
            "SELECT message FROM ledger.integration_errors WHERE integration_id = %s "
            "AND remote_id = %s ORDER BY id", [self.integration_id, remote_id]).fetchall()]

    def counts(self, run: int) -> dict[str, dict[str, int]]:
        rows = self.ledger.execute(
            "SELECT counts FROM ledger.sync_runs WHERE integration_id = %s ORDER BY id",
            [self.integration_id]).fetchall()
        counts: dict[str, dict[str, int]] = rows[run][0]
        return counts

    def counts_all(self) -> list[dict[str, dict[str, int]]]:
        return [r[0] for r in self.ledger.execute(
            "SELECT counts FROM ledger.sync_runs WHERE integration_id = %s ORDER BY id",
            [self.integration_id]).fetchall()]

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row the sync writes, ids and updated_at included: a re-run that changes
        nothing leaves all of it equal."""
        tables = ["customers", "items", "contracts", "performance_obligations", "invoices",
                  "invoice_lines", "integration_records", "companies"]
        dumped = {}
        for table in tables:
            query = sql.SQL("SELECT * FROM ledger.{} ORDER BY id").format(sql.Identifier(table))
            dumped[table] = [tuple(map(str, r)) for r in self.ledger.execute(query).fetchall()]
        return dumped


def truncate(conn: psycopg.Connection) -> None:
    tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'ledger' "
                          "AND tablename <> 'schema_migrations'").fetchall()
    names = sql.SQL(", ").join(sql.Identifier("ledger", t) for (t,) in tables)
    conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(names))


def connect(sb: SandboxServer, integration_id: int) -> None:
    """The real consent redirect and code exchange (R-AUTH-2, R-AUTH-3)."""
    from hubspot_ledger.connect import auth_url, complete_connection

    consent = requests.get(auth_url(integration_id), allow_redirects=False, timeout=10)
    query = parse_qs(urlparse(consent.headers["Location"]).query)
    complete_connection(query["code"][0], query["state"][0])


def books(hook: LedgerHook, integration_id: int) -> int:
    from hubspot_ledger.integration_settings import save_settings

    org = hook.integrations.get(integration_id).organization_id
    for code, name, kind in ACCOUNTS.values():
        hook.settings.create_account(org, code, name, kind)
    company_id = hook.settings.create_company(org, COMPANY, "USD")
    save_settings(integration_id, accounts={k: v[0] for k, v in ACCOUNTS.items()},
                  company=COMPANY, sync_invoices=True)
    return company_id
