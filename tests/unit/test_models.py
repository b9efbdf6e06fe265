"""HubSpot record models: parsing the API's JSON and typed property access (hubspot-api.md §2.2,
§4.1), text cleaning, and the messages of unreadable values (issue 6, bad-input catalogue)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from hubspot_ledger.extract.models import (
    BadValue,
    Deal,
    HubSpotRecord,
    Invoice,
    LineItem,
    MappingError,
    Product,
    clean_line,
    clean_text,
    parse_utc_date,
)
from hubspot_ledger.load.records import RemoteType

pytestmark = pytest.mark.unit


def line(**props: str | None) -> LineItem:
    return LineItem.from_api({"id": "123", "properties": {"name": "Consulting", **props}})


# --- record shape -------------------------------------------------------------------------------


def test_record_parses_the_api_camel_case_json() -> None:
    deal = Deal.from_api({
        "id": "512", "properties": {"dealname": "Big deal", "amount": None},
        "createdAt": "2019-12-07T16:50:06.678Z", "updatedAt": "2020-01-02T03:04:05Z",
        "archived": False, "url": "https://app.hubspot.com/…", "associations": {}})
    assert deal.id == "512"
    assert deal.properties == {"dealname": "Big deal", "amount": None}
    assert deal.created_at == dt.datetime(2019, 12, 7, 16, 50, 6, 678000, tzinfo=dt.UTC)
    assert deal.updated_at == dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert deal.archived is False


def test_numeric_ids_and_non_string_property_values_become_text() -> None:
    item = LineItem.from_api({"id": 77, "properties": {"quantity": 3, "price": 12.5,
                                                        "flag": True}})
    assert item.id == "77"
    assert item.properties == {"quantity": "3", "price": "12.5", "flag": "true"}
    assert item.quantity == Decimal(3)


def test_missing_properties_are_an_empty_map() -> None:
    assert Product.from_api({"id": "1"}).properties == {}
    assert Product.from_api({"id": "1", "properties": None}).name is None


def test_record_of_the_wrong_shape_is_a_mapping_error_not_a_crash() -> None:
    with pytest.raises(MappingError) as err:
        Deal.from_api({"id": "5", "properties": ["not", "a", "map"]})
    assert err.value.remote_type is RemoteType.DEAL
    assert err.value.remote_id == "5"
    assert "Deal 5" in err.value.message and "properties" in err.value.message


def test_blank_id_is_refused() -> None:
    with pytest.raises(MappingError):
        Deal.from_api({"id": "  ", "properties": {}})


def test_generic_record_keeps_pydantic_errors() -> None:
    with pytest.raises(ValueError):
        HubSpotRecord.from_api({"properties": {}})


# --- text ---------------------------------------------------------------------------------------


def test_text_is_stripped_and_blank_is_none() -> None:
    product = Product.from_api({"id": "1", "properties": {"name": "  Widget \n", "hs_sku": "  ",
                                                          "description": None}})
    assert product.name == "Widget"
    assert product.sku is None
    assert product.description is None


def test_control_characters_are_removed_and_line_breaks_become_spaces_in_names() -> None:
    assert clean_line("Acme\x00 \x07Corp\r\n\tLtd\x7f\x9b") == "Acme Corp Ltd"


def test_descriptions_keep_newlines_and_tabs_but_lose_other_control_characters() -> None:
    assert clean_text("Line 1\r\nLine\t2\x0b\x1b[31m\rLine 3") == "Line 1\nLine\t2[31m\nLine 3"


def test_lone_surrogates_become_u_fffd_because_postgres_cannot_store_them() -> None:
    # As valid_unicode does with raw pages (issue 13): a visible mark where a character was lost.
    assert clean_line("bad\ud800name") == "bad\ufffdname"
    assert clean_text("half \ud83d emoji\n") == "half \ufffd emoji"


def test_10000_character_name_is_capped_at_255_with_an_ellipsis() -> None:
    name = clean_line("x" * 10_000)
    assert name is not None and len(name) == 255 and name.endswith("…")


def test_10000_character_description_is_kept_whole_and_longer_ones_capped() -> None:
    assert clean_text("d" * 10_000) == "d" * 10_000
    capped = clean_text("d" * 20_000)
    assert capped is not None and len(capped) == 10_000 and capped.endswith("…")


def test_identity_text_is_cleaned_but_never_cut() -> None:
    # Issue 13: a SKU or invoice number is the record's identity; too long means refused.
    record = Product.from_api({"id": "5", "properties": {"hs_sku": " A\x00B\n1 "}})
    assert record.identity("hs_sku", fallback="HS_5") == "AB 1"
    assert Product.from_api({"id": "5"}).identity("hs_sku", fallback="HS_5") == "HS_5"
    assert Product.from_api({"id": "5"}).identity("hs_sku") is None
    with pytest.raises(BadValue, match="is 256 characters long, where the ledger takes at most"):
        Product.from_api({"id": "5", "properties": {"hs_sku": "x" * 256}}).identity("hs_sku")


def test_sql_metacharacters_are_just_characters() -> None:
    value = "Robert'); DROP TABLE ledger.items;-- \"x\" %s"
    assert clean_line(value) == value


# --- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("3", Decimal(3)), (" 1500.00 ", Decimal("1500.00")), ("0.000001", Decimal("0.000001")),
    ("1e3", Decimal(1000)), ("+2.5", Decimal("2.5")), (".5", Decimal("0.5")), ("-0", Decimal(0)),
])
def test_numbers_are_read_as_decimals(raw: str, expected: Decimal) -> None:
    assert line(quantity=raw).quantity == expected


@pytest.mark.parametrize("raw", ["abc", "1,000", "1 000", "NaN", "Infinity", "1_000", "12.5%",
                                 "$10", "0x10", "1e99999"])
def test_non_numeric_quantity_names_the_line_the_property_and_the_value(raw: str) -> None:
    with pytest.raises(BadValue) as err:
        _ = line(quantity=raw).quantity
    assert err.value.message.startswith(f'Line item 123 ("Consulting"): quantity "{raw}" '
                                        "is not a number")
    assert err.value.remote_type is RemoteType.LINE_ITEM and err.value.remote_id == "123"
    assert err.value.property == "quantity"


def test_unreadable_price_is_named_in_an_accountants_words_and_hubspots() -> None:
    with pytest.raises(BadValue, match=r'unit price \(price\) "ten" is not a number'):
        _ = line(price="ten").unit_price


def test_missing_number_is_none() -> None:
    assert line(quantity=None).quantity is None
    assert line(price="").unit_price is None


def test_long_bad_value_is_shortened_in_the_message_to_keep_it_one_line() -> None:
    with pytest.raises(BadValue) as err:
        _ = line(quantity="x\n" * 500).quantity
    assert "\n" not in err.value.message and len(err.value.message) < 200


# --- dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("2019-12-07T16:50:06.678Z", dt.date(2019, 12, 7)),  # ISO with milliseconds
    ("2019-12-07T16:50:06Z", dt.date(2019, 12, 7)),  # ISO without milliseconds
    ("2019-12-07", dt.date(2019, 12, 7)),  # date-only
    ("1575737406678", dt.date(2019, 12, 7)),  # epoch milliseconds
    ("2019-12-07T16:50:06", dt.date(2019, 12, 7)),  # no zone: taken as UTC
    ("2025-12-31T23:30:00-05:00", dt.date(2026, 1, 1)),  # an offset is converted to UTC
])
def test_dates_in_every_form_hubspot_sends_are_read_as_utc_dates(raw: str,
                                                                 expected: dt.date) -> None:
    assert parse_utc_date(raw) == expected


def test_cutoff_boundary_23_59_59_999z_stays_that_day() -> None:
    deal = Deal.from_api({"id": "1", "properties": {"closedate": "2025-12-31T23:59:59.999Z"}})
    assert deal.close_date == dt.date(2025, 12, 31)
    assert parse_utc_date("2026-01-01T00:00:00.000Z") == dt.date(2026, 1, 1)


@pytest.mark.parametrize("raw", ["next tuesday", "2025-13-01", "31/12/2025", "1729859279",
                                 "2025-02-30", "0", "17298592790000", "2025-06-30T24:00:00Z",
                                 "9999-12-31T23:59:59-01:00"])
def test_malformed_close_date_names_the_property_and_the_value(raw: str) -> None:
    deal = Deal.from_api({"id": "9", "properties": {"dealname": "Big", "closedate": raw}})
    with pytest.raises(BadValue) as err:
        _ = deal.close_date
    assert err.value.message == (f'Deal 9 ("Big"): close date (closedate) "{raw}" is not a date; '
                                 "pick the date again in HubSpot")


def test_malformed_invoice_date_names_hs_invoice_date() -> None:
    invoice = Invoice.from_api({"id": "4", "properties": {"hs_invoice_date": "soon"}})
    with pytest.raises(BadValue, match=r"invoice date \(hs_invoice_date\) \"soon\""):
        _ = invoice.invoice_date


def test_required_names_the_missing_property() -> None:
    deal = Deal.from_api({"id": "9", "properties": {}})
    with pytest.raises(BadValue) as err:
        deal.required("closedate", deal.close_date)
    assert err.value.message == "Deal 9: close date (closedate) is missing; set it in HubSpot"


def test_the_extract_requests_the_name_every_typed_property_and_what_is_read_besides() -> None:
    """PROPERTIES is derived from each record type's typed properties (Text, Number, Date), so
    a property the map layer reads is requested from HubSpot by declaring it once."""
    from hubspot_ledger.extract.models import Company, Deal, Invoice, LineItem, Product

    assert set(Product.PROPERTIES) == {"name", "hs_sku", "description", "hs_product_type",
                                       "price"}
    assert set(Company.PROPERTIES) == {"name", "domain"}
    assert set(Deal.PROPERTIES) == {"dealname", "dealstage", "closedate", "deal_currency_code",
                                    "pipeline", "description"}
    assert set(LineItem.PROPERTIES) == {
        "name", "description", "hs_product_id", "hs_sku", "quantity", "price", "discount",
        "hs_discount_percentage", "hs_line_item_currency_code", "amount",
        "recurringbillingfrequency", "hs_recurring_billing_period",
        "hs_recurring_billing_start_date"}
    assert set(Invoice.PROPERTIES) == {"hs_number", "hs_invoice_date", "hs_due_date",
                                       "hs_currency", "hs_invoice_status"}
    assert len(LineItem.PROPERTIES) == len(set(LineItem.PROPERTIES))  # each requested once
