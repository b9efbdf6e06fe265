"""Issue 14's records, added to the crafted portal of portal.py: invoices associated with
companies and contacts, a deal in the renewals pipeline's won stage, and deal lines with
recurring terms. Ids from 990000000500 up.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from support import check_api_version, use_sandbox_app

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .portal import (
    C_GLOBEX,
    CUTOFF,
    LOCKED,
    ORGANIZATION,
    P_GOODS,
    P_SERVICE,
    Portal,
    books,
    build_portal,
    connect,
    truncate,
)

CONTACTS_SCOPE = "crm.objects.contacts.read"


def _id(n: int) -> str:
    return str(990_000_000_500 + n)


# Contacts and a company only invoices reach
K_ALICE, K_BOB, K_NO_EMAIL = _id(1), _id(2), _id(3)
C_INITECH = _id(11)
# Deals
D_RENEWAL, D_RENEWAL_OPEN, D_TERMS, D_BAD_TERM = _id(21), _id(22), _id(23), _id(24)
# Lines
L_RENEWAL, L_RENEWAL_OPEN = _id(101), _id(102)
L_12M, L_3M, L_2W, L_ONE_OFF, L_BAD = _id(103), _id(104), _id(105), _id(106), _id(107)
L_INV = {n: _id(110 + n) for n in range(5)}
# Invoices
I_COMPANY, I_NEW_COMPANY, I_CONTACT, I_KNOWN_CONTACT, I_NO_EMAIL = (
    _id(41), _id(42), _id(43), _id(44), _id(45))
RENEWED, RENEWAL_DUE = "71900002", "71900001"  # the sandbox's renewals pipeline
# An individual customer accountants already have, with Bob's email in other letters' case.
KNOWN_CUSTOMER = ("Robert Bee", "BOB@Example.COM")


def build_beyond(sb: SandboxServer) -> None:
    sb.upsert("contacts", {"firstname": "Alice", "lastname": "Able",
                           "email": "Alice.Able@Example.com"}, id=K_ALICE)
    sb.upsert("contacts", {"firstname": "Bob", "lastname": "Bee", "email": "bob@example.com"},
              id=K_BOB)
    sb.upsert("contacts", {"firstname": "Nomail", "lastname": "Person"}, id=K_NO_EMAIL)
    sb.upsert("companies", {"name": "Initech", "city": "Austin"}, id=C_INITECH)
    lines = {
        L_RENEWAL: {"hs_product_id": P_SERVICE, "quantity": "1", "price": "500"},
        L_RENEWAL_OPEN: {"hs_product_id": P_SERVICE, "quantity": "1", "price": "400"},
        L_12M: {"hs_product_id": P_SERVICE, "quantity": "1", "price": "1200",
                "recurringbillingfrequency": "monthly", "hs_recurring_billing_period": "P12M",
                "hs_recurring_billing_start_date": "2026-01-01"},
        L_3M: {"hs_product_id": P_SERVICE, "quantity": "1", "price": "300",
               "recurringbillingfrequency": "monthly", "hs_recurring_billing_period": "P3M",
               "hs_recurring_billing_start_date": "2026-01-15"},
        L_2W: {"hs_product_id": P_SERVICE, "quantity": "1", "price": "50",
               "recurringbillingfrequency": "weekly", "hs_recurring_billing_period": "P2W"},
        L_ONE_OFF: {"hs_product_id": P_GOODS, "quantity": "2", "price": "25"},
        L_BAD: {"hs_product_id": P_SERVICE, "quantity": "1", "price": "99",
                "recurringbillingfrequency": "monthly",
                "hs_recurring_billing_period": "12 months"},
        **{line: {"hs_product_id": P_SERVICE, "quantity": "1", "price": f"{10 + n}"}
           for n, line in L_INV.items()},
    }
    for line_id, props in lines.items():
        sb.upsert("line_items", {"name": f"Line {line_id[-3:]}", **props}, id=line_id)

    def deal(deal_id: str, name: str, stage: str, pipeline: str, items: list[str]) -> None:
        sb.upsert("deals", {"dealname": name, "dealstage": stage, "pipeline": pipeline,
                            "deal_currency_code": "USD", "closedate": "2025-12-20T10:00:00Z"},
                  id=deal_id, associations={"line_items": items})

    deal(D_RENEWAL, "Renewed support", RENEWED, "renewals", [L_RENEWAL])
    deal(D_RENEWAL_OPEN, "Renewal still due", RENEWAL_DUE, "renewals", [L_RENEWAL_OPEN])
    deal(D_TERMS, "Subscriptions", "closedwon", "default", [L_12M, L_3M, L_2W, L_ONE_OFF])
    deal(D_BAD_TERM, "Badly typed term", "closedwon", "default", [L_BAD])

    def invoice(invoice_id: str, n: int, companies: list[str], contacts: list[str]) -> None:
        sb.upsert("invoices", {"hs_currency": "USD", "hs_number": f"INV-B{n}",
                               "hs_invoice_date": "2025-11-01", "hs_due_date": "2025-12-01"},
                  id=invoice_id, associations={"line_items": [L_INV[n]],
                                               "companies": companies, "contacts": contacts})

    invoice(I_COMPANY, 0, [C_GLOBEX], [K_ALICE])
    invoice(I_NEW_COMPANY, 1, [C_INITECH], [])
    invoice(I_CONTACT, 2, [], [K_ALICE])
    invoice(I_KNOWN_CONTACT, 3, [], [K_BOB])
    invoice(I_NO_EMAIL, 4, [], [K_NO_EMAIL])


@contextmanager
def beyond_portal(ledger_db: str) -> Iterator[Portal]:
    """The crafted portal plus issue 14's records, its app granted the contacts scope too, the
    sandbox serving two deal pipelines; an organization set up (defaults for issue 14's
    settings), connected, not synced yet. Incremental runs read from the last run's start
    (no overlap), so a run reads a record HubSpot did not change only because a setting
    dropped its type's coverage."""
    with pytest.MonkeyPatch.context() as mp, SandboxServer(seed=1, scale="tiny") as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(mp, sb)
        conn_json = json.loads(os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"])
        scopes = [*sb.scopes, CONTACTS_SCOPE]
        conn_json["extra"]["scopes"] = scopes
        mp.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps(conn_json))
        mp.setenv("HUBSPOT_LEDGER_INCREMENTAL_OVERLAP_SECONDS", "0")
        sb.update_config(scopes=scopes, pipelines="two")
        truncate(conn)
        build_portal(sb)
        build_beyond(sb)
        hook = LedgerHook()
        integration_id = hook.integrations.create(ORGANIZATION, CUTOFF)
        company_id = books(hook, integration_id)
        conn.execute("INSERT INTO ledger.accounting_periods (company_id, start_date, end_date, "
                     "locked) VALUES (%s, %s, %s, true)", [company_id, *LOCKED])
        org = hook.integrations.get(integration_id).organization_id
        conn.execute("INSERT INTO ledger.customers (organization_id, name, customer_type, email)"
                     " VALUES (%s, %s, 'individual', %s)", [org, *KNOWN_CUSTOMER])
        connect(sb, integration_id)
        check_api_version(sb)
        sb.clear_requests()
        yield Portal(sandbox=sb, ledger=conn, integration_id=integration_id)
        check_api_version(sb)
