"""The sync plan, rule by rule, after real DAG runs against the sandbox and PostgreSQL.

Three runs of one integration over the crafted portal of conftest.py:
1. invoices on: everything lands;
2. invoices off, nothing changed in HubSpot: no invoice request, not one row changes;
3. invoices on, a deal edited and another whose contract accountants activated.
Tests are in run order (pytest keeps file order); each reads the ledger the runs left.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from .portal import (
    C_GLOBEX,
    C_OPEN_ONLY,
    C_SECONDARY,
    D_ACTIVE,
    D_AT_CUTOFF,
    D_BEFORE_CUTOFF,
    D_EDIT,
    D_INLINE,
    D_LOCKED,
    D_MAIN,
    D_NO_LINES,
    D_NO_PRODUCT,
    D_OPEN,
    D_ZERO,
    EDIT_3,
    I_MAIN,
    I_NO_DUE,
    I_NO_PRODUCT,
    I_OLD,
    P_ARCHIVED,
    P_GOODS,
    P_SERVICE,
    Portal,
    line_id,
)

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def run1(portal: Portal) -> Portal:
    result = portal.run()
    assert result.succeeded, result.task_states
    return portal


@pytest.fixture(scope="module")
def run2(run1: Portal) -> tuple[Portal, dict[str, Any], dict[str, Any]]:
    before = run1.dump()
    run1.set_invoices(False)
    result = run1.run()
    assert result.succeeded, result.task_states
    return run1, before, run1.dump()


@pytest.fixture(scope="module")
def run3(run2: tuple[Portal, Any, Any]) -> Portal:
    portal = run2[0]
    sb = portal.sandbox
    # Deal edited in HubSpot: a price changed, a line removed, a line added.
    sb.upsert("line_items", {"price": "120"}, id=line_id("edit_1"))
    sb.upsert("deals", {"dealname": "Edited in HubSpot"}, id=D_EDIT,
              associations={"line_items": [line_id("edit_1"), EDIT_3[0]]})
    # Accountants moved this contract on; then the deal changed in HubSpot.
    contract = portal.local_id("deal", D_ACTIVE)
    portal.ledger.execute("UPDATE ledger.contracts SET status = 'active' WHERE id = %s",
                          [contract])
    sb.upsert("deals", {"dealname": "Renamed after activation"}, id=D_ACTIVE)
    portal.set_invoices(True)
    result = portal.run()
    assert result.succeeded, result.task_states
    return portal


def _endpoints(requests: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    return [(r["seq"], r["endpoint"], str(r.get("object_type") or "")) for r in requests]


# -- run 1: everything lands ---------------------------------------------------------------


def test_r_sync_2_fixed_order_invoices_products_companies_deals(run1: Portal) -> None:
    sent = _endpoints(run1.requests_of(0))

    def first(pred: Any) -> int:
        return min(seq for seq, ep, ot in sent if pred(ep, ot))

    def last(pred: Any) -> int:
        return max(seq for seq, ep, ot in sent if pred(ep, ot))

    invoices = lambda ep, ot: "invoices" in ep  # noqa: E731
    products = lambda ep, ot: ep.startswith("GET /crm/v3/objects/products")  # noqa: E731
    companies = lambda ep, ot: "deals/search" in ep or "companies" in ep  # noqa: E731
    deals = lambda ep, ot: "deals/line_items" in ep  # noqa: E731
    assert last(invoices) < first(products)
    assert last(products) < first(companies)
    # Issue 12: the deals' line items are read ahead, beside the deal search of the companies
    # step (after the deals they belong to were found); the ledger writes keep R-SYNC-2's
    # order, which tests/sync/test_write_order.py asserts on the rows written.
    assert first(companies) < first(deals)


def test_r_prod_1_to_4_products_become_items(run1: Portal) -> None:
    service = run1.row("items", run1.local_id("product", P_SERVICE))
    goods = run1.row("items", run1.local_id("product", P_GOODS))
    assert (service["sku"], service["name"], service["item_type"]) == \
        ("SKU-SVC", "Consulting", "service")
    assert service["description"] == "Hourly consulting"
    assert goods["sku"] == f"HS_{P_GOODS}"  # R-PROD-1 fallback
    assert goods["item_type"] == "goods"
    accounts = dict(run1.ledger.execute("SELECT code, id FROM ledger.accounts").fetchall())
    assert service["income_account_id"] == goods["income_account_id"] == accounts["4000"]
    assert service["expense_account_id"] == goods["expense_account_id"] == accounts["5000"]
    assert service["deferred_revenue_account_id"] == accounts["2400"]  # R-PROD-4
    assert goods["deferred_revenue_account_id"] is None


def test_r_deal_1_closed_won_deal_becomes_draft_contract(run1: Portal) -> None:
    contract = run1.row("contracts", run1.local_id("deal", D_MAIN))
    assert contract["status"] == "draft"
    assert contract["name"] == "Globex annual"
    assert str(contract["contract_date"]) == "2025-03-15"
    assert contract["currency"] == "USD"
    company = run1.ledger.execute("SELECT id FROM ledger.companies WHERE name = %s",
                                  ["Rules Trading Ltd"]).fetchone()
    assert company is not None and contract["company_id"] == company[0]
    assert contract["total_amount"] == Decimal("225.0000")


def test_r_sync_4_cutoff_is_inclusive(run1: Portal) -> None:
    assert run1.local_id("deal", D_AT_CUTOFF) is not None
    assert run1.local_id("deal", D_BEFORE_CUTOFF) is None
    assert run1.errors(D_BEFORE_CUTOFF) == []  # filtered by the query, not failed


def test_r_comp_1_companies_of_open_deals_are_absent(run1: Portal) -> None:
    assert run1.local_id("deal", D_OPEN) is None
    assert run1.local_id("company", C_OPEN_ONLY) is None
    names = {r[0] for r in run1.ledger.execute("SELECT name FROM ledger.customers")}
    assert "Open Deal Co" not in names


def test_r_comp_1_every_company_of_a_qualifying_deal_becomes_a_customer(run1: Portal) -> None:
    # A second company on a closed-won deal (a partner, a subsidiary) is a customer too…
    secondary = run1.local_id("company", C_SECONDARY)
    assert secondary is not None
    assert run1.row("customers", secondary)["name"] == "Secondary Co"
    # …while the primary one stays the contract's customer (R-DEAL-4).
    contract = run1.row("contracts", run1.local_id("deal", D_MAIN))
    assert contract["customer_id"] == run1.local_id("company", C_GLOBEX)


def test_r_comp_2_and_r_deal_4_primary_company_becomes_the_customer(run1: Portal) -> None:
    customer = run1.row("customers", run1.local_id("company", C_GLOBEX))
    assert (customer["name"], customer["customer_type"]) == ("Globex Ltd", "company")
    assert customer["phone"] == "+44 20 7946 0000"
    assert customer["city"] == "London"
    contract = run1.row("contracts", run1.local_id("deal", D_MAIN))
    assert contract["customer_id"] == customer["id"]


def test_r_deal_4_deal_without_company_gets_the_unknown_customer(run1: Portal) -> None:
    contract = run1.row("contracts", run1.local_id("deal", D_AT_CUTOFF))
    customer = run1.row("customers", contract["customer_id"])
    assert (customer["name"], customer["is_placeholder"]) == ("Unknown", True)


def test_r_deal_2_3_6_lines_become_obligations_with_discounts(run1: Portal) -> None:
    lines = run1.obligations(D_MAIN)
    pct, fixed = lines[line_id("main_pct")], lines[line_id("main_fixed")]
    assert (pct["quantity"], pct["unit_price"]) == (Decimal("2"), Decimal("100"))
    assert pct["discount_percent"] == Decimal("10") and pct["discount_amount"] is None
    assert pct["amount"] == Decimal("180")
    assert fixed["discount_amount"] == Decimal("5") and fixed["discount_percent"] is None
    assert fixed["amount"] == Decimal("45")
    assert pct["sku"] == "SKU-SVC" and fixed["sku"] == f"HS_{P_GOODS}"
    assert {o["recognition_strategy"] for o in lines.values()} == {"immediate"}


def test_r_deal_2_product_missing_from_the_listing_is_created_inline(run1: Portal) -> None:
    item = run1.row("items", run1.local_id("product", P_ARCHIVED))
    assert item["sku"] == "SKU-ARCH"
    assert run1.obligations(D_INLINE)[line_id("inline")]["sku"] == "SKU-ARCH"


def test_r_deal_5_memo_has_description_and_deep_link(run1: Portal) -> None:
    contract = run1.row("contracts", run1.local_id("deal", D_MAIN))
    portal_id = run1.sandbox.portal_id
    assert contract["memo"] == (f"Annual support\n\n"
                                f"https://app.hubspot.com/contacts/{portal_id}/deal/{D_MAIN}")


def test_r_deal_7_no_valid_line_items_is_skipped(run1: Portal) -> None:
    for deal in (D_ZERO, D_NO_LINES):
        assert run1.local_id("deal", deal) is None
        assert any("No valid line items" in m for m in run1.errors(deal)), deal
    assert run1.counts(0)["deals"]["skipped"] >= 2


def test_design_deal_line_without_product_id_fails_the_deal(run1: Portal) -> None:
    assert run1.local_id("deal", D_NO_PRODUCT) is None
    [message] = run1.errors(D_NO_PRODUCT)
    assert "Product id missing" in message and line_id("no_product") in message


def test_r_deal_8_deal_in_a_locked_period_fails(run1: Portal) -> None:
    assert run1.local_id("deal", D_LOCKED) is None
    [message] = run1.errors(D_LOCKED)
    assert "locked accounting period (2025-06-01 to 2025-06-30)" in message


def test_r_inv_1_3_4_6_invoice_lines_zero_skipped_discount_negative(run1: Portal) -> None:
    invoice = run1.row("invoices", run1.local_id("invoice", I_MAIN))
    assert (str(invoice["invoice_date"]), str(invoice["due_date"])) == \
        ("2025-02-01", "2025-03-01")
    assert invoice["number"] == "INV-1"
    lines = run1.ledger.execute(
        "SELECT description, quantity, unit_price, amount FROM ledger.invoice_lines "
        "WHERE invoice_id = %s ORDER BY amount DESC", [invoice["id"]]).fetchall()
    assert [(q, p, a) for _, q, p, a in lines] == [
        (Decimal("1"), Decimal("200"), Decimal("200")),
        (Decimal("1"), Decimal("-20"), Decimal("-20"))]
    assert lines[1][0].startswith("Discount: ")
    assert invoice["total_amount"] == Decimal("180")
    customer = run1.row("customers", invoice["customer_id"])
    company = run1.row("companies", invoice["company_id"])
    assert customer["is_placeholder"] and customer["name"] == "Unknown"
    assert company["is_placeholder"] and company["name"] == "Unknown"


def test_r_inv_5_invoice_missing_due_date_fails_naming_it(run1: Portal) -> None:
    assert run1.local_id("invoice", I_NO_DUE) is None
    [message] = run1.errors(I_NO_DUE)
    assert "hs_due_date" in message


def test_r_inv_2_invoice_line_without_product_fails(run1: Portal) -> None:
    assert run1.local_id("invoice", I_NO_PRODUCT) is None
    [message] = run1.errors(I_NO_PRODUCT)
    assert "Product id missing" in message


def test_r_sync_4_invoices_before_the_cutoff_are_not_read(run1: Portal) -> None:
    assert run1.local_id("invoice", I_OLD) is None
    assert run1.errors(I_OLD) == []


def test_sync_run_row_has_counts_per_step(run1: Portal) -> None:
    counts = run1.counts(0)
    assert set(counts) == {"invoices", "products", "companies", "deals"}
    assert counts["deals"]["created"] >= 5 and counts["deals"]["failed"] >= 2
    status = run1.ledger.execute("SELECT status FROM ledger.sync_runs ORDER BY id").fetchone()
    assert status is not None and status[0] == "success"


# -- run 2: invoices off, nothing changed ---------------------------------------------------


def test_r_sync_3_toggle_off_sends_no_invoice_request(
        run2: tuple[Portal, Any, Any]) -> None:
    portal = run2[0]
    sent = portal.requests_of(1)
    assert sent, "the second run made no request at all"
    assert [r for r in sent if "invoice" in r["endpoint"]] == []


def test_rerun_is_idempotent_and_turning_invoices_off_keeps_them(
        run2: tuple[Portal, Any, Any]) -> None:
    portal, before, after = run2
    assert after == before  # ids, values and updated_at: not one row changed
    assert portal.local_id("invoice", I_MAIN) is not None  # R-SYNC-3
    counts = portal.counts(1)
    for step in ("products", "companies", "deals"):
        assert counts[step]["created"] == counts[step]["updated"] == 0, counts


# -- run 3: HubSpot edits ------------------------------------------------------------------


def test_deal_edited_in_hubspot_updates_its_contract(run3: Portal) -> None:
    contract = run3.row("contracts", run3.local_id("deal", D_EDIT))
    assert contract["name"] == "Edited in HubSpot"
    lines = run3.obligations(D_EDIT)
    assert set(lines) == {line_id("edit_1"), EDIT_3[0]}  # edit_2 removed, edit_3 added
    assert lines[line_id("edit_1")]["amount"] == Decimal("120")
    assert lines[EDIT_3[0]]["amount"] == Decimal("20")
    assert contract["total_amount"] == Decimal("140")
    assert run3.local_id("line_item", line_id("edit_2")) is None
    assert run3.counts(2)["deals"]["updated"] == 1


def test_non_draft_contract_is_never_overwritten(run3: Portal) -> None:
    contract = run3.row("contracts", run3.local_id("deal", D_ACTIVE))
    assert (contract["status"], contract["name"]) == ("active", "Activated by accounting")
    [message] = run3.errors(D_ACTIVE)
    assert "is active, so the change was not applied" in message


# -- the operator's verb -------------------------------------------------------------------


def test_cli_sync_runs_the_dag_to_completion_and_fails_loudly(
        run3: Portal, capsys: pytest.CaptureFixture[str]) -> None:
    from hubspot_ledger.cli import main

    runs_before = len(run3.counts_all())
    assert main(["sync", "--integration", str(run3.integration_id)]) == 0
    assert len(run3.counts_all()) == runs_before + 1
    status = run3.ledger.execute(
        "SELECT status FROM ledger.sync_runs ORDER BY id DESC LIMIT 1").fetchone()
    assert status is not None and status[0] == "success"
    # A revoked integration: the verb exits non-zero with a one-line reason.
    run3.ledger.execute("UPDATE ledger.integrations SET status = 'error', "
                        "status_message = 'access revoked' WHERE id = %s",
                        [run3.integration_id])
    capsys.readouterr()
    assert main(["sync", "--integration", str(run3.integration_id)]) == 1
    assert "failed" in capsys.readouterr().err.lower()
