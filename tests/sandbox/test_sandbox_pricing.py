"""The sandbox prices line items by HubSpot's rule, per currency, exactly as the map layer does
(issue 10; DESIGN "obligation money"; R-DEAL-3, R-INV-4): otherwise every sandbox run would
flood the errors log with amount warnings, or hide a real difference.

The sandbox never imports the sync code; these tests import both to hold them together."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal

import pytest

from hubspot_ledger.extract.models import LineItem
from hubspot_ledger.mapping.money import Currency, find_currency, line_money
from hubspot_ledger.maps import currency_minor_units
from hubspot_ledger_tools.sandbox import mutations
from hubspot_ledger_tools.sandbox.config import parse_scale
from hubspot_ledger_tools.sandbox.generator import generate
from hubspot_ledger_tools.sandbox.pricing import line_amounts, places_of
from hubspot_ledger_tools.sandbox.records import PortalData, Record
from hubspot_ledger_tools.sandbox.schema import ObjectType, resolve

pytestmark = pytest.mark.unit

# (portal currency, other currencies): USD/EUR/GBP as the sandbox's default portal, and portals
# in JPY and KWD, whose half-yen and half-fils lines tell the rules apart.
PORTALS = [("USD", ("EUR", "GBP")), ("JPY", ("KWD", "USD")), ("KWD", ("JPY", "EUR"))]


def otype(name: str) -> ObjectType:
    found = resolve(name)
    assert found is not None
    return found


def currency(code: str) -> Currency:
    found = find_currency(code)
    assert found is not None, code
    return found


def as_line(record: Record) -> LineItem:
    """A sandbox record as the sync reads it (HubSpot sends every property as a string)."""
    return LineItem.from_api({"id": str(record.id),
                              "properties": {k: str(v) for k, v in record.props.items()}})


def generated_lines(portal: str, others: tuple[str, ...]) -> Iterator[Record]:
    data = generate(1, parse_scale("small"), portal, others)
    yield from data.tables["line_items"]


@pytest.mark.parametrize(("portal", "others"), PORTALS, ids=[p for p, _ in PORTALS])
def test_r_deal_3_sandbox_amounts_agree_with_the_mapper_on_every_generated_line(
        portal: str, others: tuple[str, ...]) -> None:
    lines = list(generated_lines(portal, others))
    assert lines
    for record in lines:
        props = record.props
        money = line_money(as_line(record), currency(str(props["hs_line_item_currency_code"])))
        assert (money.gross, money.discount_total, money.net) == (
            Decimal(str(props["hs_pre_discount_amount"])),
            Decimal(str(props["hs_total_discount"])), Decimal(str(props["amount"]))), props


def test_r_deal_3_generated_portals_hold_lines_only_hubspots_rule_prices_right() -> None:
    # Keeps the agreement test meaningful: some generated lines are half-yen or half-fils
    # cases, where rounding the net in one go (the old rule) would disagree with HubSpot.
    def old_rule(record: Record) -> Decimal:
        props = record.props
        exact = Decimal(str(props["quantity"])) * Decimal(str(props["price"]))
        net = exact * (100 - Decimal(str(props["hs_discount_percentage"]))) / 100
        places = Decimal(1).scaleb(-places_of(props["hs_line_item_currency_code"]))
        return net.quantize(places, rounding=ROUND_HALF_UP)

    differing = [r for portal, others in PORTALS for r in generated_lines(portal, others)
                 if "hs_discount_percentage" in r.props
                 and old_rule(r) != Decimal(str(r.props["amount"]))]
    assert differing


@pytest.mark.parametrize(("code", "args", "expected"), [
    # gross 0.05; 50 % of it = 0.025 → 0.03 off → 0.02
    ("USD", ("1", "0.05", None, "50"), ("0.02", "0.05", "0.03")),
    # 25 × 10 % = 2.5 → 3 yen off; no decimals in yen
    ("JPY", ("1", "25", None, "10"), ("22", "25", "3")),
    # 3 × half a yen off = 1.5 → 2
    ("JPY", ("3", "100", "0.5", None), ("298", "300", "2")),
    # 1.001 × 50 % = 0.5005 → 0.501 fils-exact
    ("KWD", ("1", "1.001", None, "50"), ("0.500", "1.001", "0.501")),
    # 5 × 0.0001 off = 0.0005 → 0.001
    ("KWD", ("5", "2", "0.0001", None), ("9.999", "10.000", "0.001")),
    # a lower-case code is the same currency
    ("jpy", ("3", "333.5", None, None), ("1001", "1001", "0")),
    # unknown or missing currency: cents, as most currencies have
    ("XYZ", ("1", "0.05", None, "50"), ("0.02", "0.05", "0.03")),
    (None, ("3", "0.015", None, "50"), ("0.03", "0.05", "0.02")),
])
def test_r_deal_3_sandbox_line_amounts_round_to_the_lines_currency(
        code: str | None, args: tuple[str | None, ...], expected: tuple[str, str, str]) -> None:
    quantity, price, discount, percentage = args
    amounts = line_amounts(quantity, price, discount, percentage, code)
    assert (amounts["amount"], amounts["hs_pre_discount_amount"],
            amounts["hs_total_discount"]) == expected


def test_sandbox_minor_units_are_the_mappers() -> None:
    # Shared data, not shared code: both read include/mappings/currencies.yaml.
    assert {code: places_of(code) for code in currency_minor_units()} == dict(
        currency_minor_units())


def test_r_inv_4_sandbox_prices_a_line_in_its_invoices_currency() -> None:
    data = PortalData()
    line = mutations.upsert(data, otype("line_items"), None,
                            {"quantity": "3", "price": "100", "discount": "0.5"})
    assert line.props["amount"] == "298.50"  # no currency known yet: cents
    mutations.upsert(data, otype("invoices"), 7001, {"hs_currency": "JPY"},
                     {"line_items": [str(line.id)]})
    mutations.upsert(data, otype("line_items"), line.id, {"quantity": "3"})
    assert (line.props["amount"], line.props["hs_total_discount"]) == ("298", "2")


def test_r_deal_3_sandbox_prices_a_line_in_the_deal_currency_set_in_the_same_upsert() -> None:
    data = PortalData()
    deal = mutations.upsert(data, otype("deals"), None, {"deal_currency_code": "KWD"})
    line = mutations.upsert(data, otype("line_items"), None,
                            {"quantity": "1", "price": "1.001", "hs_discount_percentage": "50"},
                            {"deals": [str(deal.id)]})
    assert line.props["amount"] == "0.500"


def test_r_deal_3_sandbox_line_currency_of_its_own_wins_and_portal_currency_is_last() -> None:
    data = PortalData()
    own = mutations.upsert(data, otype("line_items"), None,
                           {"quantity": "1", "price": "25", "hs_discount_percentage": "10",
                            "hs_line_item_currency_code": "JPY"}, portal_currency="USD")
    portal = mutations.upsert(data, otype("line_items"), None,
                              {"quantity": "1", "price": "25", "hs_discount_percentage": "10"},
                              portal_currency="JPY")
    assert (own.props["amount"], portal.props["amount"]) == ("22", "22")


def test_sandbox_explicit_amount_is_kept_so_tests_can_stage_a_difference() -> None:
    data = PortalData()
    line = mutations.upsert(data, otype("line_items"), None,
                            {"quantity": "1", "price": "0.05", "hs_discount_percentage": "50",
                             "amount": "0.03"})
    assert line.props["amount"] == "0.03"
