"""A line item's calculated money properties, as HubSpot computes them (hubspot-api.md addendum).

`discount` is a unit discount (taken off every unit); `hs_discount_percentage` applies to the
line total and is rounded there; `amount` is the net line total.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")


def _number(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def line_amounts(quantity: object, price: object, discount: object = None,
                 percentage: object = None) -> dict[str, str]:
    """`amount`, `hs_pre_discount_amount` and `hs_total_discount` of one line (2 decimals)."""
    qty = _number(quantity) or Decimal(0)
    unit = _number(price) or Decimal(0)
    gross = (qty * unit).quantize(CENT, rounding=ROUND_HALF_UP)
    pct = _number(percentage)
    fixed = _number(discount)
    if pct:
        off = (gross * pct / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    elif fixed:
        off = (fixed * qty).quantize(CENT, rounding=ROUND_HALF_UP)
    else:
        off = Decimal(0)
    return {"amount": money(gross - off), "hs_pre_discount_amount": money(gross),
            "hs_total_discount": money(off)}
