"""Whom HubSpot invoices are made out to (issue 14, `--invoice-parties hubspot`): each invoice's
associated company and contact, read in bulk (two v4 association reads and two batch reads
per page of invoices).

An invoice with several companies (or contacts) takes the one with the lowest id, so the choice
is stable from run to run. Contacts are read only for invoices without a company.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hubspot_ledger.extract.models import Company, MappingError
from hubspot_ledger.extract.party_models import Contact, Party
from hubspot_ledger.extract.reads import parse_one, raw_by_id, valid_pages
from hubspot_ledger.hooks.hubspot import Association, HubSpotHook
from hubspot_ledger.load.records import RemoteType

CONTACT_PROPERTIES = ("firstname", "lastname", "email")
CONTACTS_SCOPE = "crm.objects.contacts.read"





def lowest(associations: Sequence[Association]) -> str | None:
    ids = sorted({a.to_id for a in associations}, key=lambda i: (len(i), i))
    return ids[0] if ids else None


def may_read_contacts(granted: str | None) -> bool:
    """Whether the portal granted the contacts scope (an unknown grant: try)."""
    return granted is None or not granted.strip() or CONTACTS_SCOPE in granted.split()


def invoice_parties(hook: HubSpotHook, invoice_ids: Sequence[str], *, contacts: bool = True
                    ) -> dict[str, Party]:
    """Each invoice's party; invoices with neither a company nor a contact are left out.
    `contacts=False` (the contacts scope not granted): companies only."""
    if not invoice_ids:
        return {}
    ids = list(invoice_ids)
    company_of = {i: c for i, links in hook.batch_associations("invoices", "companies",
                                                               ids).items()
                  if (c := lowest(links)) is not None}
    companies = _companies(hook, company_of.values())
    without = [i for i in ids if companies.get(company_of.get(i, "")) is None]
    contact_of = {i: c for i, links in hook.batch_associations("invoices", "contacts",
                                                               without).items()
                  if (c := lowest(links)) is not None} if without and contacts else {}
    people = _contacts(hook, contact_of.values())
    found: dict[str, Party] = {}
    for invoice_id in ids:
        company = companies.get(company_of.get(invoice_id, ""))
        contact = None if company else people.get(contact_of.get(invoice_id, ""))
        if company is not None or contact is not None:
            found[invoice_id] = Party(company=company, contact=contact)
    return found


def _companies(hook: HubSpotHook, ids: Iterable[str]) -> dict[str, Company]:
    found: dict[str, Company] = {}
    for page in raw_by_id(hook, RemoteType.COMPANY, ids):
        for raw in page:
            company = parse_one(Company, raw)
            if not isinstance(company, MappingError):
                found[company.id] = company
    return found


def _contacts(hook: HubSpotHook, ids: Iterable[str]) -> dict[str, Contact]:
    wanted = sorted(set(ids), key=lambda i: (len(i), i))
    if not wanted:
        return {}
    return {contact.id: contact
            for page in valid_pages(hook.batch_read("contacts", wanted, CONTACT_PROPERTIES))
            for contact in (Contact.of(raw) for raw in page)}
