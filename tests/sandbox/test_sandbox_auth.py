"""Bearer auth on API calls: missing, unknown, expired and under-scoped tokens."""

from __future__ import annotations

import pytest
import requests
from support import wait_until

from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .helpers import Api

pytestmark = pytest.mark.integration

DEALS = "/crm/v3/objects/deals"


def test_missing_and_unknown_tokens(sb: SandboxServer) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
        response = requests.get(f"{sb.url}{DEALS}", headers=headers, timeout=10)
        assert response.status_code == 401
        body = response.json()
        assert body["category"] == "INVALID_AUTHENTICATION" and body["status"] == "error"
        assert body["message"].startswith("Authentication credentials not found.")
        assert body["correlationId"] == response.headers["X-HubSpot-Correlation-Id"]
        assert "X-HubSpot-RateLimit-Remaining" not in response.headers


def test_expired_token_with_a_short_ttl(sb: SandboxServer) -> None:
    sb.update_config(access_token_ttl=1)
    tokens = sb.connect()
    assert tokens["expires_in"] == 1
    api = Api(sb.url, tokens["access_token"])
    assert api.get(DEALS).status_code == 200
    refused: list[requests.Response] = []  # (a Response is falsy when refused)
    wait_until(lambda: refused.append(r := api.get(DEALS)) or r.status_code == 401, timeout=10,
               what="the one-second token expires")
    response = refused[-1]
    body = response.json()
    assert body["category"] == "EXPIRED_AUTHENTICATION"
    assert body["message"] in (f"The OAuth token used to make this call expired {n} second(s) "
                               "ago." for n in (0, 1))
    assert list(body["context"]) == ["expire time"]
    # Refreshing brings the caller back.
    fresh = requests.post(f"{sb.url}/oauth/v3/token", timeout=10, data={
        "grant_type": "refresh_token", "client_id": sb.client_id,
        "client_secret": sb.client_secret, "refresh_token": tokens["refresh_token"]}).json()
    assert Api(sb.url, fresh["access_token"]).get(DEALS).status_code == 200


def test_admin_can_expire_tokens_now(sb: SandboxServer, api: Api) -> None:
    assert sb.expire_access_tokens() == 1
    response = api.get(DEALS)
    assert response.status_code == 401
    assert response.json()["message"] == \
        "The OAuth token used to make this call expired 0 second(s) ago."


def test_uninstall_kills_access_tokens_too(sb: SandboxServer, api: Api) -> None:
    assert sb.revoke_refresh_tokens(access_tokens=True) == 1
    assert api.get(DEALS).json()["category"] == "INVALID_AUTHENTICATION"


def test_missing_scope_is_403(sb: SandboxServer) -> None:
    token = sb.issue_tokens(scopes=["oauth", "crm.objects.deals.read"])["access_token"]
    api = Api(sb.url, token)
    assert api.get(DEALS).status_code == 200
    response = api.get("/crm/v3/objects/invoices")
    assert response.status_code == 403
    body = response.json()
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == \
        ["crm.objects.invoices.read"]


def test_every_response_has_a_correlation_id(sb: SandboxServer, api: Api) -> None:
    responses = [api.get(DEALS), api.get("/crm/v3/objects/deals/1"), api.get("/nowhere"),
                 requests.post(f"{sb.url}/oauth/v3/token", timeout=10),
                 requests.get(f"{sb.url}/oauth/authorize", timeout=10)]
    ids = [r.headers["X-HubSpot-Correlation-Id"] for r in responses]
    assert len(set(ids)) == len(ids)


def test_tokens_see_only_their_portal(sb: SandboxServer, api: Api) -> None:
    sb.add_portal(portal_id=424242, seed=9, scale="tiny")
    other = Api(sb.url, sb.issue_tokens(portal_id=424242)["access_token"])
    mine = {d["id"] for d in api.list_all("deals")}
    theirs = {d["id"] for d in other.list_all("deals")}
    sb.upsert("deals", {"dealname": "Only in 424242", "dealstage": "closedwon"},
              portal_id=424242)
    assert len(other.list_all("deals")) == len(theirs) + 1
    assert len(api.list_all("deals")) == len(mine)
