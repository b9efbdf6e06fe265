"""The map layer: pure functions turning HubSpot models and integration settings into drafts of
ledger records. No I/O, no Airflow imports; the property maps are data in include/mappings/.

Outcomes for one record: a draft; `SkipRecord` ("No valid line items": logged, counted skipped);
`MappingError` (logged, counted failed). Both carry `remote_type`, `remote_id` and a one-line
`message` for the integration errors log.
"""

from hubspot_ledger.drafts import (
    CompanyDraft,
    ContractDraft,
    CustomerDraft,
    InvoiceDraft,
    InvoiceLineDraft,
    ItemDraft,
    ObligationDraft,
    fingerprint,
    placeholder_company,
    placeholder_customer,
)
from hubspot_ledger.extract.models import BadValue, MappingError, SkipRecord
from hubspot_ledger.mapping.companies import map_company_to_customer
from hubspot_ledger.mapping.context import DEFAULT_UI_DOMAIN, MappingContext
from hubspot_ledger.mapping.deals import map_deal_to_contract
from hubspot_ledger.mapping.invoices import map_invoice_to_sales_invoice
from hubspot_ledger.mapping.lines import NO_VALID_LINES, PRODUCT_ID_MISSING
from hubspot_ledger.mapping.products import map_product_to_item
from hubspot_ledger.maps import MappingDataError, hubspot_properties

__all__ = [
    "DEFAULT_UI_DOMAIN", "NO_VALID_LINES", "PRODUCT_ID_MISSING", "BadValue", "CompanyDraft",
    "ContractDraft", "CustomerDraft", "InvoiceDraft", "InvoiceLineDraft", "ItemDraft",
    "MappingContext", "MappingDataError", "MappingError", "ObligationDraft", "SkipRecord",
    "fingerprint", "hubspot_properties", "map_company_to_customer", "map_deal_to_contract",
    "map_invoice_to_sales_invoice", "map_product_to_item", "placeholder_company",
    "placeholder_customer",
]
