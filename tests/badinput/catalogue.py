"""The bad-input catalogue (issue 6): HubSpot records with missing, malformed or absurd values,
each with its documented outcome (README "Bad input from HubSpot"). Ids from 880000000001."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hubspot_ledger_tools.sandbox.testing import SandboxAdminError, SandboxServer


def rid(n: int) -> str:
    return str(880_000_000_000 + n)


P_OK, P_TWIN_A, P_TWIN_B, P_ARCHIVED, P_BARE, P_ODD_TYPE = (rid(1), rid(2), rid(3), rid(4),
                                                            rid(5), rid(6))
# Issue 13: two SKUs of 306 characters, equal up to character 300 (R-PROD-1: never cut).
P_LONG_A, P_LONG_B = rid(7), rid(8)
LONG_SKU_A, LONG_SKU_B = "L" * 300 + "-AAAAA", "L" * 300 + "-BBBBB"
C_OK, C_DELETED, C_NAMELESS, C_ALSO_CUSTOMER = rid(11), rid(12), rid(13), rid(14)


@dataclass
class Case:
    """One deal (or invoice) with one line, except where the case needs more."""

    key: str
    what: str
    deal: dict[str, str] = field(default_factory=dict)  # deal properties over the defaults
    lines: list[dict[str, str]] = field(default_factory=lambda: [{}])  # line props over defaults
    company: str | None = None
    invoice: dict[str, str] | None = None  # an invoice case instead of a deal
    before: Callable[[SandboxServer, str, list[str]], None] | None = None  # after upserts


def _delete_company(sb: SandboxServer, deal: str, lines: list[str]) -> None:
    sb.delete("companies", C_DELETED)


def _delete_second_line(sb: SandboxServer, deal: str, lines: list[str]) -> None:
    sb.delete("line_items", lines[1])


CASES = [
    Case("good_deal", "a deal with nothing wrong, among the bad ones"),
    Case("quantity_not_a_number", "quantity \"abc\"", lines=[{"quantity": "abc"}]),
    Case("price_with_comma", "price \"12,50\" (decimal comma)", lines=[{"price": "12,50"}]),
    Case("negative_quantity", "quantity -2", lines=[{"quantity": "-2"}]),
    Case("negative_price", "price -10", lines=[{"price": "-10"}]),
    Case("absurd_price", "price 1e20", lines=[{"price": "1e20"}]),
    Case("absurd_quantity", "quantity 10^18", lines=[{"quantity": "1000000000000000000"}]),
    Case("too_many_decimals", "price 10.1234567891", lines=[{"price": "10.1234567891"}]),
    Case("spaces_around_number", "price \" 100 \"", lines=[{"price": " 100 "}]),
    Case("zero_quantity_only_line", "the only line has quantity 0", lines=[{"quantity": "0"}]),
    Case("discount_above_price", "unit discount 15 on a price of 10",
         lines=[{"price": "10", "discount": "15"}]),
    Case("both_discount_kinds", "unit discount 1 and 10 % on one line",
         lines=[{"discount": "1", "hs_discount_percentage": "10"}]),
    Case("discount_percentage_over_100", "discount 150 %",
         lines=[{"hs_discount_percentage": "150"}]),
    Case("close_date_not_a_date", "closedate \"not a date\"", deal={"closedate": "not a date"}),
    Case("close_date_epoch_seconds", "closedate 1735689600 (10 digits: seconds)",
         deal={"closedate": "1735689600"}),
    Case("close_date_epoch_ms", "closedate 1736000000000 (milliseconds)",
         deal={"closedate": "1736000000000"}),
    Case("close_date_with_offset", "closedate 2025-03-01T01:00:00+05:00",
         deal={"closedate": "2025-03-01T01:00:00+05:00"}),
    Case("unknown_stage", "deal stage \"mystery_stage\"", deal={"dealstage": "mystery_stage"}),
    Case("empty_deal_name", "deal name empty", deal={"dealname": ""}),
    Case("huge_deal_name", "deal name of 10,000 characters", deal={"dealname": "N" * 10_000}),
    Case("huge_description", "description of 20,000 characters",
         deal={"description": "D" * 20_000}),
    Case("control_characters", "deal name with NUL, BEL and a line break",
         deal={"dealname": "Bad\x00Na\x07me\nhere"}),
    Case("sql_metacharacters", "deal name \"'; DROP TABLE ledger.items; --\"",
         deal={"dealname": "'; DROP TABLE ledger.items; --"}),
    Case("unknown_currency", "deal currency \"XYZ\"", deal={"deal_currency_code": "XYZ"}),
    Case("line_in_other_currency", "line in EUR on a USD deal",
         lines=[{"hs_line_item_currency_code": "EUR"}]),
    Case("product_id_missing", "line without hs_product_id", lines=[{"hs_product_id": ""}]),
    Case("unknown_product_id", "line's product never existed in HubSpot",
         lines=[{"hs_product_id": rid(99), "hs_sku": "GHOST-1"}]),
    Case("archived_product", "line's product archived in HubSpot",
         lines=[{"hs_product_id": P_ARCHIVED, "hs_sku": "ARCH-1"}]),
    Case("twin_skus", "two products with the same SKU, one line each",
         lines=[{"hs_product_id": P_TWIN_A}, {"hs_product_id": P_TWIN_B}]),
    Case("product_without_name_or_sku", "the line's product has neither name nor SKU",
         lines=[{"hs_product_id": P_BARE}]),
    Case("unknown_product_type", "the line's product has type \"spaceship\"",
         lines=[{"hs_product_id": P_ODD_TYPE}]),
    Case("deleted_company", "the deal's primary company was deleted in HubSpot",
         company=C_DELETED, before=_delete_company),
    Case("nameless_company", "the deal's company has no name", company=C_NAMELESS),
    Case("company_already_a_customer", "the company exists as a customer under another name",
         company=C_ALSO_CUSTOMER),
    Case("deleted_line_item", "one of two lines deleted in HubSpot",
         lines=[{}, {"price": "5"}], before=_delete_second_line),
    Case("invoice_due_date_malformed", "invoice due date \"31/02/2025\"",
         invoice={"hs_invoice_date": "2025-02-01", "hs_due_date": "31/02/2025"}),
    Case("invoice_date_missing", "invoice without hs_invoice_date",
         invoice={"hs_due_date": "2025-03-01"}),
    Case("invoice_unknown_currency", "invoice currency \"ABC\"",
         invoice={"hs_invoice_date": "2025-02-01", "hs_due_date": "2025-03-01",
                  "hs_currency": "ABC"}),
    # Issue 13, "text safe by construction": identity text is refused, never cut.
    Case("long_skus_differing_after_300", "two lines selling products whose 306-character SKUs "
         "differ after character 300",
         lines=[{"hs_product_id": P_LONG_A}, {"hs_product_id": P_LONG_B}]),
    Case("invoice_number_too_long", "invoice number of 300 characters",
         invoice={"hs_number": "N" * 300, "hs_invoice_date": "2025-02-01",
                  "hs_due_date": "2025-03-01"}),
]
# Synced in a portal of their own: until the extract passes every raw page through
# valid_unicode (issue 13), such a record stops the step it is in (PostgreSQL's jsonb refuses a
# lone surrogate in the staging table), and with it every other case's outcome.
ALONE = [
    Case("lone_surrogate_in_deal_name", "deal name with half an emoji (a lone surrogate, what "
         "a tool cutting an emoji in half sends)", deal={"dealname": "Half \ud83d emoji"}),
]


def build(sb: SandboxServer, cases: list[Case] = CASES) -> dict[str, tuple[str, str, list[str]]]:
    """Upsert the products, companies and every case; returns case key → (type, id, lines)."""
    sb.upsert("products", {"name": "Plain", "hs_sku": "PLAIN-1", "hs_product_type": "service"},
              id=P_OK)
    sb.upsert("products", {"name": "Twin A", "hs_sku": "TWIN"}, id=P_TWIN_A)
    sb.upsert("products", {"name": "Twin B", "hs_sku": "TWIN"}, id=P_TWIN_B)
    sb.upsert("products", {"name": "Archived", "hs_sku": "ARCH-1"}, id=P_ARCHIVED)
    sb.archive("products", P_ARCHIVED)
    sb.upsert("products", {"price": "1"}, id=P_BARE)
    sb.upsert("products", {"name": "Odd", "hs_sku": "ODD-1", "hs_product_type": "spaceship"},
              id=P_ODD_TYPE)
    sb.upsert("products", {"name": "Long A", "hs_sku": LONG_SKU_A}, id=P_LONG_A)
    sb.upsert("products", {"name": "Long B", "hs_sku": LONG_SKU_B}, id=P_LONG_B)
    sb.upsert("companies", {"name": "Deleted Co"}, id=C_DELETED)
    sb.upsert("companies", {"domain": "nameless.example"}, id=C_NAMELESS)
    sb.upsert("companies", {"name": "Globex Limited"}, id=C_ALSO_CUSTOMER)
    made: dict[str, tuple[str, str, list[str]]] = {}
    for n, case in enumerate(cases, start=1):
        try:
            made[case.key] = _build_case(sb, n, case)
        except SandboxAdminError as exc:  # HubSpot itself refuses the value at entry
            made[case.key] = ("refused", str(exc), [])
    return made


def _build_case(sb: SandboxServer, n: int, case: Case) -> tuple[str, str, list[str]]:
    if True:
        record = rid(100 + n)
        line_ids = [rid(1000 + 10 * n + i) for i in range(len(case.lines))]
        for line_id, props in zip(line_ids, case.lines, strict=True):
            sb.upsert("line_items", _clean({"name": f"{case.key} line", "quantity": "1",
                                            "price": "100", "hs_product_id": P_OK, **props}),
                      id=line_id)
        if case.invoice is not None:
            sb.upsert("invoices", _clean({"hs_number": f"BAD-{n}", "hs_currency": "USD",
                                          **case.invoice}), id=record,
                      associations={"line_items": line_ids})
            made = ("invoice", record, line_ids)
        else:
            companies: list[Any] = [{"id": case.company, "primary": True}] if case.company \
                else []
            sb.upsert("deals", _clean({"dealname": case.what[:60], "dealstage": "closedwon",
                                       "closedate": "2025-03-15T10:00:00Z",
                                       "deal_currency_code": "USD", **case.deal}), id=record,
                      associations={"line_items": line_ids, "companies": companies})
            made = ("deal", record, line_ids)
        if case.before is not None:
            case.before(sb, record, line_ids)
    return made


def _clean(props: dict[str, str]) -> dict[str, str]:
    """An empty string stands for a property HubSpot does not have."""
    return {k: v for k, v in props.items() if v != ""}
