"""HubSpot invoices → sales invoices (R-INV-1…6), when the integration's toggle is on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal

from hubspot_ledger.drafts import InvoiceDraft, InvoiceLineDraft
from hubspot_ledger.extract.models import (
    NAME_MAX,
    Invoice,
    LineItem,
    MappingError,
    Product,
    clean_line,
    property_label,
)
from hubspot_ledger.extract.party_models import Party
from hubspot_ledger.mapping.context import MappingContext
from hubspot_ledger.mapping.lines import (
    amount_warnings,
    line_description,
    line_item,
    line_product_id,
    priced_lines,
    skip_no_valid_lines,
    unique_lines,
)
from hubspot_ledger.mapping.money import UNIT_PLACES, LineMoney, currency_of, total_of
from hubspot_ledger.mapping.parties import invoice_parties

DISCOUNT_PREFIX = "Discount: "


def map_invoice_to_sales_invoice(invoice: Invoice, line_items: Sequence[LineItem],
                                 context: MappingContext, *,
                                 products: Mapping[str, Product] | None = None,
                                 party: Party | None = None) -> InvoiceDraft:
    """A sales invoice from a HubSpot invoice and its line items, posted against the "Unknown"
    customer and company (R-INV-6), or with `--invoice-parties hubspot` against its associated
    company or contact (`party`) and the configured company (mapping.parties). Raises
    MappingError (not imported) or SkipRecord."""
    invoice_date, due_date = _dates(invoice)
    currency = currency_of(invoice, "hs_currency", context.currency)
    lines = unique_lines(line_items)
    if not lines:
        raise skip_no_valid_lines(invoice, "the invoice has no line items")
    # R-INV-3: a line whose quantity × unit price is zero is left out (its discount can only
    # be zero too); the product-id rule then applies to the lines that remain.
    priced = list(priced_lines(invoice, lines, currency))
    kept = [(line, money) for line, money in priced if money.gross != 0]
    if not kept:
        raise skip_no_valid_lines(invoice, "every line item's amount is zero")
    drafts = tuple(draft for line, money in kept
                   for draft in _lines(invoice, line, money, products or {}, context))
    customer, company = invoice_parties(party, context)
    return InvoiceDraft(
        remote_id=invoice.id,
        number=invoice.identity("hs_number", fallback=f"HS-INV-{invoice.id}"),  # never cut
        invoice_date=invoice_date, due_date=due_date, currency=currency.code,
        total_amount=total_of(invoice, currency, (d.amount for d in drafts)),
        lines=drafts, customer=customer, company=company,
        # DESIGN "obligation money": HubSpot's `amount` is compared with the line less its
        # discount line (R-INV-4); a difference is only reported. A left-out zero line
        # (R-INV-3) is compared too: HubSpot saying otherwise than zero is worth a look.
        warnings=amount_warnings(invoice, priced, currency, discount_lines=True),
    )


def _dates(invoice: Invoice) -> tuple[dt.date, dt.date]:
    """R-INV-5: both dates are required; the error names every missing one. A malformed date
    fails on its own (BadValue) before that."""
    invoice_date, due_date = invoice.invoice_date, invoice.due_date
    if invoice_date is not None and due_date is not None:
        return invoice_date, due_date
    missing = [property_label(p) for p, v in (("hs_invoice_date", invoice_date),
                                              ("hs_due_date", due_date)) if v is None]
    verb, them = ("is", "it") if len(missing) == 1 else ("are", "them")
    raise MappingError(invoice.REMOTE_TYPE, invoice.id,
                       f"{invoice.subject}: {' and '.join(missing)} {verb} missing; "
                       f"set {them} in HubSpot")


def _lines(invoice: Invoice, line: LineItem, money: LineMoney, products: Mapping[str, Product],
           context: MappingContext) -> Iterator[InvoiceLineDraft]:
    """The line at its full price, then its discount as a separate negative line (R-INV-4)."""
    product_id = line_product_id(invoice, line)  # R-INV-2
    item = line_item(invoice, line, product_id, products, context)
    description = line_description(line, item)
    yield InvoiceLineDraft(remote_id=line.id, product_id=product_id, item=item,
                           description=description, quantity=money.quantity,
                           unit_price=money.unit_price, amount=money.gross)
    if money.discount_total:
        # DESIGN "invoice discount line": quantity 1, unit price = amount = −discount, same item.
        yield InvoiceLineDraft(remote_id=line.id, product_id=product_id, item=item,
                               description=clean_line(DISCOUNT_PREFIX + description, NAME_MAX),
                               quantity=Decimal(1).quantize(UNIT_PLACES),
                               unit_price=-money.discount_total, amount=-money.discount_total,
                               is_discount=True)
