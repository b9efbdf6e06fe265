"""What deal and invoice line items share: reading them, their items, and naming them in
errors of the record that owns them (DESIGN "partly bad records": the error names the line,
the whole deal or invoice is not imported)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from hubspot_ledger.sync.mapping.context import MappingContext
from hubspot_ledger.sync.mapping.drafts import ItemDraft
from hubspot_ledger.sync.mapping.money import Currency, LineMoney, line_money
from hubspot_ledger.sync.mapping.products import item_from_line, map_product_to_item
from hubspot_ledger.sync.models import (
    HubSpotRecord,
    LineItem,
    MappingError,
    Product,
    SkipRecord,
    clean_line,
)

NO_VALID_LINES = "No valid line items"  # R-DEAL-7, the reference product's words
PRODUCT_ID_MISSING = "Product id missing"  # R-INV-2, likewise


def not_imported(owner: HubSpotRecord, error: MappingError) -> MappingError:
    """A line's error, restated against the deal or invoice that is therefore not imported."""
    text = error.message
    return MappingError(owner.REMOTE_TYPE, owner.id,
                        f"{owner.subject} not imported: {text[:1].lower()}{text[1:]}")


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


def line_item(line: LineItem, product_id: str, products: Mapping[str, Product],
              context: MappingContext) -> ItemDraft:
    """The item a line sells (R-DEAL-2): drafted from its product record when the caller read
    it, else from the copies of SKU and name the line carries (product deleted or archived)."""
    product = products.get(product_id)
    if product is not None:
        return map_product_to_item(product, context)
    return item_from_line(line, product_id, context)


def line_description(line: LineItem, item: ItemDraft) -> str:
    """What the ledger line says: the line's name, else its item's name."""
    return clean_line(line.name) or item.name
