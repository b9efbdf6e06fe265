"""HubSpot's date-versioned API (issue 14 item 5, hubspot-api.md §0): the deployment's
`api_version` (the `hubspot_default` extra) decides which path family HubSpot is called on.
By default every call goes to the dated paths (`/crm/objects/2026-03`,
`/crm/associations/2026-03`, `/oauth/2026-03`, `/account-info/2026-03`); with `v3`, to the
legacy ones (`/crm/v3`, `/crm/v4`, `/oauth/v3`, `/account-info/v3`). The bodies are the same,
so is the ledger. The deal pipelines have no dated path in the reference: `/crm/v3/pipelines`
at every version.

One connection (consent, code exchange, account details, introspection) and one sync of the
crafted portal per version, with every read the sync makes: the product listing, searches,
batch reads, association reads, a token refresh (the access token expires first) and the deal
pipelines (won stages `all-pipelines`)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from support import HUBSPOT_CONN_ENV, hubspot_connection, use_sandbox_app

from hubspot_ledger.hooks.hubspot_paths import DEFAULT_API_VERSION, UnknownApiVersion
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import save_settings
from hubspot_ledger.sync.run_report import settle_run
from hubspot_ledger.sync.runner import run_step
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .ledger_view import View, view
from .portal import CUTOFF, books, build_portal, connect, truncate

pytestmark = pytest.mark.integration

STEPS = ("invoices", "products", "companies", "deals")
PIPELINES = "GET /crm/v3/pipelines/deals"
# What the connection and the sync must have asked, by version-neutral endpoint name.
EXPECTED = {"POST /oauth/v3/token", "GET /account-info/v3/details",
            "POST /oauth/v3/token/introspect", "GET /crm/v3/objects/products",
            "POST /crm/v3/objects/deals/search", "POST /crm/v3/objects/invoices/search",
            "POST /crm/v3/objects/line_items/batch/read",
            "POST /crm/v3/objects/companies/batch/read",
            "POST /crm/v4/associations/deals/line_items/batch/read",
            "POST /crm/v4/associations/invoices/line_items/batch/read", PIPELINES}


def _use_api_version(monkeypatch: pytest.MonkeyPatch, sb: SandboxServer,
                     api_version: str | None) -> None:
    """`hubspot_default` with that api_version extra (None: none, the default), whatever
    HUBSPOT_API_VERSION says."""
    connection = json.loads(hubspot_connection(sb))
    connection["extra"].pop("api_version", None)
    if api_version is not None:
        connection["extra"]["api_version"] = api_version
    monkeypatch.setenv(HUBSPOT_CONN_ENV, json.dumps(connection))


def _connect_and_sync(ledger_db: str, monkeypatch: pytest.MonkeyPatch,
                      api_version: str | None) -> tuple[list[dict[str, Any]], View]:
    """HubSpot's request log and the ledger after connecting and syncing the crafted portal
    with `hubspot_default`'s api_version extra (None: no extra, the default)."""
    with SandboxServer(seed=1, scale="tiny") as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(monkeypatch, sb)
        _use_api_version(monkeypatch, sb, api_version)
        truncate(conn)
        build_portal(sb)
        ledger = LedgerHook()
        integration_id = ledger.integrations.create("Versioned Ltd", CUTOFF)
        books(ledger, integration_id)
        save_settings(integration_id, won_stages="all-pipelines")
        connect(sb, integration_id)
        sb.expire_access_tokens()  # the sync's first call gets a 401 and refreshes the token
        run = f"version-{uuid.uuid4().hex[:8]}"
        for step in STEPS:
            run_step(step, integration_id, run)
        ok, report = settle_run(integration_id, run)
        assert ok, report
        calls = [r for r in sb.requests() if r["endpoint"] != "GET /oauth/authorize"]
        return calls, view(conn, integration_id)


def _families(calls: list[dict[str, Any]]) -> dict[str, set[str | None]]:
    found: dict[str, set[str | None]] = {"pipelines": set(), "the rest": set()}
    for call in calls:
        found["pipelines" if call["endpoint"] == PIPELINES else "the rest"].add(
            call["api_version"])
    return found


def test_the_api_version_decides_every_path_hubspot_receives_and_not_the_ledger(
        ledger_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dated, dated_ledger = _connect_and_sync(ledger_db, monkeypatch, None)
    legacy, legacy_ledger = _connect_and_sync(ledger_db, monkeypatch, "v3")

    for calls in (dated, legacy):
        assert EXPECTED <= {c["endpoint"] for c in calls}
        assert {c["grant_type"] for c in calls if c["endpoint"] == "POST /oauth/v3/token"} \
            == {"authorization_code", "refresh_token"}
        assert all(c["status"] in (200, 207, 401) for c in calls), calls

    # The default: the dated family only (the pipelines aside, see the module docstring).
    assert _families(dated) == {"pipelines": {"v3"}, "the rest": {DEFAULT_API_VERSION}}
    assert {c["path"] for c in dated if c["endpoint"] == "POST /crm/v3/objects/deals/search"} \
        == {"/crm/objects/2026-03/deals/search"}
    assert all(c["path"].startswith(("/crm/objects/2026-03/", "/crm/associations/2026-03/",
                                     "/oauth/2026-03/", "/account-info/2026-03/"))
               for c in dated if c["endpoint"] != PIPELINES)
    # v3: the legacy family only.
    assert _families(legacy) == {"pipelines": {"v3"}, "the rest": {"v3", "v4"}}
    assert all(c["path"].startswith(("/crm/v3/objects/", "/crm/v4/associations/",
                                     "/oauth/v3/", "/account-info/v3/"))
               for c in legacy if c["endpoint"] != PIPELINES)

    # The same answers, the same ledger, the same calls.
    assert dated_ledger == legacy_ledger
    assert dated_ledger["contracts"] and dated_ledger["invoices"]
    assert sorted(c["endpoint"] for c in dated) == sorted(c["endpoint"] for c in legacy)


def test_an_unknown_api_version_stops_the_sync_before_anything_is_sent(
        ledger_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with SandboxServer(seed=1, scale="tiny") as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(monkeypatch, sb)
        _use_api_version(monkeypatch, sb, None)
        truncate(conn)
        build_portal(sb)
        ledger = LedgerHook()
        integration_id = ledger.integrations.create("Misconfigured Ltd", CUTOFF)
        books(ledger, integration_id)
        connect(sb, integration_id)
        _use_api_version(monkeypatch, sb, "2026-3")  # an operator's typo, after connecting
        sent = sb.last_seq()
        run = f"version-{uuid.uuid4().hex[:8]}"
        with pytest.raises(UnknownApiVersion) as err:
            run_step("products", integration_id, run)
        assert sb.requests(since=sent) == []
        failures = conn.execute("SELECT failures FROM ledger.sync_runs WHERE integration_id = %s",
                                [integration_id]).fetchone()
        assert failures is not None and failures[0] == {"products": str(err.value)}
        assert str(err.value).startswith("The api_version extra of the hubspot_default "
                                         "connection is '2026-3', which this deployment does "
                                         "not know: use one of 2026-03, v3")
