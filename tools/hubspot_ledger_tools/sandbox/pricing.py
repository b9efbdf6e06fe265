"""A line item's calculated money properties, as HubSpot computes them (hubspot-api.md,
"Addendum: line-item discounts").

`discount` is a unit discount (taken off every unit); `hs_discount_percentage` applies to the
unrounded line total. The line total and the discount are each rounded half up to the line's
currency's minor unit (JPY 0 decimals, KWD 3, most 2), and `amount` is the one less the other.

The minor units are read from include/mappings/currencies.yaml, the file the sync reads too:
the sandbox shares that data, never the sync's code (it imports nothing else of the project).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from functools import cache
from importlib.resources import files
from types import MappingProxyType

import yaml

# The ledger's own ISO 4217 table, package data of hubspot_ledger: shared data, not code (the
# sandbox imports nothing of the product).
CURRENCIES_FILE = files("hubspot_ledger") / "data" / "mappings" / "currencies.yaml"
DEFAULT_PLACES = 2  # a line whose currency is unknown or not listed: most currencies have cents
# Enough digits for quantity × price × percentage without rounding on the way (like the sync).
PRECISION = 60


@cache
def minor_units() -> Mapping[str, int]:
    """ISO 4217 code → decimal places of its minor unit."""
    try:
        units = yaml.safe_load(CURRENCIES_FILE.read_text(encoding="utf-8"))["minor_units"]
        return MappingProxyType({str(code).upper(): int(places)
                                 for code, places in units.items()})
    except (OSError, yaml.YAMLError, TypeError, KeyError, AttributeError, ValueError) as exc:
        raise RuntimeError(f"the sandbox cannot read currency minor units from "
                           f"{CURRENCIES_FILE}: {exc}") from None


def places_of(currency: object) -> int:
    """Decimal places of a currency code (any case); DEFAULT_PLACES when None or unknown."""
    return minor_units().get(str(currency or "").strip().upper(), DEFAULT_PLACES)


def _number(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _rounded(value: Decimal, places: int) -> Decimal:
    """Half away from zero, HubSpot's "round half up"."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def money(value: Decimal, currency: object = None) -> str:
    """`value` as HubSpot writes an amount in `currency` (2 decimals when it is unknown)."""
    return str(_rounded(value, places_of(currency)))


def line_amounts(quantity: object, price: object, discount: object = None,
                 percentage: object = None, currency: object = None) -> dict[str, str]:
    """`amount`, `hs_pre_discount_amount` and `hs_total_discount` of one line in `currency`."""
    places = places_of(currency)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        qty = _number(quantity) or Decimal(0)
        exact = qty * (_number(price) or Decimal(0))
        pct = _number(percentage)
        fixed = _number(discount)
        if pct:
            off = exact * pct / 100  # of the unrounded total: rounding once, at the end
        elif fixed:
            off = fixed * qty
        else:
            off = Decimal(0)
        gross, off = _rounded(exact, places), _rounded(off, places)
        return {"amount": str(gross - off), "hs_pre_discount_amount": str(gross),
                "hs_total_discount": str(off)}
