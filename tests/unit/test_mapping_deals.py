"""Closed-won deals → draft contracts and performance obligations (R-DEAL-1…7), DESIGN
"obligation money" and "partly bad records", and the deal cases of issue 6's bad-input list."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from hubspot_ledger.errors import SetupIncomplete
from hubspot_ledger.extract.models import Company, Deal, LineItem, Product
from hubspot_ledger.load.records import (
    ContractStatus,
    IntegrationSettings,
    ItemType,
    RecognitionStrategy,
    RemoteType,
)
from hubspot_ledger.mapping import (
    ContractDraft,
    MappingContext,
    MappingError,
    SkipRecord,
    map_deal_to_contract,
)

pytestmark = pytest.mark.unit

IDS: dict[str, int | None] = {
    "ar_account_id": 11, "deferred_revenue_account_id": 12, "expense_account_id": 13,
    "income_account_id": 14, "clearing_account_id": 15, "company_id": 21}
DEAL = 'Deal 9001 ("Acme renewal")'


def context(currency: str | None = "USD", ui_domain: str | None = None,
            **ids: int | None) -> MappingContext:
    settings = IntegrationSettings(
        integration_id=1, organization_id=1, ar_account="1100", deferred_revenue_account="2400",
        expense_account="5000", income_account="4000", clearing_account="1190",
        company="Acme Ltd", sync_invoices=False, ids={**IDS, **ids})
    return MappingContext(settings=settings, portal_id="4711", currency=currency,
                          ui_domain=ui_domain)


def deal(**props: str | None) -> Deal:
    return Deal.from_api({"id": "9001", "properties": {
        "dealname": "Acme renewal", "dealstage": "closedwon",
        "closedate": "2025-06-30T12:00:00.000Z", **props}})


def line(line_id: str = "101", /, **props: str | None) -> LineItem:
    return LineItem.from_api({"id": line_id, "properties": {
        "name": "Consulting", "hs_product_id": "501", "quantity": "1", "price": "100", **props}})


def contract(*lines: LineItem, the_deal: Deal | None = None, ctx: MappingContext | None = None,
             company: Company | None = None, products: dict[str, Product] | None = None
             ) -> ContractDraft:
    return map_deal_to_contract(the_deal or deal(), list(lines) or [line()], ctx or context(),
                                company=company, products=products)


def failure(*lines: LineItem, the_deal: Deal | None = None,
            ctx: MappingContext | None = None) -> MappingError:
    with pytest.raises(MappingError) as err:
        map_deal_to_contract(the_deal or deal(), list(lines), ctx or context())
    assert err.value.remote_type is RemoteType.DEAL and err.value.remote_id == "9001"
    assert "\n" not in err.value.message
    return err.value


# --- R-DEAL-1: a draft contract on the configured company --------------------------------------


def test_r_deal_1_closed_won_deal_becomes_a_draft_contract_on_the_settings_company() -> None:
    draft = contract()
    assert draft.status is ContractStatus.DRAFT
    assert draft.company_id == 21
    assert draft.remote_id == "9001"
    assert draft.name == "Acme renewal"
    assert draft.contract_date == dt.date(2025, 6, 30)
    assert draft.currency == "USD"


def test_r_deal_1_contract_date_is_the_utc_date_of_closedate_at_the_day_boundary() -> None:
    assert contract(the_deal=deal(closedate="2025-12-31T23:59:59.999Z")).contract_date == \
        dt.date(2025, 12, 31)


@pytest.mark.parametrize("closedate", ["2025-06-30", "1751284800000", "2025-06-30T12:00:00Z"])
def test_r_deal_1_closedate_in_every_form_gives_the_same_date(closedate: str) -> None:
    assert contract(the_deal=deal(closedate=closedate)).contract_date == dt.date(2025, 6, 30)


def test_r_deal_1_missing_closedate_fails_naming_closedate() -> None:
    err = failure(line(), the_deal=deal(closedate=None))
    assert err.message == (f"{DEAL}: close date (closedate) is missing; "
                           "set the close date in HubSpot")


def test_r_deal_1_malformed_closedate_fails_naming_closedate_and_the_value() -> None:
    assert 'close date (closedate) "31.12.2025" is not a date' in failure(
        line(), the_deal=deal(closedate="31.12.2025")).message


@pytest.mark.parametrize("name", [None, "", "   "])
def test_r_deal_1_deal_without_a_name_is_named_by_its_id(name: str | None) -> None:
    assert contract(the_deal=deal(dealname=name)).name == "HubSpot deal 9001"


def test_r_deal_1_10000_character_deal_name_is_capped() -> None:
    assert len(contract(the_deal=deal(dealname="n" * 10_000)).name) == 255


@pytest.mark.parametrize("stage", ["appointmentscheduled", "closedlost", "11348542", "ClosedWon"])
def test_r_deal_1_a_deal_that_is_not_closed_won_is_never_mapped(stage: str) -> None:
    err = failure(line(), the_deal=deal(dealstage=stage))
    assert f'is in stage "{stage}", not closed won (closedwon)' in err.message


def test_r_deal_1_a_deal_without_a_stage_is_never_mapped() -> None:
    assert "is in no stage" in failure(line(), the_deal=deal(dealstage=None)).message


def test_r_deal_1_missing_company_setting_is_setup_incomplete() -> None:
    with pytest.raises(SetupIncomplete):
        contract(ctx=context(company_id=None))


# --- currency ------------------------------------------------------------------------------------


def test_r_deal_1_currency_is_the_deals_currency_code() -> None:
    assert contract(the_deal=deal(deal_currency_code="EUR")).currency == "EUR"


def test_r_deal_1_deal_without_currency_uses_the_portal_currency() -> None:
    assert contract(ctx=context(currency="GBP")).currency == "GBP"


def test_r_deal_1_lower_case_currency_code_is_accepted_in_upper_case() -> None:
    assert contract(the_deal=deal(deal_currency_code=" eur ")).currency == "EUR"


@pytest.mark.parametrize("code", ["XYZ", "US$", "EURO", "E", "123", "XAU", "€"])
def test_r_deal_1_currency_code_that_does_not_exist_fails_naming_it(code: str) -> None:
    err = failure(line(), the_deal=deal(deal_currency_code=code))
    assert err.message.startswith(f'{DEAL}: currency (deal_currency_code) "{code}" is not an '
                                  "ISO 4217 currency code")


def test_r_deal_1_no_currency_anywhere_fails() -> None:
    err = failure(line(), ctx=context(currency=None))
    assert "has no currency (deal_currency_code) and the HubSpot portal reports no company " \
        "currency" in err.message


def test_r_deal_1_bad_portal_currency_fails_naming_it() -> None:
    assert 'company currency "ZZZ" is not an ISO 4217 code' in failure(
        line(), ctx=context(currency="ZZZ")).message


def test_r_deal_1_line_in_another_currency_than_its_deal_fails_naming_the_line() -> None:
    err = failure(line(hs_line_item_currency_code="EUR"))
    assert err.message.startswith(f'{DEAL} not imported: line item 101 ("Consulting") is in '
                                  "EUR, not USD")


# --- R-DEAL-2: one obligation per line; items from products -------------------------------------


def test_r_deal_2_each_line_item_becomes_one_obligation() -> None:
    draft = contract(line("101"), line("102", hs_product_id="502"))
    assert [o.remote_id for o in draft.obligations] == ["101", "102"]
    assert [o.product_id for o in draft.obligations] == ["501", "502"]


def test_r_deal_2_obligation_order_is_stable_whatever_order_hubspot_lists_lines_in() -> None:
    lines = [line("20"), line("3"), line("100")]
    assert [o.remote_id for o in contract(*lines).obligations] == ["3", "20", "100"]
    assert contract(*lines) == contract(*reversed(lines))


def test_r_deal_2_a_line_listed_twice_is_one_obligation() -> None:
    assert len(contract(line("101"), line("101")).obligations) == 1


def test_r_deal_2_item_is_drafted_from_the_product_so_the_loader_can_create_it() -> None:
    product = Product.from_api({"id": "501", "properties": {
        "name": "Consulting hours", "hs_sku": "CONS", "hs_product_type": "service",
        "description": "Senior consultant"}})
    item = contract(line(), products={"501": product}).obligations[0].item
    assert (item.remote_id, item.sku, item.name, item.item_type) == (
        "501", "CONS", "Consulting hours", ItemType.SERVICE)
    assert item.deferred_revenue_account_id == 12


def test_r_deal_2_product_not_readable_item_comes_from_the_lines_copy_of_it() -> None:
    # e.g. the product was deleted in HubSpot after the deal was won
    item = contract(line(hs_sku="CONS", name="Consulting")).obligations[0].item
    assert (item.remote_id, item.sku, item.name, item.item_type) == (
        "501", "CONS", "Consulting", ItemType.GOODS)
    assert contract(line()).obligations[0].item.sku == "HS_501"


def test_r_deal_2_line_without_hs_product_id_fails_the_deal_naming_the_line() -> None:
    err = failure(line("101"), line("102", hs_product_id=None))
    assert err.message == (f"{DEAL} not imported: Product id missing on line item 102 "
                           '("Consulting") (hs_product_id); choose a product from the product '
                           "library for this line in HubSpot")


def test_r_deal_2_obligation_description_is_the_line_name_else_the_item_name() -> None:
    assert contract(line(name="Setup\tfee")).obligations[0].description == "Setup fee"
    assert contract(line(name=None, hs_sku="SKU-9")).obligations[0].description == "SKU-9"


# --- R-DEAL-3 and DESIGN "obligation money" -----------------------------------------------------


def test_r_deal_3_percentage_discount_applies_to_the_line_total_hubspot_rounding_example() -> None:
    # 10 × 234.56 = 2,345.60; 20 % off is 469.12 → 1,876.48 (not 10 × 187.65 = 1,876.50)
    obligation = contract(line(quantity="10", price="234.56",
                               hs_discount_percentage="20")).obligations[0]
    assert obligation.amount == Decimal("1876.48")
    assert obligation.discount_percent == Decimal(20)
    assert obligation.discount_amount is None


def test_r_deal_3_fixed_discount_is_per_unit() -> None:
    # 3 × 100 with a unit discount of 10 → 30 off the line, 270 net
    obligation = contract(line(quantity="3", price="100", discount="10")).obligations[0]
    assert obligation.discount_amount == Decimal(30)
    assert obligation.amount == Decimal(270)
    assert obligation.discount_percent is None
    assert (obligation.quantity, obligation.unit_price) == (Decimal(3), Decimal(100))


def test_r_deal_3_no_discount_leaves_both_discount_fields_empty() -> None:
    obligation = contract(line(quantity="2", price="49.99")).obligations[0]
    assert (obligation.discount_percent, obligation.discount_amount) == (None, None)
    assert obligation.amount == Decimal("99.98")


def test_r_deal_3_zero_in_the_other_discount_property_is_no_discount_of_that_kind() -> None:
    obligation = contract(line(quantity="3", price="100", discount="10",
                               hs_discount_percentage="0")).obligations[0]
    assert (obligation.discount_amount, obligation.discount_percent) == (Decimal(30), None)


def test_r_deal_3_percentage_discount_is_rounded_half_up_then_subtracted() -> None:
    # HubSpot's rule (issue 10): the discount 0.05 × 50 % = 0.025 rounds up to 0.03 and is
    # subtracted from 0.05 → 0.02. (Rounding the net 0.025 instead gave 0.03, a cent off.)
    obligation = contract(line(price="0.05", hs_discount_percentage="50")).obligations[0]
    assert obligation.amount == Decimal("0.02")


def test_r_deal_3_amounts_in_jpy_have_no_decimals() -> None:
    obligation = contract(line(quantity="3", price="333.5"),
                          the_deal=deal(deal_currency_code="JPY")).obligations[0]
    assert obligation.amount == Decimal(1001)  # 1,000.5 rounds half up
    assert obligation.amount.as_tuple().exponent == 0


def test_r_deal_3_amounts_in_kwd_have_three_decimals() -> None:
    obligation = contract(line(quantity="1", price="1.23456"),
                          the_deal=deal(deal_currency_code="KWD")).obligations[0]
    assert obligation.amount == Decimal("1.235")


def test_r_deal_3_both_discount_kinds_on_one_line_fail_the_deal_naming_the_line() -> None:
    err = failure(line("101"), line("102", discount="5", hs_discount_percentage="10"))
    assert err.message.startswith(f'{DEAL} not imported: line item 102 ("Consulting") has both '
                                  "a unit discount (discount) 5 and a discount percentage")


def test_r_deal_3_fixed_discount_above_the_unit_price_fails_naming_the_line() -> None:
    err = failure(line(price="100", discount="120"))
    assert err.message == (f'{DEAL} not imported: line item 101 ("Consulting"): unit discount '
                           '(discount) "120" is more than the unit price 100; a discount cannot '
                           "take a line below zero; lower it in HubSpot")


@pytest.mark.parametrize("percent", ["101", "-5", "1e3"])
def test_r_deal_3_percentage_outside_0_to_100_fails_naming_the_line(percent: str) -> None:
    assert f'discount percentage (hs_discount_percentage) "{percent}" is not between 0 and 100' \
        in failure(line(hs_discount_percentage=percent)).message


def test_r_deal_3_negative_fixed_discount_fails() -> None:
    assert 'unit discount (discount) "-10" is negative' in failure(line(discount="-10")).message


def test_r_deal_3_100_percent_discount_is_a_zero_obligation_in_a_valid_deal() -> None:
    draft = contract(line("101"), line("102", hs_discount_percentage="100"))
    assert [o.amount for o in draft.obligations] == [Decimal(100), Decimal(0)]


def test_contract_total_is_the_sum_of_its_obligations() -> None:
    draft = contract(line("1", quantity="10", price="234.56", hs_discount_percentage="20"),
                     line("2", quantity="3", price="100", discount="10"),
                     line("3", quantity="0.5", price="19.99"))
    assert draft.total_amount == Decimal("1876.48") + Decimal(270) + Decimal("10.00")
    assert draft.total_amount == sum(o.amount for o in draft.obligations)


# --- bad lines (DESIGN "partly bad records"): the whole deal fails, naming the line ------------


@pytest.mark.parametrize(("prop", "value", "problem"), [
    ("quantity", "abc", "is not a number"),
    ("quantity", "-1", "is negative"),
    ("price", "12,50", "is not a number"),
    ("price", "-100", "is negative"),
    ("quantity", "1e15", "is too large for the ledger"),
    ("price", "123456789012345678", "is too large for the ledger"),
    ("price", "99999999999999.9999999", "is too large for the ledger"),
])
def test_bad_quantity_or_price_fails_the_whole_deal_naming_the_line(prop: str, value: str,
                                                                    problem: str) -> None:
    err = failure(line("101"), line("102", name="Licence", **{prop: value}))
    label = "unit price (price)" if prop == "price" else "quantity"
    assert err.message.startswith(f'{DEAL} not imported: line item 102 ("Licence"): {label} '
                                  f'"{value}" {problem}')


@pytest.mark.parametrize("prop", ["quantity", "price"])
def test_missing_quantity_or_price_fails_the_deal_naming_the_line(prop: str) -> None:
    err = failure(line(**{prop: None}))
    assert f'line item 101 ("Consulting"): {"unit price (price)" if prop == "price" else prop} ' \
        "is missing" in err.message


def test_line_total_beyond_the_ledgers_money_column_fails_naming_the_line() -> None:
    err = failure(line(quantity="99999999999999", price="99999999999999"))
    assert "line item 101 (\"Consulting\"): the line total (quantity × unit price) is too " \
        "large for the ledger" in err.message


def test_contract_total_beyond_the_ledgers_money_column_fails() -> None:
    lines = [line(str(n), quantity="9000000", price="1000000000") for n in range(1, 3)]
    assert "the total of its line items is too large" in failure(*lines).message


def test_more_than_six_decimals_are_rounded_half_up_to_what_the_ledger_holds() -> None:
    obligation = contract(line(quantity="1.0000005", price="33.3333333333")).obligations[0]
    assert obligation.quantity == Decimal("1.000001")
    assert obligation.unit_price == Decimal("33.333333")
    assert obligation.amount == Decimal("33.33")


def test_fractional_quantities_are_kept() -> None:
    obligation = contract(line(quantity="2.5", price="10")).obligations[0]
    assert (obligation.quantity, obligation.amount) == (Decimal("2.5"), Decimal(25))


# --- R-DEAL-4: customer --------------------------------------------------------------------------


def test_r_deal_4_customer_is_the_deals_primary_company_by_remote_id() -> None:
    company = Company.from_api({"id": "301", "properties": {"name": "Acme Corp",
                                                            "city": "Springfield"}})
    customer = contract(company=company).customer
    assert (customer.remote_id, customer.name, customer.city) == ("301", "Acme Corp",
                                                                   "Springfield")
    assert customer.is_placeholder is False


def test_r_deal_4_deal_without_a_company_gets_the_unknown_placeholder_customer() -> None:
    customer = contract().customer
    assert (customer.remote_id, customer.name, customer.is_placeholder) == (None, "Unknown", True)


# --- R-DEAL-5: memo ------------------------------------------------------------------------------


def test_r_deal_5_memo_is_the_description_a_blank_line_and_the_deep_link() -> None:
    draft = contract(the_deal=deal(description="Renewal for 2026.\r\nSigned by CFO."))
    assert draft.memo == ("Renewal for 2026.\nSigned by CFO.\n\n"
                          "https://app.hubspot.com/contacts/4711/deal/9001")


def test_r_deal_5_memo_without_a_description_is_the_deep_link() -> None:
    assert contract(the_deal=deal(description="  ")).memo == \
        "https://app.hubspot.com/contacts/4711/deal/9001"


def test_r_deal_5_deep_link_uses_the_portals_eu_ui_domain() -> None:
    assert contract(ctx=context(ui_domain="app-eu1.hubspot.com")).memo == \
        "https://app-eu1.hubspot.com/contacts/4711/deal/9001"


def test_r_deal_5_memo_description_is_cleaned_and_capped() -> None:
    memo = contract(the_deal=deal(description="x\x00" * 12_000)).memo
    description, link = memo.split("\n\n")
    assert len(description) == 10_000 and "\x00" not in description
    assert link.endswith("/deal/9001")


# --- R-DEAL-6: recognition -----------------------------------------------------------------------


def test_r_deal_6_obligations_use_immediate_recognition() -> None:
    assert {o.recognition_strategy for o in contract(line("1"), line("2")).obligations} == {
        RecognitionStrategy.IMMEDIATE}


# --- R-DEAL-7: No valid line items --------------------------------------------------------------


def test_r_deal_7_deal_without_line_items_is_skipped_with_no_valid_line_items() -> None:
    with pytest.raises(SkipRecord) as skip:
        map_deal_to_contract(deal(), [], context())
    assert skip.value.message == "No valid line items"
    assert skip.value.skipped is True
    assert (skip.value.remote_type, skip.value.remote_id) == (RemoteType.DEAL, "9001")


@pytest.mark.parametrize("zero", [{"quantity": "0"}, {"price": "0"}, {"price": "0.00"},
                                  {"hs_discount_percentage": "100"}, {"discount": "100"}])
def test_r_deal_7_deal_whose_every_line_is_zero_is_skipped(zero: dict[str, str]) -> None:
    with pytest.raises(SkipRecord, match="^No valid line items$"):
        map_deal_to_contract(deal(), [line("1", **zero), line("2", **zero)], context())


def test_r_deal_7_zero_line_inside_a_valid_deal_stays_as_a_zero_obligation() -> None:
    draft = contract(line("1"), line("2", quantity="0"))
    assert [o.amount for o in draft.obligations] == [Decimal(100), Decimal(0)]


def test_r_deal_7_skip_is_distinguishable_from_a_failure() -> None:
    assert failure(line(quantity="abc")).skipped is False
