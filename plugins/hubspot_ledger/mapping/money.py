"""Currencies and the money of one line item (DESIGN "obligation money"; hubspot-api.md,
"Addendum: line-item discounts"). Decimal only, never float.

Column limits come from include/migrations/0001: quantities, unit prices and unit discounts are
numeric(20,6) (14 integer digits), percentages numeric(9,6) in 0..100, money numeric(20,4)
(16 integer digits). A value beyond a limit fails the line with a readable message instead of a
"numeric field overflow" in the loader.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from hubspot_ledger.extract.models import BadValue, HubSpotRecord, LineItem, MappingError, quote
from hubspot_ledger.load.records import ProblemCause
from hubspot_ledger.maps import currency_minor_units

UNIT_PLACES = Decimal("0.000001")
UNIT_LIMIT = Decimal(10) ** 14
MONEY_LIMIT = Decimal(10) ** 16
HUNDRED = Decimal(100)
# Digits of working precision: quantity (20) × unit price (20) × percentage (9) fits exactly,
# so the only rounding is the one on the line total.
PRECISION = 60


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    minor_unit: int  # decimal places: 2 for USD, 0 for JPY, 3 for KWD

    def round(self, amount: Decimal) -> Decimal:
        """To the currency's minor unit, half away from zero (HubSpot's "round half up")."""
        return amount.quantize(Decimal(1).scaleb(-self.minor_unit), rounding=ROUND_HALF_UP)


def find_currency(code: str) -> Currency | None:
    """The ISO 4217 currency of `code` (any case), or None when no such currency exists."""
    code = code.strip().upper()
    places = currency_minor_units().get(code)
    return None if places is None else Currency(code, places)


def currency_of(record: HubSpotRecord, prop: str, portal_currency: str | None) -> Currency:
    """The record's currency from `prop`, else the portal's company currency (R-AUTH-4)."""
    raw = record.text(prop)
    if raw is not None:
        found = find_currency(raw)
        if found is None:
            raise BadValue(record, prop, raw, "is not an ISO 4217 currency code",
                           "pick the currency again in HubSpot")
        return found
    found = find_currency(portal_currency) if portal_currency else None
    if found is None:
        portal = (f"the portal's company currency {quote(portal_currency)} is not an ISO 4217 "
                  "code" if portal_currency else "the HubSpot portal reports no company currency")
        # The portal's currency comes with the connection, not with the record: retried
        # every run, not only when the record changes.
        raise MappingError(record.REMOTE_TYPE, record.id,
                           f"{record.subject} has no currency ({prop}) and {portal}; "
                           "set the currency in HubSpot", cause=ProblemCause.LEDGER)
    return found


@dataclass(frozen=True, slots=True)
class LineMoney:
    """A line's figures, each already rounded to what its ledger column holds."""

    quantity: Decimal
    unit_price: Decimal
    gross: Decimal  # quantity × unit price, rounded to the currency
    discount_percent: Decimal | None  # a percentage discount, 0 < p ≤ 100
    unit_discount: Decimal | None  # a fixed discount, per unit
    discount_total: Decimal  # what the discount takes off the line, rounded (0 when none)
    net: Decimal  # gross − discount_total: the line's amount after its discount
    # Before their rounding, to show an accountant how the figures come about (warnings).
    exact_gross: Decimal
    exact_discount: Decimal


def line_money(line: LineItem, currency: Currency) -> LineMoney:
    """Quantity, unit price and discount of a line, validated, and the amounts they give.

    HubSpot's rule (R-DEAL-3, R-INV-4; DESIGN "obligation money"): the line total and the
    discount are each rounded half up to the currency's minor unit, then subtracted, so the
    ledger's net is HubSpot's `amount` to the cent (or yen, or fils). A percentage applies to
    the unrounded line total: 10 × 234.56 at 20 % is 2,345.60 − 469.12 = 1,876.48, not
    10 × 187.65; 1 × 0.05 at 50 % is 0.05 − 0.03 (0.025 rounded) = 0.02. A fixed discount is
    per unit, so the line's discount is `discount × quantity` (3 × 100 with discount 10 → 30
    off, 270 net).
    """
    with localcontext() as ctx:
        ctx.prec = PRECISION
        quantity = _unit_value(line, "quantity", line.required("quantity", line.quantity))
        unit_price = _unit_value(line, "price", line.required("price", line.unit_price))
        percent, unit_discount = _discounts(line, unit_price)
        exact = quantity * unit_price
        gross = _line_total(line, currency.round(exact))
        # Rounding is monotonic and percent ≤ 100, unit_discount ≤ unit_price, so the rounded
        # discount never exceeds the rounded gross: the net is never negative.
        exact_discount = _exact_discount(exact, quantity, percent, unit_discount)
        discount = currency.round(exact_discount)
        return LineMoney(quantity, unit_price, gross, percent, unit_discount, discount,
                         gross - discount, exact, exact_discount)


def _exact_discount(exact_gross: Decimal, quantity: Decimal, percent: Decimal | None,
                    unit_discount: Decimal | None) -> Decimal:
    """The line's discount before its one rounding: a percentage of the unrounded line total
    (rounding the total first would drift a cent in half-cent cases), or the unit discount
    taken off every unit."""
    if percent is not None:
        return exact_gross * percent / HUNDRED
    if unit_discount is not None:
        return unit_discount * quantity
    return Decimal(0)


def _unit_value(line: LineItem, prop: str, value: Decimal) -> Decimal:
    """A numeric(20,6) value: not negative, at most 14 integer digits, rounded to 6 places.

    More than 6 decimals are rounded (half up), not refused: HubSpot itself keeps 6, and a
    difference below a millionth of a unit is what PostgreSQL would round away anyway.
    """
    raw = line.text(prop) or ""
    if value < 0:
        raise BadValue(line, prop, raw, "is negative", "enter zero or more in HubSpot")
    if value >= UNIT_LIMIT or value.quantize(UNIT_PLACES, ROUND_HALF_UP) >= UNIT_LIMIT:
        raise BadValue(line, prop, raw, "is too large for the ledger (at most 14 digits "
                       "before the decimal point)")
    return value.quantize(UNIT_PLACES, ROUND_HALF_UP)


def _discounts(line: LineItem, unit_price: Decimal) -> tuple[Decimal | None, Decimal | None]:
    """(percentage, unit discount): at most one of them, each only when above zero."""
    percent = line.discount_percentage
    if percent is not None and not 0 <= percent <= HUNDRED:
        raise BadValue(line, "hs_discount_percentage", line.text("hs_discount_percentage"),
                       "is not between 0 and 100")
    unit_discount = line.unit_discount
    if unit_discount is not None:
        unit_discount = _unit_value(line, "discount", unit_discount)
        if unit_discount > unit_price:
            raise BadValue(line, "discount", line.text("discount"),
                           f"is more than the unit price {show(unit_price)}",
                           "a discount cannot take a line below zero; lower it in HubSpot")
    # A zero in either property is the same as no discount of that kind.
    percent = percent.quantize(UNIT_PLACES, ROUND_HALF_UP) if percent else None
    unit_discount = unit_discount or None
    if percent is not None and unit_discount is not None:
        raise MappingError(line.REMOTE_TYPE, line.id,
                           f"{line.subject} has both a unit discount (discount) "
                           f"{show(unit_discount)} and a discount percentage "
                           f"(hs_discount_percentage) {show(percent)}; keep only one of them "
                           "in HubSpot")
    return percent, unit_discount


def _line_total(line: LineItem, gross: Decimal) -> Decimal:
    if gross >= MONEY_LIMIT:
        raise MappingError(line.REMOTE_TYPE, line.id,
                           f"{line.subject}: the line total (quantity × unit price) is too "
                           "large for the ledger (at most 16 digits before the decimal point); "
                           "correct the quantity or unit price in HubSpot")
    return gross


def total_of(record: HubSpotRecord, currency: Currency, amounts: Iterable[Decimal]
             ) -> Decimal:
    """A contract's or invoice's total: the sum of its lines' amounts, which must fit
    numeric(20,4) too (many large lines can overflow it)."""
    total = currency.round(sum(amounts, Decimal(0)))
    if total >= MONEY_LIMIT:
        raise MappingError(record.REMOTE_TYPE, record.id,
                           f"{record.subject}: the total of its line items is too large for the "
                           "ledger (at most 16 digits before the decimal point)")
    return total


def show(value: Decimal) -> str:
    """A number as an accountant writes it: 100, 12.5 (no trailing zeros, no exponent)."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
