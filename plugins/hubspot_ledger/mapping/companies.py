"""Companies → customers (R-COMP-2)."""

from __future__ import annotations

from hubspot_ledger.drafts import CustomerDraft
from hubspot_ledger.extract.models import Company, clean_line
from hubspot_ledger.load.records import CustomerType
from hubspot_ledger.maps import customer_fields


def map_company_to_customer(company: Company) -> CustomerDraft:
    """A customer of type `company`, its fields per company_to_customer.yaml (blank → None).

    Every field is display text (the customer's identity is its HubSpot id, R-COMP-2): one line
    each, cut with a visible "…" beyond NAME_MAX characters, never refused for its length.

    A company without a name is named after its domain, else "HubSpot company <id>": the deals
    it bought must not be lost for a missing name, and the id lets an accountant find it.
    """
    values = {field: clean_line(company.text(prop)) for field, prop in customer_fields().items()}
    name = values.get("name") or clean_line(company.domain) or f"HubSpot company {company.id}"
    return CustomerDraft(
        remote_id=company.id, name=name, customer_type=CustomerType.COMPANY,
        email=values.get("email"), phone=values.get("phone"), website=values.get("website"),
        address_line1=values.get("address_line1"), address_line2=values.get("address_line2"),
        city=values.get("city"), state=values.get("state"),
        postal_code=values.get("postal_code"), country=values.get("country"),
    )
