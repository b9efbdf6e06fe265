"""Products → items (R-PROD-1…4)."""

from __future__ import annotations

from hubspot_ledger.drafts import ItemDraft
from hubspot_ledger.extract.models import HubSpotRecord, LineItem, Product, clean_line, clean_text
from hubspot_ledger.load.records import ItemType
from hubspot_ledger.mapping.context import MappingContext
from hubspot_ledger.maps import product_types


def map_product_to_item(product: Product, context: MappingContext) -> ItemDraft:
    """An item from a HubSpot product.

    R-PROD-1 SKU = `hs_sku`, or `HS_<product id>` when missing or blank; a SKU is the item's
    identity, so one too long for the ledger is refused (BadValue naming the product), never
    cut. R-PROD-2 name and description from the product, cut with "…" when too long; a product
    without a name is named after its SKU, so that it is never lost (the deal lines that sell it
    still need an item).
    """
    return item_draft(context, product, remote_id=product.id, name=product.name,
                      description=product.description, product_type=product.product_type)


def item_from_line(line: LineItem, product_id: str, context: MappingContext) -> ItemDraft:
    """An item for a line whose product record could not be read (deleted or archived in
    HubSpot): the line carries copies of its product's SKU and name. The SKU follows the same
    rule as a product's (refused naming the line when too long, never cut)."""
    return item_draft(context, line, remote_id=product_id, name=line.name,
                      description=line.description, product_type=None)


def item_draft(context: MappingContext, source: HubSpotRecord, *, remote_id: str,
               name: str | None, description: str | None,
               product_type: str | None) -> ItemDraft:
    """The item of product `remote_id`, its SKU read from `source` (the product, or a line's
    copy of it), which a refusal names."""
    sku = source.identity("hs_sku", fallback=f"HS_{remote_id}")
    item_type = item_type_of(product_type)
    # R-PROD-4: every item gets the income and expense accounts; only service items get the
    # deferred-revenue account (their revenue may be earned over time).
    deferred = (context.setting_id("deferred_revenue_account_id")
                if item_type is ItemType.SERVICE else None)
    return ItemDraft(remote_id=remote_id, sku=sku, name=clean_line(name) or sku,
                     description=clean_text(description), item_type=item_type,
                     income_account_id=context.setting_id("income_account_id"),
                     expense_account_id=context.setting_id("expense_account_id"),
                     deferred_revenue_account_id=deferred)


def item_type_of(product_type: str | None) -> ItemType:
    """R-PROD-3 via product_types.yaml, case-insensitively; missing or unknown → the default
    (goods): portals can add their own options, and an item must not be lost for it."""
    types, default = product_types()
    return types.get((product_type or "").strip().lower(), default)
