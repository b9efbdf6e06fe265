"""Whom an invoice is made out to (R-INV-6; issue 14, `--invoice-parties hubspot`).

By default every invoice goes to the organization's "Unknown" customer and "Unknown" accounting
company (R-INV-6). With `hubspot`, its customer is its associated company's customer (mapped as
R-COMP-2, created by the loader if not yet mapped), else an individual customer from its
associated contact (matched by the loader to an individual customer of the organization with
the same email, case-insensitively, else created), else "Unknown"; its accounting company is the
integration's configured one. A contact without an email cannot be matched to anyone, so its
invoice stays with "Unknown".
"""

from __future__ import annotations

from hubspot_ledger.drafts import (
    CompanyDraft,
    CustomerDraft,
    placeholder_company,
    placeholder_customer,
)
from hubspot_ledger.extract.party_models import Party
from hubspot_ledger.load.records import CustomerType, InvoiceParties
from hubspot_ledger.mapping.companies import map_company_to_customer
from hubspot_ledger.mapping.context import MappingContext


def invoice_parties(party: Party | None, context: MappingContext
                    ) -> tuple[CustomerDraft, CompanyDraft]:
    """(customer, accounting company) of an invoice under the integration's setting."""
    if context.settings.invoice_parties != InvoiceParties.HUBSPOT:
        return placeholder_customer(), placeholder_company()
    company = CompanyDraft(name=context.settings.company or "", is_placeholder=False,
                           company_id=context.setting_id("company_id"))
    return customer_of(party), company


def customer_of(party: Party | None) -> CustomerDraft:
    """The company's customer, else the contact's individual customer, else "Unknown"."""
    if party is not None and party.company is not None:
        return map_company_to_customer(party.company)
    contact = party.contact if party is not None else None
    if contact is not None and contact.email:
        return CustomerDraft(remote_id=None, name=contact.name or contact.email,
                             customer_type=CustomerType.INDIVIDUAL, email=contact.email)
    return placeholder_customer()
