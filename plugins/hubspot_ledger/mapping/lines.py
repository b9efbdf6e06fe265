"""What deal and invoice line items share: reading them, their items, naming them in errors
of the record that owns them (DESIGN "partly bad records": the error names the line, the whole
deal or invoice is not imported), and warning where HubSpot's own amount differs from the
ledger's (DESIGN "obligation money")."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal

from hubspot_ledger.drafts import ItemDraft
from hubspot_ledger.extract.models import (
    BadValue,
    HubSpotRecord,
    LineItem,
    MappingError,
    Product,
    SkipRecord,
    clean_line,
    quote,
)
from hubspot_ledger.load.records import ProblemCause
from hubspot_ledger.mapping.context import MappingContext
from hubspot_ledger.mapping.money import Currency, LineMoney, line_money, show
from hubspot_ledger.mapping.products import item_from_line, map_product_to_item

NO_VALID_LINES = "No valid line items"  # R-DEAL-7, the reference product's words
PRODUCT_ID_MISSING = "Product id missing"  # R-INV-2, likewise


def not_imported(owner: HubSpotRecord, error: MappingError) -> MappingError:
    """A line's error, restated against the deal or invoice that is therefore not imported."""
    text = error.message
    return MappingError(owner.REMOTE_TYPE, owner.id,
                        f"{owner.subject} not imported: {text[:1].lower()}{text[1:]}",
                        cause=error.cause)


def skip_no_valid_lines(owner: HubSpotRecord, detail: str) -> SkipRecord:
    return SkipRecord(owner.REMOTE_TYPE, owner.id, NO_VALID_LINES, detail=detail)


def unique_lines(lines: Sequence[LineItem]) -> list[LineItem]:
    """Each line once (association pages may repeat one), in a stable order (by id), so that
    the same deal always gives the same draft whatever order HubSpot listed its lines in."""
    by_id = {line.id: line for line in reversed(lines)}  # the first occurrence wins
    return sorted(by_id.values(), key=lambda line: (len(line.id), line.id))


def priced_lines(owner: HubSpotRecord, lines: Sequence[LineItem], currency: Currency
                 ) -> Iterator[tuple[LineItem, LineMoney]]:
    """Each line with its money; the first bad line fails the owner, naming the line."""
    for line in lines:
        try:
            _check_line_currency(line, currency)
            yield line, line_money(line, currency)
        except MappingError as exc:
            raise not_imported(owner, exc) from None


def _check_line_currency(line: LineItem, currency: Currency) -> None:
    # A line priced in another currency than its deal or invoice would be booked at the wrong
    # value; HubSpot normally prevents it, so it is a data fault worth stopping for.
    code = line.currency_code
    if code is not None and code.upper() != currency.code:
        raise MappingError(line.REMOTE_TYPE, line.id,
                           f"{line.subject} is in {clean_line(code, 8)}, not {currency.code} "
                           "like the record it belongs to; correct the currency in HubSpot")


def line_product_id(owner: HubSpotRecord, line: LineItem) -> str:
    """The line's `hs_product_id`; without one the owner is not imported (R-INV-2)."""
    product_id = line.product_id
    if product_id is None:
        raise MappingError(owner.REMOTE_TYPE, owner.id,
                           f"{owner.subject} not imported: {PRODUCT_ID_MISSING} on "
                           f"{line.subject[:1].lower()}{line.subject[1:]} (hs_product_id); "
                           "choose a product from the product library for this line in HubSpot")
    return product_id


def line_item(owner: HubSpotRecord, line: LineItem, product_id: str,
              products: Mapping[str, Product], context: MappingContext) -> ItemDraft:
    """The item a line sells (R-DEAL-2): drafted from its product record when the caller read
    it, else from the copies of SKU and name the line carries (product gone from HubSpot).
    A product the ledger refuses (a SKU too long to keep whole) fails the owner, naming the
    line (DESIGN "partly bad records")."""
    product = products.get(product_id)
    try:
        if product is not None:
            return map_product_to_item(product, context)
        return item_from_line(line, product_id, context)
    except MappingError as exc:
        subject = line.subject
        raise MappingError(owner.REMOTE_TYPE, owner.id,
                           f"{owner.subject} not imported: {subject[:1].lower()}{subject[1:]} "
                           f"sells an item the ledger refuses: {exc.message}",
                           # A product's data: its change does not touch the owner in
                           # HubSpot, so the owner is retried every run until it is fixed.
                           cause=exc.cause if product is None else ProblemCause.LEDGER
                           ) from None


def line_description(line: LineItem, item: ItemDraft) -> str:
    """What the ledger line says: the line's name, else its item's name."""
    return clean_line(line.name) or item.name


def amount_warnings(owner: HubSpotRecord, priced: Iterable[tuple[LineItem, LineMoney]],
                    currency: Currency, *, discount_lines: bool = False) -> tuple[str, ...]:
    """One warning per line whose HubSpot `amount` differs from the ledger's net (DESIGN
    "obligation money": a difference is a warning, not a failure; the ledger keeps its own
    figure, computed by HubSpot's rule, R-DEAL-3 and R-INV-4). `discount_lines`: the owner is an
    invoice, whose discount the ledger books as a separate negative line (R-INV-4)."""
    found = (_amount_warning(owner, line, money, currency, discount_lines)
             for line, money in priced)
    return tuple(warning for warning in found if warning is not None)


def _amount_warning(owner: HubSpotRecord, line: LineItem, money: LineMoney, currency: Currency,
                    discount_lines: bool) -> str | None:
    try:
        hubspot = line.decimal("amount")
    except BadValue:
        # HubSpot calculates `amount` itself, so an unreadable one is odd but harmless: the
        # ledger never books it.
        said = f"HubSpot's amount {quote(line.text('amount') or '')} is not a number"
    else:
        if hubspot is None or hubspot == money.net:
            return None
        said = f"HubSpot's amount is {_amount(hubspot)} {currency.code}"
    return (f"{owner.subject}: {_lowered(line.subject)}: {said}, but the ledger books "
            f"{_booked(money, currency, discount_lines)} ({_working(money, currency)}); "
            "check the line in HubSpot")


def _booked(money: LineMoney, currency: Currency, discount_lines: bool) -> str:
    code = currency.code
    if discount_lines and money.discount_total:
        return (f"{_amount(money.gross)} {code} and a discount line of "
                f"{_amount(-money.discount_total)} {code}, {_amount(money.net)} {code} net")
    return f"{_amount(money.net)} {code}"


def _working(money: LineMoney, currency: Currency) -> str:
    """How the ledger's figure comes about, for the accountant to redo by hand."""
    places = currency.minor_unit
    rounded = (f"rounded half up to {currency.code}'s {places} "
               f"decimal{'' if places == 1 else 's'}")
    gross = (f"{show(money.quantity)} × {show(money.unit_price)} = "
             f"{_figure(money.exact_gross, money.gross)}")
    if money.discount_percent is not None:
        off = f"{show(money.discount_percent)} % of it"
    elif money.unit_discount is not None:
        off = f"{show(money.unit_discount)} per unit"
    else:
        return f"{gross}, {rounded}"
    return (f"{gross}, less {off} = {_figure(money.exact_discount, money.discount_total)}, "
            f"{rounded}")


def _figure(exact: Decimal, rounded: Decimal) -> str:
    """`0.025 → 0.03` where rounding changed the figure, else just `0.03`."""
    return _amount(rounded) if exact == rounded else f"{show(exact)} → {_amount(rounded)}"


def _amount(value: Decimal) -> str:
    """An amount already rounded to its currency, with all its minor digits (0.10, 100.00)."""
    return format(value, "f")


def _lowered(subject: str) -> str:
    """`Line item 1 ("x")` inside a sentence: `line item 1 ("x")`."""
    return f"{subject[:1].lower()}{subject[1:]}"
