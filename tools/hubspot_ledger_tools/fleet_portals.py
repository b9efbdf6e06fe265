"""Many organizations, each with its books and an integration connected to a sandbox portal of
its choosing, set up as `make demo` sets up one (the Celery test, the bench's fleet phase).

`hubspot_default` must point at the sandbox's OAuth app already (tests: `support.use_sandbox_app`;
tools: `demo.use_sandbox_app`).
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlparse

import requests

from hubspot_ledger_tools.sandbox.testing import SandboxAdmin


def add_portals(sb: SandboxAdmin, count: int, scale: str, first_id: int, seed: int = 1
                ) -> list[int]:
    """`count` more portals of `scale`, each with data of its own (seed + n)."""
    ids = [first_id + n for n in range(count)]
    for n, portal_id in enumerate(ids):
        sb.add_portal(portal_id=portal_id, seed=seed + n, scale=scale)
    return ids


def connect_to_portal(integration_id: int, portal_id: int) -> None:
    """The real consent redirect and code exchange (R-AUTH-2, R-AUTH-3); the sandbox's consent
    page grants the portal named in `portal_id`, as a HubSpot user picks an account."""
    from hubspot_ledger.connect import auth_url, complete_connection

    consent = requests.get(f"{auth_url(integration_id)}&portal_id={portal_id}",
                           allow_redirects=False, timeout=30)
    query = parse_qs(urlparse(consent.headers.get("Location", "")).query)
    if "code" not in query:
        raise RuntimeError(f"consent for portal {portal_id} did not redirect with a code "
                           f"({consent.status_code})")
    complete_connection(query["code"][0], query["state"][0])


def connected_integration(organization: str, portal_id: int, cutoff: dt.date) -> int:
    """A new organization with the demo's books (invoice sync on), connected to `portal_id`."""
    from hubspot_ledger.hooks.ledger import LedgerHook
    from hubspot_ledger_tools import demo

    integration_id = LedgerHook().integrations.create(organization, cutoff)
    demo.set_up_books(integration_id)
    connect_to_portal(integration_id, portal_id)
    return integration_id


def dag_id(integration_id: int) -> str:
    from hubspot_ledger.dag_factory import dag_id_for
    from hubspot_ledger.hooks.ledger import LedgerHook

    summaries = {i.id: i for i in LedgerHook().integrations.list()}
    return dag_id_for(summaries[integration_id])
