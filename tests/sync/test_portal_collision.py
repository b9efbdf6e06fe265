"""Issue 13's finding, reproduced: an integration connected to portal A is pointed at portal B,
whose deal has the same HubSpot id as one of A's. The reconnect is refused (one portal per
integration), nothing is stored, and a full refresh afterwards leaves A's contract exactly as it
was — B's deal never lands on A's row (DESIGN "one portal per integration")."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest
import requests
from support import use_sandbox_app

from hubspot_ledger.connect import auth_url, complete_connection
from hubspot_ledger.errors import PortalMismatch
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.sync.run_report import settle_run
from hubspot_ledger.sync.runner import run_step
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .portal import CUTOFF, D_MAIN, books, build_portal, connect, line_id, truncate

pytestmark = pytest.mark.integration
PORTAL_B = 99_999


def _sync(integration_id: int, *, full_refresh: bool = False) -> None:
    run = f"collision-{uuid.uuid4().hex[:8]}"
    for step in ("invoices", "products", "companies", "deals"):
        run_step(step, integration_id, run, full_refresh=full_refresh)
    ok, report = settle_run(integration_id, run)
    assert ok, report


def _contract(conn: psycopg.Connection[Any], integration_id: int) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT c.id, c.name, c.total_amount, c.currency, c.memo FROM ledger.integration_records r "
        "JOIN ledger.contracts c ON c.id = r.local_id WHERE r.integration_id = %s "
        "AND r.remote_type = 'deal' AND r.remote_id = %s", [integration_id, D_MAIN]).fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture
def portal_a(ledger_db: str) -> Iterator[tuple[SandboxServer, psycopg.Connection[Any], int]]:
    with pytest.MonkeyPatch.context() as mp, SandboxServer(seed=1, scale="tiny") as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(mp, sb)
        truncate(conn)
        build_portal(sb)
        hook = LedgerHook()
        integration_id = hook.integrations.create("Portal A Ltd", CUTOFF)
        books(hook, integration_id)
        connect(sb, integration_id)
        yield sb, conn, integration_id


def test_a_deal_of_another_portal_with_the_same_id_never_overwrites_the_contract(
        portal_a: tuple[SandboxServer, psycopg.Connection[Any], int]) -> None:
    sb, conn, integration_id = portal_a
    _sync(integration_id)
    before = _contract(conn, integration_id)
    pinned = conn.execute("SELECT remote_id FROM ledger.integrations WHERE id = %s",
                          [integration_id]).fetchone()

    # Portal B has a closed-won deal with the same HubSpot id as A's main deal.
    sb.add_portal(portal_id=PORTAL_B, currency="EUR")
    sb.upsert("line_items", {"name": "B line", "quantity": "1", "price": "120",
                             "hs_line_item_currency_code": "EUR"},
              id=line_id("main_pct"), portal_id=PORTAL_B)
    sb.upsert("deals", {"dealname": "PORTAL-B deal", "dealstage": "closedwon",
                        "closedate": "2025-03-15T10:00:00Z", "deal_currency_code": "EUR"},
              id=D_MAIN, associations={"line_items": [line_id("main_pct")]}, portal_id=PORTAL_B)

    # Someone consents for portal B on A's integration: refused, nothing stored.
    url = auth_url(integration_id).replace("/oauth/authorize?", f"/oauth/{PORTAL_B}/authorize?")
    consent = requests.get(url, allow_redirects=False, timeout=10)
    query = parse_qs(urlparse(consent.headers["Location"]).query)
    with pytest.raises(PortalMismatch, match=f"create a new integration for portal {PORTAL_B}"):
        complete_connection(query["code"][0], query["state"][0])
    assert conn.execute("SELECT remote_id FROM ledger.integrations WHERE id = %s",
                        [integration_id]).fetchone() == pinned

    # A full refresh still reads portal A only: the contract is exactly as it was.
    _sync(integration_id, full_refresh=True)
    assert _contract(conn, integration_id) == before
    assert conn.execute("SELECT count(*) FROM ledger.contracts WHERE name LIKE %s",
                        ["PORTAL-B%"]).fetchone() == (0,)
