"""HubSpot invoices → sales invoices (R-INV-1…6; DESIGN "invoice discount line", "invoices
missing a date", "partly bad records")."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from hubspot_ledger.extract.models import BadValue, Invoice, LineItem, Product
from hubspot_ledger.load.records import IntegrationSettings, ItemType, RemoteType
from hubspot_ledger.mapping import (
    InvoiceDraft,
    MappingContext,
    MappingError,
    SkipRecord,
    map_invoice_to_sales_invoice,
)

pytestmark = pytest.mark.unit

IDS: dict[str, int | None] = {
    "ar_account_id": 11, "deferred_revenue_account_id": 12, "expense_account_id": 13,
    "income_account_id": 14, "clearing_account_id": 15, "company_id": 21}
INVOICE = 'Invoice 7001 ("INV-1003")'


def context(currency: str | None = "USD") -> MappingContext:
    settings = IntegrationSettings(
        integration_id=1, organization_id=1, ar_account="1100", deferred_revenue_account="2400",
        expense_account="5000", income_account="4000", clearing_account="1190",
        company="Acme Ltd", sync_invoices=True, ids=IDS)
    return MappingContext(settings=settings, portal_id="4711", currency=currency)


def invoice(**props: str | None) -> Invoice:
    return Invoice.from_api({"id": "7001", "properties": {
        "hs_number": "INV-1003", "hs_invoice_date": "2025-07-01T00:00:00.000Z",
        "hs_due_date": "2025-07-31T00:00:00.000Z", "hs_currency": "USD", **props}})


def line(line_id: str = "201", /, **props: str | None) -> LineItem:
    return LineItem.from_api({"id": line_id, "properties": {
        "name": "Widget", "hs_product_id": "501", "quantity": "1", "price": "100", **props}})


def sales_invoice(*lines: LineItem, the_invoice: Invoice | None = None,
                  products: dict[str, Product] | None = None,
                  ctx: MappingContext | None = None) -> InvoiceDraft:
    return map_invoice_to_sales_invoice(the_invoice or invoice(), list(lines) or [line()],
                                        ctx or context(), products=products)


def failure(*lines: LineItem, the_invoice: Invoice | None = None) -> MappingError:
    with pytest.raises(MappingError) as err:
        sales_invoice(*lines, the_invoice=the_invoice)
    assert (err.value.remote_type, err.value.remote_id) == (RemoteType.INVOICE, "7001")
    assert err.value.skipped is False and "\n" not in err.value.message
    return err.value


# --- R-INV-1 -------------------------------------------------------------------------------------


def test_r_inv_1_invoice_with_line_items_becomes_a_sales_invoice() -> None:
    draft = sales_invoice(line("201", quantity="2", price="50"), line("202", price="25.5"))
    assert (draft.remote_id, draft.number, draft.currency) == ("7001", "INV-1003", "USD")
    assert (draft.invoice_date, draft.due_date) == (dt.date(2025, 7, 1), dt.date(2025, 7, 31))
    assert [(ln.remote_id, ln.quantity, ln.unit_price, ln.amount) for ln in draft.lines] == [
        ("201", Decimal(2), Decimal(50), Decimal(100)),
        ("202", Decimal(1), Decimal("25.5"), Decimal("25.50"))]
    assert draft.total_amount == Decimal("125.50")


def test_r_inv_1_invoice_without_a_number_is_numbered_by_its_id() -> None:
    assert sales_invoice(the_invoice=invoice(hs_number=" ")).number == "HS-INV-7001"


def test_r_inv_1_invoice_lines_draft_their_items_like_deal_lines() -> None:
    product = Product.from_api({"id": "501", "properties": {"name": "Widget XL",
                                                            "hs_sku": "W-XL",
                                                            "hs_product_type": "inventory"}})
    item = sales_invoice(products={"501": product}).lines[0].item
    assert (item.remote_id, item.sku, item.name, item.item_type) == (
        "501", "W-XL", "Widget XL", ItemType.GOODS)


def test_r_inv_1_invoice_without_currency_uses_the_portal_currency() -> None:
    assert sales_invoice(the_invoice=invoice(hs_currency=None),
                         ctx=context("CAD")).currency == "CAD"


def test_r_inv_1_invoice_currency_that_does_not_exist_fails_naming_it() -> None:
    assert f'{INVOICE}: currency (hs_currency) "ABC" is not an ISO 4217 currency code' in \
        failure(line(), the_invoice=invoice(hs_currency="ABC")).message


def test_r_inv_1_invoice_without_line_items_is_skipped() -> None:
    with pytest.raises(SkipRecord, match="^No valid line items$"):
        map_invoice_to_sales_invoice(invoice(), [], context())


# --- R-INV-2 -------------------------------------------------------------------------------------


def test_r_inv_2_line_without_product_id_fails_the_whole_invoice_naming_the_line() -> None:
    err = failure(line("201"), line("202", name="Setup", hs_product_id=" "))
    assert err.message == (f"{INVOICE} not imported: Product id missing on line item 202 "
                           '("Setup") (hs_product_id); choose a product from the product '
                           "library for this line in HubSpot")


# --- R-INV-3 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("zero", [{"quantity": "0"}, {"price": "0"}])
def test_r_inv_3_zero_amount_lines_are_left_out(zero: dict[str, str]) -> None:
    draft = sales_invoice(line("201"), line("202", **zero))
    assert [ln.remote_id for ln in draft.lines] == ["201"]


def test_r_inv_3_zero_line_without_product_id_is_left_out_not_failed() -> None:
    draft = sales_invoice(line("201"), line("202", quantity="0", hs_product_id=None))
    assert [ln.remote_id for ln in draft.lines] == ["201"]


def test_r_inv_3_invoice_whose_every_line_is_zero_is_skipped() -> None:
    with pytest.raises(SkipRecord) as skip:
        sales_invoice(line("201", price="0"), line("202", quantity="0"))
    assert skip.value.message == "No valid line items" and skip.value.skipped


# --- R-INV-4 -------------------------------------------------------------------------------------


def test_r_inv_4_fixed_discount_becomes_a_separate_negative_line() -> None:
    draft = sales_invoice(line(quantity="3", price="100", discount="10"))
    full, discount = draft.lines
    assert (full.quantity, full.unit_price, full.amount, full.is_discount) == (
        Decimal(3), Decimal(100), Decimal(300), False)
    assert (discount.quantity, discount.unit_price, discount.amount) == (
        Decimal(1), Decimal(-30), Decimal(-30))
    assert discount.is_discount and discount.description == "Discount: Widget"
    assert discount.item == full.item and discount.product_id == full.product_id
    assert (full.remote_key, discount.remote_key) == ("201", "201:discount")
    assert draft.total_amount == Decimal(270)


def test_r_inv_4_percentage_discount_line_matches_hubspots_net_amount() -> None:
    draft = sales_invoice(line(quantity="10", price="234.56", hs_discount_percentage="20"))
    assert [ln.amount for ln in draft.lines] == [Decimal("2345.60"), Decimal("-469.12")]
    assert draft.total_amount == Decimal("1876.48")


def test_r_inv_4_line_without_discount_has_no_discount_line() -> None:
    assert len(sales_invoice(line(discount="0")).lines) == 1


def test_r_inv_4_discount_above_the_price_fails_naming_the_line() -> None:
    assert 'line item 201 ("Widget"): unit discount (discount) "150" is more than the unit ' \
        "price 100" in failure(line(discount="150")).message


def test_r_inv_4_both_discount_kinds_fail_naming_the_line() -> None:
    assert "has both a unit discount" in failure(
        line(discount="1", hs_discount_percentage="1")).message


# --- R-INV-5 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("prop", "label"), [("hs_invoice_date", "invoice date"),
                                             ("hs_due_date", "due date")])
def test_r_inv_5_missing_date_fails_naming_the_property(prop: str, label: str) -> None:
    err = failure(line(), the_invoice=invoice(**{prop: None}))
    assert err.message == f"{INVOICE}: {label} ({prop}) is missing; set it in HubSpot"


def test_r_inv_5_both_dates_missing_names_both() -> None:
    err = failure(line(), the_invoice=invoice(hs_invoice_date="", hs_due_date=None))
    assert err.message == (f"{INVOICE}: invoice date (hs_invoice_date) and due date "
                           "(hs_due_date) are missing; set them in HubSpot")


@pytest.mark.parametrize("prop", ["hs_invoice_date", "hs_due_date"])
def test_r_inv_5_malformed_date_fails_naming_the_property(prop: str) -> None:
    with pytest.raises(BadValue) as err:
        sales_invoice(the_invoice=invoice(**{prop: "1729859279"}))  # epoch seconds, not ms
    assert err.value.property == prop and f'({prop}) "1729859279" is not a date' in str(err.value)


def test_r_inv_5_epoch_millisecond_dates_are_accepted() -> None:
    draft = sales_invoice(the_invoice=invoice(hs_invoice_date="1751328000000",
                                              hs_due_date="2025-07-31"))
    assert (draft.invoice_date, draft.due_date) == (dt.date(2025, 7, 1), dt.date(2025, 7, 31))


# --- R-INV-6 -------------------------------------------------------------------------------------


def test_r_inv_6_invoices_post_against_the_unknown_customer_and_company() -> None:
    draft = sales_invoice()
    assert (draft.customer.name, draft.customer.is_placeholder, draft.customer.remote_id) == (
        "Unknown", True, None)
    assert (draft.company.name, draft.company.is_placeholder) == ("Unknown", True)


# --- bad lines -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("props", "text"), [
    ({"quantity": "lots"}, 'quantity "lots" is not a number'),
    ({"price": "-1"}, 'unit price (price) "-1" is negative'),
    ({"price": "1e20"}, 'unit price (price) "1e20" is too large for the ledger'),
])
def test_bad_line_fails_the_whole_invoice_naming_the_line(props: dict[str, str],
                                                          text: str) -> None:
    err = failure(line("201"), line("202", **props))
    assert err.message.startswith(f'{INVOICE} not imported: line item 202 ("Widget"): {text}')


def test_invoice_total_is_the_sum_of_its_lines_in_jpy_without_decimals() -> None:
    draft = sales_invoice(line("201", quantity="3", price="333.5", discount="0.4"),
                          the_invoice=invoice(hs_currency="JPY"))
    assert [ln.amount for ln in draft.lines] == [Decimal(1001), Decimal(-1)]
    assert draft.total_amount == Decimal(1000)
