"""One rounding rule, HubSpot's (issue 10; DESIGN "obligation money"; hubspot-api.md, "Addendum:
line-item discounts"): gross = quantity × unit price; the discount (a percentage of the
unrounded gross, or the unit discount × quantity) is rounded half up to the currency's minor
unit and subtracted from the rounded gross. A HubSpot `amount` that differs is a warning on the
draft (R-DEAL-3, R-INV-4), never a failure, and never changes the draft's fingerprint."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from hubspot_ledger.drafts import fingerprint
from hubspot_ledger.extract.models import Deal, Invoice, LineItem
from hubspot_ledger.load.records import IntegrationSettings
from hubspot_ledger.mapping import (
    ContractDraft,
    InvoiceDraft,
    MappingContext,
    map_deal_to_contract,
    map_invoice_to_sales_invoice,
)
from hubspot_ledger.mapping.money import find_currency, line_money

pytestmark = pytest.mark.unit

IDS: dict[str, int | None] = {
    "ar_account_id": 11, "deferred_revenue_account_id": 12, "expense_account_id": 13,
    "income_account_id": 14, "clearing_account_id": 15, "company_id": 21}
DEAL = 'Deal 9001 ("Acme renewal")'
INVOICE = 'Invoice 7001 ("INV-1003")'


def context() -> MappingContext:
    settings = IntegrationSettings(
        integration_id=1, organization_id=1, ar_account="1100", deferred_revenue_account="2400",
        expense_account="5000", income_account="4000", clearing_account="1190",
        company="Acme Ltd", sync_invoices=True, ids=IDS)
    return MappingContext(settings=settings, portal_id="4711", currency="USD")


def line(line_id: str = "101", /, **props: str | None) -> LineItem:
    return LineItem.from_api({"id": line_id, "properties": {
        "name": "Widget", "hs_product_id": "501", "quantity": "1", "price": "100", **props}})


def contract(currency: str, *lines: LineItem) -> ContractDraft:
    deal = Deal.from_api({"id": "9001", "properties": {
        "dealname": "Acme renewal", "dealstage": "closedwon",
        "closedate": "2025-06-30T12:00:00.000Z", "deal_currency_code": currency}})
    return map_deal_to_contract(deal, list(lines), context())


def sales_invoice(currency: str, *lines: LineItem) -> InvoiceDraft:
    invoice = Invoice.from_api({"id": "7001", "properties": {
        "hs_number": "INV-1003", "hs_invoice_date": "2025-07-01", "hs_due_date": "2025-07-31",
        "hs_currency": currency}})
    return map_invoice_to_sales_invoice(invoice, list(lines), context())


# (currency, quantity, unit price, percentage or unit discount) → (gross, discount, net), as
# HubSpot shows them. Every percentage case is a half-minor-unit one where rounding the net
# directly (the ledger's rule before issue 10) lands a cent, yen or fils away from HubSpot.
PERCENTAGE_CASES = [
    # 0.05 × 50 % = 0.025 → 0.03 off → 0.02 (not 0.025 → 0.03)
    ("USD", "1", "0.05", "50", "0.05", "0.03", "0.02"),
    # the gross 0.045 rounds to 0.05, but 50 % of the unrounded 0.045 is 0.0225 → 0.02
    ("USD", "3", "0.015", "50", "0.05", "0.02", "0.03"),
    # 0.10 × 25 % = 0.025 → 0.03 off → 0.07 (not 0.075 → 0.08)
    ("EUR", "1", "0.10", "25", "0.10", "0.03", "0.07"),
    # 25 × 10 % = 2.5 → 3 yen off → 22 (not 22.5 → 23)
    ("JPY", "1", "25", "10", "25", "3", "22"),
    # 1.001 × 50 % = 0.5005 → 0.501 off → 0.500 (not 0.5005 → 0.501)
    ("KWD", "1", "1.001", "50", "1.001", "0.501", "0.500"),
]
FIXED_CASES = [
    # 3 units at 0.005 off each = 0.015 → 0.02 off
    ("USD", "3", "1", "0.005", "3.00", "0.02", "2.98"),
    # 3 units at 0.0025 off each = 0.0075 → 0.01 off
    ("EUR", "3", "0.5", "0.0025", "1.50", "0.01", "1.49"),
    # 3 units at half a yen off each = 1.5 → 2 yen off
    ("JPY", "3", "100", "0.5", "300", "2", "298"),
    # 5 units at 0.0001 off each = 0.0005 → 0.001 off
    ("KWD", "5", "2", "0.0001", "10.000", "0.001", "9.999"),
]
PERCENTAGE_IDS = ["usd-half-cent", "usd-of-the-unrounded-gross", "eur-half-cent", "jpy-half-yen",
                  "kwd-half-fils"]
FIXED_IDS = ["usd-half-cent", "eur-half-cent", "jpy-half-yen", "kwd-half-fils"]


@pytest.mark.parametrize(("code", "qty", "price", "pct", "gross", "off", "net"),
                         PERCENTAGE_CASES, ids=PERCENTAGE_IDS)
def test_r_deal_3_percentage_discount_rounded_like_hubspot(
        code: str, qty: str, price: str, pct: str, gross: str, off: str, net: str) -> None:
    obligation = contract(code, line(quantity=qty, price=price,
                                     hs_discount_percentage=pct)).obligations[0]
    assert obligation.amount == Decimal(net)
    assert str(obligation.amount) == net  # to the currency's minor unit, no more, no less
    assert (obligation.discount_percent, obligation.discount_amount) == (Decimal(pct), None)


@pytest.mark.parametrize(("code", "qty", "price", "unit_off", "gross", "off", "net"),
                         FIXED_CASES, ids=FIXED_IDS)
def test_r_deal_3_fixed_discount_rounded_like_hubspot(
        code: str, qty: str, price: str, unit_off: str, gross: str, off: str, net: str) -> None:
    obligation = contract(code, line(quantity=qty, price=price, discount=unit_off)).obligations[0]
    assert (str(obligation.discount_amount), str(obligation.amount)) == (off, net)
    assert obligation.discount_percent is None


@pytest.mark.parametrize(("code", "qty", "price", "pct", "gross", "off", "net"),
                         PERCENTAGE_CASES, ids=PERCENTAGE_IDS)
def test_r_inv_4_percentage_discount_line_rounded_like_hubspot(
        code: str, qty: str, price: str, pct: str, gross: str, off: str, net: str) -> None:
    draft = sales_invoice(code, line(quantity=qty, price=price, hs_discount_percentage=pct))
    assert [str(ln.amount) for ln in draft.lines] == [gross, f"-{off}"]
    assert draft.total_amount == Decimal(net)


@pytest.mark.parametrize(("code", "qty", "price", "unit_off", "gross", "off", "net"),
                         FIXED_CASES, ids=FIXED_IDS)
def test_r_inv_4_fixed_discount_line_rounded_like_hubspot(
        code: str, qty: str, price: str, unit_off: str, gross: str, off: str, net: str) -> None:
    draft = sales_invoice(code, line(quantity=qty, price=price, discount=unit_off))
    assert [str(ln.amount) for ln in draft.lines] == [gross, f"-{off}"]
    assert draft.total_amount == Decimal(net)


def test_r_deal_3_percentage_discount_rounded_like_hubspot_addendum_example() -> None:
    # hubspot-api.md: 10 × 234.56 = 2,345.60; 20 % = 469.12 → 1,876.48
    money = line_money(line(quantity="10", price="234.56", hs_discount_percentage="20"),
                       find_currency("USD") or pytest.fail("USD"))
    assert (money.gross, money.discount_total, money.net) == (
        Decimal("2345.60"), Decimal("469.12"), Decimal("1876.48"))


def test_r_deal_3_jpy_gross_and_discount_each_round_half_up_on_their_own() -> None:
    # 1 × 0.5 yen = 0.5 → 1; 50 % of the unrounded 0.5 = 0.25 → 0: HubSpot's net is 1 yen
    money = line_money(line(price="0.5", hs_discount_percentage="50"),
                       find_currency("JPY") or pytest.fail("JPY"))
    assert (money.gross, money.discount_total, money.net) == (Decimal(1), Decimal(0), Decimal(1))


def test_r_deal_3_100_percent_discount_nets_exactly_zero_in_every_currency() -> None:
    for code in ("USD", "EUR", "JPY", "KWD"):
        money = line_money(line(quantity="3", price="0.015", hs_discount_percentage="100"),
                           find_currency(code) or pytest.fail(code))
        assert money.net == 0 and money.discount_total == money.gross


# --- the warning: HubSpot's `amount` differs from the ledger's -----------------------------------


def test_r_deal_3_no_warning_when_hubspot_amount_matches_or_is_missing() -> None:
    draft = contract("USD", line("1", price="0.05", hs_discount_percentage="50", amount="0.020"),
                     line("2", quantity="3", discount="10"))
    assert draft.warnings == ()


def test_r_deal_3_differing_hubspot_amount_is_a_warning_not_a_failure() -> None:
    draft = contract("USD", line("1", price="0.05", hs_discount_percentage="50", amount="0.03"),
                     line("2", quantity="3", discount="10", amount="270.00"))
    assert [o.amount for o in draft.obligations] == [Decimal("0.02"), Decimal("270.00")]
    assert draft.warnings == (
        f'{DEAL}: line item 1 ("Widget"): HubSpot\'s amount is 0.03 USD, but the ledger books '
        "0.02 USD (1 × 0.05 = 0.05, less 50 % of it = 0.025 → 0.03, rounded half up to USD's 2 "
        "decimals); check the line in HubSpot",)


def test_r_deal_3_warning_names_jpy_and_its_zero_decimals() -> None:
    # 3 × 0.01 yen: HubSpot (or a stale amount) says 0.03, the ledger books 0 yen
    draft = contract("JPY", line("456", quantity="3", price="0.01", amount="0.03"),
                     line("457", price="1000"))
    assert draft.warnings == (
        f'{DEAL}: line item 456 ("Widget"): HubSpot\'s amount is 0.03 JPY, but the ledger books '
        "0 JPY (3 × 0.01 = 0.03 → 0, rounded half up to JPY's 0 decimals); check the line in "
        "HubSpot",)


def test_r_deal_3_warning_for_a_fixed_discount_shows_the_unit_discount() -> None:
    draft = contract("KWD", line(quantity="5", price="2", discount="0.0001", amount="10"))
    assert draft.warnings == (
        f'{DEAL}: line item 101 ("Widget"): HubSpot\'s amount is 10 KWD, but the ledger books '
        "9.999 KWD (5 × 2 = 10.000, less 0.0001 per unit = 0.0005 → 0.001, rounded half up to "
        "KWD's 3 decimals); check the line in HubSpot",)


def test_r_deal_3_unreadable_hubspot_amount_is_a_warning_not_a_failure() -> None:
    draft = contract("USD", line(amount="n/a"))
    assert draft.obligations[0].amount == Decimal("100.00")
    assert draft.warnings == (
        f'{DEAL}: line item 101 ("Widget"): HubSpot\'s amount "n/a" is not a number, but the '
        "ledger books 100.00 USD (1 × 100 = 100.00, rounded half up to USD's 2 decimals); check "
        "the line in HubSpot",)


def test_r_deal_3_warnings_do_not_change_the_contracts_fingerprint() -> None:
    # A re-run with the same HubSpot data must still be "unchanged": the loader compares
    # fingerprints, and warnings are reported, not written.
    quiet = contract("USD", line(price="0.05", hs_discount_percentage="50"))
    loud = contract("USD", line(price="0.05", hs_discount_percentage="50", amount="0.03"))
    assert loud.warnings and not quiet.warnings
    assert fingerprint(loud) == fingerprint(quiet)
    assert fingerprint(dataclasses.replace(quiet, warnings=("anything",))) == fingerprint(quiet)


def test_r_inv_4_differing_hubspot_amount_is_compared_with_the_line_less_its_discount() -> None:
    draft = sales_invoice("EUR", line("201", price="0.10", hs_discount_percentage="25",
                                      amount="0.08"),
                          line("202", quantity="2", price="50", amount="100"))
    assert [str(ln.amount) for ln in draft.lines] == ["0.10", "-0.03", "100.00"]
    assert draft.warnings == (
        f'{INVOICE}: line item 201 ("Widget"): HubSpot\'s amount is 0.08 EUR, but the ledger '
        "books 0.10 EUR and a discount line of -0.03 EUR, 0.07 EUR net (1 × 0.1 = 0.10, less "
        "25 % of it = 0.025 → 0.03, rounded half up to EUR's 2 decimals); check the line in "
        "HubSpot",)


def test_r_inv_4_matching_hubspot_amount_gives_no_warning() -> None:
    draft = sales_invoice("JPY", line(quantity="3", price="100", discount="0.5", amount="298"))
    assert draft.warnings == ()


def test_r_inv_3_left_out_zero_line_with_a_nonzero_hubspot_amount_is_warned_about() -> None:
    draft = sales_invoice("USD", line("201"), line("202", price="0", amount="5.00"))
    assert [ln.remote_id for ln in draft.lines] == ["201"]
    assert len(draft.warnings) == 1 and 'line item 202 ("Widget")' in draft.warnings[0]


def test_r_inv_4_warnings_do_not_change_the_invoices_fingerprint() -> None:
    quiet = sales_invoice("USD", line(quantity="3", discount="0.005"))
    loud = sales_invoice("USD", line(quantity="3", discount="0.005", amount="299.99"))
    assert loud.warnings and not quiet.warnings
    assert fingerprint(loud) == fingerprint(quiet)
